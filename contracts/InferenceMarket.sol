// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from
    "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleInclusion} from "./lib/MerkleInclusion.sol";
import {IStakeManagerForVouching} from "./lib/IStakeManagerForVouching.sol";

/// @title InferenceMarket
/// @notice Pay-per-inference with usage receipts (issue 16). A consumer opens a job: the
///         provider, the model digest paid for, a price per call, at most `maxCalls` calls, a
///         deadline, a verifier set with a threshold, a sample size k and a pass threshold in
///         basis points; `price * maxCalls` is escrowed (ERC-20, or ether as asset
///         address(0)), and the job id is assigned here, binding consumer, provider and model.
///         The provider accepts by locking the declared stake in the StakeManager (this
///         contract is a registered market and judge there) and naming the key its receipt
///         book signs with (`signer`).
///
///         Receipts and epoch roots are the receipt layer's EIP-712 messages (domain
///         "ailedger InferenceMarket", version 1, this chain, this contract): a leaf of an
///         epoch tree is the receipt's EIP-712 digest, RFC 9162 leaf hash sha256(0x00 || d).
///         The provider commits, for a job, a signed `EpochRoot(epoch, size, root)` and the
///         number of the job's calls in it (counters `first..first+calls-1`, continuing the
///         job's previous epochs); epochs increase. The sample is fixed by the hash of the
///         block after the commitment (`draw`): sample i is counter
///         first + keccak256(seed, jobId, epoch, i) mod calls. Verifiers re-execute the
///         sampled calls and sign `Verification(jobId, epoch, seed, passed, total)` with
///         total == k; with `threshold` distinct verifiers' signatures `settleEpoch` pays the
///         provider price * calls when passed * 10000 >= passBps * total, else the epoch fails
///         and is not paid. The consumer may approve an epoch itself. Epochs neither approved
///         nor failed by the end are paid at `finish` (optimistic: a consumer who never
///         settles does not hold up the provider); `finish` is open to anyone
///         `settleWindow` seconds after the deadline, refunds the unpaid escrow to the consumer
///         and releases the stake.
///
///         Disputes (the consumer, until the job is finished): a receipt signed by the
///         provider for this job, included at its position in the committed root of its
///         epoch, naming another model digest than the job's; or a signed receipt whose
///         committed root holds another leaf at its position, or lies beyond the root's size,
///         or whose epoch was skipped (omission / alteration); or, in an epoch whose
///         verification failed, an included receipt whose response the job's verifiers
///         (`threshold` of them, the same sorted-signer rule as settleEpoch) re-executed and
///         found wrong: they sign `Mismatch(jobId, counter, requestDigest, responseDigest,
///         expectedResponseDigest)` over the receipt's fields and their own result, which must
///         differ from the receipt's response digest (wrong output; a job with a tolerance is
///         judged by the verifiers off-chain, who sign a Mismatch only outside it). Any of
///         these slashes the job's whole stake (the consumer is the prover), ends the job and
///         refunds the unpaid escrow. A failed epoch is never paid: its calls are refunded to
///         the consumer, at `finish` or with a slash (the refund is price * (maxCalls -
///         paidCalls) either way). A wrong output can only be proven in a failed epoch: a
///         passed epoch met the job's pass threshold, the error rate the consumer accepted.
///         Payments are pulled (`claim`); an ERC-20 escrow must arrive whole (fee-on-transfer
///         tokens are refused).
/// @dev Per asset the contract holds at least `held[asset]` = open escrows + owed.
contract InferenceMarket is EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    uint16 public constant DEFAULT_PASS_BPS = 9_900;
    uint256 public constant MAX_VERIFIERS = 32;
    uint256 public constant MAX_SAMPLES = 1_024;
    uint32 public constant REASON_WRONG_MODEL = 1;
    uint32 public constant REASON_OMISSION = 2;
    uint32 public constant REASON_WRONG_OUTPUT = 3;
    address public constant ETHER = address(0);

    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,"
        "bytes32 modelDigest,uint256 price,uint64 timeMs,address consumer,uint64 epoch,"
        "uint64 position)"
    );
    bytes32 public constant EPOCH_ROOT_TYPEHASH =
        keccak256("EpochRoot(uint64 epoch,uint64 size,bytes32 root)");
    bytes32 public constant VERIFICATION_TYPEHASH = keccak256(
        "Verification(bytes32 jobId,uint64 epoch,bytes32 seed,uint32 passed,uint32 total)"
    );
    bytes32 public constant MISMATCH_TYPEHASH = keccak256(
        "Mismatch(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,"
        "bytes32 expectedResponseDigest)"
    );

    enum Status {
        None,
        Open,
        Active,
        Finished,
        Slashed,
        Cancelled
    }

    enum EpochStatus {
        None,
        Committed,
        Passed,
        Failed
    }

    /// @notice What the consumer opens a job with. `passBps` 0 means DEFAULT_PASS_BPS.
    struct Terms {
        address provider;
        address asset;
        address stakeAsset;
        uint256 stake;
        bytes32 modelDigest;
        uint256 price;
        uint64 maxCalls;
        uint64 deadline;
        uint16 k;
        uint16 passBps;
        uint8 threshold;
    }

    struct Job {
        Terms terms;
        address consumer;
        address signer;
        Status status;
        uint64 committedCalls;
        uint64 paidCalls;
        uint64 failedCalls;
        uint64 lastEpoch;
        bool anyEpoch;
    }

    struct Epoch {
        EpochStatus status;
        uint64 size;
        uint64 first;
        uint64 calls;
        uint64 seedBlock;
        bytes32 root;
        bytes32 seed;
    }

    /// @notice The receipt layer's usage receipt (ailedger.markets.inference.receipt).
    struct Receipt {
        bytes32 jobId;
        uint64 counter;
        bytes32 requestDigest;
        bytes32 responseDigest;
        bytes32 modelDigest;
        uint256 price;
        uint64 timeMs;
        address consumer;
        uint64 epoch;
        uint64 position;
    }

    IStakeManagerForVouching public immutable stakes;
    uint64 public immutable settleWindow;

    uint256 public jobCount;
    mapping(bytes32 jobId => Job) private _jobs;
    mapping(bytes32 jobId => address[]) private _verifiers;
    mapping(bytes32 jobId => mapping(address => bool)) public isVerifier;
    mapping(bytes32 jobId => mapping(uint64 epoch => Epoch)) private _epochs;
    mapping(address account => mapping(address asset => uint256)) public owed;
    mapping(address asset => uint256) public held;

    error ZeroAddress();
    error BadTerms();
    error BadVerifiers();
    error WrongValue(uint256 sent, uint256 expected);
    error EscrowShort(uint256 arrived, uint256 expected);
    error UnknownJob(bytes32 jobId);
    error WrongJobStatus(bytes32 jobId, Status status);
    error NotConsumer(address caller);
    error NotProvider(address caller);
    error PastDeadline(uint64 deadline);
    error BadSignature();
    error WrongSigner(address signer, address expected);
    error EpochNotIncreasing(uint64 epoch, uint64 last);
    error BadEpochCalls(uint64 calls, uint64 size, uint64 remaining);
    error UnknownEpoch(bytes32 jobId, uint64 epoch);
    error WrongEpochStatus(bytes32 jobId, uint64 epoch, EpochStatus status);
    error SeedNotMined(uint64 seedBlock);
    error NotDrawn(bytes32 jobId, uint64 epoch);
    error AlreadyDrawn(bytes32 jobId, uint64 epoch);
    error WrongTotal(uint32 total, uint16 k);
    error TooFewSignatures(uint256 count, uint8 threshold);
    error SignersNotSorted(uint256 index);
    error NotVerifier(address signer);
    error SettleWindowOpen(uint64 closes);
    error SettleWindowClosed(uint64 closes);
    error ReceiptForOtherJob(bytes32 jobId);
    error BadProof();
    error NotAFault();
    error EpochNotFailed(bytes32 jobId, uint64 epoch, EpochStatus status);
    error NothingOwed(address account, address asset);

    event JobOpened(
        bytes32 indexed jobId,
        address indexed consumer,
        address indexed provider,
        bytes32 modelDigest,
        address asset,
        uint256 price,
        uint64 maxCalls,
        uint64 deadline,
        uint256 escrow
    );
    event JobAccepted(bytes32 indexed jobId, address indexed provider, address signer, uint256 stake);
    event JobCancelled(bytes32 indexed jobId, uint256 refund);
    event EpochCommitted(
        bytes32 indexed jobId,
        uint64 indexed epoch,
        uint64 size,
        bytes32 root,
        uint64 first,
        uint64 calls,
        uint64 seedBlock
    );
    event Reseeded(bytes32 indexed jobId, uint64 indexed epoch, uint64 seedBlock);
    event SampleDrawn(bytes32 indexed jobId, uint64 indexed epoch, bytes32 seed);
    event EpochSettled(
        bytes32 indexed jobId,
        uint64 indexed epoch,
        bool passed,
        uint32 passedCount,
        uint32 total,
        uint256 amount
    );
    event EpochApproved(bytes32 indexed jobId, uint64 indexed epoch, uint256 amount);
    event JobFinished(bytes32 indexed jobId, uint256 paid, uint256 refund);
    event ProviderSlashed(
        bytes32 indexed jobId,
        uint32 reasonCode,
        bytes32 receiptDigest,
        uint256 slashed,
        uint256 refund
    );
    event WrongOutputProven(
        bytes32 indexed jobId,
        uint64 indexed epoch,
        uint64 counter,
        bytes32 responseDigest,
        bytes32 expectedResponseDigest
    );
    event Claimed(address indexed account, address indexed asset, address to, uint256 amount);

    constructor(IStakeManagerForVouching stakes_, uint64 settleWindow_)
        EIP712("ailedger InferenceMarket", "1")
    {
        if (address(stakes_) == address(0)) revert ZeroAddress();
        if (settleWindow_ == 0 || settleWindow_ > 30 days) revert BadTerms();
        stakes = stakes_;
        settleWindow = settleWindow_;
    }

    // ---------------------------------------------------------------- consumer

    /// @notice Open a job escrowing `price * maxCalls` of `asset`; returns its id.
    function openJob(Terms calldata t, address[] calldata verifiers)
        external
        payable
        nonReentrant
        returns (bytes32 jobId)
    {
        _checkTerms(t, verifiers.length);
        uint256 escrow = t.price * t.maxCalls; // _checkTerms bounds it
        jobId = keccak256(
            abi.encode(block.chainid, address(this), ++jobCount, msg.sender, t.provider, t.modelDigest)
        );
        Job storage j = _jobs[jobId];
        j.terms = t;
        if (t.passBps == 0) j.terms.passBps = DEFAULT_PASS_BPS;
        j.consumer = msg.sender;
        j.status = Status.Open;
        for (uint256 i; i < verifiers.length; ++i) {
            address v = verifiers[i];
            if (v == address(0) || isVerifier[jobId][v]) revert BadVerifiers();
            isVerifier[jobId][v] = true;
        }
        _verifiers[jobId] = verifiers;
        _pullExact(t.asset, escrow);
        held[t.asset] += escrow;
        emit JobOpened(
            jobId,
            msg.sender,
            t.provider,
            t.modelDigest,
            t.asset,
            t.price,
            t.maxCalls,
            t.deadline,
            escrow
        );
    }

    function _checkTerms(Terms calldata t, uint256 nVerifiers) private view {
        if (t.provider == address(0)) revert ZeroAddress();
        if (t.stake == 0 || t.price == 0 || t.maxCalls == 0) revert BadTerms();
        if (t.price > type(uint256).max / t.maxCalls) revert BadTerms();
        if (t.deadline <= block.timestamp) revert BadTerms();
        if (t.k == 0 || t.k > MAX_SAMPLES || t.passBps > BPS) revert BadTerms();
        if (nVerifiers == 0 || nVerifiers > MAX_VERIFIERS) revert BadVerifiers();
        if (t.threshold == 0 || t.threshold > nVerifiers) revert BadVerifiers();
    }

    /// @notice The consumer takes back the escrow of a job the provider has not accepted.
    function cancel(bytes32 jobId) external {
        Job storage j = _job(jobId);
        if (msg.sender != j.consumer) revert NotConsumer(msg.sender);
        if (j.status != Status.Open) revert WrongJobStatus(jobId, j.status);
        j.status = Status.Cancelled;
        uint256 refund = j.terms.price * j.terms.maxCalls;
        owed[j.consumer][j.terms.asset] += refund;
        emit JobCancelled(jobId, refund);
    }

    /// @notice The consumer pays a committed epoch without waiting for the verifiers.
    function approveEpoch(bytes32 jobId, uint64 epoch) external {
        Job storage j = _job(jobId);
        if (msg.sender != j.consumer) revert NotConsumer(msg.sender);
        if (j.status != Status.Active) revert WrongJobStatus(jobId, j.status);
        Epoch storage e = _committed(jobId, epoch);
        uint256 amount = _pay(j, e);
        emit EpochApproved(jobId, epoch, amount);
    }

    // ---------------------------------------------------------------- provider

    /// @notice The provider accepts: its declared stake is locked; `signer` is the key its
    ///         receipt book signs receipts and epoch roots with.
    function acceptJob(bytes32 jobId, address signer) external {
        Job storage j = _job(jobId);
        if (msg.sender != j.terms.provider) revert NotProvider(msg.sender);
        if (j.status != Status.Open) revert WrongJobStatus(jobId, j.status);
        if (block.timestamp > j.terms.deadline) revert PastDeadline(j.terms.deadline);
        if (signer == address(0)) revert ZeroAddress();
        j.signer = signer;
        j.status = Status.Active;
        emit JobAccepted(jobId, msg.sender, signer, j.terms.stake);
        stakes.lock(msg.sender, j.terms.stakeAsset, j.terms.stake);
    }

    /// @notice Commit the provider-signed root of `epoch` for the job, holding the job's next
    ///         `calls` calls. Sent by the provider or its receipt signer only: the signed root
    ///         names no job and no call count (one root covers every job of the book's epoch),
    ///         so a relayer could commit it with `calls` = 1 ahead of the provider (who would be
    ///         paid for one call of the epoch), or commit a later epoch first (the skipped one
    ///         then reads as an omission, and the provider is slashed for it).
    function commitEpoch(
        bytes32 jobId,
        uint64 epoch,
        uint64 size,
        bytes32 root,
        uint64 calls,
        bytes calldata signature
    ) external {
        Job storage j = _job(jobId);
        if (msg.sender != j.terms.provider && msg.sender != j.signer) revert NotProvider(msg.sender);
        if (j.status != Status.Active) revert WrongJobStatus(jobId, j.status);
        if (block.timestamp > j.terms.deadline) revert PastDeadline(j.terms.deadline);
        if (j.anyEpoch && epoch <= j.lastEpoch) revert EpochNotIncreasing(epoch, j.lastEpoch);
        uint64 remaining = j.terms.maxCalls - j.committedCalls;
        if (calls == 0 || calls > size || calls > remaining) {
            revert BadEpochCalls(calls, size, remaining);
        }
        _requireSigner(epochRootDigest(epoch, size, root), signature, j.signer);
        uint64 first = j.committedCalls + 1;
        uint64 seedBlock = uint64(block.number + 1);
        _epochs[jobId][epoch] = Epoch(EpochStatus.Committed, size, first, calls, seedBlock, root, 0);
        j.committedCalls += calls;
        j.lastEpoch = epoch;
        j.anyEpoch = true;
        emit EpochCommitted(jobId, epoch, size, root, first, calls, seedBlock);
    }

    // ---------------------------------------------------------------- verification

    /// @notice Fix the epoch's sample from the hash of the block after its commitment (once
    ///         mined; re-seeded with the next block if that hash has aged out). Returns
    ///         whether the seed is fixed.
    function draw(bytes32 jobId, uint64 epoch) external returns (bool drawn) {
        _job(jobId);
        Epoch storage e = _committed(jobId, epoch);
        if (e.seed != bytes32(0)) revert AlreadyDrawn(jobId, epoch);
        if (block.number <= e.seedBlock) revert SeedNotMined(e.seedBlock);
        bytes32 h = blockhash(e.seedBlock);
        if (h == bytes32(0)) {
            e.seedBlock = uint64(block.number + 1);
            emit Reseeded(jobId, epoch, e.seedBlock);
            return false;
        }
        e.seed = h;
        emit SampleDrawn(jobId, epoch, h);
        return true;
    }

    /// @notice Settle a drawn epoch with the verifiers' signed result (signatures ordered by
    ///         signer address, strictly increasing; at least `threshold` of them).
    function settleEpoch(
        bytes32 jobId,
        uint64 epoch,
        uint32 passed,
        uint32 total,
        bytes[] calldata signatures
    ) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != Status.Active) revert WrongJobStatus(jobId, j.status);
        uint64 closes = j.terms.deadline + settleWindow;
        if (block.timestamp > closes) revert SettleWindowClosed(closes);
        Epoch storage e = _committed(jobId, epoch);
        if (e.seed == bytes32(0)) revert NotDrawn(jobId, epoch);
        if (total != j.terms.k || passed > total) revert WrongTotal(total, j.terms.k);
        _requireVerifiers(jobId, verificationDigest(jobId, epoch, e.seed, passed, total), signatures, j.terms.threshold);
        bool ok = uint256(passed) * BPS >= uint256(j.terms.passBps) * total;
        uint256 amount;
        if (ok) {
            amount = _pay(j, e);
        } else {
            e.status = EpochStatus.Failed;
            j.failedCalls += e.calls;
        }
        emit EpochSettled(jobId, epoch, ok, passed, total, amount);
    }

    function _requireVerifiers(
        bytes32 jobId,
        bytes32 digest,
        bytes[] calldata signatures,
        uint8 threshold
    ) private view {
        uint256 n = signatures.length;
        if (n < threshold || n > MAX_VERIFIERS) revert TooFewSignatures(n, threshold);
        address previous;
        for (uint256 i; i < n; ++i) {
            address s = _recover(digest, signatures[i]);
            if (s <= previous) revert SignersNotSorted(i);
            if (!isVerifier[jobId][s]) revert NotVerifier(s);
            previous = s;
        }
    }

    // ---------------------------------------------------------------- end of a job

    /// @notice After the deadline and the settle window: pay committed epochs nobody failed,
    ///         refund the rest of the escrow and release the stake. Anyone may call it.
    function finish(bytes32 jobId) external nonReentrant {
        Job storage j = _job(jobId);
        if (j.status != Status.Active) revert WrongJobStatus(jobId, j.status);
        uint64 closes = j.terms.deadline + settleWindow;
        if (block.timestamp <= closes) revert SettleWindowOpen(closes);
        // every committed epoch not failed is paid (approved, passed, or left unsettled)
        uint64 unsettled = j.committedCalls - j.failedCalls - j.paidCalls;
        j.paidCalls += unsettled;
        j.status = Status.Finished;
        if (unsettled != 0) owed[j.terms.provider][j.terms.asset] += j.terms.price * unsettled;
        uint256 paid = j.terms.price * j.paidCalls;
        uint256 refund = j.terms.price * j.terms.maxCalls - paid;
        if (refund != 0) owed[j.consumer][j.terms.asset] += refund;
        emit JobFinished(jobId, paid, refund);
        // A market governance removed may already have had its lock released by the provider:
        // the job still finishes (and the consumer gets its refund). No try/catch here: a
        // caller short of gas must not be able to leave the stake locked.
        _release(j, j.terms.stake);
    }

    /// @dev Unlock up to `amount` of the job's stake, no more than this market still locks.
    function _release(Job storage j, uint256 amount) private {
        uint256 lockedHere = stakes.lockedBy(j.terms.provider, j.terms.stakeAsset, address(this));
        uint256 release = lockedHere < amount ? lockedHere : amount;
        if (release != 0) stakes.unlock(j.terms.provider, j.terms.stakeAsset, release);
    }

    // ---------------------------------------------------------------- disputes

    /// @notice The consumer shows a receipt the provider signed for this job, included at its
    ///         position in its epoch's committed root, naming another model than the job's.
    function proveWrongModel(
        bytes32 jobId,
        Receipt calldata r,
        bytes calldata signature,
        bytes32[] calldata proof
    ) external nonReentrant {
        Job storage j = _disputable(jobId);
        bytes32 digest = _signedReceipt(jobId, j, r, signature);
        Epoch storage e = _epochs[jobId][r.epoch]; // committed, whether settled or not
        if (e.status == EpochStatus.None) revert UnknownEpoch(jobId, r.epoch);
        if (!MerkleInclusion.verify(r.position, e.size, _leaf(digest), proof, e.root)) {
            revert BadProof();
        }
        if (r.modelDigest == j.terms.modelDigest) revert NotAFault();
        _slash(jobId, j, REASON_WRONG_MODEL, digest);
    }

    /// @notice The consumer shows a receipt the provider signed for this job that its
    ///         commitments omit or alter: its epoch was skipped, its position lies beyond the
    ///         committed size, or the committed root holds `heldLeaf` (by `proof`) there.
    function proveOmission(
        bytes32 jobId,
        Receipt calldata r,
        bytes calldata signature,
        bytes32 heldLeaf,
        bytes32[] calldata proof
    ) external nonReentrant {
        Job storage j = _disputable(jobId);
        bytes32 digest = _signedReceipt(jobId, j, r, signature);
        Epoch storage e = _epochs[jobId][r.epoch];
        if (e.status == EpochStatus.None) {
            // skipped: a later epoch of the job is committed, this one never was
            if (!j.anyEpoch || r.epoch >= j.lastEpoch) revert UnknownEpoch(jobId, r.epoch);
        } else if (r.position < e.size) {
            if (heldLeaf == _leaf(digest)) revert NotAFault();
            if (!MerkleInclusion.verify(r.position, e.size, heldLeaf, proof, e.root)) {
                revert BadProof();
            }
        }
        _slash(jobId, j, REASON_OMISSION, digest);
    }

    /// @notice The consumer shows a receipt the provider signed for this job, included at its
    ///         position in the committed root of a failed epoch, and `threshold` of the job's
    ///         verifiers' signatures (ordered by signer) over `Mismatch(jobId, r.counter,
    ///         r.requestDigest, r.responseDigest, expectedResponseDigest)`: re-executing the
    ///         request on the job's model gave another response than the provider's.
    function proveWrongOutput(
        bytes32 jobId,
        Receipt calldata r,
        bytes calldata signature,
        bytes32[] calldata proof,
        bytes32 expectedResponseDigest,
        bytes[] calldata verifierSignatures
    ) external nonReentrant {
        Job storage j = _disputable(jobId);
        bytes32 digest = _signedReceipt(jobId, j, r, signature);
        _requireInFailedEpoch(jobId, r, digest, proof);
        if (expectedResponseDigest == r.responseDigest) revert NotAFault();
        bytes32 mismatch = _mismatchOf(jobId, r, expectedResponseDigest);
        _requireVerifiers(jobId, mismatch, verifierSignatures, j.terms.threshold);
        emit WrongOutputProven(jobId, r.epoch, r.counter, r.responseDigest, expectedResponseDigest);
        _slash(jobId, j, REASON_WRONG_OUTPUT, digest);
    }

    function _requireInFailedEpoch(
        bytes32 jobId,
        Receipt calldata r,
        bytes32 digest,
        bytes32[] calldata proof
    ) private view {
        Epoch storage e = _epochs[jobId][r.epoch];
        if (e.status == EpochStatus.None) revert UnknownEpoch(jobId, r.epoch);
        if (e.status != EpochStatus.Failed) revert EpochNotFailed(jobId, r.epoch, e.status);
        if (!MerkleInclusion.verify(r.position, e.size, _leaf(digest), proof, e.root)) {
            revert BadProof();
        }
    }

    function _mismatchOf(bytes32 jobId, Receipt calldata r, bytes32 expected)
        private
        view
        returns (bytes32)
    {
        return mismatchDigest(jobId, r.counter, r.requestDigest, r.responseDigest, expected);
    }

    function _disputable(bytes32 jobId) private view returns (Job storage j) {
        j = _job(jobId);
        if (msg.sender != j.consumer) revert NotConsumer(msg.sender);
        if (j.status != Status.Active) revert WrongJobStatus(jobId, j.status);
    }

    function _signedReceipt(bytes32 jobId, Job storage j, Receipt calldata r, bytes calldata sig)
        private
        view
        returns (bytes32 digest)
    {
        if (r.jobId != jobId) revert ReceiptForOtherJob(r.jobId);
        digest = receiptDigest(r);
        _requireSigner(digest, sig, j.signer);
    }

    function _slash(bytes32 jobId, Job storage j, uint32 reason, bytes32 digest) private {
        j.status = Status.Slashed;
        uint256 refund = j.terms.price * (j.terms.maxCalls - j.paidCalls);
        owed[j.consumer][j.terms.asset] += refund;
        // If governance removed this judge (or nothing is left to slash) the fault is still
        // recorded and the consumer refunded; the slash is then 0. Only the consumer disputes,
        // so only the consumer could starve this call of gas, against its own interest.
        uint256 slashed;
        try stakes.slash(
            j.terms.provider,
            j.terms.stakeAsset,
            j.terms.stake,
            keccak256(abi.encode(jobId, digest)),
            reason,
            digest,
            j.consumer
        ) returns (uint256 amount) {
            slashed = amount;
        } catch {}
        emit ProviderSlashed(jobId, reason, digest, slashed, refund);
        // what of the job's stake was not slashed (a removed judge) is not left locked
        _release(j, j.terms.stake - slashed);
    }

    // ---------------------------------------------------------------- payments

    /// @notice Send everything owed to the caller in `asset` to `to`.
    function claim(address asset, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = owed[msg.sender][asset];
        if (amount == 0) revert NothingOwed(msg.sender, asset);
        owed[msg.sender][asset] = 0;
        held[asset] -= amount;
        emit Claimed(msg.sender, asset, to, amount);
        if (asset == ETHER) {
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert WrongValue(0, amount);
        } else {
            IERC20(asset).safeTransfer(to, amount);
        }
    }

    // ---------------------------------------------------------------- digests and views

    function receiptDigest(Receipt calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    RECEIPT_TYPEHASH,
                    r.jobId,
                    r.counter,
                    r.requestDigest,
                    r.responseDigest,
                    r.modelDigest,
                    r.price,
                    r.timeMs,
                    r.consumer,
                    r.epoch,
                    r.position
                )
            )
        );
    }

    function epochRootDigest(uint64 epoch, uint64 size, bytes32 root)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(EPOCH_ROOT_TYPEHASH, epoch, size, root)));
    }

    function verificationDigest(
        bytes32 jobId,
        uint64 epoch,
        bytes32 seed,
        uint32 passed,
        uint32 total
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(VERIFICATION_TYPEHASH, jobId, epoch, seed, passed, total))
        );
    }

    function mismatchDigest(
        bytes32 jobId,
        uint64 counter,
        bytes32 requestDigest,
        bytes32 responseDigest,
        bytes32 expectedResponseDigest
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    MISMATCH_TYPEHASH,
                    jobId,
                    counter,
                    requestDigest,
                    responseDigest,
                    expectedResponseDigest
                )
            )
        );
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The counters the verifiers re-execute for a drawn epoch, in sample order.
    function sampleCounters(bytes32 jobId, uint64 epoch)
        external
        view
        returns (uint64[] memory out)
    {
        Job storage j = _job(jobId);
        Epoch storage e = _epochs[jobId][epoch];
        if (e.seed == bytes32(0)) revert NotDrawn(jobId, epoch);
        out = new uint64[](j.terms.k);
        for (uint256 i; i < out.length; ++i) {
            out[i] = e.first + uint64(uint256(keccak256(abi.encode(e.seed, jobId, epoch, i))) % e.calls);
        }
    }

    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function getEpoch(bytes32 jobId, uint64 epoch) external view returns (Epoch memory) {
        return _epochs[jobId][epoch];
    }

    function verifiersOf(bytes32 jobId) external view returns (address[] memory) {
        return _verifiers[jobId];
    }

    // ---------------------------------------------------------------- internals

    function _job(bytes32 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == Status.None) revert UnknownJob(jobId);
    }

    function _committed(bytes32 jobId, uint64 epoch) private view returns (Epoch storage e) {
        e = _epochs[jobId][epoch];
        if (e.status == EpochStatus.None) revert UnknownEpoch(jobId, epoch);
        if (e.status != EpochStatus.Committed) revert WrongEpochStatus(jobId, epoch, e.status);
    }

    /// @dev Credit the provider price * calls for a committed epoch (once: it becomes Passed).
    function _pay(Job storage j, Epoch storage e) private returns (uint256 amount) {
        e.status = EpochStatus.Passed;
        j.paidCalls += e.calls;
        amount = j.terms.price * e.calls;
        owed[j.terms.provider][j.terms.asset] += amount;
    }

    function _leaf(bytes32 digest) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), digest));
    }

    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        (address s, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert BadSignature();
        return s;
    }

    function _requireSigner(bytes32 digest, bytes calldata signature, address expected)
        private
        pure
    {
        address s = _recover(digest, signature);
        if (s != expected) revert WrongSigner(s, expected);
    }

    function _pullExact(address asset, uint256 amount) private {
        if (asset == ETHER) {
            if (msg.value != amount) revert WrongValue(msg.value, amount);
            return;
        }
        if (msg.value != 0) revert WrongValue(msg.value, 0);
        IERC20 token = IERC20(asset);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 arrived = token.balanceOf(address(this)) - before;
        if (arrived != amount) revert EscrowShort(arrived, amount);
    }
}

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

/// @title FLRewards
/// @notice Federated learning that pays for proven contributions (issue 17).
///
///         A sponsor creates a task and escrows its whole pool, `roundBudget * rounds` (ether
///         as asset address(0), or an ERC-20 that must arrive whole). The task names the
///         aggregator's account, a verifier set with a threshold, the number of rounds, the
///         tolerance (the held-out loss increase, in millionths, an update may cause unpunished),
///         the challenge window, the stake each client locks, the aggregator's bond, the first
///         global model's digest and the deadline; and it pre-registers the held-out set's
///         salted Merkle root: the task's creation block is on record, so anyone can check the
///         set was fixed before round 1, and a round scored against another root is refused.
///
///         The aggregator accepts by locking its bond (`aggregatorBond` of `stakeAsset`) in the
///         StakeManager, where this contract is a registered market and judge, and names the
///         key that signs its round records. Clients join by
///         locking `stakePerClient` and committing their declared training data (32 bytes;
///         ailedger's disjointness check takes sha256 over its tree's root and size).
///
///         Each round the aggregator signs a `RoundRecord` (EIP-712, domain "ailedger
///         FLRewards", version 1, this chain, this contract): task, round number (rounds in
///         order, 1..rounds), the global model digest before (must be the current one) and
///         after, the held-out root, the scores root, the root and size of the payout tree and
///         the round's total (at most `roundBudget`), and the root and size of the penalty
///         tree. Anyone may relay it. Payout leaves are RFC 9162 leaves of
///         `abi.encodePacked(client, uint256 amount)`, penalty leaves of
///         `abi.encodePacked(client, uint256 amount, uint32 reason)`.
///
///         Within `challengeWindow` seconds of a round's posting a client may challenge it with
///         the verifier set's `Correction` (the scores recomputed from the committed updates
///         and held-out data, naming that client as the challenger, so nobody can front-run it
///         for the prover's share), signed by at least `threshold` distinct verifiers
///         (signatures ordered by signer address): the round's scores, payout and penalty roots are
///         replaced, the aggregator's bond is slashed (the challenger is the prover) and the
///         task halts (no further rounds; a proven-dishonest aggregator keeps no control over
///         payouts). After the window a client claims its payout with an inclusion proof (one
///         claim per client and round, the round's claims never above its total), and anyone
///         may slash a penalised client through the StakeManager (once per client and round,
///         at most what this task still locks of its stake: a client's or aggregator's stake
///         in another task of this contract is out of reach, and leaving or finishing a task
///         frees only what that task still locks). Gas per round is flat in the
///         number of clients: one record on-chain, one proof per claimant.
///
///         The task finishes (anyone may call it) `2 * challengeWindow` after its last round
///         once every round is posted or the task halted, or `2 * challengeWindow` after the
///         deadline: the unreserved pool is credited to the sponsor (`withdrawRefund`), the
///         aggregator's bond is released, clients `leave` to free their stake; payouts stay
///         claimable for `CLAIM_PERIOD`, after which anyone may `sweep` what is unclaimed back
///         to the sponsor (a task the aggregator never accepted finishes the same way after
///         its deadline). Before the aggregator accepts, the sponsor may cancel. The sponsor has
///         no other power: the pool cannot be withdrawn mid-task and no term (the held-out
///         root above all) can change.
/// @dev Per asset the contract holds at least `held[asset]` = escrows not yet paid out or
///      withdrawn as refunds (refundable included). For each task: paid <= reserved <=
///      escrow, and for each round: claimed <= total <= roundBudget.
contract FLRewards is EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint256 public constant MAX_VERIFIERS = 32;
    uint32 public constant MAX_ROUNDS = 10_000;
    uint32 public constant REASON_AGGREGATOR_FAULT = 100;
    /// @notice How long after `finish` payouts stay claimable; then anyone may `sweep` what is
    ///         still unclaimed back to the sponsor.
    uint64 public constant CLAIM_PERIOD = 365 days;
    address public constant ETHER = address(0);

    bytes32 public constant ROUND_RECORD_TYPEHASH = keccak256(
        "RoundRecord(bytes32 taskId,uint32 round,bytes32 modelBefore,bytes32 modelAfter,"
        "bytes32 heldoutRoot,bytes32 scoresRoot,bytes32 payoutRoot,uint64 payoutCount,"
        "uint256 payoutTotal,bytes32 penaltyRoot,uint64 penaltyCount)"
    );
    bytes32 public constant CORRECTION_TYPEHASH = keccak256(
        "Correction(bytes32 taskId,uint32 round,bytes32 recordDigest,bytes32 scoresRoot,"
        "bytes32 payoutRoot,uint64 payoutCount,uint256 payoutTotal,bytes32 penaltyRoot,"
        "uint64 penaltyCount,address challenger)"
    );

    enum Status {
        None,
        Open,
        Active,
        Halted,
        Finished,
        Cancelled
    }

    /// @notice What the sponsor creates a task with.
    struct Terms {
        address aggregator;
        address asset;
        address stakeAsset;
        uint256 roundBudget;
        uint256 stakePerClient;
        uint256 aggregatorBond;
        bytes32 heldoutRoot;
        bytes32 initialModel;
        uint64 deadline;
        uint64 challengeWindow;
        uint32 rounds;
        uint32 toleranceE6;
        uint8 threshold;
    }

    struct Task {
        Terms terms;
        address sponsor;
        address signer;
        Status status;
        uint64 createdBlock;
        uint64 createdAt;
        uint32 lastRound;
        uint64 lastPostedAt;
        uint32 clients;
        bytes32 model;
        uint256 reserved;
        uint256 paid;
    }

    /// @notice The aggregator's signed round record (also the EIP-712 struct, field order).
    struct RoundRecord {
        bytes32 taskId;
        uint32 round;
        bytes32 modelBefore;
        bytes32 modelAfter;
        bytes32 heldoutRoot;
        bytes32 scoresRoot;
        bytes32 payoutRoot;
        uint64 payoutCount;
        uint256 payoutTotal;
        bytes32 penaltyRoot;
        uint64 penaltyCount;
    }

    /// @notice The verifiers' recomputed result for a posted round, for the client that
    ///         asked for it (`challenger`: nobody else can front-run its challenge).
    struct Correction {
        bytes32 taskId;
        uint32 round;
        bytes32 recordDigest;
        bytes32 scoresRoot;
        bytes32 payoutRoot;
        uint64 payoutCount;
        uint256 payoutTotal;
        bytes32 penaltyRoot;
        uint64 penaltyCount;
        address challenger;
    }

    struct Round {
        bytes32 recordDigest;
        bytes32 modelBefore;
        bytes32 modelAfter;
        bytes32 scoresRoot;
        bytes32 payoutRoot;
        bytes32 penaltyRoot;
        uint256 payoutTotal;
        uint256 claimed;
        uint64 payoutCount;
        uint64 penaltyCount;
        uint64 postedAt;
        uint64 postedBlock;
        bool corrected;
    }

    /// @notice A leaf of a round's penalty tree.
    struct Penalty {
        address client;
        uint256 amount;
        uint32 reason;
    }

    struct Client {
        bytes32 dataRoot;
        uint64 joinedBlock;
        bool joined;
        bool left;
        uint256 paid;
        uint256 slashed;
    }

    IStakeManagerForVouching public immutable stakes;

    uint256 public taskCount;
    mapping(bytes32 taskId => Task) private _tasks;
    mapping(bytes32 taskId => address[]) private _verifiers;
    mapping(bytes32 taskId => mapping(address => bool)) public isVerifier;
    mapping(bytes32 taskId => mapping(uint32 round => Round)) private _rounds;
    mapping(bytes32 taskId => mapping(address client => Client)) private _clients;
    mapping(bytes32 taskId => mapping(uint32 round => mapping(address client => bool))) public
        claimed;
    mapping(address account => mapping(address asset => uint256)) public refundable;
    mapping(address asset => uint256) public held;
    /// @notice What a task has slashed of its aggregator's bond (the StakeManager counts what
    ///         this contract locks per account, not per task: a task takes and frees only its own).
    mapping(bytes32 taskId => uint256) public bondSlashed;
    /// @notice When a task finished (0 before), and whether its unclaimed payouts were swept.
    mapping(bytes32 taskId => uint64) public finishedAt;
    mapping(bytes32 taskId => bool) public swept;

    error ZeroAddress();
    error BadTerms();
    error BadVerifiers();
    error WrongValue(uint256 sent, uint256 expected);
    error EscrowShort(uint256 arrived, uint256 expected);
    error UnknownTask(bytes32 taskId);
    error WrongTaskStatus(bytes32 taskId, Status status);
    error NotSponsor(address caller);
    error NotAggregator(address caller);
    error NotClient(address caller);
    error NotChallenger(address caller, address challenger);
    error AlreadyJoined(address client);
    error PastDeadline(uint64 deadline);
    error BadSignature();
    error WrongSigner(address signer, address expected);
    error RoundOutOfOrder(uint32 round, uint32 expected);
    error WrongBaseModel(bytes32 modelBefore, bytes32 current);
    error HeldoutRootMismatch(bytes32 heldoutRoot, bytes32 registered);
    error OverBudget(uint256 total, uint256 budget);
    error UnknownRound(bytes32 taskId, uint32 round);
    error ChallengeWindowOpen(uint64 closes);
    error ChallengeWindowClosed(uint64 closes);
    error AlreadyCorrected(bytes32 taskId, uint32 round);
    error NothingToCorrect();
    error WrongRecord(bytes32 recordDigest);
    error TooFewSignatures(uint256 count, uint8 threshold);
    error SignersNotSorted(uint256 index);
    error NotVerifier(address signer);
    error AlreadyClaimed(address client, uint32 round);
    error BadProof();
    error RoundExhausted(uint256 claimed, uint256 amount, uint256 total);
    error NothingLocked(address client);
    error NotFinishable(uint64 at);
    error AlreadyLeft(address client);
    error TransferFailed(address to, uint256 amount);
    error NothingRefundable(address account, address asset);
    error ClaimsOpen(uint64 until);
    error Swept(bytes32 taskId);

    event TaskCreated(
        bytes32 indexed taskId,
        address indexed sponsor,
        address indexed aggregator,
        bytes32 heldoutRoot,
        bytes32 initialModel,
        address asset,
        uint256 roundBudget,
        uint32 rounds,
        uint64 deadline
    );
    event AggregatorBonded(
        bytes32 indexed taskId, address indexed aggregator, address signer, uint256 bond
    );
    event ClientJoined(
        bytes32 indexed taskId, address indexed client, bytes32 dataRoot, uint256 stake
    );
    event RoundPosted(
        bytes32 indexed taskId,
        uint32 indexed round,
        bytes32 recordDigest,
        bytes32 modelAfter,
        bytes32 scoresRoot,
        bytes32 payoutRoot,
        uint256 payoutTotal,
        bytes32 penaltyRoot
    );
    event RoundCorrected(
        bytes32 indexed taskId,
        uint32 indexed round,
        address indexed challenger,
        bytes32 payoutRoot,
        uint256 payoutTotal,
        bytes32 penaltyRoot,
        uint256 bondSlashed
    );
    event PayoutClaimed(
        bytes32 indexed taskId, uint32 indexed round, address indexed client, uint256 amount
    );
    event ClientSlashed(
        bytes32 indexed taskId,
        uint32 indexed round,
        address indexed client,
        uint32 reason,
        uint256 amount
    );
    event ClientLeft(bytes32 indexed taskId, address indexed client, uint256 released);
    event TaskFinished(bytes32 indexed taskId, uint256 refund);
    event RefundWithdrawn(
        address indexed sponsor, address indexed asset, address to, uint256 amount
    );
    event TaskCancelled(bytes32 indexed taskId, uint256 refund);
    event UnclaimedSwept(bytes32 indexed taskId, uint256 amount);

    constructor(IStakeManagerForVouching stakes_) EIP712("ailedger FLRewards", "1") {
        if (address(stakes_) == address(0)) revert ZeroAddress();
        stakes = stakes_;
    }

    // ---------------------------------------------------------------- sponsor

    /// @notice Create a task escrowing `roundBudget * rounds` of `asset`; returns its id. The
    ///         held-out root is registered here, with this block.
    function createTask(Terms calldata t, address[] calldata verifiers)
        external
        payable
        nonReentrant
        returns (bytes32 taskId)
    {
        _checkTerms(t, verifiers.length);
        uint256 escrow = t.roundBudget * t.rounds; // _checkTerms bounds it
        taskId = keccak256(abi.encode(block.chainid, address(this), ++taskCount, msg.sender));
        Task storage k = _tasks[taskId];
        k.terms = t;
        k.sponsor = msg.sender;
        k.status = Status.Open;
        k.createdBlock = uint64(block.number);
        k.createdAt = uint64(block.timestamp);
        k.model = t.initialModel;
        for (uint256 i; i < verifiers.length; ++i) {
            address v = verifiers[i];
            if (v == address(0) || isVerifier[taskId][v]) revert BadVerifiers();
            isVerifier[taskId][v] = true;
        }
        _verifiers[taskId] = verifiers;
        _pullExact(t.asset, escrow);
        held[t.asset] += escrow;
        emit TaskCreated(
            taskId,
            msg.sender,
            t.aggregator,
            t.heldoutRoot,
            t.initialModel,
            t.asset,
            t.roundBudget,
            t.rounds,
            t.deadline
        );
    }

    function _checkTerms(Terms calldata t, uint256 nVerifiers) private view {
        if (t.aggregator == address(0)) revert ZeroAddress();
        if (t.roundBudget == 0 || t.stakePerClient == 0 || t.aggregatorBond == 0) {
            revert BadTerms();
        }
        if (t.rounds == 0 || t.rounds > MAX_ROUNDS) revert BadTerms();
        if (t.roundBudget > type(uint256).max / t.rounds) revert BadTerms();
        if (t.heldoutRoot == bytes32(0) || t.initialModel == bytes32(0)) revert BadTerms();
        if (t.deadline <= block.timestamp || t.challengeWindow == 0) revert BadTerms();
        if (t.challengeWindow > 30 days || t.deadline > block.timestamp + 3650 days) {
            revert BadTerms();
        }
        if (nVerifiers == 0 || nVerifiers > MAX_VERIFIERS) revert BadVerifiers();
        if (t.threshold == 0 || t.threshold > nVerifiers) revert BadVerifiers();
    }

    /// @notice The sponsor takes back the pool of a task the aggregator has not accepted
    ///         (credited: `withdrawRefund`).
    function cancel(bytes32 taskId) external nonReentrant {
        Task storage k = _task(taskId);
        if (msg.sender != k.sponsor) revert NotSponsor(msg.sender);
        if (k.status != Status.Open) revert WrongTaskStatus(taskId, k.status);
        k.status = Status.Cancelled;
        uint256 refund = k.terms.roundBudget * k.terms.rounds;
        refundable[k.sponsor][k.terms.asset] += refund;
        emit TaskCancelled(taskId, refund);
    }

    // ---------------------------------------------------------------- aggregator, clients

    /// @notice The aggregator accepts the task: its bond is locked in the StakeManager, and
    ///         `signer` is the key that signs its round records.
    function acceptTask(bytes32 taskId, address signer) external {
        Task storage k = _task(taskId);
        if (msg.sender != k.terms.aggregator) revert NotAggregator(msg.sender);
        if (k.status != Status.Open) revert WrongTaskStatus(taskId, k.status);
        if (block.timestamp > k.terms.deadline) revert PastDeadline(k.terms.deadline);
        if (signer == address(0)) revert ZeroAddress();
        k.status = Status.Active;
        k.signer = signer;
        emit AggregatorBonded(taskId, msg.sender, signer, k.terms.aggregatorBond);
        stakes.lock(msg.sender, k.terms.stakeAsset, k.terms.aggregatorBond);
    }

    /// @notice Join the task as a client: `stakePerClient` is locked in the StakeManager and
    ///         `dataRoot` (the root of the declared training data) is committed with this block.
    function join(bytes32 taskId, bytes32 dataRoot) external {
        Task storage k = _task(taskId);
        if (k.status != Status.Open && k.status != Status.Active) {
            revert WrongTaskStatus(taskId, k.status);
        }
        if (block.timestamp > k.terms.deadline) revert PastDeadline(k.terms.deadline);
        if (dataRoot == bytes32(0)) revert BadTerms();
        Client storage c = _clients[taskId][msg.sender];
        if (c.joined) revert AlreadyJoined(msg.sender);
        c.joined = true;
        c.dataRoot = dataRoot;
        c.joinedBlock = uint64(block.number);
        k.clients += 1;
        emit ClientJoined(taskId, msg.sender, dataRoot, k.terms.stakePerClient);
        stakes.lock(msg.sender, k.terms.stakeAsset, k.terms.stakePerClient);
    }

    // ---------------------------------------------------------------- rounds

    /// @notice Post the aggregator-signed record of the task's next round (anyone may relay).
    function postRound(RoundRecord calldata r, bytes calldata signature) external {
        Task storage k = _task(r.taskId);
        if (k.status != Status.Active) revert WrongTaskStatus(r.taskId, k.status);
        if (block.timestamp > k.terms.deadline) revert PastDeadline(k.terms.deadline);
        uint32 expected = k.lastRound + 1;
        if (r.round != expected || r.round > k.terms.rounds) {
            revert RoundOutOfOrder(r.round, expected);
        }
        if (r.heldoutRoot != k.terms.heldoutRoot) {
            revert HeldoutRootMismatch(r.heldoutRoot, k.terms.heldoutRoot);
        }
        if (r.modelBefore != k.model) revert WrongBaseModel(r.modelBefore, k.model);
        if (r.payoutTotal > k.terms.roundBudget) {
            revert OverBudget(r.payoutTotal, k.terms.roundBudget);
        }
        bytes32 digest = roundRecordDigest(r);
        _requireSigner(digest, signature, k.signer);
        Round storage x = _rounds[r.taskId][r.round];
        x.recordDigest = digest;
        x.modelBefore = r.modelBefore;
        x.modelAfter = r.modelAfter;
        x.scoresRoot = r.scoresRoot;
        x.payoutRoot = r.payoutRoot;
        x.penaltyRoot = r.penaltyRoot;
        x.payoutTotal = r.payoutTotal;
        x.payoutCount = r.payoutCount;
        x.penaltyCount = r.penaltyCount;
        x.postedAt = uint64(block.timestamp);
        x.postedBlock = uint64(block.number);
        k.lastRound = r.round;
        k.lastPostedAt = uint64(block.timestamp);
        k.model = r.modelAfter;
        k.reserved += r.payoutTotal;
        emit RoundPosted(
            r.taskId,
            r.round,
            digest,
            r.modelAfter,
            r.scoresRoot,
            r.payoutRoot,
            r.payoutTotal,
            r.penaltyRoot
        );
    }

    /// @notice A client challenges a round within its window with the verifiers' correction
    ///         (at least `threshold` signatures, ordered by signer): the round is corrected,
    ///         the aggregator's bond slashed (the challenger is the prover), the task halted.
    function challenge(Correction calldata c, bytes[] calldata signatures) external nonReentrant {
        Task storage k = _task(c.taskId);
        if (!_clients[c.taskId][msg.sender].joined) revert NotClient(msg.sender);
        if (c.challenger != msg.sender) revert NotChallenger(msg.sender, c.challenger);
        if (k.status != Status.Active && k.status != Status.Halted) {
            revert WrongTaskStatus(c.taskId, k.status);
        }
        Round storage x = _round(c.taskId, c.round);
        uint64 closes = x.postedAt + k.terms.challengeWindow;
        if (block.timestamp > closes) revert ChallengeWindowClosed(closes);
        if (x.corrected) revert AlreadyCorrected(c.taskId, c.round);
        if (c.recordDigest != x.recordDigest) revert WrongRecord(c.recordDigest);
        if (
            c.scoresRoot == x.scoresRoot && c.payoutRoot == x.payoutRoot
                && c.payoutCount == x.payoutCount && c.payoutTotal == x.payoutTotal
                && c.penaltyRoot == x.penaltyRoot && c.penaltyCount == x.penaltyCount
        ) revert NothingToCorrect();
        if (c.payoutTotal > k.terms.roundBudget) {
            revert OverBudget(c.payoutTotal, k.terms.roundBudget);
        }
        _requireVerifiers(c.taskId, correctionDigest(c), signatures, k.terms.threshold);
        k.reserved = k.reserved - x.payoutTotal + c.payoutTotal;
        x.scoresRoot = c.scoresRoot;
        x.payoutRoot = c.payoutRoot;
        x.payoutCount = c.payoutCount;
        x.payoutTotal = c.payoutTotal;
        x.penaltyRoot = c.penaltyRoot;
        x.penaltyCount = c.penaltyCount;
        x.corrected = true;
        k.status = Status.Halted;
        uint256 slashed = _slashAggregator(c.taskId, k, c.round, x.recordDigest, msg.sender);
        emit RoundCorrected(
            c.taskId, c.round, msg.sender, c.payoutRoot, c.payoutTotal, c.penaltyRoot, slashed
        );
    }

    function _slashAggregator(
        bytes32 taskId,
        Task storage k,
        uint32 round,
        bytes32 evidence,
        address prover
    ) private returns (uint256 slashed) {
        address agg = k.terms.aggregator;
        uint256 lockedHere = stakes.lockedBy(agg, k.terms.stakeAsset, address(this));
        uint256 left = k.terms.aggregatorBond - bondSlashed[taskId];
        uint256 amount = lockedHere < left ? lockedHere : left;
        if (amount == 0) return 0;
        // A judge governance removed cannot slash: the round is still corrected and the task
        // halted, and the bond is released at finish. Only a client challenges, so only a
        // client could starve this call of gas, against its own interest.
        try stakes.slash(
            agg,
            k.terms.stakeAsset,
            amount,
            keccak256(abi.encode(taskId, round, agg)),
            REASON_AGGREGATOR_FAULT,
            evidence,
            prover
        ) returns (uint256 got) {
            slashed = got;
            bondSlashed[taskId] += got;
        } catch {}
    }

    // ---------------------------------------------------------------- payouts, penalties

    /// @notice Claim the caller's payout of `round` (leaf `index` of the round's payout tree),
    ///         once the round's challenge window has closed; it is sent to the caller.
    function claim(
        bytes32 taskId,
        uint32 round,
        uint256 amount,
        uint64 index,
        bytes32[] calldata proof
    ) external nonReentrant {
        Task storage k = _task(taskId);
        Client storage cl = _clients[taskId][msg.sender];
        if (!cl.joined) revert NotClient(msg.sender);
        Round storage x = _closedRound(taskId, round, k);
        if (claimed[taskId][round][msg.sender]) revert AlreadyClaimed(msg.sender, round);
        if (swept[taskId]) revert Swept(taskId);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), msg.sender, amount));
        if (!MerkleInclusion.verify(index, x.payoutCount, leaf, proof, x.payoutRoot)) {
            revert BadProof();
        }
        if (amount > x.payoutTotal - x.claimed) {
            revert RoundExhausted(x.claimed, amount, x.payoutTotal);
        }
        claimed[taskId][round][msg.sender] = true;
        x.claimed += amount;
        k.paid += amount;
        cl.paid += amount;
        held[k.terms.asset] -= amount;
        emit PayoutClaimed(taskId, round, msg.sender, amount);
        _send(k.terms.asset, msg.sender, amount);
    }

    /// @notice Slash a client the round's penalty tree names (leaf `index`), once the round's
    ///         window has closed: at most the penalty's amount and what this task still
    ///         locks of its stake; the caller is the prover. Once per client and round.
    function slashPenalised(
        bytes32 taskId,
        uint32 round,
        Penalty calldata p,
        uint64 index,
        bytes32[] calldata proof
    ) external nonReentrant returns (uint256 slashed) {
        Task storage k = _task(taskId);
        if (k.status == Status.Finished) revert WrongTaskStatus(taskId, k.status);
        if (!_clients[taskId][p.client].joined) revert NotClient(p.client);
        Round storage x = _closedRound(taskId, round, k);
        bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), p.client, p.amount, p.reason));
        if (!MerkleInclusion.verify(index, x.penaltyCount, leaf, proof, x.penaltyRoot)) {
            revert BadProof();
        }
        Client storage cl = _clients[taskId][p.client];
        slashed = _slashClient(
            taskId, round, k.terms.stakeAsset, p, x.recordDigest, k.terms.stakePerClient - cl.slashed
        );
        cl.slashed += slashed;
        emit ClientSlashed(taskId, round, p.client, p.reason, slashed);
    }

    function _slashClient(
        bytes32 taskId,
        uint32 round,
        address stakeAsset,
        Penalty calldata p,
        bytes32 evidence,
        uint256 stakeLeft
    ) private returns (uint256) {
        // at most what this task still locks of the client's stake: what the contract locks
        // for the client's other tasks is theirs
        uint256 lockedHere = stakes.lockedBy(p.client, stakeAsset, address(this));
        uint256 take = p.amount < lockedHere ? p.amount : lockedHere;
        if (stakeLeft < take) take = stakeLeft;
        if (take == 0) revert NothingLocked(p.client);
        bytes32 faultId = keccak256(abi.encode(taskId, round, p.client));
        return stakes.slash(p.client, stakeAsset, take, faultId, p.reason, evidence, msg.sender);
    }

    // ---------------------------------------------------------------- end of a task

    /// @notice When the task is over (see the contract notice): credit the unreserved pool to
    ///         the sponsor and release the aggregator's bond. Anyone may call it.
    function finish(bytes32 taskId) external nonReentrant {
        Task storage k = _task(taskId);
        // an Open task (never accepted) finishes after its deadline too, so clients who
        // joined it are not held by a sponsor who never cancels
        if (k.status != Status.Open && k.status != Status.Active && k.status != Status.Halted) {
            revert WrongTaskStatus(taskId, k.status);
        }
        uint64 at = finishableAt(taskId);
        if (block.timestamp <= at) revert NotFinishable(at);
        k.status = Status.Finished;
        finishedAt[taskId] = uint64(block.timestamp);
        uint256 refund = k.terms.roundBudget * k.terms.rounds - k.reserved;
        // credited, not sent: a sponsor that cannot receive must not keep the task (and the
        // clients' stake) from finishing
        if (refund != 0) refundable[k.sponsor][k.terms.asset] += refund;
        emit TaskFinished(taskId, refund);
        _release(
            k.terms.aggregator, k.terms.stakeAsset, k.terms.aggregatorBond - bondSlashed[taskId]
        );
    }

    /// @notice `CLAIM_PERIOD` after a task finished, credit what its payouts left unclaimed to
    ///         the sponsor (`withdrawRefund`): a total posted above what its tree pays, or a
    ///         client that never claims, does not keep the pool in the contract forever.
    ///         Anyone may call it, once; later claims of the task are refused.
    function sweep(bytes32 taskId) external nonReentrant {
        Task storage k = _task(taskId);
        if (k.status != Status.Finished) revert WrongTaskStatus(taskId, k.status);
        if (swept[taskId]) revert Swept(taskId);
        uint64 until = finishedAt[taskId] + CLAIM_PERIOD;
        if (block.timestamp <= until) revert ClaimsOpen(until);
        swept[taskId] = true;
        uint256 unclaimed = k.reserved - k.paid;
        k.reserved = k.paid;
        if (unclaimed != 0) refundable[k.sponsor][k.terms.asset] += unclaimed;
        emit UnclaimedSwept(taskId, unclaimed);
    }

    /// @notice Send the caller's refunds of finished or cancelled tasks in `asset` to `to`.
    function withdrawRefund(address asset, address to) external nonReentrant returns (uint256) {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = refundable[msg.sender][asset];
        if (amount == 0) revert NothingRefundable(msg.sender, asset);
        refundable[msg.sender][asset] = 0;
        held[asset] -= amount;
        emit RefundWithdrawn(msg.sender, asset, to, amount);
        _send(asset, to, amount);
        return amount;
    }

    /// @notice A client frees what this contract still locks of its stake, once the task is
    ///         finished or cancelled.
    function leave(bytes32 taskId) external returns (uint256 released) {
        Task storage k = _task(taskId);
        if (k.status != Status.Finished && k.status != Status.Cancelled) {
            revert WrongTaskStatus(taskId, k.status);
        }
        Client storage cl = _clients[taskId][msg.sender];
        if (!cl.joined) revert NotClient(msg.sender);
        if (cl.left) revert AlreadyLeft(msg.sender);
        cl.left = true;
        released = _release(msg.sender, k.terms.stakeAsset, k.terms.stakePerClient - cl.slashed);
        emit ClientLeft(taskId, msg.sender, released);
    }

    /// @notice When `finish` may be called (it succeeds strictly after this time).
    function finishableAt(bytes32 taskId) public view returns (uint64) {
        Task storage k = _task(taskId);
        uint64 twice = 2 * k.terms.challengeWindow;
        if (k.status == Status.Halted || k.lastRound == k.terms.rounds) {
            return k.lastPostedAt + twice;
        }
        return k.terms.deadline + twice;
    }

    /// @dev Unlock up to `amount` of `who`'s stake, no more than this contract still locks.
    function _release(address who, address asset, uint256 amount) private returns (uint256) {
        uint256 lockedHere = stakes.lockedBy(who, asset, address(this));
        uint256 release = lockedHere < amount ? lockedHere : amount;
        if (release != 0) stakes.unlock(who, asset, release);
        return release;
    }

    // ---------------------------------------------------------------- digests and views

    function roundRecordDigest(RoundRecord calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ROUND_RECORD_TYPEHASH, r)));
    }

    function correctionDigest(Correction calldata c) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CORRECTION_TYPEHASH, c)));
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function getTask(bytes32 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    function getRound(bytes32 taskId, uint32 round) external view returns (Round memory) {
        return _rounds[taskId][round];
    }

    function getClient(bytes32 taskId, address client) external view returns (Client memory) {
        return _clients[taskId][client];
    }

    function verifiersOf(bytes32 taskId) external view returns (address[] memory) {
        return _verifiers[taskId];
    }

    /// @notice The pool not yet reserved by a round (what `finish` would refund).
    function poolLeft(bytes32 taskId) external view returns (uint256) {
        Task storage k = _task(taskId);
        if (k.status == Status.Finished || k.status == Status.Cancelled) return 0;
        return k.terms.roundBudget * k.terms.rounds - k.reserved;
    }

    // ---------------------------------------------------------------- internals

    function _task(bytes32 taskId) private view returns (Task storage k) {
        k = _tasks[taskId];
        if (k.status == Status.None) revert UnknownTask(taskId);
    }

    function _round(bytes32 taskId, uint32 round) private view returns (Round storage x) {
        x = _rounds[taskId][round];
        if (x.postedAt == 0) revert UnknownRound(taskId, round);
    }

    function _closedRound(bytes32 taskId, uint32 round, Task storage k)
        private
        view
        returns (Round storage x)
    {
        x = _round(taskId, round);
        uint64 closes = x.postedAt + k.terms.challengeWindow;
        if (block.timestamp <= closes) revert ChallengeWindowOpen(closes);
    }

    function _requireVerifiers(
        bytes32 taskId,
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
            if (!isVerifier[taskId][s]) revert NotVerifier(s);
            previous = s;
        }
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

    function _send(address asset, address to, uint256 amount) private {
        if (asset == ETHER) {
            (bool ok,) = payable(to).call{value: amount}("");
            if (!ok) revert TransferFailed(to, amount);
        } else {
            IERC20(asset).safeTransfer(to, amount);
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from
    "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {MerkleInclusion} from "./lib/MerkleInclusion.sol";
import {IStakeManagerForVouching} from "./lib/IStakeManagerForVouching.sol";

/// @title DatasetVouching
/// @notice Curators vouch for a registered dataset version with stake locked in the
///         StakeManager (this contract is a registered market and judge there); anyone audits
///         it. A dataset is listed by the registrant of a ModelRegistry version, naming one of
///         the version's dataset roots (an RFC 9162 tree over the records' leaf entries, salted
///         or not, as `ailedger dataset fingerprint` builds it), its size, its salt length and
///         the checks every record must pass, all evaluated here on the record's bytes:
///         a length range, a byte prefix (a schema's opening, e.g. `["` for CSV rows as JSON
///         arrays), a decimal label between a declared prefix and suffix (e.g. `,"` and `"]`:
///         the last CSV field) within a range, and "not a duplicate of a test-set record"
///         (a challenger shows the record in a declared test-set root).
///
///         An audit: a challenger posts a bond and names a future block N (block.number < N <=
///         block.number + MAX_SEED_DELAY) and a sample size k. Once N is mined, anyone `draw`s:
///         the seed is blockhash(N) and sample i is record keccak256(seed, auditId, i) mod size
///         (with replacement). If blockhash(N) is no longer available (N older than 256
///         blocks) when `draw` is called, the audit is re-seeded with the next block (never
///         void: a void audit would let a party that dislikes the public sample wait it out,
///         and the challenger can always draw in time). The owner answers by `answerWindow`
///         seconds after the draw with the k leaf entries and their inclusion proofs: a proof
///         that does not verify reverts (the owner may answer again until the deadline); the
///         first record failing a check fails the audit. A passed answer stands
///         `disputeWindow` seconds, during which anyone may prove a sampled record is in the
///         test set (failing the audit). `settle` then closes the audit:
///         - failed (a check, a duplicate, or no answer by the deadline): each curator is
///           slashed `slashBps` of its vouch with reason code = the check, evidence hash =
///           the failing record's leaf hash (or, without an answer, the audit digest), the
///           prover being the challenger (the duplicate's prover for a duplicate); the bond
///           is owed back to the challenger;
///         - passed: the bond and `auditReward` from the dataset's pool (as much as it holds)
///           are shared by the curators pro rata to their vouches, rounded down, the remainder
///           returning to the pool.
///         One audit per dataset is open at a time; vouches cannot change while it is open,
///         and a curator leaves only `UNVOUCH_NOTICE` after announcing it (`requestUnvouch`),
///         so a pending `openAudit` cannot be front-run by an exit.
///         Payments are pulled (`claim`); ERC-20 only; what arrives of a fee-on-transfer token
///         is credited (a bond must arrive whole: the challenger sends more).
/// @dev Per asset, the contract holds at least `held[asset]` = pools + open bonds + owed.
contract DatasetVouching is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    uint256 public constant MAX_CURATORS = 16;
    uint256 public constant MAX_SAMPLES = 256;
    uint256 public constant MAX_SEED_DELAY = 128;
    uint64 public constant MAX_WINDOW = 30 days;
    uint256 public constant MAX_LABEL_DIGITS = 18;
    /// @notice A curator leaves `UNVOUCH_NOTICE` after announcing it, so nobody escapes an
    ///         audit by withdrawing a vouch in front of the transaction that opens it.
    uint64 public constant UNVOUCH_NOTICE = 1 days;

    uint32 public constant REASON_LENGTH = 1;
    uint32 public constant REASON_PREFIX = 2;
    uint32 public constant REASON_LABEL = 3;
    uint32 public constant REASON_DUPLICATE = 4;
    uint32 public constant REASON_NO_ANSWER = 5;

    enum Status {
        None,
        Open,
        Answered,
        Failed,
        Passed,
        Slashed
    }

    /// @notice Money and time: stake `asset` (an ERC-20), a vouch's minimum, the challenger's
    ///         bond, the reward per passed audit, the share of a vouch slashed on failure.
    struct Terms {
        address asset;
        uint64 size;
        uint8 saltLength;
        uint16 slashBps;
        uint64 answerWindow;
        uint64 disputeWindow;
        uint256 minVouch;
        uint256 bond;
        uint256 auditReward;
    }

    /// @notice What every record (the leaf entry after its salt) must satisfy. A label check
    ///         is on when `labelSuffix` is not empty; a duplicate check when `testRoot` is set.
    struct Checks {
        uint32 minLength;
        uint32 maxLength;
        bytes prefix;
        bytes labelPrefix;
        bytes labelSuffix;
        uint64 labelMin;
        uint64 labelMax;
        bytes32 testRoot;
        uint64 testSize;
        uint8 testSaltLength;
    }

    struct Dataset {
        bytes32 versionId;
        bytes32 root;
        address owner;
        uint256 openAudit;
        uint256 totalVouched;
        uint256 pool;
        Terms terms;
        Checks checks;
        address[] curators;
    }

    struct Audit {
        bytes32 datasetId;
        address challenger;
        uint64 seedBlock;
        uint16 k;
        Status status;
        uint64 deadline;
        uint64 answeredAt;
        uint32 reasonCode;
        uint16 failedSample;
        address prover;
        bytes32 seed;
        bytes32 leavesDigest;
        bytes32 evidence;
        uint256 bond;
    }

    IStakeManagerForVouching public immutable stakes;
    ModelRegistry public immutable registry;

    uint256 public auditCount;
    mapping(bytes32 datasetId => Dataset) private _datasets;
    mapping(bytes32 datasetId => mapping(address curator => uint256)) public vouched;
    mapping(bytes32 datasetId => mapping(address curator => uint64)) public unvouchAt;
    mapping(uint256 auditId => Audit) private _audits;
    mapping(address account => mapping(address asset => uint256)) public owed;
    mapping(address asset => uint256) public held;

    error NotRegistrant(bytes32 versionId, address caller);
    error UnknownRoot(bytes32 versionId, uint256 rootIndex);
    error AlreadyListed(bytes32 datasetId);
    error UnknownDataset(bytes32 datasetId);
    error BadTerms();
    error BadChecks();
    error ZeroAmount();
    error ZeroAddress();
    error BelowMinimum(uint256 amount, uint256 minimum);
    error TooManyCurators(uint256 max);
    error InsufficientVouch(uint256 requested, uint256 vouched);
    error UnvouchNotDue(uint64 at);
    error AuditOpen(uint256 auditId);
    error NothingVouched(bytes32 datasetId);
    error BadSeedBlock(uint256 seedBlock, uint256 current);
    error BadSampleSize(uint256 k);
    error BondShort(uint256 arrived, uint256 required);
    error NothingArrived(address asset);
    error UnknownAudit(uint256 auditId);
    error WrongStatus(uint256 auditId, Status status);
    error SeedNotMined(uint64 seedBlock);
    error AlreadyDrawn(uint256 auditId);
    error NotDrawn(uint256 auditId);
    error NotOwner(address caller);
    error AnswerLate(uint64 deadline);
    error AnswerStillDue(uint64 deadline);
    error WrongCount(uint256 given, uint256 expected);
    error BadProof(uint256 sample);
    error DisputeClosed(uint64 closedAt);
    error DisputeStillOpen(uint64 closesAt);
    error NoTestSet(bytes32 datasetId);
    error LeavesMismatch();
    error RecordMismatch(uint256 sample);
    error BadTestProof();
    error NotDuplicate();
    error NothingOwed(address account, address asset);

    event Listed(
        bytes32 indexed datasetId, bytes32 indexed versionId, bytes32 root, address owner
    );
    event Vouched(bytes32 indexed datasetId, address indexed curator, uint256 amount);
    event UnvouchRequested(bytes32 indexed datasetId, address indexed curator, uint64 at);
    event Unvouched(bytes32 indexed datasetId, address indexed curator, uint256 amount);
    event Funded(bytes32 indexed datasetId, address indexed funder, uint256 amount);
    event AuditOpened(
        uint256 indexed auditId,
        bytes32 indexed datasetId,
        address indexed challenger,
        uint64 seedBlock,
        uint16 k,
        uint256 bond
    );
    event Reseeded(uint256 indexed auditId, uint64 seedBlock);
    event SampleDrawn(uint256 indexed auditId, bytes32 seed, uint64 deadline);
    event Answered(uint256 indexed auditId, bool passed, bytes32[] leaves);
    event RecordFailed(
        uint256 indexed auditId, uint16 sample, uint256 index, uint32 reasonCode, bytes32 leaf
    );
    event AuditPassed(uint256 indexed auditId, uint256 reward, uint256 remainder);
    event AuditFailed(
        uint256 indexed auditId, uint32 reasonCode, bytes32 evidence, uint256 slashed
    );
    event CuratorRewarded(uint256 indexed auditId, address indexed curator, uint256 amount);
    event CuratorSlashed(uint256 indexed auditId, address indexed curator, uint256 amount);
    event Claimed(address indexed account, address indexed asset, address to, uint256 amount);

    constructor(IStakeManagerForVouching stakes_, ModelRegistry registry_) {
        if (address(stakes_) == address(0) || address(registry_) == address(0)) {
            revert ZeroAddress();
        }
        stakes = stakes_;
        registry = registry_;
    }

    // ---------------------------------------------------------------- datasets

    /// @notice datasetId of dataset root number `rootIndex` of model version `versionId`.
    function datasetIdOf(bytes32 versionId, uint256 rootIndex) public pure returns (bytes32) {
        return keccak256(abi.encode(versionId, rootIndex));
    }

    /// @notice List dataset root `rootIndex` of `versionId` (the caller must be the version's
    ///         registrant) for vouching, with its terms and checks (fixed for good).
    function list(bytes32 versionId, uint256 rootIndex, Terms calldata terms, Checks calldata checks)
        external
        returns (bytes32 datasetId)
    {
        if (registry.getVersion(versionId).registrant != msg.sender) {
            revert NotRegistrant(versionId, msg.sender);
        }
        bytes32[] memory roots = registry.datasetRootsOf(versionId);
        if (rootIndex >= roots.length) revert UnknownRoot(versionId, rootIndex);
        _checkTerms(terms);
        _checkChecks(checks);
        datasetId = datasetIdOf(versionId, rootIndex);
        Dataset storage d = _datasets[datasetId];
        if (d.owner != address(0)) revert AlreadyListed(datasetId);
        d.versionId = versionId;
        d.root = roots[rootIndex];
        d.owner = msg.sender;
        d.terms = terms;
        d.checks = checks;
        emit Listed(datasetId, versionId, d.root, msg.sender);
    }

    function _checkTerms(Terms calldata t) private pure {
        bool ok = t.asset != address(0) && t.size != 0 && (t.saltLength == 0 || t.saltLength == 32)
            && t.slashBps <= BPS && t.answerWindow != 0 && t.answerWindow <= MAX_WINDOW
            && t.disputeWindow <= MAX_WINDOW && t.minVouch != 0 && t.bond != 0;
        if (!ok) revert BadTerms();
    }

    function _checkChecks(Checks calldata c) private pure {
        bool ok = c.minLength <= c.maxLength && c.labelMin <= c.labelMax
            && (c.testSaltLength == 0 || c.testSaltLength == 32)
            && (c.testRoot == bytes32(0) || c.testSize != 0);
        if (!ok) revert BadChecks();
    }

    /// @notice Vouch `amount` more for `datasetId`: locks that much of the caller's free stake
    ///         in the dataset's asset.
    function vouch(bytes32 datasetId, uint256 amount) external {
        Dataset storage d = _existing(datasetId);
        if (d.openAudit != 0) revert AuditOpen(d.openAudit);
        if (amount == 0) revert ZeroAmount();
        uint256 mine = vouched[datasetId][msg.sender];
        if (mine == 0) {
            if (d.curators.length >= MAX_CURATORS) revert TooManyCurators(MAX_CURATORS);
            d.curators.push(msg.sender);
        }
        if (mine + amount < d.terms.minVouch) revert BelowMinimum(mine + amount, d.terms.minVouch);
        vouched[datasetId][msg.sender] = mine + amount;
        d.totalVouched += amount;
        emit Vouched(datasetId, msg.sender, amount);
        stakes.lock(msg.sender, d.terms.asset, amount);
    }

    /// @notice Announce leaving: `unvouch` is allowed `UNVOUCH_NOTICE` from now (the vouch
    ///         stays auditable and slashable until then, and while an audit is open).
    function requestUnvouch(bytes32 datasetId) external returns (uint64 at) {
        _existing(datasetId);
        uint256 mine = vouched[datasetId][msg.sender];
        if (mine == 0) revert InsufficientVouch(1, 0);
        at = uint64(block.timestamp) + UNVOUCH_NOTICE;
        unvouchAt[datasetId][msg.sender] = at;
        emit UnvouchRequested(datasetId, msg.sender, at);
    }

    /// @notice Withdraw `amount` of the caller's vouch, announced `UNVOUCH_NOTICE` before
    ///         (none while an audit is open); what remains is 0 or at least the minimum. Each
    ///         withdrawal needs a new announcement.
    function unvouch(bytes32 datasetId, uint256 amount) external {
        Dataset storage d = _existing(datasetId);
        if (d.openAudit != 0) revert AuditOpen(d.openAudit);
        if (amount == 0) revert ZeroAmount();
        uint64 at = unvouchAt[datasetId][msg.sender];
        if (at == 0 || block.timestamp < at) revert UnvouchNotDue(at);
        uint256 mine = vouched[datasetId][msg.sender];
        if (amount > mine) revert InsufficientVouch(amount, mine);
        uint256 rest = mine - amount;
        if (rest != 0 && rest < d.terms.minVouch) revert BelowMinimum(rest, d.terms.minVouch);
        vouched[datasetId][msg.sender] = rest;
        unvouchAt[datasetId][msg.sender] = 0;
        d.totalVouched -= amount;
        if (rest == 0) _dropCurator(d, msg.sender);
        emit Unvouched(datasetId, msg.sender, amount);
        stakes.unlock(msg.sender, d.terms.asset, amount);
    }

    /// @notice Add `amount` of the dataset's asset to its reward pool (what arrives counts).
    function fund(bytes32 datasetId, uint256 amount) external nonReentrant {
        Dataset storage d = _existing(datasetId);
        if (amount == 0) revert ZeroAmount();
        uint256 arrived = _pull(d.terms.asset, amount);
        d.pool += arrived;
        held[d.terms.asset] += arrived;
        emit Funded(datasetId, msg.sender, arrived);
    }

    // ---------------------------------------------------------------- audits

    /// @notice Open an audit of `k` records sampled from the hash of future block `seedBlock`,
    ///         posting a bond: `bondSent` (at least the dataset's bond) is pulled from the
    ///         caller and what arrives, at least the dataset's bond, is the audit's bond (a
    ///         fee-on-transfer token needs a grossed-up `bondSent`).
    function openAudit(bytes32 datasetId, uint64 seedBlock, uint16 k, uint256 bondSent)
        external
        nonReentrant
        returns (uint256 auditId)
    {
        Dataset storage d = _existing(datasetId);
        if (d.openAudit != 0) revert AuditOpen(d.openAudit);
        if (d.totalVouched == 0) revert NothingVouched(datasetId);
        if (seedBlock <= block.number || seedBlock > block.number + MAX_SEED_DELAY) {
            revert BadSeedBlock(seedBlock, block.number);
        }
        if (k == 0 || k > MAX_SAMPLES) revert BadSampleSize(k);
        if (bondSent < d.terms.bond) revert BondShort(bondSent, d.terms.bond);
        uint256 arrived = _pull(d.terms.asset, bondSent);
        if (arrived < d.terms.bond) revert BondShort(arrived, d.terms.bond);
        held[d.terms.asset] += arrived;
        auditId = ++auditCount;
        d.openAudit = auditId;
        Audit storage a = _audits[auditId];
        a.datasetId = datasetId;
        a.challenger = msg.sender;
        a.seedBlock = seedBlock;
        a.k = k;
        a.status = Status.Open;
        a.bond = arrived;
        a.prover = msg.sender;
        emit AuditOpened(auditId, datasetId, msg.sender, seedBlock, k, arrived);
    }

    /// @notice Fix the sample from blockhash(seedBlock) and start the answer clock; if that
    ///         hash is gone (older than 256 blocks), move the seed to the next block instead.
    function draw(uint256 auditId) external returns (bool drawn) {
        Audit storage a = _audit(auditId);
        if (a.status != Status.Open) revert WrongStatus(auditId, a.status);
        if (a.seed != bytes32(0)) revert AlreadyDrawn(auditId);
        if (block.number <= a.seedBlock) revert SeedNotMined(a.seedBlock);
        bytes32 h = blockhash(a.seedBlock);
        if (h == bytes32(0)) {
            a.seedBlock = uint64(block.number + 1);
            emit Reseeded(auditId, a.seedBlock);
            return false;
        }
        _fix(auditId, a, h);
        return true;
    }

    /// @notice The owner's answer: the k sampled leaf entries (salt || record) in sample
    ///         order and their RFC 9162 inclusion proofs against the dataset root.
    function answer(uint256 auditId, bytes[] calldata entries, bytes32[][] calldata proofs)
        external
    {
        Audit storage a = _audit(auditId);
        Dataset storage d = _datasets[a.datasetId];
        if (msg.sender != d.owner) revert NotOwner(msg.sender);
        if (a.status != Status.Open) revert WrongStatus(auditId, a.status);
        if (a.seed == bytes32(0)) {
            bytes32 h = block.number > a.seedBlock ? blockhash(a.seedBlock) : bytes32(0);
            if (h == bytes32(0)) revert NotDrawn(auditId);
            _fix(auditId, a, h);
        }
        if (block.timestamp > a.deadline) revert AnswerLate(a.deadline);
        uint256 k = a.k;
        if (entries.length != k) revert WrongCount(entries.length, k);
        if (proofs.length != k) revert WrongCount(proofs.length, k);
        bytes32[] memory leaves = new bytes32[](k);
        uint32 reason;
        for (uint256 i; i < k; ++i) {
            uint256 index = _sample(a.seed, auditId, i, d.terms.size);
            bytes32 leaf = MerkleInclusion.leafHash(entries[i]);
            if (!MerkleInclusion.verify(index, d.terms.size, leaf, proofs[i], d.root)) {
                revert BadProof(i);
            }
            leaves[i] = leaf;
            if (reason == 0) {
                reason = _evaluate(_record(entries[i], d.terms.saltLength), d.checks);
                if (reason != 0) {
                    a.failedSample = uint16(i);
                    a.evidence = leaf;
                    emit RecordFailed(auditId, uint16(i), index, reason, leaf);
                }
            }
        }
        a.leavesDigest = keccak256(abi.encode(leaves));
        a.answeredAt = uint64(block.timestamp);
        if (reason == 0) {
            a.status = Status.Answered;
        } else {
            a.status = Status.Failed;
            a.reasonCode = reason;
        }
        emit Answered(auditId, reason == 0, leaves);
    }

    /// @notice A sampled record shown to be in the declared test set: sampled record
    ///         `sample` (leaf entry `entry`, whose leaf is `leaves[sample]` of the answer) is
    ///         entry `testIndex` (`testEntry`, by `testProof`) of the test-set tree.
    struct Duplicate {
        uint256 sample;
        bytes entry;
        bytes testEntry;
        uint256 testIndex;
        bytes32[] testProof;
    }

    /// @notice During the dispute window of a passed answer, show that a sampled record is a
    ///         test-set record (`leaves`: the answer's leaf hashes, from its `Answered`
    ///         event): the audit fails and the caller is the prover.
    function proveDuplicate(uint256 auditId, bytes32[] calldata leaves, Duplicate calldata dup)
        external
    {
        Audit storage a = _audit(auditId);
        Dataset storage d = _datasets[a.datasetId];
        if (a.status != Status.Answered) revert WrongStatus(auditId, a.status);
        uint64 closes = a.answeredAt + d.terms.disputeWindow;
        if (block.timestamp > closes) revert DisputeClosed(closes);
        if (d.checks.testRoot == bytes32(0)) revert NoTestSet(a.datasetId);
        if (keccak256(abi.encode(leaves)) != a.leavesDigest) revert LeavesMismatch();
        uint256 sample = dup.sample;
        if (sample >= leaves.length) revert RecordMismatch(sample);
        bytes32 leaf = MerkleInclusion.leafHash(dup.entry);
        if (leaf != leaves[sample]) revert RecordMismatch(sample);
        _requireDuplicate(dup, d.checks, d.terms.saltLength);
        a.status = Status.Failed;
        a.reasonCode = REASON_DUPLICATE;
        a.failedSample = uint16(sample);
        a.evidence = leaf;
        a.prover = msg.sender;
        uint256 index = _sample(a.seed, auditId, sample, d.terms.size);
        emit RecordFailed(auditId, uint16(sample), index, REASON_DUPLICATE, leaf);
    }

    function _requireDuplicate(Duplicate calldata dup, Checks storage c, uint8 saltLength)
        private
        view
    {
        bytes32 testLeaf = MerkleInclusion.leafHash(dup.testEntry);
        if (!MerkleInclusion.verify(dup.testIndex, c.testSize, testLeaf, dup.testProof, c.testRoot))
        {
            revert BadTestProof();
        }
        bytes calldata record = _record(dup.entry, saltLength);
        if (keccak256(record) != keccak256(_record(dup.testEntry, c.testSaltLength))) {
            revert NotDuplicate();
        }
    }

    /// @notice Close an audit: failed (a check, a duplicate, or no answer by the deadline)
    ///         slashes the curators; passed (after the dispute window) rewards them.
    function settle(uint256 auditId) external nonReentrant {
        Audit storage a = _audit(auditId);
        Dataset storage d = _datasets[a.datasetId];
        Status s = a.status;
        if (s == Status.Open) {
            if (a.seed == bytes32(0)) revert NotDrawn(auditId);
            if (block.timestamp <= a.deadline) revert AnswerStillDue(a.deadline);
            a.reasonCode = REASON_NO_ANSWER;
            a.evidence = auditDigest(auditId);
            _fail(auditId, a, d);
        } else if (s == Status.Failed) {
            _fail(auditId, a, d);
        } else if (s == Status.Answered) {
            uint64 closes = a.answeredAt + d.terms.disputeWindow;
            if (block.timestamp <= closes) revert DisputeStillOpen(closes);
            _pass(auditId, a, d);
        } else {
            revert WrongStatus(auditId, s);
        }
        d.openAudit = 0;
    }

    /// @notice Send everything owed to the caller in `asset` to `to`.
    function claim(address asset, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = owed[msg.sender][asset];
        if (amount == 0) revert NothingOwed(msg.sender, asset);
        owed[msg.sender][asset] = 0;
        held[asset] -= amount;
        emit Claimed(msg.sender, asset, to, amount);
        IERC20(asset).safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice Record index of sample `i` of a drawn audit.
    function sampleIndex(uint256 auditId, uint256 i) external view returns (uint256) {
        Audit storage a = _audit(auditId);
        if (a.seed == bytes32(0)) revert NotDrawn(auditId);
        return _sample(a.seed, auditId, i, _datasets[a.datasetId].terms.size);
    }

    /// @notice Record indices of all samples of a drawn audit, in sample order.
    function sampleIndices(uint256 auditId) external view returns (uint256[] memory out) {
        Audit storage a = _audit(auditId);
        if (a.seed == bytes32(0)) revert NotDrawn(auditId);
        uint256 size = _datasets[a.datasetId].terms.size;
        out = new uint256[](a.k);
        for (uint256 i; i < a.k; ++i) {
            out[i] = _sample(a.seed, auditId, i, size);
        }
    }

    /// @notice The evidence hash of an unanswered audit: it binds chain, contract, audit,
    ///         dataset root and seed.
    function auditDigest(uint256 auditId) public view returns (bytes32) {
        Audit storage a = _audits[auditId];
        return keccak256(
            abi.encode(
                block.chainid, address(this), auditId, _datasets[a.datasetId].root, a.seed
            )
        );
    }

    /// @notice The reason code the declared checks give `record` (0: passes).
    function evaluate(bytes32 datasetId, bytes calldata record) external view returns (uint32) {
        return _evaluate(record, _existing(datasetId).checks);
    }

    function getDataset(bytes32 datasetId) external view returns (Dataset memory) {
        return _datasets[datasetId];
    }

    function getAudit(uint256 auditId) external view returns (Audit memory) {
        return _audits[auditId];
    }

    function curatorsOf(bytes32 datasetId) external view returns (address[] memory) {
        return _datasets[datasetId].curators;
    }

    // ---------------------------------------------------------------- internals

    function _existing(bytes32 datasetId) private view returns (Dataset storage d) {
        d = _datasets[datasetId];
        if (d.owner == address(0)) revert UnknownDataset(datasetId);
    }

    function _audit(uint256 auditId) private view returns (Audit storage a) {
        a = _audits[auditId];
        if (a.status == Status.None) revert UnknownAudit(auditId);
    }

    function _fix(uint256 auditId, Audit storage a, bytes32 seed) private {
        a.seed = seed;
        a.deadline = uint64(block.timestamp) + _datasets[a.datasetId].terms.answerWindow;
        emit SampleDrawn(auditId, seed, a.deadline);
    }

    function _sample(bytes32 seed, uint256 auditId, uint256 i, uint256 size)
        private
        pure
        returns (uint256)
    {
        return uint256(keccak256(abi.encode(seed, auditId, i))) % size;
    }

    function _record(bytes calldata entry, uint8 saltLength)
        private
        pure
        returns (bytes calldata)
    {
        if (entry.length < saltLength) return entry[0:0];
        return entry[saltLength:];
    }

    /// @dev 0 when `r` passes every declared check, else the first failing check's reason.
    function _evaluate(bytes calldata r, Checks storage c) private view returns (uint32) {
        uint256 n = r.length;
        if (n < c.minLength || n > c.maxLength) return REASON_LENGTH;
        if (!_startsWith(r, 0, c.prefix)) return REASON_PREFIX;
        bytes memory suffix = c.labelSuffix;
        if (suffix.length == 0) return 0;
        if (n < suffix.length || !_startsWith(r, n - suffix.length, suffix)) return REASON_LABEL;
        uint256 end = n - suffix.length;
        uint256 start = end;
        while (start > 0 && end - start <= MAX_LABEL_DIGITS) {
            uint8 ch = uint8(r[start - 1]);
            if (ch < 0x30 || ch > 0x39) break;
            --start;
        }
        if (start == end || end - start > MAX_LABEL_DIGITS) return REASON_LABEL;
        bytes memory lp = c.labelPrefix;
        if (start < lp.length || !_startsWith(r, start - lp.length, lp)) return REASON_LABEL;
        uint256 label;
        for (uint256 i = start; i < end; ++i) {
            label = label * 10 + (uint8(r[i]) - 0x30);
        }
        if (label < c.labelMin || label > c.labelMax) return REASON_LABEL;
        return 0;
    }

    function _startsWith(bytes calldata r, uint256 at, bytes memory p)
        private
        pure
        returns (bool)
    {
        uint256 m = p.length;
        if (at + m > r.length) return false;
        for (uint256 i; i < m; ++i) {
            if (r[at + i] != p[i]) return false;
        }
        return true;
    }

    function _fail(uint256 auditId, Audit storage a, Dataset storage d) private {
        a.status = Status.Slashed;
        owed[a.challenger][d.terms.asset] += a.bond;
        uint256 total;
        address[] storage curators = d.curators;
        for (uint256 i; i < curators.length; ++i) {
            total += _slashCurator(auditId, a, d, curators[i]);
        }
        d.totalVouched -= total;
        // Curators slashed to nothing leave the list (backwards: removal swaps in the last).
        for (uint256 i = curators.length; i > 0; --i) {
            address c = curators[i - 1];
            if (vouched[a.datasetId][c] == 0) _dropCurator(d, c);
        }
        emit AuditFailed(auditId, a.reasonCode, a.evidence, total);
    }

    /// @dev Slash `slashBps` of curator `c`'s vouch (at most what this contract still holds
    ///      locked of it); fault id = keccak256(auditId, c), once per audit and curator.
    function _slashCurator(uint256 auditId, Audit storage a, Dataset storage d, address c)
        private
        returns (uint256 slashed)
    {
        uint256 mine = vouched[a.datasetId][c];
        uint256 amount = _slashable(d, mine, c);
        if (amount == 0) return 0;
        slashed = _callSlash(c, d.terms.asset, amount, keccak256(abi.encode(auditId, c)), a);
        vouched[a.datasetId][c] = mine - slashed;
        emit CuratorSlashed(auditId, c, slashed);
    }

    function _slashable(Dataset storage d, uint256 mine, address c)
        private
        view
        returns (uint256 amount)
    {
        amount = mine * d.terms.slashBps / BPS;
        uint256 lockedHere = stakes.lockedBy(c, d.terms.asset, address(this));
        if (amount > lockedHere) amount = lockedHere;
    }

    function _callSlash(
        address c,
        address asset,
        uint256 amount,
        bytes32 faultId,
        Audit storage a
    ) private returns (uint256) {
        return stakes.slash(c, asset, amount, faultId, a.reasonCode, a.evidence, a.prover);
    }

    function _pass(uint256 auditId, Audit storage a, Dataset storage d) private {
        a.status = Status.Passed;
        uint256 fromPool = d.terms.auditReward < d.pool ? d.terms.auditReward : d.pool;
        d.pool -= fromPool;
        uint256 reward = fromPool + a.bond;
        uint256 total = d.totalVouched;
        address asset = d.terms.asset;
        uint256 paid;
        address[] storage curators = d.curators;
        for (uint256 i; i < curators.length; ++i) {
            address c = curators[i];
            uint256 share = reward * vouched[a.datasetId][c] / total;
            if (share == 0) continue;
            owed[c][asset] += share;
            paid += share;
            emit CuratorRewarded(auditId, c, share);
        }
        d.pool += reward - paid;
        emit AuditPassed(auditId, paid, reward - paid);
    }

    function _dropCurator(Dataset storage d, address curator) private {
        address[] storage list_ = d.curators;
        uint256 n = list_.length;
        for (uint256 i; i < n; ++i) {
            if (list_[i] == curator) {
                list_[i] = list_[n - 1];
                list_.pop();
                return;
            }
        }
    }

    function _pull(address asset, uint256 amount) private returns (uint256 arrived) {
        IERC20 token = IERC20(asset);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = token.balanceOf(address(this));
        if (afterwards <= before) revert NothingArrived(asset);
        arrived = afterwards - before;
    }
}

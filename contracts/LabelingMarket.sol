// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from
    "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title LabelingMarket
/// @notice Labeling tasks paid from an escrowed reward pool and secured by stake held in a
///         StakeManager, for which this contract is both a registered market (it locks a
///         labeler's stake while a task is open) and a registered judge (it slashes).
///
///         A requester posts a task: the Merkle root of an image batch of `itemCount` items,
///         the RFC 9162 (SHA-256) root of `goldCount` salted gold entries hidden in the batch
///         (leaf data = salt (32 bytes) || record, record = uint32 item index || uint8 label, big
///         endian), a reward pool in an ERC-20 (escrowed now: what arrived is the pool), a minimum
///         stake in the same token, an accuracy threshold in basis points and three deadlines.
///         Labelers join (their stake is locked) and commit
///         keccak256(abi.encode(chainid, market, taskId, labeler, keccak256(labels), salt)) by
///         the commit deadline, then reveal `labels` (one byte per item; 0xff abstains) by the
///         reveal deadline. The commitment binds the labeler: copying another's commitment or
///         revealed labels gives nothing that opens for the copier. The requester then reveals
///         every gold entry with its inclusion proof by the gold deadline; anyone scores a
///         revealed labeler on-chain (correct gold answers, from the labels as revealed); and
///         anyone settles once.
///
///         Settlement: a labeler who did not reveal is slashed (LATE); with the gold revealed, a
///         labeler whose accuracy is below the threshold is slashed (LOW_ACCURACY), the others
///         get their stake unlocked and share the pool in proportion to their correct gold
///         answers (accepted labels); if nobody passes, the pool returns to the requester. If
///         the requester did not reveal the gold by its deadline, every revealing labeler gets
///         the stake back and an equal share of the whole pool. Shares round down; the
///         remainder (less than one wei per payee) goes to the requester, so the shares and
///         the remainder add up to the pool exactly. Everything is paid by pull (`claim`).
///
///         Governance may remove this market's judge or market registration mid-task; the task
///         still settles (nothing stays locked): without the judge role, or once the labeler
///         has released a removed market's lock in the StakeManager, a fault is not slashed
///         but recorded (SlashSkipped) and whatever this market still holds is unlocked.
/// @dev Slashes take only the stake this market locked (at most `minStake`), never free or
///      unbonding stake; the prover is the account that settles, unless it is the slashed
///      labeler or the requester (who chose the gold): then the whole slash goes to the
///      treasury. A labeler's second account can still settle and earn the prover's share of
///      its own slash: the treasury's share is the floor of the penalty. Fault ids are
///      keccak256(taskId, labeler, reason): one slash per labeler and task. Shares are
///      mulDiv(pool, weight, total) (no overflow for any pool). Per token:
///      escrowed == open pools + owed + claimed.
contract LabelingMarket is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint16 public constant BPS = 10_000;
    uint32 public constant LOW_ACCURACY = 1;
    uint32 public constant LATE = 2;
    uint8 public constant ABSTAIN = 0xff;
    uint256 public constant MAX_LABELERS = 64;
    uint256 public constant MAX_ITEMS = 1 << 20;
    uint256 public constant MAX_GOLD = 1024;
    uint256 internal constant RECORD = 5;

    struct Task {
        address requester;
        address token;
        bytes32 batchRoot;
        bytes32 goldRoot;
        uint32 itemCount;
        uint32 goldCount;
        uint16 thresholdBps;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 goldDeadline;
        uint256 pool;
        uint256 minStake;
        bytes32 goldDigest; // keccak256 of the revealed gold records, in leaf order
        bool goldRevealed;
        bool settled;
    }

    struct Labeler {
        bool joined;
        bool revealed;
        bool scored;
        uint32 correct;
        bytes32 hash; // the commitment until the reveal, then keccak256(labels)
    }

    StakeManager public immutable stakes;
    uint256 public taskCount;

    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => address[]) private _labelers;
    mapping(uint256 taskId => mapping(address labeler => Labeler)) private _work;
    mapping(address account => mapping(address token => uint256)) public owed;
    /// @notice Per token: pools escrowed, owed (settled, unclaimed) and claimed.
    mapping(address token => uint256) public escrowed;
    mapping(address token => uint256) public totalOwed;
    mapping(address token => uint256) public claimed;

    error ZeroAddress();
    error ZeroAmount();
    error BadTask();
    error NothingArrived(address token);
    error NoTask(uint256 taskId);
    error TooEarly(uint64 at);
    error TooLate(uint64 deadline);
    error NotRequester(address caller);
    error RequesterCannotLabel();
    error AlreadyJoined(address labeler);
    error NotJoined(address labeler);
    error TaskFull(uint256 max);
    error NoCommitment(address labeler);
    error AlreadyRevealed(address labeler);
    error CommitmentMismatch(address labeler);
    error WrongLabelCount(uint256 got, uint256 expected);
    error LengthMismatch(uint256 labelers, uint256 labels);
    error GoldAlreadyRevealed(uint256 taskId);
    error GoldNotRevealed(uint256 taskId);
    error WrongGoldCount(uint256 got, uint256 expected);
    error BadGoldProof(uint256 leafIndex);
    error GoldIndexOutOfRange(uint256 leafIndex, uint256 itemIndex);
    error GoldMismatch();
    error GoldLabelInvalid(uint256 leafIndex);
    error NotRevealed(address labeler);
    error LabelsMismatch(address labeler);
    error NotScored(address labeler);
    error AlreadySettled(uint256 taskId);
    error NothingOwed(address account, address token);

    event TaskCreated(
        uint256 indexed taskId,
        address indexed requester,
        address indexed token,
        bytes32 batchRoot,
        bytes32 goldRoot,
        uint256 pool,
        uint256 minStake
    );
    event Joined(uint256 indexed taskId, address indexed labeler, uint256 stake);
    event Committed(uint256 indexed taskId, address indexed labeler, bytes32 commitment);
    event Revealed(
        uint256 indexed taskId, address indexed labeler, bytes32 labelsHash, bytes labels
    );
    event GoldRevealed(uint256 indexed taskId, bytes32 goldDigest, bytes records);
    event Scored(
        uint256 indexed taskId, address indexed labeler, uint32 correct, uint32 goldCount
    );
    event LabelerSlashed(
        uint256 indexed taskId,
        address indexed labeler,
        uint32 reasonCode,
        uint256 amount,
        bytes32 faultId,
        bytes32 evidenceHash
    );
    event LabelerPaid(
        uint256 indexed taskId, address indexed labeler, uint256 weight, uint256 reward
    );
    /// @notice A fault that could not be slashed (this market is no longer a registered judge,
    ///         or the labeler released a removed market's lock); `released` was unlocked.
    event SlashSkipped(
        uint256 indexed taskId, address indexed labeler, uint32 reasonCode, uint256 released
    );
    event Settled(
        uint256 indexed taskId,
        bool goldRevealed,
        uint256 paid,
        uint256 slashed,
        uint256 toRequester
    );
    event Claimed(address indexed account, address indexed token, address to, uint256 amount);

    constructor(StakeManager stakes_) {
        if (address(stakes_) == address(0)) revert ZeroAddress();
        stakes = stakes_;
    }

    // ---------------------------------------------------------------- requester

    /// @notice What a requester posts (deadlines are unix times, strictly increasing, the first
    ///         in the future; `thresholdBps` is the minimum gold accuracy that keeps a stake).
    struct TaskParams {
        address token;
        bytes32 batchRoot;
        uint32 itemCount;
        bytes32 goldRoot;
        uint32 goldCount;
        uint256 pool;
        uint256 minStake;
        uint16 thresholdBps;
        uint64 commitDeadline;
        uint64 revealDeadline;
        uint64 goldDeadline;
    }

    /// @notice Post a task and escrow `p.pool` of `p.token` (approved first); the pool is what
    ///         arrived (less for a fee-on-transfer token).
    function createTask(TaskParams calldata p) external nonReentrant returns (uint256 taskId) {
        if (p.token == address(0)) revert ZeroAddress();
        if (p.pool == 0 || p.minStake == 0) revert ZeroAmount();
        if (
            p.itemCount == 0 || p.itemCount > MAX_ITEMS || p.goldCount == 0
                || p.goldCount > MAX_GOLD || p.goldCount > p.itemCount || p.thresholdBps > BPS
                || p.batchRoot == 0 || p.goldRoot == 0 || p.commitDeadline <= block.timestamp
                || p.revealDeadline <= p.commitDeadline || p.goldDeadline <= p.revealDeadline
        ) revert BadTask();
        uint256 arrived = _pull(p.token, p.pool);
        taskId = ++taskCount;
        _tasks[taskId] = Task({
            requester: msg.sender,
            token: p.token,
            batchRoot: p.batchRoot,
            goldRoot: p.goldRoot,
            itemCount: p.itemCount,
            goldCount: p.goldCount,
            thresholdBps: p.thresholdBps,
            commitDeadline: p.commitDeadline,
            revealDeadline: p.revealDeadline,
            goldDeadline: p.goldDeadline,
            pool: arrived,
            minStake: p.minStake,
            goldDigest: 0,
            goldRevealed: false,
            settled: false
        });
        escrowed[p.token] += arrived;
        emit TaskCreated(taskId, msg.sender, p.token, p.batchRoot, p.goldRoot, arrived, p.minStake);
    }

    function _pull(address token, uint256 amount) private returns (uint256 arrived) {
        IERC20 t = IERC20(token);
        uint256 before = t.balanceOf(address(this));
        t.safeTransferFrom(msg.sender, address(this), amount);
        uint256 afterwards = t.balanceOf(address(this));
        if (afterwards <= before) revert NothingArrived(token);
        arrived = afterwards - before;
    }

    /// @notice Reveal every gold entry (in leaf order): `salts[i]` and the 5-byte record
    ///         `records[5i:5i+5]` form leaf `i` of the gold tree, `proofs[i]` its RFC 9162
    ///         inclusion proof. Only the requester, after the reveal deadline and by the gold
    ///         deadline, once.
    function revealGold(
        uint256 taskId,
        bytes32[] calldata salts,
        bytes calldata records,
        bytes32[][] calldata proofs
    ) external {
        Task storage task = _task(taskId);
        if (msg.sender != task.requester) revert NotRequester(msg.sender);
        if (block.timestamp <= task.revealDeadline) revert TooEarly(task.revealDeadline);
        if (block.timestamp > task.goldDeadline) revert TooLate(task.goldDeadline);
        if (task.goldRevealed) revert GoldAlreadyRevealed(taskId);
        uint256 n = task.goldCount;
        if (salts.length != n || proofs.length != n || records.length != n * RECORD) {
            revert WrongGoldCount(salts.length, n);
        }
        bytes32 root = task.goldRoot;
        uint256 items = task.itemCount;
        for (uint256 i; i < n; ++i) {
            bytes5 record = bytes5(records[i * RECORD:i * RECORD + RECORD]);
            uint256 item = uint32(bytes4(record));
            if (item >= items) revert GoldIndexOutOfRange(i, item);
            if (uint8(record[4]) == ABSTAIN) revert GoldLabelInvalid(i);
            bytes32 leaf = sha256(abi.encodePacked(bytes1(0x00), salts[i], record));
            if (!_included(leaf, i, n, proofs[i], root)) revert BadGoldProof(i);
        }
        bytes32 digest = keccak256(records);
        task.goldDigest = digest;
        task.goldRevealed = true;
        emit GoldRevealed(taskId, digest, records);
    }

    // ---------------------------------------------------------------- labelers

    /// @notice Join a task by the commit deadline: `minStake` of the caller's free stake in the
    ///         task's token is locked in the StakeManager until settlement (it reverts there,
    ///         InsufficientFree, when the free stake is short). A nonzero `commitment` commits at
    ///         once (one transaction instead of two).
    function join(uint256 taskId, bytes32 commitment) external {
        Task storage task = _task(taskId);
        if (block.timestamp > task.commitDeadline) revert TooLate(task.commitDeadline);
        if (msg.sender == task.requester) revert RequesterCannotLabel();
        Labeler storage w = _work[taskId][msg.sender];
        if (w.joined) revert AlreadyJoined(msg.sender);
        address[] storage all = _labelers[taskId];
        if (all.length >= MAX_LABELERS) revert TaskFull(MAX_LABELERS);
        w.joined = true;
        all.push(msg.sender);
        emit Joined(taskId, msg.sender, task.minStake);
        if (commitment != 0) {
            w.hash = commitment;
            emit Committed(taskId, msg.sender, commitment);
        }
        stakes.lock(msg.sender, task.token, task.minStake);
    }

    /// @notice Commit (or replace a commitment) by the commit deadline; see `commitmentOf`.
    function commit(uint256 taskId, bytes32 commitment) external {
        Task storage task = _task(taskId);
        if (block.timestamp > task.commitDeadline) revert TooLate(task.commitDeadline);
        Labeler storage w = _work[taskId][msg.sender];
        if (!w.joined) revert NotJoined(msg.sender);
        if (commitment == 0) revert NoCommitment(msg.sender);
        w.hash = commitment;
        emit Committed(taskId, msg.sender, commitment);
    }

    /// @notice Reveal the labels (one byte per item) and the salt of the caller's commitment,
    ///         after the commit deadline and by the reveal deadline.
    function reveal(uint256 taskId, bytes calldata labels, bytes32 salt) external {
        Task storage task = _task(taskId);
        if (block.timestamp <= task.commitDeadline) revert TooEarly(task.commitDeadline);
        if (block.timestamp > task.revealDeadline) revert TooLate(task.revealDeadline);
        Labeler storage w = _work[taskId][msg.sender];
        if (w.hash == 0) revert NoCommitment(msg.sender);
        if (w.revealed) revert AlreadyRevealed(msg.sender);
        if (labels.length != task.itemCount) revert WrongLabelCount(labels.length, task.itemCount);
        bytes32 labelsHash = keccak256(labels);
        if (commitmentOf(taskId, msg.sender, labelsHash, salt) != w.hash) {
            revert CommitmentMismatch(msg.sender);
        }
        w.revealed = true;
        w.hash = labelsHash;
        emit Revealed(taskId, msg.sender, labelsHash, labels);
    }

    /// @notice Score revealed labelers against the revealed gold (anyone may): `labels[k]` as
    ///         `labelers[k]` revealed them, `records` as in `revealGold`. Counts the gold items
    ///         whose label each labeler gave. Several labelers per call share the call's cost.
    function score(
        uint256 taskId,
        address[] calldata labelers,
        bytes[] calldata labels,
        bytes calldata records
    ) external {
        Task storage task = _task(taskId);
        if (task.settled) revert AlreadySettled(taskId);
        if (!task.goldRevealed) revert GoldNotRevealed(taskId);
        if (keccak256(records) != task.goldDigest) revert GoldMismatch();
        if (labels.length != labelers.length) revert LengthMismatch(labelers.length, labels.length);
        uint32 n = task.goldCount;
        for (uint256 k; k < labelers.length; ++k) {
            address labeler = labelers[k];
            Labeler storage w = _work[taskId][labeler];
            if (!w.revealed) revert NotRevealed(labeler);
            bytes calldata mine = labels[k];
            if (keccak256(mine) != w.hash) revert LabelsMismatch(labeler);
            uint32 correct = _correct(mine, records, n);
            w.correct = correct;
            w.scored = true;
            emit Scored(taskId, labeler, correct, n);
        }
    }

    function _correct(bytes calldata labels, bytes calldata records, uint256 n)
        private
        pure
        returns (uint32 correct)
    {
        for (uint256 i; i < n; ++i) {
            uint256 at = i * RECORD;
            uint256 item = uint32(bytes4(records[at:at + 4]));
            if (labels[item] == records[at + 4]) ++correct;
        }
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Settle once: after the reveal deadline when the gold is revealed (every revealed
    ///         labeler scored), else after the gold deadline. See the contract notice.
    function settle(uint256 taskId) external nonReentrant {
        Task storage task = _task(taskId);
        if (task.settled) revert AlreadySettled(taskId);
        bool gold = task.goldRevealed;
        if (block.timestamp <= task.revealDeadline) revert TooEarly(task.revealDeadline);
        if (!gold && block.timestamp <= task.goldDeadline) revert TooEarly(task.goldDeadline);
        task.settled = true;
        address[] storage all = _labelers[taskId];
        uint256 count = all.length;
        uint256[] memory weights = new uint256[](count);
        uint256 total;
        uint256 slashed;
        for (uint256 i; i < count; ++i) {
            address who = all[i];
            Labeler storage w = _work[taskId][who];
            if (!w.revealed) {
                slashed += _slash(taskId, task, who, w, LATE);
                continue;
            }
            if (gold) {
                if (!w.scored) revert NotScored(who);
                if (uint256(w.correct) * BPS < uint256(task.thresholdBps) * task.goldCount) {
                    slashed += _slash(taskId, task, who, w, LOW_ACCURACY);
                    continue;
                }
                weights[i] = w.correct;
            } else {
                weights[i] = 1;
            }
            total += weights[i];
            uint256 held = _held(who, task);
            if (held != 0) stakes.unlock(who, task.token, held);
        }
        uint256 pool = task.pool;
        uint256 paid;
        address token = task.token;
        if (total != 0) {
            for (uint256 i; i < count; ++i) {
                if (weights[i] == 0) continue;
                uint256 reward = Math.mulDiv(pool, weights[i], total);
                paid += reward;
                owed[all[i]][token] += reward;
                emit LabelerPaid(taskId, all[i], weights[i], reward);
            }
        }
        uint256 rest = pool - paid;
        owed[task.requester][token] += rest;
        escrowed[token] -= pool;
        totalOwed[token] += pool;
        emit Settled(taskId, gold, paid, slashed, rest);
    }

    /// @notice Send everything owed to the caller in `token` to `to`.
    function claim(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = owed[msg.sender][token];
        if (amount == 0) revert NothingOwed(msg.sender, token);
        owed[msg.sender][token] = 0;
        totalOwed[token] -= amount;
        claimed[token] += amount;
        emit Claimed(msg.sender, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice The commitment a labeler signs up to: bound to this chain, this market, the
    ///         task and the labeler, over the hash of the labels and a 32-byte salt.
    function commitmentOf(uint256 taskId, address labeler, bytes32 labelsHash, bytes32 salt)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), taskId, labeler, labelsHash, salt));
    }

    function taskOf(uint256 taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    function labelersOf(uint256 taskId) external view returns (address[] memory) {
        return _labelers[taskId];
    }

    function workOf(uint256 taskId, address labeler) external view returns (Labeler memory) {
        return _work[taskId][labeler];
    }

    /// @notice The StakeManager fault id of `reason` for `labeler` in `taskId`.
    function faultId(uint256 taskId, address labeler, uint32 reason)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(taskId, labeler, reason));
    }

    // ---------------------------------------------------------------- internals

    function _task(uint256 taskId) private view returns (Task storage task) {
        task = _tasks[taskId];
        if (task.requester == address(0)) revert NoTask(taskId);
    }

    /// @dev What this market still holds of `who`'s stake for the task: `minStake`, or less
    ///      once the labeler released a removed market's lock.
    function _held(address who, Task storage task) private view returns (uint256) {
        uint256 held = stakes.lockedBy(who, task.token, address(this));
        return held < task.minStake ? held : task.minStake;
    }

    /// @dev Slash what this market holds for the task (or, unable to, unlock it and say so);
    ///      evidence = keccak256 of what the fault was judged on.
    function _slash(uint256 taskId, Task storage task, address who, Labeler storage w, uint32 reason)
        private
        returns (uint256 amount)
    {
        uint256 held = _held(who, task);
        if (held == 0 || !stakes.isJudge(address(this))) {
            if (held != 0) stakes.unlock(who, task.token, held);
            emit SlashSkipped(taskId, who, reason, held);
            return 0;
        }
        address prover =
            msg.sender == who || msg.sender == task.requester ? address(0) : msg.sender;
        bytes32 fault = faultId(taskId, who, reason);
        bytes32 evidence = keccak256(
            abi.encode(
                taskId, who, reason, w.hash, task.goldDigest, w.correct
            )
        );
        amount = stakes.slash(who, task.token, held, fault, reason, evidence, prover);
        emit LabelerSlashed(taskId, who, reason, amount, fault, evidence);
    }

    /// @dev RFC 9162 section 2.1.3.2 inclusion check over SHA-256.
    function _included(
        bytes32 leaf,
        uint256 index,
        uint256 size,
        bytes32[] calldata proof,
        bytes32 root
    ) private pure returns (bool) {
        if (index >= size || proof.length > 64) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leaf;
        for (uint256 i; i < proof.length; ++i) {
            if (sn == 0) return false;
            bytes32 p = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                r = _node(p, r);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = _node(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }
}

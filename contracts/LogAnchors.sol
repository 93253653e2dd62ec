// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleConsistency} from "./lib/MerkleConsistency.sol";

/// @title LogAnchors
/// @notice Anchors checkpoints of transparency logs. A log is named by its origin AND its
///         signing key together (logId = keccak256(abi.encode(origin, signer))), so a key
///         that is not the log's can only register a log of its own, never take the
///         operator's id. A log has a witness set and a threshold k >= 1. `anchor` stores
///         (size, root, block, timestamp, cosigner count, witness epoch, consistency flag)
///         when the log key signed the checkpoint, at least k distinct current witnesses
///         cosigned it, and the size grows. Anyone may submit an anchor: the signatures, not
///         the sender, authorise it.
/// @dev Rules that could weaken a log (its witness set and threshold) change only after
///      CONFIG_DELAY, announced by an event when proposed; the admin hands over in two steps
///      (transfer, then accept by the new admin, as OpenZeppelin's Ownable2Step, but per log).
///      A new log key means a new log id: there is no key rotation in place.
///      Whether an anchor was proven consistent with the anchor before it (RFC 9162) is
///      stored with the anchor; an anchor stored without a proof can be proven later by
///      anyone (`proveConsistency`, or the same checkpoint sent again to `anchorWithProof`).
///      Signed messages are EIP-712 typed data (OpenZeppelin EIP712) in the domain
///      ("ailedger LogAnchors", "1", chainId, this contract):
///        the log key signs    Checkpoint(bytes32 logId,uint64 size,bytes32 root)
///        each witness signs   Cosignature(bytes32 logId,uint64 size,bytes32 root)
///        the log key consents LogRegistration(bytes32 logId,address admin)
///      Distinct type names keep the roles apart. Signatures are checked by OpenZeppelin
///      ECDSA (65 bytes, low s). Cosignatures must be ordered by signer address, strictly
///      ascending, which rejects duplicates in one pass.
contract LogAnchors is EIP712 {
    bytes32 public constant CHECKPOINT_TYPEHASH =
        keccak256("Checkpoint(bytes32 logId,uint64 size,bytes32 root)");
    bytes32 public constant COSIGNATURE_TYPEHASH =
        keccak256("Cosignature(bytes32 logId,uint64 size,bytes32 root)");
    bytes32 public constant REGISTRATION_TYPEHASH =
        keccak256("LogRegistration(bytes32 logId,address admin)");
    uint256 public constant MAX_WITNESSES = 32;
    /// @notice How long a proposed witness set waits before it can take effect.
    uint64 public constant CONFIG_DELAY = 2 days;

    struct Log {
        address admin;
        uint32 threshold;
        uint32 witnessCount;
        uint32 epoch; // the current witness set; 0: no such log
        address signer;
        uint32 pendingThreshold;
        uint32 pendingCount;
        uint32 pendingEpoch; // 0: nothing pending
        address pendingAdmin;
        uint64 pendingAt; // when the pending witness set may take effect
        uint32 epochs; // witness sets ever proposed
    }

    struct Anchor {
        uint64 size;
        uint64 blockNumber;
        uint64 timestamp;
        uint16 cosignatures;
        bool consistencyProven; // with the previous anchor (or the empty tree)
        uint32 witnessEpoch; // the witness set that cosigned
        bytes32 root;
    }

    mapping(bytes32 logId => Log) private _logs;
    mapping(bytes32 logId => mapping(uint32 epoch => mapping(address account => bool))) private
        _witnessIn;
    mapping(bytes32 logId => Anchor[]) private _anchors;

    error LogExists(bytes32 logId);
    error UnknownLog(bytes32 logId);
    error NotLogAdmin(bytes32 logId, address caller);
    error NotPendingAdmin(bytes32 logId, address caller);
    error ZeroAddress();
    error TooManyWitnesses(uint256 count, uint256 max);
    error WitnessExists(bytes32 logId, address witness);
    error NotAWitness(bytes32 logId, address account);
    error WitnessIsLogSigner(bytes32 logId, address account);
    error ThresholdZero();
    error ThresholdTooHigh(uint256 threshold, uint256 witnessCount);
    error NoPendingChange(bytes32 logId);
    error ChangeNotReady(bytes32 logId, uint64 effectiveAt);
    error SizeDecreased(uint64 anchoredSize, uint64 size);
    error AlreadyAnchored(bytes32 logId, uint64 size);
    error AlreadyProven(bytes32 logId, uint256 index);
    error NoSuchAnchor(bytes32 logId, uint256 index);
    error RootConflict(uint64 size, bytes32 anchoredRoot, bytes32 root);
    error NotLogSigner(address recovered, address expected);
    error TooManySignatures(uint256 count, uint256 max);
    error SignersNotAscending(address previous, address signer);
    error ThresholdNotMet(uint256 valid, uint256 threshold);
    error ConsistencyProofInvalid(uint64 oldSize, uint64 size);

    event LogRegistered(
        bytes32 indexed logId, string origin, address indexed admin, address indexed signer
    );
    event LogAdminTransferStarted(
        bytes32 indexed logId, address indexed previousAdmin, address indexed newAdmin
    );
    event LogAdminChanged(bytes32 indexed logId, address previousAdmin, address newAdmin);
    event WitnessSetProposed(
        bytes32 indexed logId,
        uint32 indexed epoch,
        address[] witnesses,
        uint32 threshold,
        uint64 effectiveAt
    );
    event WitnessSetCancelled(bytes32 indexed logId, uint32 indexed epoch);
    event WitnessSetActivated(
        bytes32 indexed logId, uint32 indexed epoch, uint32 threshold, uint32 witnessCount
    );
    event Anchored(
        bytes32 indexed logId,
        uint256 indexed index,
        uint64 size,
        bytes32 root,
        uint256 cosignatures,
        bool consistencyProven
    );
    event ConsistencyProven(bytes32 indexed logId, uint256 indexed index, uint64 oldSize, uint64 size);

    constructor() EIP712("ailedger LogAnchors", "1") {}

    modifier onlyLogAdmin(bytes32 logId) {
        Log storage log = _logs[logId];
        if (log.epoch == 0) revert UnknownLog(logId);
        if (msg.sender != log.admin) revert NotLogAdmin(logId, msg.sender);
        _;
    }

    // --- registration and management ------------------------------------------------------

    /// @notice Register the log named `origin` and signed by `signer` (logId =
    ///         keccak256(abi.encode(origin, signer))); the caller becomes its admin.
    ///         `signerSignature` is the log key's EIP-712 signature of
    ///         LogRegistration(logId, caller). The first witness set takes effect at once.
    function registerLog(
        string calldata origin,
        address signer,
        address[] calldata witnesses,
        uint32 threshold,
        bytes calldata signerSignature
    ) external returns (bytes32 logId) {
        logId = logIdOf(origin, signer);
        Log storage log = _logs[logId];
        if (log.epoch != 0) revert LogExists(logId);
        if (signer == address(0)) revert ZeroAddress();
        address consenting = ECDSA.recoverCalldata(registrationDigest(logId, msg.sender), signerSignature);
        if (consenting != signer) revert NotLogSigner(consenting, signer);
        log.admin = msg.sender;
        log.signer = signer;
        emit LogRegistered(logId, origin, msg.sender, signer);
        uint32 epoch = _newWitnessSet(logId, log, witnesses, threshold);
        emit WitnessSetProposed(logId, epoch, witnesses, threshold, uint64(block.timestamp));
        _activate(logId, log, epoch, threshold, uint32(witnesses.length));
    }

    /// @notice Propose a new witness set and threshold; it may take effect CONFIG_DELAY after
    ///         now (`applyWitnessSet`). Replaces an earlier proposal still pending.
    function proposeWitnessSet(bytes32 logId, address[] calldata witnesses, uint32 threshold)
        external
        onlyLogAdmin(logId)
        returns (uint32 epoch)
    {
        Log storage log = _logs[logId];
        epoch = _newWitnessSet(logId, log, witnesses, threshold);
        uint64 effectiveAt = uint64(block.timestamp) + CONFIG_DELAY;
        log.pendingEpoch = epoch;
        log.pendingThreshold = threshold;
        log.pendingCount = uint32(witnesses.length);
        log.pendingAt = effectiveAt;
        emit WitnessSetProposed(logId, epoch, witnesses, threshold, effectiveAt);
    }

    /// @notice Withdraw the pending witness set.
    function cancelWitnessSet(bytes32 logId) external onlyLogAdmin(logId) {
        Log storage log = _logs[logId];
        uint32 epoch = log.pendingEpoch;
        if (epoch == 0) revert NoPendingChange(logId);
        _clearPending(log);
        emit WitnessSetCancelled(logId, epoch);
    }

    /// @notice Make the pending witness set current, once its delay has passed. Anyone may.
    function applyWitnessSet(bytes32 logId) external {
        Log storage log = _logs[logId];
        if (log.epoch == 0) revert UnknownLog(logId);
        uint32 epoch = log.pendingEpoch;
        if (epoch == 0) revert NoPendingChange(logId);
        if (block.timestamp < log.pendingAt) revert ChangeNotReady(logId, log.pendingAt);
        (uint32 threshold, uint32 count) = (log.pendingThreshold, log.pendingCount);
        _clearPending(log);
        _activate(logId, log, epoch, threshold, count);
    }

    /// @notice Start handing the log over to `newAdmin` (address(0) cancels); it takes over
    ///         when it calls `acceptLogAdmin`.
    function transferLogAdmin(bytes32 logId, address newAdmin) external onlyLogAdmin(logId) {
        _logs[logId].pendingAdmin = newAdmin;
        emit LogAdminTransferStarted(logId, msg.sender, newAdmin);
    }

    function acceptLogAdmin(bytes32 logId) external {
        Log storage log = _logs[logId];
        if (log.epoch == 0) revert UnknownLog(logId);
        if (msg.sender != log.pendingAdmin) revert NotPendingAdmin(logId, msg.sender);
        address previous = log.admin;
        log.admin = msg.sender;
        log.pendingAdmin = address(0);
        emit LogAdminChanged(logId, previous, msg.sender);
    }

    // --- anchoring ------------------------------------------------------------------------

    /// @notice Anchor checkpoint (size, root) of `logId`, signed by the log key and cosigned
    ///         by at least k current witnesses (cosignatures ordered by signer address,
    ///         ascending). Stored as not proven consistent with the previous anchor.
    function anchor(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures
    ) external returns (uint256 index) {
        Anchor[] storage history = _anchors[logId];
        _checkGrowth(logId, history, size, root);
        uint32 epoch = _checkSignatures(logId, size, root, logSignature, cosignatures);
        return _store(logId, history, size, root, cosignatures.length, epoch, false);
    }

    /// @notice As `anchor`, and also verify an RFC 9162 consistency proof (at most 64 hashes)
    ///         from the log's latest anchor (or the empty tree) to (size, root). If (size,
    ///         root) is already the latest anchor but unproven (someone relayed the signatures
    ///         through `anchor` first), the proof marks that anchor proven instead.
    function anchorWithProof(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures,
        bytes32[] calldata proof
    ) external returns (uint256 index) {
        Anchor[] storage history = _anchors[logId];
        if (_unprovenLatest(history, size, root)) {
            index = history.length - 1;
            _prove(logId, history, index, proof);
            return index;
        }
        _checkGrowth(logId, history, size, root);
        _checkExtends(history, size, root, proof);
        uint32 epoch = _checkSignatures(logId, size, root, logSignature, cosignatures);
        return _store(logId, history, size, root, cosignatures.length, epoch, true);
    }

    /// @notice Prove anchor `index` consistent with anchor `index - 1` (or the empty tree).
    ///         Anyone may: the proof, not the sender, is what counts.
    function proveConsistency(bytes32 logId, uint256 index, bytes32[] calldata proof) external {
        Anchor[] storage history = _anchors[logId];
        if (index >= history.length) revert NoSuchAnchor(logId, index);
        if (history[index].consistencyProven) revert AlreadyProven(logId, index);
        _prove(logId, history, index, proof);
    }

    // --- queries --------------------------------------------------------------------------

    function logIdOf(string calldata origin, address signer) public pure returns (bytes32) {
        return keccak256(abi.encode(origin, signer));
    }

    function getLog(bytes32 logId) external view returns (Log memory) {
        return _logs[logId];
    }

    /// @notice Whether `account` is in the log's current witness set.
    function isWitness(bytes32 logId, address account) external view returns (bool) {
        uint32 epoch = _logs[logId].epoch;
        return epoch != 0 && _witnessIn[logId][epoch][account];
    }

    /// @notice Whether `account` is in witness set number `epoch` (current, past or pending).
    function isWitnessIn(bytes32 logId, uint32 epoch, address account) external view returns (bool) {
        return _witnessIn[logId][epoch][account];
    }

    function anchorCount(bytes32 logId) external view returns (uint256) {
        return _anchors[logId].length;
    }

    function anchorAt(bytes32 logId, uint256 index) external view returns (Anchor memory) {
        return _anchors[logId][index];
    }

    /// @notice The latest anchor of `logId` (all zero if there is none).
    function latestAnchor(bytes32 logId) external view returns (Anchor memory a) {
        Anchor[] storage history = _anchors[logId];
        uint256 n = history.length;
        if (n != 0) a = history[n - 1];
    }

    /// @notice The first anchor whose size is at least `size`: it covers every entry below
    ///         `size`. Binary search; found is false when no anchor is that large.
    function findAnchor(bytes32 logId, uint64 size)
        external
        view
        returns (bool found, uint256 index)
    {
        Anchor[] storage history = _anchors[logId];
        uint256 lo = 0;
        uint256 hi = history.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) >> 1;
            if (history[mid].size < size) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return (lo < history.length, lo);
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest the log key signs for (logId, size, root).
    function checkpointDigest(bytes32 logId, uint64 size, bytes32 root)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(CHECKPOINT_TYPEHASH, logId, size, root)));
    }

    /// @notice The EIP-712 digest the log key signs to let `admin` register `logId`.
    function registrationDigest(bytes32 logId, address admin) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REGISTRATION_TYPEHASH, logId, admin)));
    }

    /// @notice The EIP-712 digest each witness signs for (logId, size, root).
    function cosignatureDigest(bytes32 logId, uint64 size, bytes32 root)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(COSIGNATURE_TYPEHASH, logId, size, root)));
    }

    // --- internals ------------------------------------------------------------------------

    /// @dev Validate a witness set and record it as set number `++log.epochs`.
    function _newWitnessSet(
        bytes32 logId,
        Log storage log,
        address[] calldata witnesses,
        uint32 threshold
    ) private returns (uint32 epoch) {
        uint256 n = witnesses.length;
        if (n > MAX_WITNESSES) revert TooManyWitnesses(n, MAX_WITNESSES);
        if (threshold == 0) revert ThresholdZero();
        if (threshold > n) revert ThresholdTooHigh(threshold, n);
        epoch = log.epochs + 1;
        log.epochs = epoch;
        address signer = log.signer;
        mapping(address => bool) storage set = _witnessIn[logId][epoch];
        for (uint256 i = 0; i < n; ++i) {
            address w = witnesses[i];
            if (w == address(0)) revert ZeroAddress();
            if (w == signer) revert WitnessIsLogSigner(logId, w);
            if (set[w]) revert WitnessExists(logId, w);
            set[w] = true;
        }
    }

    function _activate(bytes32 logId, Log storage log, uint32 epoch, uint32 threshold, uint32 count)
        private
    {
        log.epoch = epoch;
        log.threshold = threshold;
        log.witnessCount = count;
        emit WitnessSetActivated(logId, epoch, threshold, count);
    }

    function _clearPending(Log storage log) private {
        log.pendingEpoch = 0;
        log.pendingThreshold = 0;
        log.pendingCount = 0;
        log.pendingAt = 0;
    }

    function _previous(Anchor[] storage history, uint256 index)
        private
        view
        returns (uint64 oldSize, bytes32 oldRoot)
    {
        if (index == 0) return (0, MerkleConsistency.EMPTY_ROOT);
        Anchor storage prev = history[index - 1];
        return (prev.size, prev.root);
    }

    function _unprovenLatest(Anchor[] storage history, uint64 size, bytes32 root)
        private
        view
        returns (bool)
    {
        uint256 n = history.length;
        if (n == 0) return false;
        Anchor storage last = history[n - 1];
        return last.size == size && last.root == root && !last.consistencyProven;
    }

    /// @dev Revert unless `proof` shows (size, root) extends the latest anchor (or the empty
    ///      tree).
    function _checkExtends(
        Anchor[] storage history,
        uint64 size,
        bytes32 root,
        bytes32[] calldata proof
    ) private view {
        (uint64 oldSize, bytes32 oldRoot) = _previous(history, history.length);
        if (!MerkleConsistency.verify(oldSize, size, oldRoot, root, proof)) {
            revert ConsistencyProofInvalid(oldSize, size);
        }
    }

    function _prove(bytes32 logId, Anchor[] storage history, uint256 index, bytes32[] calldata proof)
        private
    {
        Anchor storage a = history[index];
        (uint64 oldSize, bytes32 oldRoot) = _previous(history, index);
        if (!MerkleConsistency.verify(oldSize, a.size, oldRoot, a.root, proof)) {
            revert ConsistencyProofInvalid(oldSize, a.size);
        }
        a.consistencyProven = true;
        emit ConsistencyProven(logId, index, oldSize, a.size);
    }

    function _checkGrowth(bytes32 logId, Anchor[] storage history, uint64 size, bytes32 root)
        private
        view
    {
        if (_logs[logId].epoch == 0) revert UnknownLog(logId);
        uint256 n = history.length;
        if (n == 0) return;
        Anchor storage last = history[n - 1];
        uint64 lastSize = last.size;
        if (size < lastSize) revert SizeDecreased(lastSize, size);
        if (size == lastSize) {
            if (root == last.root) revert AlreadyAnchored(logId, size);
            revert RootConflict(size, last.root, root);
        }
    }

    /// @dev Check the log key's signature and >= threshold ascending current-witness
    ///      cosignatures; return the witness epoch that cosigned.
    function _checkSignatures(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures
    ) private view returns (uint32 epoch) {
        Log storage log = _logs[logId];
        address expected = log.signer;
        address recovered = ECDSA.recoverCalldata(checkpointDigest(logId, size, root), logSignature);
        if (recovered != expected) revert NotLogSigner(recovered, expected);
        uint256 n = cosignatures.length;
        if (n > MAX_WITNESSES) revert TooManySignatures(n, MAX_WITNESSES);
        if (n < log.threshold) revert ThresholdNotMet(n, log.threshold);
        epoch = log.epoch;
        _checkCosignatures(_witnessIn[logId][epoch], logId, cosignatureDigest(logId, size, root), cosignatures);
    }

    function _checkCosignatures(
        mapping(address => bool) storage witnesses,
        bytes32 logId,
        bytes32 digest,
        bytes[] calldata cosignatures
    ) private view {
        address previous = address(0);
        uint256 n = cosignatures.length;
        for (uint256 i = 0; i < n; ++i) {
            address signer = ECDSA.recoverCalldata(digest, cosignatures[i]);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            if (!witnesses[signer]) revert NotAWitness(logId, signer);
            previous = signer;
        }
    }

    function _store(
        bytes32 logId,
        Anchor[] storage history,
        uint64 size,
        bytes32 root,
        uint256 cosignatureCount,
        uint32 epoch,
        bool consistencyProven
    ) private returns (uint256 index) {
        index = history.length;
        history.push(
            Anchor(
                size,
                uint64(block.number),
                uint64(block.timestamp),
                uint16(cosignatureCount),
                consistencyProven,
                epoch,
                root
            )
        );
        emit Anchored(logId, index, size, root, cosignatureCount, consistencyProven);
    }
}

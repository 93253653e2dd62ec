// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "./lib/EIP712.sol";
import {MerkleConsistency} from "./lib/MerkleConsistency.sol";
import {Signatures} from "./lib/Signatures.sol";

/// @title LogAnchors
/// @notice Anchors checkpoints of transparency logs. A log is registered with its signing
///         address, a set of witnesses and a threshold k. `anchor` stores (size, root, block,
///         timestamp) when the log key signed the checkpoint, at least k distinct current
///         witnesses cosigned it, and the size grows. Anyone may submit an anchor: the
///         signatures, not the sender, authorise it.
/// @dev Signed messages are EIP-712 typed data in the domain ("ailedger LogAnchors", "1",
///      chainId, this contract):
///        the log key signs    Checkpoint(bytes32 logId,uint64 size,bytes32 root)
///        each witness signs   Cosignature(bytes32 logId,uint64 size,bytes32 root)
///        the log key consents LogRegistration(bytes32 logId,address admin)
///      so nobody can squat a log's origin with a key that is not the log's. Distinct type
///      names keep the roles apart: a witness signature never passes as the log's, nor
///      the other way round. Cosignatures must be ordered by signer address, strictly
///      ascending, which rejects duplicates in one pass. The same checkpoint anchored twice is
///      a replay and reverts (AlreadyAnchored); an equal size with another root is a fork
///      (RootConflict). Anchors are kept per log in order of growing size, so a verifier finds
///      the first anchor covering a given size by binary search (`findAnchor`).
contract LogAnchors is EIP712 {
    bytes32 public constant CHECKPOINT_TYPEHASH =
        keccak256("Checkpoint(bytes32 logId,uint64 size,bytes32 root)");
    bytes32 public constant COSIGNATURE_TYPEHASH =
        keccak256("Cosignature(bytes32 logId,uint64 size,bytes32 root)");
    bytes32 public constant REGISTRATION_TYPEHASH =
        keccak256("LogRegistration(bytes32 logId,address admin)");
    uint256 public constant MAX_WITNESSES = 32;

    struct Log {
        address admin;
        uint32 witnessCount;
        uint32 threshold;
        address signer;
    }

    struct Anchor {
        uint64 size;
        uint64 blockNumber;
        uint64 timestamp;
        bytes32 root;
    }

    mapping(bytes32 logId => Log) private _logs;
    mapping(bytes32 logId => mapping(address account => bool)) private _isWitness;
    mapping(bytes32 logId => Anchor[]) private _anchors;

    error LogExists(bytes32 logId);
    error UnknownLog(bytes32 logId);
    error NotLogAdmin(bytes32 logId, address caller);
    error ZeroAddress();
    error TooManyWitnesses(uint256 count, uint256 max);
    error WitnessExists(bytes32 logId, address witness);
    error NotAWitness(bytes32 logId, address account);
    error WitnessIsLogSigner(bytes32 logId, address account);
    error ThresholdTooHigh(uint256 threshold, uint256 witnessCount);
    error SizeDecreased(uint64 anchoredSize, uint64 size);
    error AlreadyAnchored(bytes32 logId, uint64 size);
    error RootConflict(uint64 size, bytes32 anchoredRoot, bytes32 root);
    error NotLogSigner(address recovered, address expected);
    error TooManySignatures(uint256 count, uint256 max);
    error SignersNotAscending(address previous, address signer);
    error ThresholdNotMet(uint256 valid, uint256 threshold);
    error ConsistencyProofInvalid(uint64 oldSize, uint64 size);

    event LogRegistered(
        bytes32 indexed logId, string origin, address indexed admin, address signer, uint32 threshold
    );
    event LogAdminChanged(bytes32 indexed logId, address previousAdmin, address newAdmin);
    event LogSignerChanged(bytes32 indexed logId, address previousSigner, address newSigner);
    event WitnessAdded(bytes32 indexed logId, address indexed witness);
    event WitnessRemoved(bytes32 indexed logId, address indexed witness);
    event ThresholdChanged(bytes32 indexed logId, uint32 previousThreshold, uint32 threshold);
    event Anchored(
        bytes32 indexed logId,
        uint256 indexed index,
        uint64 size,
        bytes32 root,
        uint256 cosignatures,
        bool consistencyChecked
    );

    constructor() EIP712("ailedger LogAnchors", "1") {}

    modifier onlyLogAdmin(bytes32 logId) {
        address admin = _logs[logId].admin;
        if (admin == address(0)) revert UnknownLog(logId);
        if (msg.sender != admin) revert NotLogAdmin(logId, msg.sender);
        _;
    }

    // --- registration and management ------------------------------------------------------

    /// @notice Register the log named `origin` (logId = keccak256(origin)); the caller becomes
    ///         its admin. `signerSignature` is the log key's EIP-712 signature of
    ///         LogRegistration(logId, caller).
    function registerLog(
        string calldata origin,
        address signer,
        address[] calldata witnesses,
        uint32 threshold,
        bytes calldata signerSignature
    ) external returns (bytes32 logId) {
        logId = keccak256(bytes(origin));
        if (_logs[logId].admin != address(0)) revert LogExists(logId);
        if (signer == address(0)) revert ZeroAddress();
        bytes32 digest = registrationDigest(logId, msg.sender);
        address consenting = Signatures.recover(digest, signerSignature);
        if (consenting != signer) revert NotLogSigner(consenting, signer);
        uint256 n = witnesses.length;
        if (n > MAX_WITNESSES) revert TooManyWitnesses(n, MAX_WITNESSES);
        if (threshold > n) revert ThresholdTooHigh(threshold, n);
        _logs[logId] = Log(msg.sender, 0, threshold, signer);
        emit LogRegistered(logId, origin, msg.sender, signer, threshold);
        for (uint256 i = 0; i < n; ++i) {
            _addWitness(logId, witnesses[i]);
        }
    }

    function addWitness(bytes32 logId, address witness) external onlyLogAdmin(logId) {
        _addWitness(logId, witness);
    }

    /// @notice Remove a witness; the threshold must still be reachable afterwards.
    function removeWitness(bytes32 logId, address witness) external onlyLogAdmin(logId) {
        if (!_isWitness[logId][witness]) revert NotAWitness(logId, witness);
        Log storage log = _logs[logId];
        uint32 remaining = log.witnessCount - 1;
        if (log.threshold > remaining) revert ThresholdTooHigh(log.threshold, remaining);
        _isWitness[logId][witness] = false;
        log.witnessCount = remaining;
        emit WitnessRemoved(logId, witness);
    }

    function setThreshold(bytes32 logId, uint32 threshold) external onlyLogAdmin(logId) {
        Log storage log = _logs[logId];
        if (threshold > log.witnessCount) revert ThresholdTooHigh(threshold, log.witnessCount);
        emit ThresholdChanged(logId, log.threshold, threshold);
        log.threshold = threshold;
    }

    /// @notice Rotate the log's signing key.
    function setLogSigner(bytes32 logId, address signer) external onlyLogAdmin(logId) {
        if (signer == address(0)) revert ZeroAddress();
        if (_isWitness[logId][signer]) revert WitnessIsLogSigner(logId, signer);
        Log storage log = _logs[logId];
        emit LogSignerChanged(logId, log.signer, signer);
        log.signer = signer;
    }

    function setLogAdmin(bytes32 logId, address admin) external onlyLogAdmin(logId) {
        if (admin == address(0)) revert ZeroAddress();
        emit LogAdminChanged(logId, msg.sender, admin);
        _logs[logId].admin = admin;
    }

    // --- anchoring ------------------------------------------------------------------------

    /// @notice Anchor checkpoint (size, root) of `logId`, signed by the log key and cosigned
    ///         by at least k witnesses (cosignatures ordered by signer address, ascending).
    function anchor(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures
    ) external returns (uint256 index) {
        Anchor[] storage history = _anchors[logId];
        _checkGrowth(logId, history, size, root);
        _checkSignatures(logId, size, root, logSignature, cosignatures);
        return _store(logId, history, size, root, cosignatures.length, false);
    }

    /// @notice As `anchor`, and also verify an RFC 9162 consistency proof (at most 64 hashes)
    ///         from the log's latest anchor (or the empty tree) to (size, root).
    function anchorWithProof(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures,
        bytes32[] calldata proof
    ) external returns (uint256 index) {
        Anchor[] storage history = _anchors[logId];
        _checkGrowth(logId, history, size, root);
        uint64 oldSize = 0;
        bytes32 oldRoot = MerkleConsistency.EMPTY_ROOT;
        uint256 n = history.length;
        if (n != 0) {
            oldSize = history[n - 1].size;
            oldRoot = history[n - 1].root;
        }
        if (!MerkleConsistency.verify(oldSize, size, oldRoot, root, proof)) {
            revert ConsistencyProofInvalid(oldSize, size);
        }
        _checkSignatures(logId, size, root, logSignature, cosignatures);
        return _store(logId, history, size, root, cosignatures.length, true);
    }

    // --- queries --------------------------------------------------------------------------

    function logIdOf(string calldata origin) external pure returns (bytes32) {
        return keccak256(bytes(origin));
    }

    function getLog(bytes32 logId) external view returns (Log memory) {
        return _logs[logId];
    }

    function isWitness(bytes32 logId, address account) external view returns (bool) {
        return _isWitness[logId][account];
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

    /// @notice The EIP-712 digest the log key signs for (logId, size, root).
    function checkpointDigest(bytes32 logId, uint64 size, bytes32 root)
        public
        view
        returns (bytes32)
    {
        return _hashTypedData(keccak256(abi.encode(CHECKPOINT_TYPEHASH, logId, size, root)));
    }

    /// @notice The EIP-712 digest the log key signs to let `admin` register `logId`.
    function registrationDigest(bytes32 logId, address admin) public view returns (bytes32) {
        return _hashTypedData(keccak256(abi.encode(REGISTRATION_TYPEHASH, logId, admin)));
    }

    /// @notice The EIP-712 digest each witness signs for (logId, size, root).
    function cosignatureDigest(bytes32 logId, uint64 size, bytes32 root)
        public
        view
        returns (bytes32)
    {
        return _hashTypedData(keccak256(abi.encode(COSIGNATURE_TYPEHASH, logId, size, root)));
    }

    // --- internals ------------------------------------------------------------------------

    function _addWitness(bytes32 logId, address witness) private {
        if (witness == address(0)) revert ZeroAddress();
        Log storage log = _logs[logId];
        if (witness == log.signer) revert WitnessIsLogSigner(logId, witness);
        if (_isWitness[logId][witness]) revert WitnessExists(logId, witness);
        if (log.witnessCount >= MAX_WITNESSES) {
            revert TooManyWitnesses(uint256(log.witnessCount) + 1, MAX_WITNESSES);
        }
        _isWitness[logId][witness] = true;
        log.witnessCount += 1;
        emit WitnessAdded(logId, witness);
    }

    function _checkGrowth(bytes32 logId, Anchor[] storage history, uint64 size, bytes32 root)
        private
        view
    {
        if (_logs[logId].admin == address(0)) revert UnknownLog(logId);
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

    function _checkSignatures(
        bytes32 logId,
        uint64 size,
        bytes32 root,
        bytes calldata logSignature,
        bytes[] calldata cosignatures
    ) private view {
        Log storage log = _logs[logId];
        address expected = log.signer;
        address recovered = Signatures.recover(checkpointDigest(logId, size, root), logSignature);
        if (recovered != expected) revert NotLogSigner(recovered, expected);

        uint256 n = cosignatures.length;
        if (n > MAX_WITNESSES) revert TooManySignatures(n, MAX_WITNESSES);
        bytes32 digest = cosignatureDigest(logId, size, root);
        mapping(address => bool) storage witnesses = _isWitness[logId];
        address previous = address(0);
        for (uint256 i = 0; i < n; ++i) {
            address signer = Signatures.recover(digest, cosignatures[i]);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            if (!witnesses[signer]) revert NotAWitness(logId, signer);
            previous = signer;
        }
        if (n < log.threshold) revert ThresholdNotMet(n, log.threshold);
    }

    function _store(
        bytes32 logId,
        Anchor[] storage history,
        uint64 size,
        bytes32 root,
        uint256 cosignatureCount,
        bool consistencyChecked
    ) private returns (uint256 index) {
        index = history.length;
        history.push(Anchor(size, uint64(block.number), uint64(block.timestamp), root));
        emit Anchored(logId, index, size, root, cosignatureCount, consistencyChecked);
    }
}

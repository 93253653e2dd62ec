// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {LogAnchors} from "../../contracts/LogAnchors.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives one log through anchors (honest, short of cosignatures, with outsiders, with
///         a wrong log key, shrinking or repeating sizes) and witness-set changes (proposed,
///         cancelled, applied early or late, with threshold 0 or above the set). Keeps its own
///         model (ghost) of what the contract should accept and counts every disagreement.
contract LogAnchorsHandler is Cheats {
    uint256 internal constant LOG_KEY = 0xA11CE;
    uint256 internal constant OUTSIDER_KEY = 0xBAD;
    uint256 internal constant POOL = 6; // witness keys 101..106

    LogAnchors public immutable anchors;
    bytes32 public immutable logId;

    // Ghost model.
    uint32 public ghostEpoch = 1;
    uint32 public ghostThreshold = 3;
    mapping(uint32 epoch => mapping(address => bool)) public ghostWitness;
    mapping(uint32 epoch => uint32) public ghostThresholdOf;
    uint32 public ghostPendingEpoch;
    uint256 public ghostPendingAt;
    uint32 public ghostEpochs = 1;
    uint64 public ghostMaxSize;
    /// @dev Per stored anchor: the witness epoch in force and the cosigners the handler sent.
    uint32[] public anchorEpoch;
    address[][] internal _anchorCosigners;

    uint256 public violations;
    string public lastViolation;
    uint256 public anchorsStored;
    uint256 public anchorsRefused;
    uint256 public setsApplied;

    constructor() {
        anchors = new LogAnchors();
        address[] memory witnesses = new address[](5);
        for (uint256 i = 0; i < 5; ++i) {
            witnesses[i] = vm.addr(101 + i);
            ghostWitness[1][witnesses[i]] = true;
        }
        ghostThresholdOf[1] = 3;
        string memory origin = "example.com/log";
        bytes32 id = anchors.logIdOf(origin, vm.addr(LOG_KEY));
        bytes memory consent = signature(LOG_KEY, anchors.registrationDigest(id, address(this)));
        logId = anchors.registerLog(origin, vm.addr(LOG_KEY), witnesses, 3, consent);
    }

    function _violation(string memory what) internal {
        violations += 1;
        lastViolation = what;
    }

    /// @dev Keys picked by `mask` from the pool (plus the outsider), sorted by address.
    function _keys(uint256 mask, bool outsider) internal pure returns (uint256[] memory keys) {
        uint256 count = outsider ? 1 : 0;
        for (uint256 i = 0; i < POOL; ++i) {
            if (mask & (1 << i) != 0) ++count;
        }
        keys = new uint256[](count);
        uint256 k = 0;
        for (uint256 i = 0; i < POOL; ++i) {
            if (mask & (1 << i) != 0) keys[k++] = 101 + i;
        }
        if (outsider) keys[k] = OUTSIDER_KEY;
        // Insertion sort by address (at most 7 keys).
        for (uint256 i = 1; i < count; ++i) {
            uint256 key = keys[i];
            uint256 j = i;
            while (j > 0 && vm.addr(keys[j - 1]) > vm.addr(key)) {
                keys[j] = keys[j - 1];
                --j;
            }
            keys[j] = key;
        }
    }

    /// @dev attack % 8: 0-4 an honest attempt (0-2 with at least three pool keys), 5 adds an
    ///      outsider's cosignature, 6 signs the checkpoint with a key that is not the log's,
    ///      7 sends the cosignatures out of order.
    function anchor(uint256 sizeSeed, uint256 mask, uint8 attack) external {
        bool outsider = attack % 8 == 5;
        bool wrongLogKey = attack % 8 == 6;
        bool reversed = attack % 8 == 7;
        // Mostly growing (by 1..8), sometimes the same size or smaller (by up to 3).
        uint256 step = bound(sizeSeed, 0, 11);
        uint256 base = uint256(ghostMaxSize) + step;
        uint64 size = uint64(base >= 3 ? base - 3 : 0);
        bytes32 root = keccak256(abi.encode("root", size));
        // Honest attempts 0-2 use at least three pool keys (most thresholds are met).
        uint256[] memory keys = _keys(attack % 8 < 3 ? mask | 7 : mask, outsider);
        if (reversed && keys.length > 1) {
            (keys[0], keys[keys.length - 1]) = (keys[keys.length - 1], keys[0]);
        }
        bytes32 cosigned = anchors.cosignatureDigest(logId, size, root);
        bytes[] memory cosignatures = new bytes[](keys.length);
        address[] memory cosigners = new address[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            cosignatures[i] = signature(keys[i], cosigned);
            cosigners[i] = vm.addr(keys[i]);
        }
        uint256 logKey = wrongLogKey ? OUTSIDER_KEY : LOG_KEY;
        bytes memory logSignature = signature(logKey, anchors.checkpointDigest(logId, size, root));
        bool expected = _acceptable(size, cosigners) && !wrongLogKey;
        try anchors.anchor(logId, size, root, logSignature, cosignatures) returns (uint256 index) {
            anchorsStored += 1;
            if (index != anchorEpoch.length) _violation("anchor index");
            if (wrongLogKey) _violation("anchor without the log key");
            if (size <= ghostMaxSize && anchorEpoch.length != 0) _violation("size did not grow");
            if (cosigners.length < ghostThreshold) _violation("fewer cosigners than threshold");
            for (uint256 i = 0; i < cosigners.length; ++i) {
                if (!ghostWitness[ghostEpoch][cosigners[i]]) _violation("cosigner not a witness");
                if (i != 0 && cosigners[i] <= cosigners[i - 1]) _violation("cosigners unsorted");
            }
            ghostMaxSize = size;
            anchorEpoch.push(ghostEpoch);
            _anchorCosigners.push(cosigners);
        } catch {
            if (expected) _violation("honest anchor refused");
            anchorsRefused += 1;
        }
    }

    /// @dev Whether the model accepts (size, cosigners) now: the size grows (any size for the
    ///      first anchor), at least the threshold of distinct current witnesses in ascending
    ///      order.
    function _acceptable(uint64 size, address[] memory cosigners) internal view returns (bool) {
        if (anchorEpoch.length != 0 && size <= ghostMaxSize) return false;
        if (cosigners.length < ghostThreshold) return false;
        for (uint256 i = 0; i < cosigners.length; ++i) {
            if (!ghostWitness[ghostEpoch][cosigners[i]]) return false;
            if (i != 0 && cosigners[i] <= cosigners[i - 1]) return false;
        }
        return true;
    }

    function proposeWitnessSet(uint256 mask, bool outsider, uint32 thresholdSeed) external {
        uint256[] memory keys = _keys(mask, outsider);
        address[] memory witnesses = new address[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            witnesses[i] = vm.addr(keys[i]);
        }
        uint32 threshold = uint32(bound(thresholdSeed, 0, keys.length + 1));
        try anchors.proposeWitnessSet(logId, witnesses, threshold) returns (uint32 epoch) {
            if (threshold == 0 || threshold > keys.length) _violation("bad threshold accepted");
            ghostEpochs += 1;
            if (epoch != ghostEpochs) _violation("witness epoch numbering");
            for (uint256 i = 0; i < witnesses.length; ++i) {
                ghostWitness[epoch][witnesses[i]] = true;
            }
            ghostThresholdOf[epoch] = threshold;
            ghostPendingEpoch = epoch;
            ghostPendingAt = block.timestamp + anchors.CONFIG_DELAY();
        } catch {
            if (threshold != 0 && threshold <= keys.length) _violation("good witness set refused");
        }
    }

    function cancelWitnessSet() external {
        try anchors.cancelWitnessSet(logId) {
            if (ghostPendingEpoch == 0) _violation("cancelled nothing");
            ghostPendingEpoch = 0;
        } catch {}
    }

    function applyWitnessSet() external {
        try anchors.applyWitnessSet(logId) {
            if (ghostPendingEpoch == 0) _violation("applied nothing");
            if (block.timestamp < ghostPendingAt) {
                _violation("witness set applied before its delay");
            }
            setsApplied += 1;
            ghostEpoch = ghostPendingEpoch;
            ghostThreshold = ghostThresholdOf[ghostEpoch];
            ghostPendingEpoch = 0;
        } catch {
            if (ghostPendingEpoch != 0 && block.timestamp >= ghostPendingAt) {
                _violation("due witness set refused");
            }
        }
    }

    /// @dev An outsider tries to propose (only the admin may).
    function proposeAsOutsider(uint256 mask) external {
        uint256[] memory keys = _keys(mask | 1, true);
        address[] memory witnesses = new address[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            witnesses[i] = vm.addr(keys[i]);
        }
        vm.prank(vm.addr(OUTSIDER_KEY));
        try anchors.proposeWitnessSet(logId, witnesses, 1) {
            _violation("outsider changed the witness set");
        } catch {}
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 3 days));
        vm.roll(block.number + 1);
    }

    function anchorCount() external view returns (uint256) {
        return anchorEpoch.length;
    }

    function cosignersOf(uint256 index) external view returns (address[] memory) {
        return _anchorCosigners[index];
    }
}

contract LogAnchorsInvariantTest is InvariantBase {
    LogAnchorsHandler internal handler;
    LogAnchors internal anchors;
    bytes32 internal logId;

    function setUp() public {
        handler = new LogAnchorsHandler();
        anchors = handler.anchors();
        logId = handler.logId();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](7);
        selectors[0] = LogAnchorsHandler.anchor.selector;
        selectors[1] = LogAnchorsHandler.proposeWitnessSet.selector;
        selectors[2] = LogAnchorsHandler.cancelWitnessSet.selector;
        selectors[3] = LogAnchorsHandler.applyWitnessSet.selector;
        selectors[4] = LogAnchorsHandler.proposeAsOutsider.selector;
        selectors[5] = LogAnchorsHandler.warp.selector;
        selectors[6] = LogAnchorsHandler.anchor.selector; // anchors twice as often
        targetSelector(address(handler), selectors);
    }

    /// @notice The contract accepted nothing the model refuses and refused nothing it accepts.
    function invariant_modelAgrees() public view {
        if (handler.violations() != 0) revert AssertionFailed(handler.lastViolation());
    }

    /// @notice An anchored size never shrinks: sizes grow strictly along the history, and the
    ///         latest is the largest ever anchored.
    function invariant_anchoredSizeNeverShrinks() public view {
        uint256 n = anchors.anchorCount(logId);
        checkEq(n, handler.anchorCount(), "anchor count");
        uint64 previous = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint64 size = anchors.anchorAt(logId, i).size;
            check(i == 0 || size > previous, "anchored size shrank or repeated");
            previous = size;
        }
        checkEq(anchors.latestAnchor(logId).size, handler.ghostMaxSize(), "latest size");
    }

    /// @notice Every anchor was cosigned by at least the threshold of distinct witnesses of the
    ///         witness set in force when it was anchored.
    function invariant_everyAnchorHasThresholdWitnesses() public view {
        uint256 n = anchors.anchorCount(logId);
        for (uint256 i = 0; i < n; ++i) {
            LogAnchors.Anchor memory a = anchors.anchorAt(logId, i);
            uint32 epoch = handler.anchorEpoch(i);
            checkEq(a.witnessEpoch, epoch, "anchor witness epoch");
            address[] memory cosigners = handler.cosignersOf(i);
            checkEq(a.cosignatures, cosigners.length, "stored cosignature count");
            check(a.cosignatures >= handler.ghostThresholdOf(epoch), "below threshold");
            check(a.cosignatures >= 1, "anchor without witnesses");
            for (uint256 j = 0; j < cosigners.length; ++j) {
                check(anchors.isWitnessIn(logId, epoch, cosigners[j]), "cosigner not a witness");
                check(j == 0 || cosigners[j] > cosigners[j - 1], "cosigner counted twice");
            }
        }
    }

    /// @notice The witness rules in force are sane (k >= 1, k <= n) and the model's.
    function invariant_witnessRules() public view {
        LogAnchors.Log memory log = anchors.getLog(logId);
        check(log.threshold >= 1, "threshold zero");
        check(log.threshold <= log.witnessCount, "threshold above the witness count");
        checkEq(log.epoch, handler.ghostEpoch(), "witness epoch");
        checkEq(log.threshold, handler.ghostThreshold(), "threshold");
    }
}

/// @notice Fuzz tests of LogAnchors' signature paths.
contract LogAnchorsSignatureFuzzTest is Cheats {
    uint256 internal constant LOG_KEY = 0xA11CE;
    LogAnchors internal anchors;
    bytes32 internal logId;
    address[] internal witnesses;

    function setUp() public {
        anchors = new LogAnchors();
        for (uint256 i = 0; i < 3; ++i) {
            witnesses.push(vm.addr(101 + i));
        }
        bytes32 id = anchors.logIdOf("log", vm.addr(LOG_KEY));
        logId = anchors.registerLog(
            "log",
            vm.addr(LOG_KEY),
            witnesses,
            1,
            signature(LOG_KEY, anchors.registrationDigest(id, address(this)))
        );
    }

    function _key(uint256 seed) internal pure returns (uint256) {
        // A valid secp256k1 private key.
        return bound(seed, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
    }

    /// @notice A key that is not the log's can register only its own log id, never the
    ///         operator's (log squatting).
    function testFuzz_registrationNeedsTheLogKey(uint256 squatterSeed) public {
        uint256 squatter = _key(squatterSeed);
        vm.assume(squatter != LOG_KEY);
        bytes32 operatorId = anchors.logIdOf("operator.example/log", vm.addr(LOG_KEY));
        bytes memory consent =
            signature(squatter, anchors.registrationDigest(operatorId, address(this)));
        vm.expectRevert(
            abi.encodeWithSelector(
                LogAnchors.NotLogSigner.selector, vm.addr(squatter), vm.addr(LOG_KEY)
            )
        );
        anchors.registerLog("operator.example/log", vm.addr(LOG_KEY), witnesses, 1, consent);
    }

    /// @notice A checkpoint signed by any key but the log's is refused.
    function testFuzz_checkpointNeedsTheLogKey(uint256 keySeed, uint64 size, bytes32 root) public {
        uint256 key = _key(keySeed);
        vm.assume(key != LOG_KEY && size != 0);
        bytes[] memory cosignatures = new bytes[](1);
        cosignatures[0] = signature(101, anchors.cosignatureDigest(logId, size, root));
        bytes memory logSignature = signature(key, anchors.checkpointDigest(logId, size, root));
        vm.expectRevert(
            abi.encodeWithSelector(LogAnchors.NotLogSigner.selector, vm.addr(key), vm.addr(LOG_KEY))
        );
        anchors.anchor(logId, size, root, logSignature, cosignatures);
    }

    /// @notice A cosignature by a non-witness, or a malleated (high-s) copy of a witness's, is
    ///         refused; the honest one is accepted.
    function testFuzz_cosignatures(uint256 keySeed, uint64 size, bytes32 root) public {
        uint256 key = _key(keySeed);
        vm.assume(key < 101 || key > 103);
        vm.assume(size != 0);
        bytes32 digest = anchors.cosignatureDigest(logId, size, root);
        bytes memory logSignature = signature(LOG_KEY, anchors.checkpointDigest(logId, size, root));
        bytes[] memory cosignatures = new bytes[](1);
        cosignatures[0] = signature(key, digest);
        vm.expectRevert(
            abi.encodeWithSelector(LogAnchors.NotAWitness.selector, logId, vm.addr(key))
        );
        anchors.anchor(logId, size, root, logSignature, cosignatures);
        cosignatures[0] = malleate(signature(101, digest));
        vm.expectRevert();
        anchors.anchor(logId, size, root, logSignature, cosignatures);
        cosignatures[0] = signature(101, digest);
        anchors.anchor(logId, size, root, logSignature, cosignatures);
        check(anchors.latestAnchor(logId).size == size, "honest anchor stored");
    }

    /// @notice A cosignature made for another log, size or root does not count.
    function testFuzz_cosignatureBindsTheCheckpoint(uint64 size, bytes32 root, bytes32 other)
        public
    {
        vm.assume(size != 0 && other != root);
        bytes memory logSignature = signature(LOG_KEY, anchors.checkpointDigest(logId, size, root));
        bytes[] memory cosignatures = new bytes[](1);
        cosignatures[0] = signature(101, anchors.cosignatureDigest(logId, size, other));
        vm.expectRevert();
        anchors.anchor(logId, size, root, logSignature, cosignatures);
    }
}

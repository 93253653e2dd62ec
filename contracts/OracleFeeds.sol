// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title OracleFeeds
/// @notice Feeds of AI scores reported by a configured set of n oracles with fault tolerance f
///         (n >= 3f+1, f >= 1, n <= 31) and sent by the feed's configured transmitters.
///
///         A feed's id is keccak256(abi.encode(creator, label)): a feed lives in its creator's
///         namespace, so nobody can create (squat) an id that another account's feed will
///         have, and the creator, who alone configures the feed, is part of its id and never
///         changes. A configuration (oracle set, transmitters, f, bounds, max age) is
///         immutable once written and named by its config digest; a new one takes effect
///         `configDelay` seconds after it is proposed (visible in `getFeed` and `getConfig`),
///         and every round records the config version it was accepted under. Settlement
///         contracts pin (feed id, config digest) when a policy is written and settle only on
///         rounds of that config (`configDigestAt`).
///
///         Storage per round is one slot (answer, observation time, config version), the
///         gas floor OCR2 also pays, plus one for accountability (`acceptedReport`, below).
///         The round's input root and model digest travel in its
///         ReportAccepted event and are committed in storage through the feed's rounds head,
///         a hash chain over every accepted round:
///           head_e = bytes24(keccak256(abi.encode(head_{e'}, epoch, answer,
///                    observationsTimestamp, configVersion, inputRoot, modelDigest)))
///         (e' the feed's previous round, head 0 before the first). Replaying a feed's
///         ReportAccepted events in epoch order must reproduce `getFeed(feedId).roundsHead`;
///         a missing, altered or invented event does not. Observation and signature counts
///         are not stored (the transaction's calldata holds them).
///
///         What a report proves: a report carries at least 2f+1 observations with the index of
///         the oracle each is attributed to, and at least f+1 distinct configured oracles sign
///         the whole report (values, attribution, input root, model, time). Each observation
///         also carries its observer's own EIP-712 signature over
///           Observation(feedId, configDigest, epoch, value, observationsTimestamp, inputRoot,
///                       modelDigest)
///         which `transmit` verifies (`observationSignatures`, one per observation, in
///         observation order): so observations[i] is what the oracle at observers[i] signed,
///         and f+1 colluding signers can no longer attribute values to oracles that did not
///         observe them. Every accepted report's EIP-712 struct hash (its first 24 bytes)
///         and the time it was accepted are stored in one more slot per round
///         (`acceptedReport`), so a judge (contracts/OracleJudge.sol) can check that an
///         observation it is shown was part of the stored round (same input root, model and
///         time), and count its challenge window from the acceptance, before it slashes the
///         oracle that signed it.
/// @dev Each oracle signs EIP-712 typed data in the domain ("ailedger OracleFeeds", "1",
///      chainId, this contract), via OpenZeppelin's EIP712 and ECDSA (low-s, 65 bytes):
///        Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,
///               bytes observers,bytes32 inputRoot,bytes32 modelDigest,
///               uint64 observationsTimestamp)
///      configDigest = keccak256(abi.encode(chainid, this, feedId, configVersion, signers))
///      with the signer set sorted ascending. Epochs grow strictly per feed, by at most
///      MAX_EPOCH_STEP per report; signatures are ordered by signer address, strictly
///      ascending (no duplicates); every observation lies within [minAnswer, maxAnswer],
///      bounds that fit int192 (so does the answer); a report older than maxAge seconds, or
///      from the future, is stale.
///
///      Gas: `transmit` reads four storage slots (the feed's versions, the sender's transmitter
///      entry, the feed's epoch and head, the fresh round) whatever n and f are. The signer
///      set and the values a report is checked against (f, bounds, max age) travel in its
///      calldata and must hash to the configuration's commitment, which is stored once per
///      transmitter of that configuration (so one slot admits the sender and pins the
///      configuration; `configCommitmentOf`):
///        commitment = keccak256(configDigest || f || minAnswer || maxAnswer || maxAge ||
///                               signers[0] || ... || signers[n-1])   (32-byte words)
///      Calldata costs about 370 gas per signer and 600 for the values, where storage cost
///      2,100 per cold slot: the config's two value slots, its digest and one membership
///      slot per signature (measured: benchmarks/RESULTS.md). Each observation's own
///      signature costs about 6,600 gas more (an ecrecover, its struct hash, 65 bytes of
///      calldata), and the accepted-report slot 22,100 per round: verifying them here rather
///      than only on a challenge keeps every stored median made of self-signed observations.
contract OracleFeeds is EIP712 {
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,"
        "bytes observers,bytes32 inputRoot,bytes32 modelDigest,uint64 observationsTimestamp)"
    );
    bytes32 public constant OBSERVATION_TYPEHASH = keccak256(
        "Observation(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256 value,"
        "uint64 observationsTimestamp,bytes32 inputRoot,bytes32 modelDigest)"
    );
    uint256 public constant MAX_ORACLES = 31;
    uint8 public constant MIN_FAULT_TOLERANCE = 1;
    uint64 public constant MAX_EPOCH_STEP = 1000;

    /// @notice Seconds between proposing a configuration and its taking effect.
    uint32 public immutable configDelay;

    /// @dev Two slots: (creator, versions) and (latestEpoch, roundsHead), the second written
    ///      by every report.
    struct Feed {
        address creator;
        uint32 configCount;
        uint32 activeVersion;
        uint32 pendingVersion;
        uint64 latestEpoch;
        bytes24 roundsHead;
    }

    struct Config {
        bytes32 configDigest;
        uint8 n;
        uint8 f;
        uint32 maxAge;
        uint64 activatesAt;
        int256 minAnswer;
        int256 maxAnswer;
    }

    /// @dev One slot. configVersion is never 0 for an accepted round.
    struct Round {
        int192 answer;
        uint32 observationsTimestamp;
        uint32 configVersion;
    }

    /// @dev Config as stored: three slots (read by the views; `transmit` is given the values
    ///      in calldata and checks them against the commitment).
    struct StoredConfig {
        bytes32 configDigest;
        int192 minAnswer;
        uint8 n;
        uint8 f;
        uint32 maxAge;
        int192 maxAnswer;
        uint64 activatesAt;
    }

    /// @dev The configuration values a report is checked against, passed to `transmit` with
    ///      the signer set (calldata is cheaper than the cold storage reads it replaces) and
    ///      checked against the stored config commitment.
    struct ConfigParams {
        uint8 f;
        int256 minAnswer;
        int256 maxAnswer;
        uint32 maxAge;
    }

    /// @dev What a report says; signatures travel next to it.
    struct Report {
        bytes32 feedId;
        bytes32 configDigest;
        uint64 epoch;
        int256[] observations;
        bytes observers;
        bytes32 inputRoot;
        bytes32 modelDigest;
        uint64 observationsTimestamp;
    }

    mapping(bytes32 feedId => Feed) private _feeds;
    mapping(bytes32 feedId => mapping(uint32 version => StoredConfig)) private _configs;
    /// @dev 1 + the oracle's index in the config of that version; 0 for outsiders (`isOracle`).
    mapping(bytes32 feedId => mapping(uint32 version => mapping(address => uint8))) private
        _slot;
    /// @dev The config commitment of that version (`configCommitmentOf`) for each of its
    ///      transmitters; zero for everyone else. The one slot `transmit` reads to check
    ///      both the sender and the configuration it was given.
    mapping(bytes32 feedId => mapping(uint32 version => mapping(address => bytes32))) private
        _transmitter;
    mapping(bytes32 feedId => mapping(uint32 version => address[])) private _signers;
    mapping(bytes32 feedId => mapping(uint32 version => address[])) private _transmitters;
    mapping(bytes32 feedId => mapping(uint64 epoch => Round)) private _rounds;
    /// @dev One slot per accepted round: the first 24 bytes of the report's EIP-712 struct
    ///      hash (a second preimage costs 2^192 work; a collision 2^96, and would need an
    ///      honest oracle's signature over the twin) and the block time it was accepted.
    struct Accepted {
        bytes24 reportHash;
        uint64 acceptedAt;
    }

    mapping(bytes32 feedId => mapping(uint64 epoch => Accepted)) private _accepted;
    /// @dev A config digest commits to chain, contract, feed and version: unique.
    mapping(bytes32 configDigest => uint32 version) private _versionOfDigest;

    error FeedExists(bytes32 feedId);
    error UnknownFeed(bytes32 feedId);
    error NotFeedCreator(bytes32 feedId, address caller);
    error UnknownConfig(bytes32 feedId, bytes32 configDigest);
    error ZeroAddress();
    error BadOracleCount(uint256 n, uint256 f);
    error BadTransmitterCount(uint256 count);
    error BadBounds(int256 minAnswer, int256 maxAnswer);
    error SignersNotAscending(address previous, address signer);
    error TransmittersNotAscending(address previous, address transmitter);
    error NotATransmitter(address caller);
    error ConfigDigestMismatch(bytes32 expected, bytes32 got);
    error ConfigMismatch(bytes32 feedId, uint32 version);
    error EpochNotIncreasing(uint64 latestEpoch, uint64 epoch);
    error EpochStepTooLarge(uint64 latestEpoch, uint64 epoch, uint64 maxStep);
    error StaleReport(uint64 observationsTimestamp, uint256 now_, uint32 maxAge);
    error ReportFromFuture(uint64 observationsTimestamp, uint256 now_);
    error ObserverCount(uint256 observations, uint256 observers);
    error TooFewObservations(uint256 count, uint256 needed);
    error ObserverUnknown(uint8 index);
    error ObserverRepeated(uint8 index);
    error ObservationsNotSorted(uint256 position);
    error ObservationOutOfBounds(int256 value, int256 minAnswer, int256 maxAnswer);
    error TooFewSignatures(uint256 count, uint256 needed);
    error TooManySignatures(uint256 count, uint256 max);
    error NotAnOracle(address signer);
    error ObservationSignatureCount(uint256 signatures, uint256 observations);
    error ObservationNotSigned(uint256 position, address observer, address signer);
    error NoReport(bytes32 feedId, uint64 epoch);

    event FeedCreated(bytes32 indexed feedId, address indexed creator, bytes32 label);
    event ConfigProposed(
        bytes32 indexed feedId,
        uint32 configVersion,
        bytes32 configDigest,
        uint64 activatesAt,
        address[] signers,
        address[] transmitters,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    );
    event ConfigActivated(bytes32 indexed feedId, uint32 configVersion, bytes32 configDigest);
    event ReportAccepted(
        bytes32 indexed feedId,
        uint64 indexed epoch,
        int192 answer,
        uint32 observationsTimestamp,
        uint32 configVersion,
        bytes32 inputRoot,
        bytes32 modelDigest,
        address transmitter
    );

    constructor(uint32 configDelay_) EIP712("ailedger OracleFeeds", "1") {
        configDelay = configDelay_;
    }

    // --- configuration --------------------------------------------------------------------

    /// @notice The id of the feed `creator` creates under `label`.
    function feedIdOf(address creator, bytes32 label) public pure returns (bytes32) {
        return keccak256(abi.encode(creator, label));
    }

    /// @notice Create the caller's feed `label` (id `feedIdOf(msg.sender, label)`) with its
    ///         first configuration, in force at once.
    function createFeed(
        bytes32 label,
        address[] calldata signers,
        address[] calldata transmitters,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    ) external returns (bytes32 feedId) {
        feedId = feedIdOf(msg.sender, label);
        Feed storage feed = _feeds[feedId];
        if (feed.creator != address(0)) revert FeedExists(feedId);
        feed.creator = msg.sender;
        emit FeedCreated(feedId, msg.sender, label);
        uint32 version =
            _writeConfig(feedId, signers, transmitters, f, minAnswer, maxAnswer, maxAge, 0);
        feed.activeVersion = version;
        emit ConfigActivated(feedId, version, _configs[feedId][version].configDigest);
    }

    /// @notice Propose a new configuration for the creator's feed; it takes effect
    ///         `configDelay` seconds from now (replacing any proposal not yet in effect).
    ///         Rounds keep the version they were accepted under.
    function setConfig(
        bytes32 feedId,
        address[] calldata signers,
        address[] calldata transmitters,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    ) external returns (uint32 version) {
        Feed storage feed = _feeds[feedId];
        if (feed.creator == address(0)) revert UnknownFeed(feedId);
        if (msg.sender != feed.creator) revert NotFeedCreator(feedId, msg.sender);
        _activeVersion(feedId, feed);
        version = _writeConfig(
            feedId, signers, transmitters, f, minAnswer, maxAnswer, maxAge, configDelay
        );
        feed.pendingVersion = version;
    }

    /// @notice Put a proposed configuration whose delay has passed into effect (transmit
    ///         does this too). Anyone may call.
    function activateConfig(bytes32 feedId) external returns (uint32) {
        Feed storage feed = _feeds[feedId];
        if (feed.creator == address(0)) revert UnknownFeed(feedId);
        return _activeVersion(feedId, feed);
    }

    function _writeConfig(
        bytes32 feedId,
        address[] calldata signers,
        address[] calldata transmitters,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge,
        uint32 delay
    ) private returns (uint32 version) {
        if (
            signers.length > MAX_ORACLES || f < MIN_FAULT_TOLERANCE
                || signers.length <= 3 * uint256(f)
        ) revert BadOracleCount(signers.length, f);
        if (transmitters.length == 0 || transmitters.length > MAX_ORACLES) {
            revert BadTransmitterCount(transmitters.length);
        }
        if (
            minAnswer > maxAnswer || minAnswer < type(int192).min
                || maxAnswer > type(int192).max
        ) revert BadBounds(minAnswer, maxAnswer);
        version = _feeds[feedId].configCount + 1;
        _feeds[feedId].configCount = version;
        _storeSigners(feedId, version, signers);
        bytes32 digest = configDigestOf(feedId, version, signers);
        _versionOfDigest[digest] = version;
        _configs[feedId][version] = StoredConfig(
            digest,
            int192(minAnswer),
            uint8(signers.length),
            f,
            maxAge,
            int192(maxAnswer),
            uint64(block.timestamp) + delay
        );
        _storeTransmitters(feedId, version, transmitters, signers);
        _emitProposed(feedId, version, signers, transmitters);
    }

    function _emitProposed(
        bytes32 feedId,
        uint32 version,
        address[] calldata signers,
        address[] calldata transmitters
    ) private {
        StoredConfig storage c = _configs[feedId][version];
        emit ConfigProposed(
            feedId,
            version,
            c.configDigest,
            c.activatesAt,
            signers,
            transmitters,
            c.f,
            c.minAnswer,
            c.maxAnswer,
            c.maxAge
        );
    }

    function _storeSigners(bytes32 feedId, uint32 version, address[] calldata signers) private {
        mapping(address => uint8) storage slot = _slot[feedId][version];
        address previous = address(0);
        for (uint256 i = 0; i < signers.length; ++i) {
            address s = signers[i];
            if (s == address(0)) revert ZeroAddress();
            if (s <= previous) revert SignersNotAscending(previous, s);
            previous = s;
            slot[s] = uint8(i + 1);
        }
        _signers[feedId][version] = signers;
    }

    /// @dev Admit each transmitter with the config commitment of the (stored) config.
    function _storeTransmitters(
        bytes32 feedId,
        uint32 version,
        address[] calldata transmitters,
        address[] calldata signers
    ) private {
        StoredConfig storage c = _configs[feedId][version];
        bytes32 commitment = keccak256(
            abi.encodePacked(
                c.configDigest,
                uint256(c.f),
                int256(c.minAnswer),
                int256(c.maxAnswer),
                uint256(c.maxAge),
                signers
            )
        );
        mapping(address => bytes32) storage allowed = _transmitter[feedId][version];
        address previous = address(0);
        for (uint256 i = 0; i < transmitters.length; ++i) {
            address s = transmitters[i];
            if (s == address(0)) revert ZeroAddress();
            if (s <= previous) revert TransmittersNotAscending(previous, s);
            previous = s;
            allowed[s] = commitment;
        }
        _transmitters[feedId][version] = transmitters;
    }

    /// @dev The version in force now, promoting a due proposal.
    function _activeVersion(bytes32 feedId, Feed storage feed) private returns (uint32) {
        uint32 pending = feed.pendingVersion;
        if (pending != 0 && _configs[feedId][pending].activatesAt <= block.timestamp) {
            feed.activeVersion = pending;
            feed.pendingVersion = 0;
            emit ConfigActivated(feedId, pending, _configs[feedId][pending].configDigest);
            return pending;
        }
        return feed.activeVersion;
    }

    function _activeVersionView(bytes32 feedId) private view returns (uint32) {
        Feed storage feed = _feeds[feedId];
        uint32 pending = feed.pendingVersion;
        if (pending != 0 && _configs[feedId][pending].activatesAt <= block.timestamp) {
            return pending;
        }
        return feed.activeVersion;
    }

    /// @notice keccak256(abi.encode(chainid, this, feedId, version, signers)).
    function configDigestOf(bytes32 feedId, uint32 version, address[] calldata signers)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), feedId, version, signers));
    }

    /// @notice The config commitment `transmit` checks the configuration it is given against:
    ///         keccak256 over the 32-byte words configDigest, f, minAnswer, maxAnswer, maxAge,
    ///         signers[0], ..., signers[n-1] (`abi.encodePacked` with every value a full word).
    function configCommitmentOf(
        bytes32 configDigest,
        ConfigParams calldata params,
        address[] calldata signers
    ) external pure returns (bytes32) {
        return _commitment(configDigest, params, signers);
    }

    /// @dev The commitment over the words as they are in calldata: a word that is not a clean
    ///      ABI value (a dirty address or uint8) changes the hash, so it cannot match.
    function _commitment(
        bytes32 configDigest,
        ConfigParams calldata params,
        address[] calldata signers
    ) private pure returns (bytes32 commitment) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, configDigest)
            calldatacopy(add(ptr, 0x20), params, 0x80)
            let len := shl(5, signers.length)
            calldatacopy(add(ptr, 0xa0), signers.offset, len)
            commitment := keccak256(ptr, add(0xa0, len))
        }
    }

    // --- reports --------------------------------------------------------------------------

    /// @notice The EIP-712 digest every signing oracle signs for `report`.
    function reportDigest(Report calldata report) public view returns (bytes32) {
        return _hashTypedDataV4(reportHash(report));
    }

    /// @notice The EIP-712 struct hash of `report` (its first 24 bytes are stored for each
    ///         accepted round: `acceptedReport`).
    function reportHash(Report calldata report) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                REPORT_TYPEHASH,
                report.feedId,
                report.configDigest,
                report.epoch,
                keccak256(abi.encodePacked(report.observations)),
                keccak256(report.observers),
                report.inputRoot,
                report.modelDigest,
                report.observationsTimestamp
            )
        );
    }

    /// @notice The EIP-712 digest an oracle signs for its own observation `value` in the
    ///         round of `report` (the report's other fields bind it to that round).
    function observationDigest(Report calldata report, int256 value)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    OBSERVATION_TYPEHASH,
                    report.feedId,
                    report.configDigest,
                    report.epoch,
                    value,
                    report.observationsTimestamp,
                    report.inputRoot,
                    report.modelDigest
                )
            )
        );
    }

    /// @notice Accept `report`, made under the configuration in force and signed by at least
    ///         f+1 distinct oracles of it. `signers` and `params` are that configuration's
    ///         signer set (ascending) and values, as `transmitConfig` returns them: they are
    ///         checked against the configuration's stored commitment, which is also what
    ///         admits the sender (only a transmitter of that configuration may send).
    ///         `signatures` is the 65-byte signatures (r, s, v) concatenated, ordered by
    ///         signer address, ascending; `observationSignatures` holds one 65-byte signature
    ///         per observation, in observation order, each by that observation's observer over
    ///         `observationDigest(report, observations[i])`.
    function transmit(
        Report calldata report,
        address[] calldata signers,
        ConfigParams calldata params,
        bytes calldata signatures,
        bytes calldata observationSignatures
    ) external returns (int192 answer) {
        Feed storage feed = _feeds[report.feedId];
        uint32 version = _admit(report, feed, signers, params);
        // Every observation lies within [minAnswer, maxAnswer], bounds that fit int192 (checked
        // when the configuration was written, and params match it): so does the median.
        answer = int192(_median(report, params, signers.length));
        bytes32 structHash =
            _verify(report, signers, params.f, signatures, observationSignatures);
        _record(feed, report, answer, version, structHash);
    }

    /// @dev The configuration in force, once the sender, configuration, epoch and time pass.
    function _admit(
        Report calldata report,
        Feed storage feed,
        address[] calldata signers,
        ConfigParams calldata params
    ) private returns (uint32 version) {
        bytes32 feedId = report.feedId;
        version = _activeVersion(feedId, feed);
        if (version == 0) revert UnknownFeed(feedId);
        // One slot admits the sender and pins report.configDigest, signers and params to the
        // configuration in force (the commitment binds all three).
        bytes32 allowed = _transmitter[feedId][version][msg.sender];
        if (allowed != _commitment(report.configDigest, params, signers)) {
            _refuseConfig(report, version, allowed);
        }
        uint64 latest = feed.latestEpoch;
        if (report.epoch <= latest) revert EpochNotIncreasing(latest, report.epoch);
        if (report.epoch - latest > MAX_EPOCH_STEP) {
            revert EpochStepTooLarge(latest, report.epoch, MAX_EPOCH_STEP);
        }
        if (report.observationsTimestamp > block.timestamp) {
            revert ReportFromFuture(report.observationsTimestamp, block.timestamp);
        }
        if (uint256(report.observationsTimestamp) + params.maxAge < block.timestamp) {
            revert StaleReport(report.observationsTimestamp, block.timestamp, params.maxAge);
        }
    }

    /// @dev Why `transmit` refuses its sender or configuration (off the accepting path).
    function _refuseConfig(Report calldata report, uint32 version, bytes32 allowed)
        private
        view
    {
        bytes32 expected = _configs[report.feedId][version].configDigest;
        if (report.configDigest != expected) {
            revert ConfigDigestMismatch(expected, report.configDigest);
        }
        if (allowed == 0) revert NotATransmitter(msg.sender);
        revert ConfigMismatch(report.feedId, version);
    }

    /// @dev Store the round (one slot) and its report hash, advance the rounds head, emit
    ///      ReportAccepted.
    function _record(
        Feed storage feed,
        Report calldata report,
        int192 answer,
        uint32 version,
        bytes32 structHash
    ) private {
        uint32 observed = SafeCast.toUint32(report.observationsTimestamp);
        uint64 epoch = report.epoch;
        bytes24 head = roundsHeadOf(
            feed.roundsHead, epoch, answer, observed, version, report.inputRoot, report.modelDigest
        );
        (feed.latestEpoch, feed.roundsHead) = (epoch, head);
        _rounds[report.feedId][epoch] = Round(answer, observed, version);
        _accepted[report.feedId][epoch] = Accepted(bytes24(structHash), uint64(block.timestamp));
        emit ReportAccepted(
            report.feedId,
            epoch,
            answer,
            observed,
            version,
            report.inputRoot,
            report.modelDigest,
            msg.sender
        );
    }

    /// @notice The rounds head after a round (see the contract notes): what a reader who
    ///         replays ReportAccepted events computes.
    function roundsHeadOf(
        bytes24 previous,
        uint64 epoch,
        int192 answer,
        uint32 observationsTimestamp,
        uint32 configVersion,
        bytes32 inputRoot,
        bytes32 modelDigest
    ) public pure returns (bytes24) {
        return bytes24(
            keccak256(
                abi.encode(
                    previous,
                    epoch,
                    answer,
                    observationsTimestamp,
                    configVersion,
                    inputRoot,
                    modelDigest
                )
            )
        );
    }

    /// @dev Check observers (distinct configured oracles, at least 2f+1), ordering and bounds;
    ///      return the median (the upper one for an even count).
    function _median(Report calldata report, ConfigParams calldata params, uint256 n)
        private
        pure
        returns (int256)
    {
        int256[] calldata observations = report.observations;
        bytes calldata observers = report.observers;
        uint256 count = observations.length;
        if (observers.length != count) revert ObserverCount(count, observers.length);
        uint256 needed = 2 * uint256(params.f) + 1;
        if (count < needed) revert TooFewObservations(count, needed);
        int256 lo = params.minAnswer;
        int256 hi = params.maxAnswer;
        int256 previous = lo;
        uint256 seen = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint8 index = uint8(observers[i]);
            if (index >= n) revert ObserverUnknown(index);
            uint256 bit = 1 << index;
            if (seen & bit != 0) revert ObserverRepeated(index);
            seen |= bit;
            int256 value = observations[i];
            if (value < previous) {
                if (value < lo) revert ObservationOutOfBounds(value, lo, hi);
                revert ObservationsNotSorted(i);
            }
            if (value > hi) revert ObservationOutOfBounds(value, lo, hi);
            previous = value;
        }
        return observations[count / 2];
    }

    /// @dev At least f+1 signatures, by signers strictly ascending (so distinct), each one
    ///      of `signers` (ascending too: one merged walk over both lists).
    function _checkSignatures(
        bytes32 digest,
        bytes calldata signatures,
        address[] calldata signers,
        uint8 f
    ) private pure {
        if (signatures.length % 65 != 0) {
            revert ECDSA.ECDSAInvalidSignatureLength(signatures.length);
        }
        uint256 count = signatures.length / 65;
        if (count <= f) revert TooFewSignatures(count, uint256(f) + 1);
        if (count > MAX_ORACLES) revert TooManySignatures(count, MAX_ORACLES);
        uint256 n = signers.length;
        uint256 j = 0;
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            // OpenZeppelin's ECDSA.recover(hash, v, r, s) (low-s) over r, s, v read with
            // calldataload, as its tryRecoverCalldata does: recoverCalldata over a
            // signatures[65 * i:65 * (i + 1)] slice measured ~450 gas more per signature
            // (benchmarks/RESULTS.md). The length was checked once above (a multiple of 65).
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                let at := add(signatures.offset, mul(i, 65))
                r := calldataload(at)
                s := calldataload(add(at, 0x20))
                v := byte(0, calldataload(add(at, 0x40)))
            }
            address signer = ECDSA.recover(digest, v, r, s);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            while (j < n && signers[j] < signer) ++j;
            if (j == n || signers[j] != signer) revert NotAnOracle(signer);
            previous = signer;
        }
    }

    /// @dev The report's f+1 signatures and its per-observation signatures; its struct hash.
    function _verify(
        Report calldata report,
        address[] calldata signers,
        uint8 f,
        bytes calldata signatures,
        bytes calldata observationSignatures
    ) private view returns (bytes32 structHash) {
        structHash = reportHash(report);
        _checkSignatures(_hashTypedDataV4(structHash), signatures, signers, f);
        _checkObservations(report, observationSignatures, signers);
    }

    /// @dev Each observation carries its observer's signature over its own value in this
    ///      round (observers were checked by `_median`: distinct configured indices).
    function _checkObservations(
        Report calldata report,
        bytes calldata observationSignatures,
        address[] calldata signers
    ) private view {
        uint256 count = report.observations.length;
        if (observationSignatures.length != 65 * count) {
            revert ObservationSignatureCount(observationSignatures.length / 65, count);
        }
        for (uint256 i = 0; i < count; ++i) {
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                let at := add(observationSignatures.offset, mul(i, 65))
                r := calldataload(at)
                s := calldataload(add(at, 0x20))
                v := byte(0, calldataload(add(at, 0x40)))
            }
            address observer = signers[uint8(report.observers[i])];
            address signer =
                ECDSA.recover(observationDigest(report, report.observations[i]), v, r, s);
            if (signer != observer) revert ObservationNotSigned(i, observer, signer);
        }
    }

    // --- views ----------------------------------------------------------------------------

    /// @notice The feed's creator, versions (count, in force, proposed), latest epoch and
    ///         rounds head; activeVersion already counts a proposal whose delay has passed.
    function getFeed(bytes32 feedId) external view returns (Feed memory feed) {
        feed = _feeds[feedId];
        uint32 active = _activeVersionView(feedId);
        if (active != feed.activeVersion) {
            feed.activeVersion = active;
            feed.pendingVersion = 0;
        }
    }

    function creatorOf(bytes32 feedId) external view returns (address) {
        return _feeds[feedId].creator;
    }

    /// @notice Configuration `version` of the feed (zero fields if there is none).
    function getConfig(bytes32 feedId, uint32 version) external view returns (Config memory) {
        return _config(feedId, version);
    }

    function _config(bytes32 feedId, uint32 version) private view returns (Config memory) {
        StoredConfig storage c = _configs[feedId][version];
        return Config(
            c.configDigest, c.n, c.f, c.maxAge, c.activatesAt, c.minAnswer, c.maxAnswer
        );
    }

    /// @notice The configuration in force now, and its version.
    function activeConfig(bytes32 feedId) external view returns (uint32 version, Config memory) {
        version = _activeVersionView(feedId);
        return (version, _config(feedId, version));
    }

    /// @notice The digest of configuration `version` (zero if there is none).
    function configDigestAt(bytes32 feedId, uint32 version) external view returns (bytes32) {
        return _configs[feedId][version].configDigest;
    }

    /// @notice The configuration of the feed named by `configDigest` and its version;
    ///         reverts if the feed has no such configuration.
    function configByDigest(bytes32 feedId, bytes32 configDigest)
        external
        view
        returns (uint32 version, Config memory config)
    {
        version = _versionOfDigest[configDigest];
        config = _config(feedId, version);
        if (version == 0 || config.configDigest != configDigest) {
            revert UnknownConfig(feedId, configDigest);
        }
    }

    /// @notice The oracle set in force, ascending by address (observer indices refer to it).
    function signersOf(bytes32 feedId) external view returns (address[] memory) {
        return _signers[feedId][_activeVersionView(feedId)];
    }

    function signersAt(bytes32 feedId, uint32 version) external view returns (address[] memory) {
        return _signers[feedId][version];
    }

    function transmittersOf(bytes32 feedId) external view returns (address[] memory) {
        return _transmitters[feedId][_activeVersionView(feedId)];
    }

    function isOracle(bytes32 feedId, address account) external view returns (bool) {
        return _slot[feedId][_activeVersionView(feedId)][account] != 0;
    }

    function isTransmitter(bytes32 feedId, address account) external view returns (bool) {
        return _transmitter[feedId][_activeVersionView(feedId)][account] != 0;
    }

    /// @notice What `transmit` takes with a report of the configuration in force: its signer
    ///         set (ascending) and values.
    function transmitConfig(bytes32 feedId)
        external
        view
        returns (address[] memory signers, ConfigParams memory params)
    {
        uint32 version = _activeVersionView(feedId);
        StoredConfig storage c = _configs[feedId][version];
        return (_signers[feedId][version], ConfigParams(c.f, c.minAnswer, c.maxAnswer, c.maxAge));
    }

    function latestEpoch(bytes32 feedId) external view returns (uint64) {
        return _feeds[feedId].latestEpoch;
    }

    /// @notice The accepted round of `epoch`; reverts if there is none.
    function getRound(bytes32 feedId, uint64 epoch) public view returns (Round memory round) {
        round = _rounds[feedId][epoch];
        if (round.configVersion == 0) revert NoReport(feedId, epoch);
    }

    /// @notice The first 24 bytes of the struct hash (`reportHash`) of the report accepted
    ///         for `epoch` and the block time it was accepted (zeros if none).
    function acceptedReport(bytes32 feedId, uint64 epoch)
        external
        view
        returns (bytes24 reportHash_, uint64 acceptedAt)
    {
        Accepted storage a = _accepted[feedId][epoch];
        return (a.reportHash, a.acceptedAt);
    }

    /// @notice The accepted round of `epoch`, or a zero round (configVersion == 0) if none.
    function roundAt(bytes32 feedId, uint64 epoch) external view returns (Round memory) {
        return _rounds[feedId][epoch];
    }

    /// @notice The latest accepted round and its epoch; reverts if the feed has none.
    function latestRound(bytes32 feedId) external view returns (uint64 epoch, Round memory) {
        epoch = _feeds[feedId].latestEpoch;
        return (epoch, getRound(feedId, epoch));
    }
}

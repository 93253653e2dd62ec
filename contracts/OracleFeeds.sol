// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "./lib/EIP712.sol";
import {Signatures} from "./lib/Signatures.sol";

/// @title OracleFeeds
/// @notice Feeds of AI scores reported by a configured set of n oracles with fault tolerance f
///         (n > 3f, n <= 31). A report carries the observations of at least 2f+1 distinct
///         oracles (sorted ascending, with the index of each observer), the Merkle root of the
///         inputs and the scoring model's fingerprint, and is signed by at least f+1 distinct
///         configured oracles. The contract stores the median observation, so up to f lying
///         oracles cannot move it outside the range of the honest ones.
/// @dev Each oracle signs EIP-712 typed data in the domain ("ailedger OracleFeeds", "1",
///      chainId, this contract):
///        Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,
///               bytes observers,bytes32 inputRoot,bytes32 modelDigest,
///               uint64 observationsTimestamp)
///      configDigest = keccak256(abi.encode(chainid, this, feedId, configVersion, signers))
///      with the signer set sorted ascending; every `setConfig` bumps the version, so a report
///      signed for an old oracle set no longer matches. Epochs grow strictly per feed (no
///      replay), signatures are ordered by signer address, strictly ascending (no duplicates),
///      and every observation must lie within the feed's [minAnswer, maxAnswer]. A report
///      older than maxAge seconds, or from the future, is stale.
contract OracleFeeds is EIP712 {
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,"
        "bytes observers,bytes32 inputRoot,bytes32 modelDigest,uint64 observationsTimestamp)"
    );
    uint256 public constant MAX_ORACLES = 31;

    struct Feed {
        address admin;
        uint32 configVersion;
        uint8 n;
        uint8 f;
        uint32 maxAge;
        uint64 latestEpoch;
        bytes32 configDigest;
        int256 minAnswer;
        int256 maxAnswer;
    }

    struct Round {
        int256 answer;
        uint64 observationsTimestamp;
        uint64 acceptedAt;
        uint32 configVersion;
        uint8 observations;
        uint8 signatures;
        bytes32 inputRoot;
        bytes32 modelDigest;
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
    /// @dev 1 + the oracle's index in the config of that version; 0 for outsiders.
    mapping(bytes32 feedId => mapping(uint32 version => mapping(address => uint8))) private
        _slot;
    mapping(bytes32 feedId => mapping(uint32 version => address[])) private _signers;
    mapping(bytes32 feedId => mapping(uint64 epoch => Round)) private _rounds;

    error FeedExists(bytes32 feedId);
    error UnknownFeed(bytes32 feedId);
    error NotFeedAdmin(bytes32 feedId, address caller);
    error ZeroAddress();
    error BadOracleCount(uint256 n, uint256 f);
    error BadBounds(int256 minAnswer, int256 maxAnswer);
    error SignersNotAscending(address previous, address signer);
    error ConfigDigestMismatch(bytes32 expected, bytes32 got);
    error EpochNotIncreasing(uint64 latestEpoch, uint64 epoch);
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
    error NoReport(bytes32 feedId, uint64 epoch);

    event FeedCreated(bytes32 indexed feedId, address indexed admin);
    event ConfigSet(
        bytes32 indexed feedId,
        uint32 configVersion,
        bytes32 configDigest,
        address[] signers,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    );
    event FeedAdminChanged(bytes32 indexed feedId, address previousAdmin, address newAdmin);
    event ReportAccepted(
        bytes32 indexed feedId,
        uint64 indexed epoch,
        int256 answer,
        bytes32 inputRoot,
        bytes32 modelDigest,
        uint64 observationsTimestamp,
        uint32 configVersion,
        address transmitter
    );

    constructor() EIP712("ailedger OracleFeeds", "1") {}

    modifier onlyFeedAdmin(bytes32 feedId) {
        address admin = _feeds[feedId].admin;
        if (admin == address(0)) revert UnknownFeed(feedId);
        if (msg.sender != admin) revert NotFeedAdmin(feedId, msg.sender);
        _;
    }

    // --- configuration --------------------------------------------------------------------

    /// @notice Create `feedId` with its first oracle set; the caller becomes its admin.
    function createFeed(
        bytes32 feedId,
        address[] calldata signers,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    ) external {
        if (_feeds[feedId].admin != address(0)) revert FeedExists(feedId);
        _feeds[feedId].admin = msg.sender;
        emit FeedCreated(feedId, msg.sender);
        _setConfig(feedId, signers, f, minAnswer, maxAnswer, maxAge);
    }

    /// @notice Replace the oracle set and parameters; bumps the config version, so every
    ///         report signed for the previous configuration is rejected.
    function setConfig(
        bytes32 feedId,
        address[] calldata signers,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    ) external onlyFeedAdmin(feedId) {
        _setConfig(feedId, signers, f, minAnswer, maxAnswer, maxAge);
    }

    function setFeedAdmin(bytes32 feedId, address admin) external onlyFeedAdmin(feedId) {
        if (admin == address(0)) revert ZeroAddress();
        emit FeedAdminChanged(feedId, msg.sender, admin);
        _feeds[feedId].admin = admin;
    }

    function _setConfig(
        bytes32 feedId,
        address[] calldata signers,
        uint8 f,
        int256 minAnswer,
        int256 maxAnswer,
        uint32 maxAge
    ) private {
        uint256 n = signers.length;
        if (n > MAX_ORACLES || n <= 3 * uint256(f)) revert BadOracleCount(n, f);
        if (minAnswer > maxAnswer) revert BadBounds(minAnswer, maxAnswer);
        Feed storage feed = _feeds[feedId];
        uint32 version = feed.configVersion + 1;
        address previous = address(0);
        for (uint256 i = 0; i < n; ++i) {
            address s = signers[i];
            if (s == address(0)) revert ZeroAddress();
            if (s <= previous) revert SignersNotAscending(previous, s);
            previous = s;
            _slot[feedId][version][s] = uint8(i + 1);
        }
        _signers[feedId][version] = signers;
        bytes32 digest = configDigestOf(feedId, version, signers);
        feed.configVersion = version;
        feed.n = uint8(n);
        feed.f = f;
        feed.maxAge = maxAge;
        feed.configDigest = digest;
        feed.minAnswer = minAnswer;
        feed.maxAnswer = maxAnswer;
        emit ConfigSet(feedId, version, digest, signers, f, minAnswer, maxAnswer, maxAge);
    }

    /// @notice keccak256(abi.encode(chainid, this, feedId, version, signers)).
    function configDigestOf(bytes32 feedId, uint32 version, address[] calldata signers)
        public
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(block.chainid, address(this), feedId, version, signers));
    }

    // --- reports --------------------------------------------------------------------------

    /// @notice The EIP-712 digest every signing oracle signs for `report`.
    function reportDigest(Report calldata report) public view returns (bytes32) {
        return _hashTypedData(
            keccak256(
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
            )
        );
    }

    /// @notice Accept `report` signed by at least f+1 distinct oracles of the current set
    ///         (signatures ordered by signer address, ascending). Anyone may transmit it.
    function transmit(Report calldata report, bytes[] calldata signatures)
        external
        returns (int256 answer)
    {
        Feed storage feed = _feeds[report.feedId];
        if (feed.admin == address(0)) revert UnknownFeed(report.feedId);
        if (report.configDigest != feed.configDigest) {
            revert ConfigDigestMismatch(feed.configDigest, report.configDigest);
        }
        if (report.epoch <= feed.latestEpoch) {
            revert EpochNotIncreasing(feed.latestEpoch, report.epoch);
        }
        if (report.observationsTimestamp > block.timestamp) {
            revert ReportFromFuture(report.observationsTimestamp, block.timestamp);
        }
        if (uint256(report.observationsTimestamp) + feed.maxAge < block.timestamp) {
            revert StaleReport(report.observationsTimestamp, block.timestamp, feed.maxAge);
        }
        uint32 version = feed.configVersion;
        answer = _median(report, feed);
        _checkSignatures(report, signatures, feed.f, version);
        feed.latestEpoch = report.epoch;
        _rounds[report.feedId][report.epoch] = Round(
            answer,
            report.observationsTimestamp,
            uint64(block.timestamp),
            version,
            uint8(report.observations.length),
            uint8(signatures.length),
            report.inputRoot,
            report.modelDigest
        );
        emit ReportAccepted(
            report.feedId,
            report.epoch,
            answer,
            report.inputRoot,
            report.modelDigest,
            report.observationsTimestamp,
            version,
            msg.sender
        );
    }

    /// @dev Check observers (distinct configured oracles, at least 2f+1), ordering and bounds;
    ///      return the median (the upper one for an even count).
    function _median(Report calldata report, Feed storage feed) private view returns (int256) {
        uint256 count = report.observations.length;
        if (report.observers.length != count) {
            revert ObserverCount(count, report.observers.length);
        }
        uint256 needed = 2 * uint256(feed.f) + 1;
        if (count < needed) revert TooFewObservations(count, needed);
        int256 lo = feed.minAnswer;
        int256 hi = feed.maxAnswer;
        uint256 n = feed.n;
        uint256 seen = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint8 index = uint8(report.observers[i]);
            if (index >= n) revert ObserverUnknown(index);
            uint256 bit = 1 << index;
            if (seen & bit != 0) revert ObserverRepeated(index);
            seen |= bit;
            int256 value = report.observations[i];
            if (value < lo || value > hi) revert ObservationOutOfBounds(value, lo, hi);
            if (i != 0 && value < report.observations[i - 1]) revert ObservationsNotSorted(i);
        }
        return report.observations[count / 2];
    }

    function _checkSignatures(
        Report calldata report,
        bytes[] calldata signatures,
        uint8 f,
        uint32 version
    ) private view {
        uint256 count = signatures.length;
        if (count <= f) revert TooFewSignatures(count, uint256(f) + 1);
        if (count > MAX_ORACLES) revert TooManySignatures(count, MAX_ORACLES);
        bytes32 digest = reportDigest(report);
        mapping(address => uint8) storage slot = _slot[report.feedId][version];
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            address signer = Signatures.recover(digest, signatures[i]);
            if (signer <= previous) revert SignersNotAscending(previous, signer);
            if (slot[signer] == 0) revert NotAnOracle(signer);
            previous = signer;
        }
    }

    // --- views ----------------------------------------------------------------------------

    function getFeed(bytes32 feedId) external view returns (Feed memory) {
        return _feeds[feedId];
    }

    function signersOf(bytes32 feedId) external view returns (address[] memory) {
        return _signers[feedId][_feeds[feedId].configVersion];
    }

    function isOracle(bytes32 feedId, address account) external view returns (bool) {
        return _slot[feedId][_feeds[feedId].configVersion][account] != 0;
    }

    function latestEpoch(bytes32 feedId) external view returns (uint64) {
        return _feeds[feedId].latestEpoch;
    }

    /// @notice The accepted round of `epoch`; reverts if there is none.
    function getRound(bytes32 feedId, uint64 epoch) public view returns (Round memory round) {
        round = _rounds[feedId][epoch];
        if (round.acceptedAt == 0) revert NoReport(feedId, epoch);
    }

    /// @notice The latest accepted round and its epoch; reverts if the feed has none.
    function latestRound(bytes32 feedId) external view returns (uint64 epoch, Round memory) {
        epoch = _feeds[feedId].latestEpoch;
        return (epoch, getRound(feedId, epoch));
    }
}

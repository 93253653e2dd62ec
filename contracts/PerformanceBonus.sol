// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IOracleFeeds} from "./lib/IOracleFeeds.sol";
import {PullPayments} from "./lib/PullPayments.sol";

/// @title PerformanceBonus
/// @notice A contractor is paid a fixed amount for every week without safety incidents, as
///         counted by an oracle feed (epoch = week number, observation = incident count for
///         that week). The payer funds every week up front (`weeks * amountPerWeek`), so each
///         week is either claimable by the contractor (zero incidents) or, once reported with
///         incidents, returned to the payer; each exactly once.
///
///         An agreement pins its feed (namespaced by creator, who may not be the payer) and one
///         configuration of it (config digest) and counts only rounds accepted under it. A week
///         with no such round by `refundAfter` (skipped, never reported, or reported under
///         another configuration) may be refunded to the payer after that time, so no week's
///         money is locked forever; a week that has a round under the pinned configuration
///         settles on it, whenever.
/// @dev Pull payments (`withdraw`/`withdrawTo`), checks-effects-interactions and
///      OpenZeppelin's ReentrancyGuardTransient.
///      deposited == paid + claimable + remaining at every step.
contract PerformanceBonus is PullPayments {
    struct Agreement {
        address payer;
        address contractor;
        bytes32 feedId;
        bytes32 configDigest;
        uint64 firstWeek;
        uint64 lastWeek;
        uint64 refundAfter;
        uint256 amountPerWeek;
        uint256 remaining;
    }

    IOracleFeeds public immutable feeds;

    uint256 public agreementCount;

    mapping(uint256 agreementId => Agreement) private _agreements;
    mapping(uint256 agreementId => mapping(uint64 week => bool)) public weekSettled;

    error ZeroAddress();
    error ZeroAmount();
    error BadWeeks(uint64 firstWeek, uint64 lastWeek);
    error WrongFunding(uint256 sent, uint256 required);
    error UnknownAgreement(uint256 agreementId);
    error WeekOutsideAgreement(uint64 week, uint64 firstWeek, uint64 lastWeek);
    error WeekAlreadySettled(uint256 agreementId, uint64 week);
    error BadRefundTime(uint64 refundAfter);
    error InterestedFeedCreator(bytes32 feedId, address creator);
    error ReportUnderOtherConfig(uint64 week, bytes32 pinned, bytes32 got);
    error RefundNotDue(uint256 agreementId, uint64 refundAfter);
    error WeekReported(uint256 agreementId, uint64 week);

    event AgreementCreated(
        uint256 indexed agreementId,
        address indexed payer,
        address indexed contractor,
        bytes32 feedId,
        bytes32 configDigest,
        uint64 firstWeek,
        uint64 lastWeek,
        uint64 refundAfter,
        uint256 amountPerWeek
    );
    event WeekSettled(
        uint256 indexed agreementId, uint64 indexed week, int256 incidents, address beneficiary
    );
    event WeekRefunded(uint256 indexed agreementId, uint64 indexed week, uint256 amount);

    constructor(IOracleFeeds feeds_) {
        if (address(feeds_) == address(0)) revert ZeroAddress();
        feeds = feeds_;
    }

    /// @notice Fund a bonus for weeks [firstWeek, lastWeek] on configuration `configDigest`
    ///         of feed `feedId`; msg.value must be exactly
    ///         (lastWeek - firstWeek + 1) * amountPerWeek. Weeks without a round under that
    ///         configuration may be refunded to the payer after `refundAfter`.
    function createAgreement(
        address contractor,
        bytes32 feedId,
        bytes32 configDigest,
        uint64 firstWeek,
        uint64 lastWeek,
        uint64 refundAfter,
        uint256 amountPerWeek
    ) external payable nonReentrant returns (uint256 agreementId) {
        if (contractor == address(0)) revert ZeroAddress();
        if (amountPerWeek == 0) revert ZeroAmount();
        if (firstWeek == 0 || lastWeek < firstWeek) revert BadWeeks(firstWeek, lastWeek);
        if (refundAfter <= block.timestamp) revert BadRefundTime(refundAfter);
        feeds.configByDigest(feedId, configDigest); // reverts UnknownConfig
        address creator = feeds.creatorOf(feedId);
        if (creator == msg.sender) revert InterestedFeedCreator(feedId, creator);
        uint256 required = uint256(lastWeek - firstWeek + 1) * amountPerWeek;
        if (msg.value != required) revert WrongFunding(msg.value, required);
        agreementId = ++agreementCount;
        _agreements[agreementId] = Agreement(
            msg.sender,
            contractor,
            feedId,
            configDigest,
            firstWeek,
            lastWeek,
            refundAfter,
            amountPerWeek,
            required
        );
        _recordDeposit(required);
        emit AgreementCreated(
            agreementId,
            msg.sender,
            contractor,
            feedId,
            configDigest,
            firstWeek,
            lastWeek,
            refundAfter,
            amountPerWeek
        );
    }

    /// @notice Settle `week` from the feed's accepted round for that epoch, which must be under
    ///         the pinned configuration: no incidents pays the contractor, any incident returns
    ///         the week's amount to the payer. Anyone may call; a week settles once.
    function settleWeek(uint256 agreementId, uint64 week)
        external
        nonReentrant
        returns (address beneficiary)
    {
        Agreement storage a = _openWeek(agreementId, week);
        IOracleFeeds.Round memory round = feeds.getRound(a.feedId, week);
        bytes32 digest = feeds.configDigestAt(a.feedId, round.configVersion);
        if (digest != a.configDigest) revert ReportUnderOtherConfig(week, a.configDigest, digest);
        int256 incidents = round.answer;
        beneficiary = incidents == 0 ? a.contractor : a.payer;
        weekSettled[agreementId][week] = true;
        uint256 amount = a.amountPerWeek;
        a.remaining -= amount;
        _credit(beneficiary, amount);
        emit WeekSettled(agreementId, week, incidents, beneficiary);
    }

    /// @notice After `refundAfter`, return the amount of a week that has no round under the
    ///         pinned configuration to the payer. Anyone may call.
    function refundWeek(uint256 agreementId, uint64 week)
        external
        nonReentrant
        returns (uint256 amount)
    {
        Agreement storage a = _openWeek(agreementId, week);
        if (block.timestamp <= a.refundAfter) revert RefundNotDue(agreementId, a.refundAfter);
        IOracleFeeds.Round memory round = feeds.roundAt(a.feedId, week);
        if (
            round.configVersion != 0
                && feeds.configDigestAt(a.feedId, round.configVersion) == a.configDigest
        ) revert WeekReported(agreementId, week);
        weekSettled[agreementId][week] = true;
        amount = a.amountPerWeek;
        a.remaining -= amount;
        _credit(a.payer, amount);
        emit WeekRefunded(agreementId, week, amount);
    }

    function _openWeek(uint256 agreementId, uint64 week)
        private
        view
        returns (Agreement storage a)
    {
        a = _agreements[agreementId];
        if (a.payer == address(0)) revert UnknownAgreement(agreementId);
        if (week < a.firstWeek || week > a.lastWeek) {
            revert WeekOutsideAgreement(week, a.firstWeek, a.lastWeek);
        }
        if (weekSettled[agreementId][week]) revert WeekAlreadySettled(agreementId, week);
    }

    function getAgreement(uint256 agreementId) external view returns (Agreement memory) {
        return _agreements[agreementId];
    }
}

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
/// @dev Pull payments (`withdraw`), checks-effects-interactions and a reentrancy lock.
///      deposited == paid + claimable + remaining at every step.
contract PerformanceBonus is PullPayments {
    struct Agreement {
        address payer;
        address contractor;
        bytes32 feedId;
        uint64 firstWeek;
        uint64 lastWeek;
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

    event AgreementCreated(
        uint256 indexed agreementId,
        address indexed payer,
        address indexed contractor,
        bytes32 feedId,
        uint64 firstWeek,
        uint64 lastWeek,
        uint256 amountPerWeek
    );
    event WeekSettled(
        uint256 indexed agreementId, uint64 indexed week, int256 incidents, address beneficiary
    );

    constructor(IOracleFeeds feeds_) {
        if (address(feeds_) == address(0)) revert ZeroAddress();
        feeds = feeds_;
    }

    /// @notice Fund a bonus for weeks [firstWeek, lastWeek]; msg.value must be exactly
    ///         (lastWeek - firstWeek + 1) * amountPerWeek.
    function createAgreement(
        address contractor,
        bytes32 feedId,
        uint64 firstWeek,
        uint64 lastWeek,
        uint256 amountPerWeek
    ) external payable nonReentrant returns (uint256 agreementId) {
        if (contractor == address(0)) revert ZeroAddress();
        if (amountPerWeek == 0) revert ZeroAmount();
        if (firstWeek == 0 || lastWeek < firstWeek) revert BadWeeks(firstWeek, lastWeek);
        uint256 required = uint256(lastWeek - firstWeek + 1) * amountPerWeek;
        if (msg.value != required) revert WrongFunding(msg.value, required);
        agreementId = ++agreementCount;
        _agreements[agreementId] =
            Agreement(msg.sender, contractor, feedId, firstWeek, lastWeek, amountPerWeek, required);
        _recordDeposit(required);
        emit AgreementCreated(
            agreementId, msg.sender, contractor, feedId, firstWeek, lastWeek, amountPerWeek
        );
    }

    /// @notice Settle `week` from the feed's accepted report for that epoch: no incidents pays
    ///         the contractor, any incident returns the week's amount to the payer. Anyone may
    ///         call; a week settles once.
    function settleWeek(uint256 agreementId, uint64 week)
        external
        nonReentrant
        returns (address beneficiary)
    {
        Agreement storage a = _agreements[agreementId];
        if (a.payer == address(0)) revert UnknownAgreement(agreementId);
        if (week < a.firstWeek || week > a.lastWeek) {
            revert WeekOutsideAgreement(week, a.firstWeek, a.lastWeek);
        }
        if (weekSettled[agreementId][week]) revert WeekAlreadySettled(agreementId, week);
        int256 incidents = feeds.getRound(a.feedId, week).answer;
        beneficiary = incidents == 0 ? a.contractor : a.payer;
        weekSettled[agreementId][week] = true;
        uint256 amount = a.amountPerWeek;
        a.remaining -= amount;
        _credit(beneficiary, amount);
        emit WeekSettled(agreementId, week, incidents, beneficiary);
    }

    function getAgreement(uint256 agreementId) external view returns (Agreement memory) {
        return _agreements[agreementId];
    }
}

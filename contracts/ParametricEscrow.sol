// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IFeedJudge} from "./lib/IFeedJudge.sol";
import {IOracleFeeds} from "./lib/IOracleFeeds.sol";
import {PullPayments} from "./lib/PullPayments.sol";

/// @title ParametricEscrow
/// @notice Parametric insurance paid by oracle reports. An insurer funds a pool with ETH and
///         writes policies against it: a holder, a feed, a trigger (the score above or below a
///         threshold), a payout and a window [start, expiry]. Writing a policy reserves its
///         payout, so the pool never promises more than it holds.
///
///         A policy pins its feed (whose id names the feed's creator, see OracleFeeds) and one
///         configuration of it (config digest, with f >= 1 and n >= 3f+1) when written; the
///         feed's creator may be neither the insurer nor the holder. `settle(policyId, epoch)`
///         reads the round the caller names: it pays only if that round was accepted under
///         the pinned configuration, was observed inside the window [start, expiry] and meets
///         the trigger; then the payout becomes claimable by the holder, once. A later
///         round cannot hide an earlier triggering one. Settlement stays open for
///         SETTLEMENT_GRACE after expiry (for rounds observed in the window but sent late);
///         only after that does an untriggered policy's reserve return to the pool. The
///         insurer takes free funds back at any time.
///
///         Accountable oracles (optional, per policy): a policy written with
///         `createAccountablePolicy` names a judge of the feed's oracles (OracleJudge), and
///         `settle` then pays only while `judge.feedAccountable(feedId)` holds: every oracle of
///         the feed's configuration in force holds the feed's minimum stake free, with a judge
///         registered in its StakeManager (else FeedNotAccountable). The check is made at
///         payout time, so an oracle that starts unbonding after the policy was written stops
///         payouts until it stakes again. A policy written with `createPolicy` has no judge and
///         settles as before. The insurer (who funds the pool) chooses the judge: the
///         requirement protects the pool against oracles that can lie at no cost, and a judge
///         that always answers true only removes that protection. For the holder the judge is
///         a term of the policy like the feed: a judge that answers false (or an oracle set
///         that unstakes) can keep a triggered policy from paying until its reserve returns to
///         the pool at expiry, so a holder accepts a policy only with a judge it has checked
///         (`judgeOf`, the PolicyJudged event): an OracleJudge over this contract's `feeds`,
///         with the feed's terms declared.
/// @dev Money leaves only through `withdraw`/`withdrawTo` (pull payment, checks-effects-
///      interactions, OpenZeppelin's ReentrancyGuardTransient); forced-in ether is surplus the
///      owner may sweep (PullPayments). Totals balance at every step:
///        paid + claimable + remaining == deposited, and the contract's balance equals
///        claimable + remaining, where remaining is the sum of the pools (free + reserved).
contract ParametricEscrow is PullPayments {
    enum Trigger {
        Above,
        Below
    }

    enum Status {
        None,
        Active,
        Triggered,
        Expired
    }

    struct Pool {
        address insurer;
        uint256 free;
        uint256 reserved;
    }

    struct Policy {
        uint256 poolId;
        address holder;
        Status status;
        Trigger trigger;
        uint64 start;
        uint64 expiry;
        bytes32 feedId;
        bytes32 configDigest;
        int256 threshold;
        uint256 payout;
        uint64 settledEpoch;
    }

    /// @notice How long after expiry a policy may still settle (on a round in its window).
    uint64 public constant SETTLEMENT_GRACE = 1 days;

    IOracleFeeds public immutable feeds;

    uint256 public poolCount;
    uint256 public policyCount;

    mapping(uint256 poolId => Pool) private _pools;
    mapping(uint256 policyId => Policy) private _policies;
    /// @notice The judge whose `feedAccountable` a policy's payout requires (zero: none).
    mapping(uint256 policyId => IFeedJudge) public judgeOf;

    error ZeroAddress();
    error ZeroAmount();
    error UnknownPool(uint256 poolId);
    error NotInsurer(uint256 poolId, address caller);
    error UnknownPolicy(uint256 policyId);
    error BadWindow(uint64 start, uint64 expiry);
    error InsufficientFreeFunds(uint256 requested, uint256 free);
    error PolicyNotActive(uint256 policyId, Status status);
    error PolicyExpired(uint256 policyId, uint64 expiry);
    error PolicyNotExpired(uint256 policyId, uint64 expiry);
    error ReportOutsideWindow(uint64 observationsTimestamp, uint64 start, uint64 expiry);
    error TriggerNotMet(int256 answer, int256 threshold, Trigger trigger);
    error InterestedFeedCreator(bytes32 feedId, address creator);
    error ReportUnderOtherConfig(uint64 epoch, bytes32 pinned, bytes32 got);
    error FeedNotAccountable(uint256 policyId, bytes32 feedId, address judge);

    event PoolCreated(uint256 indexed poolId, address indexed insurer);
    event PoolFunded(uint256 indexed poolId, address indexed from, uint256 amount);
    event PoolReclaimed(uint256 indexed poolId, uint256 amount);
    event PolicyCreated(
        uint256 indexed policyId,
        uint256 indexed poolId,
        address indexed holder,
        bytes32 feedId,
        bytes32 configDigest,
        Trigger trigger,
        int256 threshold,
        uint256 payout,
        uint64 start,
        uint64 expiry
    );
    /// @notice Policy `policyId` pays only while `judge` holds its feed accountable.
    event PolicyJudged(uint256 indexed policyId, address indexed judge);
    /// @dev The round's input root and model are in its OracleFeeds ReportAccepted event.
    event PolicyTriggered(uint256 indexed policyId, uint64 epoch, int256 answer, uint256 payout);
    event PolicyExpiredRefund(uint256 indexed policyId, uint256 amount);

    constructor(IOracleFeeds feeds_) {
        if (address(feeds_) == address(0)) revert ZeroAddress();
        feeds = feeds_;
    }

    modifier onlyInsurer(uint256 poolId) {
        address insurer = _pools[poolId].insurer;
        if (insurer == address(0)) revert UnknownPool(poolId);
        if (msg.sender != insurer) revert NotInsurer(poolId, msg.sender);
        _;
    }

    // --- pools ----------------------------------------------------------------------------

    /// @notice Open a pool owned by the caller, funded with the value sent (may be zero).
    function createPool() external payable nonReentrant returns (uint256 poolId) {
        poolId = ++poolCount;
        _pools[poolId].insurer = msg.sender;
        emit PoolCreated(poolId, msg.sender);
        _deposit(poolId);
    }

    /// @notice Add the value sent to pool `poolId` (anyone may fund a pool).
    function fund(uint256 poolId) external payable nonReentrant {
        if (_pools[poolId].insurer == address(0)) revert UnknownPool(poolId);
        if (msg.value == 0) revert ZeroAmount();
        _deposit(poolId);
    }

    function _deposit(uint256 poolId) private {
        if (msg.value == 0) return;
        _pools[poolId].free += msg.value;
        _recordDeposit(msg.value);
        emit PoolFunded(poolId, msg.sender, msg.value);
    }

    /// @notice Move `amount` of the pool's free (unreserved) funds to the insurer's claimable
    ///         balance.
    function reclaim(uint256 poolId, uint256 amount) external nonReentrant onlyInsurer(poolId) {
        if (amount == 0) revert ZeroAmount();
        Pool storage pool = _pools[poolId];
        if (amount > pool.free) revert InsufficientFreeFunds(amount, pool.free);
        pool.free -= amount;
        _credit(pool.insurer, amount);
        emit PoolReclaimed(poolId, amount);
    }

    // --- policies -------------------------------------------------------------------------

    /// @notice Write a policy on pool `poolId`, reserving `payout` from its free funds, on
    ///         configuration `configDigest` of feed `feedId` (which must exist).
    function createPolicy(
        uint256 poolId,
        address holder,
        bytes32 feedId,
        bytes32 configDigest,
        Trigger trigger,
        int256 threshold,
        uint256 payout,
        uint64 start,
        uint64 expiry
    ) external nonReentrant onlyInsurer(poolId) returns (uint256 policyId) {
        policyId = _writePolicy(
            poolId, holder, feedId, configDigest, trigger, threshold, payout, start, expiry
        );
    }

    /// @notice `createPolicy`, with a judge: the policy pays only while
    ///         `judge.feedAccountable(feedId)` holds (see the contract notes for who relies on
    ///         the judge). The feed must hold the judge's test when written.
    function createAccountablePolicy(
        uint256 poolId,
        address holder,
        bytes32 feedId,
        bytes32 configDigest,
        Trigger trigger,
        int256 threshold,
        uint256 payout,
        uint64 start,
        uint64 expiry,
        IFeedJudge judge
    ) external nonReentrant onlyInsurer(poolId) returns (uint256 policyId) {
        if (address(judge) == address(0)) revert ZeroAddress();
        policyId = _writePolicy(
            poolId, holder, feedId, configDigest, trigger, threshold, payout, start, expiry
        );
        judgeOf[policyId] = judge;
        emit PolicyJudged(policyId, address(judge));
        if (!judge.feedAccountable(feedId)) {
            revert FeedNotAccountable(policyId, feedId, address(judge));
        }
    }

    function _writePolicy(
        uint256 poolId,
        address holder,
        bytes32 feedId,
        bytes32 configDigest,
        Trigger trigger,
        int256 threshold,
        uint256 payout,
        uint64 start,
        uint64 expiry
    ) private returns (uint256 policyId) {
        if (holder == address(0)) revert ZeroAddress();
        if (payout == 0) revert ZeroAmount();
        if (start >= expiry || expiry <= block.timestamp) revert BadWindow(start, expiry);
        // Reverts UnknownConfig unless the feed has that configuration; OracleFeeds keeps
        // n >= 3f+1 and f >= 1 for every configuration.
        feeds.configByDigest(feedId, configDigest);
        address creator = feeds.creatorOf(feedId);
        if (creator == msg.sender || creator == holder) {
            revert InterestedFeedCreator(feedId, creator);
        }
        Pool storage pool = _pools[poolId];
        if (payout > pool.free) revert InsufficientFreeFunds(payout, pool.free);
        pool.free -= payout;
        pool.reserved += payout;
        policyId = ++policyCount;
        _policies[policyId] = Policy(
            poolId,
            holder,
            Status.Active,
            trigger,
            start,
            expiry,
            feedId,
            configDigest,
            threshold,
            payout,
            0
        );
        emit PolicyCreated(
            policyId,
            poolId,
            holder,
            feedId,
            configDigest,
            trigger,
            threshold,
            payout,
            start,
            expiry
        );
    }

    /// @notice Settle policy `policyId` on its feed's round `epoch`. Anyone may call. Reverts
    ///         unless the round was accepted under the pinned configuration, was observed in
    ///         the policy window and meets the trigger, and (for a policy with a judge) while
    ///         its judge holds the feed accountable.
    function settle(uint256 policyId, uint64 epoch) external nonReentrant returns (uint256 payout) {
        Policy storage policy = _activePolicy(policyId);
        if (block.timestamp > uint256(policy.expiry) + SETTLEMENT_GRACE) {
            revert PolicyExpired(policyId, policy.expiry);
        }
        IOracleFeeds.Round memory round = feeds.getRound(policy.feedId, epoch);
        bytes32 digest = feeds.configDigestAt(policy.feedId, round.configVersion);
        if (digest != policy.configDigest) {
            revert ReportUnderOtherConfig(epoch, policy.configDigest, digest);
        }
        uint64 observed = round.observationsTimestamp;
        if (observed < policy.start || observed > policy.expiry) {
            revert ReportOutsideWindow(observed, policy.start, policy.expiry);
        }
        bool met = policy.trigger == Trigger.Above
            ? round.answer > policy.threshold
            : round.answer < policy.threshold;
        if (!met) revert TriggerNotMet(round.answer, policy.threshold, policy.trigger);
        IFeedJudge judge = judgeOf[policyId];
        if (address(judge) != address(0) && !judge.feedAccountable(policy.feedId)) {
            revert FeedNotAccountable(policyId, policy.feedId, address(judge));
        }
        payout = policy.payout;
        policy.status = Status.Triggered;
        policy.settledEpoch = epoch;
        _pools[policy.poolId].reserved -= payout;
        _credit(policy.holder, payout);
        emit PolicyTriggered(policyId, epoch, round.answer, payout);
    }

    /// @notice After expiry and the settlement grace, release an untriggered policy's reserve
    ///         back to its pool.
    function expire(uint256 policyId) external nonReentrant returns (uint256 amount) {
        Policy storage policy = _activePolicy(policyId);
        if (block.timestamp <= uint256(policy.expiry) + SETTLEMENT_GRACE) {
            revert PolicyNotExpired(policyId, policy.expiry);
        }
        amount = policy.payout;
        policy.status = Status.Expired;
        Pool storage pool = _pools[policy.poolId];
        pool.reserved -= amount;
        pool.free += amount;
        emit PolicyExpiredRefund(policyId, amount);
    }

    function _activePolicy(uint256 policyId) private view returns (Policy storage policy) {
        policy = _policies[policyId];
        if (policy.status == Status.None) revert UnknownPolicy(policyId);
        if (policy.status != Status.Active) revert PolicyNotActive(policyId, policy.status);
    }

    // --- views ----------------------------------------------------------------------------

    function getPool(uint256 poolId) external view returns (Pool memory) {
        return _pools[poolId];
    }

    function getPolicy(uint256 policyId) external view returns (Policy memory) {
        return _policies[policyId];
    }
}

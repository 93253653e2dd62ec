// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {OracleFeeds} from "./OracleFeeds.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title OracleJudge
/// @notice A StakeManager judge for the oracles of OracleFeeds feeds.
///
///         A feed's creator declares the feed's accountability terms once (they never change,
///         so no rule can be weakened under a staker): the stake asset, the minimum stake each
///         oracle must hold free in the StakeManager (`isAccountable`, `feedAccountable`: a
///         settlement that pays on the feed checks them), the amount slashed per fault, the
///         tolerance (the largest |observation - stored median| that is not a fault) and the
///         challenge window (seconds after the round was accepted on-chain; at most the
///         StakeManager's unbonding delay, so stake that starts unbonding after a round stays
///         slashable until the window closes). Terms judge only rounds accepted after they were
///         declared (epochs from `fromEpoch`, the feed's next epoch at the declaration): a
///         creator cannot pick a tolerance after seeing a stored round's observations to slash
///         an honest oracle. (It could still do so with a report it holds before transmitting
///         it, when it is or controls the transmitter: an oracle signs observations only for
///         feeds whose terms are already declared and acceptable to it.)
///
///         Within the window anyone may challenge an observation of a stored round: the
///         challenger gives the round's report (it must hash to the struct hash OracleFeeds
///         stored for that round: `acceptedReport`), the position of the observation in it and
///         its observer's own EIP-712 signature over it (`OracleFeeds.observationDigest`). If
///         the signature is the observer's and the value lies further than the tolerance from
///         the stored median, the observer is slashed: fault id keccak256(abi.encode(feedId,
///         epoch, oracle)) (one slash per fault: the StakeManager refuses a second), reason
///         code REASON_OUT_OF_TOLERANCE, evidence hash = the observation's EIP-712 digest
///         (what the oracle signed; the round's report statement in the transparency log
///         carries the signature), and the challenger as prover (the StakeManager splits the
///         slash between prover and treasury by this judge's basis points).
///
///         Everything a challenge claims is checked here, on-chain, from stored state and the
///         oracle's own signature: a challenge that does not hold reverts and changes nothing,
///         so it needs no bond (the challenger pays only its gas). An oracle may not challenge
///         itself (it could otherwise recover the prover's share of its own slash; a second
///         account of its own still can: the treasury's share is the floor of the penalty, so
///         a judge registered with a prover's share of 100 % makes no feed accountable).
contract OracleJudge {
    uint32 public constant REASON_OUT_OF_TOLERANCE = 1;

    struct Terms {
        address asset;
        uint32 challengeWindow;
        uint64 fromEpoch;
        uint256 minStake;
        uint256 slashAmount;
        uint256 tolerance;
    }

    StakeManager public immutable stakes;
    OracleFeeds public immutable feeds;

    mapping(bytes32 feedId => Terms) private _terms;

    error NotFeedCreator(bytes32 feedId, address caller);
    error TermsAlreadyDeclared(bytes32 feedId);
    error NoTerms(bytes32 feedId);
    error BadTerms();
    error WindowTooLong(uint32 challengeWindow, uint64 unbondingDelay);
    error NoRound(bytes32 feedId, uint64 epoch);
    error ChallengeWindowClosed(uint256 closedAt);
    error NotTheStoredReport(bytes24 stored, bytes24 given);
    error BadPosition(uint256 position, uint256 observations);
    error NotTheObserversSignature(address observer, address signer);
    error WithinTolerance(uint256 deviation, uint256 tolerance);
    error SelfChallenge(address oracle);
    error AlreadySlashed(bytes32 faultId);
    error RoundBeforeTerms(uint64 epoch, uint64 fromEpoch);

    event TermsDeclared(
        bytes32 indexed feedId,
        address asset,
        uint256 minStake,
        uint256 slashAmount,
        uint256 tolerance,
        uint32 challengeWindow
    );
    event ObservationChallenged(
        bytes32 indexed feedId,
        uint64 indexed epoch,
        address indexed oracle,
        address challenger,
        int256 value,
        int192 answer,
        uint256 deviation,
        bytes32 faultId,
        bytes32 evidenceHash,
        uint256 slashed
    );

    constructor(StakeManager stakes_, OracleFeeds feeds_) {
        stakes = stakes_;
        feeds = feeds_;
    }

    /// @notice Declare feed `feedId`'s terms (its creator, once; see the contract notes).
    function declareTerms(
        bytes32 feedId,
        address asset,
        uint256 minStake,
        uint256 slashAmount,
        uint256 tolerance,
        uint32 challengeWindow
    ) external {
        if (feeds.creatorOf(feedId) != msg.sender) revert NotFeedCreator(feedId, msg.sender);
        if (_terms[feedId].minStake != 0) revert TermsAlreadyDeclared(feedId);
        if (minStake == 0 || slashAmount == 0 || slashAmount > minStake || challengeWindow == 0)
        {
            revert BadTerms();
        }
        uint64 unbonding = stakes.unbondingDelay();
        if (challengeWindow > unbonding) revert WindowTooLong(challengeWindow, unbonding);
        uint64 fromEpoch = feeds.latestEpoch(feedId) + 1;
        _terms[feedId] =
            Terms(asset, challengeWindow, fromEpoch, minStake, slashAmount, tolerance);
        emit TermsDeclared(feedId, asset, minStake, slashAmount, tolerance, challengeWindow);
    }

    /// @notice Challenge the observation at `position` of the round `report` was accepted as,
    ///         with its observer's `signature` over it (contract notes). Reverts unless the
    ///         observer is slashed; returns the amount slashed.
    function challenge(
        OracleFeeds.Report calldata report,
        uint256 position,
        bytes calldata signature
    ) external returns (uint256 slashed) {
        Terms memory terms = _terms[report.feedId];
        if (terms.minStake == 0) revert NoTerms(report.feedId);
        Finding memory found = _examine(report, position, signature, terms);
        slashed = stakes.slash(
            found.oracle,
            terms.asset,
            terms.slashAmount,
            found.faultId,
            REASON_OUT_OF_TOLERANCE,
            found.evidence,
            msg.sender
        );
        emit ObservationChallenged(
            report.feedId,
            report.epoch,
            found.oracle,
            msg.sender,
            found.value,
            found.answer,
            found.deviation,
            found.faultId,
            found.evidence,
            slashed
        );
    }

    /// @dev What a challenge establishes; reverts with the first claim that does not hold.
    struct Finding {
        address oracle;
        int256 value;
        int192 answer;
        uint256 deviation;
        bytes32 evidence;
        bytes32 faultId;
    }

    function _examine(
        OracleFeeds.Report calldata report,
        uint256 position,
        bytes calldata signature,
        Terms memory terms
    ) private view returns (Finding memory found) {
        bytes32 feedId = report.feedId;
        OracleFeeds.Round memory round = _storedRound(report, terms.challengeWindow);
        if (report.epoch < terms.fromEpoch) {
            revert RoundBeforeTerms(report.epoch, terms.fromEpoch);
        }
        if (position >= report.observations.length) {
            revert BadPosition(position, report.observations.length);
        }
        found.oracle =
            feeds.signersAt(feedId, round.configVersion)[uint8(report.observers[position])];
        found.value = report.observations[position];
        found.evidence = feeds.observationDigest(report, found.value);
        address signer = ECDSA.recover(found.evidence, signature);
        if (signer != found.oracle) revert NotTheObserversSignature(found.oracle, signer);
        if (msg.sender == found.oracle) revert SelfChallenge(found.oracle);
        found.answer = round.answer;
        int256 answer = round.answer;
        found.deviation = found.value > answer
            ? uint256(found.value - answer)
            : uint256(answer - found.value);
        if (found.deviation <= terms.tolerance) {
            revert WithinTolerance(found.deviation, terms.tolerance);
        }
        found.faultId = faultIdOf(feedId, report.epoch, found.oracle);
        if (stakes.faultSlashed(address(this), found.faultId)) revert AlreadySlashed(found.faultId);
    }

    /// @dev The stored round `report` claims to be, inside its challenge window.
    function _storedRound(OracleFeeds.Report calldata report, uint32 window)
        private
        view
        returns (OracleFeeds.Round memory round)
    {
        round = feeds.roundAt(report.feedId, report.epoch);
        if (round.configVersion == 0) revert NoRound(report.feedId, report.epoch);
        (bytes24 stored, uint64 acceptedAt) = feeds.acceptedReport(report.feedId, report.epoch);
        uint256 closedAt = uint256(acceptedAt) + window;
        if (block.timestamp > closedAt) revert ChallengeWindowClosed(closedAt);
        bytes24 given = bytes24(feeds.reportHash(report));
        if (given != stored) revert NotTheStoredReport(stored, given);
    }

    // ---------------------------------------------------------------- views

    /// @notice The fault id of `oracle`'s observation in round `epoch` of `feedId`.
    function faultIdOf(bytes32 feedId, uint64 epoch, address oracle)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(feedId, epoch, oracle));
    }

    function termsOf(bytes32 feedId) external view returns (Terms memory) {
        return _terms[feedId];
    }

    /// @notice Whether `oracle` holds the feed's minimum stake free (not unbonding) in the
    ///         feed's asset; false for a feed without terms.
    function isAccountable(bytes32 feedId, address oracle) public view returns (bool) {
        Terms storage terms = _terms[feedId];
        if (terms.minStake == 0) return false;
        return stakes.stakeOf(oracle, terms.asset).free >= terms.minStake;
    }

    /// @notice Whether every oracle of the feed's configuration in force is accountable and
    ///         this judge is registered (active) with the StakeManager with a prover's share
    ///         below 100 % (at 100 % an oracle challenging itself from a second account
    ///         recovers its whole slash): what a settlement that pays on the feed checks.
    function feedAccountable(bytes32 feedId) external view returns (bool) {
        if (!stakes.isJudge(address(this))) return false;
        if (stakes.judgeInfo(address(this)).proverBps >= stakes.BPS()) return false;
        address[] memory oracles = feeds.signersOf(feedId);
        if (oracles.length == 0) return false;
        for (uint256 i = 0; i < oracles.length; ++i) {
            if (!isAccountable(feedId, oracles[i])) return false;
        }
        return true;
    }
}

"""OracleJudge (issue 15 item 4): oracles stake, every observation is signed by its own
observer, and an observation further than the feed's tolerance from the stored median is
slashed on a challenge within the window. Attacks: forged and replayed observation
signatures, attributing a value to another oracle, challenging an honest oracle, a report
that is not the stored one, double slashing, a late challenge, an unregistered judge, an
oracle unbonding to escape, self-challenge, and rounding in the prover/treasury split.
Runs on py-evm and on anvil (the ``w3`` fixture)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from judge_helpers import (
    ETHER_ASSET,
    GOVERNANCE,
    MIN_STAKE,
    PROVER_BPS,
    REASON_OUT_OF_TOLERANCE,
    SLASH,
    TOLERANCE,
    UNBONDING,
    WINDOW,
    Judged,
)
from oracle_helpers import OTHER_LABEL, now, warp

from _profiles import examples
from ailedger.chain.eip712 import Domain
from ailedger.chain.oracle_report import (
    OracleReport,
    observation_digest,
    report_hash,
    sign_observation,
)

LIAR = 3
#: oracle i observes VALUES[i]; the median the contract stores is 520 (observations[4 // 2]).
VALUES = [500, 510, 520, 900]
MEDIAN = 520


@pytest.fixture
def staked(jd: Judged) -> Judged:
    """Terms declared, every oracle staked, round 1 accepted (the liar said 900)."""
    jd.declare()
    for i in range(4):
        jd.stake(jd.oracle(i))
    jd.accept(1, VALUES)
    return jd


def report1(jd: Judged) -> OracleReport:
    """Round 1's report as it was transmitted (same timestamp)."""
    stamp = int(jd.o.feeds.functions.getRound(jd.o.feed, 1).call()[1])
    return jd.o.report(1, VALUES, timestamp=stamp)


# --- the happy path: the liar loses its stake ---------------------------------------------


def test_liar_is_slashed_and_the_split_is_paid_to_prover_and_treasury(staked: Judged) -> None:
    jd = staked
    report = report1(jd)
    stored, accepted_at = jd.o.feeds.functions.acceptedReport(jd.o.feed, 1).call()
    assert stored == report_hash(report)[:24]
    assert report.observations_timestamp <= accepted_at <= now(jd.chain)
    liar = jd.oracle(LIAR).address
    receipt = jd.chain.send(jd.challenge_call(report, LIAR), jd.prover)
    (slashed,) = jd.chain.events(jd.manager, "Slashed", receipt)
    args = slashed["args"]
    fault = jd.judge.functions.faultIdOf(jd.o.feed, 1, liar).call()
    digest = observation_digest(jd.o.domain(), report, 900)
    assert (args["participant"], args["judge"], args["prover"]) == (
        liar,
        jd.judge.address,
        jd.prover,
    )
    assert (args["faultId"], args["reasonCode"], args["evidenceHash"]) == (
        fault,
        REASON_OUT_OF_TOLERANCE,
        digest,
    )
    assert args["amount"] == SLASH
    assert args["proverShare"] == SLASH * PROVER_BPS // 10_000
    assert args["treasuryShare"] == SLASH - args["proverShare"]
    assert jd.owed(jd.prover) == args["proverShare"]
    assert jd.owed(jd.treasury) == args["treasuryShare"]
    assert jd.stake_of(liar)["free"] == MIN_STAKE - SLASH
    (event,) = jd.chain.events(jd.judge, "ObservationChallenged", receipt)
    assert (event["args"]["value"], event["args"]["answer"]) == (900, MEDIAN)
    assert event["args"]["deviation"] == 900 - MEDIAN
    # once slashed below the minimum, the liar is no longer accountable, nor is the feed
    assert not jd.judge.functions.isAccountable(jd.o.feed, liar).call()
    assert not jd.judge.functions.feedAccountable(jd.o.feed).call()


def test_feed_accountable_only_when_every_oracle_stakes_the_minimum(jd: Judged) -> None:
    feed = jd.o.feed
    assert not jd.judge.functions.feedAccountable(feed).call()  # no terms yet
    jd.declare()
    for i in range(3):
        jd.stake(jd.oracle(i))
    jd.stake(jd.oracle(3), MIN_STAKE - 1)
    assert jd.judge.functions.isAccountable(feed, jd.oracle(0).address).call()
    assert not jd.judge.functions.isAccountable(feed, jd.oracle(3).address).call()
    assert not jd.judge.functions.feedAccountable(feed).call()
    jd.stake(jd.oracle(3), 1)
    assert jd.judge.functions.feedAccountable(feed).call()
    # the unregistered judge's view says no, whatever the stakes
    jd.declare(jd.rogue)
    assert not jd.rogue.functions.feedAccountable(feed).call()


# --- terms ---------------------------------------------------------------------------------


def test_terms_are_the_creators_declared_once_and_bounded(jd: Judged) -> None:
    call = jd.judge.functions.declareTerms(jd.o.feed, ETHER_ASSET, MIN_STAKE, SLASH, 1, WINDOW)
    assert jd.chain.revert_reason(call, jd.prover) == "NotFeedCreator"
    too_long = jd.judge.functions.declareTerms(
        jd.o.feed, ETHER_ASSET, MIN_STAKE, SLASH, 1, UNBONDING + 1
    )
    assert jd.chain.revert_reason(too_long, jd.o.creator) == "WindowTooLong"
    for args in ((0, 1, 1), (MIN_STAKE, 0, 1), (MIN_STAKE, MIN_STAKE + 1, 1), (1, 1, 0)):
        stake, slash, window = args
        bad = jd.judge.functions.declareTerms(jd.o.feed, ETHER_ASSET, stake, slash, 1, window)
        assert jd.chain.revert_reason(bad, jd.o.creator) == "BadTerms"
    jd.declare()
    assert jd.chain.revert_reason(call, jd.o.creator) == "TermsAlreadyDeclared"
    terms = jd.judge.functions.termsOf(jd.o.feed).call()
    assert tuple(terms) == (ETHER_ASSET, WINDOW, 1, MIN_STAKE, SLASH, TOLERANCE)


def test_no_terms_no_round(jd: Judged) -> None:
    report = jd.accept(1, VALUES)
    assert jd.chain.revert_reason(jd.challenge_call(report, LIAR), jd.prover) == "NoTerms"
    jd.declare()
    later = replace(report, epoch=2)
    sig = sign_observation(jd.o.domain(), later, 900, jd.oracle(LIAR))
    assert jd.chain.revert_reason(jd.challenge_call(later, LIAR, sig), jd.prover) == "NoRound"


# --- attacks -------------------------------------------------------------------------------


def test_honest_oracle_within_tolerance_cannot_be_slashed(staked: Judged) -> None:
    jd = staked
    report = report1(jd)
    for honest in (0, 1, 2):
        call = jd.challenge_call(report, honest)
        assert jd.chain.revert_reason(call, jd.prover) == "WithinTolerance"
        assert jd.stake_of(jd.oracle(honest).address)["free"] == MIN_STAKE
    assert jd.owed(jd.prover) == 0  # a failed challenge changes nothing (it reverts)


def test_forged_observation_signature_is_refused(staked: Judged) -> None:
    jd = staked
    report = report1(jd)
    # another oracle's key, or the liar's key over another value: not the liar's signature
    # over what the report says it observed
    by_other = sign_observation(jd.o.domain(), report, 900, jd.oracle(0))
    other_value = sign_observation(jd.o.domain(), report, 901, jd.oracle(LIAR))
    for sig in (by_other, other_value):
        call = jd.challenge_call(report, LIAR, sig)
        assert jd.chain.revert_reason(call, jd.prover) == "NotTheObserversSignature"
    garbage = jd.challenge_call(report, LIAR, b"\x01" * 65)
    assert jd.chain.revert_reason(garbage, jd.prover).startswith("ECDSA")
    assert jd.stake_of(jd.oracle(LIAR).address)["slashed"] == 0


def test_replayed_observation_signatures_are_refused(staked: Judged) -> None:
    """A signature of the liar's over the same value for another epoch, feed, chain or
    contract does not verify for round 1."""
    jd = staked
    report = report1(jd)
    domain = jd.o.domain()
    other_feed = jd.o.create_feed(OTHER_LABEL)
    replays = [
        sign_observation(domain, replace(report, epoch=2), 900, jd.oracle(LIAR)),
        sign_observation(domain, replace(report, feed_id=other_feed), 900, jd.oracle(LIAR)),
        sign_observation(
            Domain(domain.name, domain.version, domain.chain_id + 1, domain.verifying_contract),
            report,
            900,
            jd.oracle(LIAR),
        ),
        sign_observation(
            Domain(domain.name, domain.version, domain.chain_id, jd.judge.address),
            report,
            900,
            jd.oracle(LIAR),
        ),
    ]
    for sig in replays:
        call = jd.challenge_call(report, LIAR, sig)
        assert jd.chain.revert_reason(call, jd.prover) == "NotTheObserversSignature"


def test_transmit_refuses_observations_not_signed_by_their_observer(jd: Judged) -> None:
    """The gap is closed: f+1 report signers cannot attribute a value to an oracle that did
    not sign it, nor reuse an observation signature of another round."""
    report = jd.o.report(1, VALUES)
    sigs = jd.o.sign(report, jd.o.signer_keys()[:2])
    domain = jd.o.domain()
    good = [
        sign_observation(domain, report, v, jd.oracle(i))
        for i, v in zip(report.observers, report.observations, strict=True)
    ]
    framed = list(good)
    framed[-1] = sign_observation(domain, report, 900, jd.oracle(0))  # oracle 0 signs for 3
    old = list(good)
    old[0] = sign_observation(domain, replace(report, epoch=7), VALUES[0], jd.oracle(0))
    for observed in (framed, old, good[:-1], [bytes(65)] * 4):
        call = jd.o.transmit(report, sigs, observation_signatures=observed)
        assert jd.chain.revert_reason(call) in (
            "ObservationNotSigned",
            "ObservationSignatureCount",
            "ECDSAInvalidSignature",
        )
    jd.chain.send(jd.o.transmit(report, sigs, observation_signatures=good))


def test_a_report_that_is_not_the_stored_one_is_refused(staked: Judged) -> None:
    """The liar's own signature over 900 for another input root (a report the transmitter
    never stored) does not count against round 1."""
    jd = staked
    report = report1(jd)
    other = replace(report, input_root=b"\x33" * 32)
    sig = sign_observation(jd.o.domain(), other, 900, jd.oracle(LIAR))
    call = jd.challenge_call(other, LIAR, sig)
    assert jd.chain.revert_reason(call, jd.prover) == "NotTheStoredReport"
    wrong_position = jd.challenge_call(report, LIAR, position=4)
    assert jd.chain.revert_reason(wrong_position, jd.prover) == "BadPosition"


def test_one_slash_per_fault(staked: Judged) -> None:
    jd = staked
    report = report1(jd)
    jd.chain.send(jd.challenge_call(report, LIAR), jd.prover)
    again = jd.challenge_call(report, LIAR)
    assert jd.chain.revert_reason(again, jd.chain.accounts[6]) == "AlreadySlashed"
    assert jd.stake_of(jd.oracle(LIAR).address)["slashed"] == SLASH
    # the next round's lie is another fault
    report2 = jd.accept(2, VALUES)
    jd.chain.send(jd.challenge_call(report2, LIAR), jd.prover)
    assert jd.stake_of(jd.oracle(LIAR).address)["slashed"] == 2 * SLASH


def test_no_challenge_after_the_window(staked: Judged) -> None:
    jd = staked
    report = report1(jd)
    accepted_at = jd.o.feeds.functions.acceptedReport(jd.o.feed, 1).call()[1]
    closes = accepted_at + WINDOW
    warp(jd.chain, closes - now(jd.chain) - 5)
    call = jd.challenge_call(report, LIAR)
    assert call.call({"from": jd.prover}) == SLASH  # still open (a dry run)
    warp(jd.chain, closes - now(jd.chain) + 1)
    assert jd.chain.revert_reason(call, jd.prover) == "ChallengeWindowClosed"


def test_an_unregistered_judge_cannot_slash(staked: Judged) -> None:
    jd = staked
    jd.declare(jd.rogue)
    call = jd.challenge_call(jd.accept(2, VALUES), LIAR, judge=jd.rogue)
    assert jd.chain.revert_reason(call, jd.prover) == "NotJudge"
    # registered by governance, it acts only after the governance delay
    jd.chain.send(jd.manager.functions.proposeJudge(jd.rogue.address, PROVER_BPS), jd.governor)
    assert jd.chain.revert_reason(call, jd.prover) == "NotJudge"
    assert GOVERNANCE > WINDOW  # by then round 2's window has closed
    warp(jd.chain, GOVERNANCE)
    assert jd.chain.revert_reason(call, jd.prover) == "ChallengeWindowClosed"


def test_unbonding_does_not_escape_the_window(staked: Judged) -> None:
    """The liar asks for its whole stake back right after the round: it is unbonding (no
    longer accountable) but slashable until the window closes, and the unbonding delay
    outlasts the window, so it cannot withdraw first."""
    jd = staked
    liar = jd.oracle(LIAR)
    jd.send_as(liar, jd.manager.functions.requestWithdrawal(ETHER_ASSET, MIN_STAKE))
    assert not jd.judge.functions.isAccountable(jd.o.feed, liar.address).call()
    early = jd.manager.functions.withdraw(ETHER_ASSET, liar.address)
    assert jd.chain.revert_reason(early, liar.address) == "UnbondingNotDue"
    warp(jd.chain, WINDOW - 60)
    jd.chain.send(jd.challenge_call(report1(jd), LIAR), jd.prover)
    stake = jd.stake_of(liar.address)
    assert (stake["unbonding"], stake["slashed"]) == (MIN_STAKE - SLASH, SLASH)


def test_terms_do_not_reach_back_to_observations_made_before_them(jd: Judged) -> None:
    """A feed's creator who declares terms after seeing a stored round's observations could
    pick a tolerance just below an honest oracle's deviation and slash it. Only rounds
    accepted after the terms were declared are judged by them."""
    for i in range(4):
        jd.stake(jd.oracle(i))
    report = jd.accept(1, VALUES)
    honest = 0  # observed 500, 20 below the median 520
    jd.declare(tolerance=MEDIAN - VALUES[honest] - 1)
    call = jd.challenge_call(report, honest)
    assert jd.chain.revert_reason(call, jd.prover) == "RoundBeforeTerms"
    assert jd.stake_of(jd.oracle(honest).address)["slashed"] == 0
    # the terms hold for rounds accepted after they were declared
    assert jd.judge.functions.termsOf(jd.o.feed).call()[2] == 2
    later = jd.accept(2, VALUES)
    jd.chain.send(jd.challenge_call(later, honest), jd.prover)
    assert jd.stake_of(jd.oracle(honest).address)["slashed"] == SLASH


def test_a_judge_paying_the_prover_everything_makes_no_feed_accountable(jd: Judged) -> None:
    """With proverBps == 10000 a liar who challenges itself from a second account recovers its
    whole slash: the penalty's floor (the treasury's share) is zero, so the feed is not
    accountable whatever the stakes."""
    jd.chain.send(jd.manager.functions.proposeJudge(jd.rogue.address, 10_000), jd.governor)
    warp(jd.chain, GOVERNANCE)
    assert jd.manager.functions.isJudge(jd.rogue.address).call()
    jd.declare()
    jd.declare(jd.rogue)
    for i in range(4):
        jd.stake(jd.oracle(i))
    assert jd.judge.functions.feedAccountable(jd.o.feed).call()
    assert not jd.rogue.functions.feedAccountable(jd.o.feed).call()


def test_the_oracle_cannot_challenge_itself(staked: Judged) -> None:
    jd = staked
    liar = jd.oracle(LIAR)
    call = jd.challenge_call(report1(jd), LIAR)
    assert jd.chain.revert_reason(call, liar.address) == "SelfChallenge"


@pytest.mark.parametrize("slash", [1, 3, 7, 10_001, 4 * 10**17 + 1])
def test_rounding_in_the_split(jd: Judged, slash: int) -> None:
    """The prover gets floor(slash * bps / 10000), the treasury the rest: nothing is lost
    or created."""
    jd.declare(min_stake=max(slash, 1), slash=slash)
    for i in range(4):
        jd.stake(jd.oracle(i), max(slash, 1))
    report = jd.accept(1, VALUES)
    receipt = jd.chain.send(jd.challenge_call(report, LIAR), jd.prover)
    (event,) = jd.chain.events(jd.manager, "Slashed", receipt)
    prover, treasury = event["args"]["proverShare"], event["args"]["treasuryShare"]
    assert prover == slash * PROVER_BPS // 10_000
    assert prover + treasury == slash == event["args"]["amount"]
    assert jd.owed(jd.prover) + jd.owed(jd.treasury) == slash


@settings(
    max_examples=examples(25),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    value=st.integers(-(2**255), 2**255 - 1),
    epoch=st.integers(0, 2**64 - 1),
    stamp=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    values=st.lists(st.integers(-(2**255), 2**255 - 1), min_size=1, max_size=4),
)
def test_observation_digest_and_report_hash_match_the_contract(
    jd: Judged, value: int, epoch: int, stamp: int, root: bytes, values: list[int]
) -> None:
    """The Python encoders (oracle nodes, the round leader, the CLI) are the contract's, byte
    for byte, for any value, epoch, time, input root and observations."""
    base = jd.o.report(1, sorted(values))
    report = replace(base, epoch=epoch, observations_timestamp=stamp, input_root=root)
    feeds = jd.o.feeds.functions
    onchain = feeds.observationDigest(report.as_tuple(), value).call()
    assert onchain == observation_digest(jd.o.domain(), report, value)
    assert feeds.reportHash(report.as_tuple()).call() == report_hash(report)

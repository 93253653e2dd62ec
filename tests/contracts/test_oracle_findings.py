"""The oracle and settlement findings of issue 10, each run as the attack it describes, on
the embedded chain and on anvil, and each seen to fail:

1. feed hijack: a policy holder creating the feed its policy names, a feed creator swapping
   in its own keys, a payer who runs the feed;
3. locked bonus money: a huge epoch jump, a skipped week;
4. settlement race: a later non-triggering report sent ahead of the holder's settlement;
14. forced ether, holders that cannot receive ether;
15. observations attributed to oracles that did not sign: what the contract does and does
    not prove (the per-observation check lives in the co-signing node: see
    ``tests/oracle/test_node.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oracle_helpers import (
    CONFIG_DELAY,
    ETHER,
    FEED_LABEL,
    Oracles,
    deploy_oracles,
    now,
    oracle_keys,
    pay,
    warp,
)
from web3 import Web3

from ailedger.chain.oracle_report import OracleReport, sign_observation, sign_report

ABOVE = 0
DAY = 86_400
GRACE = DAY  # ParametricEscrow.SETTLEMENT_GRACE


@pytest.fixture(scope="module")
def _oracles(w3: Web3) -> Oracles:
    return deploy_oracles(w3)


@pytest.fixture
def o(_oracles: Oracles) -> Iterator[Oracles]:
    snap = _oracles.chain.snapshot()
    yield _oracles
    _oracles.chain.revert_to(snap)


def insurer(o: Oracles) -> str:
    return o.chain.accounts[1]


def holder(o: Oracles) -> str:
    return o.chain.accounts[2]


def payer(o: Oracles) -> str:
    return o.chain.accounts[3]


def contractor(o: Oracles) -> str:
    return o.chain.accounts[4]


def write_policy(
    o: Oracles,
    payout: int = 5 * ETHER,
    *,
    feed: bytes | None = None,
    digest: bytes | None = None,
    days: int = 30,
    who: str | None = None,
) -> int:
    """Fund a pool with ``payout`` and write one policy (score above 600) on it."""
    assert pay(o.chain, o.escrow.functions.createPool(), insurer(o), payout)["status"] == 1
    pool = int(o.escrow.functions.poolCount().call())
    t = now(o.chain)
    call = o.escrow.functions.createPolicy(
        pool,
        who or holder(o),
        feed or o.feed,
        o.digest(feed) if digest is None else digest,
        ABOVE,
        600,
        payout,
        t,
        t + days * DAY,
    )
    o.chain.send(call, insurer(o))
    return int(o.escrow.functions.policyCount().call())


def own_report(
    o: Oracles,
    feed: bytes,
    keys: list[Any],
    epoch: int,
    values: list[int],
    digest: bytes | None = None,
) -> OracleReport:
    """A report on ``feed`` by ``keys`` (the attacker's own oracle set), for config ``digest``
    (default: the one in force)."""
    signers = sorted((k.address for k in keys), key=lambda a: int(a, 16))
    observed = dict(zip(signers, values, strict=False))
    return OracleReport.build(
        feed,
        o.digest(feed) if digest is None else digest,
        epoch,
        observed,
        signers,
        b"\1" * 32,
        b"\2" * 32,
        now(o.chain),
    )


def settle_reason(o: Oracles, policy: int, epoch: int) -> str:
    return o.chain.revert_reason(o.escrow.functions.settle(policy, epoch), holder(o))


# --- finding 1: feed hijack ---------------------------------------------------------------------


def test_finding1_feed_hijack_policy_holder_cannot_create_the_named_feed(o: Oracles) -> None:
    """The holder creates "the same" feed with its own keys before the operator does: it lands
    in the holder's namespace, the operator still creates its own, and the holder's forged
    report does not settle the policy (which names the operator's feed and config)."""
    keys = oracle_keys(4, base=700)  # the holder's own four keys
    signers = sorted((k.address for k in keys), key=lambda a: int(a, 16))
    # A single key (n=1, f=0), as in the review, is refused for any feed.
    call = o.feeds.functions.createFeed(FEED_LABEL, signers[:1], [holder(o)], 0, 0, 1000, 3600)
    assert o.chain.revert_reason(call, holder(o)) == "BadOracleCount"
    squat = o.create_feed(FEED_LABEL, signers, 1, [holder(o)], creator=holder(o))
    assert squat != o.feed  # same label, another namespace
    # A policy cannot be written on a feed that does not exist, nor on the squatter's config
    # under the operator's feed id.
    unknown = o.feeds.functions.feedIdOf(o.creator, b"\x99" * 32).call()
    assert pay(o.chain, o.escrow.functions.createPool(), insurer(o), 5 * ETHER)["status"] == 1
    t = now(o.chain)
    args = (1, holder(o), unknown, o.digest(), ABOVE, 600, ETHER, t, t + DAY)
    assert o.chain.revert_reason(o.escrow.functions.createPolicy(*args), insurer(o)) == (
        "UnknownConfig"
    )
    args = (1, holder(o), o.feed, o.digest(squat), ABOVE, 600, ETHER, t, t + DAY)
    assert o.chain.revert_reason(o.escrow.functions.createPolicy(*args), insurer(o)) == (
        "UnknownConfig"
    )
    # A policy on the squatter's own feed, whose creator is the holder: refused.
    args = (1, holder(o), squat, o.digest(squat), ABOVE, 600, ETHER, t, t + DAY)
    assert o.chain.revert_reason(o.escrow.functions.createPolicy(*args), insurer(o)) == (
        "InterestedFeedCreator"
    )
    policy = write_policy(o, 4 * ETHER)
    forged = own_report(o, squat, keys, 1, [999, 999, 999])
    o.chain.send(o.transmit(forged, sign_report(o.domain(), forged, keys[:2])), holder(o))
    assert settle_reason(o, policy, 1) == "NoReport"  # nothing on the operator's feed
    assert o.escrow.functions.claimable(holder(o)).call() == 0


def test_finding1_feed_hijack_creator_swapping_in_its_own_keys_cannot_settle(o: Oracles) -> None:
    """The feed's creator replaces the honest 4-oracle set with its own keys: the change
    waits CONFIG_DELAY (visible to every policy), and rounds under the new config do not
    settle a policy pinned to the old one."""
    policy = write_policy(o)
    keys = oracle_keys(4, base=800)
    own = sorted((k.address for k in keys), key=lambda a: int(a, 16))
    single = o.feeds.functions.setConfig(o.feed, own[:1], [o.creator], 0, 0, 1000, 3600)
    assert o.chain.revert_reason(single, o.creator) == "BadOracleCount"  # n=1, f=0: refused
    receipt = o.set_config(own, transmitters=[o.creator])
    (event,) = o.chain.events(o.feeds, "ConfigProposed", receipt)
    assert event["args"]["activatesAt"] >= now(o.chain) + CONFIG_DELAY - 1
    proposed = bytes(event["args"]["configDigest"])
    early = own_report(o, o.feed, keys, 1, [999, 999, 999], proposed)
    sigs = sign_report(o.domain(), early, keys[:2])
    # Not in force yet: the honest set still rules, the report names the wrong config.
    assert o.chain.revert_reason(o.transmit(early, sigs), o.creator) == "ConfigDigestMismatch"
    warp(o.chain, CONFIG_DELAY)
    forged = own_report(o, o.feed, keys, 1, [999, 999, 999])
    o.chain.send(o.transmit(forged, sign_report(o.domain(), forged, keys[:2])), o.creator)
    assert o.feeds.functions.getRound(o.feed, 1).call()[0] == 999  # stored, under version 2
    assert settle_reason(o, policy, 1) == "ReportUnderOtherConfig"
    assert o.escrow.functions.claimable(holder(o)).call() == 0


def test_finding1_feed_hijack_payer_who_runs_the_feed_cannot_take_bonus_weeks_back(
    o: Oracles,
) -> None:
    """A payer who created the feed may not fund a bonus on it; and a creator that rotates
    to its own keys and reports incidents does not move pinned weeks."""
    later = now(o.chain) + 30 * DAY
    call = o.bonus.functions.createAgreement(contractor(o), o.feed, o.digest(), 1, 2, later, ETHER)
    try:
        status = pay(o.chain, call, o.creator, 2 * ETHER)["status"]
    except Exception:  # eth-tester raises on revert
        status = 0
    assert status == 0
    assert o.chain.revert_reason(call, o.creator) == "InterestedFeedCreator"
    assert pay(o.chain, call, payer(o), 2 * ETHER)["status"] == 1
    keys = oracle_keys(4, base=800)
    o.set_config([k.address for k in keys], transmitters=[o.creator])
    warp(o.chain, CONFIG_DELAY)
    incidents = own_report(o, o.feed, keys, 1, [5, 5, 5])
    o.chain.send(o.transmit(incidents, sign_report(o.domain(), incidents, keys[:2])), o.creator)
    call = o.bonus.functions.settleWeek(1, 1)
    assert o.chain.revert_reason(call) == "ReportUnderOtherConfig"
    assert o.bonus.functions.claimable(payer(o)).call() == 0


# --- finding 3: locked bonus money ---------------------------------------------------------------


def test_finding3_locked_bonus_money_epoch_jump_is_refused(o: Oracles) -> None:
    """One report with epoch 2^64-1 would end the feed; the step is bounded."""
    huge = o.report(2**64 - 1, [0, 0, 0])
    sigs = o.sign(huge, o.signer_keys()[:2])
    assert o.chain.revert_reason(o.transmit(huge, sigs)) == "EpochStepTooLarge"
    step = int(o.feeds.functions.MAX_EPOCH_STEP().call())
    too_far = o.report(step + 1, [0, 0, 0])
    assert o.chain.revert_reason(o.transmit(too_far, o.sign(too_far, o.signer_keys()[:2]))) == (
        "EpochStepTooLarge"
    )
    o.accept(step, [0, 0, 0])  # the largest step is fine


def test_finding3_locked_bonus_money_skipped_week_is_refunded_after_deadline(o: Oracles) -> None:
    """Week 2 is skipped (epochs only grow, so it can never be reported): after the refund
    time its money goes back to the payer; reported weeks still settle on their rounds."""
    deadline = now(o.chain) + 10 * DAY
    call = o.bonus.functions.createAgreement(
        contractor(o), o.feed, o.digest(), 1, 3, deadline, ETHER
    )
    assert pay(o.chain, call, payer(o), 3 * ETHER)["status"] == 1
    o.accept(1, [0, 0, 0])
    o.accept(3, [0, 0, 0])
    late = o.report(2, [0, 0, 0])
    assert o.chain.revert_reason(o.transmit(late, o.sign(late, o.signer_keys()[:2]))) == (
        "EpochNotIncreasing"
    )
    f = o.bonus.functions
    assert o.chain.revert_reason(f.settleWeek(1, 2)) == "NoReport"
    assert o.chain.revert_reason(f.refundWeek(1, 2)) == "RefundNotDue"
    warp(o.chain, 10 * DAY + 1)
    assert o.chain.revert_reason(f.refundWeek(1, 1)) == "WeekReported"  # it has its round
    receipt = o.chain.send(f.refundWeek(1, 2), contractor(o))  # anyone may trigger it
    (event,) = o.chain.events(o.bonus, "WeekRefunded", receipt)
    assert (event["args"]["week"], event["args"]["amount"]) == (2, ETHER)
    assert o.chain.revert_reason(f.refundWeek(1, 2)) == "WeekAlreadySettled"
    o.chain.send(f.settleWeek(1, 1))
    o.chain.send(f.settleWeek(1, 3))
    assert f.claimable(payer(o)).call() == ETHER
    assert f.claimable(contractor(o)).call() == 2 * ETHER
    deposited, paid, claimable, remaining = f.totals().call()
    assert (deposited, paid, claimable, remaining) == (3 * ETHER, 0, 3 * ETHER, 0)


# --- finding 4: settlement race ------------------------------------------------------------------


def test_finding4_settlement_race_later_report_cannot_hide_the_triggering_round(
    o: Oracles,
) -> None:
    """Round 1 triggers the policy. The insurer relays a genuinely signed, non-triggering
    round 2 first: it is not a transmitter, so it cannot; and when round 2 does land, the
    holder still settles on round 1, even after expiry, within the grace period."""
    policy = write_policy(o, days=1)
    o.accept(1, [700, 800, 900])  # triggering (median 800 > 600)
    calm = o.report(2, [100, 100, 100])
    sigs = o.sign(calm, o.signer_keys()[:2])
    assert o.chain.revert_reason(o.transmit(calm, sigs), insurer(o)) == "NotATransmitter"
    o.chain.send(o.transmit(calm, sigs))  # the feed's transmitter sends it
    assert o.feeds.functions.latestEpoch(o.feed).call() == 2
    warp(o.chain, DAY + 60)  # past expiry, inside the grace
    assert o.chain.revert_reason(o.escrow.functions.expire(policy), insurer(o)) == (
        "PolicyNotExpired"
    )
    assert settle_reason(o, policy, 2) == "TriggerNotMet"
    receipt = o.chain.send(o.escrow.functions.settle(policy, 1), holder(o))
    (event,) = o.chain.events(o.escrow, "PolicyTriggered", receipt)
    assert (event["args"]["epoch"], event["args"]["answer"]) == (1, 800)
    assert o.escrow.functions.claimable(holder(o)).call() == 5 * ETHER
    assert o.chain.revert_reason(o.escrow.functions.expire(policy), insurer(o)) == (
        "PolicyNotActive"
    )


def test_finding4_settlement_race_reserve_returns_only_after_the_grace(o: Oracles) -> None:
    policy = write_policy(o, days=1)
    warp(o.chain, DAY + GRACE // 2)
    assert o.chain.revert_reason(o.escrow.functions.expire(policy)) == "PolicyNotExpired"
    warp(o.chain, GRACE)
    o.chain.send(o.escrow.functions.expire(policy), insurer(o))
    assert settle_reason(o, policy, 1) == "PolicyNotActive"


# --- finding 14: forced ether, withdrawTo, surplus sweep -----------------------------------------


@pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")
@pytest.mark.parametrize("target", ["escrow", "bonus"])
def test_finding14_forced_ether_is_swept_to_the_owner_not_stuck(o: Oracles, target: str) -> None:
    contract = getattr(o, target)
    o.chain.send(o.escrow.functions.createPool(), insurer(o))  # some books to keep intact
    forcer = o.chain.compiled["ForceSend"]
    factory = o.chain.w3.eth.contract(abi=forcer.abi, bytecode=forcer.bytecode)
    tx = factory.constructor(contract.address).transact(
        {"from": o.chain.accounts[6], "value": 3 * ETHER}
    )
    assert o.chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    assert o.chain.w3.eth.get_balance(contract.address) == 3 * ETHER
    assert contract.functions.surplus().call() == 3 * ETHER
    assert contract.functions.totals().call() == [0, 0, 0, 0]  # not booked as anyone's
    stranger = o.chain.accounts[6]
    assert o.chain.revert_reason(contract.functions.sweepSurplus(), stranger) == (
        "OwnableUnauthorizedAccount"
    )
    owner = contract.functions.owner().call()
    assert owner == o.admin
    o.chain.send(contract.functions.sweepSurplus(), owner)
    assert contract.functions.surplus().call() == 0
    assert contract.functions.claimable(owner).call() == 3 * ETHER
    assert o.chain.revert_reason(contract.functions.sweepSurplus(), owner) == "NoSurplus"
    o.chain.send(contract.functions.withdraw(), owner)
    assert contract.functions.totals().call() == [3 * ETHER, 3 * ETHER, 0, 0]
    assert o.chain.w3.eth.get_balance(contract.address) == 0


def test_finding14_two_step_ownership_handover(o: Oracles) -> None:
    new = o.chain.accounts[6]
    o.chain.send(o.escrow.functions.transferOwnership(new))
    assert o.escrow.functions.owner().call() == o.admin  # not until accepted
    assert o.escrow.functions.pendingOwner().call() == new
    assert o.chain.revert_reason(o.escrow.functions.acceptOwnership(), insurer(o)) == (
        "OwnableUnauthorizedAccount"
    )
    o.chain.send(o.escrow.functions.acceptOwnership(), new)
    assert o.escrow.functions.owner().call() == new


def test_finding14_holder_that_cannot_receive_ether_collects_with_withdraw_to(
    o: Oracles,
) -> None:
    vault = o.chain.deploy("NoReceiveHolder", o.escrow.address)
    policy = write_policy(o, 2 * ETHER, who=vault.address)
    o.accept(1, [900, 900, 900])
    o.chain.send(o.escrow.functions.settle(policy, 1))
    assert o.chain.revert_reason(vault.functions.collect()) == "TransferFailed"
    zero = "0x" + "00" * 20
    assert o.chain.revert_reason(vault.functions.collectTo(zero)) == "ZeroRecipient"
    beneficiary = o.chain.accounts[7]
    before = o.chain.w3.eth.get_balance(beneficiary)
    receipt = o.chain.send(vault.functions.collectTo(beneficiary))
    (event,) = o.chain.events(o.escrow, "Withdrawn", receipt)
    assert (event["args"]["account"], event["args"]["to"]) == (vault.address, beneficiary)
    assert o.chain.w3.eth.get_balance(beneficiary) == before + 2 * ETHER
    assert o.escrow.functions.claimable(vault.address).call() == 0


# --- finding 15: what a report attributes --------------------------------------------------------


def test_finding15_observations_are_attributed_only_by_their_own_observers(o: Oracles) -> None:
    """Revisited in issue 15: f+1 report signers (oracles 0 and 1) can no longer attribute
    values to oracles 2 and 3 who did not sign them; each observation carries its observer's
    own signature, which transmit checks. With those signatures the report is accepted; it
    still needs f+1 report signatures."""
    keys = o.signer_keys()
    report = o.report(1, [10, 20, 30], observers=[1, 2, 3])
    sigs = o.sign(report, keys[:2])
    domain = o.domain()
    own = [sign_observation(domain, report, v, keys[i]) for i, v in ((1, 10), (2, 20), (3, 30))]
    forged = [own[0], *(sign_observation(domain, report, v, keys[0]) for v in (20, 30))]
    call = o.transmit(report, sigs, observation_signatures=forged)  # 0 signs for 2 and 3
    assert o.chain.revert_reason(call) == "ObservationNotSigned"
    o.chain.send(o.transmit(report, sigs, observation_signatures=own))
    assert o.feeds.functions.getRound(o.feed, 1).call()[0] == 20  # the median, accepted
    lone = o.report(2, [10, 20, 30], observers=[0, 2, 3])
    assert o.chain.revert_reason(o.transmit(lone, o.sign(lone, keys[:1]))) == "TooFewSignatures"


def test_finding1_config_activation_is_open_to_anyone_but_never_early(o: Oracles) -> None:
    """activateConfig: anyone may call it, it never brings a proposed configuration in before
    its delay, and it refuses a feed that does not exist."""
    keys = oracle_keys(4, base=900)
    own = sorted((k.address for k in keys), key=lambda a: int(a, 16))
    before = o.version()
    o.set_config(own)
    stranger = holder(o)
    o.chain.send(o.feeds.functions.activateConfig(o.feed), stranger)
    assert o.version() == before
    unknown = o.feeds.functions.activateConfig(b"\x01" * 32)
    assert o.chain.revert_reason(unknown, stranger) == "UnknownFeed"
    warp(o.chain, CONFIG_DELAY)
    o.chain.send(o.feeds.functions.activateConfig(o.feed), stranger)
    assert o.version() == before + 1

"""FLRewards with one client (or aggregator) in two tasks of the same contract. The
StakeManager counts what the contract locks per account, not per task: a task's penalties,
challenges and releases must stay within that task's own stake or bond, or one task's
aggregator takes (or frees) what another task locked. And what a finished task's payouts
leave unclaimed goes back to the sponsor after a claim period. One deployment per module, a
snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fl_helpers import BOND, FL, STAKE, deploy_fl, model, penalties
from oracle_helpers import warp
from web3 import Web3

from ailedger.markets.flrewards import REASON_HURT_HELDOUT

WINDOW_PLUS = 3_601


@pytest.fixture(scope="module")
def _fl(w3: Web3) -> FL:
    return deploy_fl(w3)


@pytest.fixture
def fl(_fl: FL) -> Iterator[FL]:
    snap = _fl.chain.snapshot()
    yield _fl
    _fl.chain.revert_to(snap)


def _finish(fl: FL, task: bytes) -> None:
    at = fl.f.finishableAt(task).call()
    warp(fl.chain, max(1, at - fl.chain.w3.eth.get_block("latest")["timestamp"] + 1))
    fl.chain.send(fl.f.finish(task), fl.bystander)


def test_a_penalty_in_one_task_never_takes_the_stake_of_another(fl: FL) -> None:
    a, b = fl.start(), fl.start()
    victim = fl.clients[0]
    assert fl.locked(victim) == 2 * STAKE
    huge = penalties((victim, 100 * STAKE, REASON_HURT_HELDOUT))
    fl.post(fl.record(a, 1, fl.payouts(), huge))
    warp(fl.chain, WINDOW_PLUS)
    fl.chain.send(fl.slash_call(a, 1, huge, victim), fl.bystander)
    assert fl.client(a, victim)["slashed"] == STAKE
    assert fl.locked(victim) == STAKE  # task b's stake is still locked for task b
    # a second round of task a cannot reach into task b's stake either
    again = penalties((victim, STAKE, REASON_HURT_HELDOUT))
    fl.post(fl.record(a, 2, fl.payouts(), again))
    warp(fl.chain, WINDOW_PLUS)
    assert fl.chain.revert_reason(fl.slash_call(a, 2, again, victim)) == "NothingLocked"
    assert fl.locked(victim) == STAKE
    # task b can still penalise what it locked
    fl.post(fl.record(b, 1, fl.payouts(), again))
    warp(fl.chain, WINDOW_PLUS)
    fl.chain.send(fl.slash_call(b, 1, again, victim), fl.bystander)
    assert fl.client(b, victim)["slashed"] == STAKE
    assert fl.locked(victim) == 0


def test_leaving_a_task_frees_only_what_that_task_still_locks(fl: FL) -> None:
    a, b = fl.start(), fl.start()
    victim = fl.clients[0]
    half = penalties((victim, STAKE // 2, REASON_HURT_HELDOUT))
    fl.post(fl.record(a, 1, fl.payouts(), half))
    warp(fl.chain, WINDOW_PLUS)
    fl.chain.send(fl.slash_call(a, 1, half, victim), fl.bystander)
    assert fl.locked(victim) == STAKE + STAKE // 2
    full = penalties((victim, STAKE, REASON_HURT_HELDOUT))
    fl.post(fl.record(b, 1, fl.payouts(), full))  # task b penalises it too (slashed later)
    _finish(fl, a)  # past both deadlines: a finishes, b's round is closed
    fl.chain.send(fl.f.leave(a), victim)
    assert fl.locked(victim) == STAKE  # task b's stake stays locked
    # and task b can still slash all of it
    fl.chain.send(fl.slash_call(b, 1, full, victim), fl.bystander)
    assert fl.client(b, victim)["slashed"] == STAKE


def test_an_aggregator_loses_at_most_the_bond_of_the_task_it_lied_in(fl: FL) -> None:
    a, b = fl.start(), fl.start()
    assert fl.locked(fl.aggregator) == 2 * BOND
    first = fl.record(a, 1, fl.payouts([10, 0, 0, 0]))
    fl.post(first)
    second = fl.record(a, 2, fl.payouts([10, 0, 0, 0]), model_before=model(1))
    fl.post(second)
    for record in (first, second):
        fix = fl.correction(record, fl.payouts([1, 1, 1, 1]))
        fl.chain.send(fl.challenge_call(fix), fl.clients[0])
    assert fl.locked(fl.aggregator) == BOND  # task b's bond is intact
    _finish(fl, a)
    assert fl.locked(fl.aggregator) == BOND  # finishing a frees nothing of task b's bond
    # task b can still take its own bond on a proven lie
    lie = fl.record(b, 1, fl.payouts([10, 0, 0, 0]))
    fl.post(lie)
    fl.chain.send(fl.challenge_call(fl.correction(lie, fl.payouts([1, 1, 1, 1]))), fl.clients[0])
    assert fl.locked(fl.aggregator) == 0


# ---------------------------------------------------------------- what a task leaves unclaimed

CLAIM_PERIOD = 365 * 86_400


def test_unclaimed_payouts_go_back_to_the_sponsor_a_claim_period_after_the_finish(
    fl: FL,
) -> None:
    """An aggregator that posts a total above what its payout tree pays, or a client that
    never claims, would keep that part of the pool in the contract forever: `finish` refunds
    only the unreserved pool. A claim period after the finish anyone may sweep it back to the
    sponsor, once; claims end there."""
    from ailedger.markets.flrewards import Payout, PayoutTree

    task = fl.start()
    tree = PayoutTree([Payout(fl.clients[0], 40), Payout(fl.clients[1], 60)])
    fl.post(fl.record(task, 1, tree, payout_total=1_000))  # 900 more than the tree pays
    warp(fl.chain, WINDOW_PLUS)
    fl.chain.send(fl.claim_call(task, 1, tree, fl.clients[0]), fl.clients[0])
    assert fl.chain.revert_reason(fl.f.sweep(task), fl.bystander) == "WrongTaskStatus"
    _finish(fl, task)
    t = fl.task(task)
    assert t["reserved"] - t["paid"] == 960  # the lie and the unclaimed 60
    assert fl.chain.revert_reason(fl.f.sweep(task), fl.bystander) == "ClaimsOpen"
    refund_before = fl.f.refundable(fl.sponsor, "0x" + "0" * 40).call()
    warp(fl.chain, CLAIM_PERIOD + 1)
    fl.chain.send(fl.f.sweep(task), fl.bystander)
    assert fl.f.refundable(fl.sponsor, "0x" + "0" * 40).call() == refund_before + 960
    assert fl.chain.revert_reason(fl.f.sweep(task), fl.bystander) == "Swept"
    late = fl.claim_call(task, 1, tree, fl.clients[1])
    assert fl.chain.revert_reason(late, fl.clients[1]) == "Swept"
    t = fl.task(task)
    assert t["reserved"] == t["paid"] == 40
    held = fl.f.held("0x" + "0" * 40).call()
    assert fl.chain.w3.eth.get_balance(fl.rewards.address) >= held

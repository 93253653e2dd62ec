"""LabelingMarket under an outside review (issue 15): governance removing the market's judge or
market registration mid-task must not lock the pool and every labeler's stake forever; a
slashed labeler (or the requester, who chose the gold) is not paid a prover's share of the
slash by settling; reward shares of a pool near the token's full range do not overflow.
Runs on py-evm and on anvil (the ``w3`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labeling_helpers import MIN_STAKE, POOL, Labeling, deploy_labeling, gold_set, labels_with
from test_labeling_market import all_books, run_task
from web3 import Web3

from ailedger.markets.labeling import LATE, LOW_ACCURACY


@pytest.fixture(scope="module")
def _labeling(w3: Web3) -> Labeling:
    return deploy_labeling(w3)


@pytest.fixture
def lm(_labeling: Labeling) -> Iterator[Labeling]:
    chain = _labeling.chain
    snap = chain.snapshot()
    yield _labeling
    chain.revert_to(snap)
    _labeling.salts.clear()


def _score_all(lm: Labeling, task: int, answers: dict[int, bytes], gold: object) -> None:
    for i, labels in answers.items():
        lm.score(task, i, labels, gold)  # type: ignore[arg-type]


def test_a_judge_removed_mid_task_does_not_lock_the_task(lm: Labeling) -> None:
    """Without the judge role the market cannot slash: settlement releases the late and the
    inaccurate labelers' locks unslashed (SlashSkipped) and pays the others."""
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 2), 3: labels_with(gold, 8)}
    task = run_task(lm, gold, answers, late=(3,))
    lm.reveal_gold(task, gold)
    _score_all(lm, task, {1: answers[1], 2: answers[2]}, gold)
    lm.chain.send(lm.s.manager.functions.removeJudge(lm.market.address), lm.s.governor)
    receipt = lm.chain.send(lm.market.functions.settle(task), lm.s.prover)
    skipped = {
        e["args"]["labeler"]: e["args"]["reasonCode"]
        for e in lm.chain.events(lm.market, "SlashSkipped", receipt)
    }
    assert skipped == {lm.who(2): LOW_ACCURACY, lm.who(3): LATE}
    assert lm.chain.events(lm.market, "LabelerSlashed", receipt) == []
    for i in (1, 2, 3):
        s = lm.s.stake(lm.who(i), lm.s.token.address)
        assert (s["locked"], s["slashed"]) == (0, 0)
    assert lm.owed(lm.who(1)) == POOL
    all_books(lm)


def test_a_market_removed_mid_task_whose_locks_were_released_still_settles(
    lm: Labeling,
) -> None:
    """Governance removes the market; a labeler frees its lock in the StakeManager
    (releaseLock); settlement must still pay it and free the others, not revert forever."""
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 7), 3: labels_with(gold, 1)}
    task = run_task(lm, gold, answers, late=(4,))
    lm.reveal_gold(task, gold)
    _score_all(lm, task, answers, gold)
    lm.chain.send(lm.s.manager.functions.removeMarket(lm.market.address), lm.s.governor)
    token = lm.s.token.address
    lm.chain.send(lm.s.manager.functions.releaseLock(token, lm.market.address), lm.who(1))
    lm.chain.send(lm.s.manager.functions.releaseLock(token, lm.market.address), lm.who(3))
    receipt = lm.chain.send(lm.market.functions.settle(task), lm.s.prover)
    paid = {
        e["args"]["labeler"]: e["args"]["reward"]
        for e in lm.chain.events(lm.market, "LabelerPaid", receipt)
    }
    assert paid == {lm.who(1): POOL * 8 // 15, lm.who(2): POOL * 7 // 15}
    # labeler 3 took its stake out of the removed market's reach before settlement
    (skipped,) = lm.chain.events(lm.market, "SlashSkipped", receipt)
    assert (skipped["args"]["labeler"], skipped["args"]["reasonCode"]) == (
        lm.who(3),
        LOW_ACCURACY,
    )
    for i in (1, 2, 3):
        s = lm.s.stake(lm.who(i), token)
        assert (s["locked"], s["slashed"]) == (0, 0)
    all_books(lm)


def test_a_slashed_labeler_settling_gets_no_prover_share(lm: Labeling) -> None:
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 8)}
    task = run_task(lm, gold, answers, late=(2,))
    lm.reveal_gold(task, gold)
    lm.score(task, 1, answers[1], gold)
    late = lm.who(2)
    receipt = lm.chain.send(lm.market.functions.settle(task), late)
    (slashed,) = lm.chain.events(lm.s.manager, "Slashed", receipt)
    assert slashed["args"]["participant"] == late
    assert slashed["args"]["amount"] == MIN_STAKE
    assert slashed["args"]["proverShare"] == 0
    assert slashed["args"]["treasuryShare"] == MIN_STAKE
    assert lm.s.manager.functions.owed(late, lm.s.token.address).call() == 0
    all_books(lm)


def test_the_requester_settling_gets_no_prover_share(lm: Labeling) -> None:
    """The requester chose the gold: slashing on it must not pay the requester."""
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 1)}
    task = run_task(lm, gold, answers)
    lm.reveal_gold(task, gold)
    _score_all(lm, task, answers, gold)
    receipt = lm.chain.send(lm.market.functions.settle(task), lm.requester)
    (slashed,) = lm.chain.events(lm.s.manager, "Slashed", receipt)
    assert slashed["args"]["participant"] == lm.who(2)
    assert slashed["args"]["proverShare"] == 0
    assert lm.s.manager.functions.owed(lm.requester, lm.s.token.address).call() == 0
    # any other settler is paid the judge's share
    all_books(lm)


def test_any_other_settler_is_the_prover(lm: Labeling) -> None:
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 1)}
    task = run_task(lm, gold, answers)
    lm.reveal_gold(task, gold)
    _score_all(lm, task, answers, gold)
    receipt = lm.chain.send(lm.market.functions.settle(task), lm.s.prover)
    (slashed,) = lm.chain.events(lm.s.manager, "Slashed", receipt)
    assert slashed["args"]["prover"] == lm.s.prover
    assert slashed["args"]["proverShare"] == MIN_STAKE * 5_000 // 10_000


def test_shares_of_a_pool_near_the_full_uint256_range_do_not_overflow(lm: Labeling) -> None:
    """pool * weight must not overflow (a settlement that reverts forever locks every stake)."""
    big = lm.chain.deploy("ConsortiumToken", "Big", "BIG", lm.requester, 2**256 - 1)
    for i in (1, 2):
        lm.s.give(big, lm.who(i), MIN_STAKE * 3)
    gold = gold_set()
    pool = 2**255 + 1
    task = lm.post(gold, token=big, pool=pool)
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 6)}
    for i, labels in answers.items():
        lm.stake_and_join(task, i, token=big)
        lm.commit(task, i, labels)
    lm.to_reveal()
    for i, labels in answers.items():
        lm.reveal(task, i, labels)
    lm.to_gold()
    lm.reveal_gold(task, gold)
    _score_all(lm, task, answers, gold)
    receipt = lm.chain.send(lm.market.functions.settle(task), lm.s.prover)
    paid = {
        e["args"]["labeler"]: e["args"]["reward"]
        for e in lm.chain.events(lm.market, "LabelerPaid", receipt)
    }
    assert paid == {lm.who(1): pool * 8 // 14, lm.who(2): pool * 6 // 14}
    assert lm.owed(lm.requester, big) == pool - sum(paid.values())
    lm.books(big)

"""Random labeling tasks against a Python model, on py-evm and anvil: each example runs two tasks
one after the other with random labelers (1-5; any gold accuracy; some never reveal), a random
pool (1 wei up to 10**20), the gold revealed or not. Every labeler's outcome (paid its pro-rata
share, or slashed for a late or inaccurate reveal) and the requester's remainder must equal the
model's, the shares and the remainder must add up to the pool, and after every task (and after
every claim) the StakeManager's books and the market's books hold.

3 examples in the dev and ci profiles (``AILEDGER_STATEFUL_EXAMPLES=N`` sets another number)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from labeling_helpers import (
    GOLD,
    MIN_STAKE,
    THRESHOLD,
    Labeling,
    deploy_labeling,
    gold_set,
    labels_with,
)
from test_stake_manager import books as stake_books
from web3 import Web3

from _profiles import stateful_examples
from ailedger.markets.labeling import labels_commitment

PEOPLE = (1, 2, 3, 4, 5)

labeler = st.tuples(st.integers(0, GOLD), st.booleans())  # (correct gold answers, late)
task = st.fixed_dictionaries(
    {
        "labelers": st.lists(labeler, min_size=1, max_size=len(PEOPLE)),
        "pool": st.one_of(st.sampled_from([1, 2, 3, 7]), st.integers(1, 10**20)),
        "gold": st.booleans(),
    }
)


@pytest.fixture(scope="module")
def _labeling(w3: Web3) -> Labeling:
    lm = deploy_labeling(w3)
    for i in PEOPLE:  # enough stake for every task of an example
        lm.s.deposit(lm.who(i), lm.s.token, MIN_STAKE * 10)
    return lm


@pytest.fixture
def lm(_labeling: Labeling) -> Iterator[Labeling]:
    snap = _labeling.chain.snapshot()
    yield _labeling
    _labeling.chain.revert_to(snap)


def _books(lm: Labeling) -> None:
    lm.books()
    stake_books(lm.s, lm.s.token.address, [lm.who(i) for i in range(1, 7)])


def _run(lm: Labeling, spec: dict[str, object], seed: int) -> None:
    people = dict(zip(PEOPLE, spec["labelers"], strict=False))  # type: ignore[call-overload]
    pool = int(spec["pool"])  # type: ignore[call-overload]
    gold = gold_set(seed=seed)
    answers = {i: labels_with(gold, correct, seed=i + seed) for i, (correct, _) in people.items()}
    task_id = lm.post(gold, pool=pool)
    for i in people:  # join and commit in one transaction
        salt = bytes([i, seed]) * 16
        lm.salts[(task_id, lm.who(i))] = salt
        c = labels_commitment(
            lm.chain.chain_id, lm.market.address, task_id, lm.who(i), answers[i], salt
        )
        lm.chain.send(lm.market.functions.join(task_id, c), lm.who(i))
    lm.to_reveal()
    for i, (_, late) in people.items():
        if not late:
            lm.reveal(task_id, i, answers[i])
    lm.to_gold()
    revealed = [i for i, (_, late) in people.items() if not late]
    if spec["gold"]:
        lm.reveal_gold(task_id, gold)
        if revealed:
            call = lm.market.functions.score(
                task_id, [lm.who(i) for i in revealed], [answers[i] for i in revealed],
                gold.records(),
            )  # fmt: skip
            lm.chain.send(call)
        weights = {i: people[i][0] for i in revealed if people[i][0] * 10_000 >= THRESHOLD * GOLD}
    else:
        lm.past_gold()
        weights = dict.fromkeys(revealed, 1)
    owed_before = {i: lm.owed(lm.who(i)) for i in PEOPLE}
    requester_before = lm.owed(lm.requester)
    slashed_before = {i: lm.s.stake(lm.who(i), lm.s.token.address)["slashed"] for i in PEOPLE}
    lm.chain.send(lm.market.functions.settle(task_id))
    total = sum(weights.values())
    shares = {i: pool * w // total for i, w in weights.items()} if total else {}
    for i in people:
        got = lm.owed(lm.who(i)) - owed_before[i]
        slashed = lm.s.stake(lm.who(i), lm.s.token.address)["slashed"] - slashed_before[i]
        if i in weights:
            assert (got, slashed) == (shares[i], 0)
        else:
            assert (got, slashed) == (0, MIN_STAKE)
        assert lm.s.stake(lm.who(i), lm.s.token.address)["locked"] == 0
    rest = lm.owed(lm.requester) - requester_before
    assert rest == pool - sum(shares.values())
    assert 0 <= rest < max(1, len(shares)) or not shares
    _books(lm)


@given(first=task, second=task)
@settings(
    max_examples=stateful_examples(3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_tasks_settle_as_the_model_says(
    lm: Labeling, first: dict[str, object], second: dict[str, object]
) -> None:
    snap = lm.chain.snapshot()
    try:
        _run(lm, first, 0)
        _run(lm, second, 1)
        for who in (*(lm.who(i) for i in PEOPLE), lm.requester):
            if lm.owed(who):
                lm.chain.send(lm.market.functions.claim(lm.s.token.address, who), who)
                _books(lm)
        assert lm.s.token.functions.balanceOf(lm.market.address).call() == 0
    finally:
        lm.chain.revert_to(snap)

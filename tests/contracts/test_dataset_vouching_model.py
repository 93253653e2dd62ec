"""Sequences of audits against a model of DatasetVouching's money: random vouches, pool
funding and outcomes (passed, a record failing a check, no answer), the reward split and the
slashes predicted in Python and compared with the chain after every audit, with StakeManager's
and the contract's books (``books``). py-evm only (anvil runs the example-based tests)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_helpers import warp
from stake_helpers import PROVER_BPS
from vouch_helpers import (
    ANSWER_WINDOW,
    BAD,
    BOND,
    DISPUTE_WINDOW,
    GOOD,
    REWARD,
    SLASH_BPS,
    Vouching,
    books,
)
from web3.providers.eth_tester import EthereumTesterProvider

from _profiles import examples

OUTCOMES = st.sampled_from(["pass", "check", "silent"])


@pytest.fixture
def fresh(_vouching: Vouching) -> Vouching:
    """The module's deployment; each example runs behind its own snapshot."""
    if not isinstance(_vouching.chain.w3.provider, EthereumTesterProvider):
        pytest.skip("the model runs on py-evm")
    return _vouching


@settings(
    max_examples=examples(6),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(
    amounts=st.lists(st.integers(100, 10**6), min_size=1, max_size=3),
    pool=st.integers(0, 2_000),
    outcomes=st.lists(OUTCOMES, min_size=1, max_size=4),
)
def test_audits_move_money_as_the_model_says(
    fresh: Vouching, amounts: list[int], pool: int, outcomes: list[str]
) -> None:
    v = fresh
    snap = v.chain.snapshot()
    try:
        _run(v, amounts, pool, outcomes)
    finally:
        v.chain.revert_to(snap)


def _run(v: Vouching, amounts: list[int], pool: int, outcomes: list[str]) -> None:
    asset = v.sm.token.address
    curators = [v.curator(i + 1) for i in range(len(amounts))]
    vouched = {"good": dict(zip(curators, amounts, strict=True))}
    vouched["bad"] = dict(vouched["good"])
    for name in ("good", "bad"):
        for c, amount in vouched[name].items():
            v.vouch(name, c, amount)
    pools = {"good": pool, "bad": 0}
    if pool:
        v.chain.send(v.f.fund(v.ids["good"], pool), v.owner)
    owed = dict.fromkeys([*curators, v.challenger], 0)
    prover_owed = passes = 0
    for outcome in outcomes:
        name = "bad" if outcome == "check" else "good"
        if not any(vouched[name].values()):
            continue
        audit = v.open(name, 3)
        indices = v.draw(audit)
        if outcome == "silent":
            warp(v.chain, ANSWER_WINDOW + 1)
        else:
            v.chain.send(v.answer_call(audit, GOOD if name == "good" else BAD, indices), v.owner)
            if outcome == "pass":
                warp(v.chain, DISPUTE_WINDOW + 1)
        v.chain.send(v.f.settle(audit))
        if outcome == "pass":
            from_pool = min(REWARD, pools[name])
            reward = from_pool + BOND
            total = sum(vouched[name].values())
            shares = {c: reward * w // total for c, w in vouched[name].items()}
            for c, share in shares.items():
                owed[c] += share
            pools[name] += reward - from_pool - sum(shares.values())  # - taken + remainder
            passes += 1
        else:
            owed[v.challenger] += BOND
            for c, w in list(vouched[name].items()):
                cut = w * SLASH_BPS // 10_000
                prover_owed += cut * PROVER_BPS // 10_000
                vouched[name][c] = w - cut
        assert v.dataset(name)[5] == pools[name]
        for c in curators:
            assert v.f.vouched(v.ids[name], c).call() == vouched[name][c]
        for who, amount in owed.items():
            assert v.f.owed(who, asset).call() == amount
        assert v.sm.manager.functions.owed(v.challenger, asset).call() == prover_owed
        books(v, asset)
    # nothing is lost: the funded pool and the bonds of passed audits are in the pools or
    # owed to curators; failed audits' bonds are owed back
    paid = sum(owed[c] for c in curators)
    assert sum(pools.values()) + paid == pool + BOND * passes
    assert v.f.held(asset).call() == sum(pools.values()) + paid + owed[v.challenger]

"""ParametricEscrow policies that name a judge of the feed's oracles (issue 15): the escrow
itself refuses to pay on a feed whose oracles are not all staked with the judge, on py-evm and
anvil. The attacks: a payout on an unaccountable feed, an oracle that unbonds after the policy
was funded, a judge that is not registered with the StakeManager, and a fake judge chosen by
the insurer (what it can and cannot do to the holder: it can keep a triggered policy from
paying, so a holder checks ``judgeOf`` before relying on a policy)."""

from __future__ import annotations

from typing import Any

from judge_helpers import ETHER_ASSET, MIN_STAKE, Judged
from oracle_helpers import ETHER, now, pay, warp
from web3.contract import Contract

ABOVE = 0
ACTIVE, TRIGGERED, EXPIRED = 1, 2, 3
DAY = 86_400
ZERO = "0x" + "00" * 20


def insurer(jd: Judged) -> str:
    return jd.chain.accounts[1]


def holder(jd: Judged) -> str:
    return jd.chain.accounts[2]


def escrow(jd: Judged) -> Contract:
    return jd.o.escrow


def staked(jd: Judged) -> Judged:
    """Every oracle of the feed stakes the minimum and the feed's terms are declared."""
    jd.declare()
    for i in range(len(jd.o.signers())):
        jd.stake(jd.oracle(i))
    assert jd.judge.functions.feedAccountable(jd.o.feed).call()
    return jd


def pool(jd: Judged, wei: int) -> int:
    assert pay(jd.chain, escrow(jd).functions.createPool(), insurer(jd), wei)["status"] == 1
    return int(escrow(jd).functions.poolCount().call())


def accountable_policy(
    jd: Judged, pool_id: int, judge: str, payout: int = ETHER, expiry: int | None = None
) -> Any:
    t = now(jd.chain)
    return escrow(jd).functions.createAccountablePolicy(
        pool_id,
        holder(jd),
        jd.o.feed,
        jd.o.digest(),
        ABOVE,
        600,
        payout,
        t,
        t + 30 * DAY if expiry is None else expiry,
        judge,
    )


def status(jd: Judged, policy_id: int) -> int:
    return int(escrow(jd).functions.getPolicy(policy_id).call()[2])


def books(jd: Judged) -> tuple[int, int, int, int]:
    deposited, paid, claimable, remaining = escrow(jd).functions.totals().call()
    assert paid + claimable + remaining == deposited
    assert jd.chain.w3.eth.get_balance(escrow(jd).address) == claimable + remaining
    return deposited, paid, claimable, remaining


def test_accountable_feed_pays_and_the_judge_is_recorded(jd: Judged) -> None:
    staked(jd)
    pid = pool(jd, 2 * ETHER)
    receipt = jd.chain.send(accountable_policy(jd, pid, jd.judge.address), insurer(jd))
    (event,) = jd.chain.events(escrow(jd), "PolicyJudged", receipt)
    assert event["args"]["policyId"] == 1
    assert event["args"]["judge"] == jd.judge.address
    assert escrow(jd).functions.judgeOf(1).call() == jd.judge.address
    jd.accept(1, [700, 800, 650, 700])
    jd.chain.send(escrow(jd).functions.settle(1, 1), jd.chain.accounts[5])
    assert status(jd, 1) == TRIGGERED
    assert escrow(jd).functions.claimable(holder(jd)).call() == ETHER
    assert books(jd) == (2 * ETHER, 0, ETHER, ETHER)


def test_unaccountable_feed_is_refused_when_written(jd: Judged) -> None:
    pid = pool(jd, ETHER)
    write = accountable_policy(jd, pid, jd.judge.address)
    assert jd.chain.revert_reason(write, insurer(jd)) == "FeedNotAccountable"  # no terms
    jd.declare()
    assert jd.chain.revert_reason(write, insurer(jd)) == "FeedNotAccountable"  # no stakes
    for i in range(len(jd.o.signers()) - 1):
        jd.stake(jd.oracle(i))
    assert jd.chain.revert_reason(write, insurer(jd)) == "FeedNotAccountable"  # one missing
    jd.stake(jd.oracle(len(jd.o.signers()) - 1), MIN_STAKE - 1)
    assert jd.chain.revert_reason(write, insurer(jd)) == "FeedNotAccountable"  # 1 wei short
    assert jd.chain.revert_reason(accountable_policy(jd, pid, ZERO), insurer(jd)) == ("ZeroAddress")
    jd.stake(jd.oracle(len(jd.o.signers()) - 1), 1)
    jd.chain.send(write, insurer(jd))
    assert escrow(jd).functions.policyCount().call() == 1
    assert books(jd) == (ETHER, 0, 0, ETHER)


def test_unregistered_judge_is_refused(jd: Judged) -> None:
    """The rogue judge has the feed's terms and staked oracles, but the StakeManager never
    registered it: its slashes would fail, so it holds no feed accountable."""
    staked(jd)
    jd.declare(jd.rogue)
    pid = pool(jd, ETHER)
    assert jd.chain.revert_reason(accountable_policy(jd, pid, jd.rogue.address), insurer(jd)) == (
        "FeedNotAccountable"
    )


def test_payout_refused_while_an_oracle_unbonds(jd: Judged) -> None:
    """An oracle requests its stake back after the policy was funded and written: the
    triggered policy does not pay (nothing credited, books unchanged) until it stakes again."""
    staked(jd)
    pid = pool(jd, ETHER)
    jd.chain.send(accountable_policy(jd, pid, jd.judge.address), insurer(jd))
    jd.accept(1, [900, 900, 900, 900])
    leaving = jd.oracle(2)
    jd.send_as(leaving, jd.manager.functions.requestWithdrawal(ETHER_ASSET, 1))
    assert not jd.judge.functions.feedAccountable(jd.o.feed).call()
    settle = escrow(jd).functions.settle(1, 1)
    assert jd.chain.revert_reason(settle) == "FeedNotAccountable"
    assert status(jd, 1) == ACTIVE
    assert escrow(jd).functions.claimable(holder(jd)).call() == 0
    assert books(jd) == (ETHER, 0, 0, ETHER)
    jd.stake(leaving, 1)  # back to the minimum, free
    jd.chain.send(settle)
    assert status(jd, 1) == TRIGGERED
    assert books(jd) == (ETHER, 0, ETHER, 0)


def test_unbonded_oracles_let_the_reserve_return_at_expiry(jd: Judged) -> None:
    """What an oracle set that leaves costs the holder: the triggered policy never pays and
    its reserve goes back to the pool after expiry and grace (the contract notes say so)."""
    staked(jd)
    pid = pool(jd, ETHER)
    t = now(jd.chain)
    jd.chain.send(accountable_policy(jd, pid, jd.judge.address, expiry=t + DAY), insurer(jd))
    jd.accept(1, [900, 900, 900, 900])
    jd.send_as(jd.oracle(0), jd.manager.functions.requestWithdrawal(ETHER_ASSET, MIN_STAKE))
    assert jd.chain.revert_reason(escrow(jd).functions.settle(1, 1)) == "FeedNotAccountable"
    warp(jd.chain, 3 * DAY)
    jd.chain.send(escrow(jd).functions.expire(1))
    assert status(jd, 1) == EXPIRED
    assert escrow(jd).functions.getPool(pid).call()[1:] == (ETHER, 0)


def test_policy_without_a_judge_pays_on_an_unstaked_feed(jd: Judged) -> None:
    """createPolicy keeps its old meaning: no judge, no stake needed (documented)."""
    pid = pool(jd, ETHER)
    t = now(jd.chain)
    call = escrow(jd).functions.createPolicy(
        pid, holder(jd), jd.o.feed, jd.o.digest(), ABOVE, 600, ETHER, t, t + DAY
    )
    jd.chain.send(call, insurer(jd))
    assert escrow(jd).functions.judgeOf(1).call() == ZERO
    assert not jd.judge.functions.feedAccountable(jd.o.feed).call()
    jd.accept(1, [900, 900, 900, 900])
    jd.chain.send(escrow(jd).functions.settle(1, 1))
    assert status(jd, 1) == TRIGGERED


def test_fake_judge_chosen_by_the_insurer(jd: Judged) -> None:
    """The insurer names the judge. One that always answers true removes only the insurer's
    own protection (the unstaked feed pays). One that turns to false, or reverts, once the
    policy triggered keeps the holder from being paid: the holder's risk, which is why the
    judge is public (judgeOf, PolicyJudged) and a holder checks it before relying on a policy.
    """
    fake = jd.chain.deploy("FakeJudge", True)
    pid = pool(jd, 2 * ETHER)
    jd.chain.send(accountable_policy(jd, pid, fake.address), insurer(jd))
    jd.chain.send(accountable_policy(jd, pid, fake.address), insurer(jd))
    assert not jd.judge.functions.feedAccountable(jd.o.feed).call()  # nobody staked
    jd.accept(1, [900, 900, 900, 900])
    jd.chain.send(escrow(jd).functions.settle(1, 1))  # pays: the insurer's choice
    assert status(jd, 1) == TRIGGERED
    jd.chain.send(fake.functions.set(False, False), insurer(jd))
    assert jd.chain.revert_reason(escrow(jd).functions.settle(2, 1)) == "FeedNotAccountable"
    jd.chain.send(fake.functions.set(True, True), insurer(jd))
    assert jd.chain.revert_reason(escrow(jd).functions.settle(2, 1)) == "FakeJudgeRefuses"
    assert status(jd, 2) == ACTIVE
    assert escrow(jd).functions.judgeOf(2).call() == fake.address  # what the holder can see
    assert books(jd) == (2 * ETHER, 0, ETHER, ETHER)

"""ParametricEscrow: pools, reserved payouts, settlement on the oracle feed, pull payments,
expiry and reclaims; and the attacks that must fail (a second claim, reentrancy on withdraw,
a payout larger than the pool, rounding that creates or destroys funds)."""

from __future__ import annotations

from typing import Any

import pytest
from oracle_helpers import ETHER, OTHER_LABEL, Oracles, now, pay, warp

ABOVE, BELOW = 0, 1
ACTIVE, TRIGGERED, EXPIRED = 1, 2, 3
DAY = 86_400


def insurer(o: Oracles) -> str:
    return o.chain.accounts[1]


def holder(o: Oracles) -> str:
    return o.chain.accounts[2]


def pool(o: Oracles, wei: int) -> int:
    call = o.escrow.functions.createPool()
    assert pay(o.chain, call, insurer(o), wei)["status"] == 1
    return int(o.escrow.functions.poolCount().call())


def policy(
    o: Oracles,
    pool_id: int,
    payout: int,
    trigger: int = ABOVE,
    threshold: int = 600,
    who: str | None = None,
    start: int | None = None,
    expiry: int | None = None,
) -> Any:
    t = now(o.chain)
    return o.escrow.functions.createPolicy(
        pool_id,
        who or holder(o),
        o.feed,
        o.digest(),
        trigger,
        threshold,
        payout,
        t if start is None else start,
        t + 30 * DAY if expiry is None else expiry,
    )


def balance(o: Oracles, account: str) -> int:
    return int(o.chain.w3.eth.get_balance(account))  # type: ignore[arg-type]


def totals(o: Oracles) -> tuple[int, int, int, int]:
    deposited, paid, claimable, remaining = o.escrow.functions.totals().call()
    assert paid + claimable + remaining == deposited
    assert o.chain.w3.eth.get_balance(o.escrow.address) == claimable + remaining
    return deposited, paid, claimable, remaining


def test_trigger_pays_holder_once(o: Oracles) -> None:
    pid = pool(o, 5 * ETHER)
    o.chain.send(policy(o, pid, 2 * ETHER), insurer(o))
    assert o.escrow.functions.getPool(pid).call()[1:] == (3 * ETHER, 2 * ETHER)
    o.accept(1, [700, 800, 650])  # drought score 700 > 600
    receipt = o.chain.send(o.escrow.functions.settle(1, 1), o.chain.accounts[5])  # anyone settles
    (event,) = o.chain.events(o.escrow, "PolicyTriggered", receipt)
    assert event["args"]["answer"] == 700
    assert event["args"]["epoch"] == 1
    assert o.escrow.functions.claimable(holder(o)).call() == 2 * ETHER
    assert o.escrow.functions.getPolicy(1).call()[2] == TRIGGERED
    # a second claim of the same payout
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "PolicyNotActive"
    before = balance(o, holder(o))
    receipt = o.chain.send(o.escrow.functions.withdraw(), holder(o))
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert balance(o, holder(o)) == before + 2 * ETHER - fee
    assert o.chain.revert_reason(o.escrow.functions.withdraw(), holder(o)) == "NothingToWithdraw"
    assert totals(o) == (5 * ETHER, 2 * ETHER, 0, 3 * ETHER)


def test_trigger_below(o: Oracles) -> None:
    pid = pool(o, ETHER)
    o.chain.send(policy(o, pid, ETHER, BELOW, 100), insurer(o))
    o.accept(1, [150, 120, 130])
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "TriggerNotMet"
    o.accept(2, [90, 20, 50])
    o.chain.send(o.escrow.functions.settle(1, 2))
    assert o.escrow.functions.claimable(holder(o)).call() == ETHER


def test_threshold_is_strict(o: Oracles) -> None:
    pid = pool(o, ETHER)
    o.chain.send(policy(o, pid, ETHER, ABOVE, 600), insurer(o))
    o.accept(1, [600, 600, 600])
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "TriggerNotMet"


def test_report_must_fall_in_window(o: Oracles) -> None:
    pid = pool(o, 2 * ETHER)
    o.accept(1, [900, 900, 900])  # observed before the policy starts
    t = warp(o.chain, 10)
    o.chain.send(policy(o, pid, ETHER, start=t), insurer(o))
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "ReportOutsideWindow"
    assert o.chain.revert_reason(o.escrow.functions.settle(7, 1)) == "UnknownPolicy"
    o.accept(2, [900, 900, 900])  # observed inside the window
    o.chain.send(o.escrow.functions.settle(1, 2))


def test_no_report_yet(o: Oracles) -> None:
    pid = pool(o, ETHER)
    o.chain.send(policy(o, pid, ETHER), insurer(o))
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "NoReport"


def test_expiry_and_refund(o: Oracles) -> None:
    pid = pool(o, 3 * ETHER)
    t = now(o.chain)
    o.chain.send(policy(o, pid, 2 * ETHER, expiry=t + DAY), insurer(o))
    assert o.chain.revert_reason(o.escrow.functions.expire(1)) == "PolicyNotExpired"
    assert o.chain.revert_reason(o.escrow.functions.reclaim(pid, 2 * ETHER), insurer(o)) == (
        "InsufficientFreeFunds"
    )
    warp(o.chain, 3 * DAY)  # clear of expiry + grace (2 days), whatever the block times
    o.accept(1, [900, 900, 900])  # after expiry: too late
    assert o.chain.revert_reason(o.escrow.functions.settle(1, 1)) == "PolicyExpired"
    o.chain.send(o.escrow.functions.expire(1))
    assert o.escrow.functions.getPolicy(1).call()[2] == EXPIRED
    assert o.chain.revert_reason(o.escrow.functions.expire(1)) == "PolicyNotActive"
    assert o.chain.revert_reason(o.escrow.functions.reclaim(pid, ETHER), holder(o)) == (
        "NotInsurer"
    )
    o.chain.send(o.escrow.functions.reclaim(pid, 3 * ETHER), insurer(o))
    o.chain.send(o.escrow.functions.withdraw(), insurer(o))
    assert totals(o) == (3 * ETHER, 3 * ETHER, 0, 0)


def test_payout_larger_than_pool_fails(o: Oracles) -> None:
    pid = pool(o, ETHER)
    assert o.chain.revert_reason(policy(o, pid, ETHER + 1), insurer(o)) == ("InsufficientFreeFunds")
    o.chain.send(policy(o, pid, ETHER // 2), insurer(o))
    o.chain.send(policy(o, pid, ETHER // 2), insurer(o))
    # reserved payouts cannot be promised twice
    assert o.chain.revert_reason(policy(o, pid, 1), insurer(o)) == "InsufficientFreeFunds"
    o.accept(1, [900, 900, 900])
    o.chain.send(o.escrow.functions.settle(1, 1))
    o.chain.send(o.escrow.functions.settle(2, 1))
    assert totals(o) == (ETHER, 0, ETHER, 0)


def test_policy_checks(o: Oracles) -> None:
    pid = pool(o, ETHER)
    t = now(o.chain)
    f = o.escrow.functions
    assert o.chain.revert_reason(policy(o, pid, ETHER), holder(o)) == "NotInsurer"
    assert o.chain.revert_reason(policy(o, 9, ETHER), insurer(o)) == "UnknownPool"
    assert o.chain.revert_reason(policy(o, pid, 0), insurer(o)) == "ZeroAmount"
    assert o.chain.revert_reason(policy(o, pid, 1, start=t + 5, expiry=t + 5), insurer(o)) == (
        "BadWindow"
    )
    assert o.chain.revert_reason(policy(o, pid, 1, start=0, expiry=t - 1), insurer(o)) == (
        "BadWindow"
    )
    zero = "0x" + "00" * 20
    assert o.chain.revert_reason(policy(o, pid, 1, who=zero), insurer(o)) == "ZeroAddress"
    assert o.chain.revert_reason(f.fund(pid)) == "ZeroAmount"
    assert o.chain.revert_reason(f.fund(9)) == "UnknownPool"
    call = f.createPolicy(pid, holder(o), o.other_feed, o.digest(), ABOVE, 1, 1, t, t + DAY)
    assert o.chain.revert_reason(call, insurer(o)) == "UnknownConfig"  # no such feed yet
    other = o.create_feed(OTHER_LABEL)
    call = f.createPolicy(pid, holder(o), other, o.digest(), ABOVE, 1, 1, t, t + DAY)
    assert o.chain.revert_reason(call, insurer(o)) == "UnknownConfig"  # another feed's config
    call = f.createPolicy(pid, holder(o), other, o.digest(other), ABOVE, 1, 1, t, t + DAY)
    o.chain.send(call, insurer(o))
    assert o.chain.revert_reason(f.settle(1, 1)) == "NoReport"


def test_anyone_funds_a_pool(o: Oracles) -> None:
    pid = pool(o, 0)
    assert pay(o.chain, o.escrow.functions.fund(pid), o.chain.accounts[6], 7)["status"] == 1
    assert o.escrow.functions.getPool(pid).call() == (insurer(o), 7, 0)
    assert totals(o) == (7, 0, 0, 7)


@pytest.mark.parametrize("propagate", [False, True])
def test_reentrant_withdraw_gets_paid_once(o: Oracles, propagate: bool) -> None:
    attacker = o.chain.deploy("ReentrantHolder", o.escrow.address, 5, propagate)
    pid = pool(o, 3 * ETHER)
    o.chain.send(policy(o, pid, ETHER, who=attacker.address), insurer(o))
    o.chain.send(policy(o, pid, ETHER, who=insurer(o)), insurer(o))
    o.accept(1, [900, 900, 900])
    o.chain.send(o.escrow.functions.settle(1, 1))
    o.chain.send(o.escrow.functions.settle(2, 1))
    if propagate:  # the re-entry reverts, and takes the whole withdrawal with it
        assert o.chain.revert_reason(attacker.functions.attack()) == "TransferFailed"
        assert o.chain.w3.eth.get_balance(attacker.address) == 0
        assert o.escrow.functions.claimable(attacker.address).call() == ETHER
    else:  # the re-entry fails inside the attacker; the one payout goes through
        o.chain.send(attacker.functions.attack())
        assert attacker.functions.attempts().call() == 1
        assert attacker.functions.reentered().call() == 0
        assert o.chain.w3.eth.get_balance(attacker.address) == ETHER
        assert o.escrow.functions.claimable(attacker.address).call() == 0
    assert o.escrow.functions.claimable(insurer(o)).call() == ETHER  # others' money untouched
    totals(o)


@pytest.mark.parametrize("wei", [1, 3, 7, 10**18 + 1, 5 * 10**21 + 2])
def test_odd_amounts_neither_create_nor_destroy_funds(o: Oracles, wei: int) -> None:
    pid = pool(o, wei)
    third = wei // 3
    for _ in range(3):
        if third:
            o.chain.send(policy(o, pid, third), insurer(o))
    o.accept(1, [900, 900, 900])
    for i in range(1, int(o.escrow.functions.policyCount().call()) + 1):
        o.chain.send(o.escrow.functions.settle(i, 1))
    free = o.escrow.functions.getPool(pid).call()[1]
    assert free == wei - 3 * third
    if free:
        o.chain.send(o.escrow.functions.reclaim(pid, free), insurer(o))
    assert totals(o) == (wei, 0, wei, 0)
    if free:
        o.chain.send(o.escrow.functions.withdraw(), insurer(o))
    if third:
        o.chain.send(o.escrow.functions.withdraw(), holder(o))
    assert totals(o) == (wei, wei, 0, 0)
    assert o.chain.w3.eth.get_balance(o.escrow.address) == 0

"""PerformanceBonus: a contractor is paid for each week without safety incidents, counted by
the oracle feed (epoch = week). Each week settles once, to the contractor or back to the
payer; money leaves by pull payment only, and the books always balance."""

from __future__ import annotations

from typing import Any

from oracle_helpers import ETHER, Oracles, now, pay

WEEKLY = ETHER // 10
DAY = 86_400
#: Unreported weeks may go back to the payer this long after the agreement is written.
REFUND_AFTER = 30 * DAY


def payer(o: Oracles) -> str:
    return o.chain.accounts[1]


def contractor(o: Oracles) -> str:
    return o.chain.accounts[2]


def create(
    o: Oracles, who: str, first: int, last: int, amount: int, refund_after: int | None = None
) -> Any:
    """The createAgreement call on the test feed's current configuration."""
    when = now(o.chain) + REFUND_AFTER if refund_after is None else refund_after
    return o.bonus.functions.createAgreement(who, o.feed, o.digest(), first, last, when, amount)


def agree(o: Oracles, first: int = 1, last: int = 4, value: int | None = None) -> int:
    weeks = last - first + 1
    call = create(o, contractor(o), first, last, WEEKLY)
    sent = weeks * WEEKLY if value is None else value
    assert pay(o.chain, call, payer(o), sent)["status"] == 1
    return int(o.bonus.functions.agreementCount().call())


def totals(o: Oracles) -> tuple[int, int, int, int]:
    deposited, paid, claimable, remaining = o.bonus.functions.totals().call()
    assert paid + claimable + remaining == deposited
    assert o.chain.w3.eth.get_balance(o.bonus.address) == claimable + remaining
    return deposited, paid, claimable, remaining


def test_safe_weeks_pay_contractor_and_incident_weeks_return(o: Oracles) -> None:
    aid = agree(o)
    for week, incidents in enumerate([[0, 0, 0], [0, 2, 1], [0, 0, 1], [3, 4, 5]], start=1):
        o.accept(week, incidents)  # medians: 0, 1, 0, 4
    f = o.bonus.functions
    receipts = [o.chain.send(f.settleWeek(aid, w), o.chain.accounts[7]) for w in (1, 2, 3, 4)]
    events = [o.chain.events(o.bonus, "WeekSettled", r)[0]["args"] for r in receipts]
    assert [e["beneficiary"] for e in events] == [
        contractor(o),
        payer(o),
        contractor(o),
        payer(o),
    ]
    assert [e["incidents"] for e in events] == [0, 1, 0, 4]
    assert f.claimable(contractor(o)).call() == 2 * WEEKLY
    assert f.claimable(payer(o)).call() == 2 * WEEKLY
    assert totals(o) == (4 * WEEKLY, 0, 4 * WEEKLY, 0)
    o.chain.send(f.withdraw(), contractor(o))
    o.chain.send(f.withdraw(), payer(o))
    assert totals(o) == (4 * WEEKLY, 4 * WEEKLY, 0, 0)


def test_week_claims_once(o: Oracles) -> None:
    aid = agree(o)
    o.accept(1, [0, 0, 0])
    f = o.bonus.functions
    o.chain.send(f.settleWeek(aid, 1))
    assert o.chain.revert_reason(f.settleWeek(aid, 1)) == "WeekAlreadySettled"
    assert f.weekSettled(aid, 1).call()
    o.chain.send(f.withdraw(), contractor(o))
    assert o.chain.revert_reason(f.withdraw(), contractor(o)) == "NothingToWithdraw"
    assert totals(o) == (4 * WEEKLY, WEEKLY, 0, 3 * WEEKLY)


def test_unreported_and_foreign_weeks_fail(o: Oracles) -> None:
    aid = agree(o, first=2, last=3)
    f = o.bonus.functions
    assert o.chain.revert_reason(f.settleWeek(aid, 2)) == "NoReport"
    o.accept(1, [0, 0, 0])
    assert o.chain.revert_reason(f.settleWeek(aid, 1)) == "WeekOutsideAgreement"
    assert o.chain.revert_reason(f.settleWeek(aid, 4)) == "WeekOutsideAgreement"
    assert o.chain.revert_reason(f.settleWeek(9, 2)) == "UnknownAgreement"


def test_agreement_must_be_funded_exactly(o: Oracles) -> None:
    for value in (4 * WEEKLY - 1, 4 * WEEKLY + 1, 0):
        call = create(o, contractor(o), 1, 4, WEEKLY)
        try:
            status = pay(o.chain, call, payer(o), value)["status"]
        except Exception:  # eth-tester raises on revert
            status = 0
        assert status == 0
    assert o.chain.revert_reason(create(o, contractor(o), 3, 2, WEEKLY)) == ("BadWeeks")
    assert o.chain.revert_reason(create(o, contractor(o), 0, 2, WEEKLY)) == ("BadWeeks")
    assert o.chain.revert_reason(create(o, contractor(o), 1, 2, 0)) == ("ZeroAmount")
    zero = "0x" + "00" * 20
    assert o.chain.revert_reason(create(o, zero, 1, 2, 1)) == "ZeroAddress"
    assert totals(o) == (0, 0, 0, 0)


def test_reentrant_contractor_paid_once(o: Oracles) -> None:
    attacker = o.chain.deploy("ReentrantHolder", o.bonus.address, 3, False)
    call = create(o, attacker.address, 1, 1, WEEKLY)
    assert pay(o.chain, call, payer(o), WEEKLY)["status"] == 1
    o.accept(1, [0, 0, 0])
    o.chain.send(o.bonus.functions.settleWeek(1, 1))
    o.chain.send(attacker.functions.attack())
    assert attacker.functions.reentered().call() == 0
    assert o.chain.w3.eth.get_balance(attacker.address) == WEEKLY
    assert totals(o) == (WEEKLY, WEEKLY, 0, 0)

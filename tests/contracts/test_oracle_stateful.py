"""Stateful test of the escrow and the bonus on a live chain: random funding, policies,
oracle reports, settlements, expiries, reclaims and withdrawals, with the invariants

    paid + claimable + remaining == deposited      (both contracts)
    contract balance == claimable + remaining
    deposited == what was sent in, paid == what was sent out, nobody paid twice."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from oracle_helpers import FEED, Oracles, now, warp
from web3.contract import Contract

DAY = 86_400


def _try(o: Oracles, call: object, sender: str, value: int = 0) -> bool:
    """Send; True if mined successfully, False if it reverted."""
    try:
        tx = call.transact({"from": sender, "gas": o.chain.gas, "value": value})  # type: ignore[attr-defined]
        receipt = o.chain.w3.eth.wait_for_transaction_receipt(tx)
    except Exception:  # eth-tester raises on revert, anvil mines status 0
        return False
    return bool(receipt["status"] == 1)


def _machine(o: Oracles) -> type[RuleBasedStateMachine]:
    accounts = o.chain.accounts[1:5]

    class Settlement(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snap = o.chain.snapshot()
            self.sent_in = {o.escrow.address: 0, o.bonus.address: 0}
            self.sent_out = {o.escrow.address: 0, o.bonus.address: 0}
            self.policies = 0
            self.agreements = 0

        def teardown(self) -> None:
            o.chain.revert_to(self.snap)

        @initialize(amount=st.integers(0, 10**6))
        def open_pool(self, amount: int) -> None:
            assert _try(o, o.escrow.functions.createPool(), accounts[0], amount)
            self.sent_in[o.escrow.address] += amount

        @rule(amount=st.integers(1, 10**6), who=st.sampled_from(accounts))
        def fund(self, amount: int, who: str) -> None:
            assert _try(o, o.escrow.functions.fund(1), who, amount)
            self.sent_in[o.escrow.address] += amount

        @rule(
            payout=st.integers(1, 4 * 10**5),
            below=st.booleans(),
            threshold=st.integers(0, 1000),
            holder=st.sampled_from(accounts),
            days=st.integers(1, 5),
        )
        def write_policy(
            self, payout: int, below: bool, threshold: int, holder: str, days: int
        ) -> None:
            t = now(o.chain)
            call = o.escrow.functions.createPolicy(
                1, holder, FEED, int(below), threshold, payout, t, t + days * DAY
            )
            if _try(o, call, accounts[0]):
                self.policies += 1

        @rule(value=st.integers(0, 1000), spread=st.integers(0, 50))
        def report(self, value: int, spread: int) -> None:
            epoch = int(o.feeds.functions.latestEpoch(FEED).call()) + 1
            values = [max(0, value - spread), value, min(1000, value + spread)]
            o.accept(epoch, values)

        @precondition(lambda self: self.policies > 0)
        @rule(data=st.data())
        def settle(self, data: st.DataObject) -> None:
            pid = data.draw(st.integers(1, self.policies))
            _try(o, o.escrow.functions.settle(pid), accounts[3])

        @precondition(lambda self: self.policies > 0)
        @rule(data=st.data())
        def expire(self, data: st.DataObject) -> None:
            pid = data.draw(st.integers(1, self.policies))
            _try(o, o.escrow.functions.expire(pid), accounts[2])

        @rule(days=st.integers(0, 3))
        def wait(self, days: int) -> None:
            warp(o.chain, days * DAY + 1)

        @rule(amount=st.integers(1, 10**6))
        def reclaim(self, amount: int) -> None:
            _try(o, o.escrow.functions.reclaim(1, amount), accounts[0])

        @rule(
            weeks=st.integers(1, 3),
            amount=st.integers(1, 10**5),
            contractor=st.sampled_from(accounts),
        )
        def agree(self, weeks: int, amount: int, contractor: str) -> None:
            first = int(o.feeds.functions.latestEpoch(FEED).call()) + 1
            call = o.bonus.functions.createAgreement(
                contractor, FEED, first, first + weeks - 1, amount
            )
            assert _try(o, call, accounts[0], weeks * amount)
            self.sent_in[o.bonus.address] += weeks * amount
            self.agreements += 1

        @precondition(lambda self: self.agreements > 0)
        @rule(data=st.data())
        def settle_week(self, data: st.DataObject) -> None:
            aid = data.draw(st.integers(1, self.agreements))
            week = data.draw(st.integers(1, 12))
            _try(o, o.bonus.functions.settleWeek(aid, week), accounts[1])

        @rule(who=st.sampled_from(accounts), bonus=st.booleans())
        def withdraw(self, who: str, bonus: bool) -> None:
            target = o.bonus if bonus else o.escrow
            owed = int(target.functions.claimable(who).call())
            ok = _try(o, target.functions.withdraw(), who)
            assert ok == (owed > 0)
            if ok:
                self.sent_out[target.address] += owed
                assert target.functions.claimable(who).call() == 0

        @invariant()
        def books_balance(self) -> None:
            contract: Contract
            for contract in (o.escrow, o.bonus):
                deposited, paid, claimable, remaining = contract.functions.totals().call()
                assert paid + claimable + remaining == deposited
                balance = o.chain.w3.eth.get_balance(contract.address)
                assert balance == claimable + remaining
                assert deposited == self.sent_in[contract.address]
                assert paid == self.sent_out[contract.address]

        @invariant()
        def pool_matches_totals(self) -> None:
            _, free, reserved = o.escrow.functions.getPool(1).call()
            assert free + reserved == o.escrow.functions.totalRemaining().call()

    return Settlement


@pytest.mark.slow
def test_settlement_books_always_balance(o: Oracles) -> None:
    run_state_machine_as_test(
        _machine(o),
        settings=settings(
            max_examples=8,
            stateful_step_count=20,
            suppress_health_check=[
                *settings().suppress_health_check,
                HealthCheck.function_scoped_fixture,
            ],
        ),
    )

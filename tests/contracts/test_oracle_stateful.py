"""Stateful test of the escrow and the bonus on a live chain: random funding, policies,
oracle reports (by the honest set, and by a set the feed's creator swaps in after the config
delay), settlements on any named round, expiries, week refunds, reclaims, forced ether,
surplus sweeps and withdrawals, with the invariants

    paid + claimable + remaining == deposited      (both contracts)
    contract balance == claimable + remaining + forced-in surplus
    deposited == what was sent in (plus swept surplus), paid == what was sent out
    no policy pays unless a round under its pinned config, observed inside its window,
      met its trigger (checked against this test's own record of the rounds)
    no bonus week pays the contractor unless a round under its pinned config reported zero
      incidents; no week is refunded before its refund time or when such a round exists.

8 sequences in the dev and ci profiles, >= 1,000 in ``slow`` (``tests/_profiles.py``);
``AILEDGER_STATEFUL_EXAMPLES=N`` sets the number in any profile."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
from oracle_helpers import CONFIG_DELAY, Oracles, deploy_oracles, now, oracle_keys, warp
from web3 import Web3
from web3.contract import Contract

from _profiles import stateful_examples

DAY = 86_400
GRACE = DAY  # ParametricEscrow.SETTLEMENT_GRACE


@dataclass(frozen=True)
class Round:
    answer: int
    observed: int
    version: int


@dataclass(frozen=True)
class Policy:
    version: int
    below: bool
    threshold: int
    start: int
    expiry: int
    payout: int


@dataclass(frozen=True)
class Agreement:
    version: int
    first: int
    last: int
    refund_after: int


@pytest.fixture(scope="module")
def _oracles(w3: Web3) -> Oracles:
    return deploy_oracles(w3)


@pytest.fixture
def o(_oracles: Oracles) -> Iterator[Oracles]:
    snap = _oracles.chain.snapshot()
    yield _oracles
    _oracles.chain.revert_to(snap)


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
    hijack_keys = oracle_keys(4, base=500)  # the creator's own set, swapped in mid-run
    o.keys = o.keys + hijack_keys

    class Settlement(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snap = o.chain.snapshot()
            self.sent_in = {o.escrow.address: 0, o.bonus.address: 0}
            self.sent_out = {o.escrow.address: 0, o.bonus.address: 0}
            self.forced = {o.escrow.address: 0, o.bonus.address: 0}
            self.policies: list[Policy] = []
            self.paid_policies: set[int] = set()
            self.agreements: list[Agreement] = []
            self.rounds: dict[int, Round] = {}
            self.swapped = False

        def teardown(self) -> None:
            o.chain.revert_to(self.snap)

        @initialize(amount=st.integers(10**5, 10**6), threshold=st.integers(0, 1000))
        def open_pool(self, amount: int, threshold: int) -> None:
            assert _try(o, o.escrow.functions.createPool(), accounts[0], amount)
            self.sent_in[o.escrow.address] += amount
            # one policy from the start, so that every run has one written before any swap
            self.write_policy(10**4, False, threshold, accounts[1], 5)

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
            version = o.version()
            call = o.escrow.functions.createPolicy(
                1, holder, o.feed, o.digest(), int(below), threshold, payout, t, t + days * DAY
            )
            if _try(o, call, accounts[0]):
                self.policies.append(Policy(version, below, threshold, t, t + days * DAY, payout))

        @rule(value=st.integers(0, 1000), spread=st.integers(0, 50), skip=st.integers(1, 2))
        def report(self, value: int, spread: int, skip: int) -> None:
            epoch = int(o.feeds.functions.latestEpoch(o.feed).call()) + skip
            values = [max(0, value - spread), value, min(1000, value + spread)]
            receipt = o.accept(epoch, values)
            observed = int(o.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
            stored = o.feeds.functions.getRound(o.feed, epoch).call()
            self.rounds[epoch] = Round(sorted(values)[1], int(stored[1]), int(stored[2]))
            assert stored[1] <= observed

        @precondition(lambda self: not self.swapped)
        @rule()
        def creator_swaps_in_its_own_keys(self) -> None:
            """The feed's creator proposes its own oracle set; after the delay, its rounds
            are stored under a new config version, which no earlier policy pinned."""
            o.set_config(sorted(k.address for k in hijack_keys))
            warp(o.chain, CONFIG_DELAY)
            self.swapped = True

        @precondition(lambda self: self.policies)
        @rule(data=st.data())
        def settle(self, data: st.DataObject) -> None:
            pid = data.draw(st.integers(1, len(self.policies)))
            # mostly a round that exists (the interesting case), sometimes one that does not
            epoch = data.draw(
                st.sampled_from([*sorted(self.rounds), max(self.rounds, default=0) + 1])
            )
            before = int(o.escrow.functions.totalClaimable().call())
            if not _try(o, o.escrow.functions.settle(pid, epoch), accounts[3]):
                return
            # no policy pays unless a round under its pinned config met its trigger in time
            p = self.policies[pid - 1]
            r = self.rounds.get(epoch)
            assert r is not None, "paid on a round this test never reported"
            assert r.version == p.version, "paid on a round under another config"
            assert p.start <= r.observed <= p.expiry, "paid on a round outside the window"
            assert (r.answer < p.threshold) if p.below else (r.answer > p.threshold)
            assert now(o.chain) <= p.expiry + GRACE
            assert pid not in self.paid_policies, "paid twice"
            self.paid_policies.add(pid)
            assert int(o.escrow.functions.totalClaimable().call()) == before + p.payout

        @precondition(lambda self: self.policies)
        @rule(data=st.data())
        def expire(self, data: st.DataObject) -> None:
            pid = data.draw(st.integers(1, len(self.policies)))
            if _try(o, o.escrow.functions.expire(pid), accounts[2]):
                assert now(o.chain) > self.policies[pid - 1].expiry + GRACE
                assert pid not in self.paid_policies

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
            first = int(o.feeds.functions.latestEpoch(o.feed).call()) + 1
            refund_after = now(o.chain) + 2 * DAY
            call = o.bonus.functions.createAgreement(
                contractor, o.feed, o.digest(), first, first + weeks - 1, refund_after, amount
            )
            assert _try(o, call, accounts[0], weeks * amount)
            self.sent_in[o.bonus.address] += weeks * amount
            agreement = Agreement(o.version(), first, first + weeks - 1, refund_after)
            self.agreements.append(agreement)

        @precondition(lambda self: self.agreements)
        @rule(data=st.data())
        def settle_week(self, data: st.DataObject) -> None:
            aid = data.draw(st.integers(1, len(self.agreements)))
            week = data.draw(st.integers(1, 12))
            call = o.bonus.functions.settleWeek(aid, week)
            try:
                beneficiary = call.call({"from": accounts[1]})
            except Exception:  # reverts: nothing to check
                beneficiary = None
            if not _try(o, call, accounts[1]):
                return
            a = self.agreements[aid - 1]
            r = self.rounds.get(week)
            assert r is not None
            assert r.version == a.version
            assert a.first <= week <= a.last
            payer, contractor = o.bonus.functions.getAgreement(aid).call()[:2]
            assert beneficiary == (contractor if r.answer == 0 else payer)

        @precondition(lambda self: self.agreements)
        @rule(data=st.data())
        def refund_week(self, data: st.DataObject) -> None:
            aid = data.draw(st.integers(1, len(self.agreements)))
            week = data.draw(st.integers(1, 12))
            if not _try(o, o.bonus.functions.refundWeek(aid, week), accounts[2]):
                return
            a = self.agreements[aid - 1]
            assert now(o.chain) > a.refund_after
            r = self.rounds.get(week)
            assert r is None or r.version != a.version, "refunded a reported week"

        @rule(amount=st.integers(1, 10**5), bonus=st.booleans())
        def force_ether(self, amount: int, bonus: bool) -> None:
            target = o.bonus if bonus else o.escrow
            forcer = o.chain.compiled["ForceSend"]
            factory = o.chain.w3.eth.contract(abi=forcer.abi, bytecode=forcer.bytecode)
            tx = factory.constructor(target.address).transact(
                {"from": accounts[3], "value": amount, "gas": o.chain.gas}
            )
            assert o.chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
            self.forced[target.address] += amount

        @rule(bonus=st.booleans())
        def sweep(self, bonus: bool) -> None:
            target = o.bonus if bonus else o.escrow
            surplus = self.forced[target.address]
            assert _try(o, target.functions.sweepSurplus(), o.admin) == (surplus > 0)
            assert not _try(o, target.functions.sweepSurplus(), accounts[1])  # not the owner
            self.sent_in[target.address] += surplus
            self.forced[target.address] = 0
            if surplus:
                assert int(target.functions.claimable(o.admin).call()) >= surplus
                owed = int(target.functions.claimable(o.admin).call())
                assert _try(o, target.functions.withdraw(), o.admin)
                self.sent_out[target.address] += owed

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
                assert balance == claimable + remaining + self.forced[contract.address]
                assert contract.functions.surplus().call() == self.forced[contract.address]
                assert deposited == self.sent_in[contract.address]
                assert paid == self.sent_out[contract.address]

        @invariant()
        def pool_matches_totals(self) -> None:
            _, free, reserved = o.escrow.functions.getPool(1).call()
            assert free + reserved == o.escrow.functions.totalRemaining().call()

    return Settlement


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")
def test_settlement_books_always_balance(o: Oracles) -> None:
    keys = o.keys
    try:
        run_state_machine_as_test(_machine(o), settings=_settings())
    finally:
        o.keys = keys


def _settings() -> settings:
    return settings(
        max_examples=stateful_examples(8),
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )

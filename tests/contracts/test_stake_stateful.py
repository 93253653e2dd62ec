"""Stateful test of StakeManager against a Python model: random deposits (ether, the
consortium token, a fee-on-transfer token), withdrawal requests, waits, withdrawals, locks and
unlocks by the market, slashes (repeated fault ids, any prover) and claims, on py-evm and anvil.
Every transaction must succeed exactly when the model says it may, and after every step

    per participant and asset: deposited == free + locked + unbonding + slashed + withdrawn
    per asset: the same in sum; slashed == owed + claimed; balance == staked + owed
    every stake, lock and owed balance equals the model's.

8 sequences in the dev and ci profiles, >= 1,000 in ``slow`` (``tests/_profiles.py``);
``AILEDGER_STATEFUL_EXAMPLES=N`` sets the number in any profile."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from oracle_helpers import now, warp
from stake_helpers import ETHER_ASSET, EVIDENCE, FEE_BPS, PROVER_BPS, UNBONDING, Stakes

from _profiles import stateful_examples

PEOPLE = (1, 2, 3)
OWED_TO = (4, 7, 8)  # provers 4 and 7; 8 is the treasury
ASSETS = ("ether", "token", "fee")


@dataclass
class Model:
    free: int = 0
    locked: int = 0
    unbonding: int = 0
    release: int = 0
    deposited: int = 0
    slashed: int = 0
    withdrawn: int = 0


def _try(sm: Stakes, call: Any, sender: str, value: int = 0) -> Any | None:
    """Send; the receipt if mined successfully, None if it reverted."""
    try:
        tx = call.transact({"from": sender, "gas": sm.chain.gas, "value": value})
        receipt = sm.chain.w3.eth.wait_for_transaction_receipt(tx)
    except Exception:  # eth-tester raises on revert, anvil mines status 0
        return None
    return receipt if receipt["status"] == 1 else None


def _machine(sm: Stakes) -> type[RuleBasedStateMachine]:
    addresses = {"ether": ETHER_ASSET, "token": sm.token.address, "fee": sm.fee.address}
    contracts = {"token": sm.token, "fee": sm.fee}

    class StakeMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snap = sm.chain.snapshot()
            self.model: dict[tuple[int, str], Model] = defaultdict(Model)
            self.owed: dict[tuple[int, str], int] = defaultdict(int)
            self.claimed: dict[str, int] = defaultdict(int)
            self.faults: set[bytes] = set()
            for i in PEOPLE:  # approve once, for everything
                for token in contracts.values():
                    sm.chain.send(token.functions.approve(sm.manager.address, 2**255), sm.staker(i))

        def teardown(self) -> None:
            try:
                for asset in ASSETS:
                    self.check(asset)
            finally:
                sm.chain.revert_to(self.snap)

        def _time(self, receipt: Any) -> int:
            return int(sm.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])

        @rule(
            who=st.sampled_from(PEOPLE), asset=st.sampled_from(ASSETS), amount=st.integers(0, 10**6)
        )
        def deposit(self, who: int, asset: str, amount: int) -> None:
            call = sm.manager.functions.deposit(addresses[asset], amount)
            value = amount if asset == "ether" else 0
            receipt = _try(sm, call, sm.staker(who), value)
            assert (receipt is not None) == (amount > 0)
            if receipt is None:
                self.check(asset)
                return
            credited = amount - amount * FEE_BPS // 10_000 if asset == "fee" else amount
            if credited == 0:
                raise AssertionError("a deposit that credits nothing must revert")
            m = self.model[who, asset]
            m.free += credited
            m.deposited += credited
            self.check(asset)

        @rule(who=st.sampled_from(PEOPLE), asset=st.sampled_from(ASSETS), share=st.integers(0, 4))
        def request(self, who: int, asset: str, share: int) -> None:
            m = self.model[who, asset]
            amount = m.free * share // 4 if share else 1
            call = sm.manager.functions.requestWithdrawal(addresses[asset], amount)
            receipt = _try(sm, call, sm.staker(who))
            assert (receipt is not None) == (0 < amount <= m.free)
            if receipt is not None:
                m.free -= amount
                m.unbonding += amount
                m.release = self._time(receipt) + UNBONDING
            self.check(asset)

        @rule(seconds=st.sampled_from([1, 3600, UNBONDING // 2, UNBONDING]))
        def wait(self, seconds: int) -> None:
            warp(sm.chain, seconds)

        @rule(who=st.sampled_from(PEOPLE), asset=st.sampled_from(ASSETS))
        def withdraw(self, who: int, asset: str) -> None:
            m = self.model[who, asset]
            call = sm.manager.functions.withdraw(addresses[asset], sm.staker(who))
            receipt = _try(sm, call, sm.staker(who))
            if receipt is None:  # nothing unbonding, or not due (the latest block is earlier)
                assert m.unbonding == 0 or now(sm.chain) < m.release
            else:
                assert m.unbonding > 0
                assert self._time(receipt) >= m.release
                m.withdrawn += m.unbonding
                m.unbonding = 0
            self.check(asset)

        @rule(who=st.sampled_from(PEOPLE), asset=st.sampled_from(ASSETS), share=st.integers(0, 4))
        def lock(self, who: int, asset: str, share: int) -> None:
            m = self.model[who, asset]
            amount = m.free * share // 4 if share else 1
            call = sm.judge.functions.lock(sm.staker(who), addresses[asset], amount)
            assert (_try(sm, call, sm.governor) is not None) == (0 < amount <= m.free)
            if 0 < amount <= m.free:
                m.free -= amount
                m.locked += amount
            self.check(asset)

        @rule(who=st.sampled_from(PEOPLE), asset=st.sampled_from(ASSETS), share=st.integers(0, 4))
        def unlock(self, who: int, asset: str, share: int) -> None:
            m = self.model[who, asset]
            amount = m.locked * share // 4 if share else 1
            call = sm.judge.functions.unlock(sm.staker(who), addresses[asset], amount)
            assert (_try(sm, call, sm.governor) is not None) == (0 < amount <= m.locked)
            if 0 < amount <= m.locked:
                m.locked -= amount
                m.free += amount
            self.check(asset)

        @rule(
            who=st.sampled_from(PEOPLE),
            asset=st.sampled_from(ASSETS),
            part=st.integers(0, 5),
            fault=st.integers(0, 5),
            prover=st.sampled_from([4, 7, None]),
        )
        def slash(self, who: int, asset: str, part: int, fault: int, prover: int | None) -> None:
            m = self.model[who, asset]
            total = m.free + m.locked + m.unbonding
            amount = total * part // 4 + (part % 2)  # partial, whole, beyond; 0 when empty
            fid = fault.to_bytes(32, "big")
            prover_address = ETHER_ASSET if prover is None else sm.staker(prover)
            call = sm.judge.functions.slash(
                sm.staker(who), addresses[asset], amount, fid, 1, EVIDENCE, prover_address
            )
            receipt = _try(sm, call, sm.governor)
            taken = min(amount, total)
            assert (receipt is not None) == (taken > 0 and fid not in self.faults)
            if receipt is None:
                self.check(asset)
                return
            self.faults.add(fid)
            left = taken
            for part in ("locked", "unbonding", "free"):  # the judge's own lock first
                take = min(left, getattr(m, part))
                setattr(m, part, getattr(m, part) - take)
                left -= take
            m.slashed += taken
            share = 0 if prover is None else taken * PROVER_BPS // 10_000
            if prover is not None:
                self.owed[prover, asset] += share
            self.owed[8, asset] += taken - share
            self.check(asset)

        @rule(account=st.sampled_from(OWED_TO), asset=st.sampled_from(ASSETS))
        def claim(self, account: int, asset: str) -> None:
            call = sm.manager.functions.claim(addresses[asset], sm.staker(5))
            receipt = _try(sm, call, sm.staker(account))
            assert (receipt is not None) == (self.owed[account, asset] > 0)
            if receipt is not None:
                self.claimed[asset] += self.owed[account, asset]
                self.owed[account, asset] = 0
            self.check(asset)

        def check(self, asset: str) -> None:
            """The invariants and the model, for ``asset`` (the one the last rule touched)."""
            address = addresses[asset]
            staked = 0
            for who in PEOPLE:
                m = self.model[who, asset]
                s = sm.stake(sm.staker(who), address)
                got = (s["free"], s["locked"], s["unbonding"], s["deposited"])
                assert got == (m.free, m.locked, m.unbonding, m.deposited)
                assert (s["slashed"], s["withdrawn"]) == (m.slashed, m.withdrawn)
                mine = m.free + m.locked + m.unbonding
                assert s["deposited"] == mine + s["slashed"] + s["withdrawn"]
                staked += mine
            t = sm.totals(address)
            owed = sum(self.owed[a, asset] for a in OWED_TO)
            assert t["staked"] == staked
            assert t["deposited"] == t["staked"] + t["slashed"] + t["withdrawn"]
            assert (t["owed"], t["claimed"]) == (owed, self.claimed[asset])
            assert t["slashed"] == t["owed"] + t["claimed"]
            assert sm.balance(address, sm.manager.address) == t["staked"] + t["owed"]
            for account in OWED_TO:
                got_owed = sm.manager.functions.owed(sm.staker(account), address).call()
                assert got_owed == self.owed[account, asset]

    return StakeMachine


def test_stake_books_match_the_model(sm: Stakes) -> None:
    run_state_machine_as_test(
        _machine(sm),
        settings=settings(
            max_examples=stateful_examples(8),
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        ),
    )

"""StakeManager: deposits in ether and ERC-20, two-step withdrawal with an unbonding delay,
locks by registered markets, slashing by registered judges with a prover/treasury split paid
by pull payments; and the attacks that must fail (an unregistered judge, a second slash for one
fault, withdrawing locked stake or before the delay, unbonding to escape a slash, reentrancy
through an ERC-777-style hook, fee-on-transfer and false-returning tokens, rounding in the split,
governance reaching for stake, ether sent the wrong way, zero amounts)."""

from __future__ import annotations

from typing import Any

import pytest
from contract_helpers import _revert_data
from oracle_helpers import now, pay, warp
from stake_helpers import (
    ETHER_ASSET,
    EVIDENCE,
    FAULT,
    FEE_BPS,
    GOVERNANCE,
    PROVER_BPS,
    UNBONDING,
    Stakes,
)

ETH = 10**18
GAS = 5_000_000  # fixed: no estimation, which would raise on the revert
ZERO = ETHER_ASSET


def books(sm: Stakes, asset: str, people: list[str]) -> None:
    """Per participant and in sum: deposited == staked + slashed + withdrawn; the contract
    holds staked + owed; slashed == owed + claimed."""
    t = sm.totals(asset)
    staked = 0
    for who in people:
        s = sm.stake(who, asset)
        mine = s["free"] + s["locked"] + s["unbonding"]
        assert s["deposited"] == mine + s["slashed"] + s["withdrawn"]
        staked += mine
    assert t["staked"] == staked
    assert t["deposited"] == t["staked"] + t["slashed"] + t["withdrawn"]
    assert t["slashed"] == t["owed"] + t["claimed"]
    assert sm.balance(asset, sm.manager.address) == t["staked"] + t["owed"]


def test_ether_and_token_round_trip(sm: Stakes) -> None:
    a = sm.staker(1)
    receipt = sm.deposit(a, None, 3 * ETH)
    (event,) = sm.chain.events(sm.manager, "Deposited", receipt)
    assert event["args"]["amount"] == 3 * ETH
    assert event["args"]["asset"] == ZERO
    sm.deposit(a, sm.token, 500)
    assert sm.stake(a, ZERO)["free"] == 3 * ETH
    receipt = sm.chain.send(sm.manager.functions.requestWithdrawal(ZERO, ETH), a)
    (event,) = sm.chain.events(sm.manager, "UnbondingRequested", receipt)
    assert event["args"]["releaseAt"] == now(sm.chain) + UNBONDING
    warp(sm.chain, UNBONDING)
    before = sm.balance(ZERO, a)
    receipt = sm.chain.send(sm.manager.functions.withdraw(ZERO, a), a)
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert sm.balance(ZERO, a) == before + ETH - fee
    sm.chain.send(sm.manager.functions.requestWithdrawal(sm.token.address, 200), a)
    warp(sm.chain, UNBONDING)
    sm.chain.send(sm.manager.functions.withdraw(sm.token.address, sm.staker(2)), a)
    assert sm.token.functions.balanceOf(sm.staker(2)).call() == 10**24 + 200
    assert sm.stake(a, sm.token.address)["withdrawn"] == 200
    books(sm, ZERO, [a])
    books(sm, sm.token.address, [a])
    assert sm.chain.revert_reason(sm.manager.functions.withdraw(ZERO, a), a) == "NothingUnbonding"


def test_zero_amounts_are_refused(sm: Stakes) -> None:
    a = sm.staker(1)
    m = sm.manager.functions
    assert sm.chain.revert_reason(m.deposit(ZERO, 0), a) == "ZeroAmount"
    assert sm.chain.revert_reason(m.deposit(sm.token.address, 0), a) == "ZeroAmount"
    assert sm.chain.revert_reason(m.requestWithdrawal(ZERO, 0), a) == "ZeroAmount"
    sm.deposit(a, None, ETH)
    assert sm.chain.revert_reason(sm.judge.functions.lock(a, ZERO, 0)) == "ZeroAmount"
    assert sm.chain.revert_reason(sm.judge.functions.unlock(a, ZERO, 0)) == "ZeroAmount"
    assert sm.chain.revert_reason(sm.slash(a, ZERO, 0)) == "ZeroAmount"
    assert sm.chain.revert_reason(sm.slash(sm.staker(2), ZERO, 5)) == "NothingToSlash"
    assert sm.chain.revert_reason(m.withdraw(ZERO, ZERO), a) == "ZeroAddress"
    assert sm.chain.revert_reason(m.claim(ZERO, a), a) == "NothingOwed"


def call_error(sm: Stakes, tx: dict[str, Any]) -> str:
    """The custom error ``tx`` reverts with (run as a call; both backends)."""
    try:
        sm.chain.w3.eth.call(tx)  # type: ignore[arg-type]
    except Exception as exc:  # eth-tester and anvil raise different classes
        return sm.chain._decode(_revert_data(exc))
    raise AssertionError("the call did not revert")


def test_ether_sent_the_wrong_way_is_refused(sm: Stakes) -> None:
    a, m = sm.staker(1), sm.manager.functions
    plain = {"from": a, "to": sm.manager.address, "value": ETH}
    assert call_error(sm, plain) == "UseDeposit"
    too_little = m.deposit(ZERO, 2 * ETH).build_transaction({"from": a, "value": ETH, "gas": GAS})
    assert call_error(sm, dict(too_little)) == "WrongValue"
    sm.chain.send(sm.token.functions.approve(sm.manager.address, 10), a)
    with_token = m.deposit(sm.token.address, 10).build_transaction(
        {"from": a, "value": 10, "gas": GAS}
    )
    assert call_error(sm, dict(with_token)) == "WrongValue"
    for tx in (plain, too_little, with_token):
        assert not _mined(sm, dict(tx))
    assert sm.chain.w3.eth.get_balance(sm.manager.address) == 0
    assert sm.totals(ZERO)["deposited"] == 0


def _mined(sm: Stakes, tx: dict[str, Any]) -> bool:
    """Send ``tx``; whether it was mined successfully (anvil mines reverts as status 0,
    eth-tester raises)."""
    tx = {k: v for k, v in tx.items() if k in ("from", "to", "value", "data")}
    try:
        sent = sm.chain.w3.eth.send_transaction({**tx, "gas": 200_000})  # type: ignore[typeddict-item]
        return bool(sm.chain.w3.eth.wait_for_transaction_receipt(sent)["status"] == 1)
    except Exception:  # eth-tester raises on revert
        return False


def test_withdrawal_waits_for_the_unbonding_delay(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, 2 * ETH)
    m = sm.manager.functions
    sm.chain.send(m.requestWithdrawal(ZERO, ETH), a)
    assert sm.chain.revert_reason(m.withdraw(ZERO, a), a) == "UnbondingNotDue"
    warp(sm.chain, UNBONDING - 100)
    assert sm.chain.revert_reason(m.withdraw(ZERO, a), a) == "UnbondingNotDue"
    sm.chain.send(m.requestWithdrawal(ZERO, ETH), a)  # a second request restarts the clock
    warp(sm.chain, 200)
    assert sm.chain.revert_reason(m.withdraw(ZERO, a), a) == "UnbondingNotDue"
    assert sm.chain.revert_reason(m.requestWithdrawal(ZERO, 1), a) == "InsufficientFree"
    warp(sm.chain, UNBONDING)
    sm.chain.send(m.withdraw(ZERO, a), a)
    assert sm.stake(a, ZERO)["withdrawn"] == 2 * ETH
    books(sm, ZERO, [a])


def test_locked_stake_cannot_be_withdrawn(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, sm.token, 1_000)
    asset = sm.token.address
    receipt = sm.chain.send(sm.judge.functions.lock(a, asset, 800))
    (event,) = sm.chain.events(sm.manager, "Locked", receipt)
    assert event["args"]["market"] == sm.judge.address
    m = sm.manager.functions
    assert sm.chain.revert_reason(m.requestWithdrawal(asset, 201), a) == "InsufficientFree"
    sm.chain.send(m.requestWithdrawal(asset, 200), a)
    assert sm.chain.revert_reason(sm.judge.functions.lock(a, asset, 1)) == "InsufficientFree"
    assert sm.chain.revert_reason(sm.judge.functions.unlock(a, asset, 801)) == "InsufficientLocked"
    # a market that is not registered locks nothing; nobody unlocks another market's lock
    assert sm.chain.revert_reason(sm.rogue.functions.lock(a, asset, 1)) == "NotMarket"
    assert sm.chain.revert_reason(sm.rogue.functions.unlock(a, asset, 1)) == "InsufficientLocked"
    assert sm.chain.revert_reason(m.unlock(a, asset, 1), a) == "InsufficientLocked"
    assert sm.chain.revert_reason(m.releaseLock(asset, sm.judge.address), a) == "MarketStillActive"
    sm.chain.send(sm.judge.functions.unlock(a, asset, 800))
    sm.chain.send(m.requestWithdrawal(asset, 800), a)
    assert sm.stake(a, asset)["unbonding"] == 1_000
    books(sm, asset, [a])


def test_only_registered_active_judges_slash(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, ETH)
    assert sm.chain.revert_reason(sm.slash(a, ZERO, ETH, judge=sm.rogue)) == "NotJudge"
    m = sm.manager.functions
    # the governor itself, and any account, is no judge
    call = m.slash(a, ZERO, ETH, FAULT, 1, EVIDENCE, sm.governor)
    assert sm.chain.revert_reason(call, sm.governor) == "NotJudge"
    # a non-governor cannot register a judge
    reason = sm.chain.revert_reason(m.proposeJudge(sm.rogue.address, 10_000), a)
    assert reason == "OwnableUnauthorizedAccount"
    # a proposed judge acts only after the governance delay
    sm.chain.send(m.proposeJudge(sm.rogue.address, 10_000), sm.governor)
    assert sm.chain.revert_reason(sm.slash(a, ZERO, ETH, judge=sm.rogue)) == "NotJudge"
    warp(sm.chain, GOVERNANCE)
    sm.chain.send(sm.slash(a, ZERO, 1, judge=sm.rogue))
    # removal is immediate
    receipt = sm.chain.send(m.removeJudge(sm.rogue.address), sm.governor)
    assert sm.chain.events(sm.manager, "JudgeRemoved", receipt)
    call = sm.slash(a, ZERO, 1, fault=b"\x01" * 32, judge=sm.rogue)
    assert sm.chain.revert_reason(call) == "NotJudge"
    assert sm.stake(a, ZERO)["slashed"] == 1


def test_one_fault_is_slashed_once(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, ETH)
    receipt = sm.chain.send(sm.slash(a, ZERO, 100))
    (event,) = sm.chain.events(sm.manager, "Slashed", receipt)
    args = event["args"]
    assert (args["faultId"], args["reasonCode"], args["evidenceHash"]) == (FAULT, 7, EVIDENCE)
    assert (args["judge"], args["prover"], args["amount"]) == (sm.judge.address, sm.prover, 100)
    assert sm.chain.revert_reason(sm.slash(a, ZERO, 100)) == "FaultAlreadySlashed"
    assert sm.manager.functions.faultSlashed(sm.judge.address, FAULT).call()
    sm.chain.send(sm.slash(a, ZERO, 100, fault=b"\x02" * 32))  # another fault
    assert sm.stake(a, ZERO)["slashed"] == 200
    books(sm, ZERO, [a])


def test_unbonding_does_not_escape_a_slash(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, ETH)
    sm.chain.send(sm.manager.functions.requestWithdrawal(ZERO, ETH), a)
    warp(sm.chain, UNBONDING - 10)
    receipt = sm.chain.send(sm.slash(a, ZERO, ETH // 4))
    (event,) = sm.chain.events(sm.manager, "Slashed", receipt)
    assert event["args"]["amount"] == ETH // 4
    warp(sm.chain, 10)
    sm.chain.send(sm.manager.functions.withdraw(ZERO, a), a)
    s = sm.stake(a, ZERO)
    assert (s["withdrawn"], s["slashed"]) == (3 * ETH // 4, ETH // 4)
    books(sm, ZERO, [a])


def test_slash_takes_own_lock_then_unbonding_then_free_never_other_locks(sm: Stakes) -> None:
    a, asset = sm.staker(1), sm.token.address
    m = sm.manager.functions
    other = sm.chain.deploy("TestJudge", sm.manager.address)
    sm.chain.send(m.proposeMarket(other.address), sm.governor)
    warp(sm.chain, GOVERNANCE)
    sm.deposit(a, sm.token, 1_000)
    sm.chain.send(sm.judge.functions.lock(a, asset, 100))
    sm.chain.send(other.functions.lock(a, asset, 400))
    sm.chain.send(m.requestWithdrawal(asset, 300), a)  # free 200, unbonding 300
    sm.chain.send(sm.slash(a, asset, 450))  # own lock 100, unbonding 300, free 50
    s = sm.stake(a, asset)
    assert (s["free"], s["locked"], s["unbonding"], s["slashed"]) == (150, 400, 0, 450)
    assert m.lockedBy(a, asset, sm.judge.address).call() == 0
    assert m.lockedBy(a, asset, other.address).call() == 400
    # asking for more than there is slashes what there is (never another market's lock)
    receipt = sm.chain.send(sm.slash(a, asset, 10_000, fault=b"\x03" * 32))
    (event,) = sm.chain.events(sm.manager, "Slashed", receipt)
    assert event["args"]["amount"] == 150
    assert sm.stake(a, asset)["locked"] == 400
    books(sm, asset, [a])


@pytest.mark.parametrize("amount", [1, 2, 3, 999, 10**18 + 1])
def test_split_rounds_down_for_the_prover_and_loses_nothing(sm: Stakes, amount: int) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, 2 * ETH)
    receipt = sm.chain.send(sm.slash(a, ZERO, amount))
    (event,) = sm.chain.events(sm.manager, "Slashed", receipt)
    prover_share = amount * PROVER_BPS // 10_000
    assert event["args"]["proverShare"] == prover_share
    assert event["args"]["treasuryShare"] == amount - prover_share
    m = sm.manager.functions
    assert m.owed(sm.prover, ZERO).call() == prover_share
    assert m.owed(sm.treasury, ZERO).call() == amount - prover_share
    for who, share in ((sm.prover, prover_share), (sm.treasury, amount - prover_share)):
        if share == 0:
            assert sm.chain.revert_reason(m.claim(ZERO, who), who) == "NothingOwed"
            continue
        before = sm.balance(ZERO, sm.staker(3))
        sm.chain.send(m.claim(ZERO, sm.staker(3)), who)
        assert sm.balance(ZERO, sm.staker(3)) == before + share
    books(sm, ZERO, [a])
    assert sm.totals(ZERO)["claimed"] == amount


def test_no_prover_means_all_to_the_treasury(sm: Stakes) -> None:
    a = sm.staker(1)
    sm.deposit(a, None, ETH)
    sm.chain.send(sm.slash(a, ZERO, 1001, prover=ZERO))
    assert sm.manager.functions.owed(sm.treasury, ZERO).call() == 1001
    assert sm.manager.functions.owed(ZERO, ZERO).call() == 0


def test_reentrancy_through_a_token_hook_fails(sm: Stakes) -> None:
    r = sm.chain.deploy("Reenterer", sm.manager.address)
    hook = sm.hook
    sm.give(hook, r.address, 1_000)
    sm.chain.send(r.functions.approve(hook.address, 10**6))
    sm.chain.send(r.functions.registerHooks(hook.address))
    sm.chain.send(r.functions.setMode(hook.address, 3))  # deposit again from tokensToSend
    assert sm.chain.revert_reason(r.functions.deposit(hook.address, 500)) == (
        "ReentrancyGuardReentrantCall"
    )
    sm.chain.send(r.functions.setMode(hook.address, 0))
    sm.chain.send(r.functions.deposit(hook.address, 500))
    sm.chain.send(r.functions.requestWithdrawal(hook.address, 500))
    warp(sm.chain, UNBONDING)
    sm.chain.send(r.functions.setMode(hook.address, 1))  # withdraw again from tokensReceived
    assert sm.chain.revert_reason(r.functions.withdraw(hook.address)) == (
        "ReentrancyGuardReentrantCall"
    )
    assert sm.stake(r.address, hook.address)["unbonding"] == 500
    # the prover's claim, re-entered
    sm.deposit(sm.staker(1), hook, 1_000)
    sm.chain.send(sm.slash(sm.staker(1), hook.address, 400, prover=r.address))
    sm.chain.send(r.functions.setMode(hook.address, 2))
    assert sm.chain.revert_reason(r.functions.claim(hook.address)) == (
        "ReentrancyGuardReentrantCall"
    )
    sm.chain.send(r.functions.setMode(hook.address, 0))
    sm.chain.send(r.functions.claim(hook.address))
    sm.chain.send(r.functions.withdraw(hook.address))
    assert hook.functions.balanceOf(r.address).call() == 1_000 + 200  # 500 kept, 500 back
    books(sm, hook.address, [r.address, sm.staker(1)])


def test_reentrancy_through_ether_receive_fails(sm: Stakes) -> None:
    r = sm.chain.deploy("Reenterer", sm.manager.address)
    assert pay(sm.chain, r.functions.deposit(ZERO, ETH), sm.staker(1), ETH)["status"] == 1
    sm.chain.send(r.functions.requestWithdrawal(ZERO, ETH))
    warp(sm.chain, UNBONDING)
    sm.chain.send(r.functions.setMode(ZERO, 1))
    assert sm.chain.revert_reason(r.functions.withdraw(ZERO)) == "TransferFailed"
    sm.chain.send(r.functions.setMode(ZERO, 0))
    sm.chain.send(r.functions.withdraw(ZERO))
    assert sm.chain.w3.eth.get_balance(r.address) == ETH
    books(sm, ZERO, [r.address])


def test_fee_on_transfer_token_credits_what_arrived(sm: Stakes) -> None:
    a, fee = sm.staker(1), sm.fee
    receipt = sm.deposit(a, fee, 10_000)
    arrived = 10_000 - 10_000 * FEE_BPS // 10_000
    (event,) = sm.chain.events(sm.manager, "Deposited", receipt)
    assert event["args"]["amount"] == arrived
    assert sm.stake(a, fee.address)["free"] == arrived
    books(sm, fee.address, [a])
    sm.chain.send(sm.manager.functions.requestWithdrawal(fee.address, arrived), a)
    warp(sm.chain, UNBONDING)
    sm.chain.send(sm.manager.functions.withdraw(fee.address, a), a)
    assert fee.functions.balanceOf(sm.manager.address).call() == 0
    books(sm, fee.address, [a])


def test_false_returning_token_is_caught(sm: Stakes) -> None:
    a, bad = sm.staker(1), sm.false
    sm.chain.send(bad.functions.setFailing(True))
    sm.chain.send(bad.functions.approve(sm.manager.address, 1_000), a)
    call = sm.manager.functions.deposit(bad.address, 1_000)
    assert sm.chain.revert_reason(call, a) == "SafeERC20FailedOperation"
    sm.chain.send(bad.functions.setFailing(False))
    sm.deposit(a, bad, 1_000)
    sm.chain.send(sm.manager.functions.requestWithdrawal(bad.address, 1_000), a)
    warp(sm.chain, UNBONDING)
    sm.chain.send(bad.functions.setFailing(True))
    call = sm.manager.functions.withdraw(bad.address, a)
    assert sm.chain.revert_reason(call, a) == "SafeERC20FailedOperation"
    assert sm.stake(a, bad.address)["unbonding"] == 1_000  # nothing booked as paid
    books(sm, bad.address, [a])


def test_governance_cannot_take_stake(sm: Stakes) -> None:
    """What the governor can do: register (after a delay), remove, change the treasury for
    future slashes, hand over in two steps. What it cannot: slash, lock, move stake or owed
    balances, or act through a judge before a staker who distrusts it has left."""
    a, gov = sm.staker(1), sm.governor
    m = sm.manager.functions
    sm.deposit(a, None, ETH)
    sm.chain.send(sm.slash(a, ZERO, 10))
    assert sm.chain.revert_reason(m.lock(a, ZERO, 1), gov) == "NotMarket"
    assert sm.chain.revert_reason(m.withdraw(ZERO, gov), gov) == "NothingUnbonding"
    assert sm.chain.revert_reason(m.claim(ZERO, gov), gov) == "NothingOwed"
    assert sm.chain.revert_reason(m.releaseLock(ZERO, sm.judge.address), gov) == (
        "MarketStillActive"
    )
    # a new judge of the governor's: the staker sees JudgeProposed, unbonds, leaves first
    receipt = sm.chain.send(m.proposeJudge(sm.rogue.address, 10_000), gov)
    (event,) = sm.chain.events(sm.manager, "JudgeProposed", receipt)
    assert event["args"]["activeFrom"] == now(sm.chain) + GOVERNANCE
    assert GOVERNANCE >= UNBONDING
    sm.chain.send(m.requestWithdrawal(ZERO, ETH - 10), a)
    warp(sm.chain, UNBONDING)
    assert sm.chain.revert_reason(sm.slash(a, ZERO, 1, judge=sm.rogue)) == "NotJudge"
    sm.chain.send(m.withdraw(ZERO, a), a)
    assert sm.chain.revert_reason(m.proposeJudge(sm.rogue.address, 1), gov) == "AlreadyRegistered"
    assert sm.chain.revert_reason(m.proposeJudge(sm.judge.address, 10_001), gov) == "BadBps"
    # the treasury changes for future slashes only; past shares stay owed where they were
    old = sm.treasury
    sm.chain.send(m.setTreasury(sm.staker(3)), gov)
    assert m.owed(old, ZERO).call() == 5
    assert sm.chain.revert_reason(m.setTreasury(ZERO), gov) == "ZeroAddress"
    # removing a market frees its locks to the participant
    sm.deposit(sm.staker(2), None, ETH)
    sm.chain.send(sm.judge.functions.lock(sm.staker(2), ZERO, ETH))
    sm.chain.send(m.removeMarket(sm.judge.address), gov)
    assert sm.chain.revert_reason(sm.judge.functions.lock(sm.staker(2), ZERO, 1)) == "NotMarket"
    sm.chain.send(m.releaseLock(ZERO, sm.judge.address), sm.staker(2))
    assert sm.stake(sm.staker(2), ZERO)["free"] == ETH
    # two-step handover: nothing changes until the new governor accepts
    sm.chain.send(m.transferOwnership(sm.staker(3)), gov)
    assert m.owner().call() == gov
    sm.chain.send(m.acceptOwnership(), sm.staker(3))
    assert m.owner().call() == sm.staker(3)
    reason = sm.chain.revert_reason(m.proposeMarket(sm.rogue.address), gov)
    assert reason == "OwnableUnauthorizedAccount"
    books(sm, ZERO, [a, sm.staker(2)])


def test_constructor_refuses_a_governance_delay_shorter_than_unbonding(sm: Stakes) -> None:
    factory = sm.chain.w3.eth.contract(
        abi=sm.manager.abi, bytecode=sm.chain.compiled["StakeManager"].bytecode
    )
    for unbonding, governance in ((100, 99), (0, 0)):
        tx = factory.constructor(sm.governor, sm.treasury, unbonding, governance)
        assert (
            call_error(sm, dict(tx.build_transaction({"from": sm.governor, "gas": GAS})))
            == "BadDelays"
        )
    tx = factory.constructor(sm.governor, ZERO, 1, 1)
    assert (
        call_error(sm, dict(tx.build_transaction({"from": sm.governor, "gas": GAS})))
        == "ZeroAddress"
    )

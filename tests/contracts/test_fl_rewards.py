"""FLRewards (issue 17): a sponsor's pool, staked clients, the aggregator's signed round
records, payouts claimed with proofs, penalties slashed through the StakeManager, challenges
decided by the verifier set. The attacks that must fail: a replayed round record (same task,
another task, another chain, another contract), rounds out of order, scores against another
held-out root, a model history that does not chain, payouts over the budget or over a round's
total, a double claim, a forged proof, a claim of another client's payout, a challenge after
the window or with too few, duplicate, unsorted or non-verifier signatures, slashing a client
the round did not penalise, the sponsor taking the pool back mid-task, re-entry on an ether
claim, a fee-on-transfer pool; rounding. The contract's books hold after every scenario
(``books``). One deployment per module, behind a snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_helpers import TransactionFailed, key
from fl_helpers import (
    ACTIVE,
    AGG_KEY,
    BOND,
    BUDGET,
    CANCELLED,
    FINISHED,
    FL,
    HALTED,
    HELDOUT,
    OTHER_HELDOUT,
    ROUNDS,
    STAKE,
    VERIFIERS,
    WINDOW,
    data_root,
    deploy_fl,
    model,
    penalties,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_helpers import pay, warp
from stake_helpers import ETHER_ASSET, PROVER_BPS
from web3 import Web3

from _profiles import examples
from ailedger.markets.flrewards import (
    REASON_HURT_HELDOUT,
    REASON_REPEATED_OUTLIER,
    Payout,
    PayoutTree,
    PenaltyTree,
    sign_round_record,
    split_budget,
)


@pytest.fixture(scope="module")
def _fl(w3: Web3) -> FL:
    return deploy_fl(w3)


@pytest.fixture
def fl(_fl: FL) -> Iterator[FL]:
    snap = _fl.chain.snapshot()
    yield _fl
    _fl.chain.revert_to(snap)


def books(fl: FL, task: bytes) -> None:
    """The contract holds what it owes; a task never pays more than it reserved, nor
    reserves more than its pool; a round's claims never exceed its total."""
    t = fl.task(task)
    pool = BUDGET * ROUNDS if t["terms"][3] == BUDGET else t["terms"][3] * t["terms"][10]
    assert t["paid"] <= t["reserved"] <= pool
    for r in range(1, t["lastRound"] + 1):
        x = fl.round(task, r)
        assert x["claimed"] <= x["payoutTotal"] <= t["terms"][3]
    held = fl.f.held(ETHER_ASSET).call()
    assert fl.chain.w3.eth.get_balance(fl.rewards.address) >= held


def _after_window(fl: FL) -> None:
    warp(fl.chain, WINDOW + 1)


def _round(fl: FL, task: bytes, rnd: int = 1, tree: PayoutTree | None = None, **kw: object):  # type: ignore[no-untyped-def]
    tree = tree or fl.payouts()
    record = fl.record(task, rnd, tree, **kw)  # type: ignore[arg-type]
    fl.post(record)
    return record, tree


# ---------------------------------------------------------------- the honest flow


def test_clients_claim_their_payouts_after_the_window(fl: FL) -> None:
    task = fl.start()
    t = fl.task(task)
    assert (t["status"], t["sponsor"], t["signer"], t["clients"]) == (
        ACTIVE, fl.sponsor, AGG_KEY.address, 4,
    )  # fmt: skip
    assert t["model"] == model(0)
    assert t["terms"][6] == HELDOUT
    assert fl.locked(fl.aggregator) == BOND
    assert all(fl.locked(c) == STAKE for c in fl.clients)
    assert fl.client(task, fl.clients[0])["dataRoot"] == data_root(0)
    record, tree = _round(fl, task, tree=fl.payouts([4, 3, 2, 1]))
    x = fl.round(task, 1)
    assert x["recordDigest"] == record.digest(fl.domain())
    assert bytes(fl.f.roundRecordDigest(record.as_tuple()).call()) == record.digest(fl.domain())
    assert bytes(fl.f.domainSeparator().call()) == fl.domain().separator()
    assert fl.task(task)["model"] == model(1)
    assert fl.f.poolLeft(task).call() == 3 * BUDGET - 10
    _after_window(fl)
    for c, amount in zip(fl.clients, [4, 3, 2, 1], strict=True):
        before = fl.chain.w3.eth.get_balance(c)
        receipt = fl.chain.send(fl.claim_call(task, 1, tree, c), c)
        cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert fl.chain.w3.eth.get_balance(c) == before + amount - cost
        assert fl.client(task, c)["paid"] == amount
        assert fl.f.claimed(task, 1, c).call()
    assert fl.round(task, 1)["claimed"] == 10
    assert fl.task(task)["paid"] == 10
    books(fl, task)


def test_the_held_out_root_is_registered_before_round_one_and_cannot_change(fl: FL) -> None:
    task = fl.start()
    created = fl.task(task)["createdBlock"]
    _round(fl, task)
    assert created < fl.round(task, 1)["postedBlock"]
    # no function but createTask takes a held-out root: nothing can re-register it
    writers = {
        item["name"]
        for item in fl.rewards.abi
        if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable")
    }
    assert writers == {
        "createTask", "cancel", "acceptTask", "join", "postRound", "challenge", "claim",
        "slashPenalised", "finish", "withdrawRefund", "leave", "sweep",
    }  # fmt: skip


def test_scores_against_another_held_out_root_are_refused(fl: FL) -> None:
    task = fl.start()
    record = fl.record(task, 1, fl.payouts(), heldout_root=OTHER_HELDOUT)
    assert fl.chain.revert_reason(fl.post_call(record), fl.bystander) == "HeldoutRootMismatch"


# ---------------------------------------------------------------- round records


def test_a_round_record_cannot_be_replayed(fl: FL) -> None:
    task = fl.start()
    other = fl.start()
    record, _ = _round(fl, task)
    # the same record again: the round is taken
    assert fl.chain.revert_reason(fl.post_call(record), fl.bystander) == "RoundOutOfOrder"
    # its signature on another task's record
    sig = sign_round_record(record, fl.domain(), AGG_KEY)
    moved = fl.record(other, 1, fl.payouts())
    assert fl.chain.revert_reason(fl.f.postRound(moved.as_tuple(), sig)) == "WrongSigner"
    # signed for another chain, another contract
    for domain in (fl.domain(chain_id=fl.chain.chain_id + 1), fl.domain(contract=fl.bystander)):
        call = fl.post_call(moved, domain=domain)
        assert fl.chain.revert_reason(call, fl.bystander) == "WrongSigner"
    # signed by anyone but the aggregator's named key (the sponsor, a verifier)
    for k in (key(1), VERIFIERS[0]):
        assert fl.chain.revert_reason(fl.post_call(moved, k), fl.bystander) == "WrongSigner"
    # malformed signature
    bad = fl.f.postRound(moved.as_tuple(), b"\x01" * 64)
    assert fl.chain.revert_reason(bad, fl.bystander) == "BadSignature"


def test_rounds_go_in_order_and_stop_at_the_last(fl: FL) -> None:
    task = fl.start()
    early = fl.record(task, 2, fl.payouts(), model_before=model(0))
    assert fl.chain.revert_reason(fl.post_call(early), fl.bystander) == "RoundOutOfOrder"
    for r in range(1, ROUNDS + 1):
        _round(fl, task, r)
    late = fl.record(task, ROUNDS + 1, fl.payouts())
    assert fl.chain.revert_reason(fl.post_call(late), fl.bystander) == "RoundOutOfOrder"
    assert fl.task(task)["reserved"] == ROUNDS * BUDGET
    assert fl.f.poolLeft(task).call() == 0
    books(fl, task)


def test_the_model_history_must_chain(fl: FL) -> None:
    task = fl.start()
    _round(fl, task)
    forked = fl.record(task, 2, fl.payouts(), model_before=model(0))
    assert fl.chain.revert_reason(fl.post_call(forked), fl.bystander) == "WrongBaseModel"


def test_payouts_cannot_exceed_the_round_budget_or_the_pool(fl: FL) -> None:
    task = fl.start()
    over = fl.payouts([BUDGET // 2, BUDGET // 2, 1])
    assert over.total == BUDGET + 1
    record = fl.record(task, 1, over)
    assert fl.chain.revert_reason(fl.post_call(record), fl.bystander) == "OverBudget"


def test_a_round_pays_no_more_than_its_posted_total(fl: FL) -> None:
    """An aggregator whose tree holds more than the total it posted: the claims stop at the
    total (first come), the pool is not touched beyond it."""
    task = fl.start()
    tree = fl.payouts([BUDGET // 2, BUDGET // 2, BUDGET // 2])
    _round(fl, task, tree=tree, payout_total=BUDGET)
    _after_window(fl)
    for c in fl.clients[:2]:
        fl.chain.send(fl.claim_call(task, 1, tree, c), c)
    call = fl.claim_call(task, 1, tree, fl.clients[2])
    assert fl.chain.revert_reason(call, fl.clients[2]) == "RoundExhausted"
    books(fl, task)


# ---------------------------------------------------------------- claims


def test_a_payout_is_claimed_once(fl: FL) -> None:
    task = fl.start()
    _, tree = _round(fl, task)
    c = fl.clients[0]
    call = fl.claim_call(task, 1, tree, c)
    assert fl.chain.revert_reason(call, c) == "ChallengeWindowOpen"
    _after_window(fl)
    fl.chain.send(call, c)
    assert fl.chain.revert_reason(call, c) == "AlreadyClaimed"


def test_forged_proofs_and_other_clients_payouts_are_refused(fl: FL) -> None:
    task = fl.start()
    _, tree = _round(fl, task)
    _after_window(fl)
    a, b = fl.clients[0], fl.clients[1]
    p = tree.proof(a)
    f = fl.f
    # more than the leaf says; another index; another round's tree; a truncated proof
    for call in (
        f.claim(task, 1, p.payout.amount + 1, p.index, list(p.hashes)),
        f.claim(task, 1, p.payout.amount, (p.index + 1) % tree.size, list(p.hashes)),
        f.claim(task, 1, p.payout.amount, p.index, list(p.hashes[:-1])),
        f.claim(task, 1, p.payout.amount, p.index + tree.size, list(p.hashes)),
    ):
        assert fl.chain.revert_reason(call, a) == "BadProof"
    # b presents a's proof: the leaf is rebuilt from the caller, so it does not verify
    assert fl.chain.revert_reason(fl.claim_call(task, 1, tree, a), b) == "BadProof"
    # a bystander who never joined
    assert fl.chain.revert_reason(fl.claim_call(task, 1, tree, a), fl.bystander) == "NotClient"
    # a round never posted
    assert fl.chain.revert_reason(fl.claim_call(task, 2, tree, a), a) == "UnknownRound"
    fl.chain.send(fl.claim_call(task, 1, tree, a), a)
    assert fl.client(task, b)["paid"] == 0
    books(fl, task)


def test_reentry_on_an_ether_claim_is_refused(fl: FL) -> None:
    task = fl.start()
    r = fl.reenterer
    fl.chain.send(
        r.functions.call(
            fl.rewards.address, fl.f.join(task, data_root(9))._encode_transaction_data()
        ),
        fl.bystander,
    )
    payouts = [Payout(c, 1_000) for c in fl.clients] + [Payout(r.address, 1_000)]
    tree = PayoutTree(payouts)
    _round(fl, task, tree=tree)
    _after_window(fl)
    claim = fl.claim_call(task, 1, tree, r.address)._encode_transaction_data()
    fl.chain.send(r.functions.arm(fl.rewards.address, claim), fl.bystander)
    fl.chain.send(r.functions.call(fl.rewards.address, claim), fl.bystander)
    assert r.functions.reentered().call()
    assert not r.functions.reentryOk().call()
    error = bytes(r.functions.reentryError().call())
    assert fl.chain.errors[error[:4]] == "ReentrancyGuardReentrantCall"
    assert fl.chain.w3.eth.get_balance(r.address) == 1_000
    assert fl.client(task, r.address)["paid"] == 1_000
    books(fl, task)


# ---------------------------------------------------------------- challenges


def test_a_challenge_corrects_the_round_slashes_the_bond_and_halts_the_task(fl: FL) -> None:
    task = fl.start()
    record, lying = _round(fl, task, tree=fl.payouts([BUDGET, 0, 0, 0]))
    fair = fl.payouts([BUDGET // 4] * 4)
    challenger = fl.clients[1]
    correction = fl.correction(record, fair, challenger=challenger)
    # another client (or a bot watching the mempool) cannot front-run the challenge
    assert fl.chain.revert_reason(fl.challenge_call(correction), fl.clients[0]) == ("NotChallenger")
    receipt = fl.chain.send(fl.challenge_call(correction), challenger)
    (event,) = fl.chain.events(fl.rewards, "RoundCorrected", receipt)
    assert event["args"]["bondSlashed"] == BOND
    assert event["args"]["challenger"] == challenger
    assert fl.locked(fl.aggregator) == 0
    sm = fl.sm.manager.functions
    assert sm.owed(challenger, fl.sm.token.address).call() == BOND * PROVER_BPS // 10_000
    x = fl.round(task, 1)
    assert x["corrected"]
    assert x["payoutRoot"] == fair.root
    assert x["payoutTotal"] == fair.total
    assert fl.task(task)["status"] == HALTED
    # no further rounds; the same round cannot be corrected twice
    nxt = fl.record(task, 2, fl.payouts())
    assert fl.chain.revert_reason(fl.post_call(nxt), fl.bystander) == "WrongTaskStatus"
    again = fl.correction(record, fl.payouts([1, 1, 1, 1]), challenger=challenger)
    assert fl.chain.revert_reason(fl.challenge_call(again), challenger) == "AlreadyCorrected"
    _after_window(fl)
    # the lying tree no longer pays; the corrected one does
    a = fl.clients[0]
    assert fl.chain.revert_reason(fl.claim_call(task, 1, lying, a), a) == "BadProof"
    for c in fl.clients:
        fl.chain.send(fl.claim_call(task, 1, fair, c), c)
    books(fl, task)


def test_challenges_need_threshold_distinct_sorted_verifier_signatures(fl: FL) -> None:
    task = fl.start()
    record, _ = _round(fl, task)
    correction = fl.correction(record, fl.payouts([1, 2, 3, 4]))
    c = fl.clients[0]
    v0, v1, v2 = VERIFIERS
    outsider = key(999)
    assert fl.chain.revert_reason(fl.challenge_call(correction, [v0]), c) == "TooFewSignatures"
    sigs = fl.challenge_call(correction, [v0, v1]).args[1]
    dup = fl.f.challenge(correction.as_tuple(), [sigs[0], sigs[0]])
    assert fl.chain.revert_reason(dup, c) == "SignersNotSorted"
    unsorted = fl.f.challenge(correction.as_tuple(), [sigs[1], sigs[0]])
    assert fl.chain.revert_reason(unsorted, c) == "SignersNotSorted"
    with_outsider = fl.challenge_call(
        correction, sorted([v0, outsider], key=lambda k: int(k.address, 16))
    )
    assert fl.chain.revert_reason(with_outsider, c) == "NotVerifier"
    # signatures over another correction recover other addresses
    other = fl.correction(record, fl.payouts([4, 3, 2, 1]))
    swapped = fl.f.challenge(correction.as_tuple(), fl.challenge_call(other).args[1])
    assert fl.chain.revert_reason(swapped, c) == "NotVerifier"
    # a correction naming another record, or changing nothing
    wrong = fl.correction(record, fl.payouts([1, 2, 3, 4]), record_digest=b"\x01" * 32)
    assert fl.chain.revert_reason(fl.challenge_call(wrong), c) == "WrongRecord"
    same = fl.correction(record, fl.payouts(), scores_root=record.scores_root)
    assert fl.chain.revert_reason(fl.challenge_call(same), c) == "NothingToCorrect"
    # only clients challenge; over-budget corrections are refused too
    assert fl.chain.revert_reason(fl.challenge_call(correction), fl.bystander) == "NotClient"
    big = fl.correction(record, fl.payouts([BUDGET, 1]))
    assert fl.chain.revert_reason(fl.challenge_call(big), c) == "OverBudget"
    # all three verifiers in order is fine
    fl.chain.send(fl.challenge_call(correction, [v0, v1, v2]), c)


def test_a_challenge_after_the_window_is_refused(fl: FL) -> None:
    task = fl.start()
    record, _ = _round(fl, task)
    _after_window(fl)
    correction = fl.correction(record, fl.payouts([1, 2, 3, 4]))
    call = fl.challenge_call(correction)
    assert fl.chain.revert_reason(call, fl.clients[0]) == "ChallengeWindowClosed"


# ---------------------------------------------------------------- penalties


def test_penalised_clients_are_slashed_after_the_window_once(fl: FL) -> None:
    task = fl.start()
    spammer, poisoner, honest = fl.clients[3], fl.clients[2], fl.clients[0]
    pen = penalties(
        (spammer, STAKE, REASON_HURT_HELDOUT), (poisoner, STAKE // 2, REASON_REPEATED_OUTLIER)
    )
    _round(fl, task, penalties=pen)
    call = fl.slash_call(task, 1, pen, spammer)
    assert fl.chain.revert_reason(call, fl.bystander) == "ChallengeWindowOpen"
    _after_window(fl)
    receipt = fl.chain.send(call, fl.bystander)
    (event,) = fl.chain.events(fl.rewards, "ClientSlashed", receipt)
    assert event["args"]["amount"] == STAKE
    assert event["args"]["reason"] == REASON_HURT_HELDOUT
    assert fl.client(task, spammer)["slashed"] == STAKE
    assert fl.locked(spammer) == 0
    assert fl.chain.revert_reason(call, fl.bystander) == "NothingLocked"
    fl.chain.send(fl.slash_call(task, 1, pen, poisoner), fl.bystander)
    assert fl.client(task, poisoner)["slashed"] == STAKE // 2
    assert fl.locked(poisoner) == STAKE // 2
    # the same penalty again (StakeManager: one slash per fault)
    again = fl.slash_call(task, 1, pen, poisoner)
    assert fl.chain.revert_reason(again, fl.bystander) == "FaultAlreadySlashed"
    # a client the round did not penalise: no leaf of the penalty tree is its
    p = pen.proof(spammer)
    forged = fl.f.slashPenalised(
        task, 1, (honest, p.penalty.amount, p.penalty.reason), p.index, list(p.hashes)
    )
    assert fl.chain.revert_reason(forged, fl.bystander) == "BadProof"
    fake = penalties((honest, STAKE, REASON_HURT_HELDOUT))
    assert fl.chain.revert_reason(fl.slash_call(task, 1, fake, honest)) == "BadProof"
    assert fl.client(task, honest)["slashed"] == 0
    assert fl.locked(honest) == STAKE


def test_a_penalty_never_reaches_beyond_the_stake_this_task_locks(fl: FL) -> None:
    task = fl.start()
    victim = fl.clients[0]
    pen = penalties((victim, 100 * STAKE, REASON_HURT_HELDOUT))
    _round(fl, task, penalties=pen)
    _after_window(fl)
    free_before = fl.sm.stake(victim, fl.sm.token.address)["free"]
    fl.chain.send(fl.slash_call(task, 1, pen, victim), fl.bystander)
    assert fl.client(task, victim)["slashed"] == STAKE
    assert fl.sm.stake(victim, fl.sm.token.address)["free"] == free_before


# ---------------------------------------------------------------- the sponsor, the end


def test_the_sponsor_cannot_take_the_pool_back_mid_task(fl: FL) -> None:
    task = fl.start()
    _round(fl, task)
    s = fl.sponsor
    assert fl.chain.revert_reason(fl.f.cancel(task), s) == "WrongTaskStatus"
    assert fl.chain.revert_reason(fl.f.finish(task), s) == "NotFinishable"
    # the sponsor cannot sign rounds either
    rogue = fl.record(task, 2, fl.payouts([BUDGET]), model_before=model(1))
    assert fl.chain.revert_reason(fl.post_call(rogue, key(5)), s) == "WrongSigner"
    # cancel is the sponsor's only, and only before the aggregator accepts
    pending = fl.create()
    assert fl.chain.revert_reason(fl.f.cancel(pending), fl.bystander) == "NotSponsor"
    fl.chain.send(fl.f.cancel(pending), s)
    assert fl.f.refundable(s, ETHER_ASSET).call() == BUDGET * ROUNDS
    before = fl.chain.w3.eth.get_balance(fl.rewards.address)
    fl.chain.send(fl.f.withdrawRefund(ETHER_ASSET, s), s)
    assert fl.chain.w3.eth.get_balance(fl.rewards.address) == before - BUDGET * ROUNDS
    assert fl.task(pending)["status"] == CANCELLED
    assert fl.chain.revert_reason(fl.f.acceptTask(pending, AGG_KEY.address), fl.aggregator) == (
        "WrongTaskStatus"
    )
    books(fl, task)


def test_finish_refunds_the_unreserved_pool_and_releases_every_stake(fl: FL) -> None:
    task = fl.start()
    _, tree = _round(fl, task, tree=fl.payouts([7, 5, 3, 1]))
    c = fl.clients[0]
    assert fl.chain.revert_reason(fl.f.leave(task), c) == "WrongTaskStatus"
    at = fl.f.finishableAt(task).call()
    warp(fl.chain, at - fl.chain.w3.eth.get_block("latest")["timestamp"] - 10)
    assert fl.chain.revert_reason(fl.f.finish(task), fl.bystander) == "NotFinishable"
    warp(fl.chain, 11)
    receipt = fl.chain.send(fl.f.finish(task), fl.bystander)
    (event,) = fl.chain.events(fl.rewards, "TaskFinished", receipt)
    assert event["args"]["refund"] == BUDGET * ROUNDS - 16
    assert fl.f.refundable(fl.sponsor, ETHER_ASSET).call() == BUDGET * ROUNDS - 16
    # the refund is the sponsor's alone, once
    nothing = fl.f.withdrawRefund(ETHER_ASSET, fl.bystander)
    assert fl.chain.revert_reason(nothing, fl.bystander) == "NothingRefundable"
    before = fl.chain.w3.eth.get_balance(fl.bystander)
    fl.chain.send(fl.f.withdrawRefund(ETHER_ASSET, fl.bystander), fl.sponsor)
    assert fl.chain.w3.eth.get_balance(fl.bystander) == before + BUDGET * ROUNDS - 16
    again = fl.f.withdrawRefund(ETHER_ASSET, fl.sponsor)
    assert fl.chain.revert_reason(again, fl.sponsor) == "NothingRefundable"
    assert fl.task(task)["status"] == FINISHED
    assert fl.f.poolLeft(task).call() == 0
    assert fl.locked(fl.aggregator) == 0
    # payouts stay claimable; stakes come back by leave, once
    fl.chain.send(fl.claim_call(task, 1, tree, c), c)
    fl.chain.send(fl.f.leave(task), c)
    assert fl.locked(c) == 0
    assert fl.client(task, c)["left"]
    assert fl.chain.revert_reason(fl.f.leave(task), c) == "AlreadyLeft"
    assert fl.chain.revert_reason(fl.f.finish(task), fl.bystander) == "WrongTaskStatus"
    assert fl.chain.w3.eth.get_balance(fl.rewards.address) == fl.f.held(ETHER_ASSET).call() == 9
    books(fl, task)


def test_a_task_whose_aggregator_goes_silent_finishes_after_the_deadline(fl: FL) -> None:
    task = fl.start()
    deadline = fl.task(task)["terms"][8]
    assert fl.f.finishableAt(task).call() == deadline + 2 * WINDOW
    warp(fl.chain, deadline - fl.chain.w3.eth.get_block("latest")["timestamp"] + 1)
    late = fl.record(task, 1, fl.payouts())
    assert fl.chain.revert_reason(fl.post_call(late), fl.bystander) == "PastDeadline"
    assert fl.chain.revert_reason(fl.f.join(task, data_root(7)), fl.bystander) == "PastDeadline"
    warp(fl.chain, 2 * WINDOW)
    fl.chain.send(fl.f.finish(task), fl.bystander)
    assert fl.f.held(ETHER_ASSET).call() == BUDGET * ROUNDS
    fl.chain.send(fl.f.withdrawRefund(ETHER_ASSET, fl.sponsor), fl.sponsor)
    assert fl.f.held(ETHER_ASSET).call() == 0


# ---------------------------------------------------------------- terms, joining, ERC-20


def test_bad_terms_are_refused(fl: FL) -> None:
    f, s = fl.f, fl.sponsor
    vs = [v.address for v in VERIFIERS]
    cases = {
        "BadTerms": [
            fl.terms(roundBudget=0), fl.terms(stakePerClient=0), fl.terms(aggregatorBond=0),
            fl.terms(rounds=0), fl.terms(heldoutRoot=b"\0" * 32), fl.terms(challengeWindow=0),
            fl.terms(deadline=1), fl.terms(roundBudget=2**255, rounds=3),
        ],
        "BadVerifiers": [fl.terms(threshold=0), fl.terms(threshold=4)],
        "ZeroAddress": [fl.terms(aggregator="0x" + "00" * 20)],
    }  # fmt: skip
    for reason, terms in cases.items():
        for t in terms:
            assert fl.chain.revert_reason(f.createTask(t, vs), s) == reason, t
    dup = f.createTask(fl.terms(), [vs[0], vs[0]])
    assert fl.chain.revert_reason(dup, s) == "BadVerifiers"
    # ether must match the pool exactly
    try:
        receipt = pay(fl.chain, f.createTask(fl.terms(), vs), s, BUDGET * ROUNDS - 1)
    except Exception:  # eth-tester raises, anvil mines a failed transaction
        receipt = {"status": 0}
    assert receipt["status"] == 0


def test_joining_and_accepting_are_checked(fl: FL) -> None:
    task = fl.create()
    c = fl.clients[0]
    assert fl.chain.revert_reason(fl.f.acceptTask(task, AGG_KEY.address), c) == "NotAggregator"
    fl.chain.send(fl.f.join(task, data_root(0)), c)
    assert fl.chain.revert_reason(fl.f.join(task, data_root(1)), c) == "AlreadyJoined"
    assert fl.chain.revert_reason(fl.f.join(task, b"\0" * 32), fl.clients[1]) == "BadTerms"
    # a client without free stake cannot join
    assert fl.chain.revert_reason(fl.f.join(task, data_root(9)), fl.bystander) == (
        "InsufficientFree"
    )
    # rounds need an accepted task
    record = fl.record(task, 1, fl.payouts())
    assert fl.chain.revert_reason(fl.post_call(record), fl.bystander) == "WrongTaskStatus"


def test_an_erc20_pool_must_arrive_whole(fl: FL) -> None:
    vs = [v.address for v in VERIFIERS]
    fee = fl.f.createTask(fl.terms(fl.sm.fee.address), vs)
    assert fl.chain.revert_reason(fee, fl.sponsor) == "EscrowShort"
    task = fl.start(fl.sm.token.address)
    _, tree = _round(fl, task)
    _after_window(fl)
    token = fl.sm.token.functions
    c = fl.clients[0]
    before = token.balanceOf(c).call()
    fl.chain.send(fl.claim_call(task, 1, tree, c), c)
    assert token.balanceOf(c).call() == before + BUDGET // 4
    assert fl.f.held(fl.sm.token.address).call() == BUDGET * ROUNDS - BUDGET // 4


# ---------------------------------------------------------------- rounding


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scores=st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=4),
    budget=st.integers(0, 10**20),
)
def test_shares_are_rounded_down_and_never_exceed_the_budget(
    fl: FL, scores: list[int], budget: int
) -> None:
    clients = fl.clients[: len(scores)]
    out = split_budget(dict(zip(clients, scores, strict=False)), budget)
    paid = {p.client: p.amount for p in out}
    positive = sum(s for s in scores if s > 0)
    assert sum(paid.values()) <= budget
    for c, s in zip(clients, scores, strict=False):
        expected = budget * s // positive if s > 0 else 0
        assert paid.get(c, 0) == expected
    if positive:
        assert budget - sum(paid.values()) < len(clients)


def test_odd_shares_leave_the_remainder_in_the_pool(fl: FL) -> None:
    task = fl.start()
    shares = split_budget(dict(zip(fl.clients, [1, 1, 1], strict=False)), BUDGET + 0)
    tree = PayoutTree(shares)
    assert tree.total == BUDGET - 1  # 10**18 // 3 * 3
    _round(fl, task, tree=tree)
    _after_window(fl)
    for p in shares:
        fl.chain.send(fl.claim_call(task, 1, tree, p.client), p.client)
    assert fl.round(task, 1)["claimed"] == BUDGET - 1
    assert fl.f.poolLeft(task).call() == 2 * BUDGET + 1
    books(fl, task)


def test_an_empty_round_pays_nobody(fl: FL) -> None:
    task = fl.start()
    empty = PayoutTree([])
    _round(fl, task, tree=empty)
    _after_window(fl)
    call = fl.f.claim(task, 1, 1, 0, [])
    assert fl.chain.revert_reason(call, fl.clients[0]) == "BadProof"
    assert isinstance(PenaltyTree([]).root, bytes)
    with pytest.raises(TransactionFailed):
        fl.chain.send(call, fl.clients[0])


def test_clients_of_a_cancelled_task_take_their_stake_back(fl: FL) -> None:
    task = fl.create()
    c = fl.clients[0]
    fl.chain.send(fl.f.join(task, data_root(0)), c)
    assert fl.locked(c) == STAKE
    fl.chain.send(fl.f.cancel(task), fl.sponsor)
    assert fl.chain.revert_reason(fl.f.join(task, data_root(1)), fl.clients[1]) == (
        "WrongTaskStatus"
    )
    fl.chain.send(fl.f.leave(task), c)
    assert fl.locked(c) == 0
    assert fl.chain.revert_reason(fl.f.leave(task), fl.clients[1]) == "NotClient"
    assert fl.f.held(ETHER_ASSET).call() == BUDGET * ROUNDS  # credited to the sponsor
    fl.chain.send(fl.f.withdrawRefund(ETHER_ASSET, fl.sponsor), fl.sponsor)
    assert fl.f.held(ETHER_ASSET).call() == 0


def test_a_task_never_accepted_finishes_after_its_deadline(fl: FL) -> None:
    """A sponsor who never cancels and an aggregator who never accepts cannot hold the
    stake of clients who joined: the task finishes after its deadline like any other."""
    task = fl.create()
    c = fl.clients[0]
    fl.chain.send(fl.f.join(task, data_root(0)), c)
    assert fl.chain.revert_reason(fl.f.finish(task), fl.bystander) == "NotFinishable"
    deadline = fl.task(task)["terms"][8]
    warp(fl.chain, deadline - fl.chain.w3.eth.get_block("latest")["timestamp"] + 2 * WINDOW + 1)
    fl.chain.send(fl.f.finish(task), fl.bystander)
    fl.chain.send(fl.f.leave(task), c)
    assert fl.locked(c) == 0
    assert fl.f.refundable(fl.sponsor, ETHER_ASSET).call() == BUDGET * ROUNDS


def test_a_removed_judge_still_corrects_and_halts_and_the_bond_comes_back(fl: FL) -> None:
    """Governance removes FLRewards as a judge mid-task: a challenge still corrects the round
    and halts the task (nothing is slashed); the bond is released at finish."""
    task = fl.start()
    record, _ = _round(fl, task, tree=fl.payouts([BUDGET, 0, 0, 0]))
    fl.chain.send(fl.sm.manager.functions.removeJudge(fl.rewards.address), fl.sm.governor)
    fair = fl.payouts([1, 1, 1, 1])
    receipt = fl.chain.send(fl.challenge_call(fl.correction(record, fair)), fl.clients[0])
    (event,) = fl.chain.events(fl.rewards, "RoundCorrected", receipt)
    assert event["args"]["bondSlashed"] == 0
    assert fl.task(task)["status"] == HALTED
    assert fl.locked(fl.aggregator) == BOND
    warp(fl.chain, 2 * WINDOW + 1)
    fl.chain.send(fl.f.finish(task), fl.bystander)
    assert fl.locked(fl.aggregator) == 0
    books(fl, task)


def test_a_sponsor_that_refuses_ether_cannot_block_the_end_of_a_task(fl: FL) -> None:
    """The refund is credited at finish, not sent: a sponsor contract whose receive reverts
    (or a token that blacklists it) cannot keep the aggregator's bond and the clients' stake
    locked; it withdraws its refund to another address."""
    refuser = fl.chain.deploy("EtherRefuser")
    t = fl.terms()
    call = fl.f.createTask(t, [v.address for v in VERIFIERS])._encode_transaction_data()
    receipt = pay(fl.chain, refuser.functions.call(fl.rewards.address, call), fl.sponsor,
                  BUDGET * ROUNDS)  # fmt: skip
    (event,) = fl.chain.events(fl.rewards, "TaskCreated", receipt)
    task = bytes(event["args"]["taskId"])
    fl.chain.send(fl.f.acceptTask(task, AGG_KEY.address), fl.aggregator)
    c = fl.clients[0]
    fl.chain.send(fl.f.join(task, data_root(0)), c)
    deadline = fl.task(task)["terms"][8]
    warp(fl.chain, deadline - fl.chain.w3.eth.get_block("latest")["timestamp"] + 2 * WINDOW + 1)
    fl.chain.send(fl.f.finish(task), fl.bystander)
    fl.chain.send(fl.f.leave(task), c)
    assert fl.locked(c) == 0
    assert fl.locked(fl.aggregator) == 0
    out = fl.f.withdrawRefund(ETHER_ASSET, fl.bystander)._encode_transaction_data()
    before = fl.chain.w3.eth.get_balance(fl.bystander)
    fl.chain.send(refuser.functions.call(fl.rewards.address, out), fl.sponsor)
    assert fl.chain.w3.eth.get_balance(fl.bystander) == before + BUDGET * ROUNDS
    assert fl.f.held(ETHER_ASSET).call() == 0

"""LabelingMarket: a task's life (post and escrow, join and lock, commit, reveal, gold reveal with
inclusion proofs, on-chain scoring, settlement with slashes and pro-rata rewards, pull claims) and
the attacks that must fail: a reveal that does not open the commitment, a copied commitment or
copied labels, a forged gold proof, a requester who never reveals the gold, settling twice or too
early, claiming twice, joining below the minimum stake, rounding in the shares, reentrancy through
an ERC-777-style token, a fee-on-transfer token. After every task the StakeManager's books and
the market's books hold."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from labeling_helpers import (
    GOLD,
    ITEMS,
    MIN_STAKE,
    POOL,
    Labeling,
    deploy_labeling,
    gold_set,
    labels_with,
)
from oracle_helpers import now, warp
from test_stake_manager import books as stake_books
from web3 import Web3

from ailedger import merkle
from ailedger.markets.labeling import (
    LATE,
    LOW_ACCURACY,
    GoldSet,
    gold_accuracy,
    labels_commitment,
)

ZERO32 = b"\x00" * 32


@pytest.fixture(scope="module")
def _labeling(w3: Web3) -> Labeling:
    return deploy_labeling(w3)


@pytest.fixture
def lm(_labeling: Labeling) -> Iterator[Labeling]:
    chain = _labeling.chain
    snap = chain.snapshot()
    yield _labeling
    chain.revert_to(snap)
    _labeling.salts.clear()


def all_books(lm: Labeling, token: object = None) -> None:
    t = token or lm.s.token
    lm.books(t)  # type: ignore[arg-type]
    stake_books(lm.s, t.address, [lm.who(i) for i in range(1, 7)])  # type: ignore[attr-defined]


def run_task(
    lm: Labeling, gold: GoldSet, answers: dict[int, bytes], late: tuple[int, ...] = ()
) -> int:
    """Post, join and commit for every labeler in ``answers``, reveal all but ``late``."""
    task = lm.post(gold)
    for i, labels in answers.items():
        lm.stake_and_join(task, i)
        lm.commit(task, i, labels)
    lm.to_reveal()
    for i, labels in answers.items():
        if i not in late:
            lm.reveal(task, i, labels)
    lm.to_gold()
    return task


def test_a_task_pays_the_accurate_and_slashes_the_rest(lm: Labeling) -> None:
    gold = gold_set()
    answers = {
        1: labels_with(gold, 8),
        2: labels_with(gold, 6),
        3: labels_with(gold, 3),
        4: labels_with(gold, 8),
    }
    task = run_task(lm, gold, answers, late=(4,))
    assert lm.s.stake(lm.who(1), lm.s.token.address)["locked"] == MIN_STAKE
    lm.reveal_gold(task, gold)
    for i in (1, 2, 3):
        receipt = lm.score(task, i, answers[i], gold)
        (event,) = lm.chain.events(lm.market, "Scored", receipt)
        assert event["args"]["correct"] == gold_accuracy(answers[i], gold.items)
    settler = lm.s.prover
    receipt = lm.chain.send(lm.market.functions.settle(task), settler)
    slashes = {
        e["args"]["labeler"]: e["args"]
        for e in lm.chain.events(lm.market, "LabelerSlashed", receipt)
    }
    assert slashes[lm.who(3)]["reasonCode"] == LOW_ACCURACY
    assert slashes[lm.who(4)]["reasonCode"] == LATE
    assert set(slashes) == {lm.who(3), lm.who(4)}
    manager_slashes = lm.chain.events(lm.s.manager, "Slashed", receipt)
    assert {e["args"]["faultId"] for e in manager_slashes} == {
        s["faultId"] for s in slashes.values()
    }
    assert all(
        e["args"]["amount"] == MIN_STAKE and e["args"]["prover"] == settler for e in manager_slashes
    )
    paid = {
        e["args"]["labeler"]: e["args"]["reward"]
        for e in lm.chain.events(lm.market, "LabelerPaid", receipt)
    }
    assert paid == {lm.who(1): POOL * 8 // 14, lm.who(2): POOL * 6 // 14}
    rest = POOL - sum(paid.values())
    assert lm.owed(lm.requester) == rest
    assert 0 < rest < 2
    for i in (1, 2):
        s = lm.s.stake(lm.who(i), lm.s.token.address)
        assert (s["locked"], s["slashed"]) == (0, 0)
    for i in (3, 4):
        assert lm.s.stake(lm.who(i), lm.s.token.address)["slashed"] == MIN_STAKE
    all_books(lm)
    before = lm.s.token.functions.balanceOf(lm.who(1)).call()
    lm.chain.send(lm.market.functions.claim(lm.s.token.address, lm.who(1)), lm.who(1))
    assert lm.s.token.functions.balanceOf(lm.who(1)).call() == before + paid[lm.who(1)]
    # double claim, double settle
    m = lm.market.functions
    assert (
        lm.chain.revert_reason(m.claim(lm.s.token.address, lm.who(1)), lm.who(1)) == "NothingOwed"
    )
    assert lm.chain.revert_reason(m.settle(task)) == "AlreadySettled"
    assert (
        lm.chain.revert_reason(m.score(task, [lm.who(1)], [answers[1]], gold.records()))
        == "AlreadySettled"
    )
    all_books(lm)


def test_a_reveal_must_open_the_commitment(lm: Labeling) -> None:
    gold = gold_set()
    labels = labels_with(gold, 8)
    task = lm.post(gold)
    lm.stake_and_join(task, 1)
    lm.commit(task, 1, labels)
    m = lm.market.functions
    salt = lm.salts[(task, lm.who(1))]
    assert lm.chain.revert_reason(m.reveal(task, labels, salt), lm.who(1)) == "TooEarly"
    lm.to_reveal()
    other = bytes([(labels[0] + 1) % 10]) + labels[1:]
    assert lm.chain.revert_reason(m.reveal(task, other, salt), lm.who(1)) == "CommitmentMismatch"
    assert (
        lm.chain.revert_reason(m.reveal(task, labels, b"\x00" * 32), lm.who(1))
        == "CommitmentMismatch"
    )
    assert lm.chain.revert_reason(m.reveal(task, labels[:-1], salt), lm.who(1)) == "WrongLabelCount"
    lm.reveal(task, 1, labels)
    assert lm.chain.revert_reason(m.reveal(task, labels, salt), lm.who(1)) == "AlreadyRevealed"
    # committing after the commit deadline is too late
    assert lm.chain.revert_reason(m.commit(task, b"\x01" * 32), lm.who(1)) == "TooLate"


def test_a_copied_commitment_or_copied_labels_do_not_open(lm: Labeling) -> None:
    gold = gold_set()
    labels = labels_with(gold, 8)
    task = lm.post(gold)
    lm.stake_and_join(task, 1)
    lm.stake_and_join(task, 2)
    receipt = lm.commit(task, 1, labels)
    (event,) = lm.chain.events(lm.market, "Committed", receipt)
    m = lm.market.functions
    lm.chain.send(m.commit(task, event["args"]["commitment"]), lm.who(2))  # the copycat
    lm.to_reveal()
    receipt = lm.reveal(task, 1, labels)
    (revealed,) = lm.chain.events(lm.market, "Revealed", receipt)
    seen, salt = revealed["args"]["labels"], lm.salts[(task, lm.who(1))]
    # the victim's labels and salt, seen in its reveal, do not open the copied commitment
    assert lm.chain.revert_reason(m.reveal(task, seen, salt), lm.who(2)) == "CommitmentMismatch"
    lm.to_gold()
    lm.reveal_gold(task, gold)
    lm.score(task, 1, labels, gold)
    receipt = lm.chain.send(m.settle(task))
    (slash,) = lm.chain.events(lm.market, "LabelerSlashed", receipt)
    assert (slash["args"]["labeler"], slash["args"]["reasonCode"]) == (lm.who(2), LATE)
    assert lm.owed(lm.who(1)) == POOL
    all_books(lm)


@dataclass(frozen=True)
class _RawGold:
    """A one-entry gold set built by hand (for records the formats module refuses)."""

    items: tuple[tuple[int, int], ...]
    salts: tuple[bytes, ...]
    record: bytes

    def root(self) -> bytes:
        return merkle.root([self.salts[0] + self.record])

    def proofs(self) -> list[list[bytes]]:
        return [[]]


def test_a_forged_gold_reveal_fails(lm: Labeling) -> None:
    gold = gold_set()
    task = run_task(lm, gold, {1: labels_with(gold, 8)})
    m = lm.market.functions
    salts, records, proofs = list(gold.salts), gold.records(), gold.proofs()
    flipped = bytearray(records)
    flipped[4] = (flipped[4] + 1) % 10  # the first gold label changed
    bad_proof = [list(p) for p in proofs]
    bad_proof[3][0] = b"\x00" * 32
    wrong_salt = [b"\x01" * 32, *salts[1:]]
    for call, error in (
        (m.revealGold(task, salts, bytes(flipped), proofs), "BadGoldProof"),
        (m.revealGold(task, salts, records, bad_proof), "BadGoldProof"),
        (m.revealGold(task, wrong_salt, records, proofs), "BadGoldProof"),
        (m.revealGold(task, salts[:-1], records[:-5], proofs[:-1]), "WrongGoldCount"),
    ):
        assert lm.chain.revert_reason(call, lm.requester) == error
    honest = m.revealGold(task, salts, records, proofs)
    assert lm.chain.revert_reason(honest, lm.who(1)) == "NotRequester"
    lm.reveal_gold(task, gold)
    assert lm.chain.revert_reason(honest, lm.requester) == "GoldAlreadyRevealed"
    # scoring with other gold records or other labels is refused
    labels = labels_with(gold, 8)
    assert (
        lm.chain.revert_reason(m.score(task, [lm.who(1)], [labels], bytes(flipped)))
        == "GoldMismatch"
    )
    assert (
        lm.chain.revert_reason(m.score(task, [lm.who(1)], [labels[::-1]], records))
        == "LabelsMismatch"
    )
    # a gold set naming an item outside the batch is refused even with valid proofs
    outside = GoldSet.derive([(ITEMS + 5, 1)], b"outside the batch")
    task2 = run_task(lm, outside, {2: labels_with(gold, 8)})
    call = m.revealGold(task2, list(outside.salts), outside.records(), outside.proofs())
    assert lm.chain.revert_reason(call, lm.requester) == "GoldIndexOutOfRange"
    # nor one whose answer is the abstain label (an abstaining labeler would score on it)
    record = b"\x00\x00\x00\x03\xff"  # item 3, label 0xff (GoldSet refuses to build it)
    abstain = _RawGold(((3, 0xFF),), (b"\x05" * 32,), record)
    task3 = run_task(lm, abstain, {3: labels_with(gold, 8)})  # type: ignore[arg-type]
    call = m.revealGold(task3, list(abstain.salts), record, abstain.proofs())
    assert lm.chain.revert_reason(call, lm.requester) == "GoldLabelInvalid"


def test_gold_reveal_too_early_or_too_late(lm: Labeling) -> None:
    gold = gold_set()
    task = lm.post(gold)
    m = lm.market.functions
    call = m.revealGold(task, list(gold.salts), gold.records(), gold.proofs())
    assert lm.chain.revert_reason(call, lm.requester) == "TooEarly"
    lm.to_reveal()
    assert lm.chain.revert_reason(call, lm.requester) == "TooEarly"
    lm.to_gold()
    lm.past_gold()
    assert lm.chain.revert_reason(call, lm.requester) == "TooLate"


def test_a_requester_who_never_reveals_gold_pays_the_labelers(lm: Labeling) -> None:
    gold = gold_set()
    answers = {
        1: labels_with(gold, 8),
        2: labels_with(gold, 1),
        3: labels_with(gold, 5),
        4: labels_with(gold, 8),
    }
    task = run_task(lm, gold, answers, late=(4,))
    m = lm.market.functions
    assert lm.chain.revert_reason(m.settle(task)) == "TooEarly"
    lm.past_gold()
    receipt = lm.chain.send(m.settle(task), lm.who(1))
    (settled,) = lm.chain.events(lm.market, "Settled", receipt)
    assert settled["args"]["goldRevealed"] is False
    share = POOL // 3
    for i in (1, 2, 3):
        assert lm.owed(lm.who(i)) == share
        assert lm.s.stake(lm.who(i), lm.s.token.address)["locked"] == 0
        assert lm.s.stake(lm.who(i), lm.s.token.address)["slashed"] == 0
    assert lm.s.stake(lm.who(4), lm.s.token.address)["slashed"] == MIN_STAKE
    assert lm.owed(lm.requester) == POOL - 3 * share
    all_books(lm)


def test_settle_waits_for_deadlines_and_scores(lm: Labeling) -> None:
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 7)}
    task = lm.post(gold)
    m = lm.market.functions
    assert lm.chain.revert_reason(m.settle(task)) == "TooEarly"
    for i, labels in answers.items():
        lm.stake_and_join(task, i)
        lm.commit(task, i, labels)
    lm.to_reveal()
    for i, labels in answers.items():
        lm.reveal(task, i, labels)
    assert lm.chain.revert_reason(m.settle(task)) == "TooEarly"
    lm.to_gold()
    assert lm.chain.revert_reason(m.settle(task)) == "TooEarly"  # gold may still come
    assert (
        lm.chain.revert_reason(m.score(task, [lm.who(1)], [answers[1]], gold.records()))
        == "GoldNotRevealed"
    )
    lm.reveal_gold(task, gold)
    lm.score(task, 1, answers[1], gold)
    assert lm.chain.revert_reason(m.settle(task)) == "NotScored"
    assert (
        lm.chain.revert_reason(m.score(task, [lm.who(5)], [answers[1]], gold.records()))
        == "NotRevealed"
    )
    lm.score(task, 2, answers[2], gold)
    lm.chain.send(m.settle(task))
    assert lm.owed(lm.who(1)) == POOL * 8 // 15
    assert lm.chain.revert_reason(m.settle(99)) == "NoTask"
    all_books(lm)


def test_join_needs_the_minimum_stake_in_time(lm: Labeling) -> None:
    gold = gold_set()
    task = lm.post(gold)
    m = lm.market.functions
    a = lm.who(1)
    assert lm.chain.revert_reason(m.join(task, ZERO32), a) == "InsufficientFree"
    lm.s.deposit(a, lm.s.token, MIN_STAKE - 1)
    assert lm.chain.revert_reason(m.join(task, ZERO32), a) == "InsufficientFree"
    assert lm.chain.revert_reason(m.commit(task, b"\x01" * 32), a) == "NotJoined"
    lm.s.deposit(a, lm.s.token, 1)
    receipt = lm.chain.send(m.join(task, ZERO32), a)
    (locked,) = lm.chain.events(lm.s.manager, "Locked", receipt)
    assert locked["args"]["amount"] == MIN_STAKE
    assert lm.chain.revert_reason(m.join(task, ZERO32), a) == "AlreadyJoined"
    # locked stake cannot leave while the task is open
    reason = lm.chain.revert_reason(
        lm.s.manager.functions.requestWithdrawal(lm.s.token.address, 1), a
    )
    assert reason == "InsufficientFree"
    assert lm.chain.revert_reason(m.join(task, ZERO32), lm.requester) == "RequesterCannotLabel"
    lm.to_reveal()
    lm.s.deposit(lm.who(2), lm.s.token, MIN_STAKE)
    assert lm.chain.revert_reason(m.join(task, ZERO32), lm.who(2)) == "TooLate"


def test_bad_tasks_are_refused(lm: Labeling) -> None:
    gold = gold_set()
    m = lm.market.functions
    t = now(lm.chain)
    base = [
        lm.s.token.address,
        b"\xba" * 32,
        ITEMS,
        gold.root(),
        GOLD,
        POOL,
        MIN_STAKE,
        7_000,
        t + 10,
        t + 20,
        t + 30,
    ]
    for index, value, error in (
        (5, 0, "ZeroAmount"),
        (6, 0, "ZeroAmount"),
        (2, 0, "BadTask"),
        (4, ITEMS + 1, "BadTask"),
        (7, 10_001, "BadTask"),
        (8, t - 1, "BadTask"),
        (9, t + 10, "BadTask"),
        (10, t + 20, "BadTask"),
        (3, b"\x00" * 32, "BadTask"),
        (0, "0x" + "00" * 20, "ZeroAddress"),
    ):
        params = list(base)
        params[index] = value
        assert lm.chain.revert_reason(m.createTask(tuple(params))) == error


@pytest.mark.parametrize(
    ("pool", "weights"), [(1, (8, 8)), (2, (7, 8, 8)), (POOL, (8, 7, 7)), (10**18 + 1, (6, 7, 8))]
)
def test_shares_and_remainder_add_up_to_the_pool(
    lm: Labeling, pool: int, weights: tuple[int, ...]
) -> None:
    gold = gold_set()
    answers = {i + 1: labels_with(gold, w, seed=i) for i, w in enumerate(weights)}
    task = lm.post(gold, pool=pool)
    for i, labels in answers.items():
        lm.stake_and_join(task, i)
        lm.commit(task, i, labels)
    lm.to_reveal()
    for i, labels in answers.items():
        lm.reveal(task, i, labels)
    lm.to_gold()
    lm.reveal_gold(task, gold)
    for i, labels in answers.items():
        lm.score(task, i, labels, gold)
    lm.chain.send(lm.market.functions.settle(task))
    total = sum(weights)
    shares = [lm.owed(lm.who(i)) for i in answers]
    assert shares == [pool * w // total for w in weights]
    assert sum(shares) + lm.owed(lm.requester) == pool
    assert lm.owed(lm.requester) < len(weights)
    all_books(lm)
    for i in answers:
        if lm.owed(lm.who(i)):
            lm.chain.send(lm.market.functions.claim(lm.s.token.address, lm.who(i)), lm.who(i))
    lm.chain.send(lm.market.functions.claim(lm.s.token.address, lm.requester), lm.requester)
    assert lm.s.token.functions.balanceOf(lm.market.address).call() == 0


def test_nobody_passes_the_pool_returns_to_the_requester(lm: Labeling) -> None:
    gold = gold_set()
    answers = {1: labels_with(gold, 2), 2: labels_with(gold, 0)}
    task = run_task(lm, gold, answers)
    lm.reveal_gold(task, gold)
    for i, labels in answers.items():
        lm.score(task, i, labels, gold)
    lm.chain.send(lm.market.functions.settle(task))
    assert lm.owed(lm.requester) == POOL
    assert lm.owed(lm.who(1)) == lm.owed(lm.who(2)) == 0
    all_books(lm)


def _hostile(lm: Labeling, gold: GoldSet) -> tuple[object, tuple[object, ...]]:
    hostile = lm.chain.deploy("HostileRequester", lm.market.address, lm.s.hook.address)
    lm.s.give(lm.s.hook, hostile.address, POOL * 4)
    t = now(lm.chain)
    params = (
        lm.s.hook.address,
        b"\xba" * 32,
        ITEMS,
        gold.root(),
        GOLD,
        POOL,
        MIN_STAKE,
        7_000,
        t + 10,
        t + 20,
        t + 30,
    )
    return hostile, params


def test_reentrancy_through_token_hooks_fails(lm: Labeling) -> None:
    gold = gold_set()
    hostile, params = _hostile(lm, gold)
    h = hostile.functions  # type: ignore[attr-defined]
    lm.chain.send(h.setMode(1))
    assert lm.chain.revert_reason(h.post(params)) == "ReentrancyGuardReentrantCall"
    lm.chain.send(h.setMode(0))
    lm.chain.send(h.post(params))
    task = h.taskId().call()
    warp(lm.chain, 31)
    lm.chain.send(lm.market.functions.settle(task))
    assert lm.owed(hostile.address, lm.s.hook) == POOL  # type: ignore[attr-defined]
    for mode in (2, 3):
        lm.chain.send(h.setMode(mode))
        assert lm.chain.revert_reason(h.claim()) == "ReentrancyGuardReentrantCall"
    lm.chain.send(h.setMode(0))
    lm.chain.send(h.claim())
    assert lm.s.hook.functions.balanceOf(hostile.address).call() == POOL * 4  # type: ignore[attr-defined]
    lm.books(lm.s.hook)


def test_fee_on_transfer_token_keeps_the_books(lm: Labeling) -> None:
    gold = gold_set()
    fee = lm.s.fee
    task = lm.post(gold, token=fee, pool=1_000_000)
    assert lm.market.functions.taskOf(task).call()[10] == 990_000  # the pool is what arrived
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 2)}
    for i, labels in answers.items():
        lm.stake_and_join(task, i, token=fee)
        lm.commit(task, i, labels)
    lm.books(fee)
    lm.to_reveal()
    for i, labels in answers.items():
        lm.reveal(task, i, labels)
    lm.to_gold()
    lm.reveal_gold(task, gold)
    for i, labels in answers.items():
        lm.score(task, i, labels, gold)
    lm.chain.send(lm.market.functions.settle(task))
    assert lm.owed(lm.who(1), fee) == 990_000
    all_books(lm, fee)
    lm.chain.send(lm.market.functions.claim(fee.address, lm.who(1)), lm.who(1))
    assert fee.functions.balanceOf(lm.market.address).call() == 0
    all_books(lm, fee)


def test_join_with_a_commitment_and_score_many_at_once(lm: Labeling) -> None:
    gold = gold_set()
    answers = {1: labels_with(gold, 8), 2: labels_with(gold, 5), 3: labels_with(gold, 7)}
    task = lm.post(gold)
    m = lm.market.functions
    for i, labels in answers.items():
        lm.s.deposit(lm.who(i), lm.s.token, MIN_STAKE)
        salt = bytes([i]) * 32
        lm.salts[(task, lm.who(i))] = salt
        c = labels_commitment(lm.chain.chain_id, lm.market.address, task, lm.who(i), labels, salt)
        receipt = lm.chain.send(m.join(task, c), lm.who(i))  # join and commit in one
        (event,) = lm.chain.events(lm.market, "Committed", receipt)
        assert event["args"]["commitment"] == c
    lm.to_reveal()
    for i, labels in answers.items():
        lm.reveal(task, i, labels)
    lm.to_gold()
    lm.reveal_gold(task, gold)
    who = [lm.who(i) for i in answers]
    labels = list(answers.values())
    records = gold.records()
    assert lm.chain.revert_reason(m.score(task, who, labels[:2], records)) == "LengthMismatch"
    swapped = [labels[1], labels[0], labels[2]]
    assert lm.chain.revert_reason(m.score(task, who, swapped, records)) == "LabelsMismatch"
    receipt = lm.chain.send(m.score(task, who, labels, records))
    scores = {
        e["args"]["labeler"]: e["args"]["correct"]
        for e in lm.chain.events(lm.market, "Scored", receipt)
    }
    assert scores == {lm.who(1): 8, lm.who(2): 5, lm.who(3): 7}
    lm.chain.send(m.settle(task))
    assert lm.owed(lm.who(1)) == POOL * 8 // 15
    assert lm.s.stake(lm.who(2), lm.s.token.address)["slashed"] == MIN_STAKE
    all_books(lm)

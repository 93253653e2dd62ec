"""DatasetVouching (issue 15 item 3): curators vouch for a registered dataset with locked
stake; a challenger's audit samples records from a future block hash; the owner answers with
the records and their RFC 9162 proofs; checks run on-chain; a failure or a missing answer
slashes the curators, a pass rewards them. The attacks that must fail: a sample seeded with a
past or current block, a forged proof, a late answer, a record failing a check, a second
settlement of one audit, a griefing challenger (loses its bond), a curator leaving during an
audit, reentrancy through a token hook, a fee-on-transfer token; rounding in the reward split.
StakeManager's and the contract's books hold after every audit (``books``)."""

from __future__ import annotations

import pytest
from oracle_helpers import warp
from stake_helpers import PROVER_BPS
from vouch_helpers import (
    ANSWER_WINDOW,
    BAD,
    BOND,
    CHECKS,
    DISPUTE_WINDOW,
    DUPE,
    GOOD,
    MIN_VOUCH,
    REWARD,
    SLASH_BPS,
    TEST,
    Vouching,
    books,
    mine,
    terms,
)

from ailedger import merkle
from ailedger.markets._checks import (
    REASON_DUPLICATE,
    REASON_LABEL,
    REASON_NO_ANSWER,
    evaluate_record,
)
from ailedger.markets._sampling import sample_indices

OPEN, ANSWERED, FAILED, PASSED, SLASHED = 1, 2, 3, 4, 5
NOTICE = 86_400  # UNVOUCH_NOTICE


def _three_curators(v: Vouching, name: str, amounts: tuple[int, ...] = (100, 200, 300)) -> None:
    for i, amount in enumerate(amounts, 1):
        v.vouch(name, v.curator(i), amount)


def test_a_passed_audit_rewards_the_curators_and_costs_the_challenger_its_bond(
    vv: Vouching,
) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "good")
    v.chain.send(v.f.fund(v.ids["good"], 1_000), v.owner)
    audit = v.open("good", 10)
    indices = v.draw(audit)
    a = v.audit(audit)
    assert indices == sample_indices(a["seed"], audit, 10, len(GOOD.records))
    block = v.chain.w3.eth.get_block(a["seedBlock"])
    assert a["seed"] == bytes(block["hash"])  # the seed is that block's hash
    receipt = v.chain.send(v.answer_call(audit, GOOD, indices), v.owner)
    (event,) = v.chain.events(v.vouching, "Answered", receipt)
    assert event["args"]["passed"]
    leaves = [merkle.leaf_hash(GOOD.entries[i]) for i in indices]
    assert [bytes(x) for x in event["args"]["leaves"]] == leaves
    assert v.audit(audit)["status"] == ANSWERED
    # the answer stands through the dispute window
    assert v.chain.revert_reason(v.f.settle(audit)) == "DisputeStillOpen"
    warp(v.chain, DISPUTE_WINDOW + 1)
    receipt = v.chain.send(v.f.settle(audit), v.bystander)
    reward = REWARD + BOND  # 1600 shared 100:200:300 -> 266, 533, 800 (1 left)
    shares = [reward * w // 600 for w in (100, 200, 300)]
    got = [v.f.owed(v.curator(i), asset).call() for i in (1, 2, 3)]
    assert got == shares == [266, 533, 800]
    (passed,) = v.chain.events(v.vouching, "AuditPassed", receipt)
    assert (passed["args"]["reward"], passed["args"]["remainder"]) == (1599, 1)
    assert v.dataset("good")[5] == 1_000 - REWARD + 1  # the remainder returns to the pool
    assert v.f.owed(v.challenger, asset).call() == 0  # griefing costs the whole bond
    assert v.audit(audit)["status"] == PASSED
    assert v.chain.revert_reason(v.f.settle(audit)) == "WrongStatus"
    before = v.sm.balance(asset, v.curator(3))
    v.chain.send(v.f.claim(asset, v.curator(3)), v.curator(3))
    assert v.sm.balance(asset, v.curator(3)) == before + 800
    assert v.chain.revert_reason(v.f.claim(asset, v.curator(3)), v.curator(3)) == "NothingOwed"
    books(v, asset)
    # vouches are free again: a curator may leave, after its notice
    v.chain.send(v.f.requestUnvouch(v.ids["good"]), v.curator(1))
    warp(v.chain, NOTICE)
    v.chain.send(v.f.unvouch(v.ids["good"], 100), v.curator(1))
    assert v.f.curatorsOf(v.ids["good"]).call() == [v.curator(3), v.curator(2)]
    books(v, asset)


def test_the_seed_block_must_be_in_the_future(vv: Vouching) -> None:
    v = vv
    _three_curators(v, "good")
    dataset = v.ids["good"]
    # the next transaction runs in block latest + 1 (a reverted one may be mined too)
    for ahead in (-(10**6), -1, 0, 1, 2 + 128):
        seed_block = max(0, v.chain.block_number() + ahead)
        call = v.f.openAudit(dataset, seed_block, 10, BOND)
        assert v.chain.revert_reason(call, v.challenger) == "BadSeedBlock"
    now = v.chain.block_number()
    for k in (0, 257):
        call = v.f.openAudit(dataset, now + 3, k, BOND)
        assert v.chain.revert_reason(call, v.challenger) == "BadSampleSize"
    audit = v.open("good", 5, ahead=3)
    # nobody draws (or answers) before the seed block is mined
    assert v.chain.revert_reason(v.f.draw(audit)) == "SeedNotMined"
    assert v.chain.revert_reason(v.answer_call(audit, GOOD, [0] * 5), v.owner) == "NotDrawn"
    # one audit at a time
    call = v.f.openAudit(dataset, v.chain.block_number() + 2, 5, BOND)
    assert v.chain.revert_reason(call, v.bystander) == "AuditOpen"
    v.draw(audit)
    assert v.chain.revert_reason(v.f.draw(audit)) == "AlreadyDrawn"


def test_a_lost_block_hash_reseeds_the_audit(vv: Vouching) -> None:
    v = vv
    _three_curators(v, "good")
    audit = v.open("good", 5)
    seed_block = v.audit(audit)["seedBlock"]
    mine(v.chain, 300)  # blockhash(seedBlock) is gone after 256 blocks
    assert v.chain.revert_reason(v.answer_call(audit, GOOD, [0] * 5), v.owner) == "NotDrawn"
    receipt = v.chain.send(v.f.draw(audit))
    (event,) = v.chain.events(v.vouching, "Reseeded", receipt)
    new_block = event["args"]["seedBlock"]
    assert new_block == receipt["blockNumber"] + 1 > seed_block + 256
    assert v.audit(audit)["seed"] == b"\0" * 32
    assert v.chain.revert_reason(v.f.settle(audit)) == "NotDrawn"  # no clock runs yet
    indices = v.draw(audit)
    assert v.audit(audit)["seed"] == bytes(v.chain.w3.eth.get_block(new_block)["hash"])
    v.chain.send(v.answer_call(audit, GOOD, indices), v.owner)


def test_forged_proofs_and_wrong_answers_are_refused(vv: Vouching) -> None:
    v = vv
    _three_curators(v, "good")
    audit = v.open("good", 4)
    indices = v.draw(audit)
    entries = GOOD.entries
    good_entries = [entries[i] for i in indices]
    proofs = [GOOD.proof(i) for i in indices]
    f = v.f
    # a record that is not the sampled one (with that record's own valid proof)
    other = (indices[0] + 1) % len(entries)
    call = f.answer(audit, [entries[other], *good_entries[1:]], [GOOD.proof(other), *proofs[1:]])
    assert v.chain.revert_reason(call, v.owner) == "BadProof"
    # a tampered record, a tampered proof, a truncated proof
    tampered = (
        good_entries[0][:-3] + b'"1"]'
        if good_entries[0].endswith(b'"0"]')
        else good_entries[0][:-4] + b'"0"]'
    )
    call = f.answer(audit, [tampered, *good_entries[1:]], proofs)
    assert v.chain.revert_reason(call, v.owner) == "BadProof"
    bent = [[b"\x01" * 32, *proofs[0][1:]], *proofs[1:]]
    assert v.chain.revert_reason(f.answer(audit, good_entries, bent), v.owner) == "BadProof"
    short = [proofs[0][:-1], *proofs[1:]]
    assert v.chain.revert_reason(f.answer(audit, good_entries, short), v.owner) == "BadProof"
    # the right count, and only the owner
    call = f.answer(audit, good_entries[:-1], proofs[:-1])
    assert v.chain.revert_reason(call, v.owner) == "WrongCount"
    call = f.answer(audit, good_entries, proofs)
    assert v.chain.revert_reason(call, v.challenger) == "NotOwner"
    assert v.audit(audit)["status"] == OPEN
    v.chain.send(call, v.owner)
    assert v.chain.revert_reason(call, v.owner) == "WrongStatus"  # answered once


def test_no_answer_by_the_deadline_slashes_the_curators(vv: Vouching) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "good")
    audit = v.open("good", 3)
    indices = v.draw(audit)
    deadline = v.audit(audit)["deadline"]
    assert v.chain.revert_reason(v.f.settle(audit)) == "AnswerStillDue"
    warp(v.chain, ANSWER_WINDOW + 1)
    call = v.answer_call(audit, GOOD, indices)
    assert v.chain.revert_reason(call, v.owner) == "AnswerLate"
    assert v.audit(audit)["deadline"] == deadline
    receipt = v.chain.send(v.f.settle(audit), v.bystander)
    slashes = v.chain.events(v.sm.manager, "Slashed", receipt)
    assert [e["args"]["amount"] for e in slashes] == [
        w * SLASH_BPS // 10_000 for w in (100, 200, 300)
    ]
    digest = bytes(v.f.auditDigest(audit).call())
    for e in slashes:
        assert e["args"]["reasonCode"] == REASON_NO_ANSWER
        assert bytes(e["args"]["evidenceHash"]) == digest
        assert e["args"]["prover"] == v.challenger
        assert e["args"]["judge"] == v.vouching.address
    slashed = 300
    prover_share = sum(w * SLASH_BPS // 10_000 * PROVER_BPS // 10_000 for w in (100, 200, 300))
    assert v.sm.manager.functions.owed(v.challenger, asset).call() == prover_share
    assert v.f.owed(v.challenger, asset).call() == BOND  # the bond comes back
    assert v.dataset("good")[4] == 600 - slashed
    assert v.audit(audit)["status"] == SLASHED
    # one slash per audit: settling again fails here and in StakeManager
    assert v.chain.revert_reason(v.f.settle(audit)) == "WrongStatus"
    for i in (1, 2, 3):
        fault = v.chain.w3.keccak(
            v.chain.w3.codec.encode(["uint256", "address"], [audit, v.curator(i)])
        )
        assert v.sm.manager.functions.faultSlashed(v.vouching.address, fault).call()
    books(v, asset)


def test_a_record_failing_a_check_slashes_with_its_leaf_as_evidence(vv: Vouching) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "bad", (100, 100, 101))
    audit = v.open("bad", 5)
    indices = v.draw(audit)
    assert evaluate_record(BAD.records[indices[0]], CHECKS) == REASON_LABEL
    receipt = v.chain.send(v.answer_call(audit, BAD, indices), v.owner)
    (failed,) = v.chain.events(v.vouching, "RecordFailed", receipt)
    leaf = merkle.leaf_hash(BAD.entries[indices[0]])
    assert failed["args"]["reasonCode"] == REASON_LABEL
    assert (failed["args"]["sample"], failed["args"]["index"]) == (0, indices[0])
    assert bytes(failed["args"]["leaf"]) == leaf
    assert v.audit(audit)["status"] == FAILED
    receipt = v.chain.send(v.f.settle(audit))  # at once: no dispute window for a failure
    slashes = v.chain.events(v.sm.manager, "Slashed", receipt)
    assert [e["args"]["amount"] for e in slashes] == [50, 50, 50]
    assert all(bytes(e["args"]["evidenceHash"]) == leaf for e in slashes)
    # 101 * 50% rounds down to 50; 51 stays vouched, 50 for the others
    assert [v.f.vouched(v.ids["bad"], v.curator(i)).call() for i in (1, 2, 3)] == [50, 50, 51]
    books(v, asset)


def test_a_full_slash_drops_the_curators(vv: Vouching) -> None:
    v = vv
    sm, owner = v.sm, v.owner
    # a dataset (same root) whose terms slash everything: a fresh version lists it
    r = v.dep.registry.functions
    v.chain.send(
        r.registerVersion("iris-model", "9", b"\x09" * 32, b"\x02" * 32, [BAD.root]), owner
    )
    version = bytes(
        r.versionIdOf(
            bytes(v.dep.membership.functions.orgOf(owner).call()), "iris-model", "9"
        ).call()
    )
    call = v.f.list(version, 0, terms(sm.token.address, 8, 32, slashBps=10_000), CHECKS.as_tuple())
    v.chain.send(call, owner)
    v.ids["all"] = bytes(v.f.datasetIdOf(version, 0).call())
    _three_curators(v, "all")
    audit = v.open("all", 1)
    v.chain.send(v.answer_call(audit, BAD, v.draw(audit)), owner)
    v.chain.send(v.f.settle(audit))
    assert v.f.curatorsOf(v.ids["all"]).call() == []
    assert v.dataset("all")[4] == 0
    call = v.f.openAudit(v.ids["all"], v.chain.block_number() + 2, 1, BOND)
    assert v.chain.revert_reason(call, v.challenger) == "NothingVouched"
    books(v, sm.token.address)


def test_a_duplicate_of_a_test_record_fails_a_passed_answer(vv: Vouching) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "dupe")
    audit = v.open("dupe", 3)
    indices = v.draw(audit)
    receipt = v.chain.send(v.answer_call(audit, DUPE, indices), v.owner)
    (answered,) = v.chain.events(v.vouching, "Answered", receipt)
    assert answered["args"]["passed"]  # every record passes the record checks
    leaves = [bytes(x) for x in answered["args"]["leaves"]]
    record = DUPE.records[indices[1]]
    t = TEST.records.index(record)
    dup = (1, record, record, t, TEST.proof(t))
    f = v.f
    # a wrong list of leaves, a record that is not the sampled one, a forged test proof
    wrong = [leaves[0], b"\x07" * 32, leaves[2]]
    assert (
        v.chain.revert_reason(f.proveDuplicate(audit, wrong, dup), v.bystander) == "LeavesMismatch"
    )
    other = (
        DUPE.records[(indices[1] + 1) % 8] if DUPE.records[(indices[1] + 1) % 8] != record else b"x"
    )
    call = f.proveDuplicate(audit, leaves, (1, other, record, t, TEST.proof(t)))
    assert v.chain.revert_reason(call, v.bystander) == "RecordMismatch"
    call = f.proveDuplicate(audit, leaves, (1, record, record, (t + 1) % 12, TEST.proof(t)))
    assert v.chain.revert_reason(call, v.bystander) == "BadTestProof"
    u = len(DUPE.records)  # a test record that is not this one
    call = f.proveDuplicate(audit, leaves, (1, record, TEST.records[u], u, TEST.proof(u)))
    assert v.chain.revert_reason(call, v.bystander) == "NotDuplicate"
    receipt = v.chain.send(f.proveDuplicate(audit, leaves, dup), v.bystander)
    (failed,) = v.chain.events(v.vouching, "RecordFailed", receipt)
    assert failed["args"]["reasonCode"] == REASON_DUPLICATE
    assert failed["args"]["index"] == indices[1]
    assert v.chain.revert_reason(f.proveDuplicate(audit, leaves, dup), v.bystander) == "WrongStatus"
    receipt = v.chain.send(f.settle(audit))
    slashes = v.chain.events(v.sm.manager, "Slashed", receipt)
    assert {e["args"]["prover"] for e in slashes} == {v.bystander}  # who proved it
    assert {e["args"]["reasonCode"] for e in slashes} == {REASON_DUPLICATE}
    assert v.f.owed(v.challenger, asset).call() == BOND
    books(v, asset)


def test_a_duplicate_comes_too_late_after_the_dispute_window(vv: Vouching) -> None:
    v = vv
    _three_curators(v, "dupe")
    audit = v.open("dupe", 1)
    indices = v.draw(audit)
    receipt = v.chain.send(v.answer_call(audit, DUPE, indices), v.owner)
    (answered,) = v.chain.events(v.vouching, "Answered", receipt)
    leaves = [bytes(x) for x in answered["args"]["leaves"]]
    record = DUPE.records[indices[0]]
    t = TEST.records.index(record)
    warp(v.chain, DISPUTE_WINDOW + 1)
    call = v.f.proveDuplicate(audit, leaves, (0, record, record, t, TEST.proof(t)))
    assert v.chain.revert_reason(call, v.bystander) == "DisputeClosed"
    v.chain.send(v.f.settle(audit))
    assert v.audit(audit)["status"] == PASSED


def test_curators_cannot_leave_during_an_open_audit(vv: Vouching) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "good")
    dataset = v.ids["good"]
    c = v.curator(1)
    v.chain.send(v.f.requestUnvouch(dataset), c)
    warp(v.chain, NOTICE)
    audit = v.open("good", 2)
    assert v.chain.revert_reason(v.f.unvouch(dataset, 100), c) == "AuditOpen"
    assert v.chain.revert_reason(v.f.vouch(dataset, 100), c) == "AuditOpen"
    # the stake itself is locked in StakeManager: not withdrawable, not releasable
    m = v.sm.manager.functions
    free = v.sm.stake(c, asset)["free"]
    assert v.chain.revert_reason(m.requestWithdrawal(asset, free + 1), c) == "InsufficientFree"
    assert v.chain.revert_reason(m.releaseLock(asset, v.vouching.address), c) == "MarketStillActive"
    assert v.chain.revert_reason(m.unlock(c, asset, 100), c) == "InsufficientLocked"
    indices = v.draw(audit)
    v.chain.send(v.answer_call(audit, GOOD, indices), v.owner)
    assert v.chain.revert_reason(v.f.unvouch(dataset, 100), c) == "AuditOpen"
    warp(v.chain, DISPUTE_WINDOW + 1)
    v.chain.send(v.f.settle(audit))
    v.chain.send(v.f.unvouch(dataset, 100), c)
    books(v, asset)


def test_leaving_needs_notice_so_an_exit_cannot_front_run_an_audit(vv: Vouching) -> None:
    v, asset = vv, vv.sm.token.address
    _three_curators(v, "bad")
    dataset, c = v.ids["bad"], v.curator(3)
    # an exit sent in front of openAudit (no notice given) is refused
    assert v.chain.revert_reason(v.f.unvouch(dataset, 300), c) == "UnvouchNotDue"
    receipt = v.chain.send(v.f.requestUnvouch(dataset), c)
    (event,) = v.chain.events(v.vouching, "UnvouchRequested", receipt)
    at = event["args"]["at"]
    assert at == v.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + NOTICE
    warp(v.chain, NOTICE - 60)
    assert v.chain.revert_reason(v.f.unvouch(dataset, 300), c) == "UnvouchNotDue"
    # during the notice the vouch is audited, and slashed when the audit fails
    audit = v.open("bad", 1)
    v.chain.send(v.answer_call(audit, BAD, v.draw(audit)), v.owner)
    v.chain.send(v.f.settle(audit))
    assert v.f.vouched(dataset, c).call() == 150
    # leaving takes the announced amount once, then needs a new notice
    warp(v.chain, 60)
    v.chain.send(v.f.unvouch(dataset, 50), c)
    assert v.chain.revert_reason(v.f.unvouch(dataset, 100), c) == "UnvouchNotDue"
    assert v.chain.revert_reason(v.f.requestUnvouch(dataset), v.challenger) == "InsufficientVouch"
    books(v, asset)


def test_listing_and_vouching_rules(vv: Vouching) -> None:
    v, sm = vv, vv.sm
    f, checks = v.f, CHECKS.as_tuple()
    t = terms(sm.token.address, 40, 32)
    assert v.chain.revert_reason(f.list(v.version, 0, t, checks), v.challenger) == "NotRegistrant"
    assert v.chain.revert_reason(f.list(v.version, 3, t, checks), v.owner) == "UnknownRoot"
    assert v.chain.revert_reason(f.list(v.version, 0, t, checks), v.owner) == "AlreadyListed"
    for bad in (
        terms("0x" + "00" * 20, 40, 32),
        terms(sm.token.address, 0, 32),
        terms(sm.token.address, 40, 7),
        terms(sm.token.address, 40, 32, slashBps=10_001),
        terms(sm.token.address, 40, 32, answerWindow=0),
        terms(sm.token.address, 40, 32, bond=0),
    ):
        assert v.chain.revert_reason(f.list(v.version, 0, bad, checks), v.owner) == "BadTerms"
    dataset = v.ids["good"]
    c = v.curator(1)
    assert v.chain.revert_reason(f.vouch(dataset, MIN_VOUCH - 1), c) == "BelowMinimum"
    assert v.chain.revert_reason(f.vouch(dataset, 0), c) == "ZeroAmount"
    assert v.chain.revert_reason(f.vouch(b"\x05" * 32, 100), c) == "UnknownDataset"
    v.vouch("good", c, MIN_VOUCH)
    v.chain.send(f.requestUnvouch(dataset), c)
    warp(v.chain, NOTICE)
    assert v.chain.revert_reason(f.unvouch(dataset, 1), c) == "BelowMinimum"
    assert v.chain.revert_reason(f.unvouch(dataset, 101), c) == "InsufficientVouch"
    v.vouch("good", c, 1)  # adding to a vouch needs no minimum
    # a vouch is stake locked by this market, in the dataset's asset
    assert sm.manager.functions.lockedBy(c, sm.token.address, v.vouching.address).call() == 101
    too_much = sm.stake(c, sm.token.address)["free"] + 1
    assert v.chain.revert_reason(f.vouch(dataset, too_much), c) == "InsufficientFree"
    call = f.openAudit(v.ids["dupe"], v.chain.block_number() + 2, 1, BOND)
    assert v.chain.revert_reason(call, v.challenger) == "NothingVouched"
    assert v.chain.revert_reason(f.claim(sm.token.address, c), c) == "NothingOwed"
    assert v.chain.revert_reason(f.draw(99)) == "UnknownAudit"
    books(v, sm.token.address)


@pytest.mark.parametrize(
    ("amounts", "pool"), [((1, 1, 1), 0), ((100, 100, 100), 1), ((100, 333, 10**20), 7)]
)
def test_reward_split_rounds_down_and_loses_nothing(
    vv: Vouching, amounts: tuple[int, int, int], pool: int
) -> None:
    v, asset = vv, vv.sm.token.address
    r = v.dep.registry.functions
    owner = v.owner
    v.chain.send(
        r.registerVersion("iris-model", "r", b"\x0a" * 32, b"\x02" * 32, [GOOD.root]), owner
    )
    version = bytes(
        r.versionIdOf(
            bytes(v.dep.membership.functions.orgOf(owner).call()), "iris-model", "r"
        ).call()
    )
    call = v.f.list(
        version, 0, terms(asset, 40, 32, minVouch=1, bond=10, auditReward=5), CHECKS.as_tuple()
    )
    v.chain.send(call, owner)
    v.ids["r"] = bytes(v.f.datasetIdOf(version, 0).call())
    _three_curators(v, "r", amounts)
    if pool:
        v.chain.send(v.f.fund(v.ids["r"], pool), owner)
    audit = v.open("r", 2, bond=10)
    v.chain.send(v.answer_call(audit, GOOD, v.draw(audit)), owner)
    warp(v.chain, DISPUTE_WINDOW + 1)
    v.chain.send(v.f.settle(audit))
    reward = 10 + min(5, pool)
    total = sum(amounts)
    shares = [reward * a // total for a in amounts]
    assert [v.f.owed(v.curator(i), asset).call() for i in (1, 2, 3)] == shares
    assert v.dataset("r")[5] == pool - min(5, pool) + reward - sum(shares)
    books(v, asset)


def test_fee_on_transfer_token(vv: Vouching) -> None:
    v, sm = vv, vv.sm
    asset = sm.fee.address
    _three_curators(v, "fee")
    dataset = v.ids["fee"]
    # a bond that arrives short (1 % fee) is refused, as is one offered short
    call = v.f.openAudit(dataset, v.chain.block_number() + 2, 2, BOND)
    assert v.chain.revert_reason(call, v.challenger) == "BondShort"
    call = v.f.openAudit(dataset, v.chain.block_number() + 2, 2, BOND - 1)
    assert v.chain.revert_reason(call, v.challenger) == "BondShort"
    receipt = v.chain.send(v.f.fund(dataset, 1_000), v.owner)
    (funded,) = v.chain.events(v.vouching, "Funded", receipt)
    assert funded["args"]["amount"] == 990  # what arrived
    audit = v.open("fee", 2, bond=1_020)  # grossed up: 1010 arrive, all of it the bond
    assert v.audit(audit)["bond"] == 1_010
    v.chain.send(v.answer_call(audit, GOOD, v.draw(audit)), v.owner)
    warp(v.chain, DISPUTE_WINDOW + 1)
    v.chain.send(v.f.settle(audit))
    reward = 1_010 + REWARD
    shares = [reward * w // 600 for w in (100, 200, 300)]
    assert [v.f.owed(v.curator(i), asset).call() for i in (1, 2, 3)] == shares
    assert v.dataset("fee")[5] == 990 - REWARD + reward - sum(shares)
    v.chain.send(v.f.claim(asset, v.curator(2)), v.curator(2))  # the fee is the claimer's
    books(v, asset)


def test_reentrancy_through_a_token_hook_fails(vv: Vouching) -> None:
    v, sm = vv, vv.sm
    asset = sm.hook.address
    r = v.chain.deploy("VouchReenterer", v.vouching.address)
    sm.give(sm.hook, r.address, 10_000)
    v.chain.send(r.functions.approve(sm.hook.address, 10**6))
    v.chain.send(r.functions.registerHooks(sm.hook.address))
    _three_curators(v, "hook")
    # funding again from inside the bond's transfer hook
    v.chain.send(r.functions.setMode(asset, v.ids["hook"], 2))
    call = r.functions.openAudit(v.ids["hook"], v.chain.block_number() + 2, 2, BOND)
    assert v.chain.revert_reason(call) == "ReentrancyGuardReentrantCall"
    v.chain.send(r.functions.setMode(asset, v.ids["hook"], 0))
    v.chain.send(r.functions.openAudit(v.ids["hook"], v.chain.block_number() + 2, 2, BOND))
    audit = int(v.f.auditCount().call())
    v.chain.send(v.answer_call(audit, BAD, v.draw(audit)), v.owner)
    v.chain.send(v.f.settle(audit))
    assert v.f.owed(r.address, asset).call() == BOND
    # claiming twice from the hook that receives the first claim
    v.chain.send(r.functions.setMode(asset, v.ids["hook"], 1))
    assert v.chain.revert_reason(r.functions.claim(asset)) == "ReentrancyGuardReentrantCall"
    assert v.f.owed(r.address, asset).call() == BOND
    v.chain.send(r.functions.setMode(asset, v.ids["hook"], 0))
    before = sm.hook.functions.balanceOf(r.address).call()
    v.chain.send(r.functions.claim(asset))
    assert sm.hook.functions.balanceOf(r.address).call() == before + BOND
    books(v, asset)

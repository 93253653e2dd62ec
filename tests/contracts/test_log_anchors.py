"""LogAnchors: log registration, witnesses, anchoring, history and consistency proofs."""

from __future__ import annotations

import pytest
from anchor_helpers import CONFIG_DELAY, Log, register, warp
from contract_helpers import Deployment, key, register_log
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.chain.eip712 import (
    Domain,
    checkpoint_digest,
    cosignature_digest,
    log_id,
    registration_digest,
)
from ailedger.errors import ProofInvalid

ORIGIN = "log.example.org/ailedger"


def leaves(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


def test_register_log_records_signer_witnesses_and_threshold(dep: Deployment) -> None:
    c = dep.chain
    signer, ws = key(100), [key(101), key(102)]
    addresses = [w.address for w in ws]
    cid = c.chain_id
    call = register_log(dep.anchors, cid, ORIGIN, signer, addresses, 1, c.accounts[1])
    receipt = c.send(call, c.accounts[1])
    lid = log_id(ORIGIN, signer.address)
    (ev,) = c.events(dep.anchors, "LogRegistered", receipt)
    assert ev.args.logId == lid == dep.anchors.functions.logIdOf(ORIGIN, signer.address).call()
    assert (ev.args.origin, ev.args.signer, ev.args.admin) == (
        ORIGIN,
        signer.address,
        c.accounts[1],
    )
    (proposed,) = c.events(dep.anchors, "WitnessSetProposed", receipt)
    assert (proposed.args.epoch, proposed.args.witnesses, proposed.args.threshold) == (
        1,
        addresses,
        1,
    )
    (active,) = c.events(dep.anchors, "WitnessSetActivated", receipt)
    assert (active.args.epoch, active.args.threshold, active.args.witnessCount) == (1, 1, 2)
    log = Log(c, dep.anchors, lid, signer, ws, c.accounts[1])
    info = log.info()
    assert (info["admin"], info["witness_count"], info["threshold"], info["signer"]) == (
        c.accounts[1],
        2,
        1,
        signer.address,
    )
    assert (info["epoch"], info["pending_epoch"], info["epochs"]) == (1, 0, 1)
    assert dep.anchors.functions.isWitness(lid, ws[0].address).call()
    assert c.revert_reason(call, c.accounts[1]) == "LogExists"


def test_registration_needs_the_log_keys_consent(dep: Deployment) -> None:
    """Nobody can squat a log's origin: the log key signs LogRegistration(logId, admin)."""
    c = dep.chain
    cid, signer, squatter = c.chain_id, key(100), c.accounts[4]
    ws = [key(101).address]
    # Consent given to accounts[1], sent by someone else.
    call = register_log(dep.anchors, cid, ORIGIN, signer, ws, 1, c.accounts[1])
    assert c.revert_reason(call, squatter) == "NotLogSigner"
    # A key of the squatter's own, claiming to be the log's.
    call = register_log(dep.anchors, cid, ORIGIN, key(5), ws, 1, squatter)
    forged = dep.anchors.functions.registerLog(ORIGIN, signer.address, ws, 1, call.args[4])
    assert c.revert_reason(forged, squatter) == "NotLogSigner"
    domain = Domain.log_anchors(cid, dep.anchors.address)
    lid = log_id(ORIGIN, signer.address)
    assert dep.anchors.functions.registrationDigest(lid, squatter).call() == (
        registration_digest(domain, lid, squatter)
    )


def test_contract_digests_match_python(dep: Deployment) -> None:
    domain = Domain.log_anchors(dep.chain.chain_id, dep.anchors.address)
    assert dep.anchors.functions.domainSeparator().call() == domain.separator()
    lid, root = log_id(ORIGIN, key(100).address), bytes(range(32))
    f = dep.anchors.functions
    assert f.checkpointDigest(lid, 7, root).call() == checkpoint_digest(domain, lid, 7, root)
    assert f.cosignatureDigest(lid, 7, root).call() == cosignature_digest(domain, lid, 7, root)


def test_anchor_stores_size_root_block_and_time(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    root5 = merkle.root(leaves(5))
    receipt = c.send(log.anchor(5, root5), c.accounts[5])  # anyone may relay
    (ev,) = c.events(dep.anchors, "Anchored", receipt)
    assert (ev.args.index, ev.args.size, ev.args.root) == (0, 5, root5)
    assert ev.args.cosignatures == 3
    assert not ev.args.consistencyProven
    block = c.w3.eth.get_block(receipt["blockNumber"])
    f = dep.anchors.functions
    assert f.anchorAt(log.id, 0).call() == (
        5,
        block["number"],
        block["timestamp"],
        3,
        False,
        1,
        root5,
    )
    root9 = merkle.root(leaves(9))
    c.send(log.anchor(9, root9, log.witnesses[:2]))
    assert f.anchorCount(log.id).call() == 2
    assert f.latestAnchor(log.id).call()[0] == 9
    assert f.findAnchor(log.id, 0).call() == [True, 0]
    assert f.findAnchor(log.id, 5).call() == [True, 0]
    assert f.findAnchor(log.id, 6).call() == [True, 1]
    assert f.findAnchor(log.id, 9).call() == [True, 1]
    assert f.findAnchor(log.id, 10).call() == [False, 2]


def test_threshold_must_be_met(dep: Deployment) -> None:
    log = register(dep, witnesses=3, threshold=2)
    c = dep.chain
    root = merkle.root(leaves(3))
    assert c.revert_reason(log.anchor(3, root, log.witnesses[:1])) == "ThresholdNotMet"
    assert c.revert_reason(log.anchor(3, root, [])) == "ThresholdNotMet"
    c.send(log.anchor(3, root, log.witnesses[1:]))


def test_unknown_log_and_wrong_log_key(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    root = merkle.root(leaves(2))
    other = log.anchors.functions.anchor(
        log_id("nope", log.signer.address), 2, root, *log.sign(2, root)
    )
    assert c.revert_reason(other) == "UnknownLog"
    log.signer = key(999)
    assert c.revert_reason(log.anchor(2, root)) == "NotLogSigner"


def test_witness_set_changes_wait_for_the_delay(dep: Deployment) -> None:
    log = register(dep, witnesses=2, threshold=2)
    c = dep.chain
    f = dep.anchors.functions
    new = [log.witnesses[1], key(200)]
    addresses = [w.address for w in new]
    assert c.revert_reason(f.proposeWitnessSet(log.id, addresses, 3), log.admin) == (
        "ThresholdTooHigh"
    )
    assert c.revert_reason(f.proposeWitnessSet(log.id, addresses, 0), log.admin) == (
        "ThresholdZero"
    )
    dup = [addresses[0], addresses[0]]
    assert c.revert_reason(f.proposeWitnessSet(log.id, dup, 1), log.admin) == "WitnessExists"
    mine = [log.signer.address]
    assert c.revert_reason(f.proposeWitnessSet(log.id, mine, 1), log.admin) == (
        "WitnessIsLogSigner"
    )
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "NoPendingChange"
    receipt = c.send(f.proposeWitnessSet(log.id, addresses, 1), log.admin)
    (ev,) = c.events(dep.anchors, "WitnessSetProposed", receipt)
    block = c.w3.eth.get_block(receipt["blockNumber"])
    assert (ev.args.epoch, ev.args.witnesses, ev.args.threshold) == (2, addresses, 1)
    assert ev.args.effectiveAt == block["timestamp"] + CONFIG_DELAY
    info = log.info()
    assert (info["epoch"], info["threshold"], info["pending_epoch"]) == (1, 2, 2)
    assert (info["pending_threshold"], info["pending_count"]) == (1, 2)
    # Not yet: the old set and threshold still rule.
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "ChangeNotReady"
    root = merkle.root(leaves(3))
    assert c.revert_reason(log.anchor(3, root, [new[1]])) == "ThresholdNotMet"
    assert not f.isWitness(log.id, new[1].address).call()
    assert f.isWitnessIn(log.id, 2, new[1].address).call()
    warp(c, CONFIG_DELAY)
    receipt = c.send(f.applyWitnessSet(log.id), c.accounts[7])  # anyone may apply
    (ev,) = c.events(dep.anchors, "WitnessSetActivated", receipt)
    assert (ev.args.epoch, ev.args.threshold, ev.args.witnessCount) == (2, 1, 2)
    assert f.isWitness(log.id, new[1].address).call()
    assert not f.isWitness(log.id, log.witnesses[0].address).call()
    assert c.revert_reason(log.anchor(3, root, [log.witnesses[0]])) == "NotAWitness"
    c.send(log.anchor(3, root, [new[1]]))
    assert log.stored(0)["witness_epoch"] == 2
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "NoPendingChange"


def test_pending_witness_set_can_be_cancelled_or_replaced(dep: Deployment) -> None:
    log = register(dep, witnesses=3, threshold=2)
    c = dep.chain
    f = dep.anchors.functions
    assert c.revert_reason(f.cancelWitnessSet(log.id), log.admin) == "NoPendingChange"
    c.send(f.proposeWitnessSet(log.id, [key(200).address], 1), log.admin)
    receipt = c.send(f.cancelWitnessSet(log.id), log.admin)
    (ev,) = c.events(dep.anchors, "WitnessSetCancelled", receipt)
    assert ev.args.epoch == 2
    warp(c, CONFIG_DELAY)
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "NoPendingChange"
    # A second proposal replaces the first and restarts the clock.
    c.send(f.proposeWitnessSet(log.id, [key(200).address], 1), log.admin)
    warp(c, CONFIG_DELAY - 100)
    c.send(f.proposeWitnessSet(log.id, [key(201).address], 1), log.admin)
    warp(c, 200)
    assert c.revert_reason(f.applyWitnessSet(log.id)) == "ChangeNotReady"
    warp(c, CONFIG_DELAY)
    c.send(f.applyWitnessSet(log.id))
    assert log.info()["epoch"] == 4
    assert f.isWitness(log.id, key(201).address).call()
    assert not f.isWitness(log.id, key(200).address).call()


def test_a_new_log_key_is_a_new_log(dep: Deployment) -> None:
    """No key rotation in place: the new key registers (origin, new key), a new log id."""
    old = register(dep)
    new = register(dep, signer=key(300))
    assert new.id != old.id
    c = dep.chain
    root = merkle.root(leaves(4))
    c.send(new.anchor(4, root))
    assert dep.anchors.functions.anchorCount(old.id).call() == 0
    old.signer = key(300)
    assert c.revert_reason(old.anchor(4, root)) == "NotLogSigner"


def test_admin_handover_is_two_step_and_caps(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    f = dep.anchors.functions
    new_admin = c.accounts[2]
    receipt = c.send(f.transferLogAdmin(log.id, new_admin), log.admin)
    (ev,) = c.events(dep.anchors, "LogAdminTransferStarted", receipt)
    assert (ev.args.previousAdmin, ev.args.newAdmin) == (log.admin, new_admin)
    assert log.info()["admin"] == log.admin  # not yet
    assert c.revert_reason(f.acceptLogAdmin(log.id), c.accounts[3]) == "NotPendingAdmin"
    receipt = c.send(f.acceptLogAdmin(log.id), new_admin)
    (ev,) = c.events(dep.anchors, "LogAdminChanged", receipt)
    assert (ev.args.previousAdmin, ev.args.newAdmin) == (log.admin, new_admin)
    assert (log.info()["admin"], log.info()["pending_admin"]) == (new_admin, "0x" + "00" * 20)
    one = [log.witnesses[0].address]
    assert c.revert_reason(f.proposeWitnessSet(log.id, one, 1), log.admin) == "NotLogAdmin"
    c.send(f.proposeWitnessSet(log.id, one, 1), new_admin)
    assert c.revert_reason(f.acceptLogAdmin(log.id), new_admin) == "NotPendingAdmin"
    many = [key(400 + i).address for i in range(33)]
    cid, admin = c.chain_id, c.accounts[0]
    call = register_log(dep.anchors, cid, "big", log.signer, many, 1, admin)
    assert c.revert_reason(call) == "TooManyWitnesses"
    call = register_log(dep.anchors, cid, "big", log.signer, many[:2], 3, admin)
    assert c.revert_reason(call) == "ThresholdTooHigh"
    call = register_log(dep.anchors, cid, "big", log.signer, many[:2], 0, admin)
    assert c.revert_reason(call) == "ThresholdZero"
    call = register_log(dep.anchors, cid, "dup", log.signer, [many[0], many[0]], 1, admin)
    assert c.revert_reason(call) == "WitnessExists"


def test_equal_size_with_another_root_is_a_conflict(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    c.send(log.anchor(4, merkle.root(leaves(4))))
    forked = merkle.root([b"evil", *leaves(4)[1:]])
    assert c.revert_reason(log.anchor(4, forked)) == "RootConflict"


def test_anchor_with_consistency_proof(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    entries = leaves(21)
    receipt = c.send(log.anchor_with_proof(6, merkle.root(entries[:6]), []))
    (ev,) = c.events(dep.anchors, "Anchored", receipt)
    assert ev.args.consistencyProven
    assert log.stored(0)["consistency_proven"]
    proof = merkle.consistency_proof(entries[:13], 6)
    c.send(log.anchor_with_proof(13, merkle.root(entries[:13]), proof))
    good = merkle.consistency_proof(entries, 13)
    bad = [*good[:-1], bytes(32)]
    assert c.revert_reason(log.anchor_with_proof(21, merkle.root(entries), bad)) == (
        "ConsistencyProofInvalid"
    )
    # A root that is not an extension of the anchored tree cannot be proven consistent.
    rewritten = [*entries[:12], b"rewritten", *entries[13:]]
    other = merkle.root(rewritten)
    proof = merkle.consistency_proof(rewritten, 13)
    assert c.revert_reason(log.anchor_with_proof(21, other, proof)) == "ConsistencyProofInvalid"
    assert c.revert_reason(log.anchor_with_proof(21, merkle.root(entries), [bytes(32)] * 65)) == (
        "ProofTooLong"
    )
    c.send(log.anchor_with_proof(21, merkle.root(entries), good))


def test_first_proof_must_start_from_the_empty_tree(dep: Deployment) -> None:
    log = register(dep)
    proof = [bytes(32)]
    assert dep.chain.revert_reason(log.anchor_with_proof(3, merkle.root(leaves(3)), proof)) == (
        "ConsistencyProofInvalid"
    )


@settings(
    max_examples=examples(25),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # shrinking transactions is slow
)
@given(data=st.data())
def test_on_chain_consistency_matches_python(dep: Deployment, data: st.DataObject) -> None:
    """Sizes m < n up to 70: the contract accepts exactly the proofs ailedger.merkle accepts."""
    c = dep.chain
    snap = c.snapshot()
    try:
        log = register(dep, origin=f"prop-{id(data)}")
        n = data.draw(st.integers(2, 70), label="n")
        m = data.draw(st.integers(1, n - 1), label="m")
        entries = leaves(n)
        c.send(log.anchor(m, merkle.root(entries[:m])))
        proof = merkle.consistency_proof(entries, m)
        if data.draw(st.booleans(), label="tamper") and proof:
            i = data.draw(st.integers(0, len(proof) - 1), label="index")
            proof[i] = bytes(b ^ 1 if j == 0 else b for j, b in enumerate(proof[i]))
        try:
            merkle.verify_consistency(m, n, merkle.root(entries[:m]), merkle.root(entries), proof)
            expected = True
        except ProofInvalid:
            expected = False
        call = log.anchor_with_proof(n, merkle.root(entries), proof)
        if expected:
            assert call.call() == 1
        else:
            assert c.revert_reason(call) == "ConsistencyProofInvalid"
    finally:
        c.revert_to(snap)


@pytest.mark.parametrize("count", [1, 32])
def test_cosignature_count_cap(dep: Deployment, count: int) -> None:
    c = dep.chain
    signer = key(100)
    ws = [key(500 + i) for i in range(count)]
    addresses = [w.address for w in ws]
    c.send(register_log(dep.anchors, c.chain_id, "cap", signer, addresses, count, c.accounts[0]))
    log = Log(c, dep.anchors, log_id("cap", signer.address), signer, ws, c.accounts[0])
    c.send(log.anchor(1, merkle.root(leaves(1))))

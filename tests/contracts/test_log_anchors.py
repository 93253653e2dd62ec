"""LogAnchors: log registration, witnesses, anchoring, history and consistency proofs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from contract_helpers import Chain, Deployment, key, register_log, sign_checkpoint
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from web3.contract import Contract

from ailedger import merkle
from ailedger.chain.eip712 import (
    Domain,
    checkpoint_digest,
    cosignature_digest,
    log_id,
    registration_digest,
)
from ailedger.errors import ProofInvalid
from ailedger.identity.keys import Secp256k1Signer

ORIGIN = "log.example.org/ailedger"


@dataclass
class Log:
    chain: Chain
    anchors: Contract
    id: bytes
    signer: Secp256k1Signer
    witnesses: list[Secp256k1Signer]
    admin: str

    def sign(
        self, size: int, root: bytes, witnesses: Sequence[Secp256k1Signer] | None = None
    ) -> tuple[bytes, list[bytes]]:
        ws = list(self.witnesses if witnesses is None else witnesses)
        return sign_checkpoint(
            self.anchors, self.chain.chain_id, self.id, size, root, self.signer, ws
        )

    def anchor(self, size: int, root: bytes, witnesses: Sequence[Secp256k1Signer] | None = None):  # type: ignore[no-untyped-def]
        sig, cosigs = self.sign(size, root, witnesses)
        return self.anchors.functions.anchor(self.id, size, root, sig, cosigs)

    def anchor_with_proof(self, size: int, root: bytes, proof: list[bytes]):  # type: ignore[no-untyped-def]
        sig, cosigs = self.sign(size, root)
        return self.anchors.functions.anchorWithProof(self.id, size, root, sig, cosigs, proof)


def register(dep: Deployment, witnesses: int = 3, threshold: int = 2, origin: str = ORIGIN) -> Log:
    c = dep.chain
    signer = key(100)
    ws = [key(101 + i) for i in range(witnesses)]
    admin = c.accounts[1]
    addresses = [w.address for w in ws]
    call = register_log(dep.anchors, c.chain_id, origin, signer, addresses, threshold, admin)
    c.send(call, admin)
    return Log(c, dep.anchors, log_id(origin), signer, ws, admin)


def leaves(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


def test_register_log_records_signer_witnesses_and_threshold(dep: Deployment) -> None:
    c = dep.chain
    signer, ws = key(100), [key(101), key(102)]
    addresses = [w.address for w in ws]
    cid = c.chain_id
    call = register_log(dep.anchors, cid, ORIGIN, signer, addresses, 1, c.accounts[1])
    receipt = c.send(call, c.accounts[1])
    (ev,) = c.events(dep.anchors, "LogRegistered", receipt)
    assert ev.args.logId == log_id(ORIGIN) == dep.anchors.functions.logIdOf(ORIGIN).call()
    assert (ev.args.origin, ev.args.signer, ev.args.threshold) == (ORIGIN, signer.address, 1)
    assert [e.args.witness for e in c.events(dep.anchors, "WitnessAdded", receipt)] == [
        w.address for w in ws
    ]
    admin, count, threshold, log_signer = dep.anchors.functions.getLog(log_id(ORIGIN)).call()
    assert (admin, count, threshold, log_signer) == (c.accounts[1], 2, 1, signer.address)
    assert dep.anchors.functions.isWitness(log_id(ORIGIN), ws[0].address).call()
    assert c.revert_reason(call, c.accounts[1]) == "LogExists"


def test_registration_needs_the_log_keys_consent(dep: Deployment) -> None:
    """Nobody can squat a log's origin: the log key signs LogRegistration(logId, admin)."""
    c = dep.chain
    cid, signer, squatter = c.chain_id, key(100), c.accounts[4]
    # Consent given to accounts[1], sent by someone else.
    call = register_log(dep.anchors, cid, ORIGIN, signer, [], 0, c.accounts[1])
    assert c.revert_reason(call, squatter) == "NotLogSigner"
    # A key of the squatter's own, claiming to be the log's.
    call = register_log(dep.anchors, cid, ORIGIN, key(5), [], 0, squatter)
    forged = dep.anchors.functions.registerLog(ORIGIN, signer.address, [], 0, call.args[4])
    assert c.revert_reason(forged, squatter) == "NotLogSigner"
    domain = Domain.log_anchors(cid, dep.anchors.address)
    assert dep.anchors.functions.registrationDigest(log_id(ORIGIN), squatter).call() == (
        registration_digest(domain, log_id(ORIGIN), squatter)
    )


def test_contract_digests_match_python(dep: Deployment) -> None:
    domain = Domain.log_anchors(dep.chain.chain_id, dep.anchors.address)
    assert dep.anchors.functions.domainSeparator().call() == domain.separator()
    lid, root = log_id(ORIGIN), bytes(range(32))
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
    assert not ev.args.consistencyChecked
    block = c.w3.eth.get_block(receipt["blockNumber"])
    f = dep.anchors.functions
    assert f.anchorAt(log.id, 0).call() == (5, block["number"], block["timestamp"], root5)
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
    other = log.anchors.functions.anchor(log_id("nope"), 2, root, *log.sign(2, root))
    assert c.revert_reason(other) == "UnknownLog"
    log.signer = key(999)
    assert c.revert_reason(log.anchor(2, root)) == "NotLogSigner"


def test_witness_management(dep: Deployment) -> None:
    log = register(dep, witnesses=2, threshold=2)
    c = dep.chain
    f = dep.anchors.functions
    w3_key = key(200)
    receipt = c.send(f.addWitness(log.id, w3_key.address), log.admin)
    assert c.events(dep.anchors, "WitnessAdded", receipt)
    assert c.revert_reason(f.addWitness(log.id, w3_key.address), log.admin) == "WitnessExists"
    assert c.revert_reason(f.addWitness(log.id, log.signer.address), log.admin) == (
        "WitnessIsLogSigner"
    )
    assert c.revert_reason(f.setThreshold(log.id, 4), log.admin) == "ThresholdTooHigh"
    receipt = c.send(f.setThreshold(log.id, 3), log.admin)
    (ev,) = c.events(dep.anchors, "ThresholdChanged", receipt)
    assert (ev.args.previousThreshold, ev.args.threshold) == (2, 3)
    w = log.witnesses[0].address
    assert c.revert_reason(f.removeWitness(log.id, w), log.admin) == "ThresholdTooHigh"
    c.send(f.setThreshold(log.id, 2), log.admin)
    receipt = c.send(f.removeWitness(log.id, w), log.admin)
    assert c.events(dep.anchors, "WitnessRemoved", receipt)
    assert not f.isWitness(log.id, w).call()
    assert c.revert_reason(f.removeWitness(log.id, w), log.admin) == "NotAWitness"
    assert f.getLog(log.id).call()[1] == 2


def test_log_key_rotation(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    f = dep.anchors.functions
    old = log.signer
    new = key(300)
    assert c.revert_reason(f.setLogSigner(log.id, log.witnesses[0].address), log.admin) == (
        "WitnessIsLogSigner"
    )
    receipt = c.send(f.setLogSigner(log.id, new.address), log.admin)
    (ev,) = c.events(dep.anchors, "LogSignerChanged", receipt)
    assert (ev.args.previousSigner, ev.args.newSigner) == (old.address, new.address)
    root = merkle.root(leaves(4))
    assert c.revert_reason(log.anchor(4, root)) == "NotLogSigner"
    log.signer = new
    c.send(log.anchor(4, root))


def test_admin_transfer_and_caps(dep: Deployment) -> None:
    log = register(dep)
    c = dep.chain
    f = dep.anchors.functions
    receipt = c.send(f.setLogAdmin(log.id, c.accounts[2]), log.admin)
    assert c.events(dep.anchors, "LogAdminChanged", receipt)
    assert c.revert_reason(f.setThreshold(log.id, 1), log.admin) == "NotLogAdmin"
    c.send(f.setThreshold(log.id, 1), c.accounts[2])
    many = [key(400 + i).address for i in range(33)]
    cid, admin = c.chain_id, c.accounts[0]
    call = register_log(dep.anchors, cid, "big", log.signer, many, 1, admin)
    assert c.revert_reason(call) == "TooManyWitnesses"
    call = register_log(dep.anchors, cid, "big", log.signer, many[:2], 3, admin)
    assert c.revert_reason(call) == "ThresholdTooHigh"
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
    assert ev.args.consistencyChecked
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
    max_examples=25,
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
    log = Log(c, dep.anchors, log_id("cap"), signer, ws, c.accounts[0])
    c.send(log.anchor(1, merkle.root(leaves(1))))

"""Anchoring on every backend (embedded py-evm and a real anvil): the typed contract clients,
``ailedger.chain.anchoring`` end to end, forged receipts, and anchors surviving restarts and
SIGKILL."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _chain_util import ETHER, Backend
from _log_util import LOG_SIGNER, envelope
from ailedger.chain import Chain, ContractReverted, open_embedded
from ailedger.chain.anchoring import (
    AnchorBook,
    anchor_checkpoint,
    cosign_checkpoint,
    receipt_with_anchor,
    verify_receipt_anchor,
)
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.deployments import Deployment, DeploymentBook, deploy_contracts
from ailedger.chain.eip712 import log_id
from ailedger.chain.membership import Membership
from ailedger.chain.registry import ModelRegistry, version_key
from ailedger.errors import ConflictError, ProofInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.log.receipt import verify_receipt

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Setup:
    chain: Chain
    dep: Deployment
    anchors: LogAnchors
    log: TransparencyLog
    log_key: Secp256k1Signer
    witnesses: list[Secp256k1Signer]
    book: AnchorBook

    @property
    def note_key(self) -> Secp256k1NoteKey:
        return Secp256k1NoteKey.from_signer(self.log.origin, self.log_key)

    def grow(self, start: int, stop: int) -> None:
        self.log.append_many([envelope(i) for i in range(start, stop)])
        self.log.checkpoint(self.note_key)


def _setup(backend: Backend, tmp_path: Path, origin: str) -> Setup:
    backend.artifacts_dir = None  # the shipped contracts
    chain = backend.open()
    log_key = Secp256k1Signer.generate()
    chain.fund(log_key.address, 10 * ETHER)
    dep = deploy_contracts(chain, log_key)
    anchors = LogAnchors(chain, dep.open(chain, "LogAnchors"))
    log = TransparencyLog.open(tmp_path / "log.sqlite", origin)
    witnesses = sorted(
        (Secp256k1Signer.generate() for _ in range(3)), key=lambda k: int(k.address, 16)
    )
    return Setup(chain, dep, anchors, log, log_key, witnesses, AnchorBook(tmp_path / "a.json"))


def test_anchor_receipts_and_forgeries(backend: Backend, tmp_path: Path) -> None:
    s = _setup(backend, tmp_path, "conformance.example/anchors")
    s.grow(0, 5)
    addrs = [w.address for w in s.witnesses]
    first = anchor_checkpoint(
        s.log,
        s.anchors,
        s.log_key,
        witness_keys=s.witnesses[:2],
        witnesses=addrs,
        threshold=2,
        book=s.book,
    )
    assert first.registered
    assert (first.record.index, first.record.size) == (0, 5)
    info = s.anchors.log_info(first.record.log_id)
    assert info is not None
    assert (info.threshold, info.witness_count) == (2, 3)
    assert info.signer == s.log_key.address
    with pytest.raises(ConflictError, match="already anchored"):
        anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book)

    r2 = receipt_with_anchor(s.log, 2, s.note_key, s.book)
    verify_receipt(r2)
    assert verify_receipt_anchor(r2, s.anchors).anchor.size == 5

    # one witness short of k: the contract refuses, nothing is stored
    s.grow(5, 9)
    with pytest.raises(ContractReverted, match="ThresholdNotMet"):
        anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses[2:])
    remote = cosign_checkpoint(s.log, s.anchors, s.witnesses[2])
    second = anchor_checkpoint(
        s.log,
        s.anchors,
        s.log_key,
        witness_keys=s.witnesses[:1],
        cosignatures=[remote],
        with_consistency=True,
        book=s.book,
    )
    assert (second.record.index, second.record.size) == (1, 9)
    assert second.record.consistency_checked
    assert not second.registered
    assert [r.size for r in s.book.records(s.log.origin)] == [5, 9]

    # a receipt for an old checkpoint, carrying the proof up to a larger anchor
    early = s.log.checkpoints()[0]
    old = s.log.receipt(1, s.note_key, early)
    anchor_doc = second.record.to_dict() | {
        "consistency": [h.hex() for h in s.log.consistency_proof(5, 9).hashes]
    }
    # (anchor #0 equals that checkpoint; point at #1 to exercise the proof)
    via = verify_receipt_anchor(dataclasses.replace(old, anchor=anchor_doc), s.anchors)
    assert via.via_consistency_proof
    assert via.anchor.index == 1
    without = {k: v for k, v in anchor_doc.items() if k != "consistency"}
    with pytest.raises(ProofInvalid, match="no consistency proof"):
        verify_receipt_anchor(dataclasses.replace(old, anchor=without), s.anchors)
    bad = anchor_doc | {"consistency": [("00" * 32)] * len(anchor_doc["consistency"])}
    with pytest.raises(ProofInvalid):
        verify_receipt_anchor(dataclasses.replace(old, anchor=bad), s.anchors)

    # forged anchor objects
    forged_root = r2.anchor | {"root": "11" * 32}  # type: ignore[operator]
    with pytest.raises(ProofInvalid, match="not the receipt's"):
        verify_receipt_anchor(dataclasses.replace(r2, anchor=forged_root), s.anchors)
    missing = r2.anchor | {"index": 7}  # type: ignore[operator]
    with pytest.raises(ProofInvalid, match="no anchor #7"):
        verify_receipt_anchor(dataclasses.replace(r2, anchor=missing), s.anchors)
    other_chain = r2.anchor | {"chain_id": 5}  # type: ignore[operator]
    with pytest.raises(ProofInvalid, match="on chain 5"):
        verify_receipt_anchor(dataclasses.replace(r2, anchor=other_chain), s.anchors)
    # a contract that is not LogAnchors (here: Membership) cannot vouch for anything
    fake = LogAnchors(s.chain, s.chain.at("LogAnchors", s.dep.address("Membership")))
    with pytest.raises(ProofInvalid, match="not ailedger's LogAnchors"):
        verify_receipt_anchor(dataclasses.replace(r2, anchor=None), fake)


def test_finding5_same_origin_under_another_key_is_another_log(
    backend: Backend, tmp_path: Path
) -> None:
    """A squatter with the operator's origin and its own key gets a log of its own: it can
    neither lock the operator out nor make its receipts pass for the operator's log."""
    s = _setup(backend, tmp_path, "conformance.example/keys")
    impostor_log = TransparencyLog.open(tmp_path / "other.sqlite", s.log.origin)
    impostor_log.append_many([envelope(i) for i in range(3)])
    impostor = Secp256k1NoteKey.from_signer(impostor_log.origin, LOG_SIGNER)
    impostor_log.checkpoint(impostor)
    s.chain.fund(LOG_SIGNER.address, 10 * ETHER)
    # The squatter registers and anchors the origin first, under its key ...
    squat = anchor_checkpoint(impostor_log, s.anchors, LOG_SIGNER, witness_keys=s.witnesses[:1])
    assert squat.registered
    # ... and the operator still registers and anchors its log (another id) afterwards.
    s.grow(0, 3)
    mine = anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book)
    assert mine.registered
    assert mine.record.log_id != squat.record.log_id
    receipt = receipt_with_anchor(s.log, 0, s.note_key, s.book)
    assert verify_receipt_anchor(receipt, s.anchors).log_signer == s.log_key.address
    # The squatter's receipt (its anchor swapped for the operator's) does not pass.
    forged = dataclasses.replace(impostor_log.receipt(0, impostor), anchor=receipt.anchor)
    with pytest.raises(ProofInvalid, match="names log signer"):
        verify_receipt_anchor(forged, s.anchors)
    with pytest.raises(ConflictError, match="already anchored"):
        anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses)


def test_finding6_verify_receipt_reports_whether_consistency_was_proven(
    backend: Backend, tmp_path: Path
) -> None:
    s = _setup(backend, tmp_path, "conformance.example/proven")
    s.grow(0, 3)
    first = anchor_checkpoint(
        s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book, with_consistency=True
    )
    assert first.record.consistency_checked
    s.grow(3, 7)
    second = anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book)
    assert not second.record.consistency_checked
    latest = receipt_with_anchor(s.log, 5, s.note_key, s.book)
    checked = verify_receipt_anchor(latest, s.anchors)
    assert checked.anchor.index == 1
    assert not checked.consistency_proven
    assert checked.to_dict()["consistency_proven"] is False
    assert checked.anchor.cosignatures == len(s.witnesses)
    # Anyone proves it later: the flag in storage flips, and verification reports it.
    lid = second.record.log_id
    proof = s.log.consistency_proof(3, 7).hashes
    s.anchors.prove_consistency(lid, 1, proof, sender=s.log_key)
    assert verify_receipt_anchor(latest, s.anchors).consistency_proven
    assert s.anchors.anchor_at(lid, 0).consistency_proven  # from the empty tree
    with pytest.raises(ContractReverted, match="AlreadyProven"):
        s.anchors.prove_consistency(lid, 1, proof, sender=s.log_key)


def test_finding11_anchoring_after_a_front_run_still_proves_consistency(
    backend: Backend, tmp_path: Path
) -> None:
    s = _setup(backend, tmp_path, "conformance.example/frontrun")
    s.grow(0, 4)
    anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book)
    s.grow(4, 9)
    cp = s.log.latest_checkpoint()
    size, root = s.log.size(), s.log.root(s.log.size())
    assert cp.text.splitlines()[1] == str(size)
    lid = s.anchors.log_id(s.log.origin, s.log_key.address)
    # The attacker copies the operator's public signatures into anchor(), without a proof.
    attacker = Secp256k1Signer.generate()
    s.chain.fund(attacker.address, ETHER)
    log_sig = s.anchors.sign_checkpoint(lid, size, root, s.log_key)
    cosigs = [s.anchors.cosign(lid, size, root, w) for w in s.witnesses]
    front = s.anchors.anchor(lid, size, root, log_sig, cosigs, sender=attacker)
    assert not front.anchor.consistency_proven
    # The operator's anchoring with a proof goes through and marks that anchor proven.
    result = anchor_checkpoint(
        s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book, with_consistency=True
    )
    assert (result.record.index, result.record.size) == (1, size)
    assert result.record.consistency_checked
    assert s.anchors.count(lid) == 2
    receipt = receipt_with_anchor(s.log, 6, s.note_key, s.book)
    assert verify_receipt_anchor(receipt, s.anchors).consistency_proven


def test_membership_roles_over_blocks(backend: Backend, tmp_path: Path) -> None:
    s = _setup(backend, tmp_path, "conformance.example/members")
    m = Membership(s.chain, s.dep.open(s.chain, "Membership"))
    member_key = Secp256k1Signer.generate()
    member = member_key.address
    assert m.global_admin() == s.log_key.address
    m.create_org("org-a", s.log_key.address, signer=s.log_key)
    with pytest.raises(ContractReverted, match="NotAMember"):  # not without its consent
        m.grant("org-a", member, "qa", signer=s.log_key)
    (_joined, granted) = m.enrol("org-a", member_key, "qa", signer=s.log_key)
    revoked = m.revoke("org-a", member, "qa", signer=s.log_key)
    assert m.had_role_at("org-a", member, "qa", granted.block_number)
    assert not m.had_role_at("org-a", member, "qa", revoked.block_number)
    assert not m.has_role("org-a", member, "qa")
    assert [(x.account, x.role) for x in m.members("org-a")] == [(s.log_key.address, "admin")]
    book = DeploymentBook(tmp_path / "deployments.json")
    book.put(s.dep)
    assert book.require(s.chain.chain_id) == s.dep


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "sigkill"])
def test_anchors_survive_restart(restartable: Backend, tmp_path: Path, kill: bool) -> None:
    s = _setup(restartable, tmp_path, "conformance.example/restart")
    for start, stop in ((0, 2), (2, 4), (4, 7)):
        s.grow(start, stop)
        anchor_checkpoint(s.log, s.anchors, s.log_key, witness_keys=s.witnesses, book=s.book)
    receipt = receipt_with_anchor(s.log, 1, s.note_key, s.book)
    lid = s.book.records(s.log.origin)[0].log_id
    before = [s.anchors.anchor_at(lid, i) for i in range(3)]

    chain = restartable.restart(s.chain, kill=kill)
    anchors = LogAnchors(chain, s.dep.open(chain, "LogAnchors"))
    assert [anchors.anchor_at(lid, i) for i in range(anchors.count(lid))] == before
    assert verify_receipt_anchor(receipt, anchors).anchor == before[-1]
    # and anchoring carries on from there
    s.anchors = anchors
    s.grow(7, 8)
    again = anchor_checkpoint(s.log, anchors, s.log_key, witness_keys=s.witnesses)
    assert again.record.index == 3


_ANCHOR_THEN_HANG = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from _log_util import envelope
    from ailedger.chain.anchoring import anchor_checkpoint
    from ailedger.chain import open_embedded
    from ailedger.chain.anchors import LogAnchors
    from ailedger.chain.deployments import deploy_contracts
    from ailedger.log.checkpoint import Secp256k1NoteKey
    from ailedger.identity.keys import Secp256k1Signer
    from ailedger.log import TransparencyLog

    tmp = Path({tmp!r})
    key = Secp256k1Signer(bytes.fromhex("5a" * 32))
    witness = Secp256k1Signer(bytes.fromhex("5b" * 32))
    chain = open_embedded(tmp / "chain")
    chain.fund(key.address, 10**19)
    dep = deploy_contracts(chain, key)
    anchors = LogAnchors(chain, dep.open(chain, "LogAnchors"))
    log = TransparencyLog.open(tmp / "log.sqlite", "crash.example/log")
    for n in range(3):
        log.append(envelope(n))
        log.checkpoint(Secp256k1NoteKey.from_signer(log.origin, key))
        anchor_checkpoint(log, anchors, key, witness_keys=[witness])
    print(anchors.address, flush=True)
    time.sleep(60)  # holding the chain open: killed here
    """
)


def test_embedded_anchors_survive_sigkill(tmp_path: Path) -> None:
    script = _ANCHOR_THEN_HANG.format(tests=str(REPO / "tests"), tmp=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("0x"), "the child did not finish anchoring"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    with open_embedded(tmp_path / "chain") as chain:
        anchors = LogAnchors(chain, chain.at("LogAnchors", address))
        log = TransparencyLog.open(tmp_path / "log.sqlite")
        signer = Secp256k1Signer(bytes.fromhex("5a" * 32)).address  # the child's log key
        latest = anchors.latest(log_id(log.origin, signer))
        assert latest is not None
        assert (latest.index, latest.size, latest.root) == (2, 3, log.root(3))


def test_registry_gate_on_every_backend(backend: Backend, tmp_path: Path) -> None:
    s = _setup(backend, tmp_path, "conformance.example/registry")
    admin = s.log_key
    m = Membership(s.chain, s.dep.open(s.chain, "Membership"))
    reg = ModelRegistry(s.chain, s.dep.open(s.chain, "ModelRegistry"))
    trainer, qa, auditor = (Secp256k1Signer.generate() for _ in range(3))
    for who in (trainer, qa):
        s.chain.fund(who.address, ETHER)
    m.create_org("org-a", trainer.address, signer=admin)
    m.enrol("org-a", trainer, "trainer", signer=admin)  # its consent makes it org-a's admin
    m.enrol("org-a", qa, "qa", signer=trainer)
    m.create_org("org-b", auditor.address, signer=admin)
    m.enrol("org-b", auditor, "auditor", signer=admin)
    reg.set_requirement("prod", {"qa": 1, "auditor": 1}, 2, signer=admin)
    digest = b"\x42" * 32
    reg.register_version("fraud", "1.0", digest, b"\1" * 32, signer=trainer)
    vid = version_key("org-a", "fraud", "1.0")
    info = reg.version(vid)
    assert info is not None
    assert (info.subject_digest, info.registrant) == (digest, trainer.address)
    assert reg.version(version_key("org-a", "fraud", "9.9")) is None
    with pytest.raises(ContractReverted, match="ApprovalsMissing"):
        reg.deploy("prod", vid, digest, signer=admin)
    reg.approve(vid, digest, "qa", signer=qa)
    # the auditor holds no ether: its EIP-712 approval is relayed by someone who does
    signed = reg.sign_approval(vid, digest, "auditor", "org-b", auditor, auditor.address, 1)
    reg.relay_approval(signed, signer=qa)
    assert reg.approval_count(vid, "auditor", "prod") == 1
    assert reg.gate_passes("prod", vid)
    reg.deploy("prod", vid, digest, signer=admin)
    assert reg.current("prod") == info.version_id
    assert reg.current("staging") is None
    reg.deprecate(vid, signer=trainer)
    assert not reg.gate_passes("prod", vid)

"""The imaging dispute's evidence chain, walked as a verifier would walk it.

Weeks after the job, one flagged study is disputed: which model version produced that flag?
The hospital hands over the study's accession id, its salted digest, the receipt the provider
signed (with the kept answer) and the receipt's inclusion proof; never the image. From there
every link is checked against public data only (the chain and the log), in this order::

    study id -> salted digest  (the hospital's study index in the log: a membership proof)
    salted digest == the receipt's request digest; the kept answer -> its response digest
    receipt -> signed by the job's receipt signer (EIP-712: this chain, this market)
    receipt -> leaf of its epoch tree -> the provider-signed root
    root == the epoch root committed on-chain (read back: committed, sampled, settled)
    receipt's model digest == the job's (on-chain) == the registered digit-triage@2
    digit-triage@2's lineage: its training dataset (re-fingerprinted), training metadata,
    evaluations and approvals, each a signed log entry included under the log's checkpoint
    anchored on-chain; the provider's model files re-fingerprinted

Inside the hospital (the only step that needs the image) the digest is re-derived from the
archived salt and pixels. Each link is a claim (:class:`~ailedger.demos._claims.Claims`): one
that does not hold stops the demo with exit 1.
"""

from __future__ import annotations

import json
from typing import Any

from ailedger.attest import dsse
from ailedger.attest.statements import Statement, verify_statement
from ailedger.chain.inference_market import EpochStatus
from ailedger.demos._chain import receipt_checked
from ailedger.demos._imaging_world import MODEL_REF, OLD_REF, TRAIN_REF, JobRun, Registered, World
from ailedger.errors import AiledgerError
from ailedger.fingerprint import proofs
from ailedger.fingerprint.dataset import fingerprint_dataset, prove_record
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Keystore
from ailedger.markets.inference import (
    WalletRow,
    market_domain,
    request_digest,
    response_digest,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from ailedger.registry import Registry
from ailedger.registry.lineage import lineage

__all__ = ["walk"]


def _b32(value: Any) -> bytes:
    """A bytes32 event argument (hex text or bytes) as bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _ok(claims: Any, action: Any, what: str) -> Any:
    """Run a verification; a raised ailedger error is a claim that does not hold."""
    try:
        return action()
    except AiledgerError as exc:
        claims.check(False, f"{what}: {exc.message}")
        raise  # unreachable: check raised


class _Walk:
    def __init__(self, world: World, reg: Registry, run: JobRun, registered: Registered) -> None:
        self.world, self.reg, self.run, self.registered = world, reg, run, registered
        self.claims = world.claims
        self.steps: list[dict[str, Any]] = []
        known = Keystore(world.workspace.keys_dir).list_keys()
        self.trusted = [k.public_key for k in known]
        self.names = {k.keyid.lower(): k.name for k in known}

    def step(self, what: str, **data: Any) -> None:
        n = len(self.steps) + 1
        self.steps.append({"step": n, "what": what, **data})
        self.world.say(f"  {n}. {what}")

    def logged(self, index: int, signer: str, what: str) -> dict[str, Any]:
        """Log entry ``index``: signed by ``signer`` (a workspace key), included under the
        log's latest checkpoint, which is anchored on-chain."""
        w = self.world
        envelope = dsse.Envelope.from_json(self.reg.log.get(index).envelope)
        verified = _ok(
            self.claims, lambda: verify_statement(envelope, self.trusted), f"log entry {index}"
        )
        signers = {self.names.get(k.keyid.lower(), k.keyid) for k in verified.signers}
        self.claims.check(
            signers == {signer}, f"{what} (log entry {index}) is signed by the {signer} key"
        )
        assert w.anchors is not None
        path = w.workdir / "dispute" / f"entry-{index}.receipt.json"
        offline, onchain = _ok(
            self.claims,
            lambda: receipt_checked(
                self.reg.log, w.workspace, w.anchors, w.keys["log"], index, path
            ),
            f"the receipt of log entry {index}",
        )
        self.claims.check(
            offline.index == index and onchain.checkpoint_size > index,
            f"log entry {index} is included under the checkpoint anchored on-chain "
            f"(anchor #{onchain.anchor.index})",
        )
        return {
            "log_index": index,
            "signer": signer,
            "anchor": onchain.anchor.index,
            "anchor_block": onchain.anchor.block_number,
        }


def _disputed(run: JobRun) -> tuple[dict[str, Any], int]:
    for i, s in enumerate(run.studies):
        if s["output"]["flag"]:
            return s, i
    raise AssertionError("unreachable: the caller checked a flagged study exists")


def walk(world: World, reg: Registry, run: JobRun, registered: Registered) -> dict[str, Any]:
    """Dispute the first flagged study of ``run`` and walk its evidence chain; the walk as
    the report shows it."""
    claims, chain, market = world.claims, world.chain, world.m
    (world.workdir / "dispute").mkdir()
    claims.check(
        any(s["output"]["flag"] for s in run.studies),
        f"job {run.name} has a flagged study to dispute",
    )
    study, position = _disputed(run)
    w = _Walk(world, reg, run, registered)
    row: WalletRow = next(r for r in run.rows if r.receipt.receipt.counter == study["counter"])
    signed, r = row.receipt, row.receipt.receipt
    out = study["output"]
    world.say(
        f"now study {study['study']} is disputed: flagged (finding {out['finding']}, "
        f"confidence {out['confidence']}). Which model produced that flag? The evidence chain:"
    )
    # 1. inside the hospital: the digest from the archive (the only step that sees the image)
    salt = bytes.fromhex(study["salt"][2:])
    digest = request_digest(study["pixels"], salt)
    claims.check(
        digest == r.request_digest,
        f"the hospital re-derives the salted digest of {study['study']} from its archived "
        "image and salt",
    )
    w.step(
        f"salted digest 0x{digest.hex()[:16]}… = sha256(salt || JCS(pixels)), re-derived "
        "inside the hospital from its archive; only the digest leaves it",
        digest="0x" + digest.hex(),
    )
    # 2. the study index in the log: accession id -> digest, fixed at call time
    assert run.index_path is not None
    proof_doc = prove_record(run.index_path, secret=None, index=position).to_dict()
    index_statement = dsse.Envelope.from_json(reg.log.get(run.index_log).envelope)
    index_root = bytes.fromhex(str(Statement.from_json(index_statement.payload).predicate["root"]))
    check = _ok(
        claims,
        lambda: proofs.verify_proof(proofs.load_proof(proof_doc), expected_root=index_root),
        "the study's membership proof",
    )
    record = proofs.load_proof(proof_doc)
    assert isinstance(record, proofs.MembershipProof)
    named = json.loads(record.record or b"null")
    want = {"study": study["study"], "job": "0x" + run.job.hex(), "counter": r.counter}
    claims.check(
        check.record_checked and named == {**want, "digest": "0x" + digest.hex()},
        f"the hospital's study index names {study['study']} -> this digest, job and call",
    )
    logged = w.logged(run.index_log, "hospital", "the study index")
    w.step(
        f"study index (log entry {run.index_log}, signed by the hospital, under the log "
        f"checkpoint anchored on-chain): record {position} says {study['study']} -> "
        f"0x{digest.hex()[:16]}…, job 0x{run.job.hex()[:8]}… call {r.counter}; membership "
        f"proof of {len(record.inclusion.hashes)} hashes verifies under its root",
        index=logged,
    )
    # 3. the receipt and the kept answer
    claims.check(
        r.job == run.job and r.request_digest == digest,
        f"receipt {r.counter} of job 0x{run.job.hex()[:8]}… has the salted digest as its "
        "request digest",
    )
    claims.check(
        response_digest(out) == r.response_digest and out["flag"],
        "the kept answer (flagged) hashes to the receipt's response digest",
    )
    w.step(
        f"receipt: call {r.counter} of job 0x{run.job.hex()[:8]}…, request digest = the "
        f"salted digest, response digest = sha256(JCS({out}))",
        counter=r.counter,
        output=out,
    )
    # 4. the provider's signature, for this chain and market
    info = market.job(run.job)
    domain = market_domain(chain.chain_id, market.address)
    signer = _ok(
        claims,
        lambda: verify_receipt(signed, domain=domain, provider=info.signer, job=run.job),
        "the receipt's signature",
    )
    w.step(
        f"signature: EIP-712 (chain {chain.chain_id}, InferenceMarket {market.address}) "
        f"recovers {signer}, the job's receipt signer on-chain",
        signer=signer,
    )
    # 5. inclusion in the epoch's signed root
    signed_root, proof = row.epoch_root, row.proof
    claims.check(
        signed_root is not None and proof is not None,
        "the hospital kept the disputed receipt's inclusion proof and its epoch's signed root",
    )
    assert signed_root is not None
    assert proof is not None
    root = _ok(
        claims,
        lambda: verify_epoch_root(signed_root, domain=domain, provider=info.signer),
        "the epoch root's signature",
    )
    _ok(claims, lambda: verify_inclusion_in_epoch(signed, root, proof), "the inclusion proof")
    w.step(
        f"inclusion: leaf {r.position} of epoch {r.epoch}'s {root.size}-leaf tree; "
        f"{len(proof.hashes)} hashes lead to the provider-signed root 0x{root.root.hex()[:16]}…",
        epoch=r.epoch,
        root="0x" + root.root.hex(),
    )
    # 6. the root on-chain
    stored = market.epoch(run.job, r.epoch)
    committed = [
        e for e in chain.events(market.contract, "EpochCommitted")
        if _b32(e.args["jobId"]) == run.job and int(e.args["epoch"]) == r.epoch
    ]  # fmt: skip
    settled = [
        e for e in chain.events(market.contract, "EpochSettled")
        if _b32(e.args["jobId"]) == run.job and int(e.args["epoch"]) == r.epoch
    ]  # fmt: skip
    claims.check(
        stored.root == root.root
        and stored.size == root.size
        and stored.first <= r.counter < stored.first + stored.calls
        and stored.status == EpochStatus.PASSED
        and len(committed) == 1
        and len(settled) == 1
        and bool(settled[0].args["passed"]),
        f"the chain stores epoch {r.epoch} of the job with this root, covering call "
        f"{r.counter}, verified and paid",
    )
    w.step(
        f"on-chain: InferenceMarket.getEpoch(job, {r.epoch}) holds this root (size "
        f"{stored.size}, calls {stored.first}..{stored.first + stored.calls - 1}); committed in "
        f"block {committed[0].block_number} (tx {committed[0].tx_hash[:12]}…), sampled and "
        f"settled passed {settled[0].args['passedCount']}/{settled[0].args['total']} by the "
        "verifiers",
        commit_tx=committed[0].tx_hash,
        settle_tx=settled[0].tx_hash,
    )
    # 7. the model digest -> the registered version
    row_v2, row_v1 = reg.model(MODEL_REF), reg.model(OLD_REF)
    claims.check(
        r.model_digest == info.terms.model_digest == registered.digest
        and row_v2.digest == "sha256:" + r.model_digest.hex()
        and row_v1.digest != row_v2.digest,
        f"the receipt's model digest is the job's on-chain and {MODEL_REF}'s, not {OLD_REF}'s",
    )
    model_logged = w.logged(row_v2.log_index, "trainer", f"the registration of {MODEL_REF}")
    w.step(
        f"model: the receipt names sha256:{r.model_digest.hex()[:16]}…, the digest the job "
        f"paid for on-chain, registered as {MODEL_REF} (log entry {row_v2.log_index}, signed by "
        f"the trainer); {OLD_REF} is {row_v1.digest[:23]}…",
        model=str(MODEL_REF),
        registration=model_logged,
    )
    lineage_doc = _lineage(w)
    return {
        "study": study["study"],
        "salted_digest": "0x" + digest.hex(),
        "job": "0x" + run.job.hex(),
        "counter": r.counter,
        "epoch": r.epoch,
        "output": out,
        "model": str(MODEL_REF),
        "lineage": lineage_doc,
        "steps": w.steps,
    }


def _lineage(w: _Walk) -> dict[str, Any]:
    """The registered version's lineage, each item checked."""
    claims, reg, registered = w.claims, w.reg, w.registered
    tree = lineage(reg, MODEL_REF)
    reg_item = tree.registration
    claims.check(
        reg_item is not None and reg_item.log_index == registered.log_indices["model"],
        f"{MODEL_REF}'s lineage starts at its registration",
    )
    assert reg_item is not None
    training = reg_item.details["training"]
    fp = fingerprint_dataset(registered.train_path, secret=None, format="jsonl")
    (ds,) = tree.datasets
    claims.check(
        ds["root"] == fp.root.hex()
        and str(TRAIN_REF) in ds["registered_as"]
        and training["dataset_roots"] == [fp.root.hex()],
        f"the training metadata names {TRAIN_REF}'s root, and the data re-fingerprints to it",
    )
    w.logged(ds["log_index"], "trainer", f"the registration of {TRAIN_REF}")
    w.step(
        f"dataset: {TRAIN_REF} (log entry {ds['log_index']}, signed by the trainer), root "
        f"{fp.root.hex()[:16]}… over {fp.size} images: the file re-fingerprints to it",
        dataset=ds,
    )
    w.step(
        f"training metadata (in the registration, signed by the trainer): "
        f"{training.get('hyperparameters')}, code {training.get('code_revision')}, team "
        f"{training.get('team')}",
        training=training,
    )
    evals = {e.details["name"]: e for e in tree.evaluations}
    approvals = {a.details["role"]: a for a in tree.approvals}
    claims.check(
        set(evals) == {"accuracy", "flag-safety"}
        and all(e.details["passed"] for e in evals.values()),
        f"{MODEL_REF} has passing accuracy and flag-safety evaluations",
    )
    claims.check(
        set(approvals) == {"qa", "auditor"}
        and all(a.details["decision"] == "approve" for a in approvals.values()),
        f"{MODEL_REF} is approved by QA and by the auditor",
    )
    for item, who in ((evals["accuracy"], "qa"), (evals["flag-safety"], "auditor")):
        w.logged(item.log_index, who, f"the {item.details['name']} evaluation")
    for role, item in approvals.items():
        w.logged(item.log_index, role, f"the {role} approval")
    w.step(
        "evaluations: " + "; ".join(f"{e.summary} (entry {e.log_index})" for e in evals.values()),
        evaluations=[e.to_dict() for e in evals.values()],
    )
    w.step(
        "approvals: "
        + "; ".join(f"{a.summary} (entry {a.log_index})" for a in approvals.values())
        + "; each entry's signature verifies and its inclusion proof reaches the checkpoint "
        "anchored on-chain",
        approvals=[a.to_dict() for a in approvals.values()],
    )
    fp_model = fingerprint_model(registered.model_dir, tensors=False)
    claims.check(
        fp_model.subject_digest == registered.digest,
        f"the provider's files of {MODEL_REF} re-fingerprint to the registered digest",
    )
    w.step(
        f"model files: the provider's copy of {MODEL_REF} re-fingerprints to "
        f"sha256:{fp_model.subject_digest.hex()[:16]}…: the version that produced the flag",
    )
    return tree.to_dict()

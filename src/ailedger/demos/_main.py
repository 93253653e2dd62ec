"""The end-to-end demo behind ``ailedger demo``: every step real, in a fresh directory.

Part one shows the building blocks on the shipped sample model and dataset: fingerprints,
tensor and dataset proofs, signed statements, the transparency log with a witness, receipts
checked offline, and a changed model caught by its fingerprint. Part two
(:mod:`ailedger.demos._release`) runs the release path on a real scikit-learn model: train,
register, evaluate and audit for bias, approve, gate, deploy, a tampered artifact the gate
rejects, a rollback that trace reports, the log anchored on the embedded chain with a receipt
checked there, and an inference record traced back to its model.

Each step returns a :class:`Step` saying what it did and whether the outcome was the
expected one (some steps expect a rejection).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ailedger import merkle
from ailedger.attest import statements
from ailedger.attest.predicates import DatasetPredicate, ModelPredicate, TrainingMetadata
from ailedger.demos._ml import require_sklearn
from ailedger.demos._release import run_workflow
from ailedger.demos._steps import (
    DEMO_PASSWORD,
    IDENTITIES,
    DemoResult,
    Step,
    create_identities,
    expect_rejection,
)
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.errors import ProofInvalid
from ailedger.fingerprint import dataset, model, proofs
from ailedger.identity.keys import Keystore, PublicKey, Secp256k1Signer
from ailedger.log import Checkpoint, known_keys_check, open_workspace_log
from ailedger.log.checkpoint import Secp256k1Cosigner, Secp256k1NoteKey
from ailedger.log.receipt import Receipt, sha256_file, verify_receipt
from ailedger.workspace import Workspace

__all__ = ["DEMO_PASSWORD", "DemoResult", "Step", "run_demo"]


def run_demo(workdir: Path, *, on_step: Callable[[Step], None] | None = None) -> DemoResult:
    """Run every step in ``workdir`` (created; should be empty) and return what happened."""
    require_sklearn()  # before anything is written: part two trains a model
    result = DemoResult(workdir)

    def record(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    workdir.mkdir(parents=True, exist_ok=True)
    model_dir = workdir / "model"
    shutil.copytree(SAMPLE_MODEL, model_dir)
    data_file = workdir / "patients.csv"
    shutil.copyfile(SAMPLE_DATA / "patients.csv", data_file)

    # 1. Model fingerprint, compatible with OpenSSF model signing.
    fp = model.fingerprint_model(model_dir)
    assert fp.tensor_root is not None
    record(
        Step(
            "fingerprint the model",
            f"{len(fp.resources)} files, subject sha256:{fp.subject_digest.hex()[:16]}..., "
            f"tensor root {fp.tensor_root.hex()[:16]}... over "
            f"{len(fp.tensor_leaves or ())} tensors",
            True,
            data={"subject_digest": fp.subject_digest.hex(), "tensor_root": fp.tensor_root.hex()},
        )
    )

    # 2. One tensor proven to belong to the model, without the other weights.
    leaf = next(t for t in fp.tensor_leaves or () if t.name == "lm_head.weight")
    tproof = model.tensor_inclusion_proof(fp, "lm_head.weight")
    model.verify_tensor(leaf, tproof, fp.tensor_root)
    record(
        Step(
            "prove a tensor belongs to the model",
            f"lm_head.weight {leaf.dtype}{list(leaf.shape)} is leaf {tproof.leaf_index} of "
            f"{tproof.tree_size}; proof of {len(tproof.hashes)} hashes verifies",
            True,
        )
    )

    # 3. Dataset fingerprint: salted leaves, sorted so absence can be proven too.
    secret = dataset.default_secret_path(data_file)
    secret.write_bytes(b"demo-secret-" + bytes(range(20)))
    ds = dataset.fingerprint_dataset(data_file, secret=secret.read_bytes(), sort_leaves=True)
    dataset.write_index_file(ds)
    record(
        Step(
            "fingerprint the dataset",
            f"{ds.size} CSV rows, root {ds.root.hex()[:16]}..., scheme {ds.scheme}",
            True,
            data={"root": ds.root.hex(), "size": ds.size, "scheme": ds.scheme},
        )
    )

    # 4. Membership: one record, salted, without revealing any other record.
    member = dataset.prove_record(data_file, secret=secret.read_bytes(), index=42)
    member_doc = member.to_dict()
    (workdir / "membership-proof.json").write_text(json.dumps(member_doc, indent=2))
    check = proofs.verify_proof(proofs.load_proof(member_doc), expected_root=ds.root)
    record(Step("prove record 42 is in the dataset", f"valid {check.kind} proof", True))

    # 5. Non-membership: a scan that was never in the training set.
    absent = workdir / "absent.csv"
    absent.write_text("P99999,47,F,north,none,never collected\n")
    non_member = dataset.prove_record(data_file, secret=secret.read_bytes(), record=absent)
    # A root does not fix the tree's size: the bracket is checked against both.
    check = proofs.verify_proof(
        proofs.load_proof(non_member.to_dict()), expected_root=ds.root, expected_size=ds.size
    )
    record(Step("prove an outside record is NOT in the dataset", f"valid {check.kind}", True))

    # 5b. A root does not fix the size: claiming a tree of 1 leaf, the root is that leaf, and a
    # "proof of absence" of record 42 (held) holds against its own claims; the pinned size stops it.
    assert isinstance(member, proofs.MembershipProof)
    held = member.inclusion.leaf_hash
    only = merkle.InclusionProof(1, 0, ds.root, (), ds.root)
    lie = proofs.NonMembershipProof(
        dataclasses.replace(member.dataset, size=1),
        member.record,
        member.salt,
        held,
        only if ds.root < held else None,
        None if ds.root < held else only,
    )
    lie.verify()  # well formed: only the trusted size tells it apart
    rejected, why = expect_rejection(
        lambda: proofs.verify_proof(lie, expected_root=ds.root, expected_size=ds.size)
    )
    record(
        Step(
            "a proof that held record 42 is absent, claiming a tree of size 1",
            why,
            rejected,
            expected_failure=True,
        )
    )

    # 6. A tampered proof is rejected.
    tampered = json.loads(json.dumps(member_doc))
    first = tampered["inclusion"]["hashes"][0]
    tampered["inclusion"]["hashes"][0] = ("0" if first[0] != "0" else "1") + first[1:]
    rejected, why = expect_rejection(
        lambda: proofs.verify_proof(proofs.load_proof(tampered), expected_root=ds.root)
    )
    record(Step("a proof with one changed hash", why, rejected, expected_failure=True))

    # 7. Keys, and signed statements about the dataset and the model.
    workspace = Workspace.init(workdir)
    keystore = Keystore(workspace.keys_dir)
    signers = create_identities(keystore)
    trainer = keystore.info("trainer")
    orgs = {org for org, _ in IDENTITIES.values()}
    signer = signers["trainer"]
    ds_pred = DatasetPredicate(root=ds.root.hex(), size=ds.size, scheme=ds.scheme, format="csv")
    ds_env = statements.attest(
        ds_pred,
        [statements.subject_from_digest(f"sha256:{ds.data_sha256}", "patients.csv")],
        [signer],
    )
    training = TrainingMetadata(
        dataset_roots=[ds.root.hex()],
        code_revision="demo",
        hyperparameters={"epochs": 3, "lr": 0.01},
        training_date=datetime.now(UTC),
        team="acme-ml",
    )
    m_pred = ModelPredicate.from_manifest(fp.to_dict(), training)
    m_env = statements.attest(
        m_pred,
        [statements.subject_from_digest(f"sha256:{fp.subject_digest.hex()}", "model")],
        [signer],
    )
    trusted = [keystore.public_key("trainer")]
    for env in (ds_env, m_env):
        statements.verify_statement(env, trusted)
    (workdir / "model.statement.json").write_bytes(m_env.canonical_json())
    record(
        Step(
            "sign dataset and model statements",
            f"in-toto v1 in DSSE, signed by {trainer.keyid} (org acme-ml); both verify; "
            f"{len(signers)} identities in {len(orgs)} organisations",
            True,
        )
    )

    # 8. The statements go into the append-only log; the log key signs a checkpoint and an
    #    independent witness cosigns it after checking consistency.
    log_signer, witness_signer = signers["log"], signers["witness"]
    known = [k.public_key for k in keystore.list_keys()]
    with open_workspace_log(workspace, check_signature=known_keys_check(known)) as log:
        log_key = Secp256k1NoteKey.from_signer(log.origin, log_signer)
        log.append(m_env.to_json())
        ds_receipt = log.append_with_receipt(ds_env.to_json(), log_key)
        witness = Secp256k1Cosigner.from_signer(f"witness/{witness_signer.address}", witness_signer)
        log.add_cosignature(log.latest_checkpoint().add([witness]), witness)
        log.verify(log_key, [witness])
        size = log.size()
    receipt_path = workdir / "patients.csv.receipt.json"
    ds_receipt.write(receipt_path)
    record(
        Step(
            "log, checkpoint and witness",
            f"{size} entries in log {log_key.name}; checkpoint signed by the log key and "
            "cosigned by an independent witness; whole log re-verified",
            True,
        )
    )

    # 9. An auditor checks the dataset's receipt offline against the file itself.
    loaded = Receipt.load(receipt_path)
    verified = verify_receipt(loaded, log_key=log_key, artifact_sha256=sha256_file(data_file))
    record(
        Step(
            "verify the dataset receipt offline",
            f"entry {verified.index} of a {verified.tree_size}-entry tree; signature, inclusion,"
            " checkpoint and the file's sha256 all check",
            True,
        )
    )
    edited = workdir / "patients-edited.csv"
    edited.write_bytes(data_file.read_bytes().replace(b"P00042", b"P00043", 1))
    rejected, why = expect_rejection(
        lambda: verify_receipt(loaded, log_key=log_key, artifact_sha256=sha256_file(edited))
    )
    record(Step("the receipt against an edited copy", why, rejected, expected_failure=True))

    # 10. A changed model no longer matches its signed fingerprint.
    weights = model_dir / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0x01
    weights.write_bytes(bytes(raw))
    changed = model.fingerprint_model(model_dir)
    differs = changed.subject_digest != fp.subject_digest
    bad_tensors = [
        a.name
        for a, b in zip(fp.tensor_leaves or (), changed.tensor_leaves or (), strict=True)
        if a != b
    ]
    record(
        Step(
            "flip one bit in the weights",
            f"subject digest changed: {differs}; changed tensors: {', '.join(bad_tensors)}",
            differs and bool(bad_tensors),
            expected_failure=True,
        )
    )
    if not differs:  # pragma: no cover - would be a bug in fingerprinting
        raise ProofInvalid("the changed model kept its fingerprint", code="demo-check-failed")

    # 11-. The release path on a real model (see ailedger.demos._release).
    result.summary = run_workflow(workdir, workspace, keystore, signers, record)
    _ready_to_explore(Workspace.open(workdir), log_signer, witness_signer, known)
    return result


def _ready_to_explore(
    workspace: Workspace,
    log_signer: Secp256k1Signer,
    witness_signer: Secp256k1Signer,
    known: list[PublicKey],
) -> None:
    """Cover the whole log with a cosigned checkpoint and mark the workspace ``[serve]
    read_only``, so that ``ailedger serve DIR`` shows it in the explorer with no key unlocked
    and no submissions taken."""
    with open_workspace_log(workspace, check_signature=known_keys_check(known)) as log:
        log_key = Secp256k1NoteKey.from_signer(log.origin, log_signer)
        witness = Secp256k1Cosigner.from_signer(f"witness/{witness_signer.address}", witness_signer)
        if Checkpoint.parse(log.latest_checkpoint().text).size < log.size():
            log.add_cosignature(log.checkpoint(log_key).add([witness]), witness)
    data = dict(workspace.config.data)
    data["serve"] = {**workspace.config.section("serve"), "read_only": True}
    workspace.save_config(type(workspace.config).from_dict(data, source=workspace.config_path))

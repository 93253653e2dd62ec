"""Audit report benchmark: ``ailedger audit report`` over 1,000 model versions.

The workspace is built once through the Registry library (keys with the *_TEST_ONLY KDF
presets) into benchmarks/_data/audit-N/ and reused: N model versions of a few names, each
with an accuracy evaluation, a bias audit for most, a QA approval, a staging deploy, every
fifth a prod deploy, some rollbacks and deprecations, one dataset; then a signed checkpoint.

Timed: reading the log and index, verifying (signatures, leaf hashes, the checkpoint root,
anchors), rendering HTML + JSON. Peer, side by side in one run: collecting the same evidence
through :func:`ailedger.registry.lineage.lineage` once per version (four indexed log queries each)
and verifying each envelope with :func:`ailedger.attest.statements.verify_statement` and its
inclusion with a per-entry proof from the log (what the report would cost built naively on
the existing library calls)::

    .venv/bin/python benchmarks/bench_audit.py [--versions 1000] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from ailedger.attest.dsse import Envelope
from ailedger.attest.statements import verify_statement
from ailedger.audit import audit_names_for, build_report, write_report
from ailedger.demos.samples import SAMPLE_DATA
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Keystore,
    Secp256k1Signer,
)
from ailedger.log.checkpoint import Checkpoint, Secp256k1NoteKey
from ailedger.merkle import leaf_hash, verify_inclusion
from ailedger.registry import LocalBackend, Registry, VersionRef
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.lineage import lineage
from ailedger.registry.policy import parse_policy
from ailedger.workspace import Workspace

DATA = Path(__file__).parent / "_data"
PASSWORD = "bench-only"
NAMES = ("triage", "churn", "fraud", "ranker")
OPEN = parse_policy("version = 1\n")


def _build(root: Path, versions: int) -> float:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    started = time.perf_counter()
    ws = Workspace.init(root, origin="bench.ailedger.dev/audit")
    store = Keystore(
        ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
    for name, org in (("trainer", "acme"), ("qa", "acme"), ("auditor", "audit-co")):
        store.create(name, PASSWORD, org=org)
    ws = LocalBackend.grant(ws, store.info("qa").keyid, "qa", "acme")
    trainer, qa = store.signer("trainer", PASSWORD), store.signer("qa", PASSWORD)
    auditor = store.signer("auditor", PASSWORD)
    data = root / "patients.csv"
    shutil.copyfile(SAMPLE_DATA / "patients.csv", data)
    with Registry.open(ws, keys=store.list_keys()) as reg:
        reg.register_dataset(data, VersionRef("patients", "1"), trainer)
        for i in range(versions):
            name = NAMES[i % len(NAMES)]
            ref = VersionRef(name, f"1.{i // len(NAMES)}")
            model = root / "models" / f"{i:05d}"
            model.mkdir(parents=True)
            (model / "config.json").write_text(json.dumps({"name": name, "i": i}))
            (model / "weights.bin").write_bytes(i.to_bytes(8, "big") * 64)
            reg.register_model(
                model, ref, trainer, datasets=[VersionRef("patients", "1")], params={"lr": 0.01}
            )
            acc = 0.85 + (i % 13) / 100
            reg.record_evaluation(
                ref, record_evaluation("accuracy", {"accuracy": acc}, ["accuracy>=0.88"]), trainer
            )
            if i % 10 != 3:
                parity = 0.8 + (i % 7) / 50
                reg.record_evaluation(
                    ref, record_evaluation("bias-audit", {"parity": parity}), auditor
                )
            reg.approve(ref, "qa", qa, comment=f"release {ref}")
            reg.deploy(ref, "staging", trainer, OPEN)
            if i % 5 == 0:
                reg.deploy(ref, "prod", trainer, OPEN)
            if i % 50 == 49:
                reg.rollback("prod", trainer)
            if i % 40 == 39:
                reg.deprecate(ref, "superseded", trainer)
        assert isinstance(trainer, Secp256k1Signer)
        reg.log.checkpoint(Secp256k1NoteKey.from_signer(reg.log.origin, trainer))
    return time.perf_counter() - started


def _peer(reg: Registry) -> float:
    """Lineage per version, then a signature check and an inclusion proof per entry."""
    started = time.perf_counter()
    trusted = [k.public_key for k in reg.keys]
    cp = Checkpoint.parse(reg.log.latest_checkpoint().text)
    seen: set[int] = set()
    for row in reg.index.versions("model"):
        tree = lineage(reg, row.ref)
        items = [tree.registration, *tree.evaluations, *tree.approvals, *tree.deployments]
        for item in items:
            if item is None or item.log_index in seen:
                continue
            seen.add(item.log_index)
            entry = reg.log.get(item.log_index)
            verify_statement(Envelope.from_json(entry.envelope), trusted)
            proof = reg.log.inclusion_proof(entry.index, cp.size)
            verify_inclusion(leaf_hash(entry.envelope), entry.index, cp.size, proof.hashes, cp.root)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = DATA / f"audit-{args.versions}"
    if args.rebuild or not (root / ".ailedger").is_dir():
        print(f"building {args.versions} versions through the Registry ... ", end="", flush=True)
        print(f"{_build(root, args.versions):.1f} s")
    ws = Workspace.open(root)
    keys = Keystore(ws.keys_dir).list_keys()
    names = audit_names_for(None)
    best: dict[str, float] | None = None
    for _ in range(args.runs):
        with Registry.open(ws, keys=keys) as reg:
            report = build_report(reg, audit_names=names)
        html, _ = write_report(report, root / "report")
        timings = dict(report.timings)
        timings["total"] = sum(timings.values())
        if best is None or timings["total"] < best["total"]:
            best = timings
    assert best is not None
    summary = report.summary()
    with Registry.open(ws, keys=keys) as reg:
        peer = _peer(reg)
        size = reg.log.size()
    ours = best["read_log"] + best["verify"]
    print(
        f"{summary['releases']} releases, {summary['items']} items, "
        f"{size} log entries; HTML {html.stat().st_size / 1e6:.1f} MB"
    )
    print(
        f"audit report (best of {args.runs}): total {best['total']:.2f} s = read log "
        f"{best['read_log']:.2f} s + verify {best['verify']:.2f} s + render {best['render']:.2f} s"
    )
    print(
        f"peer (lineage per version + per-entry verify and inclusion proof): {peer:.2f} s "
        f"for read + verify; ratio peer / ours = {peer / ours:.1f}x"
    )
    print(f"target < 10 s: {'met' if best['total'] < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()

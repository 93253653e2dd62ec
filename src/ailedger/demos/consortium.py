"""``ailedger demo consortium``: a cold chain shared by three organisations, for real.

On the loopback interface, in one directory per organisation: a log operator runs ``ailedger
serve``; two witness organisations each run ``ailedger witness serve`` with their own key and
state, and the service publishes a checkpoint only with both cosignatures (``--witness
URL=VKEY`` x2, ``--witness-threshold 2``). Who may submit is on-chain membership
(``--membership chain``): the operator, the chain's admin, deploys the contracts on the
service's embedded chain through its ``/rpc`` and creates the three organisations, each naming
its party as first admin; each party joins with its own key (accepting the invitation in its
own transaction, through the same ``/rpc``); the demo reads back from the chain who is a member
of which organisation, and an outsider's submission is refused (403). A manufacturer, a
shipper and a retailer, each with its own workspace and encrypted keystore, fingerprint the
cold-chain
sensor batches they recorded (:mod:`ailedger.oracle.coldchain`: 15 shipments of 4 batches,
a few with a cooling failure, batch 42 among them) and submit signed dataset statements over
HTTP. The shipper trains an IsolationForest, logs the model statement, refuses a tampered copy,
checks the model against its logged statement before loading it, checks every batch file it
scores against its logged statement, and submits a signed anomaly flag
(:mod:`ailedger.attest.flags`) per flagged batch; the manufacturer and the retailer each sign an
acknowledgement naming the flag's entry. The retailer fetches receipts for batch 42's statement
and flag, the service is stopped, and the retailer proves offline (log key, two cosignatures,
inclusion, the file's sha256) that batch 42 was flagged and that its copy is byte-identical to
the recorded file; a copy with one byte changed fails. The service restarts on the same
workspace (same size and root: durable) and an auditor, holding only public keys, queries the
whole trail of one shipment (``GET /v1/entries?subject=``) and checks every entry against its
verified mirror of the log.

Every claim printed is read back from the log or the served data and checked
(:class:`~ailedger.demos._claims.Claims`: :class:`~ailedger.demos._claims.ClaimFailed`, exit
1, otherwise). Every child process is stopped by its PID in a ``finally``. The demos layer sits
beside the service package, not above it, so the caller injects the service client
(:data:`Connect`; the CLI passes :class:`ailedger.service.remote.RemoteLog`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ailedger.attest import statements
from ailedger.attest.flags import AcknowledgementPredicate, AnomalyFlagPredicate
from ailedger.attest.predicates import DatasetPredicate, EventLink, ModelPredicate
from ailedger.chain import connect_rpc, deploy_contracts
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.membership import Membership, org_id
from ailedger.demos._children import Child, Children, alive
from ailedger.demos._claims import Claims
from ailedger.demos._steps import DEMO_PASSWORD, DemoResult, Step, expect_rejection
from ailedger.demos._trail import (
    RECEIPT_WAIT_S,
    Connect,
    LogService,
    acknowledgements,
    audit_trail,
    link,
    sha256_of,
    statement_at,
    synced,
    verify_offline,
)
from ailedger.fingerprint import dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Ed25519Signer, Keystore, Secp256k1Signer
from ailedger.log import (
    AnyNoteKey,
    cosigner_for,
    known_keys_check,
    note_key_for,
    vkey,
)
from ailedger.oracle.coldchain import (
    ColdChainBatch,
    load_verified,
    train_anomaly_model,
    write_cold_chain_batches,
)
from ailedger.workspace import Workspace

__all__ = [
    "EXCURSIONS",
    "ORIGIN",
    "PARTIES",
    "PID_FILE",
    "PROVEN_BATCH",
    "SHIPMENTS",
    "WITNESSES",
    "Connect",
    "LogService",
    "Party",
    "run_consortium",
]

ORIGIN = "consortium.demo/cold-chain"
SHIPMENTS = 15
#: Batches with a cooling failure (1-based); the shipper's model must flag exactly these.
EXCURSIONS = (9, 27, 42, 60)
#: The batch the retailer proves was flagged (a shipper's batch handed over on delivery).
PROVEN_BATCH = 42
#: Party -> organisation.
PARTIES = {
    "manufacturer": "Frostline Pharma",
    "shipper": "Polar Freight",
    "retailer": "CityCare Pharmacies",
}
#: Witness directory -> organisation.
WITNESSES = {"witness-nordic": "Nordic Assurance", "witness-harbour": "Harbour Authority"}
OPERATOR = "ColdChain Consortium"
AUDITOR = "Ledger Audit"
SEED = 2026
#: Every child PID, one line each ("PID NAME") as it starts, in the demo's directory.
PID_FILE = "children.pids"


@dataclass
class Party:
    """A member organisation: its workspace, key and client of the log service."""

    role: str
    org: str
    workspace: Workspace
    signer: Secp256k1Signer
    service: LogService | None = None
    batches: list[ColdChainBatch] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.signer.address

    @property
    def root(self) -> Path:
        return self.workspace.root


def _password_file(root: Path) -> Path:
    """The demo password in a file only its owner reads (``--password-file`` of a child)."""
    path = root / ".ailedger" / "password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(DEMO_PASSWORD + "\n")
    return path


def run_consortium(
    workdir: Path, connect: Connect, *, on_step: Callable[[Step], None] | None = None
) -> DemoResult:
    """The whole consortium example (module docstring) in ``workdir``; every child process is
    stopped by PID before this returns or raises."""
    from ailedger._extras import require_sklearn

    require_sklearn("the shipper's anomaly model is a scikit-learn IsolationForest")
    result = DemoResult(workdir)
    claims = Claims()
    workdir.mkdir(parents=True, exist_ok=True)
    children = Children(workdir / PID_FILE)

    def record(step: Step) -> None:
        result.steps.append(step)
        if on_step is not None:
            on_step(step)

    try:
        _run(workdir, connect, record, claims, children, result)
    finally:
        children.stop_all()
        result.summary["pids"] = list(children.pids)
    left = [pid for pid in children.pids if alive(pid)]
    claims.check(not left, f"every child process is gone (still alive: {left})")
    record(
        Step(
            "every process stopped by PID",
            f"{len(children.pids)} child processes started and stopped "
            f"(PIDs {', '.join(map(str, children.pids))}); none is left",
            True,
        )
    )
    result.summary["claims_checked"] = claims.checked
    return result


def _run(
    workdir: Path,
    connect: Connect,
    record: Callable[[Step], None],
    claims: Claims,
    children: Children,
    result: DemoResult,
) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    # --- 1. organisations, workspaces and keys ------------------------------------------------
    log_signer = Secp256k1Signer.generate()
    operator = Workspace.init(workdir / "log-operator", origin=ORIGIN, log_key="log")
    witness_ws = {d: Workspace.init(workdir / d, origin=f"{d}.demo") for d in WITNESSES}
    witness_signers = {d: Ed25519Signer.generate() for d in WITNESSES}
    parties = {
        role: Party(role, org, Workspace.init(workdir / role), Secp256k1Signer.generate())
        for role, org in PARTIES.items()
    }
    auditor = Workspace.init(workdir / "auditor")
    stores: list[tuple[Keystore, str, Ed25519Signer | Secp256k1Signer, str]] = [
        (Keystore(operator.keys_dir), "log", log_signer, OPERATOR)
    ]
    stores += [
        (Keystore(witness_ws[d].keys_dir), "witness", witness_signers[d], org)
        for d, org in WITNESSES.items()
    ]
    stores += [(Keystore(p.workspace.keys_dir), p.role, p.signer, p.org) for p in parties.values()]

    def store(item: tuple[Keystore, str, Ed25519Signer | Secp256k1Signer, str]) -> None:
        keystore, name, signer, org = item
        keystore.add(name, signer, DEMO_PASSWORD, org=org)

    with ThreadPoolExecutor(max_workers=2) as pool:  # each is a deliberately slow scrypt
        list(pool.map(store, stores))
    audit_keys = Keystore(auditor.keys_dir)
    for p in parties.values():
        audit_keys.import_public(p.role, p.signer.public_key.to_pem().encode(), org=p.org)
    log_key = note_key_for(ORIGIN, log_signer.public_key)
    record(
        Step(
            "organisations, workspaces and keys",
            f"{len(stores)} keys in {len(stores)} encrypted keystores: log operator ({OPERATOR}),"
            f" witnesses {', '.join(WITNESSES.values())}, "
            + ", ".join(f"{p.role} ({p.org})" for p in parties.values())
            + f"; the auditor ({AUDITOR}) holds public keys only",
            True,
            data={"workspaces": sorted(p.name for p in workdir.iterdir())},
        )
    )

    # --- 2. two witnesses, then the log service -----------------------------------------------
    witnesses: dict[str, Child] = {}
    witness_keys: list[AnyNoteKey] = []
    for d, org in WITNESSES.items():
        name = f"{d}.demo/witness"
        ws = witness_ws[d]
        child = Child(
            d,
            ws.root,
            ["witness", "serve", "--key", "witness", "--name", name, "--state",
             str(ws.root / "state"), "--log", f"{ORIGIN}={vkey(log_key)}"],
            _password_file(ws.root),
        )  # fmt: skip
        children.start(child)
        expected = cosigner_for(name, witness_signers[d].public_key)
        claims.check(
            child.ready.get("vkey") == vkey(expected),
            f"witness {org} serves with its own key ({vkey(expected)})",
        )
        witnesses[d] = child
        witness_keys.append(expected)
    record(
        Step(
            "two witness organisations start `ailedger witness serve`",
            "; ".join(
                f"{WITNESSES[d]} at {c.url} (PID {c.pid}, state in {d}/state)"
                for d, c in witnesses.items()
            ),
            True,
        )
    )
    serve_args = ["serve", "--membership", "chain", "--checkpoint-interval-ms", "50"]
    for c in witnesses.values():
        serve_args += ["--witness", f"{c.url}={c.ready['vkey']}"]
    serve_args += ["--witness-threshold", "2"]
    service = Child("log-service", operator.root, serve_args, _password_file(operator.root))
    children.start(service)
    claims.check(
        service.ready.get("log_key") == vkey(log_key) and service.ready.get("origin") == ORIGIN,
        f"the service signs {ORIGIN} with the operator's log key",
    )
    for p in parties.values():
        known = known_keys_check([q.signer.public_key for q in parties.values()])
        p.service = connect(service.url, p.workspace.path / "remote", vkey(log_key), known)
    rpc = service.ready.get("chain", {}).get("rpc")
    claims.check(
        service.ready.get("membership") == "chain" and isinstance(rpc, str),
        "the service checks membership on-chain and serves its embedded chain at /rpc",
    )
    record(
        Step(
            "the log operator starts `ailedger serve`",
            f"{ORIGIN} at {service.url} (PID {service.pid}); its embedded chain served at {rpc}; "
            "membership: on-chain (every signer a member of an organisation, read from that "
            "chain); a checkpoint is published only with 2 of 2 witness cosignatures",
            True,
        )
    )
    assert isinstance(rpc, str)
    membership = _organisations(operator, log_signer, parties, rpc, claims, record)
    result.summary["membership"] = {
        role: {"org": org, "address": parties[role].address} for role, org in membership.items()
    }

    # --- 3. sensor batches, fingerprinted and submitted by their owners ---------------------
    shared = workdir / "generated"
    batches = write_cold_chain_batches(
        shared, shipments=SHIPMENTS, excursions=EXCURSIONS, seed=SEED
    )
    manifests: dict[str, Path] = {}
    for shipment in sorted({b.shipment for b in batches}):
        doc = {
            "shipment": shipment,
            "product": "insulin pens, 2-8 °C",
            "parties": {role: p.org for role, p in parties.items()},
            "batches": [b.name for b in batches if b.shipment == shipment],
        }
        manifests[shipment] = shared / f"shipment-{shipment}.json"
        manifests[shipment].write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    by_number = {b.number: b for b in batches}
    entries: dict[int, int] = {}  # batch number -> log index of its dataset statement
    for p in parties.values():
        mine = [b for b in batches if b.party == p.role]
        folder = p.root / "batches"
        folder.mkdir()
        for b in mine:
            own = folder / b.name
            shutil.copyfile(b.path, own)
            fp = dataset.fingerprint_dataset(own, secret=None, format="csv")
            predicate = DatasetPredicate(
                root=fp.root.hex(),
                size=fp.size,
                scheme=fp.scheme,
                format="csv",
                location=f"urn:cold-chain:{b.shipment}:{b.stage}",
            )
            subjects = [
                statements.subject_from_file(own),
                statements.subject_from_file(manifests[b.shipment]),
            ]
            envelope = statements.attest(predicate, subjects, [p.signer])
            assert p.service is not None
            entries[b.number] = p.service.append(envelope.to_json()).index
        p.batches = mine
    record(
        Step(
            "each party fingerprints and submits its own sensor batches",
            f"{len(batches)} batches of {SHIPMENTS} shipments (cold store, two truck legs, "
            "store): "
            + ", ".join(f"{p.role} {len(p.batches)}" for p in parties.values())
            + "; each a signed dataset statement naming the file and its shipment manifest, "
            "submitted over HTTP",
            True,
        )
    )

    outsider = Secp256k1Signer.generate()
    size = len(entries)
    stray = statements.attest(
        DatasetPredicate(root="00" * 32, size=0, scheme="csv", format="csv"),
        [statements.subject_from_file(manifests[by_number[PROVEN_BATCH].shipment])],
        [outsider],
    )
    outside = parties["retailer"].service  # the outsider's envelope, over any client
    assert outside is not None
    rejected, why = expect_rejection(lambda: outside.append(stray.to_json()))
    claims.check(
        rejected and "HTTP 403" in why and outsider.address.lower() in why,
        f"an outsider's submission is refused with 403 naming it ({why})",
    )
    record(
        Step(
            "an outsider (no organisation on-chain) submits a statement",
            f"{outsider.address}: {why}",
            rejected,
            True,
        )
    )

    # --- 4. the shipper's anomaly model -----------------------------------------------------
    shipper = parties["shipper"]
    assert shipper.service is not None
    model_dir = train_anomaly_model(shipper.root / "anomaly-model", seed=7)
    fp_model = fingerprint_model(model_dir, tensors=False)
    model_envelope = statements.attest(
        ModelPredicate.from_manifest(fp_model.to_dict()),
        [statements.subject_from_digest(f"sha256:{fp_model.subject_digest.hex()}", "anomaly")],
        [shipper.signer],
    )
    model_index = shipper.service.append(model_envelope.to_json()).index
    claims.check(
        model_index == size,
        f"the log grew only by accepted submissions (entry {model_index}, expected {size})",
    )
    record(
        Step(
            "the shipper trains an IsolationForest and logs the model statement",
            f"sha256:{fp_model.subject_digest.hex()[:16]}… (entry {model_index})",
            True,
            data={"model_digest": fp_model.subject_digest.hex(), "model_entry": model_index},
        )
    )
    with synced(shipper.service, model_index + 1) as log:
        logged = statement_at(log, model_index, [shipper.signer.public_key])
        logged_digest = logged.subject[0].digest["sha256"]
        model_link = link(log, model_index)
    tampered = shipper.root / "anomaly-model-tampered"
    shutil.copytree(model_dir, tampered)
    raw = bytearray((tampered / "model.pkl").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tampered / "model.pkl").write_bytes(bytes(raw))
    rejected, why = expect_rejection(lambda: load_verified(tampered, logged_digest))
    record(Step("a tampered copy of the model, before loading", why, rejected, True))
    claims.check(rejected, "a model file with one flipped bit is refused before loading")
    model = load_verified(model_dir, logged_digest)
    claims.check(
        model.subject_digest == fp_model.subject_digest.hex(),
        "the model loaded is the one whose statement the log holds",
    )
    record(
        Step(
            "the shipper checks the model against its logged statement, then loads it",
            f"re-fingerprinted: sha256:{model.subject_digest[:16]}… = the subject of entry "
            f"{model_index} (signature by the shipper verified in the verified mirror)",
            True,
        )
    )

    # --- 5. every batch checked against its statement, scored, flags submitted --------------
    inbox = shipper.root / "inbox"
    inbox.mkdir()
    for p in parties.values():  # the others hand over copies of their batch files
        for b in p.batches:
            shutil.copyfile(p.root / "batches" / b.name, inbox / b.name)
    member_keys = {p.role: p.signer.public_key for p in parties.values()}
    scores: dict[int, float] = {}
    links: dict[int, EventLink] = {}
    with synced(shipper.service, model_index + 1) as log:
        for b in batches:
            stmt = statement_at(log, entries[b.number], [member_keys[b.party]])
            claims.check(
                sha256_of(inbox / b.name) in {f"sha256:{s.digest['sha256']}" for s in stmt.subject},
                f"{b.name} as handed over is the file its {b.party} logged",
            )
            scores[b.number] = model.score(inbox / b.name)
            links[b.number] = link(log, entries[b.number])
    flagged = sorted(n for n, s in scores.items() if model.flags(s))
    flag_index: dict[int, int] = {}
    for n in flagged:
        b = by_number[n]
        flag = AnomalyFlagPredicate(
            dataset_digest=sha256_of(inbox / b.name),
            dataset_entry=links[n],
            model_digest=f"sha256:{model.subject_digest}",
            model_entry=model_link,
            score=scores[n],
            threshold=model.threshold,
            detector="IsolationForest.score_samples < threshold",
            time=datetime.now(UTC),
        )
        subjects = [
            statements.subject_from_file(inbox / b.name),
            statements.subject_from_file(manifests[b.shipment]),
        ]
        envelope = statements.attest(flag, subjects, [shipper.signer])
        flag_index[n] = shipper.service.append(envelope.to_json()).index
    claims.check(
        flagged == sorted(EXCURSIONS),
        f"the model flags exactly the batches with a cooling failure {list(EXCURSIONS)}, "
        f"not {flagged}",
    )
    claims.check(PROVEN_BATCH in flag_index, f"batch {PROVEN_BATCH} was flagged")
    record(
        Step(
            "the shipper checks each batch against its logged statement, scores and flags",
            f"{len(batches)} files match their statements; flagged {len(flagged)}: "
            + ", ".join(
                f"batch {n} ({by_number[n].party}, score {scores[n]:.3f} < "
                f"{model.threshold:.3f}, entry {flag_index[n]})"
                for n in flagged
            ),
            True,
            data={"flagged": flagged, "flag_entries": flag_index},
        )
    )

    # --- 6. acknowledgements -----------------------------------------------------------------
    ack_index: dict[str, dict[int, int]] = {}
    for role in ("manufacturer", "retailer"):
        party = parties[role]
        assert party.service is not None
        ack_index[role] = {}
        with synced(party.service, max(flag_index.values()) + 1) as log:
            found = log.query(predicate_type=AnomalyFlagPredicate.PREDICATE_TYPE, limit=None)
            claims.check(
                sorted(e.index for e in found) == sorted(flag_index.values()),
                f"the {role}'s verified mirror holds the {len(flag_index)} flags",
            )
            pending = []
            batch_of = {i: n for n, i in entries.items()}
            read_back = []
            for entry in found:
                stmt = statement_at(log, entry.index, [shipper.signer.public_key])
                logged_flag = stmt.typed_predicate()
                claims.check(
                    isinstance(logged_flag, AnomalyFlagPredicate),
                    f"entry {entry.index} is an anomaly flag",
                )
                assert isinstance(logged_flag, AnomalyFlagPredicate)
                read_back.append(batch_of.get(logged_flag.dataset_entry.log_index))
                ack = AcknowledgementPredicate(
                    entry=link(log, entry.index),
                    acknowledged_type=AnomalyFlagPredicate.PREDICATE_TYPE,
                    role=role,
                    comment="flag received; batch quarantined pending review",
                    time=datetime.now(UTC),
                )
                pending.append((entry.index, statements.attest(ack, stmt.subject, [
                    party.signer]).to_json()))  # fmt: skip
        claims.check(
            None not in read_back and sorted(n for n in read_back if n is not None) == flagged,
            f"the flags in the {role}'s mirror, signed by the shipper, name batches {flagged}",
        )
        for index, envelope_bytes in pending:
            ack_index[role][index] = party.service.append(envelope_bytes).index
    record(
        Step(
            "the manufacturer and the retailer acknowledge each flag",
            f"{sum(len(v) for v in ack_index.values())} signed acknowledgements, each naming "
            "the flag's entry (index and leaf hash) after checking the shipper's signature",
            True,
        )
    )

    # --- 7. the retailer's receipts, then the service stops ---------------------------------
    retailer = parties["retailer"]
    assert retailer.service is not None
    evidence = retailer.root / "evidence"
    evidence.mkdir()
    held = retailer.root / "batches" / f"batch-{PROVEN_BATCH:03d}.csv"
    shutil.copyfile(inbox / held.name, held)  # handed over with the delivery
    flag_receipt = retailer.service.receipt(flag_index[PROVEN_BATCH], wait_s=RECEIPT_WAIT_S)
    batch_receipt = retailer.service.receipt(entries[PROVEN_BATCH], wait_s=RECEIPT_WAIT_S)
    flag_path = flag_receipt.write(evidence / "flag.receipt.json")
    batch_path = batch_receipt.write(evidence / f"{held.name}.receipt.json")
    last = max(i for acks in ack_index.values() for i in acks.values())
    with synced(retailer.service, last + 1) as log:
        size_before, root_before = log.size(), log.root()
        acked = acknowledgements(claims, log, {r: p.signer.public_key for r, p in parties.items()})
    claims.check(
        acked == {i: ["manufacturer", "retailer"] for i in flag_index.values()},
        "the log holds an acknowledgement of every flag by the manufacturer and the retailer",
    )
    record(
        Step(
            "the retailer fetches receipts for batch 42's statement and its flag",
            f"entries {entries[PROVEN_BATCH]} and {flag_index[PROVEN_BATCH]}, written to "
            f"retailer/evidence/ (the log holds {size_before} entries)",
            True,
        )
    )
    pid = service.pid
    code = service.stop()
    assert pid is not None
    claims.check(not alive(pid), f"the log service (PID {pid}) is stopped")
    how = "on SIGTERM" if code == -signal.SIGTERM else f"with {code}"
    record(Step("the log service is stopped by PID", f"PID {pid} exited {how}", True))

    # --- 8. offline proof ----------------------------------------------------------------------
    offline = verify_offline(
        claims,
        PROVEN_BATCH,
        flag_path,
        batch_path,
        held,
        log_key,
        witness_keys,
        shipper.signer.public_key,
    )
    record(
        Step(
            "the retailer proves offline: batch 42 was flagged, its file is byte-identical",
            f"flag entry {offline['flag_entry']} and batch entry {offline['batch_entry']}: log "
            f"signature, {offline['cosignatures']} witness cosignatures "
            f"({', '.join(offline['witnesses'])}), inclusion; the flag (signed by the shipper, "
            f"score {offline['score']:.3f}) names batch entry {offline['batch_entry']} and "
            f"sha256:{offline['sha256'][:16]}…, the sha256 of the retailer's own file",
            True,
            data=offline,
        )
    )
    changed = evidence / f"{held.stem}-one-byte-changed.csv"
    data = bytearray(held.read_bytes())
    at = data.index(b"\n") + 25  # a digit in the first reading
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    changed.write_bytes(bytes(data))
    rejected, why = expect_rejection(
        lambda: verify_offline(
            Claims(),
            PROVEN_BATCH,
            flag_path,
            batch_path,
            changed,
            log_key,
            witness_keys,
            shipper.signer.public_key,
        )
    )
    record(Step("the same proof with a one-byte-changed batch file", why, rejected, True))
    claims.check(rejected, "a batch file with one byte changed fails the offline check")

    # --- 9. restart, then the auditor's trail of one shipment --------------------------------
    children.start(service)
    claims.check(
        service.ready.get("size") == size_before,
        f"the restarted service serves the {size_before} entries it had",
    )
    audit_known = known_keys_check([k.public_key for k in Keystore(auditor.keys_dir).list_keys()])
    audit_service = connect(service.url, auditor.path / "remote", vkey(log_key), audit_known)
    trail = audit_trail(
        claims,
        audit_service,
        manifests[by_number[PROVEN_BATCH].shipment],
        Keystore(auditor.keys_dir),
        witness_keys,
        root_before,
        size_before,
    )
    record(
        Step(
            f"the service restarts (PID {service.pid}); the auditor queries shipment "
            f"{by_number[PROVEN_BATCH].shipment}'s trail",
            f"same log after the restart ({size_before} entries, same root); "
            f"{len(trail)} entries by subject, each checked against the auditor's verified "
            "mirror (checkpoint with 2 cosignatures) and its signer's public key:\n    "
            + "\n    ".join(f"#{t['index']} {t['type']} by {t['org']}: {t['what']}" for t in trail),
            True,
            data={"trail": trail},
        )
    )
    result.summary.update(
        {
            "service_url": service.url,
            "origin": ORIGIN,
            "log_key": vkey(log_key),
            "witnesses": [vkey(k) for k in witness_keys],
            "batches": len(batches),
            "flagged": flagged,
            "proven_batch": PROVEN_BATCH,
            "offline": offline,
            "trail": trail,
            "log_entries": size_before,
        }
    )


def _organisations(
    operator: Workspace,
    admin: Secp256k1Signer,
    parties: dict[str, Party],
    rpc: str,
    claims: Claims,
    record: Callable[[Step], None],
) -> dict[str, str]:
    """Through the service's ``/rpc``: the operator (``admin``, the chain's admin) deploys the
    contracts and creates each party's organisation naming the party its first admin; each
    party joins by accepting in its own transaction. Read back from the chain: who is a member
    of which organisation (role -> organisation)."""
    with connect_rpc(rpc) as chain:
        for account in [admin.address, *(p.address for p in parties.values())]:
            chain.fund(account, 10**18)  # the embedded chain's development faucet
        deployment = deploy_contracts(chain, admin)
        DeploymentBook(operator.path / DEPLOYMENTS_FILE).put(deployment)  # serve reads it
        members = Membership(chain, deployment.open(chain, "Membership"))
        for p in parties.values():
            members.create_org(p.org, p.address, signer=admin)  # an invitation to its founder
        for p in parties.values():
            members.accept(p.org, signer=p.signer)  # its own key, its own transaction
        names = {org_id(p.org): p.org for p in parties.values()}
        found: dict[str, str] = {}
        for role, p in parties.items():
            oid = members.org_of(p.address)
            org = "(none)" if oid is None else names.get(oid, "0x" + oid.hex())
            found[role] = org
            admins = [m.account.lower() for m in members.members(p.org) if m.role == "admin"]
            claims.check(
                org == p.org and admins == [p.address.lower()],
                f"on-chain, the {role} {p.address} is a member and the admin of {p.org}",
            )
        contract = members.address
        block = chain.block_number()
    record(
        Step(
            "the operator deploys Membership through the service's /rpc; each party joins",
            f"Membership at {contract} (chain {deployment.chain_id}, admin {admin.address}); "
            "3 organisations created, each founder invited; each party accepted with its own "
            f"key. Read back from the chain at block {block}: "
            + "; ".join(f"{parties[r].address} ({r}) in {o}" for r, o in found.items()),
            True,
            data={"membership": contract, "organisations": found},
        )
    )
    return found

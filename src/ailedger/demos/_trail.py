"""The consortium demo's checks: the retailer's offline proof and the auditor's trail.

:func:`verify_offline` is what the retailer runs with the service stopped: both receipts
(the flagged batch's dataset statement and its anomaly flag) against the log key and both
witnesses' keys (2 cosignatures), the flag's signer and what it names, and the sha256 of the
batch file the retailer holds. :func:`audit_trail` is the auditor's: the service's answer to a
query by a shipment manifest's digest, each entry checked against the auditor's mirror of the
log (verified against the signed checkpoint) and its signer's public key, and the answer
checked complete against that mirror. Both check every claim they return
(:class:`~ailedger.demos._claims.Claims`).

The party's handle on the service is :class:`LogService` (what
:class:`ailedger.service.remote.RemoteLog` offers): the demos layer sits beside the service
package, not above it, so the caller injects it (:data:`Connect`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ailedger.attest import dsse, statements
from ailedger.attest.flags import AcknowledgementPredicate, AnomalyFlagPredicate
from ailedger.attest.predicates import DatasetPredicate, EventLink
from ailedger.attest.statements import Statement
from ailedger.demos._claims import Claims
from ailedger.errors import AiledgerError, NodeUnavailable
from ailedger.identity.keys import Keystore, PublicKey
from ailedger.log import (
    AnyNoteKey,
    Checkpoint,
    Receipt,
    SignatureCheck,
    SignedNote,
    TransparencyLog,
    verify_receipt,
)
from ailedger.log.receipt import sha256_file

__all__ = [
    "RECEIPT_WAIT_S",
    "Connect",
    "LogService",
    "QueryClient",
    "Submission",
    "acknowledgements",
    "audit_trail",
    "cosigned_by",
    "link",
    "sha256_of",
    "statement_at",
    "synced",
    "verify_offline",
]

#: How long a party waits for a published checkpoint to cover what it submitted (a guard).
RECEIPT_WAIT_S = 60.0


class Submission(Protocol):
    @property
    def index(self) -> int: ...


class QueryClient(Protocol):
    def query(
        self,
        *,
        subject: str | None = ...,
        predicate_type: str | None = ...,
        signer: str | None = ...,
        limit: int = ...,
    ) -> list[dict[str, Any]]: ...

    def checkpoint(self) -> str: ...


class LogService(Protocol):
    """A party's handle on the log service (what :class:`ailedger.service.remote.RemoteLog`
    offers): submit, receipts, and a mirror verified against the signed checkpoint."""

    @property
    def client(self) -> QueryClient: ...

    def open(self) -> TransparencyLog: ...

    def append(self, envelope: bytes) -> Submission: ...

    def receipt(self, index: int, *, wait_s: float = ...) -> Receipt: ...


#: ``connect(url, mirrors_dir, trusted_log_key, check_signature)``: a party's LogService.
Connect = Callable[[str, Path, str, SignatureCheck], LogService]


def link(log: TransparencyLog, index: int) -> EventLink:
    return EventLink(log_index=index, leaf_hash=log.get(index).leaf_hash.hex())


def statement_at(log: TransparencyLog, index: int, trusted: Sequence[PublicKey]) -> Statement:
    """The statement of entry ``index`` of a verified mirror, its signature checked against
    ``trusted`` (the party expected to have signed it)."""
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    return statements.verify_statement(envelope, trusted).statement


def synced(service: LogService, size: int) -> TransparencyLog:
    """The party's verified mirror once a published checkpoint covers ``size`` entries (the
    service publishes a checkpoint once both witnesses cosigned it)."""
    deadline = time.monotonic() + RECEIPT_WAIT_S
    while True:
        log = service.open()
        if log.size() >= size:
            return log
        log.close()
        if time.monotonic() > deadline:
            raise NodeUnavailable(f"no checkpoint of {size} entries in {RECEIPT_WAIT_S:g} s")
        time.sleep(0.05)


def sha256_of(path: Path) -> str:
    return "sha256:" + sha256_file(path)


def cosigned_by(note: SignedNote, witnesses: Sequence[AnyNoteKey]) -> list[str]:
    good = []
    for key in witnesses:
        try:
            note.verify_one(key)
        except AiledgerError:  # a missing or bad cosignature is simply not counted
            continue
        good.append(key.name)
    return good


def acknowledgements(
    claims: Claims, log: TransparencyLog, members: dict[str, PublicKey]
) -> dict[int, list[str]]:
    """Every acknowledgement in a verified mirror: acknowledged entry -> the roles that
    acknowledged it (sorted), each signed by the member of the role it names."""
    role_of = {m.keyid.lower(): role for role, m in members.items()}
    acked: dict[int, list[str]] = {}
    for entry in log.query(predicate_type=AcknowledgementPredicate.PREDICATE_TYPE, limit=None):
        role = role_of.get(entry.signers[0].lower(), "") if len(entry.signers) == 1 else ""
        claims.check(role in members, f"entry {entry.index} is signed by one member")
        stmt = statement_at(log, entry.index, [members[role]])
        ack = stmt.typed_predicate()
        claims.check(
            isinstance(ack, AcknowledgementPredicate) and ack.role == role,
            f"entry {entry.index} is an acknowledgement by the {role} it names",
        )
        assert isinstance(ack, AcknowledgementPredicate)
        acked.setdefault(ack.entry.log_index, []).append(role)
    return {i: sorted(roles) for i, roles in acked.items()}


def verify_offline(
    claims: Claims,
    number: int,
    flag_receipt: Path,
    batch_receipt: Path,
    held: Path,
    log_key: AnyNoteKey,
    witnesses: Sequence[AnyNoteKey],
    shipper: PublicKey,
) -> dict[str, Any]:
    """The retailer's offline check of batch ``number`` (the file ``held``): both receipts
    against the log key and 2 of ``witnesses``, the flag's signer (``shipper``) and what it
    names, the held file's sha256."""
    flag = Receipt.load(flag_receipt)
    batch = Receipt.load(batch_receipt)
    digest = sha256_file(held)
    checked = verify_receipt(
        batch, log_key=log_key, witnesses=witnesses, witness_threshold=2, artifact_sha256=digest
    )
    flag_checked = verify_receipt(
        flag, log_key=log_key, witnesses=witnesses, witness_threshold=2, artifact_sha256=digest
    )
    stmt = statements.verify_statement(flag.envelope, [shipper])
    predicate = stmt.predicate
    claims.check(
        isinstance(predicate, AnomalyFlagPredicate),
        "the flag receipt holds an anomaly flag signed by the shipper",
    )
    assert isinstance(predicate, AnomalyFlagPredicate)
    claims.check(
        predicate.dataset_entry.log_index == checked.index
        and predicate.dataset_digest == f"sha256:{digest}",
        f"the flag names batch {number}'s entry and file",
    )
    claims.check(predicate.score < predicate.threshold, "the flag's score is below its threshold")
    cosigners = cosigned_by(flag.proof.checkpoint, witnesses)
    claims.check(len(cosigners) == 2, f"the checkpoint carries 2 cosignatures, not {cosigners}")
    return {
        "flag_entry": flag_checked.index,
        "batch_entry": checked.index,
        "tree_size": flag_checked.tree_size,
        "cosignatures": len(cosigners),
        "witnesses": cosigners,
        "sha256": digest,
        "score": predicate.score,
        "threshold": predicate.threshold,
    }


def audit_trail(
    claims: Claims,
    service: LogService,
    manifest: Path,
    keys: Keystore,
    witnesses: Sequence[AnyNoteKey],
    root_before: bytes,
    size_before: int,
) -> list[dict[str, Any]]:
    """The auditor's trail of one shipment: the service's answer to a query by the
    manifest's digest, every entry checked against the auditor's verified mirror."""
    subject = sha256_of(manifest)
    note = SignedNote.parse(service.client.checkpoint())
    cosigners = cosigned_by(note, witnesses)
    claims.check(len(cosigners) == 2, "the served checkpoint carries both witnesses' cosignatures")
    answer = service.client.query(subject=subject)
    infos = keys.list_keys()
    orgs = {k.public_key.keyid.lower(): (k.name, k.org or k.name) for k in infos}
    trail = []
    with service.open() as log:
        claims.check(
            Checkpoint.parse(log.latest_checkpoint().text).size >= size_before
            and log.root(size_before) == root_before,
            "the restarted service's log extends the one the retailer saw (same root)",
        )
        mirrored = [e.index for e in log.query(subject=subject, limit=None)]
        claims.check(
            [e.get("index") for e in answer] == mirrored,
            f"the service's answer for {subject[:20]}… is complete and in order",
        )
        for doc in answer:
            entry = log.get(int(doc["index"]))
            claims.check(
                doc.get("leaf_hash") == entry.leaf_hash.hex(),
                f"entry {entry.index} as served is the entry the checkpoint covers",
            )
            stmt = statements.verify_statement(
                dsse.Envelope.from_json(entry.envelope), [k.public_key for k in infos]
            )
            signer = stmt.signers[0].keyid.lower()
            role, org = orgs[signer]
            predicate = stmt.predicate
            if isinstance(predicate, DatasetPredicate):
                what = f"{stmt.statement.subject[0].name} ({predicate.location})"
                kind = "batch"
            elif isinstance(predicate, AnomalyFlagPredicate):
                what = (
                    f"flags entry {predicate.dataset_entry.log_index} (score {predicate.score:.3f})"
                )
                kind = "flag"
            elif isinstance(predicate, AcknowledgementPredicate):
                what = f"acknowledges flag entry {predicate.entry.log_index}"
                kind = "ack"
            else:
                what, kind = stmt.statement.predicate_type, "other"
            trail.append(
                {"index": entry.index, "type": kind, "role": role, "org": org, "what": what}
            )
    kinds = [(str(t["type"]), str(t["role"])) for t in trail]
    claims.check(
        sorted(k for k in kinds if k[0] == "batch")
        == sorted(("batch", r) for r in ("manufacturer", "shipper", "shipper", "retailer")),
        "the shipment's trail holds its 4 batch statements, each by the party that recorded it",
    )
    flags = [t for t in trail if t["type"] == "flag"]
    claims.check(
        len(flags) == 1 and flags[0]["role"] == "shipper",
        "the trail holds one flag, by the shipper",
    )
    acks = sorted(str(t["role"]) for t in trail if t["type"] == "ack")
    claims.check(
        acks == ["manufacturer", "retailer"]
        and all(
            t["what"] == f"acknowledges flag entry {flags[0]['index']}"
            for t in trail
            if t["type"] == "ack"
        ),
        "the manufacturer and the retailer acknowledged that flag",
    )
    return trail

"""The items of an audit report: one log entry parsed, verified and summarised.

A registry's statements become :class:`AuditItem` objects here (registration, evaluation,
approval, deployment); :mod:`ailedger.audit` groups them into releases. The report reads the
predicate types registered with ``IN_AUDIT`` (:func:`audit_types`), each through its kind:
an evaluation by its :class:`~ailedger.attest.predicates.Outcome`, an approval by its
:class:`~ailedger.attest.predicates.Decision`. Entries of types not registered are not items
(the log check still covers them). An entry that no
longer parses but that the index holds (altered in place) still becomes an item, marked
``invalid``: the report fails closed instead of leaving it out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    DatasetPredicate,
    DeploymentPredicate,
    ModelPredicate,
    Predicate,
    predicate_types,
)
from ailedger.attest.statements import Statement, verify_statement
from ailedger.audit._verify import LogCheck, Verification
from ailedger.errors import AiledgerError
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.log import Entry
from ailedger.registry._index import VersionRow
from ailedger.registry._records import path_of

__all__ = [
    "AuditItem",
    "Parsed",
    "audit_types",
    "bias_status",
    "evidence_item",
    "iso",
    "parse_entry",
    "registration_item",
    "unreadable",
]


def audit_types() -> frozenset[str]:
    """The predicate types the report reads: those registered with ``IN_AUDIT``."""
    return frozenset(predicate_types("audit"))


@dataclass(frozen=True)
class AuditItem:
    """One statement in the report: what it says, where it is in the log, how it verified."""

    kind: str
    log_index: int
    logged_at: str
    summary: str
    details: dict[str, Any]
    verification: Verification

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "log_index": self.log_index,
            "logged_at": self.logged_at,
            "summary": self.summary,
            **self.details,
            "verification": self.verification.to_dict(),
        }


@dataclass(frozen=True)
class Parsed:
    """A log entry with its typed predicate, sha256 subjects and verification."""

    entry: Entry
    predicate: Predicate | None  # None: the entry no longer parses
    subjects: tuple[tuple[str, str], ...]  # (name, sha256:hex)
    verification: Verification


def iso(time_ms: int, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat(timespec=timespec)


def parse_entry(entry: Entry, trusted: Sequence[Any], check: LogCheck) -> Parsed | None:
    try:
        envelope = Envelope.from_json(entry.envelope)
    except AiledgerError:
        return None
    try:
        verified = verify_statement(envelope, trusted)
        statement, status = verified.statement, "verified"
        signers = tuple(k.keyid for k in verified.signers)
    except AiledgerError:
        try:
            statement = Statement.from_json(envelope.payload)
        except AiledgerError:
            return None
        status, signers = "invalid", tuple(s.keyid or "" for s in envelope.signatures)
    try:
        predicate = statement.typed_predicate()
    except AiledgerError:
        return None
    if predicate is None:
        return None
    subjects = tuple(
        (s.name, f"sha256:{s.digest['sha256']}") for s in statement.subject if "sha256" in s.digest
    )
    verification = Verification(
        status, signers, check.inclusion(entry.index), check.anchor(entry.index)
    )
    return Parsed(entry, predicate, subjects, verification)


def _artifact_status(row: VersionRow, pred: Predicate | None) -> str:
    path = path_of(row.location)
    if path is None or not path.exists():
        return "missing"
    try:
        if row.kind == "dataset" and path.is_file():
            # a file's data_sha256 is the SHA-256 of its bytes, whatever its format: no parse,
            # so a CSV read with --skip-lines / --no-header (not in the predicate) re-hashes too
            with path.open("rb") as f:
                digest = f"sha256:{hashlib.file_digest(f, 'sha256').hexdigest()}"
        elif row.kind == "dataset":
            fmt = pred.format if isinstance(pred, DatasetPredicate) else None
            fp = fingerprint_dataset(path, secret=None, format=fmt)
            digest = f"sha256:{fp.data_sha256}"
        else:
            digest = f"sha256:{fingerprint_model(path).subject_digest.hex()}"
    except (AiledgerError, OSError):
        return "unreadable"
    return "match" if digest == row.digest else "mismatch"


def unreadable(entry: Entry, row: VersionRow, check: LogCheck) -> Parsed:
    """A registration the index holds but whose entry no longer parses (altered in place):
    shown, failed, rather than left out."""
    verification = Verification(
        "invalid", entry.signers, check.inclusion(entry.index), check.anchor(entry.index)
    )
    return Parsed(entry, None, ((str(row.ref), row.digest),), verification)


def _item(p: Parsed, kind: str, summary: str, details: dict[str, Any]) -> AuditItem:
    return AuditItem(kind, p.entry.index, iso(p.entry.time_ms), summary, details, p.verification)


def registration_item(p: Parsed, row: VersionRow, check_artifacts: bool) -> AuditItem:
    pred = p.predicate
    details: dict[str, Any] = {"name": str(row.ref), "digest": row.digest, "location": row.location}
    if isinstance(pred, ModelPredicate) and pred.training is not None:
        details["training"] = pred.training.model_dump(mode="json", exclude_none=True)
    if row.kind == "dataset":
        details["root"] = row.root
    if isinstance(pred, DatasetPredicate):
        details.update(size=pred.size, format=pred.format)
    summary = f"registered {row.ref}" if pred is not None else "registration entry unreadable"
    item = _item(p, row.kind, summary, details)
    if check_artifacts:
        status = _artifact_status(row, pred)
        item = dataclasses.replace(
            item, verification=dataclasses.replace(item.verification, artifact=status)
        )
    return item


def evidence_item(p: Parsed, approver_org: dict[str, str | None]) -> tuple[str, AuditItem] | None:
    pred = p.predicate
    if pred is None or not pred.IN_AUDIT:
        return None
    if pred.KIND == "evaluation":
        out = pred.as_outcome()
        details = {
            "name": out.name,
            "passed": out.passed,
            "metrics": dict(out.metrics),
            "checks": list(out.checks),
            "exit_code": out.exit_code,
            "command": out.command,
            "tool": out.tool,
        }
        verdict = "passed" if out.passed else "FAILED"
        return "evaluation", _item(p, "evaluation", f"{out.name}: {verdict}", details)
    if pred.KIND == "approval":
        dec = pred.as_decision()
        signer = p.verification.signers[0] if p.verification.signers else ""
        details = {
            "role": dec.role,
            "decision": dec.decision,
            "signer": signer,
            "org": approver_org.get(signer.lower()),
            "time": None if dec.time is None else dec.time.isoformat(timespec="seconds"),
            "comment": dec.comment,
        }
        return "approval", _item(p, "approval", f"{dec.decision} as {dec.role}", details)
    if isinstance(pred, DeploymentPredicate):
        details = {
            "action": pred.action,
            "environment": pred.environment,
            "previous_version": pred.previous_version,
            "reason": pred.reason,
            "time": pred.time.isoformat(timespec="seconds"),
        }
        return "deployment", _item(p, "deployment", f"{pred.action} {pred.environment}", details)
    return None


def bias_status(evaluations: list[AuditItem], names: tuple[str, ...]) -> str:
    audits = [i for i in evaluations if str(i.details["name"]).lower() in names]
    good = [i for i in audits if i.verification.signature == "verified"]
    if good:
        return "passed" if good[-1].details["passed"] else "failed"
    return "unverified" if audits else "missing"

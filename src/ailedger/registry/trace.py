"""Trace: which model version served an environment at a time, and which model made an output.

::

    result = trace_at(registry, "prod", parse_time("2026-11-25T10:42:00Z"))
    result.ref, result.event.log_index, result.to_dict()   # with inclusion proofs
    result.verify()                                        # re-check every proof

The answer to "what served ``env`` at ``T``" is the last deploy or rollback event for ``env``
logged at or before ``T``. The proof is that event's log entry (the signed envelope) with its
inclusion proof, and the next event for ``env`` (if any) with its own, logged after ``T``:
since events are read in log order from the registry index, nothing else for ``env`` lies
between the two. Both proofs are against one tree head: the latest signed checkpoint when it
covers both entries (its note is included), else the current tree. Times are the log's
append times, not times claimed by the signer.

:func:`trace_output` finds the inference records of an input digest: a single record's
entry, or a batch entry plus the record's inclusion proof against the batch root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ailedger import merkle
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DeploymentPredicate
from ailedger.attest.statements import Statement
from ailedger.errors import NotFound, ProofInvalid
from ailedger.log import Entry, TransparencyLog
from ailedger.log.checkpoint import Checkpoint
from ailedger.merkle import InclusionProof
from ailedger.registry import _batch
from ailedger.registry._index import EventRow
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry

__all__ = ["EntryProof", "OutputTrace", "ServingTrace", "trace_at", "trace_output"]


def _iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class EntryProof:
    """A log entry and its inclusion proof in the tree of ``proof.tree_size``."""

    entry: Entry
    proof: InclusionProof

    def verify(self) -> None:
        """Raise :class:`ProofInvalid` unless the envelope hashes to the proven leaf."""
        if merkle.leaf_hash(self.entry.envelope) != self.proof.leaf_hash:
            raise ProofInvalid(
                f"entry {self.entry.index}: the envelope is not the proven leaf",
                code="trace-leaf-mismatch",
            )
        if self.proof.leaf_index != self.entry.index:
            raise ProofInvalid(
                f"entry {self.entry.index}: the proof is for another leaf",
                code="trace-leaf-mismatch",
            )
        self.proof.verify()

    def to_dict(self) -> dict[str, Any]:
        return {
            "log_index": self.entry.index,
            "logged_at": _iso(self.entry.time_ms),
            "signers": list(self.entry.signers),
            "envelope": Envelope.from_json(self.entry.envelope).to_dict(),
            "inclusion": self.proof.to_dict(),
        }


def _entry_proof(log: TransparencyLog, index: int, size: int) -> EntryProof:
    return EntryProof(log.get(index), log.inclusion_proof(index, size))


def _tree_size(log: TransparencyLog, needed: int) -> tuple[int, str | None]:
    """The latest checkpoint's size and note if it covers ``needed`` entries, else the tree."""
    try:
        note = log.latest_checkpoint()
    except NotFound:
        return log.size(), None
    size = Checkpoint.parse(note.text).size
    return (size, note.format()) if size >= needed else (log.size(), None)


@dataclass(frozen=True)
class ServingTrace:
    """What served ``env`` at ``at``, with the proof."""

    env: str
    at: datetime
    ref: VersionRef
    digest: str
    action: str
    event: EntryProof
    next_event: EntryProof | None
    checkpoint: str | None

    def verify(self) -> None:
        """Re-check the proofs, the times, and that the entries are events of ``env``."""
        at_ms = int(self.at.timestamp() * 1000)
        root = self.event.proof.root
        for item in (self.event, self.next_event):
            if item is None:
                continue
            item.verify()
            if item.proof.root != root:
                raise ProofInvalid(
                    "the two entries are proven against different tree heads",
                    code="trace-tree-head-mismatch",
                )
            statement = Statement.from_json(Envelope.from_json(item.entry.envelope).payload)
            predicate = statement.typed_predicate()
            if not isinstance(predicate, DeploymentPredicate) or predicate.environment != self.env:
                raise ProofInvalid(
                    f"entry {item.entry.index} is not an event of {self.env}",
                    code="trace-event-mismatch",
                )
        if self.event.entry.time_ms > at_ms:
            raise ProofInvalid(
                "the serving event was logged after the traced time", code="trace-time-mismatch"
            )
        if self.next_event is not None and self.next_event.entry.time_ms <= at_ms:
            raise ProofInvalid(
                "the next event was logged before the traced time", code="trace-time-mismatch"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "at": self.at.isoformat(),
            "model": str(self.ref),
            "digest": self.digest,
            "action": self.action,
            "since": _iso(self.event.entry.time_ms),
            "until": None if self.next_event is None else _iso(self.next_event.entry.time_ms),
            "event": self.event.to_dict(),
            "next_event": None if self.next_event is None else self.next_event.to_dict(),
            "tree_size": self.event.proof.tree_size,
            "root": self.event.proof.root.hex(),
            "checkpoint": self.checkpoint,
        }


def _first_event(registry: Registry, env: str) -> EventRow:
    first = registry.index.first_event(env)
    if first is None:
        known = ", ".join(registry.index.environments()) or "none"
        raise NotFound(f"nothing was ever deployed to {env!r} (environments: {known})")
    return first


def trace_at(registry: Registry, env: str, at: datetime) -> ServingTrace:
    """The version serving ``env`` at ``at`` and the proof (see the module docstring)."""
    registry.sync()
    at_ms = int(at.timestamp() * 1000)
    event = registry.index.event_at(env, at_ms)
    if event is None:
        first = _first_event(registry, env)
        raise NotFound(
            f"no deployment to {env!r} before {at.isoformat()}: the first was "
            f"{first.ref} at {_iso(first.time_ms)}"
        )
    after = registry.index.event_after(event)
    needed = 1 + (after.log_index if after is not None else event.log_index)
    size, note = _tree_size(registry.log, needed)
    return ServingTrace(
        env=env,
        at=at,
        ref=event.ref,
        digest=event.digest,
        action=event.action,
        event=_entry_proof(registry.log, event.log_index, size),
        next_event=None if after is None else _entry_proof(registry.log, after.log_index, size),
        checkpoint=note,
    )


@dataclass(frozen=True)
class OutputTrace:
    """An inference record of the input: the model, the output and the proofs."""

    input_digest: str
    output_digest: str
    ref: VersionRef
    entry: EntryProof
    position: int | None
    record_proof: InclusionProof | None

    def verify(self) -> None:
        self.entry.verify()
        if self.record_proof is not None:
            record = _batch.leaf(self.input_digest, self.output_digest)
            if merkle.leaf_hash(record) != self.record_proof.leaf_hash:
                raise ProofInvalid(
                    "the record is not the proven leaf of its batch",
                    code="inference-record-mismatch",
                )
            self.record_proof.verify()

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_digest,
            "output": self.output_digest,
            "model": str(self.ref),
            "entry": self.entry.to_dict(),
            "batch_position": self.position,
            "record_proof": None if self.record_proof is None else self.record_proof.to_dict(),
        }


def trace_output(registry: Registry, input_digest: str, *, limit: int = 100) -> list[OutputTrace]:
    """Every inference record (up to ``limit``) whose input has this digest, oldest first."""
    registry.sync()
    rows = registry.index.inferences(input_digest, limit)
    if not rows:
        raise NotFound(f"no inference record has the input {input_digest}")
    size = registry.log.size()
    out: list[OutputTrace] = []
    for log_index, position, output, ref in rows:
        entry = _entry_proof(registry.log, log_index, size)
        record_proof = None
        if position >= 0:
            statement = Statement.from_json(Envelope.from_json(entry.entry.envelope).payload)
            root = str(statement.predicate.get("batch_root"))
            _, record_proof = _batch.proof(registry.batch_dir, root, position)
        out.append(
            OutputTrace(
                input_digest,
                output,
                VersionRef.parse(ref),
                entry,
                None if position < 0 else position,
                record_proof,
            )
        )
    return out

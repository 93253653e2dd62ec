"""Trace: which model version served an environment at a time, and which model made an output.

::

    result = trace_at(registry, "prod", parse_time("2026-11-25T10:42:00Z"))
    result.ref, result.event.entry.index, result.to_dict()   # the trace document
    result.verify(require_checkpoint=True, require_links=True)  # from public data alone

The answer to "what served ``env`` at ``T``" is the deploy or rollback event ``S`` of
``env`` whose signed time is at or before ``T`` and whose next event ``N`` of ``env`` in log
order (if any) was signed after ``T``. The proof is the two log entries with their inclusion
proofs against one tree head (the latest signed checkpoint when it covers both; its note and
the log's key are included, else the current tree) and the link between them: every deploy
or rollback names the previous event of its environment (``previous``: log index and leaf
hash, :mod:`ailedger.registry._events`), so ``N`` naming ``S`` proves from the log alone
that nothing happened to ``env`` in between. :mod:`ailedger.registry._trace_proof` verifies
such a document with only the log's public data.

:func:`trace_at` also checks the links around the answer against the whole log (through the
index): that ``N`` names ``S``, that ``S`` names the event before it, and that an ``S``
claiming to be the first event of ``env`` (``previous: null``) is. A mismatch means a forked
or tampered chain and raises. A next event written before links existed is reported as
``unlinked`` (proven by the index, not by the log alone); an answer with no next event is
``open``. Times are the statements' signed times; the log's append times are shown.

:func:`trace_output` finds the inference records of an input digest: a single record's
entry, or a batch entry plus the record's inclusion proof against the batch root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ailedger import merkle
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DeploymentPredicate
from ailedger.attest.statements import Statement
from ailedger.errors import IntegrityError, NotFound, ProofInvalid
from ailedger.log import TransparencyLog, vkey
from ailedger.log.checkpoint import Checkpoint
from ailedger.merkle import InclusionProof
from ailedger.registry import _batch, _events
from ailedger.registry._index import EventRow
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry
from ailedger.registry._trace_proof import (
    TRACE_MEDIA_TYPE,
    EntryProof,
    ServingTrace,
    TraceVerification,
    event_predicate,
)

__all__ = [
    "TRACE_MEDIA_TYPE",
    "EntryProof",
    "OutputTrace",
    "ServingTrace",
    "TraceVerification",
    "trace_at",
    "trace_output",
]


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


class _Events:
    """The events of one environment, read from the index and their statements from the log."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._read: dict[int, DeploymentPredicate] = {}

    def predicate(self, event: EventRow) -> DeploymentPredicate:
        found = self._read.get(event.log_index)
        if found is None:
            found = event_predicate(self.registry.log.get(event.log_index).envelope)
            if found is None:  # the index holds deploy and rollback statements only
                raise IntegrityError(
                    f"the registry index lists entry {event.log_index} as an event of "
                    f"{event.env}, but it is not a deploy or rollback statement",
                    hint="delete the index; it is rebuilt from the log",
                )
            self._read[event.log_index] = found
        return found

    def signed(self, event: EventRow) -> datetime:
        return self.predicate(event).time

    def check_links(self, event: EventRow, after: EventRow | None) -> None:
        """The links around the answer agree with the log (see the module docstring)."""
        index = self.registry.index
        log = self.registry.log
        for item, before in ((after, event), (event, index.event_before(event))):
            if item is None:
                continue
            predicate = self.predicate(item)
            if not predicate.linked:
                continue
            if predicate.previous == _events.link(log, before):
                continue
            where = "" if before is None else f" is entry {before.log_index}"
            if predicate.previous is None:
                raise ProofInvalid(
                    f"entry {item.log_index} claims to be the first event of {item.env}, but "
                    f"the log's previous event there{where or ' exists'}",
                    hint=_FORKED,
                    code="trace-first-event-mismatch",
                )
            raise ProofInvalid(
                f"entry {item.log_index} names entry {predicate.previous.log_index} as the "
                f"previous event of {item.env}, but the log's previous event there"
                f"{where or ' is none'}",
                hint=_FORKED,
                code="trace-link-mismatch",
            )


_FORKED = "the chain of events is forked or tampered with: audit the log"


def _first_event(registry: Registry, env: str) -> EventRow:
    first = registry.index.first_event(env)
    if first is None:
        known = ", ".join(registry.index.environments()) or "none"
        raise NotFound(f"nothing was ever deployed to {env!r} (environments: {known})")
    return first


def trace_at(registry: Registry, env: str, at: datetime) -> ServingTrace:
    """The version serving ``env`` at ``at`` and the proof (see the module docstring)."""
    registry.sync()
    index = registry.index
    events = _Events(registry)
    first = _first_event(registry, env)
    event = index.event_at(env, int(at.timestamp() * 1000)) or first
    while (after := index.event_after(event)) is not None and events.signed(after) <= at:
        event = after
    while events.signed(event) > at:
        before = index.event_before(event)
        if before is None:
            raise NotFound(
                f"no deployment to {env!r} before {at.isoformat()}: the first was "
                f"{first.ref}, signed at {events.signed(first).isoformat()}"
            )
        event = before
    after = index.event_after(event)
    events.check_links(event, after)
    needed = 1 + (after.log_index if after is not None else event.log_index)
    size, note = _tree_size(registry.log, needed)
    key = registry.log.log_key() if note is not None else None
    return ServingTrace(
        env=env,
        at=at,
        ref=event.ref,
        digest=event.digest,
        action=event.action,
        event=_entry_proof(registry.log, event.log_index, size),
        next_event=None if after is None else _entry_proof(registry.log, after.log_index, size),
        checkpoint=note,
        log_key=None if key is None else vkey(key),
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
            # The batch's root and size are the ones its logged statement signs (a root alone
            # does not fix the size; the position is the record's).
            pred = Statement.from_json(Envelope.from_json(self.entry.entry.envelope).payload)
            rp = self.record_proof
            if (rp.root.hex(), rp.tree_size, rp.leaf_index) != (
                pred.predicate.get("batch_root"),
                pred.predicate.get("batch_size"),
                self.position,
            ):
                raise ProofInvalid(
                    "the record's proof is not for the batch (root, size, position) its logged "
                    "statement names",
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

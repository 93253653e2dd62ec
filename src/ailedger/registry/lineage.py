"""Lineage of a model version: its datasets, evaluations, approvals, deployments and
SLSA provenance.

::

    tree = lineage(registry, VersionRef("triage", "1.0"))
    tree.to_dict()      # JSON for scripts; the CLI draws the same as a rich tree

Everything comes from log entries about the version's subject digest (indexed queries),
each item carrying its log index, the time the log took it and its signers, so any item can
be checked with ``ailedger log receipt`` / ``verify receipt``. Dataset roots recorded in the
training metadata are resolved to the registered ``name@version`` that has that root
(none if the dataset was never registered here). The items are the predicate types registered
with ``IN_LINEAGE`` (:func:`ailedger.attest.predicates.predicate_types`), each read through its
kind (an evaluation's :class:`~ailedger.attest.predicates.Outcome`, an approval's
:class:`~ailedger.attest.predicates.Decision`); types not registered are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    DeploymentPredicate,
    ModelPredicate,
    Predicate,
    predicate_types,
)
from ailedger.attest.slsa import SlsaProvenancePredicate
from ailedger.attest.statements import Statement
from ailedger.errors import AiledgerError
from ailedger.log import Entry
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry

__all__ = ["Item", "Lineage", "lineage"]


@dataclass(frozen=True)
class Item:
    """One statement in the lineage: what it says, where it is in the log, who signed it."""

    kind: str
    log_index: int
    logged_at: str
    signers: tuple[str, ...]
    summary: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "log_index": self.log_index,
            "logged_at": self.logged_at,
            "signers": list(self.signers),
            "summary": self.summary,
            **self.details,
        }


@dataclass
class Lineage:
    """The lineage of ``ref``, grouped by kind, each group oldest first."""

    ref: VersionRef
    digest: str
    registration: Item | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[Item] = field(default_factory=list)
    approvals: list[Item] = field(default_factory=list)
    deployments: list[Item] = field(default_factory=list)
    provenance: list[Item] = field(default_factory=list)
    inferences: int = 0

    @property
    def deprecated(self) -> bool:
        return any(i.details.get("action") == "deprecate" for i in self.deployments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.ref),
            "digest": self.digest,
            "deprecated": self.deprecated,
            "registration": None if self.registration is None else self.registration.to_dict(),
            "datasets": self.datasets,
            "evaluations": [i.to_dict() for i in self.evaluations],
            "approvals": [i.to_dict() for i in self.approvals],
            "deployments": [i.to_dict() for i in self.deployments],
            "provenance": [i.to_dict() for i in self.provenance],
            "inference_statements": self.inferences,
        }


def _item(entry: Entry, kind: str, summary: str, details: dict[str, Any]) -> Item:
    when = datetime.fromtimestamp(entry.time_ms / 1000, UTC).isoformat(timespec="seconds")
    return Item(kind, entry.index, when, entry.signers, summary, details)


def _add(tree: Lineage, entry: Entry, pred: Predicate) -> None:
    if isinstance(pred, ModelPredicate) and tree.registration is None:
        training = pred.training.model_dump(mode="json", exclude_none=True) if pred.training else {}
        details: dict[str, Any] = {
            "location": pred.location,
            "training": training,
            "hashing": pred.hashing,
        }
        tree.registration = _item(entry, "model", f"registered {tree.ref}", details)
    elif pred.KIND == "evaluation":
        out = pred.as_outcome()
        verdict = "passed" if out.passed else "FAILED"
        shown = dict(out.metrics)
        metrics = ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items()))
        summary = f"{out.name}: {verdict}" + (f" ({metrics})" if metrics else "")
        details = {"name": out.name, "passed": out.passed, "metrics": shown}
        if out.exit_code is not None:
            details["exit_code"] = out.exit_code
        tree.evaluations.append(_item(entry, "evaluation", summary, details))
    elif pred.KIND == "approval":
        dec = pred.as_decision()
        summary = f"{dec.decision} as {dec.role}" + (f": {dec.comment}" if dec.comment else "")
        details = {"role": dec.role, "decision": dec.decision, "comment": dec.comment}
        tree.approvals.append(_item(entry, "approval", summary, details))
    elif isinstance(pred, DeploymentPredicate):
        if pred.action == "deprecate":
            summary = f"deprecated: {pred.reason or ''}".rstrip(": ")
        elif pred.action == "rollback":
            summary = f"{pred.environment} rolled back to it (from {pred.previous_version})"
        else:
            summary = f"deployed to {pred.environment}"
        details = {
            "action": pred.action,
            "environment": pred.environment,
            "previous_version": pred.previous_version,
            "reason": pred.reason,
        }
        tree.deployments.append(_item(entry, "deployment", summary, details))
    elif isinstance(pred, SlsaProvenancePredicate):
        run = pred.runDetails
        summary = f"SLSA provenance by {run.builder.id}"
        details = {
            "build_type": pred.buildDefinition.buildType,
            "builder": run.builder.id,
            "invocation_id": None if run.metadata is None else run.metadata.invocationId,
        }
        tree.provenance.append(_item(entry, "provenance", summary, details))


def _not_an_event(registry: Registry, index: int, pred: Predicate) -> bool:
    """A deploy or rollback statement the index does not take as an event (its signer may
    not deploy, or it forks the environment's history), or a deprecation by a key that may
    not deprecate: ``status`` reports it."""
    if not isinstance(pred, DeploymentPredicate):
        return False
    if pred.action == "deprecate":
        return not registry.index.is_deprecation(index)
    return not registry.index.is_event(index)


def lineage(registry: Registry, ref: VersionRef) -> Lineage:
    """Collect the lineage of the registered model ``ref`` from the log."""
    registry.sync()
    row = registry.model(ref)
    tree = Lineage(ref, row.digest)
    roots: list[str] = []
    entries = [
        entry
        for kind in predicate_types("lineage")
        for entry in registry.log.query(subject=row.digest, predicate_type=kind, limit=None)
    ]
    tree.inferences = registry.index.inference_statements(ref)
    for entry in sorted(entries, key=lambda e: e.index):
        try:
            statement = Statement.from_json(Envelope.from_json(entry.envelope).payload)
            pred = statement.typed_predicate()
        except AiledgerError:
            continue
        if pred is None or not pred.IN_LINEAGE:
            continue
        if not any(str(ref) == s.name for s in statement.subject):
            continue
        if _not_an_event(registry, entry.index, pred):
            continue
        _add(tree, entry, pred)
        if isinstance(pred, ModelPredicate) and pred.training and not roots:
            roots = list(pred.training.dataset_roots)
    for root in roots:
        found = registry.index.datasets_with_root(root)
        tree.datasets.append(
            {
                "root": root,
                "registered_as": [str(d.ref) for d in found],
                "log_index": found[0].log_index if found else None,
                "location": found[0].location if found else None,
            }
        )
    return tree

"""The audit report: every release with its evidence and how each item was verified.

::

    with Registry.open(workspace, keys=keystore.list_keys()) as registry:
        report = build_report(registry, audit_names=audit_names_for(policy, []))
    write_report(report, Path("audit"))        # audit/report.html and audit/report.json

A release is a registered model version. For each one the report lists its datasets (the
dataset roots of its training metadata, resolved to registered dataset versions), its
evaluations, whether a bias/fairness audit exists for it (an evaluation whose name is one of
``audit_names``: the policy's ``audits``, ``--require-audit`` names, or
:data:`DEFAULT_AUDIT_NAMES`), its approvals (role, organisation, signer, decision, time), its
deployments, rollbacks and deprecation. Every item carries a :class:`Verification` (signature
against the workspace's keys, inclusion under the latest signed checkpoint, a covering anchor,
and with ``check_artifacts`` a re-hash of the artifact); see :mod:`ailedger._audit_verify`.

Only verified evaluations count as a bias audit: a release whose only audit does not verify
shows ``unverified``. The JSON document (``schema`` = :data:`AUDIT_SCHEMA`) holds the same
content as the HTML page, which is self-contained (inline CSS and SVG, no script).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger._audit_items import (
    TYPES,
    AuditItem,
    Parsed,
    bias_status,
    evidence_item,
    iso,
    parse_entry,
    registration_item,
    unreadable,
)
from ailedger._audit_verify import AnchorCheck, LogCheck, Verification, check_log
from ailedger._registry_refs import VersionRef
from ailedger.anchor import AnchorRecord
from ailedger.errors import AiledgerError, InvalidInput, NotFound
from ailedger.policy import Policy
from ailedger.predicates import ModelPredicate
from ailedger.registry import Registry

if TYPE_CHECKING:  # the chain client (web3) is imported only by code that talks to a chain
    from ailedger.chain.anchors import LogAnchors

__all__ = [
    "AUDIT_SCHEMA",
    "DEFAULT_AUDIT_NAMES",
    "AuditItem",
    "AuditReport",
    "Release",
    "Verification",
    "audit_names_for",
    "build_report",
    "on_chain",
    "write_report",
]

#: The ``schema`` of the JSON document; bumped when a field changes meaning.
AUDIT_SCHEMA = "ailedger.audit-report/v1"

#: Evaluation names that count as a bias/fairness audit when no policy or option names any.
DEFAULT_AUDIT_NAMES = ("bias", "bias-audit", "fairness", "fairness-audit")


@dataclass
class Release:
    """A registered model version and its evidence, each group in log order."""

    ref: VersionRef
    digest: str
    registration: AuditItem
    datasets: list[AuditItem] = field(default_factory=list)
    unregistered_roots: list[str] = field(default_factory=list)
    evaluations: list[AuditItem] = field(default_factory=list)
    approvals: list[AuditItem] = field(default_factory=list)
    deployments: list[AuditItem] = field(default_factory=list)
    bias_audit: str = "missing"  # passed | failed | unverified | missing

    @property
    def deprecated(self) -> bool:
        return any(i.details.get("action") == "deprecate" for i in self.deployments)

    @property
    def failed_evaluations(self) -> int:
        return sum(1 for i in self.evaluations if not i.details["passed"])

    def items(self) -> list[AuditItem]:
        groups = (self.datasets, self.evaluations, self.approvals, self.deployments)
        return [self.registration, *(i for g in groups for i in g)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.ref),
            "name": self.ref.name,
            "version": self.ref.version,
            "digest": self.digest,
            "deprecated": self.deprecated,
            "bias_audit": self.bias_audit,
            "registration": self.registration.to_dict(),
            "datasets": [i.to_dict() for i in self.datasets],
            "unregistered_dataset_roots": self.unregistered_roots,
            "evaluations": [i.to_dict() for i in self.evaluations],
            "approvals": [i.to_dict() for i in self.approvals],
            "deployments": [i.to_dict() for i in self.deployments],
        }


@dataclass
class AuditReport:
    """The whole report; :meth:`to_dict` is the JSON document."""

    origin: str
    generated_at: datetime
    audit_names: tuple[str, ...]
    releases: list[Release]
    log: LogCheck
    timeline: dict[str, list[dict[str, Any]]]  # env -> deploy/rollback events, log order
    artifacts_checked: bool
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        items = [i for r in self.releases for i in r.items()]
        bias = Counter(r.bias_audit for r in self.releases)
        envs = {
            env: dict(Counter(e["action"] for e in events))
            for env, events in sorted(self.timeline.items())
        }
        return {
            "releases": len(self.releases),
            "deprecated": sum(1 for r in self.releases if r.deprecated),
            "bias_audit": {
                k: bias.get(k, 0) for k in ("passed", "failed", "unverified", "missing")
            },
            "releases_lacking_bias_audit": len(self.releases) - bias.get("passed", 0),
            "failed_evaluations": sum(r.failed_evaluations for r in self.releases),
            "releases_with_failed_evaluations": sum(
                1 for r in self.releases if r.failed_evaluations
            ),
            "deployments": envs,
            "items": len(items),
            "unverified_items": sum(1 for i in items if not i.verification.verified),
            "unverified": {
                "signature": sum(1 for i in items if i.verification.signature != "verified"),
                "inclusion_pending": sum(1 for i in items if i.verification.inclusion == "pending"),
                "inclusion_failed": sum(1 for i in items if i.verification.inclusion == "failed"),
                "artifact": sum(1 for i in items if i.verification.artifact not in (None, "match")),
            },
            "anchored_items": sum(1 for i in items if i.verification.anchor is not None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": AUDIT_SCHEMA,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "log_origin": self.origin,
            "audit_names": list(self.audit_names),
            "artifacts_checked": self.artifacts_checked,
            "summary": self.summary(),
            "log": self.log.to_dict(),
            "timeline": self.timeline,
            "releases": [r.to_dict() for r in self.releases],
        }


def audit_names_for(policy: Policy | None, names: Iterable[str] = ()) -> tuple[str, ...]:
    """The evaluation names that count as a bias audit: ``names`` if any, else the audits
    the policy requires in any section, else :data:`DEFAULT_AUDIT_NAMES`."""
    given = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    if given:
        return given
    if policy is not None:
        sections = [policy.all, *policy.envs.values()]
        found = tuple(sorted({n.lower() for s in sections for n in s.audits}))
        if found:
            return found
    return DEFAULT_AUDIT_NAMES


def build_report(
    registry: Registry,
    *,
    audit_names: Sequence[str] = DEFAULT_AUDIT_NAMES,
    check_artifacts: bool = False,
    anchors: Sequence[AnchorRecord] = (),
    confirm_anchor: AnchorCheck | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Read the registry's log and index and verify every item (see the module docstring)."""
    started = time.perf_counter()
    registry.sync()
    log = registry.log
    entries = log.query(limit=None)
    try:
        note = log.latest_checkpoint()
    except NotFound:
        note = None
    models, datasets = registry.index.versions("model"), registry.index.versions("dataset")
    read = time.perf_counter()
    check = check_log(entries, note, log.log_key(), anchors, confirm_anchor)
    trusted = [k.public_key for k in registry.keys]
    orgs: dict[str, str | None] = {k.keyid.lower(): k.org for k in registry.keys}
    for keyid in {s.lower() for e in entries for s in e.signers}:
        member = registry.backend.role_of(keyid)
        if member is not None and member[1] is not None:
            orgs[keyid] = member[1]
    everything = {e.index: e for e in entries}
    logged_ms = {e.index: e.time_ms for e in entries}
    by_index: dict[int, Parsed] = {}
    by_subject: dict[tuple[str, str], list[Parsed]] = defaultdict(list)
    for entry in entries:
        if entry.predicate_type in TYPES and (p := parse_entry(entry, trusted, check)) is not None:
            by_index[entry.index] = p
            for subject in p.subjects:
                by_subject[subject].append(p)
    names = tuple(n.lower() for n in audit_names)
    dataset_items = {
        row.root: (row, registration_item(reg, row, check_artifacts))
        for row in datasets
        if row.root is not None
        and (
            reg := by_index.get(row.log_index) or unreadable(everything[row.log_index], row, check)
        )
    }
    releases: list[Release] = []
    timeline: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in models:
        reg = by_index.get(row.log_index) or unreadable(everything[row.log_index], row, check)
        release = Release(row.ref, row.digest, registration_item(reg, row, check_artifacts))
        if isinstance(reg.predicate, ModelPredicate) and reg.predicate.training is not None:
            for root in reg.predicate.training.dataset_roots:
                if root in dataset_items:
                    release.datasets.append(dataset_items[root][1])
                else:
                    release.unregistered_roots.append(root)
        for p in by_subject.get((str(row.ref), row.digest), []):
            found = evidence_item(p, orgs)
            if found is not None:
                getattr(release, found[0] + "s").append(found[1])
        for item in release.deployments:
            if item.details["action"] == "deprecate":
                continue
            when = iso(logged_ms[item.log_index], "milliseconds")
            timeline[item.details["environment"]].append(
                {"log_index": item.log_index, "time": when, "action": item.details["action"],
                 "version": str(row.ref), "previous_version": item.details["previous_version"],
                 "verified": item.verification.verified}
            )  # fmt: skip
        release.bias_audit = bias_status(release.evaluations, names)
        releases.append(release)
    for events in timeline.values():
        events.sort(key=lambda e: int(e["log_index"]))
    done = time.perf_counter()
    return AuditReport(
        origin=log.origin,
        generated_at=now or datetime.now(UTC),
        audit_names=names,
        releases=releases,
        log=check,
        timeline=dict(sorted(timeline.items())),
        artifacts_checked=check_artifacts,
        timings={"read_log": read - started, "verify": done - read},
    )


def on_chain(anchors: LogAnchors) -> AnchorCheck:
    """An anchor check asking the LogAnchors contract ``anchors``: the record must name this
    chain and contract, and anchor number ``index`` there must have its size and root."""

    def confirm(record: AnchorRecord) -> bool:
        if record.chain_id != anchors.chain.chain_id:
            return False
        if record.contract.lower() != anchors.address.lower():
            return False
        try:
            found = anchors.anchor_at(record.log_id, record.index)
        except AiledgerError:
            return False
        return (found.size, found.root) == (record.size, record.root)

    return confirm


def write_report(report: AuditReport, out: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out`` (created); return both paths."""
    from ailedger._audit_html import render_html  # _audit_html imports this module

    started = time.perf_counter()
    html_path, json_path = out / "report.html", out / "report.json"
    html = render_html(report)
    doc = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
        json_path.write_text(doc, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write the report to {out}: {exc}") from None
    report.timings["render"] = time.perf_counter() - started
    return html_path, json_path

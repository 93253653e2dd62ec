"""Building the audit report from a registry, and writing it as HTML and JSON."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.attest.predicates import ModelPredicate
from ailedger.audit._html import render_html
from ailedger.audit._items import (
    AuditItem,
    Parsed,
    audit_types,
    bias_status,
    evidence_item,
    iso,
    parse_entry,
    registration_item,
    unreadable,
)
from ailedger.audit._report import DEFAULT_AUDIT_NAMES, AuditReport, Release
from ailedger.audit._verify import AnchorCheck, check_log
from ailedger.chain.anchoring import AnchorRecord
from ailedger.errors import AiledgerError, InvalidInput, NotFound, StorageError
from ailedger.registry import Registry

if TYPE_CHECKING:  # the chain client (web3) is imported only by code that talks to a chain
    from ailedger.chain.anchors import LogAnchors

__all__ = ["build_report", "on_chain", "write_report"]


def _not_an_event(registry: Registry, item: AuditItem) -> bool:
    if item.details["action"] == "deprecate":
        return not registry.index.is_deprecation(item.log_index)
    return not registry.index.is_event(item.log_index)


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
    shown = audit_types()
    for entry in entries:
        if entry.predicate_type in shown and (p := parse_entry(entry, trusted, check)) is not None:
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
            if found is not None and found[0] == "deployment" and _not_an_event(registry, found[1]):
                continue  # a deploy/rollback/deprecation the index rejects: `status` reports it
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
    started = time.perf_counter()
    html_path, json_path = out / "report.html", out / "report.json"
    html = render_html(report)
    doc = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_path.write_text(html, encoding="utf-8")
        json_path.write_text(doc, encoding="utf-8")
    except OSError as exc:
        fault = StorageError.from_exception(exc, out)  # full, read-only, ...: exit 11
        raise fault or InvalidInput(f"cannot write the report to {out}: {exc}") from None
    report.timings["render"] = time.perf_counter() - started
    return html_path, json_path

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
and with ``check_artifacts`` a re-hash of the artifact); see :mod:`ailedger.audit._verify`.

Only verified evaluations count as a bias audit: a release whose only audit does not verify
shows ``unverified``. The JSON document (``schema`` = :data:`AUDIT_SCHEMA`) holds the same
content as the HTML page, which is self-contained (inline CSS and SVG, no script).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ailedger.audit._items import (
    AuditItem,
)
from ailedger.audit._verify import LogCheck, Verification
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import Policy

if TYPE_CHECKING:  # the chain client (web3) is imported only by code that talks to a chain
    pass

__all__ = [
    "AUDIT_SCHEMA",
    "DEFAULT_AUDIT_NAMES",
    "AuditItem",
    "AuditReport",
    "Release",
    "Verification",
    "audit_names_for",
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

"""The audit report: every release, its evidence and how each item was verified.

:func:`build_report` collects the releases of a registry with their datasets, evaluations,
bias audits, approvals and deployments; :func:`write_report` writes the self-contained HTML
page and the JSON document.
"""

from __future__ import annotations

from ailedger.audit._build import build_report, on_chain, write_report
from ailedger.audit._report import (
    AUDIT_SCHEMA,
    DEFAULT_AUDIT_NAMES,
    AuditItem,
    AuditReport,
    Release,
    Verification,
    audit_names_for,
)

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

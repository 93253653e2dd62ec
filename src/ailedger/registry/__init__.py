"""The release workflow over the log: register, evaluate, approve, gate, deploy, trace.

:class:`Registry` records datasets, models, evaluations, approvals and deployments as signed
statements in the log (and, with a chain, in the ModelRegistry contract); :mod:`.policy` is the
policy gate, :mod:`.evaluation` runs and records evaluations, :mod:`.trace` answers "which
version served at time T" with proofs, :mod:`.lineage` walks a version's history.
"""

from __future__ import annotations

from ailedger.registry._registry import (
    INDEX_DB_NAME,
    Appender,
    EventRow,
    LocalBackend,
    PreflightBackend,
    Recorded,
    Registry,
    RegistryBackend,
    RoleMissing,
    VersionRef,
    VersionRegistration,
    VersionRow,
)

__all__ = [
    "INDEX_DB_NAME",
    "Appender",
    "EventRow",
    "LocalBackend",
    "PreflightBackend",
    "Recorded",
    "Registry",
    "RegistryBackend",
    "RoleMissing",
    "VersionRef",
    "VersionRegistration",
    "VersionRow",
]

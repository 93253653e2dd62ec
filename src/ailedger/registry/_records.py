"""Small pieces of the registry: what an action recorded, the role error, subjects, paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ailedger.attest.statements import Subject
from ailedger.errors import KeyAccessError
from ailedger.registry._refs import VersionRef

__all__ = ["Recorded", "RoleMissing", "named_subject", "path_of", "utc_now"]


class RoleMissing(KeyAccessError):
    """The signing key does not hold the role the action needs (exit code 5)."""


@dataclass(frozen=True)
class Recorded:
    """What a registry action appended: the log entry and the statement's predicate."""

    action: str
    ref: str
    log_index: int
    digest: str
    predicate: dict[str, Any]
    already: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "ref": self.ref,
            "log_index": self.log_index,
            "digest": self.digest,
            "already_recorded": self.already,
            "predicate": self.predicate,
            **self.extra,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


def named_subject(ref: VersionRef | str, digest: str) -> Subject:
    alg, _, hexpart = digest.partition(":")
    return Subject(name=str(ref), digest={alg: hexpart})


def path_of(location: str | None) -> Path | None:
    """The local path of a ``file://`` location, else None."""
    if location is None:
        return None
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None

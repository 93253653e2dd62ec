"""What ``ailedger status`` reports: a :class:`Finding` per disagreement, and the
:class:`Step` that repairs it when the log proves it (see :mod:`ailedger.registry.status`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ailedger.registry._refs import VersionRef

__all__ = ["REPAIR_HINT", "Action", "Finding", "Step"]

#: The command that finishes what the log proves.
REPAIR_HINT = "ailedger status --repair"

Action = Literal["register", "approve", "deploy", "rollback", "deprecate"]


@dataclass(frozen=True)
class Step:
    """A chain write the log proves, as :func:`repair` replays it: the action of the log
    entry ``log_index``, sent by ``keyid`` (the key that signed the entry)."""

    action: Action
    ref: VersionRef
    log_index: int
    keyid: str
    env: str | None = None
    role: str | None = None
    digest: str = ""
    roots: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f" in {self.env}" if self.env else ""
        role = f" as {self.role}" if self.role else ""
        return f"{self.action} {self.ref}{role}{where} (entry {self.log_index})"


@dataclass(frozen=True)
class Finding:
    """One place where the log, the index and the chain disagree."""

    kind: str
    message: str
    repairable: bool
    env: str | None = None
    ref: str | None = None
    log_index: int | None = None
    step: Step | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "repairable": self.repairable,
            "env": self.env,
            "ref": self.ref,
            "log_index": self.log_index,
        }

"""The chain of events of an environment: each deploy or rollback names the previous one.

A deploy or rollback statement carries ``previous`` (:class:`~ailedger.attest.predicates.
EventLink`): the log index and leaf hash of the previous deploy or rollback of the same
environment, or null for the first. Two consecutive entries then prove from the log alone
that nothing happened to the environment between them (:mod:`ailedger.registry.trace`).

The link is read from the index before the statement is signed, and the append is a
compare-and-swap on the log size (``TransparencyLog.append(expect_size=...)``): when other
entries came in meanwhile, the index reads them and the same envelope is appended again only
if none of them is an event of the environment. So two racing deploys never name the same
previous event: the later one is refused (:class:`ConflictError`) with nothing logged, and
decides again on the new state when re-run.

A log service offers no compare-and-swap (``swap=False``): the event is submitted, and once
the index has read it, an event that another one of its environment overtook (both naming
the same previous; the first in log order wins) is judged not an event
(``environment-history-fork``, see :mod:`._index`). The command is then refused
(:class:`ConflictError`) naming both entries: the logged statement changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ailedger.attest.predicates import EventLink
from ailedger.errors import ConflictError
from ailedger.log import LogSizeChanged, TransparencyLog
from ailedger.registry._index import EventRow, RegistryIndex

__all__ = ["APPEND_ATTEMPTS", "Append", "Head", "append", "head", "link"]

#: Appends of one event tried while other entries keep coming in.
APPEND_ATTEMPTS = 100


class Append(Protocol):
    """Appends an envelope and indexes it (``Registry.append_envelope``)."""

    def __call__(self, envelope: bytes, *, expect_size: int | None = None) -> int: ...


@dataclass(frozen=True)
class Head:
    """The last event of ``env`` (None: none yet) when the index had read ``size`` entries."""

    env: str
    last: EventRow | None
    size: int


def head(index: RegistryIndex, env: str) -> Head:
    """What a new event of ``env`` names as previous, and the log size its append expects."""
    return Head(env, index.last_event(env), index.synced())


def link(log: TransparencyLog, event: EventRow | None) -> EventLink | None:
    """The link to ``event``: its log index and leaf hash (None for no event)."""
    if event is None:
        return None
    leaf = log.get(event.log_index).leaf_hash
    return EventLink(log_index=event.log_index, leaf_hash=leaf.hex())


def append(
    log_append: Append,
    index: RegistryIndex,
    sync: Callable[[], int],
    at: Head,
    envelope: bytes,
    recheck: Callable[[], None] | None = None,
    *,
    swap: bool = True,
) -> int:
    """Append ``envelope`` (an event of ``at.env`` naming ``at.last``) if no other event of
    ``at.env`` was logged since ``at`` was read; ``sync`` brings ``index`` up to date and
    ``recheck`` (raising to refuse) re-checks what else the log may have said meanwhile (a
    deprecation of the version). ``swap`` False: the log cannot compare and swap (a log
    service); the appended event is checked once indexed instead."""
    if not swap:
        appended = log_append(envelope)
        if not index.is_event(appended):
            now = index.last_event(at.env)
            what = "" if now is None else f" (entry {now.log_index}: {now.action} {now.ref})"
            raise ConflictError(
                f"another deploy or rollback of {at.env} was logged first{what}; this one, "
                f"log entry {appended}, is not an event of {at.env} and changes nothing",
                hint="run the command again: it decides on the new state",
            )
        return appended
    size = at.size
    for _ in range(APPEND_ATTEMPTS):
        try:
            appended = log_append(envelope, expect_size=size)
        except LogSizeChanged:
            sync()
            now = index.last_event(at.env)
            if now != at.last:
                what = "" if now is None else f" (entry {now.log_index}: {now.action} {now.ref})"
                raise ConflictError(
                    f"another deploy or rollback of {at.env} was logged meanwhile{what}; "
                    "nothing was logged",
                    hint="run the command again: it decides on the new state",
                ) from None
            if recheck is not None:
                recheck()
            size = index.synced()
            continue
        return appended
    raise ConflictError(
        f"the log kept growing while the {at.env} event was appended; nothing was logged",
        hint="run the command again",
    )

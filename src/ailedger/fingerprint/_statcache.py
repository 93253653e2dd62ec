"""A stat cache: skip re-reading files whose metadata has not changed since they were hashed.

An entry is keyed by the file's absolute path and an item identifier that names the whole
computation (e.g. ``sha256``, ``sha256-sharded-1000000000:0:1000000000``,
``tensors/sha256``), and is valid only while the file's size, ``mtime_ns``, ``ctime_ns``,
inode and device are unchanged (ctime cannot be set from user space, so restoring an old mtime
does not fool the cache).

The "racy mtime" problem (git's ``racy-git.txt``): a file written again within the timestamp
granularity right after it was hashed keeps the same size and mtime. Like git, an entry is
stored only when the file's mtime is strictly older than the moment its hashing began, minus
a safety margin covering coarse filesystem clocks; a file hashed too soon after it was
modified is not cached, so the next run reads it again (a later write then moves the mtime
out of the old tick, and the ctime check catches writes whose mtime was set back).

A cache only saves time, so it need not stop the work: a :class:`SqliteStatCache` given
``on_storage_fault`` reports a full, read-only or failing disk to it once and carries on,
reading what it can (a read-only open of an existing file) and writing nothing more.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ailedger._sqlite import connect_read_only
from ailedger.errors import AiledgerError, IntegrityError, StorageError

__all__ = [
    "RACY_WINDOW_NS",
    "FileStat",
    "MemoryStatCache",
    "SqliteStatCache",
    "StatCache",
    "is_racy",
]

#: Files modified less than this long before hashing began are not cached. Two seconds
#: covers FAT's 2 s mtime granularity and the coarse kernel clock behind file timestamps.
RACY_WINDOW_NS = 2_000_000_000


@dataclass(frozen=True)
class FileStat:
    """What must be unchanged for a cached digest to stay valid."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def is_racy(stat: FileStat, started_ns: int) -> bool:
    """True when the file changed too close to ``started_ns`` (wall clock, ns) to be cached."""
    return stat.mtime_ns >= started_ns - RACY_WINDOW_NS


class StatCache(Protocol):
    """Where digests are remembered between runs. Only the calling thread touches it."""

    def get(self, path: str, ident: str, stat: FileStat) -> bytes | None:
        """The value stored for (path, ident) if the file still has ``stat``, else None."""
        ...

    def put_many(self, items: list[tuple[str, str, FileStat, bytes]]) -> None:
        """Store (path, ident, stat, value) entries, replacing older ones."""
        ...


class MemoryStatCache:
    """A cache that lives as long as the object (tests, long-running processes)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[FileStat, bytes]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, path: str, ident: str, stat: FileStat) -> bytes | None:
        entry = self._entries.get((path, ident))
        if entry is None or entry[0] != stat:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put_many(self, items: list[tuple[str, str, FileStat, bytes]]) -> None:
        for path, ident, stat, value in items:
            self._entries[(path, ident)] = (stat, value)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    path TEXT NOT NULL, ident TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL, device INTEGER NOT NULL,
    value BLOB NOT NULL, used_at INTEGER NOT NULL,
    PRIMARY KEY (path, ident)
) WITHOUT ROWID
"""


class SqliteStatCache:
    """A cache in one SQLite file, shared by every run on this machine.

    Without ``on_storage_fault``, a storage fault (disk full, read-only, ...) raises
    :class:`StorageError`. With it, the fault is handed to it once (to warn) and the cache
    goes on without writing: lookups read the existing file if it can be opened read-only,
    and miss otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_storage_fault: Callable[[StorageError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._on_fault = on_storage_fault
        self.hits = 0
        self.misses = 0
        #: False once a storage fault stopped the writes (only with ``on_storage_fault``).
        self.writable = True
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.DatabaseError) as exc:
            fault = StorageError.from_exception(exc, self.path)
            if fault is None or self._on_fault is None:
                self._close_db()
                if isinstance(exc, OSError):
                    raise fault or exc from None
                raise fault or IntegrityError(
                    f"stat cache {self.path} is unusable: {exc}",
                    hint="delete the file (it only speeds things up) or pass --no-cache",
                ) from None
            self._close_db()
            self._degrade(fault)
            self._db = self._reader()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _degrade(self, fault: StorageError) -> None:
        """Stop writing and tell ``on_storage_fault`` (once)."""
        if self.writable and self._on_fault is not None:
            self.writable = False
            self._on_fault(fault)

    def _reader(self) -> sqlite3.Connection | None:
        """A read-only connection to the existing cache, or None (every lookup misses)."""
        try:
            db = connect_read_only(self.path, check_same_thread=False)
            db.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
        except (AiledgerError, sqlite3.Error, OSError):
            return None
        return db

    def get(self, path: str, ident: str, stat: FileStat) -> bytes | None:
        row = None
        with self._lock:
            if self._db is not None:
                row = self._db.execute(
                    "SELECT size, mtime_ns, ctime_ns, inode, device, value FROM entries"
                    " WHERE path = ? AND ident = ?",
                    (path, ident),
                ).fetchone()
        if row is None or FileStat(*row[:5]) != stat:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(row[5])

    def put_many(self, items: list[tuple[str, str, FileStat, bytes]]) -> None:
        if not self.writable or self._db is None:
            return
        now = time.time_ns()
        rows = [
            (p, i, s.size, s.mtime_ns, s.ctime_ns, s.inode, s.device, v, now)
            for p, i, s, v in items
        ]
        try:
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
        except sqlite3.Error as exc:
            fault = StorageError.from_exception(exc, self.path)
            if fault is None:
                raise
            if self._on_fault is None:
                raise fault from None
            self._degrade(fault)

    def close(self) -> None:
        with self._lock:
            self._close_db()

    def __enter__(self) -> SqliteStatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A py-evm key-value database over SQLite that commits whole blocks atomically.

py-evm keeps everything (state trie nodes, headers, bodies, receipts, canonical-chain
indexes) in one flat key-value store and writes into it piecemeal while a block is
built. :class:`SQLiteKV` buffers those writes in memory and :meth:`SQLiteKV.commit`
writes the buffer in one SQLite transaction, so the file only ever holds whole
blocks: a process killed mid-block reopens at the last block it committed.

The file uses WAL mode with ``synchronous=NORMAL``: a committed block survives the
process being killed (SIGKILL); after an operating-system crash or power loss the
last few blocks may be lost, never half of one. Pass ``durable=True`` for
``synchronous=FULL`` (an fsync per block).
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from pathlib import Path
from typing import IO

from eth.db.backends.base import BaseDB
from lru import LRU

from ailedger._sqlite import connect_read_only
from ailedger.errors import ChainError, IntegrityError, StorageError

__all__ = ["DirectoryLock", "SQLiteKV"]

_DELETED = None
_SCHEMA_VERSION = "1"


class DirectoryLock:
    """An exclusive advisory lock on ``directory/lock``, held while a process uses it.

    Two processes writing blocks into one embedded chain would fork it, so a second
    opener waits up to ``timeout`` seconds and then fails with a clear error.
    """

    def __init__(self, directory: Path, timeout: float, *, shared: bool = False) -> None:
        self._path = directory / "lock"
        self._file: IO[bytes] | None
        if shared:  # a reader: waits for a writer, creates nothing (read-only file systems)
            if not self._path.is_file():
                self._file = None
                return
            self._file = open(self._path, "rb")  # noqa: SIM115
        else:
            self._file = open(self._path, "a+b")  # noqa: SIM115
        deadline = time.monotonic() + timeout
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        while True:
            try:
                fcntl.flock(self._file.fileno(), mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._file.close()
                    self._file = None
                    raise ChainError(
                        f"the embedded chain in {directory} is in use by another process",
                        hint="wait for the other ailedger command to finish and retry; if "
                        "`ailedger serve` runs on this workspace, reach its chain with "
                        "--rpc http://HOST:PORT/rpc",
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class SQLiteKV(BaseDB):
    """py-evm ``BaseDB`` backed by one SQLite table ``kv(key BLOB PRIMARY KEY, value BLOB)``.

    Writes stay in memory until :meth:`commit`; reads see them. A bounded LRU cache
    keeps hot trie nodes out of SQLite.
    """

    def __init__(
        self,
        path: Path,
        *,
        durable: bool = False,
        cache_size: int = 65536,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._pending: dict[bytes, bytes | None] = {}
        self._cache: LRU[bytes, bytes] = LRU(cache_size)
        if read_only:  # nothing is written; commit() refuses (see ailedger._sqlite)
            self._conn = connect_read_only(path, check_same_thread=False)
            try:
                row = self._conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
            except sqlite3.DatabaseError as exc:
                fault = StorageError.from_exception(exc, path)
                raise fault or IntegrityError(f"cannot open chain database {path}: {exc}") from exc
            if row is None or row[0] != _SCHEMA_VERSION:
                raise IntegrityError(f"chain database {path} has schema {row}")
            return
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            row = self._conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            fault = StorageError.from_exception(exc, path)
            raise fault or IntegrityError(f"cannot open chain database {path}: {exc}") from exc
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
        elif row[0] != _SCHEMA_VERSION:
            raise IntegrityError(
                f"chain database {path} has schema {row[0]}, expected {_SCHEMA_VERSION}"
            )

    # -- py-evm BaseDB ---------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        cached: bytes | None = self._cache.get(key)
        if cached is not None:
            return cached
        row = self._conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._cache[key] = value
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    # -- transactions ----------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def commit(self, meta: dict[str, str] | None = None) -> None:
        """Write every buffered change (and ``meta`` entries) in one SQLite transaction."""
        if self.read_only:
            raise StorageError(
                f"storage fault at {self.path}: the chain is open read-only",
                path=str(self.path),
                cause="read-only",
                hint="run a command that writes where the workspace is writable",
            )
        upserts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
        deletes = [(k,) for k, v in self._pending.items() if v is _DELETED]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if upserts:
                conn.executemany("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", upserts)
            if deletes:
                conn.executemany("DELETE FROM kv WHERE key=?", deletes)
            for name, text in (meta or {}).items():
                conn.execute(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, text)
                )
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
                conn.execute("ROLLBACK")
            fault = StorageError.from_exception(exc, self.path)
            if fault is not None:
                raise fault from None
            raise
        for key, value in self._pending.items():
            if value is _DELETED:
                if key in self._cache:
                    del self._cache[key]
            else:
                self._cache[key] = value
        self._pending.clear()

    def rollback(self) -> None:
        """Drop every buffered change."""
        self._pending.clear()

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def close(self) -> None:
        self._pending.clear()
        self._conn.close()

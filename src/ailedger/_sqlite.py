"""Open a SQLite database for reading only, also on a read-only file system.

A read-only command must not need a writable workspace: :func:`connect_read_only` opens
with ``mode=ro`` and ``PRAGMA query_only``, so any write fails instead of happening. A
WAL database whose ``-shm`` file cannot be created (read-only directory) is opened with
``immutable=1``, but only when no ``-wal`` file holds frames the main file lacks: reading
past them would show an old state, so that case is refused with a :class:`StorageError`.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

from ailedger.errors import NotFound, StorageError

__all__ = ["connect_read_only"]


def _uri(path: Path, **params: str) -> str:
    query = urllib.parse.urlencode(params)
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{query}"


def _open(path: Path, check_same_thread: bool, **params: str) -> sqlite3.Connection:
    db = sqlite3.connect(
        _uri(path, **params), uri=True, isolation_level=None, check_same_thread=check_same_thread
    )
    try:
        db.execute("PRAGMA query_only=ON")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file for real
    except BaseException:
        db.close()
        raise
    return db


def connect_read_only(
    path: Path, *, timeout: float = 5.0, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection to the existing database ``path`` that cannot write to it."""
    if not path.is_file():
        raise NotFound(f"no database at {path}")
    try:
        db = _open(path, check_same_thread, mode="ro")
    except sqlite3.Error as exc:
        fault = StorageError.from_exception(exc, path)
        if fault is None:
            raise
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:  # immutable=1 would not read it
            raise StorageError(
                f"storage fault at {path}: its write-ahead log {wal.name} holds changes that "
                "cannot be read without write access",
                path=str(path),
                cause="read-only",
                hint="open the workspace once where it is writable (any command), then retry",
            ) from None
        try:
            db = _open(path, check_same_thread, immutable="1")
        except sqlite3.Error as again:
            raise StorageError.from_exception(again, path) or fault from None
    db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return db

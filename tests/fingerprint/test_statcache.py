"""The SQLite stat cache under a storage fault (issue 11, item 11): without ``on_storage_fault``
the fault is a :class:`StorageError`; with it, the cache reports it once and goes on unwritten.

The faults here are simulated (a failing connection); tests/cli/test_storage_faults.py runs the
same on a real full and read-only tmpfs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ailedger.errors import IntegrityError, StorageError
from ailedger.fingerprint._statcache import FileStat, SqliteStatCache

STAT = FileStat(size=1, mtime_ns=2, ctime_ns=3, inode=4, device=5)


class _FullDisk:
    """Wraps a connection: every write fails as SQLite fails on a full disk."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.writes = 0

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.rollback()

    def executemany(self, *args: Any) -> None:
        self.writes += 1
        raise sqlite3.OperationalError("database or disk is full")

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self.db.execute(*args)

    def close(self) -> None:
        self.db.close()


def _full(cache: SqliteStatCache) -> _FullDisk:
    assert cache._db is not None
    full = _FullDisk(cache._db)
    cache._db = full  # type: ignore[assignment]
    return full


def test_without_a_handler_a_full_disk_is_a_storage_error(tmp_path: Path) -> None:
    with SqliteStatCache(tmp_path / "c.sqlite") as cache:
        _full(cache)
        with pytest.raises(StorageError, match="the disk is full"):
            cache.put_many([("/m/a", "sha256", STAT, b"d")])


def test_with_a_handler_the_cache_warns_once_and_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with SqliteStatCache(path) as cache:
        cache.put_many([("/m/a", "sha256", STAT, b"d")])
    faults: list[StorageError] = []
    with SqliteStatCache(path, on_storage_fault=faults.append) as cache:
        full = _full(cache)
        cache.put_many([("/m/b", "sha256", STAT, b"e")])
        cache.put_many([("/m/c", "sha256", STAT, b"f")])  # not tried again
        assert full.writes == 1
        assert [f.cause for f in faults] == ["the disk is full"]
        assert cache.writable is False
        assert cache.get("/m/a", "sha256", STAT) == b"d"
        assert cache.get("/m/b", "sha256", STAT) is None


def test_an_unopenable_cache_with_a_handler_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(StorageError):
        SqliteStatCache(tmp_path / "c.sqlite")
    faults: list[StorageError] = []
    with SqliteStatCache(tmp_path / "c.sqlite", on_storage_fault=faults.append) as cache:
        assert len(faults) == 1
        cache.put_many([("/m/a", "sha256", STAT, b"d")])
        assert cache.get("/m/a", "sha256", STAT) is None
        assert cache.misses == 1


def test_a_corrupt_cache_is_not_a_storage_fault(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    db.write_bytes(b"not a database" * 100)
    faults: list[StorageError] = []
    with pytest.raises(IntegrityError, match="unusable"):
        SqliteStatCache(db, on_storage_fault=faults.append)
    assert faults == []

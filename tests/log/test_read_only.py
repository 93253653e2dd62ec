"""A log opened ``read_only`` reads everything and cannot write (issue 11, item 11)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ailedger._sqlite import connect_read_only
from ailedger.errors import NotFound, StorageError
from ailedger.log import TransparencyLog


def _accept(envelope: bytes) -> None:
    return None


def test_read_only_log_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with TransparencyLog.open(path, "example.com/ro", check_signature=_accept) as log:
        root = log.root()
        size = log.size()
    data = path.read_bytes()
    with TransparencyLog.open(path, read_only=True, check_signature=_accept) as log:
        assert (log.size(), log.root(), log.origin) == (size, root, "example.com/ro")
        with pytest.raises(StorageError, match="read-only"):
            log._store.append([])
    assert path.read_bytes() == data


def test_read_only_connection_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    ro = connect_read_only(path)
    assert ro.execute("PRAGMA query_only").fetchone() == (1,)
    with pytest.raises(sqlite3.OperationalError) as caught:
        ro.execute("INSERT INTO t VALUES (1)")
    assert StorageError.from_exception(caught.value, path) is not None
    ro.close()
    with pytest.raises(NotFound):
        connect_read_only(tmp_path / "missing.sqlite")
    with pytest.raises(NotFound):
        TransparencyLog.open(tmp_path / "missing.sqlite", read_only=True)

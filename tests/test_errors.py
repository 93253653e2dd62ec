from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from ailedger import errors


def test_every_error_has_a_documented_exit_code() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.AiledgerError):
            assert obj.exit_code in errors.EXIT_CODES
            assert obj.exit_code not in (0, 2)


def test_undocumented_exit_code_is_refused() -> None:
    with pytest.raises(TypeError):
        type("Bad", (errors.AiledgerError,), {"exit_code": 42})


def test_builtin_bases() -> None:
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.NotFound, LookupError)


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/w/a.json"), "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system", "/w/a.json"), "read-only"),
        (PermissionError(errno.EACCES, "Permission denied", "/w/a.json"), "permission denied"),
        (OSError(errno.EIO, "Input/output error", "/w/a.json"), "an I/O error"),
        (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read-only"),
        (sqlite3.OperationalError("unable to open database file"), "cannot be opened"),
    ],
)
def test_storage_faults_are_recognised(exc: BaseException, cause: str) -> None:
    fault = errors.StorageError.from_exception(exc, "/w/db.sqlite")
    assert fault is not None
    assert fault.exit_code == 11
    assert cause in fault.message
    assert fault.message.startswith("storage fault at /w/")
    assert fault.hint


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.DatabaseError("file is not a database"),  # corruption stays exit 7
        sqlite3.DatabaseError("database disk image is malformed"),
        sqlite3.OperationalError("no such table: entries"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "x"),
        ValueError("not storage"),
    ],
)
def test_other_failures_are_not_storage_faults(exc: BaseException) -> None:
    assert errors.StorageError.from_exception(exc, "/w/db.sqlite") is None


def test_sqlite_io_error_on_a_full_file_system_is_a_full_disk(tmp_path: Path) -> None:
    io_error = sqlite3.OperationalError("disk I/O error")
    fault = errors.StorageError.from_exception(io_error, tmp_path / "db.sqlite")
    assert fault is not None
    assert fault.cause == "an I/O error"  # tmp_path has room

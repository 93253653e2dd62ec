"""Storage faults (issue 11, item 11): a full disk is a storage error (exit 11), not an
internal error (70) or corrupt state (7), and nothing is lost: the log still verifies and
the same command succeeds once space is freed.

The disk is a small tmpfs mounted for the test (root only: skipped where ``mount`` is not
permitted); a filler file takes the rest of its space.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli import ok, run
from _workflow_util import Setup, make_setup
from ailedger.errors import EXIT_CODES, StorageError

FULL = StorageError.exit_code


def _mount(target: Path, *options: str) -> bool:
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(target)],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs at ``tmp_path/disk`` (unmounted afterwards)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not _mount(disk, "size=64m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _write_until_full(fd: int, size: int) -> int | None:
    """Write ``size``-byte blocks to ``fd`` until one fails: its errno."""
    try:
        while True:
            os.write(fd, b"\0" * size)
    except OSError as exc:
        return exc.errno


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk``; return the filler to delete."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 20, 4096, 1):
            assert _write_until_full(fd, size) == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def full_setup(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    monkeypatch.chdir(small_disk)
    setup = make_setup(small_disk)
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    return setup


def _storage_failure(args: list[object]) -> str:
    result = run(args)
    assert result.exit_code == FULL, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: storage fault at "), result.output
    assert "the disk is full" in lines[0], result.output
    assert lines[1:] == ["hint: free some space and run the command again; nothing was "
                         "half-written"], result.output  # fmt: skip
    assert "Traceback" not in result.output
    return result.output


def test_exit_code_is_documented() -> None:
    assert FULL == 11
    assert "storage" in EXIT_CODES[FULL]


def test_full_disk_is_a_storage_error_and_nothing_is_lost(full_setup: Setup) -> None:
    setup = full_setup
    before = ok(["log", "show"])["size"]
    envelope = setup.root / "eval.dsse.json"
    filler = _fill(setup.root)

    _storage_failure(["model", "register", setup.model, "--name", "triage", "--version", "1",
                      "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    other = setup.root / "patients.csv"
    _storage_failure(["dataset", "register", other, "--name", "patients", "--version", "2",
                      "--key", "trainer"])  # fmt: skip
    _storage_failure(["attest", "evaluation", "--subject", setup.model / "config.json",
                      "--set", "metric=accuracy", "--set", "value=0.93", "--set",
                      "comparator=>=", "--set", "threshold=0.9", "--key", "trainer",
                      "--out", envelope])  # fmt: skip
    # (the envelope file may or may not have fit before the log append failed: the retry
    # below writes it again and appends it)

    filler.unlink()  # space again: the log is whole and every command goes through
    assert ok(["log", "verify"])["ok"] is True
    assert ok(["log", "show"])["size"] == before
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
        "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    ok(["dataset", "register", other, "--name", "patients", "--version", "2",
        "--key", "trainer"])  # fmt: skip
    ok(["attest", "evaluation", "--subject", setup.model / "config.json", "--set",
        "metric=accuracy", "--set", "value=0.93", "--set", "comparator=>=", "--set",
        "threshold=0.9", "--key", "trainer", "--out", envelope])  # fmt: skip
    assert ok(["log", "verify"])["ok"] is True
    assert ok(["log", "show"])["size"] == before + 3  # attest appends to the log too
    shutil.rmtree(setup.root / "model", ignore_errors=True)


def test_log_append_on_a_full_disk(full_setup: Setup) -> None:
    setup = full_setup
    ok(["attest", "evaluation", "--subject", setup.model / "config.json", "--set",
        "metric=accuracy", "--set", "value=0.93", "--set", "comparator=>=", "--set",
        "threshold=0.9", "--key", "trainer", "--out", "e.json"])  # fmt: skip
    before = ok(["log", "show"])["size"]
    filler = _fill(setup.root)
    _storage_failure(["log", "append", "e.json"])
    filler.unlink()
    assert ok(["log", "verify"])["ok"] is True
    assert ok(["log", "show"])["size"] == before
    assert ok(["log", "append", "e.json"])["indexes"] == [before]
    assert ok(["log", "verify"])["ok"] is True


# --- read-only workspaces --------------------------------------------------------------------


def _deployed(root: Path) -> Setup:
    setup = make_setup(root)
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
        "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    ok(["eval", "record", "triage@1.0", "--name", "accuracy", "--metric", "accuracy=0.93",
        "--threshold", "accuracy>=0.9", "--key", "trainer"])  # fmt: skip
    ok(["approve", "triage@1.0", "--role", "qa", "--key", "qa"])
    ok(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy, "--key", "trainer"])
    # entries the registry index has not read yet: a read-only open indexes them in memory
    ok(["attest", "evaluation", "--subject", setup.model / "config.json", "--set",
        "metric=accuracy", "--set", "value=0.93", "--set", "comparator=>=", "--set",
        "threshold=0.9", "--key", "trainer", "--out", "e.json"])  # fmt: skip
    ok(["chain", "status"])  # creates the embedded chain
    return setup


def _read_only_commands(setup: Setup) -> None:
    assert ok(["log", "verify"])["ok"] is True
    assert ok(["log", "show"])["size"] == 6
    assert ok(["log", "show", "5"])["index"] == 5
    assert ok(["trace", "--env", "prod"])["model"] == "triage@1.0"
    assert ok(["gate", "triage@1.0", "--policy", setup.policy, "--env", "prod"])["passed"]
    assert ok(["lineage", "triage@1.0"])["model"] == "triage@1.0"
    status = ok(["chain", "status"])
    assert (status["backend"], status["block_number"]) == ("embedded", 0)


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_read_only_commands_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    setup = _deployed(tmp_path)
    state = setup.root / ".ailedger"
    before = _snapshot(state)
    _read_only_commands(setup)
    after = _snapshot(state)
    # SQLite's shared-memory index (-shm) and an empty -wal may appear next to a database a
    # reader opens (they are not data; a writer deletes them when it closes): every other
    # file keeps its bytes and mtime, and no -wal holds a frame
    kept = {k: v for k, v in after.items() if k in before or not k.endswith(("-shm", "-wal"))}
    assert {k: v for k, v in kept.items() if not k.endswith("-shm")} == {
        k: v for k, v in before.items() if not k.endswith("-shm")
    }
    assert all(after[k][0] == b"" for k in after.keys() - before.keys() if k.endswith("-wal"))


@pytest.fixture
def read_only_disk(small_disk: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    monkeypatch.chdir(small_disk)
    setup = _deployed(small_disk)
    remount = ["mount", "-o", "remount,ro", str(small_disk)]
    assert subprocess.run(remount, check=False).returncode == 0
    with pytest.raises(OSError, match="Read-only file system"):
        (small_disk / "probe").write_bytes(b"")
    return setup


def test_read_only_commands_work_on_a_read_only_file_system(read_only_disk: Setup) -> None:
    _read_only_commands(read_only_disk)


def test_writes_on_a_read_only_file_system_are_storage_errors(read_only_disk: Setup) -> None:
    result = run(["log", "append", "e.json"])
    assert result.exit_code == FULL, result.output
    assert "read-only" in result.stderr.splitlines()[0]
    result = run(["model", "register", read_only_disk.model, "--name", "triage", "--version",
                  "2", "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    assert result.exit_code == FULL, result.output

"""Storage faults (issue 11, item 11): a full disk is a storage error (exit 11), not an
internal error (70) or corrupt state (7), and nothing is lost: the log still verifies and
the same command succeeds once space is freed.

The disk is a small tmpfs mounted for the test (root only: skipped where ``mount`` is not
permitted); a filler file takes the rest of its space.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _cli import PASSWORD, ok, run
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
    assert sorted(p.name for p in setup.root.glob("*eval.dsse*")) == []  # no file, no temp

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


EVAL = ["--set", "metric=accuracy", "--set", "value=0.93", "--set", "comparator=>=", "--set",
        "threshold=0.9", "--key", "trainer"]  # fmt: skip


def test_attest_out_appears_only_after_the_append(full_setup: Setup, tmp_path: Path) -> None:
    """The envelope file is elsewhere (room there) and the log's disk is full: the failed
    append leaves no envelope claiming an entry, and an older file keeps its bytes."""
    setup = full_setup
    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    envelope, kept = elsewhere / "new.dsse.json", elsewhere / "old.dsse.json"
    kept.write_bytes(b"an older envelope")
    before = ok(["log", "show"])["size"]
    filler = _fill(setup.root)
    for out in (envelope, kept):
        _storage_failure(["attest", "evaluation", "--subject", setup.model / "config.json",
                          *EVAL, "--out", out])  # fmt: skip
    assert sorted(p.name for p in elsewhere.iterdir()) == ["old.dsse.json"]  # no temp left
    assert kept.read_bytes() == b"an older envelope"
    filler.unlink()
    assert ok(["log", "show"])["size"] == before
    doc = ok(["attest", "evaluation", "--subject", setup.model / "config.json", *EVAL,
              "--out", envelope])  # fmt: skip
    assert doc["log_index"] == before
    assert json.loads(envelope.read_bytes()) == doc["envelope"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["new.dsse.json", "old.dsse.json"]


def test_attest_out_on_a_read_only_disk_appends_nothing(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The envelope cannot be written: the statement is not appended either."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    setup = make_setup(project)
    _remount_read_only(small_disk)
    result = run(["attest", "evaluation", "--subject", setup.model / "config.json", *EVAL,
                  "--out", small_disk / "e.json"])  # fmt: skip
    assert result.exit_code == FULL, result.output
    assert "read-only" in result.stderr.splitlines()[0]
    assert ok(["log", "show"])["size"] == 0


def _remount_read_only(disk: Path) -> None:
    remount = ["mount", "-o", "remount,ro", str(disk)]
    assert subprocess.run(remount, check=False).returncode == 0
    with pytest.raises(OSError, match="Read-only file system"):
        (disk / "probe").write_bytes(b"")


def test_init_on_a_full_disk(small_disk: Path) -> None:
    project = small_disk / "project"
    project.mkdir()
    filler = _fill(small_disk)
    _storage_failure(["init", project])
    assert list(project.iterdir()) == []  # no half workspace
    filler.unlink()
    assert ok(["init", project])["workspace"] == str(project / ".ailedger")


def test_init_with_a_log_key_that_does_not_fit(small_disk: Path) -> None:
    """Room for the config but not for the key: no workspace is left naming a key it lacks."""
    project = small_disk / "project"
    project.mkdir()
    filler = _fill(small_disk)
    os.truncate(filler, filler.stat().st_size - 4096)  # one page: the config fits, the key not
    _storage_failure(["init", project, "--log-key", "logkey"])
    assert not (project / ".ailedger" / "config.toml").exists()
    filler.unlink()
    assert ok(["init", project, "--log-key", "logkey"])["log_key"]["name"] == "logkey"


def test_init_on_a_read_only_disk(small_disk: Path) -> None:
    _remount_read_only(small_disk)
    result = run(["init", small_disk])
    assert result.exit_code == FULL, result.output
    first, *rest = result.stderr.splitlines()
    assert first.startswith("error: storage fault at "), first
    assert "read-only" in first
    assert [line.split(":")[0] for line in rest] == ["hint"]


def _fingerprint_with_cache(model: Path) -> tuple[list[str], str]:
    """``fingerprint model`` (human output): its warning lines and its stdout."""
    result = run(["fingerprint", "model", model])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line]
    return warnings, result.stdout


def _from_cache(human: str) -> int:
    found = re.search(r"(\d+) digests from cache", human)
    assert found is not None, human
    return int(found.group(1))


def test_the_stat_cache_on_a_full_disk_is_skipped_with_a_warning(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(small_disk / "cache"))
    model = make_setup(tmp_path).model
    expected = ok(["fingerprint", "model", model, "--no-cache"])
    filler = _fill(small_disk)
    warnings, _ = _fingerprint_with_cache(model)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: not updating the stat cache (storage fault at ")
    assert "the disk is full" in warnings[0]
    assert ok(["fingerprint", "model", model]) == expected  # the same manifest
    filler.unlink()  # room again: the cache is written and used
    warnings, _ = _fingerprint_with_cache(model)
    assert warnings == []
    _, out = _fingerprint_with_cache(model)
    assert _from_cache(out) > 0


def test_the_stat_cache_on_a_read_only_disk_is_read_not_written(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(small_disk / "cache"))
    monkeypatch.chdir(tmp_path)
    model = make_setup(tmp_path).model
    expected = ok(["fingerprint", "model", model])  # fills the cache
    _remount_read_only(small_disk)
    warnings, out = _fingerprint_with_cache(model)
    assert len(warnings) == 1, warnings
    assert "read-only" in warnings[0]
    assert _from_cache(out) > 0  # the cache is read
    assert ok(["fingerprint", "model", model]) == expected
    weights = model / "model.safetensors"  # attest model and prove use the same cache
    assert run(["attest", "model", "--subject", model, "--key", "trainer"]).exit_code == 0
    proved = run(["prove", weights, "--tensor", "lm_head.weight", "--out", tmp_path / "p.json"])
    assert proved.exit_code == 0, proved.output
    assert "warning: not updating the stat cache" in proved.stderr, proved.output


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


# --- the gate over the embedded chain's contracts -------------------------------------------


def _on_chain(root: Path) -> Setup:
    """A release recorded with the chain backend: contracts on the embedded chain, the
    trainer and qa granted there, a registered, evaluated and approved model."""
    setup = make_setup(root)
    setup.store.create("admin", PASSWORD)
    addr = {k.name: k.keyid for k in setup.store.list_keys()}
    ok(["chain", "deploy", "--key", "admin"])
    ok(["chain", "grant", addr["trainer"], "--org", "acme", "--role", "trainer", "--key",
        "admin", "--consent-key", "trainer"])  # fmt: skip
    ok(["chain", "grant", addr["qa"], "--org", "acme", "--role", "qa", "--key", "trainer",
        "--consent-key", "qa"])  # fmt: skip
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
        "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    ok(["eval", "record", "triage@1.0", "--name", "accuracy", "--metric", "accuracy=0.93",
        "--threshold", "accuracy>=0.9", "--key", "trainer"])  # fmt: skip
    ok(["approve", "triage@1.0", "--role", "qa", "--key", "qa"])
    return setup


def _chain_gate(setup: Setup) -> None:
    args = ["gate", "triage@1.0", "--policy", setup.policy, "--env", "prod", "--backend", "chain"]
    assert ok(args)["passed"] is True


def test_gate_on_the_chain_backend_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    setup = _on_chain(tmp_path)
    state = setup.root / ".ailedger"
    _chain_gate(setup)  # (a first read-write command may have indexed new log entries)
    ok(["log", "show"])
    before = _snapshot(state)
    with (state / "chain" / "lock").open("rb") as lock:
        # another reader holds the chain: the gate, a reader too, shares it (a writer's
        # exclusive lock would wait for it and fail)
        fcntl.flock(lock.fileno(), fcntl.LOCK_SH)
        _chain_gate(setup)
    after = _snapshot(state)
    assert {k: v for k, v in after.items() if not k.endswith(("-shm", "-wal"))} == {
        k: v for k, v in before.items() if not k.endswith(("-shm", "-wal"))
    }
    grown = [k for k in after if k.endswith("-wal") and after[k][0] != before.get(k, (b"",))[0]]
    assert grown == []  # no frame written to a write-ahead log either


def test_gate_on_the_chain_backend_on_a_read_only_disk(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(small_disk)
    setup = _on_chain(small_disk)
    _remount_read_only(small_disk)
    _chain_gate(setup)
    # and a command that writes to the chain says why it cannot
    result = run(["approve", "triage@1.0", "--role", "qa", "--key", "qa", "--backend", "chain"])
    assert result.exit_code == FULL, result.output

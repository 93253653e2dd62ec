"""The embedded chain opened ``read_only`` reads and cannot write (issue 11, item 11)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from ailedger.chain._connect import open_embedded
from ailedger.chain.client import Chain
from ailedger.errors import StorageError

OTHER = "0x" + "11" * 20


def _files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.endswith(("-shm", "-wal"))
    }


def test_read_only_chain_reads_and_refuses_transactions(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    with open_embedded(directory) as chain:
        chain.fund(OTHER, 10**18)
        head = chain.block_number()
    before = _files(directory)
    with open_embedded(directory, read_only=True) as chain:
        assert chain.block_number() == head
        assert chain.balance(OTHER) == 10**18
        with pytest.raises(StorageError, match="read-only"):
            chain.fund(OTHER, 1)
    assert _files(directory) == before
    with open_embedded(directory) as chain:  # and a writer still can
        assert chain.block_number() == head
        chain.fund(OTHER, 1)
        assert chain.balance(OTHER) == 10**18 + 1


def test_full_disk_under_the_embedded_chain_is_a_storage_error(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        directory = disk / "chain"
        with open_embedded(directory) as chain:
            chain.fund(OTHER, 10**18)
            head = chain.block_number()
        filler = disk / "filler"
        with open_embedded(directory) as chain:  # open (its -shm exists), then the disk fills
            _fill(filler)
            with pytest.raises(StorageError, match="disk is full"):
                _fund_until_it_fails(chain)
        filler.unlink()
        with open_embedded(directory) as chain:  # every block is whole or absent
            mined = chain.block_number() - head
            assert chain.balance(OTHER) == 10**18 + mined
            chain.fund(OTHER, 1)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fund_until_it_fails(chain: Chain) -> None:
    for _ in range(200):  # the first block that needs a new page fails
        chain.fund(OTHER, 1)


def _fill(filler: Path) -> None:
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            assert _write_until_full(fd, size) == errno.ENOSPC
    finally:
        os.close(fd)


def _write_until_full(fd: int, size: int) -> int | None:
    try:
        while True:
            os.write(fd, b"\0" * size)
    except OSError as exc:
        return exc.errno

"""Fixtures of the service tests: a server workspace and a running ``ailedger serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _log_util import ALICE
from _service import Service, server_workspace


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    """``ailedger serve`` over a fresh workspace, ALICE allowed, checkpoints every 20 ms."""
    server_workspace(tmp_path / "server")
    with Service(
        tmp_path / "server", "--allow", ALICE.address, "--checkpoint-interval-ms", "20"
    ) as service:
        yield service

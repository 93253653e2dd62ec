"""A real anvil node for tests: :class:`Anvil`, :func:`free_port`, :func:`require_anvil`.

anvil comes from the npm package ``@foundry-rs/anvil`` (``npm ci`` in CI). :class:`Anvil`
starts the platform binary itself when it can find it (so a SIGKILL hits anvil, not the
node.js launcher), otherwise ``node_modules/.bin/anvil`` in its own process group; it waits
until the node answers ``eth_chainId`` and stops it by its PID. The fixtures that start
nodes (``anvil_node``, ``make_anvil``) live in ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANVIL_LAUNCHER = REPO / "node_modules" / ".bin" / "anvil"
ANVIL_BINARY = REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_anvil() -> None:
    """Skip the calling test when anvil is not installed."""
    if not ANVIL_LAUNCHER.exists():
        pytest.skip("node_modules/.bin/anvil is missing: run `npm ci` in the repository root")


def _rpc(url: str, method: str, params: list[object] | None = None) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        return json.loads(response.read())["result"]


class Anvil:
    """One anvil process on 127.0.0.1:``port``; restartable on the same port and state."""

    def __init__(self, port: int, state: Path | None = None) -> None:
        self.port = port
        self.state = state
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Anvil:
        args = ["--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state is not None:
            args += ["--state", str(self.state), "--state-interval", "1"]
        direct = ANVIL_BINARY.is_file()
        exe = ANVIL_BINARY if direct else ANVIL_LAUNCHER
        self.proc = subprocess.Popen(
            [str(exe), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=not direct,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"anvil exited with {self.proc.returncode}: {err}")
            try:
                _rpc(self.url, "eth_chainId")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("anvil did not answer within 30 s") from None
                time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        if ANVIL_BINARY.is_file():
            os.kill(proc.pid, sig)
        else:
            os.killpg(proc.pid, sig)  # the launcher's group: node and the binary
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def wait_state_saved(self, block: int) -> None:
        """Wait until the --state file holds ``block`` (anvil writes it every second)."""
        assert self.state is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if json.loads(self.state.read_text())["best_block_number"] >= block:
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"anvil never saved block {block} to {self.state}")

    def mine(self, blocks: int = 1) -> None:
        _rpc(self.url, "anvil_mine", [hex(blocks)])

    def rpc(self, method: str, params: list[object] | None = None) -> object:
        return _rpc(self.url, method, params)

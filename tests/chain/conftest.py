"""Fixtures for the chain client: a real anvil node, and one ``chain`` per backend.

anvil comes from the npm package ``@foundry-rs/anvil`` (``npm ci`` in CI). The fixture
starts the platform binary itself when it can find it (so a SIGKILL hits anvil, not the
node.js launcher), otherwise ``node_modules/.bin/anvil`` in its own process group; it
waits until the node answers ``eth_chainId`` and stops it by its PID at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ailedger.chain import ANVIL_CHAIN_ID, Chain, connect_rpc, open_embedded

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACTS = FIXTURES / "artifacts"
ANVIL_LAUNCHER = REPO / "node_modules" / ".bin" / "anvil"
ANVIL_BINARY = REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ETHER = 10**18


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _require_anvil() -> None:
    if not ANVIL_LAUNCHER.exists():
        pytest.skip("node_modules/.bin/anvil is missing: run `npm ci` in the repository root")


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[Anvil]:
    """One anvil shared by the conformance suite (tests use fresh accounts)."""
    _require_anvil()
    node = Anvil(free_port()).start()
    yield node
    node.stop()


@pytest.fixture
def make_anvil(tmp_path: Path) -> Iterator[Callable[..., Anvil]]:
    """Start private anvils (optionally with ``--state``); all stopped at teardown."""
    _require_anvil()
    started: list[Anvil] = []

    def make(state: bool = False) -> Anvil:
        node = Anvil(free_port(), tmp_path / f"anvil-state-{len(started)}.json" if state else None)
        started.append(node)
        return node.start()

    yield make
    for node in started:
        node.stop(signal.SIGKILL)


class Backend:
    """Opens (and reopens) a :class:`Chain` on one backend, for restart tests."""

    def __init__(self, kind: str, tmp_path: Path, anvil: Anvil | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.anvil = anvil
        self.opened: list[Chain] = []
        #: Where contract artifacts come from: the test fixtures (Probe), or None for the
        #: ones shipped in the package (Membership, LogAnchors, ModelRegistry).
        self.artifacts_dir: Path | None = ARTIFACTS

    def open(self) -> Chain:
        if self.kind == "embedded":
            chain = open_embedded(self.tmp_path / "chain", artifacts_dir=self.artifacts_dir)
        else:
            assert self.anvil is not None
            chain = connect_rpc(
                self.anvil.url,
                chain_id=ANVIL_CHAIN_ID,
                index_path=self.tmp_path / "events.sqlite",
                artifacts_dir=self.artifacts_dir,
                retries=1,
                backoff=0.05,
            )
        self.opened.append(chain)
        return chain

    def restart(self, chain: Chain, *, kill: bool = False) -> Chain:
        """Close ``chain``, restart the node (SIGKILL if ``kill``), and open it again."""
        head = chain.block_number()
        chain.close()
        if self.anvil is not None:
            if self.anvil.state is not None:
                self.anvil.wait_state_saved(head)
            self.anvil.stop(signal.SIGKILL if kill else signal.SIGTERM)
            self.anvil.start()
        return self.open()

    def close_all(self) -> None:
        for chain in self.opened:
            with contextlib.suppress(Exception):  # already closed, or its node is gone
                chain.close()


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    anvil = None
    if request.param == "anvil":
        anvil = request.getfixturevalue("anvil_node")
    b = Backend(request.param, tmp_path, anvil)
    yield b
    b.close_all()


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.chain)])
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A backend whose node can be restarted: anvil with its own --state file."""
    anvil = None
    if request.param == "anvil":
        anvil = request.getfixturevalue("make_anvil")(state=True)
    b = Backend(request.param, tmp_path, anvil)
    yield b
    b.close_all()


@pytest.fixture
def chain(backend: Backend) -> Chain:
    return backend.open()


@pytest.fixture
def account(chain: Chain) -> LocalAccount:
    """A fresh account holding 10 ether on ``chain``."""
    acct: LocalAccount = Account.create()
    chain.fund(acct.address, 10 * ETHER)
    return acct

"""Run ``ailedger serve`` as a real child process on 127.0.0.1 for the service tests.

:class:`Service` starts the installed ``ailedger`` script (a free port via ``--port 0``), reads
its JSON ready line, and stops it by its PID (SIGTERM, or SIGKILL for crash tests).
:func:`server_workspace` makes a workspace whose log key is :data:`LOG_SIGNER`.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from _cli import AILEDGER, PASSWORD
from _log_util import LOG_SIGNER
from _workflow_util import fast_keystore
from ailedger.log import Checkpoint, Secp256k1NoteKey, SignedNote
from ailedger.workspace import Workspace

ORIGIN = "example.com/served"
#: The verifier key of the served log (what clients trust).
LOG_KEY = Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address)
#: Generous: only a guard against a hung child, never a performance bound.
START_TIMEOUT_S = 120.0


def server_workspace(root: Path) -> Workspace:
    """A workspace at ``root`` whose default log key ``logkey`` is LOG_SIGNER."""
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace.init(root, origin=ORIGIN, log_key="logkey")
    fast_keystore(ws).add("logkey", LOG_SIGNER, PASSWORD)
    return ws


class Service:
    """One ``ailedger serve`` child process over the workspace at ``root``."""

    command: tuple[str, ...] = ("serve",)
    #: Name the workspace as the command's argument (``serve DIR``), not with --workspace.
    by_argument = False

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self._stderr = b""  # read from the pipe, not yet matched by wait_stderr

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    def wait_stderr(self, text: str, *, polls: int = 12_000) -> str:
        """Read the child's stderr until a line contains ``text``; that line (the lines before
        it are consumed). Reads the pipe's descriptor itself: select() on the buffered
        ``proc.stderr`` misses the lines its buffer already holds (a quiet child then looked as
        if it never logged them). ``polls`` of 10 ms: a guard against a hang, not a bound."""
        proc = self.proc
        assert proc is not None
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        for _ in range(polls):
            while b"\n" in self._stderr:
                line, self._stderr = self._stderr.split(b"\n", 1)
                decoded = line.decode(errors="replace")
                if text in decoded:
                    return decoded
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                self._stderr += chunk
        raise AssertionError(f"ailedger {' '.join(self.command)} never logged {text!r}")

    def start(self) -> Self:
        env = {
            k: v for k, v in os.environ.items() if k not in ("AILEDGER_HOME", "AILEDGER_RPC_URL")
        }
        env["AILEDGER_PASSWORD"] = PASSWORD
        if self.by_argument:
            cmd = [str(AILEDGER), *self.command, str(self.root), "--port", "0", "--json"]
        else:
            where = ["--workspace", str(self.root)]
            cmd = [str(AILEDGER), *where, *self.command, "--port", "0", "--json"]
        self.proc = subprocess.Popen(
            [*cmd, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line:
                    self.ready = json.loads(line)
                    return self
            if self.proc.poll() is not None:
                break
        err = self.proc.stderr.read().decode() if self.proc.stderr and self.proc.poll() else ""
        self.stop(signal.SIGKILL)
        raise AssertionError(f"ailedger {' '.join(self.command)} did not start: {err}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` to the child by its PID and reap it; its exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request: (status, lower-cased headers, body)."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(service: Service, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST /v1/entries: (status, JSON body); an error must be problem+json."""
    status, headers, data = service.request("POST", "/v1/entries", body)
    if status >= 400:
        assert headers["content-type"] == "application/problem+json", headers
    doc = json.loads(data)
    assert isinstance(doc, dict)
    return status, doc


def wait_for_checkpoint(service: Service, size: int) -> SignedNote:
    """Poll /checkpoint until it covers ``size`` entries (a guard, not a timing check); a 503
    (none published yet: with witnesses, until k of them cosigned) is waited out."""
    for _ in range(12000):
        status, _, body = service.request("GET", "/checkpoint")
        if status == 503:
            time.sleep(0.01)
            continue
        assert status == 200, body
        note = SignedNote.parse(body.decode())
        if Checkpoint.parse(note.text).size >= size:
            return note
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of size {size}")

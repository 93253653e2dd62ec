"""Child processes of the installed ``ailedger`` script, started and stopped by PID.

:class:`Child` runs ``ailedger --workspace W <command> --port 0 --json ...`` (``serve``,
``witness serve``) with standard output and standard error in files beside the workspace,
waits for the JSON ready line the command prints once it listens, and :meth:`Child.stop`
sends SIGTERM to its PID and reaps it (SIGKILL if it does not exit). :class:`Children` keeps
every child started, so that one ``finally`` stops them all, whatever failed (or Ctrl-C).
Key passwords go through a file (``--password-file``, mode 0600), never argv or the
environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ailedger.errors import NodeUnavailable, WorkspaceError

__all__ = ["START_TIMEOUT_S", "Child", "Children", "ailedger_script", "alive"]

#: A guard against a hung child only, never a performance bound.
START_TIMEOUT_S = 120.0
#: How long a child may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0


def ailedger_script() -> str:
    """The installed ``ailedger`` script beside this interpreter (else on PATH)."""
    beside = Path(sys.executable).with_name("ailedger")
    if beside.exists():
        return str(beside)
    found = shutil.which("ailedger")
    if found is None:
        raise WorkspaceError(
            "the `ailedger` script is not installed beside this Python nor on PATH",
            hint="pip install 'ailedger[server]'",
        )
    return found


def alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process took the PID
        return True
    return True


class Child:
    """One ``ailedger`` child process over the workspace at ``root``."""

    def __init__(
        self,
        name: str,
        root: Path,
        command: list[str],
        password_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        #: Variables added to the child's environment (never a key or a password).
        self.env = dict(env or {})
        self.root = root
        self.command = command
        self.password_file = password_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.ready: dict[str, Any] = {}
        self.exit_code: int | None = None
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return str(self.ready["url"])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Child:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AILEDGER_HOME", "AILEDGER_RPC_URL", "AILEDGER_PASSWORD")
        }
        env.update(self.env)
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        out_path = logs / f"{self.name}.out"
        self._out = out_path.open("wb")
        self._err = (logs / f"{self.name}.err").open("wb")
        argv = [ailedger_script(), "--workspace", str(self.root), *self.command]
        argv += ["--port", "0", "--json", "--password-file", str(self.password_file)]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, env=env
        )
        self.pid = self.proc.pid
        self.exit_code = None
        self.ready = {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = out_path.read_bytes().split(b"\n", 1)
            if len(line) == 2:
                self.ready = json.loads(line[0])
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        code = self.stop()
        err = (logs / f"{self.name}.err").read_text(errors="replace").strip().splitlines()
        raise NodeUnavailable(
            f"`ailedger {' '.join(self.command[:2])}` ({self.name}) did not start "
            f"(exit {code}): {err[-1] if err else 'no error output'}"
        )

    def stop(self) -> int | None:
        """SIGTERM to the child's PID, then reap it (SIGKILL after STOP_TIMEOUT_S)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            try:
                self.exit_code = proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                self.exit_code = proc.wait()
        for handle in (self._out, self._err):
            if handle is not None:
                handle.close()
        self._out = self._err = None
        return self.exit_code


class Children:
    """Every child started (restarts included), stopped together by :meth:`stop_all`; each
    PID is also appended to ``pid_file`` as it starts (for whoever checks none is left)."""

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.started: list[Child] = []
        self.pids: list[int] = []

    def start(self, child: Child) -> Child:
        self.started.append(child)
        try:
            child.start()
        finally:
            if child.pid is not None and child.pid not in self.pids:
                self.pids.append(child.pid)
                with self.pid_file.open("a") as out:
                    out.write(f"{child.pid} {child.name}\n")
        return child

    def stop_all(self) -> None:
        """Stop every child still running, the last started first."""
        for child in reversed(self.started):
            child.stop()

"""Running an evaluation command: argv without a shell, its own process group, a timeout."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["execute", "exit_problem", "file_stat", "is_pytest", "junit_in_argv"]


def is_pytest(argv: Sequence[str]) -> bool:
    program = os.path.basename(argv[0])
    if program in ("pytest", "py.test"):
        return True
    return any(a == "-m" and b == "pytest" for a, b in itertools.pairwise(argv))


def junit_in_argv(argv: Sequence[str]) -> str | None:
    for i, arg in enumerate(argv):
        for flag in ("--junitxml", "--junit-xml"):
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1]
    return None


def file_stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this command


def execute(
    argv: list[str], timeout: float, cwd: Path | None, env: Mapping[str, str] | None
) -> tuple[int | None, bytes, bytes, float, str | None]:
    """(exit code, stdout, stderr, seconds, problem); exit code None when it did not run."""
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        return None, b"", b"", 0.0, f"could not start {argv[0]!r}: {exc.strerror or exc}"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipes
            out, err = b"", b""
        elapsed = time.perf_counter() - started
        return None, out, err, elapsed, f"timed out after {timeout:g} s and was killed"
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return proc.returncode, out, err, time.perf_counter() - started, None


def exit_problem(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"

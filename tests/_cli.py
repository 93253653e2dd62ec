"""Run ``ailedger`` in-process as a user would, for every layer's CLI tests.

:func:`run` goes through the real entry point (errors become one line and an exit code) with
a clean environment: ``AILEDGER_PASSWORD`` set to :data:`PASSWORD` (or ``password``), no
``AILEDGER_HOME`` and no ``AILEDGER_RPC_URL`` unless ``env`` says so. :func:`ok` and
:func:`fails` assert the outcome; :func:`run_main` calls ``main`` directly under ``capsys``;
:func:`run_process` runs the installed ``ailedger`` script in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from ailedger.cli._app import main

PASSWORD = "s3cret-pass"
AILEDGER = Path(sys.executable).with_name("ailedger")


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _entry(args: tuple[str, ...]) -> None:
    main(list(args))


def run(
    args: Sequence[object],
    *,
    password: str | None = PASSWORD,
    stdin: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Result:
    """Invoke ``ailedger ARGS`` through the real entry point."""
    environ = {"AILEDGER_PASSWORD": password, "AILEDGER_HOME": None, "AILEDGER_RPC_URL": None}
    environ.update(env or {})
    # "--" first: the wrapper passes every argument through, an inner "--" included
    argv = ["--", *(str(a) for a in args)]
    return CliRunner().invoke(_entry, argv, input=stdin, env=environ)


def ok(args: Sequence[object], **kwargs: Any) -> dict[str, Any]:
    """``ailedger ARGS --json`` exits 0 and prints a JSON object: return it."""
    result = run([*args, "--json"], **kwargs)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict), doc
    return doc


def fails(args: Sequence[object], code: int, *needles: str, **kwargs: Any) -> str:
    """``ailedger ARGS`` exits ``code`` and its output names every needle: return the output."""
    result = run(args, **kwargs)
    assert result.exit_code == code, result.output
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Call ``main(ARGS)`` in this process: (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def run_process(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ailedger ARGS`` in a child process, without the caller's
    ``AILEDGER_HOME`` and ``AILEDGER_RPC_URL``."""
    env = {k: v for k, v in os.environ.items() if k not in ("AILEDGER_HOME", "AILEDGER_RPC_URL")}
    return subprocess.run(
        [str(AILEDGER), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )

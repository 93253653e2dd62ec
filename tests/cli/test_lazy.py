"""The CLI imports only the command modules the command being run needs (start-up time);
every top-level command must still see exactly the commands and options a full load gives."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import Any

import pytest
import typer

from ailedger.cli._app import COMMAND_MODULES, app, load_commands


def tree(command: Any) -> dict[str, Any]:
    """A command's options and, for a group, its subcommands, recursively."""
    options = sorted(o for p in command.params for o in [*p.opts, *p.secondary_opts])
    subs = getattr(command, "commands", {})
    return {"options": options, "commands": {n: tree(c) for n, c in sorted(subs.items())}}


def test_every_command_is_mapped_and_every_mapping_exists() -> None:
    load_commands()
    top = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(top) == set(COMMAND_MODULES)


_LOAD_ONE = """
import json, sys, typer
from ailedger.cli._app import app, load_commands
load_commands([sys.argv[1]])
print(json.dumps(tree(typer.main.get_command(app).commands[sys.argv[1]])))
"""


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_a_command_loaded_alone_equals_the_full_load(name: str) -> None:
    load_commands()
    full = tree(typer.main.get_command(app).commands[name])  # type: ignore[attr-defined]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from typing import Any\n" + inspect.getsource(tree) + _LOAD_ONE,
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == full


def test_fingerprinting_does_not_import_the_chain_stack() -> None:
    code = (
        "import sys\n"
        "from ailedger.cli import main\n"
        "try:\n"
        "    main(['fingerprint', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('web3', 'eth_account') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"

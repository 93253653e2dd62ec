"""The CLI imports only the command modules the command being run needs (start-up time);
every top-level command must still see exactly the commands and options a full load gives."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import typer

from ailedger.cli._app import COMMAND_MODULES, COMMAND_PANELS, app, load_commands


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


def test_every_command_has_one_help_panel() -> None:
    """``ailedger --help`` groups every command (none left in Typer's default panel)."""
    load_commands()
    listed = [n for names in COMMAND_PANELS.values() for n in names]
    assert sorted(listed) == sorted(COMMAND_MODULES)
    assert len(listed) == len(set(listed))
    top = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    panels = {name: getattr(cmd, "rich_help_panel", None) for name, cmd in top.items()}
    assert panels == {n: p for p, names in COMMAND_PANELS.items() for n in names}


def test_the_readme_command_map_has_the_help_panels() -> None:
    """The README's command map lists the same groups, in the same order, with the same
    commands as ``ailedger --help``."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Command map", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    found = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        found[cells[0]] = tuple(c.strip("` ") for c in cells[1].split(","))
    assert list(found) == list(COMMAND_PANELS)
    assert found == COMMAND_PANELS


def test_version_loads_no_command_module() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom ailedger.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('ailedger.cli._')"
            " and m not in ('ailedger.cli._app', 'ailedger.cli._common')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == ["ailedger 0.1.0", "[]"]


def test_the_root_help_imports_no_command_and_equals_the_full_help() -> None:
    """``ailedger --help`` lists every command from COMMAND_HELP without importing a command
    module (start-up), and shows exactly what a full load of the commands shows."""
    lazy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom ailedger.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in sys.modules if m.startswith('ailedger.cli._')]\n"
            "print('LOADED', sorted(set(loaded) - {'ailedger.cli._app', 'ailedger.cli._common'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100", "TERM": "dumb"},
    ).stdout
    full = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ailedger.cli._app import load_commands, main\nload_commands()\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "100", "TERM": "dumb"},
    ).stdout
    help_text, loaded = lazy.rsplit("LOADED ", 1)
    assert loaded.strip() == "[]"
    assert help_text == full
    assert all(name in help_text for name in COMMAND_MODULES)

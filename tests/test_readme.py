"""The README's examples are real: every `ailedger ...` line names an existing command and
only options that command has; the exit-code table matches ``ailedger.errors``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

from ailedger.cli import app, load_commands
from ailedger.errors import EXIT_CODES

README = Path(__file__).resolve().parents[1] / "README.md"


def _bash_lines() -> list[str]:
    text = README.read_text()
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("ailedger "):
                lines.append(line)
    return lines


def _resolve(tokens: list[str]) -> tuple[Any, list[str]]:
    # typer ships its own click; duck-type groups by their ``commands`` mapping.
    load_commands()
    command: Any = typer.main.get_command(app)
    rest = tokens
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command = command.commands[rest[0]]
        rest = rest[1:]
    return command, rest


def test_readme_has_examples() -> None:
    assert len(_bash_lines()) >= 15


def test_every_readme_command_exists_with_its_options() -> None:
    for line in _bash_lines():
        tokens = shlex.split(line)[1:]
        command, rest = _resolve(tokens)
        runnable = not hasattr(command, "commands") or command.invoke_without_command
        assert runnable, f"incomplete command: {line}"
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        if "--" in rest:  # what follows `--` is the command being run, not our options
            rest = rest[: rest.index("--")]
        for token in rest:
            if token.startswith("--"):
                flag = token.split("=")[0]
                assert flag in options, f"{line}: {command.name} has no option {flag}"


def test_exit_code_table_matches_the_errors_module() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", README.read_text(), flags=re.M)
    assert {int(code) for code, _ in rows} == set(EXIT_CODES)

"""``ailedger demo``: the whole path, for real, in a fresh directory."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ailedger._demo import Step, run_demo
from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.errors import AiledgerError, ConflictError

__all__ = ["demo"]


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Run in this (new or empty) directory and keep it; default: a temp dir."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the end-to-end demo on the shipped sample model and dataset."""

    def show(step: Step) -> None:
        if as_json:
            return
        mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
        note = " [dim](expected rejection)[/dim]" if step.expected_failure else ""
        console.print(f"{mark} [bold]{escape(step.title)}[/bold]{note}")
        console.print(f"    {escape(step.detail)}")

    def go(workdir: Path) -> None:
        result = run_demo(workdir, on_step=show)
        if as_json:
            emit(result.to_dict(), True)
        elif result.ok:
            console.print(f"\n[green]demo passed[/green]: {len(result.steps)} steps in {workdir}")
        if not result.ok:
            failed = [s.title for s in result.steps if not s.ok]
            raise AiledgerError(f"demo steps did not behave as expected: {', '.join(failed)}")

    if directory is not None:
        if directory.exists() and any(directory.iterdir()):
            raise ConflictError(f"{directory} is not empty", hint="pass a new or empty directory")
        go(directory)
        return
    with tempfile.TemporaryDirectory(prefix="ailedger-demo-") as tmp:
        go(Path(tmp))

"""``ailedger demo``: the whole path, for real, in a fresh directory.

Part one shows fingerprints, proofs, signed statements, the log and receipts on the shipped
samples; part two trains a scikit-learn classifier and takes it through register, evaluate,
approve, gate, deploy, a tampered artifact, a rollback, trace, anchoring and an inference
record on the embedded chain. ``--json`` prints every step and the summary.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ailedger._demo import DemoResult, Step, run_demo
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
    """Run the whole path for real: proofs on the shipped samples, then a scikit-learn model
    registered, evaluated, approved, gated, deployed, tampered with, rolled back, traced and
    anchored on the embedded chain (needs the ml extra: pip install 'ailedger[ml]')."""

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
            _summary(result, keep=directory is not None)
        if not result.ok:
            failed = [s.title for s in result.steps if not s.ok]
            raise AiledgerError(f"demo steps did not behave as expected: {', '.join(failed)}")

    if directory is not None:
        directory = directory.resolve()
        if directory.exists() and any(directory.iterdir()):
            raise ConflictError(f"{directory} is not empty", hint="pass a new or empty directory")
        go(directory)
        return
    with tempfile.TemporaryDirectory(prefix="ailedger-demo-") as tmp:
        go(Path(tmp))


def _summary(result: DemoResult, *, keep: bool) -> None:
    s = result.summary
    console.print(f"\n[green]demo passed[/green]: {len(result.steps)} steps in {result.workdir}")
    if s:
        tree = s["lineage"]
        anchor = s["anchor"]
        console.print(
            f"  prod serves {s['serving']['prod']}; models {', '.join(s['models'])}; "
            f"{s['log_entries']} log entries"
        )
        console.print(
            f"  {tree['model']}: {tree['datasets']} dataset, {tree['evaluations']} evaluations, "
            f"{tree['approvals']} approvals, {tree['deployment_events']} deployment events"
        )
        console.print(
            f"  log anchored on chain {anchor['chain_id']} at size {anchor['size']} "
            f"(anchor #{anchor['anchor']}, block {anchor['block']})"
        )
    if not keep:
        console.print("  (a temporary directory, now removed: pass --dir DIR to keep it)")
    else:
        console.print(
            f"  explore it: cd {escape(str(result.workdir))} && ailedger lineage "
            "cancer-classifier@1 (or trace, gate, verify receipt ...)"
        )

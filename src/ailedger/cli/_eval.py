"""``ailedger eval run`` and ``ailedger eval record``: signed evaluation results in the log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit, err_console
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
)
from ailedger.cli._workflow import KeyOpt, PasswordFileOpt, signed_registry
from ailedger.errors import InvalidInput
from ailedger.registry import Recorded
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import EvaluationResult, record_evaluation, run_evaluation

__all__ = ["eval_app", "parse_metric"]

eval_app = typer.Typer(
    help="Run evaluations and sign their results (pass or fail).", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

NameOpt = Annotated[
    str, typer.Option("--name", help="Evaluation name (e.g. accuracy, bias-audit).")
]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option("--threshold", help="A requirement like 'accuracy>=0.9' (repeat)."),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option("--dataset", help="The registered evaluation dataset NAME@VERSION."),
]


def parse_metric(item: str) -> tuple[str, float]:
    """``NAME=NUMBER`` (finite)."""
    name, sep, raw = item.partition("=")
    if not sep or not name.strip():
        raise InvalidInput(f"--metric {item!r}: expected NAME=NUMBER")
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"--metric {name}: {raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"--metric {name}: the value must be finite")
    return name.strip(), value


def _report(result: EvaluationResult, recorded: Recorded, as_json: bool) -> None:
    data = {**recorded.to_dict(), "result": result.to_dict()}

    def human() -> None:
        colour = "green" if result.passed else "red"
        console.print(f"[{colour}]{escape(result.summary())}[/{colour}]")
        console.print(f"signed and logged as entry {recorded.log_index} about {recorded.ref}")

    emit(data, as_json, human)
    if not result.passed:
        err_console.print(f"[red]evaluation {escape(result.name)} did not pass[/red]")
        raise typer.Exit(1)


@eval_app.command("run")
def run_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    command: Annotated[list[str], typer.Argument(help="The command, after --.")],
    name: NameOpt,
    key: KeyOpt,
    threshold: ThresholdOpt = None,
    dataset: DatasetOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before it is killed.")] = (
        3600.0
    ),
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="JSON metrics the command writes.")
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Run COMMAND, judge it against the thresholds, and sign the result (exit 1 if failed)."""
    version = VersionRef.parse(ref)
    with signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (
        registry,
        signer,
    ):
        registry.model(version)
        root = registry.dataset(VersionRef.parse(dataset)).root if dataset else None
        result = run_evaluation(
            command,
            name=name,
            thresholds=threshold or [],
            timeout=timeout,
            metrics_file=metrics_file,
            dataset_root=root,
        )
        recorded = registry.record_evaluation(version, result, signer)
    _report(result, recorded, as_json)


@eval_app.command("record")
def record_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    name: NameOpt,
    key: KeyOpt,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="A measured NAME=NUMBER (repeat).")
    ] = None,
    threshold: ThresholdOpt = None,
    dataset: DatasetOpt = None,
    exit_code: Annotated[
        int | None, typer.Option("--exit-code", help="Exit code of the evaluation run.")
    ] = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Tool that computed it.")] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Sign metrics computed elsewhere (exit 1 if they fail a threshold)."""
    version = VersionRef.parse(ref)
    metrics = dict(parse_metric(m) for m in metric or [])
    if not metrics:
        raise InvalidInput("give at least one --metric NAME=NUMBER")
    with signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (
        registry,
        signer,
    ):
        registry.model(version)
        root = registry.dataset(VersionRef.parse(dataset)).root if dataset else None
        result = record_evaluation(
            name, metrics, threshold or [], exit_code=exit_code, dataset_root=root, tool=tool
        )
        recorded = registry.record_evaluation(version, result, signer)
    _report(result, recorded, as_json)

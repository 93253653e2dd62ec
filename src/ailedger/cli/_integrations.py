"""``ailedger integrations mlflow import`` and ``ailedger integrations dvc import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
)
from ailedger.cli._workflow import (
    KeyOpt,
    PasswordFileOpt,
    print_recorded,
    signed_registry,
)
from ailedger.integrations.dvc import import_dvc
from ailedger.integrations.mlflow import ImportedVersion, import_mlflow, read_model_versions
from ailedger.registry._refs import VersionRef

__all__ = ["dvc_app", "integrations_app", "mlflow_app"]

integrations_app = typer.Typer(
    help="Register models and datasets from other tools (MLflow, DVC).", no_args_is_help=True
)
app.add_typer(integrations_app, name="integrations")
mlflow_app = typer.Typer(help="Import from an MLflow tracking store.", no_args_is_help=True)
integrations_app.add_typer(mlflow_app, name="mlflow")
dvc_app = typer.Typer(help="Import datasets tracked by DVC.", no_args_is_help=True)
integrations_app.add_typer(dvc_app, name="dvc")


def _show_versions(imported: list[ImportedVersion]) -> None:
    for item in imported:
        v = item.version
        if item.model is None:
            console.print(f"skipped {escape(v.name)} version {v.version}: {item.skipped[0]}")
            continue
        print_recorded(item.model, f"MLflow {v.name} v{v.version} (run {v.run_id or '-'}) ->")
        for ev in item.evaluations:
            console.print(f"  {escape(ev.predicate.get('name') or '')}: entry {ev.log_index}")
        for note in item.skipped:
            console.print(f"  skipped {escape(note)}")


@mlflow_app.command("import")
def mlflow_import_cmd(
    tracking_uri: Annotated[
        str,
        typer.Option(
            "--tracking-uri", help="An mlruns directory, a file:// URI or sqlite:///PATH."
        ),
    ],
    model: Annotated[str, typer.Option("--model", help="The MLflow registered model name.")],
    key: KeyOpt,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Register under this name (default: the MLflow name)."),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="A registered training dataset NAME@VERSION (repeat)."),
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Register every version of an MLflow model with its parameters and metrics."""
    datasets = [VersionRef.parse(d) for d in dataset or []]
    if name is not None:
        VersionRef(name, "1")  # check the name before reading the store
    versions = read_model_versions(tracking_uri, model)
    with signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (
        registry,
        signer,
    ):
        imported = import_mlflow(registry, versions, signer, name=name, datasets=datasets)
    data = {
        "model": model,
        "tracking_uri": tracking_uri,
        "versions": [i.to_dict() for i in imported],
    }
    emit(data, as_json, lambda: _show_versions(imported))


@dvc_app.command("import")
def dvc_import_cmd(
    dvc_file: Annotated[Path, typer.Argument(help="The .dvc file of the dataset.")],
    name: Annotated[str, typer.Option("--name", help="Registered name.")],
    version: Annotated[str, typer.Option("--version", help="Version of this dataset.")],
    key: KeyOpt,
    format: Annotated[
        str | None,
        typer.Option("--format", help="csv, jsonl, parquet or files (default: detect)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="The DVC cache directory (default: the repository's)."),
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Verify a DVC-tracked dataset in the cache against its .dvc file and register it."""
    ref = VersionRef(name, version)
    with signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (
        registry,
        signer,
    ):
        recorded, verified = import_dvc(registry, dvc_file, ref, signer, format=format, cache=cache)
    out = verified.output
    extra = {
        "dvc": {
            "path": out.path,
            "md5": out.md5 + (".dir" if out.is_dir else ""),
            "hash": out.hash_name,
            "files": len(verified.files),
            "size": verified.size,
        }
    }
    data = {**recorded.to_dict(), **extra}

    def human() -> None:
        print_recorded(recorded, "registered dataset")
        console.print(
            f"  verified {len(verified.files)} cached file(s) of {escape(out.path)} "
            f"({out.hash_name} {out.md5})"
        )

    emit(data, as_json, human)

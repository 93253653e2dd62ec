"""``ailedger dataset register``, ``ailedger model register`` and ``ailedger approve``.

``dataset`` is a new group; ``model register`` joins the ``model`` group of
:mod:`ailedger.cli._model_sign` (``model sign``, ``model verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, QuietOpt, byte_progress, console, emit, file_size
from ailedger.cli._model_sign import model_app
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
)
from ailedger.cli._workflow import (
    BackendOpt,
    KeyOpt,
    PasswordFileOpt,
    RpcOpt,
    check_in_step,
    print_recorded,
    signed_registry,
)
from ailedger.errors import InvalidInput, NotFound
from ailedger.registry._refs import VersionRef, parse_param, parse_time
from ailedger.registry.provenance import RunInfo, record_provenance

__all__ = ["dataset_app", "dataset_register_cmd", "model_register_cmd"]

dataset_app = typer.Typer(help="Register dataset versions.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
# `model register` joins the existing `model` group (sign, verify) of _model_sign.

NameOpt = Annotated[str, typer.Option("--name", help="Registered name.")]
VersionOpt = Annotated[str, typer.Option("--version", help="Version of this artifact.")]


@dataset_app.command("register")
def dataset_register_cmd(
    path: Annotated[Path, typer.Argument(help="The dataset file or directory.")],
    name: NameOpt,
    version: VersionOpt,
    key: KeyOpt,
    format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl, parquet or files (default: detect).")
    ] = None,
    salt_secret: Annotated[
        Path | None,
        typer.Option(
            "--salt-secret",
            help="File holding the dataset secret that derives the leaf salts (default: "
            "DATA.ailedger-secret, created when missing; kept off-chain).",
        ),
    ] = None,
    unsalted: Annotated[
        bool, typer.Option("--unsalted", help="No salts: for public data only (records guessable).")
    ] = False,
    password_file: PasswordFileOpt = None,
    skip_lines: Annotated[
        int,
        typer.Option("--skip-lines", min=0, help="CSV: skip N leading lines before the header."),
    ] = 0,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV: no header row, every row is a record.")
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Fingerprint a dataset and sign a dataset statement NAME@VERSION into the log.

    Salted by default, as `fingerprint dataset` is: the secret is read from --salt-secret or
    DATA.ailedger-secret (created, mode 0600, when missing); --unsalted for public data."""
    ref = VersionRef(name, version)
    if not path.exists():
        raise NotFound(f"no such dataset: {path}")
    from ailedger.cli._dataset import dataset_secret

    secret = dataset_secret(path, salt_secret, unsalted, create=True)
    total = file_size(path)
    with (
        signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (registry, signer),
        byte_progress("fingerprinting", total, enabled=not (quiet or as_json)) as bar,
    ):
        recorded = registry.register_dataset(
            path,
            ref,
            signer,
            format=format,
            secret=secret,
            skip_lines=skip_lines,
            header_row=not no_header,
            progress=bar,
        )
    emit(recorded.to_dict(), as_json, lambda: print_recorded(recorded, "registered dataset"))


@model_app.command("register")
def model_register_cmd(
    path: Annotated[Path, typer.Argument(help="The model file or directory.")],
    name: NameOpt,
    version: VersionOpt,
    key: KeyOpt,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="A registered training dataset NAME@VERSION (repeat)."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="A hyperparameter KEY=VALUE (repeat).")
    ] = None,
    code_revision: Annotated[
        str | None, typer.Option("--code-revision", help="Revision of the training code.")
    ] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team that trained it.")] = None,
    slsa: Annotated[
        bool,
        typer.Option(
            "--slsa", help="Also sign SLSA Provenance v1 of the training run into the log."
        ),
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="With --slsa: the training run's id.")
    ] = None,
    started_on: Annotated[
        str | None,
        typer.Option("--started-on", help="With --slsa: when training started (RFC 3339)."),
    ] = None,
    finished_on: Annotated[
        str | None,
        typer.Option("--finished-on", help="With --slsa: when training finished (RFC 3339)."),
    ] = None,
    builder_id: Annotated[
        str | None,
        typer.Option(
            "--builder-id", help="With --slsa: builder.id (default: the key and its org)."
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    backend: BackendOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Fingerprint a model and sign its manifest and training metadata into the log;
    with --slsa, also its SLSA Provenance v1 (docs/provenance.md)."""
    ref = VersionRef(name, version)
    run_options = {
        "--run-id": run_id,
        "--started-on": started_on,
        "--finished-on": finished_on,
        "--builder-id": builder_id,
    }
    given = [flag for flag, value in run_options.items() if value is not None]
    if given and not slsa:
        raise InvalidInput(f"{', '.join(given)} needs --slsa (it describes the SLSA provenance)")
    run = RunInfo(
        invocation_id=run_id,
        started_on=None if started_on is None else parse_time(started_on),
        finished_on=None if finished_on is None else parse_time(finished_on),
        builder_id=builder_id,
    )
    datasets = [VersionRef.parse(d) for d in dataset or []]
    params: dict[str, Any] = {}
    for item in param or []:
        k, v = parse_param(item)
        if k in params:
            raise InvalidInput(f"--param {k} is given twice")
        params[k] = v
    if not path.exists():
        raise NotFound(f"no such model: {path}")
    with signed_registry(
        key, password_file, backend=backend, rpc=rpc, log_url=log_url, log_key=log_key
    ) as (
        registry,
        signer,
    ):
        recorded = registry.register_model(
            path,
            ref,
            signer,
            datasets=datasets,
            params=params,
            code_revision=code_revision,
            team=team,
        )
        provenance = record_provenance(registry, ref, signer, run) if slsa else None
        check_in_step(registry, refs=[ref])
    doc = recorded.to_dict()
    if provenance is not None:
        doc["provenance"] = provenance.to_dict()

    def human() -> None:
        print_recorded(recorded, "registered model")
        if provenance is not None:
            print_recorded(provenance, "signed SLSA provenance of")

    emit(doc, as_json, human)


@app.command("approve")
def approve_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    role: Annotated[str, typer.Option("--role", help="The role you approve as (e.g. qa).")],
    key: KeyOpt,
    comment: Annotated[str | None, typer.Option("--comment", help="A comment to sign.")] = None,
    reject: Annotated[
        bool, typer.Option("--reject", help="Sign a rejection instead of an approval.")
    ] = False,
    password_file: PasswordFileOpt = None,
    backend: BackendOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Approve (or --reject) a model version for a role; the key must hold the role."""
    version = VersionRef.parse(ref)
    with signed_registry(
        key, password_file, backend=backend, rpc=rpc, log_url=log_url, log_key=log_key
    ) as (
        registry,
        signer,
    ):
        recorded = registry.approve(version, role, signer, comment=comment, reject=reject)
        check_in_step(registry, refs=[version])
    verb = "rejected" if reject else "approved"

    def human() -> None:
        print_recorded(recorded, f"{verb} as {recorded.predicate['role']}")
        if reject:
            console.print("a rejection blocks the gate until the approver approves again")

    emit(recorded.to_dict(), as_json, human)

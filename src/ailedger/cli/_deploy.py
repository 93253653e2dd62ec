"""``ailedger gate``, ``deploy``, ``rollback``, ``deprecate`` and ``infer record``."""

from __future__ import annotations

import json
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
    remote_for,
)
from ailedger.cli._workflow import (
    BackendOpt,
    KeyOpt,
    PasswordFileOpt,
    RpcOpt,
    check_in_step,
    open_registry,
    print_recorded,
    refuse_out_of_step,
    signed_registry,
    workspace_policy,
)
from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.registry._refs import VersionRef, parse_digest_or_file
from ailedger.registry.policy import GateResult, load_policy

__all__ = ["infer_app", "read_batch"]

infer_app = typer.Typer(help="Record which model produced which output.", no_args_is_help=True)
app.add_typer(infer_app, name="infer")

EnvOpt = Annotated[str, typer.Option("--env", help="Target environment (e.g. prod).")]
PathOpt = Annotated[
    Path | None,
    typer.Option("--path", help="Re-hash this copy (default: the path recorded at register)."),
]


def _show_gate(result: GateResult) -> None:
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    console.print(f"gate {escape(result.model)} -> {escape(result.env)}: {verdict}")
    for line in result.lines():
        console.print(f"  {escape(line)}")


@app.command("gate")
def gate_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    policy: Annotated[Path, typer.Option("--policy", help="The policy file (TOML).")],
    env: Annotated[str, typer.Option("--env", help="Target environment.")] = "prod",
    path: PathOpt = None,
    backend: BackendOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Exit 0 if the version meets the policy for the environment; else list every unmet."""
    version = VersionRef.parse(ref)
    rules = load_policy(policy)
    remote = remote_for(log_url, log_key)
    with open_registry(backend=backend, rpc=rpc, read_only=True, remote=remote) as registry:
        result = registry.gate(version, rules, env, path=path)
        check_in_step(registry, envs=[env], refs=[version])
    emit(result.to_dict(), as_json, lambda: _show_gate(result))
    result.raise_for_unmet()


@app.command("deploy")
def deploy_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    env: EnvOpt,
    key: KeyOpt,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Policy file (default: .ailedger/policy.toml)."),
    ] = None,
    path: PathOpt = None,
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
    """Run the gate, then sign and log the deployment."""
    version = VersionRef.parse(ref)
    rules = workspace_policy(policy)
    with signed_registry(
        key, password_file, backend=backend, rpc=rpc, log_url=log_url, log_key=log_key
    ) as (
        registry,
        signer,
    ):
        refuse_out_of_step(registry, env, version)
        recorded = registry.deploy(version, env, signer, rules, path=path)
        check_in_step(registry, envs=[env], refs=[version])
    emit(recorded.to_dict(), as_json, lambda: print_recorded(recorded, f"deployed to {env}"))


@app.command("rollback")
def rollback_cmd(
    env: EnvOpt,
    key: KeyOpt,
    to: Annotated[
        str | None, typer.Option("--to", help="An earlier version NAME@VERSION of this env.")
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
    """Return the environment to the version that served before the current one (or to --to).

    That is the version that served before the current one became current, skipping
    deprecated versions; each further rollback goes one more step back."""
    target = VersionRef.parse(to) if to is not None else None
    with signed_registry(
        key, password_file, backend=backend, rpc=rpc, log_url=log_url, log_key=log_key
    ) as (
        registry,
        signer,
    ):
        refuse_out_of_step(registry, env, target)
        recorded = registry.rollback(env, signer, to=target)
        check_in_step(registry, envs=[env], refs=[VersionRef.parse(recorded.ref)])
    previous = recorded.predicate.get("previous_version")
    emit(
        recorded.to_dict(),
        as_json,
        lambda: print_recorded(recorded, f"rolled {env} back from {previous} to"),
    )


@app.command("deprecate")
def deprecate_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it must not be deployed.")],
    key: KeyOpt,
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
    """Mark a version deprecated: it can no longer be deployed or rolled back to."""
    version = VersionRef.parse(ref)
    with signed_registry(
        key, password_file, backend=backend, rpc=rpc, log_url=log_url, log_key=log_key
    ) as (
        registry,
        signer,
    ):
        recorded = registry.deprecate(version, reason, signer)
        check_in_step(registry, refs=[version])
    emit(recorded.to_dict(), as_json, lambda: print_recorded(recorded, "deprecated"))


def read_batch(path: Path) -> list[tuple[str, str]]:
    """Records of a JSONL batch: ``{"input": FILE|DIGEST, "output": FILE|DIGEST}`` per line;
    relative files are resolved against the batch file's directory."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no such batch file: {path}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    records: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise FormatError(f"{path}:{number}: not JSON ({exc.args[0]})") from None
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) for k in ("input", "output")
        ):
            raise FormatError(f'{path}:{number}: expected {{"input": ..., "output": ...}}')
        try:
            pair = (
                parse_digest_or_file(doc["input"], path.parent),
                parse_digest_or_file(doc["output"], path.parent),
            )
        except (InvalidInput, NotFound) as exc:
            raise FormatError(f"{path}:{number}: {exc.message}") from None
        records.append(pair)
    if not records:
        raise InvalidInput(f"{path}: the batch has no records")
    return records


@infer_app.command("record")
def infer_record_cmd(
    model: Annotated[str, typer.Option("--model", help="The model version NAME@VERSION.")],
    key: KeyOpt,
    input: Annotated[
        str | None, typer.Option("--input", help="The input: a file or ALG:HEX.")
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", help="The output: a file or ALG:HEX.")
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option("--batch", help="A JSONL file of input/output pairs, one statement."),
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Sign that the model turned an input into an output (or a whole --batch of them)."""
    version = VersionRef.parse(model)
    if (batch is None) == (input is None or output is None) or (
        batch is not None and (input or output)
    ):
        raise InvalidInput("give --input and --output, or --batch FILE (not both)")
    records = read_batch(batch) if batch is not None else None
    pair = None
    if input is not None and output is not None:
        pair = (parse_digest_or_file(input), parse_digest_or_file(output))
    with signed_registry(key, password_file, log_url=log_url, log_key=log_key) as (
        registry,
        signer,
    ):
        if pair is not None:
            recorded = registry.record_inference(version, pair[0], pair[1], signer)
        else:
            recorded = registry.record_inference_batch(version, records or [], signer)
    what = f"{len(records)} inference records" if records else "inference"
    emit(recorded.to_dict(), as_json, lambda: print_recorded(recorded, f"recorded {what} of"))

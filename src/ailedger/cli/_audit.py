"""``ailedger audit report``: the HTML + JSON audit report of the workspace's releases."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ailedger.audit import AuditReport, audit_names_for, build_report, on_chain, write_report
from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.cli._app import app
from ailedger.cli._chain_common import open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import open_workspace
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
    remote_for,
)
from ailedger.cli._workflow import POLICY_NAME, BackendOpt, RpcOpt, check_in_step, open_registry
from ailedger.errors import InvalidInput
from ailedger.registry._chain import ChainBackend
from ailedger.registry.policy import Policy, load_policy

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="Audit reports a regulator can read: every release and how its evidence verified.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


def _policy(path: Path | None) -> Policy | None:
    """``--policy``, else the workspace's policy when there is one (it names the audits)."""
    if path is not None:
        return load_policy(path)
    default = open_workspace().path / POLICY_NAME
    return load_policy(default) if default.is_file() else None


def _show(report: AuditReport, doc: dict[str, Any]) -> None:
    s = doc["summary"]
    console.print(f"wrote [bold]{escape(doc['html'])}[/bold] and {escape(doc['json'])}")
    console.print(
        f"  {s['releases']} releases, {s['releases_lacking_bias_audit']} without a passed bias "
        f"audit ({', '.join(report.audit_names)}), {s['failed_evaluations']} failed evaluations"
    )
    for env, counts in s["deployments"].items():
        console.print(
            f"  {escape(env)}: {counts.get('deploy', 0)} deploys, "
            f"{counts.get('rollback', 0)} rollbacks"
        )
    style = "red" if s["unverified_items"] else "green"
    console.print(f"  [{style}]{s['unverified_items']} of {s['items']} items unverified[/{style}]")
    for problem in report.log.problems:
        console.print(f"  [red]{escape(problem)}[/red]")


@audit_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory for report.html and report.json.")],
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Policy whose audits count as bias audits (default: the "
            "workspace's policy.toml if any).",
        ),
    ] = None,
    require_audit: Annotated[
        list[str] | None,
        typer.Option(
            "--require-audit",
            help="Evaluation name that counts as the bias audit "
            "(repeatable; overrides the policy).",
        ),
    ] = None,
    check_artifacts: Annotated[
        bool, typer.Option("--check-artifacts", help="Re-hash every registered artifact.")
    ] = False,
    chain_check: Annotated[
        bool,
        typer.Option(
            "--chain-check",
            help="Confirm each recorded anchor on the chain (LogAnchors contract) instead of "
            "trusting the workspace's anchor book.",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 1 when an item is unverified or a release lacks a "
            "passed bias audit (the report is written either way).",
        ),
    ] = False,
    backend: BackendOpt = None,
    rpc: RpcOpt = None,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Write an HTML report (and the same content as JSON) of every release: datasets,
    evaluations, bias audit, approvals, deployments, rollbacks, deprecations, each with
    its verification status.

    With --log URL (or [log] url): of the log service's entries, each verified against its
    signed checkpoint first (see `ailedger log verify --log`)."""
    names = audit_names_for(_policy(policy), require_audit or ())
    workspace = open_workspace()
    with ExitStack() as stack:
        remote = remote_for(log_url, log_key)
        if remote is not None and chain_check:
            raise InvalidInput(
                "--chain-check reads the workspace's anchors of its own log, not a service's"
            )
        registry = stack.enter_context(open_registry(backend=backend, rpc=rpc, remote=remote))
        anchors = AnchorBook(workspace.path / ANCHORS_FILE).records(registry.log.origin)
        confirm = None
        if chain_check:
            # the registry may already hold the chain open (the embedded one admits one opener)
            backend_chain = (
                registry.backend.chain if isinstance(registry.backend, ChainBackend) else None
            )
            chain = backend_chain or stack.enter_context(open_chain(workspace, rpc))
            deployment = DeploymentBook(workspace.path / DEPLOYMENTS_FILE).require(chain.chain_id)
            confirm = on_chain(LogAnchors(chain, deployment.open(chain, "LogAnchors")))
            check_in_step(registry, envs=registry.index.environments())
        report = build_report(
            registry,
            audit_names=names,
            check_artifacts=check_artifacts,
            anchors=anchors,
            confirm_anchor=confirm,
        )
    html_path, json_path = write_report(report, out)
    summary = report.summary()
    doc = {"html": str(html_path), "json": str(json_path), "summary": summary}
    emit(doc, as_json, lambda: _show(report, doc))
    if strict and (summary["unverified_items"] or summary["releases_lacking_bias_audit"]):
        raise typer.Exit(1)

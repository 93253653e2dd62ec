"""``ailedger trace`` (and ``trace output``), ``ailedger verify trace``, ``ailedger lineage``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from ailedger import _json
from ailedger.chain._anchor_book import ANCHORS_FILE, AnchorBook, AnchorRecord
from ailedger.cli._app import app, verify_app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import open_workspace
from ailedger.cli._log import _receipt_log_key
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
    remote_for,
)
from ailedger.cli._workflow import RpcOpt, open_registry
from ailedger.errors import InvalidInput, NotFound, SignatureInvalid, WorkspaceError
from ailedger.log.checkpoint import Secp256k1NoteKey, parse_vkey
from ailedger.registry import LocalBackend, Registry
from ailedger.registry._backend import DEPLOYER_ROLE
from ailedger.registry._refs import VersionRef, parse_digest_or_file, parse_time
from ailedger.registry.lineage import Item, Lineage, lineage
from ailedger.registry.trace import OutputTrace, ServingTrace, trace_at, trace_output

__all__ = ["LINEAGE_FORMATS", "lineage_tree", "trace_app"]

_KEY_ID = re.compile(r"0x[0-9a-fA-F]{40}|[0-9a-fA-F]{16,}")

trace_app = typer.Typer(
    help="Which version served an environment at a time (with proof); `trace output` finds "
    "the model behind an output.",
    invoke_without_command=True,
)
app.add_typer(trace_app, name="trace")


def _covering_anchor(registry: Registry, result: ServingTrace) -> AnchorRecord | None:
    """The smallest recorded anchor that covers the event and the next one (if any), and
    whose root is this log's root at its size: the on-chain commitment to the proof."""
    last = max(
        result.event.entry.index,
        result.next_event.entry.index if result.next_event is not None else 0,
    )
    log = registry.log
    book = AnchorBook(open_workspace().path / ANCHORS_FILE)
    for record in book.records(log.origin):
        if (
            record.size > last
            and record.size <= log.size()
            and log.root(record.size) == record.root
        ):
            return record
    return None


_ADJACENCY = {
    "linked": "the next event names this one as its previous: nothing happened in between",
    "unlinked": "[yellow]the next event predates event links: nothing in between is shown by "
    "the local index only, not by the log alone[/yellow]",
    "open": "no later event in this tree",
}


def _show_serving(result: ServingTrace, anchor: AnchorRecord | None, out: Path | None) -> None:
    doc = result.to_dict()
    console.print(
        f"[bold]{escape(str(result.ref))}[/bold] served {escape(result.env)} at "
        f"{result.at.isoformat()} ({result.action} signed {doc['since']}, "
        f"until {doc['until'] or 'now'})"
    )
    console.print(
        f"  proof: entry {result.event.entry.index}"
        + (f" and next event {result.next_event.entry.index}" if result.next_event else "")
        + f" in a tree of {result.event.proof.tree_size} (root {result.event.proof.root.hex()})"
    )
    console.print(f"  {_ADJACENCY[result.adjacency]}")
    if result.checkpoint is None:
        console.print("  no signed checkpoint covers it yet: run `ailedger log checkpoint`")
    if anchor is None:
        console.print("  not anchored on-chain yet: run `ailedger anchor`")
    else:
        console.print(
            f"  anchored: #{anchor.index} (size {anchor.size}) in block {anchor.block} of chain "
            f"{anchor.chain_id} ({anchor.contract}, tx {anchor.tx_hash})"
        )
    if out is not None:
        console.print(f"  wrote {escape(str(out))}: check it with `ailedger verify trace`")


@trace_app.callback()
def trace_cmd(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", help="The environment.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="RFC 3339 time, e.g. 2026-11-25T10:42:00Z.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the trace document here (for `ailedger verify trace`)."),
    ] = None,
    rpc: RpcOpt = None,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Which version served ENV at a time (default: now), with the log proof.

    The proof is the serving deploy or rollback and the next one, which names it as its
    previous event, with inclusion proofs against the latest signed checkpoint: `ailedger
    verify trace` checks it with the log's key alone."""
    if ctx.invoked_subcommand is not None:
        return
    if env is None:
        raise InvalidInput("give --env ENV (and --at TIME), or use `ailedger trace output`")
    when = parse_time(at) if at is not None else datetime.now(UTC)
    with open_registry(
        backend=None, rpc=rpc, read_only=True, remote=remote_for(log_url, log_key)
    ) as registry:
        result = trace_at(registry, env, when)
        result.verify()
        anchor = _covering_anchor(registry, result)
    doc = {**result.to_dict(), "anchor": anchor.to_dict() if anchor is not None else None}
    if out is not None:
        out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    emit(doc, as_json, lambda: _show_serving(result, anchor, out))


@verify_app.command("trace")
def verify_trace_cmd(
    document: Annotated[Path, typer.Argument(help="A trace document (`trace --out`).")],
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="Trusted log key (verifier key or Ethereum address; default: the "
            "workspace's log key, for a trace of its log; else the document's, untrusted).",
        ),
    ] = None,
    deployer: Annotated[
        list[str] | None,
        typer.Option(
            "--deployer",
            help="A key trusted to deploy to the environment (Ethereum address, verifier key "
            "or key id; repeatable). Default: the keys the workspace of the trace's log grants "
            "the deployer role. With neither, the trace is refused.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a trace document offline, with the log's public data alone: the checkpoint's
    signature, both entries' signatures and inclusion proofs, that both are signed by a
    trusted deployer, that the next event names the serving one as its previous, and that
    the traced time falls between their signed times. No workspace is needed."""
    try:
        raw = document.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such trace document: {document}") from None
    doc = _json.loads(raw, what=str(document))
    trace = ServingTrace.from_dict(doc)
    log = doc.get("log") if isinstance(doc, dict) else None
    origin = log.get("origin") if isinstance(log, dict) else None
    key = _receipt_log_key(log_key, origin) if isinstance(origin, str) else None
    if log_key is not None and key is None and trace.checkpoint is not None:
        raise InvalidInput("the trace document names no log origin to check --log-key against")
    deployers = _trusted_deployers(deployer or [], origin if isinstance(origin, str) else None)
    result = trace.verify(
        log_key=key, require_checkpoint=True, require_links=True, deployers=deployers
    )
    if not result.log_key_trusted:  # anyone can make a document with a log and key of their own
        raise SignatureInvalid(
            "the checkpoint verifies only against the key the document itself names; "
            "that proves nothing about the log you trust",
            hint="pass the log's key (--log-key VKEY or its Ethereum address), or run it in "
            "the workspace of that log",
            code="checkpoint-untrusted",
        )

    def human() -> None:
        trust = "trusted" if result.log_key_trusted else "[yellow]untrusted: from the document[/]"
        console.print(
            f"[green]ok[/green]: {escape(str(result.ref))} served {escape(result.env)} at "
            f"{result.at.isoformat()} ({result.action} signed {result.since.isoformat()})"
        )
        if result.until is not None:
            console.print(
                f"  until the next event, signed {result.until.isoformat()}, which names it as "
                "its previous: nothing happened in between"
            )
        else:
            console.print(
                f"  [yellow]no next event in the tree of {result.tree_size}: the document does "
                "not prove that nothing followed[/yellow]"
            )
        console.print(f"  checkpoint: size {result.tree_size}, root {result.root.hex()}")
        console.print(f"  log key: {escape(result.log_key or '-')} ({trust})")
        console.print(f"  signers: {', '.join(result.signers)}")

    emit(result.to_dict(), as_json, human)


def _deployer_id(text: str) -> str:
    """``--deployer``: an Ethereum address, a verifier key (its account) or a key id."""
    value = text.strip()
    if "+" in value:
        note_key = parse_vkey(value)
        if not isinstance(note_key, Secp256k1NoteKey):
            raise InvalidInput(f"--deployer {value[:40]!r}: not an Ethereum account's vkey")
        return note_key.address.lower()
    if not _KEY_ID.fullmatch(value):
        raise InvalidInput(
            f"--deployer {value[:40]!r}: give an Ethereum address, a verifier key or a key id"
        )
    return value.lower()


def _trusted_deployers(given: Sequence[str], origin: str | None) -> dict[str, int]:
    """``--deployer`` keys, else the keys the workspace here grants the deployer role when
    the trace is of its log, each from the log index it was granted at (empty: nobody is
    trusted, and the trace is refused)."""
    if given:
        return {_deployer_id(text): 0 for text in given}
    try:
        ws = open_workspace()
    except WorkspaceError:
        return {}
    if origin is None or ws.config.origin != origin:
        return {}
    return {
        keyid.lower(): _since(entry)
        for keyid, entry in LocalBackend.members(ws).items()
        if DEPLOYER_ROLE in {str(r).lower() for r in _roles(entry)}
    }


def _since(entry: dict[str, object]) -> int:
    since = entry.get("deployer_since", 0)
    return since if isinstance(since, int) and not isinstance(since, bool) else 0


def _roles(entry: dict[str, object]) -> list[object]:
    roles = entry.get("roles", [])
    return roles if isinstance(roles, list) else []


def _show_outputs(found: list[OutputTrace]) -> None:
    for item in found:
        where = f", record {item.position} of its batch" if item.position is not None else ""
        console.print(
            f"{item.input_digest} -> {item.output_digest} by [bold]{escape(str(item.ref))}"
            f"[/bold] (entry {item.entry.entry.index}{where}, logged "
            f"{item.entry.to_dict()['logged_at']})"
        )


@trace_app.command("output")
def output_cmd(
    input: Annotated[str, typer.Option("--input", help="The input: a file or ALG:HEX.")],
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Find the inference records of an input: the model, the output and the proofs."""
    digest = parse_digest_or_file(input)
    with open_registry(read_only=True, remote=remote_for(log_url, log_key)) as registry:
        found = trace_output(registry, digest)
        for item in found:
            item.verify()
    emit([f.to_dict() for f in found], as_json, lambda: _show_outputs(found))


def lineage_tree(tree: Lineage) -> Tree:
    """The lineage as a rich tree."""
    flag = " [red](deprecated)[/red]" if tree.deprecated else ""
    root = Tree(f"[bold]{escape(str(tree.ref))}[/bold] {tree.digest}{flag}")
    if tree.registration is not None:
        reg = tree.registration
        root.add(
            f"registered: entry {reg.log_index} at {reg.logged_at} by {', '.join(reg.signers)}"
        )
    groups: tuple[tuple[str, list[Item] | None], ...] = (
        ("datasets", None),
        ("evaluations", tree.evaluations),
        ("approvals", tree.approvals),
        ("deployments", tree.deployments),
    )
    if tree.provenance:
        groups = (*groups, ("provenance", tree.provenance))
    for title, items in groups:
        branch = root.add(f"[bold]{title}[/bold]")
        if items is None:
            for ds in tree.datasets:
                names = ", ".join(ds["registered_as"]) or "not registered here"
                branch.add(f"{escape(names)} root {ds['root'][:16]}...")
            if not tree.datasets:
                branch.add("[dim]none recorded[/dim]")
            continue
        for item in items:
            branch.add(
                f"{escape(item.summary)} [dim](entry {item.log_index}, {item.logged_at})[/dim]"
            )
        if not items:
            branch.add("[dim]none[/dim]")
    if tree.inferences:
        root.add(f"{tree.inferences} inference statement(s)")
    return root


#: ``lineage --format`` values.
LINEAGE_FORMATS = ("tree", "json", "cyclonedx")


@app.command("lineage")
def lineage_cmd(
    ref: Annotated[str, typer.Argument(help="The model version NAME@VERSION.")],
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="tree (default), json, or cyclonedx: a CycloneDX 1.6 ML-BOM (JSON).",
        ),
    ] = "tree",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the json or cyclonedx document here, not stdout."),
    ] = None,
    audit_name: Annotated[
        list[str] | None,
        typer.Option(
            "--audit-name",
            help="cyclonedx: an evaluation name that is a bias audit (repeatable; default: the "
            "audits of the workspace's policy.toml, else bias, bias-audit, fairness, ...).",
        ),
    ] = None,
    rpc: RpcOpt = None,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Datasets, evaluations, approvals, deployments and provenance of a model version.

    As a tree (default), as JSON, or as a CycloneDX 1.6 ML-BOM (--format cyclonedx)."""
    if format not in LINEAGE_FORMATS:
        raise InvalidInput(f"unknown --format {format!r}: use {', '.join(LINEAGE_FORMATS)}")
    if as_json and format == "tree":
        format = "json"  # --json: the lineage as JSON; a cyclonedx BOM is JSON already
    if out is not None and format == "tree":
        raise InvalidInput("--out writes a document: add --format json or --format cyclonedx")
    version = VersionRef.parse(ref)
    with open_registry(
        backend=None, rpc=rpc, read_only=True, remote=remote_for(log_url, log_key)
    ) as registry:
        if format == "cyclonedx":
            doc = _ml_bom(registry, version, audit_name or ())
        else:
            tree = lineage(registry, version)
            doc = tree.to_dict()
    if out is not None:
        out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        written = {"out": str(out), "format": format}
        emit(written, as_json, lambda: console.print(f"wrote {escape(str(out))} ({format})"))
    elif format == "tree":
        console.print(lineage_tree(tree))
    else:
        emit(doc, True)


def _ml_bom(registry: Registry, version: VersionRef, names: Sequence[str]) -> dict[str, Any]:
    # Imported here: the audit layer is not needed for the tree (start-up time).
    from ailedger.audit import audit_names_for
    from ailedger.audit.cyclonedx import ml_bom
    from ailedger.cli._workflow import POLICY_NAME
    from ailedger.registry.policy import load_policy

    policy_file = registry.workspace.path / POLICY_NAME
    policy = load_policy(policy_file) if not names and policy_file.is_file() else None
    return ml_bom(registry, version, audit_names=audit_names_for(policy, names))

"""``ailedger serve``: the workspace's transparency log as an HTTP service.

Who may submit is an allow-list of Ethereum addresses: ``--allow ADDRESS`` (repeatable) or
``[serve] allow = ["0x...", ...]`` in config.toml (the option replaces the config). With
neither, the service refuses to start (fail closed). Checkpoints are signed with the
workspace's log key (``--key``, default ``[log] key``), unlocked at start: Ed25519 (C2SP's own
signature type, which standard C2SP clients check) or secp256k1 (what on-chain anchoring
checks).

Witnesses (c2sp.org/tlog-witness): ``--witness URL=VKEY`` (repeatable) or ``[serve] witnesses
= ["URL=VKEY", ...]``, with ``--witness-threshold K`` or ``[serve] witness_threshold`` (default:
all of them). A checkpoint is then published at ``/checkpoint`` only with K valid
cosignatures, which are stored in the log beside it (see
:mod:`ailedger.service._sequencer`).

Once the log is open and a checkpoint covers it, one ready line goes to standard output
(``--json``: ``{"url", "origin", "log_key", "size"}``), so scripts and tests can start it as a
process and read where it listens (``--port 0``: any free port).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console
from ailedger.cli._keys import (
    PasswordFileOpt,
    check_log_key,
    log_key_name,
    note_signer,
    open_keystore,
    open_workspace,
)
from ailedger.errors import ConflictError, InvalidInput, WorkspaceError
from ailedger.log import Checkpoint, note_key_for, open_workspace_log, vkey

__all__ = ["serve_cmd"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _allow_list(option: list[str] | None, configured: object, source: str) -> frozenset[str]:
    if option:
        values, where = list(option), "--allow"
    elif configured is None:
        values, where = [], source
    elif isinstance(configured, list) and all(isinstance(v, str) for v in configured):
        values, where = list(configured), f"{source}: [serve] allow"
    else:
        raise WorkspaceError(f"{source}: [serve] allow must be a list of Ethereum addresses")
    bad = [v for v in values if not _ADDRESS.fullmatch(v)]
    if bad:
        raise InvalidInput(f"{where}: {bad[0]!r} is not an Ethereum address (0x + 40 hex digits)")
    if not values:
        raise WorkspaceError(
            "no signer is allowed to submit: the service would refuse everything",
            hint="give --allow ADDRESS (repeatable) or set [serve] allow = [...] in config.toml",
        )
    return frozenset(v.lower() for v in values)


def _witnesses(
    option: list[str] | None, configured: object, threshold: int | None, source: str
) -> tuple[list[str], int]:
    """The ``URL=VKEY`` witness specs and the threshold (option over config)."""
    if option:
        values = list(option)
    elif configured is None:
        values = []
    elif isinstance(configured, list) and all(isinstance(v, str) for v in configured):
        values = list(configured)
    else:
        raise WorkspaceError(f'{source}: [serve] witnesses must be a list of "URL=VKEY" strings')
    if threshold is None:
        return values, len(values)
    if not values:
        raise InvalidInput("--witness-threshold needs witnesses (--witness URL=VKEY)")
    return values, threshold


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="An Ethereum address allowed to submit (repeatable; default: [serve] allow).",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The log's ed25519 or secp256k1 key (default: the workspace's log key).",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness URL=VKEY whose cosignature a checkpoint needs before it is "
            "published (repeatable; default: [serve] witnesses).",
        ),
    ] = None,
    witness_threshold: Annotated[
        int | None,
        typer.Option(
            "--witness-threshold",
            min=1,
            help="Cosignatures needed to publish (default: [serve] witness_threshold, else all).",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1024, help="Request body limit.")
    ] = 1 << 20,
    checkpoint_interval_ms: Annotated[
        int,
        typer.Option(
            "--checkpoint-interval-ms",
            min=1,
            help="Sign a checkpoint at most this long after an entry is appended.",
        ),
    ] = 500,
    checkpoint_entries: Annotated[
        int,
        typer.Option(
            "--checkpoint-entries", min=1, help="... or once this many entries are uncovered."
        ),
    ] = 1024,
    as_json: JsonOpt = False,
) -> None:
    """Serve the workspace's log over HTTP (submissions, C2SP tlog-tiles, proofs).

    POST /v1/entries takes a DSSE envelope signed by allowed signers; GET /checkpoint,
    /tile/..., /v1/entries/{i}, /v1/receipts/{i}, /v1/proof/consistency serve the log.
    Stops on Ctrl-C or SIGTERM after committing what was acknowledged."""
    try:
        from ailedger.service._sequencer import SequencerSettings
        from ailedger.service._server import serve
        from ailedger.service.app import ServiceSettings
    except ImportError as exc:
        raise InvalidInput(
            f"the log service needs the server extra ({exc.name} is missing)",
            hint="pip install 'ailedger[server]'",
        ) from None
    from ailedger.service._cosigning import Cosigning, parse_witness_option

    ws = open_workspace()
    section = ws.config.section("serve")
    allowed = _allow_list(allow, section.get("allow"), str(ws.config_path))
    configured_k = section.get("witness_threshold")
    if configured_k is not None and (type(configured_k) is not int or configured_k < 1):
        raise WorkspaceError(f"{ws.config_path}: [serve] witness_threshold must be an integer >= 1")
    specs, k = _witnesses(
        witness,
        section.get("witnesses"),
        witness_threshold if witness_threshold is not None else configured_k,
        str(ws.config_path),
    )
    witnesses = [parse_witness_option(v) for v in specs]
    cosigning = Cosigning(witnesses, k) if witnesses else None
    name = log_key_name(key, "--key")
    store = open_keystore()
    check_log_key(store, name)
    verifier = note_key_for(ws.config.origin, store.public_key(name))
    with open_workspace_log(ws) as log:
        known = log.log_key()
    if known is not None and vkey(known) != vkey(verifier):
        raise ConflictError(
            f"log {ws.config.origin} is signed by {vkey(known)}, not by key {name} "
            f"({vkey(verifier)})",
            hint="serve the log with its own key (--key NAME)",
        )
    signer = note_signer(name, password_file)
    note_key = note_key_for(ws.config.origin, signer)

    def ready(url: str) -> None:
        with open_workspace_log(ws, read_only=True) as log:
            size = Checkpoint.parse(log.latest_checkpoint().text).size
        doc = {"url": url, "origin": ws.config.origin, "log_key": vkey(verifier), "size": size}
        if as_json:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            console.print(f"serving {ws.config.origin} at {url} (log key {vkey(verifier)})")

    serve(
        ws,
        note_key,
        verifier,
        ServiceSettings(allow=allowed, max_body_bytes=max_body_bytes),
        host=host,
        port=port,
        sequencing=SequencerSettings(
            checkpoint_entries=checkpoint_entries, checkpoint_interval_ms=checkpoint_interval_ms
        ),
        on_ready=ready,
        cosigning=cosigning,
    )

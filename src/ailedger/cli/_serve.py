"""``ailedger serve``: the workspace's transparency log as an HTTP service.

Who may submit is an allow-list of Ethereum addresses: ``--allow ADDRESS`` (repeatable) or
``[serve] allow = ["0x...", ...]`` in config.toml (the option replaces the config). With
neither, the service refuses to start (fail closed). Checkpoints are signed with the
workspace's log key (``--key``, default ``[log] key``), unlocked at start.

Once the log is open and a checkpoint covers it, one ready line goes to standard output
(``--json``: ``{"url", "origin", "log_key", "size", "chain"}``), so scripts and tests can start
it as a process and read where it listens (``--port 0``: any free port).

A workspace on the embedded chain has it served as an Ethereum JSON-RPC node at ``URL/rpc``
(``chain.rpc`` in the ready line): the service owns the chain while it runs, and every party,
this workspace's own commands included, reaches it with ``--rpc URL/rpc`` (``--no-chain-rpc``:
not served, not locked). With an external chain, ``chain.rpc`` (and ``GET /v1/chain``) name its
node.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated

import typer

from ailedger.chain.backends import embedded_chain_dir, workspace_chain_id, workspace_rpc_url
from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console
from ailedger.cli._keys import (
    PasswordFileOpt,
    check_log_key,
    log_key_name,
    log_signer,
    open_keystore,
    open_workspace,
)
from ailedger.errors import ConflictError, InvalidInput, WorkspaceError
from ailedger.log import Checkpoint, Secp256k1NoteKey, open_workspace_log, vkey

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


def _shown(url: str | None) -> str | None:
    from ailedger.service.rpc import public_url

    return None if url is None else public_url(url)


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
        typer.Option("--key", help="The log's secp256k1 key (default: the workspace's log key)."),
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
    chain_rpc: Annotated[
        bool,
        typer.Option(
            "--chain-rpc/--no-chain-rpc",
            help="Serve the workspace's embedded chain as a JSON-RPC node at /rpc.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Serve the workspace's log over HTTP (submissions, C2SP tlog-tiles, proofs).

    POST /v1/entries takes a DSSE envelope signed by allowed signers; GET /checkpoint,
    /tile/..., /v1/entries/{i}, /v1/receipts/{i}, /v1/proof/consistency serve the log.
    With the embedded chain, POST /rpc serves it as an Ethereum JSON-RPC node.
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
    ws = open_workspace()
    allowed = _allow_list(allow, ws.config.section("serve").get("allow"), str(ws.config_path))
    name = log_key_name(key, "--key")
    address = check_log_key(open_keystore(), name).keyid
    verifier = Secp256k1NoteKey(ws.config.origin, address)
    with open_workspace_log(ws) as log:
        known = log.log_key()
    if known is not None and vkey(known) != vkey(verifier):
        raise ConflictError(
            f"log {ws.config.origin} is signed by {vkey(known)}, not by key {name} ({address})",
            hint="serve the log with its own key (--key NAME)",
        )
    signer = log_signer(name, password_file)
    note_key = Secp256k1NoteKey.from_signer(ws.config.origin, signer)

    def ready(url: str) -> None:
        embedded = embedded_chain_dir(ws) is not None
        served = f"{url}/rpc" if chain_rpc else None
        chain = {
            "backend": "embedded" if embedded else "rpc",
            "chain_id": workspace_chain_id(ws),
            "rpc": served if embedded else _shown(workspace_rpc_url(ws)),
        }
        with open_workspace_log(ws, read_only=True) as log:
            size = Checkpoint.parse(log.latest_checkpoint().text).size
        doc = {
            "url": url,
            "origin": ws.config.origin,
            "log_key": vkey(verifier),
            "size": size,
            "chain": chain,
        }
        if as_json:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            console.print(f"serving {ws.config.origin} at {url} (log key {signer.address})")
            if chain["rpc"]:
                console.print(f"{chain['backend']} chain {chain['chain_id']} at {chain['rpc']}")

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
        serve_chain=chain_rpc,
        on_ready=ready,
    )

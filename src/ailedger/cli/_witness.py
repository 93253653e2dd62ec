"""``ailedger witness serve``: a C2SP tlog-witness over HTTP (``POST /add-checkpoint``).

The witness cosigns with a key of its own workspace (``--key``): an Ed25519 key gives C2SP's
cosignature/v1 (type 0x04), which any C2SP client checks; a secp256k1 key gives ailedger's
EIP-191 cosignature type, which on-chain anchoring checks. It trusts the logs given by
``--log ORIGIN=VKEY`` (repeatable; a log may have several keys) and keeps the latest checkpoint
it cosigned per log in ``--state DIR``.

Once it listens, one ready line goes to standard output (``--json``: ``{"url", "name",
"vkey"}``, the witness's verifier key that logs configure), as ``ailedger serve`` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console
from ailedger.cli._keys import PasswordFileOpt, WitnessNameOpt, note_signer
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import AnyNoteKey, cosigner_for, parse_vkey, vkey

__all__ = ["parse_log_option", "witness_app"]

witness_app = typer.Typer(
    help="Witness other logs over the network (C2SP tlog-witness).", no_args_is_help=True
)
app.add_typer(witness_app, name="witness")


def parse_log_option(values: list[str]) -> dict[str, list[AnyNoteKey]]:
    """``ORIGIN=VKEY`` options as trusted log keys per origin."""
    logs: dict[str, list[AnyNoteKey]] = {}
    for value in values:
        origin, sep, text = value.partition("=")
        if not sep or not origin or not text:
            raise InvalidInput(f"--log {value[:60]!r}: expected ORIGIN=VKEY")
        logs.setdefault(origin, []).append(parse_vkey(text))
    return logs


@witness_app.command("serve")
def serve_cmd(
    key: Annotated[
        str, typer.Option("--key", help="The witness's ed25519 or secp256k1 key (by name).")
    ],
    log: Annotated[
        list[str],
        typer.Option("--log", help="A log to witness: ORIGIN=VKEY (its verifier key; repeatable)."),
    ],
    state: Annotated[
        Path, typer.Option("--state", help="Directory of the witness's per-log state.")
    ],
    name: WitnessNameOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8081,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a C2SP tlog-witness: POST /add-checkpoint verifies the log's signature and the
    consistency proof from the last checkpoint it cosigned, stores the new one durably, and
    answers with a timestamped cosignature. Stops on Ctrl-C or SIGTERM."""
    try:
        from ailedger.service._witness_server import serve_witness
        from ailedger.service.witness import Witness
    except ImportError as exc:
        raise InvalidInput(
            f"the witness needs the server extra ({exc.name} is missing)",
            hint="pip install 'ailedger[server]'",
        ) from None
    logs = parse_log_option(log)
    signer = note_signer(key, password_file, role="witness")
    default_name = (
        f"witness/{signer.address}"
        if isinstance(signer, Secp256k1Signer)
        else f"witness/{signer.keyid[:16]}"
    )
    cosigner = cosigner_for(name or default_name, signer)
    witness = Witness([cosigner], logs, state)

    def ready(url: str) -> None:
        doc = {"url": url, "name": cosigner.name, "vkey": vkey(cosigner)}
        if as_json:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            console.print(f"witness {cosigner.name} at {url} (vkey {vkey(cosigner)})")

    try:
        serve_witness(witness, host=host, port=port, on_ready=ready)
    finally:
        witness.close()

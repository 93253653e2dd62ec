"""``ailedger log ...`` (append, checkpoint, cosign, verify, show, query, receipt,
default-key, remote) and ``ailedger verify receipt``.

``append``, ``verify``, ``show``, ``query`` and ``receipt`` work on a log service too (``--log
URL`` or ``[log] url``, see :mod:`ailedger.cli._remote`).

Where a trusted log key is taken (``--log-key`` of ``log cosign``, ``log verify`` and
``verify receipt``), the workspace's default log key (see :mod:`ailedger.cli._keys`) is
trusted when the option is omitted; ``verify receipt`` uses it only for a receipt of the
workspace's own log (same origin), and needs no workspace.

Log and witness keys are Ed25519 (C2SP's own signature types, which Go's
``golang.org/x/mod/sumdb/note`` and other C2SP clients verify) or secp256k1 (ailedger's
``0xff`` types; what on-chain anchoring needs)."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook, receipt_with_anchor
from ailedger.cli._app import app, verify_app
from ailedger.cli._common import JsonOpt, console, emit, state
from ailedger.cli._keys import (
    PasswordFileOpt,
    WitnessNameOpt,
    check_log_key,
    default_log_key,
    log_key_name,
    note_signer,
    open_keystore,
    open_log,
    open_workspace,
)
from ailedger.cli._remote import (
    LOCAL,
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
    client_for,
    configured_url,
    optional_workspace,
    reading_log,
    remote_log,
)
from ailedger.errors import InvalidInput, NotFound, SignatureInvalid, WorkspaceError
from ailedger.identity.keys import Keystore, Secp256k1Signer
from ailedger.log import (
    Entry,
    SignatureCheck,
    TransparencyLog,
    VerifyReport,
    check_ethereum_signature,
    known_keys_check,
)
from ailedger.log.checkpoint import (
    AnyNoteKey,
    Checkpoint,
    Ed25519Cosigner,
    Secp256k1Cosigner,
    Secp256k1NoteKey,
    cosigner_for,
    note_key_for,
    parse_vkey,
    vkey,
)
from ailedger.log.receipt import Receipt, sha256_file, verify_receipt

__all__ = ["log_app"]

log_app = typer.Typer(
    help="The transparency log: append, checkpoint, cosign, verify, query.",
    no_args_is_help=True,
)
app.add_typer(log_app, name="log")

KeyOpt = Annotated[
    str, typer.Option("--key", help="Name of an ed25519 or secp256k1 key in the workspace.")
]
LogSignerOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="Name of the log's ed25519 or secp256k1 key (default: the workspace's log key).",
    ),
]
LogKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="Trusted log key: a verifier key (name+keyid+base64) or the log's Ethereum "
        "address (default: the workspace's log key).",
    ),
]


def _log_key(text: str | None, origin: str) -> AnyNoteKey | None:
    if text is None:
        return None
    if text.startswith("0x") and len(text) == 42:
        return Secp256k1NoteKey(origin, text)
    return parse_vkey(text)


def _trusted_log_key(text: str | None, origin: str) -> AnyNoteKey | None:
    """``--log-key`` if given, else the workspace's default log key (its address)."""
    if text is not None:
        return _log_key(text, origin)
    info = default_log_key()
    return None if info is None else note_key_for(origin, info.public_key)


def _receipt_log_key(text: str | None, origin: str) -> AnyNoteKey | None:
    """For ``verify receipt``: ``--log-key``, else the default log key of the workspace
    here when the receipt is from its log; no workspace is needed."""
    if text is not None:
        return _log_key(text, origin)
    try:
        ws = open_workspace()
    except WorkspaceError:
        return None
    if ws.config.origin != origin:
        return None
    info = default_log_key(ws)
    return None if info is None else note_key_for(origin, info.public_key)


def _envelope_check(public_keys: list[Path]) -> SignatureCheck:
    """For ``verify receipt``: the envelope's signers are checked against ``--public-key``
    files and the keys of the workspace here, if any (Ethereum accounts always recover)."""
    from ailedger.identity.keys import parse_public_key

    known = []
    for path in public_keys:
        try:
            known.append(parse_public_key(path.read_bytes()))
        except FileNotFoundError:
            raise NotFound(f"no such public key file: {path}") from None
    with contextlib.suppress(WorkspaceError):  # no workspace here: the files alone
        known += [k.public_key for k in Keystore(open_workspace().keys_dir).list_keys()]
    return known_keys_check(known) if known else check_ethereum_signature


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{option} {text!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.astimezone()


def _entry_line(e: Entry) -> None:
    subjects = ", ".join(d for d, _ in e.subjects) or "-"
    console.print(
        f"[bold]{e.index}[/bold] {e.to_dict()['time']} {escape(e.predicate_type or e.payload_type)}"
        f"\n  signers: {', '.join(e.signers)}\n  subjects: {escape(subjects)}"
    )


@log_app.command("append")
def append_cmd(
    files: Annotated[list[Path], typer.Argument(help="DSSE envelope files (JSON).")],
    log_url: LogUrlOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
) -> None:
    """Verify envelopes and append them to the workspace log (one durable commit).

    With --log URL (or [log] url), submit them to that log service instead (one request
    each, in order; each is durable when acknowledged; a duplicate gets the existing index)."""
    data = []
    for f in files:
        try:
            data.append(f.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no such envelope file: {f}") from None
    ws = optional_workspace() if log_url not in (None, LOCAL) else open_workspace()
    url = configured_url(log_url, ws)
    if url is not None:
        remote = remote_log(url, None, ws)
        answers = [remote.append(d) for d in data]
        indexes = [a.index for a in answers]
        doc = {"indexes": indexes, "duplicates": [a.duplicate for a in answers], "log": remote.url}
        emit(
            doc,
            as_json,
            lambda: console.print(f"submitted {len(indexes)} entries to {remote.url}: {indexes}"),
        )
        return
    with open_log() as log:
        indexes = log.append_many(data)
        size = log.size()
    emit(
        {"indexes": indexes, "size": size},
        as_json,
        lambda: console.print(f"appended {len(indexes)} entries at {indexes}; log size {size}"),
    )


@log_app.command("checkpoint")
def checkpoint_cmd(
    key: LogSignerOpt = None,
    password_file: PasswordFileOpt = None,
    log_url: LogUrlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a checkpoint of the log with the log key (stored in the log database).

    Refused with --log URL (or \\[log] url): only a log service's operator signs its
    checkpoints (`ailedger serve` does, as entries arrive); `log verify --log URL` reads the
    latest one, `log cosign --log URL` witnesses it. --log local: the workspace's log."""
    url = configured_url(log_url, open_workspace())
    if url is not None:
        raise InvalidInput(
            f"the log service {url} signs its own checkpoints: a client never does",
            hint="read its latest with `ailedger log verify --log URL`, witness it with "
            "`ailedger log cosign --log URL`; `--log local` signs the workspace's own log",
        )
    signer = note_signer(log_key_name(key, "--key"), password_file)
    with open_log() as log:
        note = log.checkpoint(note_key_for(log.origin, signer))
        cp = Checkpoint.parse(note.text)
        log_key = log.log_key()
    doc = {
        "origin": cp.origin,
        "size": cp.size,
        "root": cp.root.hex(),
        "checkpoint": note.format(),
        "log_key": vkey(log_key) if log_key else None,
    }
    emit(doc, as_json, lambda: typer.echo(note.format(), nl=False))


def _witness(
    key: str, name: str | None, password_file: Path | None
) -> Ed25519Cosigner | Secp256k1Cosigner:
    """The cosigner of witness key ``key``, named ``name`` (default: after its address or
    key id)."""
    signer = note_signer(key, password_file, role="witness")
    default_name = (
        f"witness/{signer.address}"
        if isinstance(signer, Secp256k1Signer)
        else f"witness/{signer.keyid[:16]}"
    )
    return cosigner_for(name or default_name, signer)


@log_app.command("cosign")
def cosign_cmd(
    key: KeyOpt,
    name: WitnessNameOpt = None,
    log_key: LogKeyOpt = None,
    password_file: PasswordFileOpt = None,
    log_url: LogUrlOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Witness the latest checkpoint: check it, then add a cosignature/v1 by KEY (an Ed25519
    key cosigns with C2SP's type 0x04, a secp256k1 key with ailedger's EIP-191 type).

    The checkpoint must carry a valid log-key signature, match the stored tree and be
    consistent with the checkpoint before it.

    With --log URL (or \\[log] url): the service's latest checkpoint, after the workspace's
    mirror of that log verified it (signed by the trusted log key, --log-key or \\[log]
    url_key; consistent with every checkpoint the mirror saw; its entries hash to it). The
    cosigned checkpoint is printed and kept in the mirror; the service is not told (it
    collects cosignatures from the witnesses it names, `ailedger witness serve`)."""
    url = configured_url(log_url, open_workspace())
    if url is not None:
        remote = remote_log(url, log_key)
        with remote.open() as mirror:
            assert remote.last_sync is not None
            latest = remote.last_sync.checkpoint
            cp = Checkpoint.parse(latest.text)
            witness = _witness(key, name, password_file)
            stored = mirror.add_cosignature(latest.add([witness]), witness)
        doc = {"size": cp.size, "witness": vkey(witness), "checkpoint": stored.format(), "log": url}
        emit(doc, as_json, lambda: typer.echo(stored.format(), nl=False))
        return
    with open_log() as log:
        trusted = _trusted_log_key(log_key, log.origin) or log.log_key()
        if trusted is None:
            raise NotFound("the log has no checkpoint to cosign", hint="run `log checkpoint`")
        notes = log.checkpoints()
        latest = notes[-1]
        latest.verify_one(trusted)
        cp = Checkpoint.parse(latest.text)
        if len(notes) > 1:
            prev = Checkpoint.parse(notes[-2].text)
            log.consistency_proof(prev.size, cp.size).verify()
            if log.root(prev.size) != prev.root:
                raise InvalidInput("the previous checkpoint does not match the log")
        if log.root(cp.size) != cp.root:
            raise InvalidInput("the latest checkpoint does not match the log")
        witness = _witness(key, name, password_file)
        stored = log.add_cosignature(latest.add([witness]), witness)
    doc = {"size": cp.size, "witness": vkey(witness), "checkpoint": stored.format()}
    emit(doc, as_json, lambda: typer.echo(stored.format(), nl=False))


@log_app.command("verify")
def verify_cmd(
    log_key: LogKeyOpt = None,
    log_url: LogUrlOpt = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option("--witness-key", help="Trusted witness verifier key (repeatable)."),
    ] = None,
    witness_threshold: Annotated[
        int,
        typer.Option(
            "--witness-threshold",
            min=0,
            help="Valid cosignatures by the --witness-key witnesses the latest checkpoint needs.",
        ),
    ] = 0,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
) -> None:
    """Re-check the whole log: entries, tree, checkpoint signatures and consistency (and,
    with --witness-threshold, the latest checkpoint's witness cosignatures).

    With --log URL (or \\[log] url): fetch the service's checkpoint, check its signature with
    the trusted log key (--log-key, \\[log] url_key or the key the workspace's mirror was
    first verified with), prove it consistent with the last checkpoint this workspace saw
    (a fork or rollback fails with exit 1), fetch and check the new entries against it,
    then re-check the whole mirror."""
    witnesses = [parse_vkey(w) for w in witness_key or []]
    if witness_threshold > len(witnesses):
        raise InvalidInput(
            f"--witness-threshold {witness_threshold} needs as many --witness-key options"
        )
    url = configured_url(log_url, open_workspace())
    sync: dict[str, Any] | None = None
    cosigned: list[str] = []

    def check(log: TransparencyLog, key: AnyNoteKey | None) -> VerifyReport:
        known = {vkey(w): w for w in [*log.witness_keys(), *witnesses]}
        report = log.verify(key, list(known.values()))
        if witnesses:
            latest = log.latest_checkpoint()
            for w in witnesses:
                with contextlib.suppress(SignatureInvalid):
                    latest.verify_one(w)
                    cosigned.append(w.name)
        return report

    if url is not None:
        state.witness_keys, state.witness_threshold = witness_key, witness_threshold
        remote = remote_log(url, log_key)
        with remote.open() as log:
            key = log.log_key()
            report = check(log, key)
        assert remote.last_sync is not None
        sync = remote.last_sync.to_dict()
        trusted = key
    else:
        with open_log(read_only=True) as log:
            trusted = _trusted_log_key(log_key, log.origin)
            key = trusted or log.log_key()
            report = check(log, key)
    if len(cosigned) < witness_threshold:
        raise SignatureInvalid(
            f"the latest checkpoint has {len(cosigned)} of the required {witness_threshold} "
            "valid witness cosignatures",
            code="witness-cosignatures-insufficient",
        )
    doc = report.to_dict() | {
        "log_key": vkey(key) if key else None,
        "log_key_trusted": trusted is not None,
        "witnesses": cosigned,
        "remote": sync,
    }

    def human() -> None:
        if sync is not None:
            console.print(
                f"{escape(sync['url'])}: checkpoint of size {sync['size']} verified, consistent "
                f"with the last one seen; {sync['fetched']} new entries checked against it"
            )
        console.print(
            f"[green]ok[/green]: {report.entries} entries, {report.nodes} nodes, "
            f"{report.checkpoints} checkpoints, {report.cosignatures} cosignatures; "
            f"root {report.root.hex()}"
        )

    emit(doc, as_json, human)


@log_app.command("show")
def show_cmd(
    index: Annotated[int | None, typer.Argument(help="Entry index (default: a summary).")] = None,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Show one entry with its envelope, or the log's size, root and latest checkpoint
    (--log URL: of the log service, verified)."""
    with reading_log(log_url, log_key) as log:
        if index is None:
            try:
                latest: str | None = log.latest_checkpoint().format()
            except NotFound:
                latest = None
            doc: dict[str, Any] = {
                "origin": log.origin,
                "size": log.size(),
                "root": log.root().hex(),
                "checkpoint": latest,
            }
            emit(doc, as_json)
            return
        entry = log.get(index)
    doc = entry.to_dict() | {"envelope": json.loads(entry.envelope)}

    def human() -> None:
        _entry_line(entry)
        typer.echo(entry.envelope.decode())

    emit(doc, as_json, human)


@log_app.command("query")
def query_cmd(
    subject: Annotated[
        str | None, typer.Option("--subject", help="Subject digest: sha256:HEX or HEX.")
    ] = None,
    predicate_type: Annotated[
        str | None, typer.Option("--type", help="Predicate type URI.")
    ] = None,
    signer: Annotated[str | None, typer.Option("--signer", help="Signer key id.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601, exclusive.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries.")] = 100,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Find entries by subject digest, predicate type, signer and time (all indexed).

    With --log URL (or [log] url): in the log service's entries, each verified against its
    signed checkpoint first (the workspace keeps a verified mirror)."""
    with reading_log(log_url, log_key) as log:
        entries = log.query(
            subject=subject,
            predicate_type=predicate_type,
            signer=signer,
            since=_time(since, "--since"),
            until=_time(until, "--until"),
            limit=limit,
        )

    def human() -> None:
        for e in entries:
            _entry_line(e)
        console.print(f"{len(entries)} entries")

    emit({"entries": [e.to_dict() for e in entries]}, as_json, human)


@log_app.command("receipt")
def receipt_cmd(
    index: Annotated[int, typer.Argument(help="Entry index.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the receipt here.")] = None,
    log_url: LogUrlOpt = None,
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="Carry an anchor on this node's chain (URL, or 'workspace'; default: the "
            "first anchor that covers the entry, on any chain).",
        ),
    ] = None,
    log_key: RemoteKeyOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Write a receipt for an entry against the latest checkpoint.

    When an anchor of the log covers the entry (see `ailedger anchor`), the receipt
    carries it (and, if needed, is made against the anchored checkpoint instead); with
    --rpc, only an anchor on that node's chain. With --log URL (or [log] url), fetch it from
    that log service and check it with the trusted log key (--log-key, [log] url_key) and
    against the service's latest checkpoint before writing it."""
    ws = optional_workspace() if log_url not in (None, LOCAL) else open_workspace()
    url = configured_url(log_url, ws)
    if url is not None:
        receipt = remote_log(url, log_key, ws).receipt(index)
        if out is not None:
            receipt.write(out)
            emit(
                {"receipt": str(out), "index": index},
                as_json,
                lambda: console.print(f"wrote {out}"),
            )
        else:
            emit(receipt.to_dict(), True)
        return
    assert ws is not None  # the workspace's own log: open_workspace() above
    book = AnchorBook(ws.path / ANCHORS_FILE)
    chain_id = None
    if rpc is not None:
        from ailedger.cli._chain_common import open_chain

        with open_chain(ws, None if rpc == "workspace" else rpc, read_only=True) as chain:
            chain_id = chain.chain_id
    with open_log(read_only=True) as log:
        key = log.log_key()
        if key is None:
            raise NotFound("the log has no checkpoint", hint="run `ailedger log checkpoint`")
        receipt = receipt_with_anchor(log, index, key, book, chain_id=chain_id)
    if out is not None:
        receipt.write(out)
        emit({"receipt": str(out), "index": index}, as_json, lambda: console.print(f"wrote {out}"))
    else:
        emit(receipt.to_dict(), True)


@verify_app.command("receipt")
def verify_receipt_cmd(
    receipt: Annotated[Path, typer.Argument(help="Receipt JSON file.")],
    artifact: Annotated[
        Path | None,
        typer.Option(
            "--artifact",
            help="Check this file (its sha256) or model directory (its model-signing subject "
            "digest, re-fingerprinted) is a subject.",
        ),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="Trusted log key (verifier key or Ethereum address; default: the workspace's "
            "log key, for a receipt of its log).",
        ),
    ] = None,
    witness_key: Annotated[
        list[str] | None, typer.Option("--witness-key", help="Trusted witness verifier key.")
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="Trust this envelope signer's public key (PEM or securesystemslib JSON; the "
            "workspace's keys are trusted too; Ethereum accounts need none).",
        ),
    ] = None,
    witness_threshold: Annotated[
        int, typer.Option("--witness-threshold", help="Cosignatures required.")
    ] = 0,
    rpc: Annotated[
        str | None,
        typer.Option(
            "--rpc",
            help="Also check on this node (URL, or 'workspace') that an anchor covers the "
            "receipt's checkpoint.",
        ),
    ] = None,
    anchors_contract: Annotated[
        str | None,
        typer.Option(
            "--anchors-contract",
            help="LogAnchors address to check (default: the receipt's anchor's contract).",
        ),
    ] = None,
    log_url: Annotated[
        str | None,
        typer.Option(
            "--log",
            help="Also fetch this log service's latest checkpoint (checked with the trusted "
            "log key) and prove it consistent with the receipt's.",
        ),
    ] = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
) -> None:
    """Check a receipt offline: envelope signature, inclusion, checkpoint signature, artifact.

    With --rpc, also check on that chain that ailedger's LogAnchors contract holds an anchor
    of the log, registered with the receipt's log key, equal to the receipt's checkpoint or
    extending it by the consistency proof the receipt carries."""
    try:
        data = receipt.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such receipt: {receipt}") from None
    r = Receipt.from_json(data)
    witnesses = [parse_vkey(w) for w in witness_key or []]
    trusted = _receipt_log_key(log_key, r.origin)
    if log_url is not None and trusted is None:
        raise InvalidInput(
            "--log needs a trusted log key: the receipt's own key is the service's word",
            hint="give --log-key (the log's address or verifier key)",
        )
    result = verify_receipt(
        r,
        log_key=trusted,
        witnesses=witnesses,
        witness_threshold=witness_threshold,
        artifact_sha256=_artifact_digest(artifact),
        check_signature=_envelope_check(public_key or []),
    )
    doc = result.to_dict()
    fresh = None
    if log_url is not None and trusted is not None:
        fresh = _fresh_checkpoint(log_url, trusted, r)
        doc["log_checkpoint"] = {"url": log_url, "size": fresh.size, "root": fresh.root.hex()}
    on_chain = None
    if rpc is not None:
        from ailedger.cli._chain import verify_receipt_on_chain

        on_chain = verify_receipt_on_chain(r, rpc, anchors_contract)
        doc["anchor_verified"] = on_chain.to_dict()

    def human() -> None:
        trust = (
            "trusted" if result.log_key_trusted else "[yellow]untrusted: taken from the receipt[/]"
        )
        console.print(f"[green]ok[/green]: entry {result.index} of {escape(result.origin)}")
        console.print(f"  checkpoint: size {result.tree_size}, root {result.root.hex()}")
        console.print(f"  log key: {escape(result.log_key)} ({trust})")
        console.print(f"  signers: {', '.join(result.signers)}")
        if result.witnesses:
            console.print(f"  witnesses: {', '.join(result.witnesses)}")
        if result.artifact_sha256:
            console.print(f"  artifact sha256 {result.artifact_sha256} is a subject")
        if fresh is not None:
            console.print(
                f"  consistent with {escape(str(log_url))}'s checkpoint of size {fresh.size}"
            )
        if on_chain is not None:
            a = on_chain.anchor
            how = "via the carried consistency proof" if on_chain.via_consistency_proof else ""
            console.print(
                f"  anchored: #{a.index} size {a.size} in block {a.block_number} of chain "
                f"{on_chain.chain_id} ({on_chain.contract}) {how}".rstrip()
            )
            proven = (
                "proven on-chain"
                if on_chain.consistency_proven
                else "[yellow]not proven on-chain[/] (only the witnesses vouch for it)"
            )
            console.print(
                f"  consistency with the previous anchor: {proven}; "
                f"{a.cosignatures} witness cosignatures (set #{a.witness_epoch})"
            )

    emit(doc, as_json, human)


def _fresh_checkpoint(url: str, key: AnyNoteKey, receipt: Receipt) -> Checkpoint:
    """The log service's latest checkpoint (signed by ``key``), proven to extend the
    receipt's: a rollback or fork fails (exit 1)."""
    from ailedger.service.remote import check_consistency, fetch_checkpoint

    client = client_for(url)
    _, cp = fetch_checkpoint(client, key)
    old = Checkpoint.parse(receipt.proof.checkpoint.text)
    check_consistency(client, old, cp, seen="in the receipt")
    return cp


def _artifact_digest(artifact: Path | None) -> str | None:
    """The digest a statement about ``artifact`` names: a file's sha256, or a directory's
    model subject digest (the manifest a model statement signs, re-computed from disk)."""
    if artifact is None:
        return None
    if artifact.is_dir():
        from ailedger.fingerprint.model import fingerprint_model

        return fingerprint_model(artifact, tensors=False).subject_digest.hex()
    return sha256_file(artifact)


@log_app.command("default-key")
def default_key_cmd(
    name: Annotated[
        str | None,
        typer.Argument(
            help="An ed25519 or secp256k1 key of the workspace (omit to show the current one)."
        ),
    ] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Remove the default log key.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the workspace's default log key ([log] key in config.toml).

    Commands that take --log-key (and the log key's --key of `log checkpoint` and `anchor`)
    use it when the option is omitted."""
    ws = open_workspace()
    if name is not None and unset:
        raise InvalidInput("give a key NAME or --unset, not both")
    if name is not None:
        check_log_key(open_keystore(), name)
        ws = ws.save_config(ws.config.with_log_key(name))
    elif unset:
        ws = ws.save_config(ws.config.with_log_key(None))
    info = default_log_key(ws)
    doc = {"log_key": None if info is None else {"name": info.name, "keyid": info.keyid}}
    emit(
        doc,
        as_json,
        lambda: console.print(
            "no default log key" if info is None else f"default log key: {info.name} ({info.keyid})"
        ),
    )


@log_app.command("remote")
def remote_cmd(
    url: Annotated[
        str | None,
        typer.Argument(help="A log service URL (omit to show the current one)."),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="The service's trusted log key: its Ethereum address or verifier key "
            "(`ailedger serve --json` prints it; required with URL).",
        ),
    ] = None,
    unset: Annotated[
        bool, typer.Option("--unset", help="Use the workspace's own log again.")
    ] = False,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or set the log service that commands use by default (\\[log] url and url_key in
    config.toml); --log URL on a command overrides it, --log local skips it.

    --witness-key and --witness-threshold save the witnesses whose cosignatures its
    checkpoints need (\\[log] witnesses and witness_threshold); setting another URL or
    --unset drops them."""
    from ailedger.service.client import LogClient

    ws = open_workspace()
    if url is not None and unset:
        raise InvalidInput("give a URL or --unset, not both")
    if url is not None:
        if log_key is None:
            raise InvalidInput(
                "give the service's trusted log key with --log-key: its checkpoints are "
                "checked with it, never taken on the service's word"
            )
        url = LogClient(url).url  # the scheme is checked
        if not (log_key.startswith("0x") and len(log_key) == 42):
            parse_vkey(log_key)  # a malformed key fails here, not at the next command
        witnesses = state.witness_keys or []
        threshold = state.witness_threshold or 0
        for w in witnesses:
            parse_vkey(w)
        if threshold > len(set(witnesses)):
            raise InvalidInput(
                f"--witness-threshold {threshold} needs as many --witness-key options"
            )
        ws = ws.save_config(
            ws.config.with_log_remote(
                url, log_key, witnesses=witnesses, witness_threshold=threshold
            )
        )
    elif unset:
        ws = ws.save_config(ws.config.with_log_remote(None, None))
    section = ws.config.section("log")
    doc = {
        "url": section.get("url"),
        "log_key": section.get("url_key"),
        "witnesses": section.get("witnesses", []),
        "witness_threshold": section.get("witness_threshold", 0),
    }
    emit(
        doc,
        as_json,
        lambda: console.print(
            "the workspace's own log"
            if doc["url"] is None
            else f"log service {doc['url']} (log key {doc['log_key']})"
        ),
    )

"""``ailedger attest`` and ``ailedger verify statement``."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ailedger import _json
from ailedger.attest.computed import dataset_fields, fill_predicate, model_fields
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import (
    PREDICATES,
    DatasetPredicate,
    ModelPredicate,
    Predicate,
    parse_predicate,
    predicate_class,
)
from ailedger.attest.statements import (
    Subject,
    attest,
    subject_from_digest,
    subject_from_file,
    verify_statement,
)
from ailedger.cli._app import app, verify_app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import (
    PasswordFileOpt,
    check_log_key,
    log_key_name,
    note_signer,
    open_keystore,
    open_workspace,
    unlock_signer,
)
from ailedger.cli._remote import (
    LogUrlOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
    configured_url,
    remote_log,
)
from ailedger.errors import AiledgerError, FormatError, InvalidInput, NotFound, StorageError
from ailedger.identity.keys import (
    Keystore,
    PublicKey,
    Secp256k1PublicKey,
    Signer,
    parse_public_key,
)
from ailedger.log import known_keys_check, note_key_for, open_workspace_log

__all__ = ["Reading", "build_envelope", "parse_sets", "parse_subject"]

_DIGEST = re.compile(r"^[a-z0-9]+:[0-9a-fA-F]+$")


def _digest_subject(spec: str) -> Subject | None:
    """``ALG:HEX`` or ``NAME=ALG:HEX`` as a subject; None when ``spec`` is neither."""
    if _DIGEST.match(spec):
        return subject_from_digest(spec)
    name, sep, digest = spec.rpartition("=")
    if sep and _DIGEST.match(digest) and name:
        return subject_from_digest(digest, name)
    return None


def _existing_path(spec: str) -> Path:
    path = Path(spec)
    if not path.exists():
        raise NotFound(f"--subject {spec!r} is neither a file nor a digest like sha256:<hex>")
    return path


def parse_subject(spec: str) -> Subject:
    """``PATH`` (hashed), ``ALG:HEX``, or ``NAME=ALG:HEX``."""
    subject = _digest_subject(spec)
    return subject if subject is not None else subject_from_file(_existing_path(spec))


def parse_sets(base: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` assignments to ``base``.

    A value starting with ``[`` or ``{``, or ``null``, is JSON; anything else stays a string
    and the predicate's model converts it (``0.93`` to a number, ``true`` to a boolean).
    """
    out: dict[str, Any] = json.loads(json.dumps(base))
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--set {item!r}: expected KEY=VALUE")
        value: Any = raw
        if raw[:1] in ("[", "{") or raw == "null":
            try:
                value = _json.loads(raw, what=f"--set {key}: value")
            except FormatError as exc:
                raise InvalidInput(exc.message) from None
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInput(f"--set {key}: {part} is not an object")
            node = child
        node[leaf] = value
    return out


@dataclass(frozen=True)
class Reading:
    """How ``attest dataset|model --subject PATH`` reads the path: the options of
    ``dataset register`` (format, salt secret, CSV reading) and ``fingerprint model``
    (``no_cache``)."""

    format: str | None = None
    salt_secret: Path | None = None
    skip_lines: int = 0
    header_row: bool = True
    no_cache: bool = False
    unsalted: bool = False

    def check(self, cls: type[Predicate], has_path: bool) -> None:
        """Refuse options that would not be used, rather than ignore them."""
        used = {
            "--format": ("dataset", self.format is not None),
            "--salt-secret": ("dataset", self.salt_secret is not None),
            "--unsalted": ("dataset", self.unsalted),
            "--skip-lines": ("dataset", self.skip_lines != 0),
            "--no-header": ("dataset", not self.header_row),
            "--no-cache": ("model", self.no_cache),
        }
        for option, (kind, given) in used.items():
            base = DatasetPredicate if kind == "dataset" else ModelPredicate
            if given and not (has_path and issubclass(cls, base)):
                raise InvalidInput(f"{option} applies to `attest {kind} --subject PATH` only")


def _from_path(
    cls: type[Predicate], path: Path, reading: Reading
) -> tuple[dict[str, Any], list[Subject]]:
    """The predicate fields ``path`` determines, and the subjects naming it."""
    if issubclass(cls, DatasetPredicate):
        from ailedger.cli._dataset import dataset_secret
        from ailedger.fingerprint.dataset import fingerprint_dataset

        # salted by default, with the same secret file as `fingerprint dataset` and
        # `dataset register` (DATA.ailedger-secret, created when missing)
        secret = dataset_secret(path, reading.salt_secret, reading.unsalted, create=True)
        ds = fingerprint_dataset(
            path,
            secret=secret,
            format=reading.format,
            skip_lines=reading.skip_lines,
            header_row=reading.header_row,
        )
        return dataset_fields(ds), [subject_from_digest(f"sha256:{ds.data_sha256}", path.name)]
    from ailedger.cli._cache import open_stat_cache
    from ailedger.fingerprint.model import fingerprint_model

    cache = open_stat_cache(reading.no_cache)
    try:
        fp = fingerprint_model(path, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    subjects = [subject_from_digest(f"sha256:{fp.subject_digest.hex()}", fp.model_name)]
    if path.is_file():  # also the file's own sha256, which `verify receipt --artifact` checks
        single = fp.hashing == "sha256" and len(fp.resources) == 1
        file_subject = (
            subject_from_digest(f"sha256:{fp.resources[0].digest.hex()}", path.name)
            if single
            else subject_from_file(path)
        )
        if file_subject.digest != subjects[0].digest:
            subjects.append(file_subject)
    return model_fields(fp), subjects


def build_envelope(
    kind: str,
    subjects: list[str],
    predicate_file: Path | None,
    sets: list[str],
    signer: Signer,
    reading: Reading | None = None,
) -> Envelope:
    """Parse the options into a predicate and subjects, and sign the statement.

    For a dataset or model predicate, a ``--subject PATH`` is fingerprinted (as ``reading``
    says): its fields are computed, and a given field that says otherwise is an error."""
    reading = reading or Reading()
    cls = predicate_class(kind)
    base: dict[str, Any] = {}
    if predicate_file is not None:
        try:
            base = _json.loads(predicate_file.read_bytes(), what=str(predicate_file))
        except FileNotFoundError:
            raise NotFound(f"no such predicate file: {predicate_file}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{predicate_file}: not valid JSON ({exc})") from None
        if not isinstance(base, dict):
            raise InvalidInput(f"{predicate_file}: a predicate must be a JSON object")
    model_name = base.get("model_name") if isinstance(base.get("model_name"), str) else None
    if cls is ModelPredicate and "resources" in base and "subject" in base:
        # The JSON of `ailedger fingerprint model`: take the manifest part of it.
        base = ModelPredicate.from_manifest(base).to_dict()
    given = parse_sets(base, sets)
    parsed: list[Subject] = []
    paths: list[Path] = []
    computes = issubclass(cls, DatasetPredicate | ModelPredicate)
    for spec in subjects:
        subject = _digest_subject(spec)
        if subject is not None:
            parsed.append(subject)
        elif computes:
            paths.append(_existing_path(spec))
        else:
            parsed.append(subject_from_file(_existing_path(spec)))
    reading.check(cls, bool(paths))
    if len(paths) > 1:
        raise InvalidInput(
            f"attest {cls.NAME}: give one --subject PATH to fingerprint, not {len(paths)}",
            hint="attest each artifact on its own (other subjects may be NAME=sha256:HEX)",
        )
    predicate: Predicate
    if paths:
        path = paths[0]
        computed, from_path = _from_path(cls, path, reading)
        location = {"location": path.resolve().as_uri()}
        predicate = fill_predicate(cls, given, computed, source=str(path), defaults=location)
        parsed = [*from_path, *parsed]
    else:
        predicate = parse_predicate(kind, given)
    if not parsed and isinstance(predicate, ModelPredicate):
        digest = f"sha256:{predicate.subject_digest}"
        parsed = [subject_from_digest(digest, model_name or "model")]
    if not parsed:
        raise InvalidInput("give at least one --subject (a file or sha256:<hex>)")
    return attest(predicate, parsed, [signer])


@contextmanager
def _pending(out: Path | None, data: bytes) -> Iterator[None]:
    """Write ``data`` to a temporary file beside ``out`` (fsynced) before the block, and
    rename it to ``out`` when the block succeeds; when the block or the write fails, remove
    it: ``out`` is then absent or as it was, never partial or claiming what did not happen."""
    if out is None:
        yield
        return
    target = out.absolute()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except FileNotFoundError:
        raise NotFound(f"--out {out}: no such directory {target.parent}") from None
    except OSError as exc:
        raise StorageError.from_exception(exc, target) or exc from None
    tmp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise StorageError.from_exception(exc, target) or exc from None
        yield
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (see :func:`_pending`)."""
    with _pending(path, data):
        pass


@app.command("attest")
def attest_cmd(
    kind: Annotated[str, typer.Argument(help=f"Predicate type: {', '.join(PREDICATES)}.")],
    key: Annotated[str, typer.Option("--key", help="Name of the signing key.")],
    subject: Annotated[
        list[str] | None,
        typer.Option(
            "--subject",
            help="A file (hashed), sha256:HEX, or NAME=sha256:HEX. For `dataset` and `model`, "
            "a PATH is fingerprinted and fills the predicate's computed fields; `model` "
            "defaults to the manifest's subject digest.",
        ),
    ] = None,
    predicate: Annotated[
        Path | None,
        typer.Option(
            "--predicate",
            help="Predicate fields as a JSON file (for `model`, also the JSON of "
            "`ailedger fingerprint model`).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Set a predicate field: KEY=VALUE.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the envelope here (default: stdout); written only once the log "
            "append succeeded.",
        ),
    ] = None,
    receipt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            help="Also sign a checkpoint with the log key and write the entry's receipt here.",
        ),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="Name of the log's ed25519 or secp256k1 key, for --receipt (default: the "
            "workspace's log key).",
        ),
    ] = None,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Only sign; do not append to the workspace log.")
    ] = False,
    log_url: LogUrlOpt = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="dataset --subject PATH: csv, jsonl, parquet or files (default: detect).",
        ),
    ] = None,
    salt_secret: Annotated[
        Path | None,
        typer.Option(
            "--salt-secret",
            help="dataset --subject PATH: salt the leaves with the secret in this file "
            "(default: DATA.ailedger-secret, created when missing).",
        ),
    ] = None,
    unsalted: Annotated[
        bool,
        typer.Option("--unsalted", help="dataset --subject PATH: no salts (public data only)."),
    ] = False,
    skip_lines: Annotated[
        int,
        typer.Option(
            "--skip-lines", min=0, help="dataset --subject CSV: skip N lines before the header."
        ),
    ] = 0,
    no_header: Annotated[
        bool,
        typer.Option("--no-header", help="dataset --subject CSV: no header row."),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option("--no-cache", help="model --subject PATH: read every file (no stat cache)."),
    ] = False,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Sign a statement about the subjects, append it to the workspace log, write the envelope.

    With --log URL (or [log] url), submit it to that log service instead: the key stays
    here and the envelope is signed here; --receipt then fetches the entry's receipt once
    the service's checkpoint covers it, checked with the service's trusted log key ([log]
    url_key, see `ailedger log remote`)."""
    if receipt is not None and no_log:
        raise InvalidInput("--receipt needs the log: drop --no-log")
    url = None if no_log else configured_url(log_url, open_workspace())
    if url is not None and log_key is not None:
        raise InvalidInput(
            "--log-key names the workspace log's signing key; a log service signs its own "
            "checkpoints",
            hint="drop --log-key; set the service's trusted key with `ailedger log remote`",
        )
    if receipt is not None and url is None:
        log_key = log_key_name(log_key)
        check_log_key(open_keystore(), log_key)  # before any password is asked for
    reading = Reading(format, salt_secret, skip_lines, not no_header, no_cache, unsalted)
    store = open_keystore()
    signer = unlock_signer(store, key, password_file)
    envelope = build_envelope(kind, subject or [], predicate, set_ or [], signer, reading)
    text = envelope.to_json(indent=2)
    entry: int | None = None
    with _pending(out, text):  # the envelope file appears only once the append succeeded
        if url is not None:
            entry = _submit(url, envelope, receipt)
        elif not no_log:
            entry = _append_to_log(envelope, store, log_key, receipt, password_file)
    summary = {
        "keyid": signer.keyid,
        "predicateType": json.loads(envelope.payload)["predicateType"],
        "subjects": len(json.loads(envelope.payload)["subject"]),
        "out": str(out) if out is not None else None,
        "log_index": entry,
        "receipt": str(receipt) if receipt is not None else None,
    }
    if as_json:
        emit({**summary, "envelope": envelope.to_dict()}, True)
    elif out is None:
        typer.echo(text.decode(), nl=False)
    else:
        console.print(f"wrote {escape(str(out))}, signed by {signer.keyid}")
        if entry is not None:
            console.print(f"appended to the log as entry {entry}")
        if receipt is not None:
            console.print(f"wrote receipt {escape(str(receipt))}")


def _append_to_log(
    envelope: Envelope,
    store: Keystore,
    log_key: str | None,
    receipt: Path | None,
    password_file: Path | None,
) -> int:
    """Append to the workspace log; with ``receipt``, checkpoint and write the receipt."""
    ws = open_workspace()
    known = [k.public_key for k in store.list_keys()]
    with open_workspace_log(ws, check_signature=known_keys_check(known)) as log:
        if receipt is None or log_key is None:
            return log.append(envelope.to_json())
        signer = note_signer(log_key, password_file)
        result = log.append_with_receipt(envelope.to_json(), note_key_for(log.origin, signer))
        _write_file(receipt, result.to_json())
        return result.proof.index


def _submit(url: str, envelope: Envelope, receipt: Path | None) -> int:
    """Submit to the log service at ``url``; with ``receipt``, wait for the checkpoint that
    covers the entry (up to the command's --timeout) and write its receipt, verified."""
    remote = remote_log(url, None)
    index = remote.append(envelope.to_json()).index
    if receipt is not None:
        _write_file(receipt, remote.receipt(index, wait_s=remote.publish_wait_s).to_json())
    return index


def _trusted(keys: list[str], public_keys: list[Path], addresses: list[str]) -> list[PublicKey]:
    trusted: list[PublicKey] = []
    if keys:
        store = open_keystore()
        trusted.extend(store.public_key(name) for name in keys)
    for path in public_keys:
        try:
            trusted.append(parse_public_key(path.read_bytes()))
        except FileNotFoundError:
            raise NotFound(f"no such public key file: {path}") from None
    trusted.extend(Secp256k1PublicKey(a) for a in addresses)
    if not trusted:
        raise InvalidInput("say whom to trust: --key NAME, --public-key FILE or --address ADDR")
    return trusted


@verify_app.command("statement")
def verify_statement_cmd(
    file: Annotated[Path, typer.Argument(help="A DSSE envelope (JSON).")],
    key: Annotated[list[str] | None, typer.Option("--key", help="Trust a workspace key.")] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key", help="Trust a public key file (PEM, or a securesystemslib key JSON)."
        ),
    ] = None,
    address: Annotated[
        list[str] | None, typer.Option("--address", help="Trust an Ethereum address.")
    ] = None,
    threshold: Annotated[
        int, typer.Option("--threshold", help="How many trusted keys must have signed.")
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Check a signed statement offline: signatures, then the statement and its predicate."""
    try:
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no such envelope file: {file}") from None
        trusted = _trusted(key or [], public_key or [], address or [])
        result = verify_statement(Envelope.from_json(raw), trusted, threshold=threshold)
    except AiledgerError as exc:
        if as_json:
            emit(
                {
                    "valid": False,
                    "error": exc.message,
                    "code": exc.code,
                    "exit_code": exc.exit_code,
                },
                True,
            )
        raise

    def human() -> None:
        signers = ", ".join(k.keyid for k in result.signers)
        console.print(f"[green]OK[/green] {escape(result.statement.predicate_type)}")
        for s in result.statement.subject:
            digest = ", ".join(f"{a}:{h}" for a, h in s.digest.items())
            console.print(f"  subject {escape(s.name)} {digest}")
        console.print(f"  signed by {signers}")
        for claimed, ours in result.keyid_fallbacks:
            console.print(f"  (signature with keyid {escape(claimed)} verified by key {ours})")

    emit(result.to_dict(), as_json, human)

"""``ailedger init`` and ``ailedger keys ...``; workspace and password helpers for commands.

The workspace's default log key is ``[log] key = "NAME"`` in config.toml (set by
``ailedger init --log-key NAME`` or ``ailedger log default-key NAME``). Every command with a
``--log-key`` (or, for ``log checkpoint`` and ``anchor``, the log key's ``--key``) uses it
when the option is omitted; the option overrides it. A config naming a key the workspace
does not have, or one that cannot sign notes (not secp256k1 or Ed25519, or a public key
only), is a :class:`WorkspaceError` (exit 6) at the first command that needs the key.

Key types by role: DSSE statements take any signing key (secp256k1, P-256, Ed25519); log
checkpoints and witness cosignatures take Ed25519 (the C2SP default, readable by any C2SP
client) or secp256k1; on-chain roles (deploy, ``anchor``, ``chain cosign``, oracles) need
secp256k1, because the contracts recover ECDSA signatures.

Passwords come from ``--password-file`` (first line), else ``AILEDGER_PASSWORD``, else a
hidden prompt (asked twice when a key is created). Only this module reads the environment.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit, err_console, state
from ailedger.errors import InvalidInput, KeyAccessError, NotFound, WorkspaceError
from ailedger.identity.keys import (
    KEY_TYPES,
    Ed25519Signer,
    KeyInfo,
    Keystore,
    KeyType,
    Secp256k1Signer,
    Signer,
    detect_import_kind,
)
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.log import TransparencyLog

__all__ = [
    "PASSWORD_ENV",
    "PasswordFileOpt",
    "WitnessNameOpt",
    "check_log_key",
    "default_log_key",
    "keys_app",
    "log_key_name",
    "log_signer",
    "note_signer",
    "open_keystore",
    "open_log",
    "open_workspace",
    "read_password",
    "unlock_secp256k1",
    "unlock_signer",
]

#: Environment variable holding the key password (read only by the CLI).
PASSWORD_ENV = "AILEDGER_PASSWORD"

keys_app = typer.Typer(help="Create, import and inspect signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help=f"Read the key password from this file's first line (else ${PASSWORD_ENV}, "
        "else a prompt).",
    ),
]
OrgOpt = Annotated[str | None, typer.Option("--org", help="Organisation the key acts for.")]
UnsafeOpt = Annotated[
    bool,
    typer.Option(
        "--unsafe-plaintext",
        help="Store the private key unencrypted. Anyone who can read the file can sign as you.",
    ),
]

#: The name a witness signs under (``log cosign``, ``witness serve``).
WitnessNameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Witness name (default: witness/ADDRESS for secp256k1, witness/KEYID16 for ed25519).",
    ),
]


def open_workspace() -> Workspace:
    """The workspace named by ``--workspace`` / ``AILEDGER_HOME``, else the nearest one up."""
    if state.workspace is not None:
        return Workspace.open(state.workspace)
    return Workspace.find(Path.cwd())


def open_keystore() -> Keystore:
    """The current workspace's keystore, with the standard KDF costs."""
    return Keystore(open_workspace().keys_dir)


def open_log(*, read_only: bool = False) -> TransparencyLog:
    """The workspace's transparency log, admitting envelopes signed by the workspace's keys
    (``read_only``: for commands that only read it; nothing is written)."""
    from ailedger.log import known_keys_check, open_workspace_log

    ws = open_workspace()
    known = [k.public_key for k in Keystore(ws.keys_dir).list_keys()]
    return open_workspace_log(ws, check_signature=known_keys_check(known), read_only=read_only)


def log_signer(name: str, password_file: Path | None) -> Secp256k1Signer:
    """The secp256k1 key ``name``, unlocked for an on-chain role (deploy, anchor, witness
    of an anchor): the contracts recover ECDSA signatures, so Ed25519 keys cannot serve."""
    return unlock_secp256k1(
        open_keystore(), name, password_file, purpose="on-chain (deploy, anchor, chain witness)"
    )


#: Key types that can sign C2SP notes (log checkpoints, witness cosignatures).
_NOTE_KEY_TYPES: tuple[KeyType, ...] = ("ed25519", "secp256k1")


def note_signer(
    name: str, password_file: Path | None, *, role: str = "log"
) -> Ed25519Signer | Secp256k1Signer:
    """Key ``name`` unlocked to sign checkpoints or cosignatures (Ed25519 or secp256k1);
    the type is checked before any password is asked for."""
    store = open_keystore()
    _check_note_key(store.info(name), role)
    signer = unlock_signer(store, name, password_file)
    if not isinstance(signer, Ed25519Signer | Secp256k1Signer):
        raise InvalidInput(f"key {name!r} cannot sign notes")
    return signer


def _check_note_key(info: KeyInfo, role: str) -> None:
    if info.keytype not in _NOTE_KEY_TYPES:
        raise InvalidInput(
            f"key {info.name!r} is {info.keytype}; a {role} key must be ed25519 or secp256k1"
        )
    if info.public_only:
        raise InvalidInput(f"key {info.name!r} is a public key only; a {role} key must sign")


def check_log_key(store: Keystore, name: str) -> KeyInfo:
    """Key ``name`` as a log key: :class:`NotFound` if absent, :class:`InvalidInput` if it
    cannot sign notes (not Ed25519 or secp256k1, or a public key only)."""
    info = store.info(name)
    _check_note_key(info, "log")
    return info


def default_log_key(ws: Workspace | None = None) -> KeyInfo | None:
    """The workspace's default log key (``[log] key``), checked; ``None`` if none is set.

    A name the keystore lacks, or a key that cannot sign notes, is a :class:`WorkspaceError`:
    the config is wrong, and nothing falls back to another key."""
    ws = ws or open_workspace()
    name = ws.config.log_key
    if name is None:
        return None
    hint = "create it (`ailedger keys new NAME`) or name another: `ailedger log default-key NAME`"
    try:
        return check_log_key(Keystore(ws.keys_dir), name)
    except NotFound:
        raise WorkspaceError(
            f"{ws.config_path}: [log] key names {name!r}, which is not a key of this workspace",
            hint=hint,
        ) from None
    except InvalidInput as exc:
        raise WorkspaceError(f"{ws.config_path}: [log] key: {exc.message}", hint=hint) from None


def log_key_name(option: str | None, flag: str = "--log-key") -> str:
    """The log key to sign with: the option if given, else the workspace default."""
    if option is not None:
        return option
    info = default_log_key()
    if info is None:
        raise InvalidInput(
            f"no log key: give {flag} NAME or set the workspace's default "
            "(`ailedger log default-key NAME`)"
        )
    return info.name


def _interactive() -> bool:
    """Whether a password prompt can be answered (standard input is a terminal)."""
    return sys.stdin.isatty()


def read_password(password_file: Path | None, *, confirm: bool, prompt: str) -> str:
    """The password from the file, the environment or a prompt, in that order."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFound(f"no such password file: {password_file}") from None
        password = text.splitlines()[0] if text else ""
        if not password:
            raise InvalidInput(f"password file {password_file} is empty")
        return password
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if not _interactive():
        raise KeyAccessError(
            f"{prompt.lower()}: no password given and no terminal to ask on",
            hint=f"use --password-file FILE or set {PASSWORD_ENV}",
        )
    password = str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    if not password:
        raise InvalidInput("the password is empty")
    return password


def unlock_signer(store: Keystore, name: str, password_file: Path | None) -> Signer:
    """Key ``name``, decrypted with the password from the usual sources when it is encrypted."""
    password = None
    if store.info(name).encrypted:
        password = read_password(password_file, confirm=False, prompt=f"Password for {name}")
    return store.signer(name, password)


def unlock_secp256k1(
    store: Keystore, name: str, password_file: Path | None, *, purpose: str
) -> Secp256k1Signer:
    """Like :func:`unlock_signer`, for the roles that need an Ethereum account (chain sender,
    anchor, oracle); ``purpose`` names the role in the error. The type is checked before any
    password is asked for."""
    keytype = store.info(name).keytype
    if keytype != "secp256k1":
        raise InvalidInput(
            f"key {name!r} is {keytype}; {purpose} keys must be secp256k1 (Ethereum accounts)"
        )
    signer = unlock_signer(store, name, password_file)
    if not isinstance(signer, Secp256k1Signer):
        raise InvalidInput(f"key {name!r} is not secp256k1")
    return signer


def _warn_plaintext(name: str) -> None:
    err_console.print(
        f"[yellow]warning:[/yellow] key {escape(name)} is stored UNENCRYPTED; anyone who can "
        "read the workspace can sign as it"
    )


def _show(info: KeyInfo) -> None:
    console.print(f"[bold]{escape(info.name)}[/bold] ({info.keytype})")
    console.print(f"  key id:    {info.keyid}")
    console.print(f"  org:       {escape(info.org or '-')}")
    console.print(f"  created:   {info.created}")
    if info.public_only:
        console.print("  public key only (imported): verifies, cannot sign")
        return
    console.print(f"  encrypted: {'yes' if info.encrypted else 'NO (unsafe plaintext)'}")
    console.print(f"  file:      {escape(str(info.file))}")


@app.command("init")
def init_cmd(
    path: Annotated[
        Path | None, typer.Argument(help="Project directory (default: current directory).")
    ] = None,
    origin: Annotated[
        str | None, typer.Option("--origin", help="Log origin name (default: a unique one).")
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="Also create this secp256k1 key (encrypted) and make it the workspace's "
            "default log key ([log] key in config.toml).",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a workspace (.ailedger/) with a config and a keys directory."""
    root = path or state.workspace or Path.cwd()
    password = None
    if log_key is not None:  # asked first: a missing password leaves no workspace behind
        password = read_password(password_file, confirm=True, prompt="New log key password")
    ws = Workspace.init(root, origin=origin, log_key=log_key)
    data: dict[str, Any] = {
        "workspace": str(ws.path),
        "origin": ws.config.origin,
        "keys": str(ws.keys_dir),
        "log_key": None,
    }
    if log_key is not None:
        try:
            info = Keystore(ws.keys_dir).create(log_key, password)
        except BaseException:  # (a full disk): leave no config naming a key it lacks
            with contextlib.suppress(OSError):
                ws.config_path.unlink()
            raise
        data["log_key"] = {"name": info.name, "keyid": info.keyid}

    def human() -> None:
        console.print(f"initialised {escape(str(ws.path))}")
        if log_key is not None:
            console.print(f"default log key: {escape(log_key)} ({data['log_key']['keyid']})")

    emit(data, as_json, human)


@keys_app.command("new")
def new_cmd(
    name: Annotated[str, typer.Argument(help="Name of the key in this workspace.")],
    org: OrgOpt = None,
    keytype: Annotated[
        str,
        typer.Option(
            "--type",
            help="secp256k1 (an Ethereum account: statements, log, on-chain roles), ed25519 "
            "(statements, log and witness keys; the C2SP default) or p256 (model-signing).",
        ),
    ] = "secp256k1",
    password_file: PasswordFileOpt = None,
    unsafe_plaintext: UnsafeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate a new key, encrypted with a password."""
    kt = next((t for t in KEY_TYPES if t == keytype), None)
    if kt is None:
        raise InvalidInput(f"unknown key type {keytype!r} (expected {', '.join(KEY_TYPES)})")
    store = open_keystore()
    password = None
    if not unsafe_plaintext:
        password = read_password(password_file, confirm=True, prompt="New key password")
    info = store.create(name, password, keytype=kt, org=org, unsafe_plaintext=unsafe_plaintext)
    if unsafe_plaintext:
        _warn_plaintext(name)
    emit(info.to_dict(), as_json, lambda: _show(info))


@keys_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the workspace's keys."""
    infos = open_keystore().list_keys()

    def human() -> None:
        table = Table("name", "type", "key id", "org", "encrypted")
        for i in infos:
            crypt = "public only" if i.public_only else "yes" if i.encrypted else "NO"
            table.add_row(i.name, i.keytype, i.keyid, i.org or "", crypt)
        console.print(table)

    emit([i.to_dict() for i in infos], as_json, human)


@keys_app.command("show")
def show_cmd(
    name: str,
    address: Annotated[
        bool,
        typer.Option(
            "--address", help="Print only the key's Ethereum address (secp256k1 keys), for scripts."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a key's public details."""
    info = open_keystore().info(name)
    if address:
        if info.keytype != "secp256k1":
            raise InvalidInput(f"key {name} is {info.keytype}: only secp256k1 keys have an address")
        typer.echo(info.keyid)
        return
    emit(info.to_dict(), as_json, lambda: _show(info))


@keys_app.command("vkey")
def vkey_cmd(
    name: str,
    witness: Annotated[
        bool,
        typer.Option(
            "--witness",
            help="The key's witness verifier key (what `serve --witness URL=VKEY` takes) "
            "instead of the workspace log's (what `witness serve --log ORIGIN=VKEY` takes).",
        ),
    ] = False,
    witness_name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="With --witness: the witness name given to `witness serve --name` (default: "
            "witness/ADDRESS for secp256k1, witness/KEYID16 for ed25519).",
        ),
    ] = None,
) -> None:
    """Print a key's C2SP verifier key (public; no password): as the workspace log's key
    (named by the log's origin), or with --witness as a witness's cosigning key."""
    from ailedger.log import cosigner_for, note_key_for, vkey

    if witness_name is not None and not witness:
        raise InvalidInput("--name needs --witness (a log's key is named by its origin)")
    store = open_keystore()
    info = store.info(name)
    public = store.public_key(name)  # a type that cannot sign notes is refused below
    if witness:
        default = (
            f"witness/{info.keyid}" if info.keytype == "secp256k1" else f"witness/{info.keyid[:16]}"
        )
        typer.echo(vkey(cosigner_for(witness_name or default, public)))
    else:
        typer.echo(vkey(note_key_for(open_workspace().config.origin, public)))


@keys_app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="Name for the imported key.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="Keystore v3 JSON file, PEM private key, or a public key to trust (SPKI PEM "
            "or a securesystemslib key JSON)."
        ),
    ],
    org: OrgOpt = None,
    password_file: PasswordFileOpt = None,
    unsafe_plaintext: UnsafeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a key; a keystore keeps its encryption, a PEM is encrypted with the password.

    A public key (another tool's signer, e.g. securesystemslib's) is stored to verify its
    statements; it needs no password and can never sign."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such key file: {file}") from None
    kind = detect_import_kind(data)
    store = open_keystore()
    password: str | None = None
    if kind == "public":
        info = store.import_public(name, data, org=org)
        emit(info.to_dict(), as_json, lambda: _show(info))
        return
    if kind != "pem-plain":
        password = read_password(password_file, confirm=False, prompt="Password of the key file")
    elif not unsafe_plaintext:
        password = read_password(password_file, confirm=True, prompt="New key password")
    info = store.import_key(name, data, password, org=org, unsafe_plaintext=unsafe_plaintext)
    if not info.encrypted:
        _warn_plaintext(name)
    emit(info.to_dict(), as_json, lambda: _show(info))


@keys_app.command("export-public")
def export_public_cmd(
    name: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write the PEM here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print or write a key's public key (SubjectPublicKeyInfo PEM)."""
    public = open_keystore().public_key(name)
    pem = public.to_pem()
    if out is not None:
        out.write_text(pem, encoding="ascii")
    data: dict[str, Any] = public.to_dict()
    if out is not None:
        data["out"] = str(out)

    def human() -> None:
        if out is None:
            typer.echo(pem, nl=False)
        else:
            console.print(f"wrote {escape(str(out))} ({public.keyid})")

    emit(data, as_json, human)

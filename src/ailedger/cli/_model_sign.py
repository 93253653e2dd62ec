"""``ailedger model sign`` and ``ailedger model verify``: OpenSSF model-signing bundles.

``model sign`` writes a bundle that ``model_signing verify key`` accepts; ``model verify``
checks one written by ``model_signing sign key`` (or by ``model sign``) and lists every added,
missing and changed file. The options mirror model-signing's (kebab-case here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from rich.markup import escape

from ailedger.attest.model_signing import (
    KeyBundle,
    ModelMismatch,
    ModelVerification,
    load_ec_public_key,
    read_bundle,
    relative_ignore_paths,
    sign_model,
    verify_model,
)
from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit, err_console
from ailedger.cli._keys import PasswordFileOpt, open_keystore, unlock_signer
from ailedger.errors import AiledgerError, InvalidInput, NotFound
from ailedger.fingerprint.model import HashingConfig
from ailedger.identity.keys import PublicKey

__all__ = ["model_app", "model_sign_command", "model_verify_command"]

model_app = typer.Typer(help="Sign, verify and register models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

IgnorePathsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--ignore-paths",
        "--ignore",
        help="A file or directory to leave out (a path, as model_signing takes it); repeatable.",
    ),
]
IgnoreGitOpt = Annotated[
    bool,
    typer.Option(
        "--ignore-git-paths/--no-ignore-git-paths",
        help="Leave out .git, .github, .gitattributes and .gitignore.",
    ),
]
SymlinksOpt = Annotated[
    bool, typer.Option("--allow-symlinks", help="Hash the files that symlinks point to.")
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{what} {path} is a directory") from None


@model_app.command("sign")
def model_sign_command(
    path: Annotated[Path, typer.Argument(help="The model: a file or a directory.")],
    key: Annotated[str, typer.Option("--key", "-k", help="A P-256 key of the workspace.")],
    signature: Annotated[
        Path, typer.Option("--signature", help="Where to write the bundle.")
    ] = Path("model.sig"),
    password_file: PasswordFileOpt = None,
    ignore_paths: IgnorePathsOpt = None,
    ignore_git_paths: IgnoreGitOpt = True,
    allow_symlinks: SymlinksOpt = False,
    algorithm: Annotated[
        str, typer.Option("--algorithm", "-a", help="Digest per file: sha256 or blake3.")
    ] = "sha256",
    shard_size: Annotated[
        int | None,
        typer.Option("--shard-size", min=1, help="Hash files in shards of this many bytes."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a model with a P-256 key; `model_signing verify key` accepts the bundle."""
    if algorithm not in ("sha256", "blake3"):
        raise typer.BadParameter("use sha256 or blake3", param_hint="--algorithm")
    ignored = relative_ignore_paths(path, [*(ignore_paths or ()), signature])
    config = HashingConfig(
        algorithm="sha256" if algorithm == "sha256" else "blake3",
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        ignore_paths=ignored,
        ignore_git_paths=ignore_git_paths,
    )
    store = open_keystore()
    info = store.info(key)
    if info.keytype != "p256":
        raise InvalidInput(
            f"key {key!r} is {info.keytype}; model-signing bundles need a P-256 key",
            hint="create one with `ailedger keys new NAME --type p256`",
        )
    bundle = sign_model(path, unlock_signer(store, key, password_file), config=config)
    signature.write_bytes(bundle.to_json())
    statement = _statement_of(bundle)
    subject = statement["subject"][0]
    resources = statement["predicate"]["resources"]
    data = {
        "signature": str(signature),
        "model_name": subject["name"],
        "subject": subject,
        "hashing": config.identifier,
        "resources": len(resources),
        "key": key,
        "key_hint": bundle.hint,
    }

    def human() -> None:
        name = escape(repr(subject["name"]))
        console.print(
            f"[green]signed[/green] model {name} ({len(resources)} resources, "
            f"{config.identifier}) with key {escape(key)}"
        )
        console.print(f"  subject sha256 {subject['digest']['sha256']}")
        console.print(f"  wrote {escape(str(signature))}")

    emit(data, as_json, human)


def _statement_of(bundle: KeyBundle) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(bundle.envelope.payload)
    return doc


def _trusted(public_key: Path | None, key: str | None) -> PublicKey | ec.EllipticCurvePublicKey:
    if public_key is not None and key is None:
        return load_ec_public_key(_read(public_key, "public key file"), source=str(public_key))
    if key is not None and public_key is None:
        return open_keystore().public_key(key)
    raise InvalidInput("say which key to trust: --public-key FILE or --key NAME (one of them)")


def _mismatch(exc: ModelMismatch) -> None:
    err_console.print(
        f"[red]Verification failed:[/red] model {escape(repr(exc.model_name))} does not match "
        "its signature"
    )
    for name in exc.diff.added:
        err_console.print(f"  added    {escape(name)}")
    for name in exc.diff.missing:
        err_console.print(f"  missing  {escape(name)}")
    for c in exc.diff.changed:
        err_console.print(f"  changed  {escape(c.name)}")
        err_console.print(f"           expected {c.algorithm}:{c.expected.hex()}")
        err_console.print(f"           actual   {c.algorithm}:{c.actual.hex()}")
    if exc.hint:
        err_console.print(f"hint: {escape(exc.hint)}")


@model_app.command("verify")
def model_verify_command(
    path: Annotated[Path, typer.Argument(help="The model: a file or a directory.")],
    signature: Annotated[Path, typer.Option("--signature", help="The bundle to check.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM public key of the signer.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="Trust this workspace key instead.")
    ] = None,
    ignore_paths: IgnorePathsOpt = None,
    ignore_git_paths: IgnoreGitOpt = True,
    allow_symlinks: SymlinksOpt = False,
    ignore_unsigned_files: Annotated[
        bool,
        typer.Option("--ignore-unsigned-files", help="Leave out files the signature omits."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a model against a model-signing bundle (e.g. from `model_signing sign key`)."""
    try:
        trusted = _trusted(public_key, key)
        bundle = read_bundle(_read(signature, "signature file"))
        result: ModelVerification = verify_model(
            path,
            bundle,
            trusted,
            ignore_paths=relative_ignore_paths(path, [*(ignore_paths or ()), signature]),
            ignore_git_paths=ignore_git_paths,
            allow_symlinks=allow_symlinks,
            ignore_unsigned_files=ignore_unsigned_files,
        )
    except ModelMismatch as exc:
        if as_json:
            data = {
                "valid": False,
                "error": exc.message,
                "code": exc.code,
                "exit_code": exc.exit_code,
            }
            emit({**data, "model_name": exc.model_name, **exc.diff.to_dict()}, True)
            raise
        _mismatch(exc)  # every difference on its own line, then the exit code alone
        raise typer.Exit(exc.exit_code) from None
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
        signed = result.signed
        console.print(
            f"[green]Verification succeeded:[/green] model {escape(repr(signed.model_name))} "
            f"matches its signature ({len(signed.resources)} resources, "
            f"{signed.config.identifier})"
        )
        console.print(f"  subject sha256 {signed.subject_digest.hex()}")
        console.print(f"  signed by key  {signed.key_hint}")

    emit(result.to_dict(), as_json, human)

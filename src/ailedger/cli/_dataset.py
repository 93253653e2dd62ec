"""``ailedger fingerprint dataset``, ``ailedger prove`` and ``ailedger verify proof``.

``prove --tensor NAME`` proves a tensor of a model instead (see ``_tensor_proof``);
``verify proof`` checks every proof document ailedger writes.

Salting by default: without ``--salt-secret`` or ``--unsalted`` the dataset is salted with the
secret in ``<dataset>.ailedger-secret`` beside it, created (mode 0600) on first use and reused
afterwards; its path is printed, the secret never is. ``prove`` never creates a secret.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ailedger import _json
from ailedger.cli._app import app, verify_app
from ailedger.cli._common import (
    JsonOpt,
    QuietOpt,
    byte_progress,
    console,
    emit,
    err_console,
    file_size,
)
from ailedger.cli._fingerprint import fingerprint_app
from ailedger.cli._tensor_proof import write_tensor_proof
from ailedger.errors import FormatError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint import dataset as ds
from ailedger.fingerprint._leaves import UNSALTED, create_secret_file, read_secret_file
from ailedger.fingerprint.proofs import (
    MembershipProof,
    NonMembershipProof,
    TensorProof,
    load_proof,
    verify_proof,
)
from ailedger.merkle import InclusionProof

__all__ = ["dataset_secret", "fingerprint_dataset_command", "prove_command", "verify_proof_command"]

_T = TypeVar("_T", bytes, int)

PathArg = Annotated[Path, typer.Argument(help="A CSV, JSONL or Parquet file, or a directory.")]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="csv, jsonl, parquet or files (default: from the extension)."),
]
SecretOpt = Annotated[
    Path | None,
    typer.Option(
        "--salt-secret",
        help="File holding the dataset secret that derives the leaf salts (kept off-chain).",
    ),
]
UnsaltedOpt = Annotated[
    bool, typer.Option("--unsalted", help="No salts: for public data only (records guessable).")
]
SkipLinesOpt = Annotated[
    int,
    typer.Option(
        "--skip-lines",
        min=0,
        help="CSV: skip N leading lines (e.g. a summary line) before the header; their "
        "SHA-256 is recorded in the metadata.",
    ),
]
NoHeaderOpt = Annotated[
    bool,
    typer.Option("--no-header", help="CSV: no header row, every row is a record."),
]


def dataset_secret(
    path: Path,
    salt_secret: Path | None,
    unsalted: bool,
    *,
    create: bool,
    create_named: bool = False,
) -> bytes | None:
    """The dataset secret for ``path`` (None: unsalted), created when missing if ``create``."""
    if salt_secret is not None and unsalted:
        raise InvalidInput("--salt-secret and --unsalted exclude each other")
    if unsalted:
        return None
    secret_path = salt_secret or ds.default_secret_path(path)
    if secret_path.exists():
        return read_secret_file(secret_path)
    if salt_secret is not None and not create_named:  # only `fingerprint` makes a named one
        raise NotFound(f"no such secret file: {salt_secret}")
    if not create:
        raise NotFound(
            f"no dataset secret at {secret_path}",
            hint="pass --salt-secret FILE (the one used to fingerprint) or --unsalted",
        )
    secret = create_secret_file(secret_path)
    err_console.print(
        f"created a new dataset secret in {secret_path} (mode 0600): keep it off-chain and "
        "safe; it is needed to prove records of this dataset"
    )
    return secret


def _secret_path(path: Path, salt_secret: Path | None, secret: bytes | None) -> str | None:
    if secret is None:
        return None
    return str(salt_secret or ds.default_secret_path(path))


@fingerprint_app.command("dataset")
def fingerprint_dataset_command(
    path: PathArg,
    format: FormatOpt = None,
    salt_secret: SecretOpt = None,
    unsalted: UnsaltedOpt = False,
    sort_leaves: Annotated[
        bool,
        typer.Option("--sorted", help="Order leaves by hash (allows proofs of absence)."),
    ] = False,
    canonical_json: Annotated[
        bool,
        typer.Option("--canonical-json", help="JSONL: leaves are RFC 8785 canonical JSON."),
    ] = False,
    index_out: Annotated[
        Path | None,
        typer.Option("--index-out", help="Where to write the index (default: beside the data)."),
    ] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Write no index file.")] = False,
    skip_lines: SkipLinesOpt = 0,
    no_header: NoHeaderOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fingerprint a dataset: a Merkle root over (salted) records, one leaf per record."""
    if not path.exists():
        raise NotFound(f"dataset not found: {path}")
    secret = dataset_secret(path, salt_secret, unsalted, create=True, create_named=True)
    with byte_progress("fingerprinting", file_size(path), enabled=not (quiet or as_json)) as bar:
        fp = ds.fingerprint_dataset(
            path,
            secret=secret,
            format=format,
            sort_leaves=sort_leaves,
            canonical_json=canonical_json,
            skip_lines=skip_lines,
            header_row=not no_header,
            progress=bar,
        )
        index = None if no_index else ds.write_index_file(fp, index_out)
    doc = {
        **fp.to_dict(),
        "index_file": None if index is None else str(index),
        "secret_file": _secret_path(path, salt_secret, secret),
    }
    emit(doc, as_json, lambda: _human(doc))


def _human(doc: dict[str, Any]) -> None:
    for key in ("root", "size", "format", "leaf_encoding", "scheme", "order", "data_sha256"):
        console.print(f"[bold]{key:<14}[/bold] {doc[key]}")
    meta = doc["metadata"]
    if "header" in meta:
        console.print(f"[bold]{'header':<14}[/bold] {', '.join(meta['header'])}")
        console.print(f"[bold]{'header_sha256':<14}[/bold] {meta['header_sha256']}")
    elif meta.get("header_row") is False:
        console.print(f"[bold]{'header':<14}[/bold] none (--no-header)")
    if meta.get("skip_lines"):
        console.print(f"[bold]{'skip_lines':<14}[/bold] {meta['skip_lines']}")
        console.print(f"[bold]{'skipped_sha256':<14}[/bold] {meta['skipped_sha256']}")
    if "schema_sha256" in meta:
        console.print(f"[bold]{'schema_sha256':<14}[/bold] {meta['schema_sha256']}")
    for key in ("index_file", "secret_file"):
        if doc[key]:
            console.print(f"[bold]{key:<14}[/bold] {doc[key]}")


@app.command("prove")
def prove_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A dataset (CSV, JSONL or Parquet file, or a directory); with --tensor, a model "
            "(a directory or a .safetensors file)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the proof (JSON).")],
    index: Annotated[
        int | None, typer.Option("--index", help="Record number, 0-based, in input order.")
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="A file holding the record to prove.")
    ] = None,
    salt_secret: SecretOpt = None,
    unsalted: UnsaltedOpt = False,
    sort_leaves: Annotated[
        bool | None,
        typer.Option("--sorted/--input-order", help="Leaf order (default: from the index)."),
    ] = None,
    format: FormatOpt = None,
    canonical_json: Annotated[
        bool | None,
        typer.Option("--canonical-json/--line-json", help="JSONL leaf encoding."),
    ] = None,
    index_file: Annotated[
        Path | None, typer.Option("--index-file", help="The dataset index (default: beside it).")
    ] = None,
    omit_record: Annotated[
        bool,
        typer.Option("--omit-record", help="Leave the record out of the proof (privacy)."),
    ] = False,
    skip_lines: Annotated[
        int | None,
        typer.Option(
            "--skip-lines", min=0, help="CSV: leading lines before the header (default: index)."
        ),
    ] = None,
    header_row: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header", help="CSV: whether row 1 is a header (default: index)."
        ),
    ] = None,
    tensor: Annotated[
        str | None,
        typer.Option("--tensor", help="Model: prove this tensor of a safetensors file (by name)."),
    ] = None,
    tensor_file: Annotated[
        str | None,
        typer.Option("--file", help="Model: the safetensors file (relative path) of --tensor."),
    ] = None,
    algorithm: Annotated[
        str | None,
        typer.Option("--algorithm", "-a", help="Model: sha256 (default) or blake3 digests."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Model: read every file (no stat cache).")
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Prove a record is in a dataset (or, sorted, that it is not), or a tensor in a model.

    A dataset is one fingerprinted with ``fingerprint dataset``; with --tensor, the model is a
    directory or a .safetensors file."""
    if tensor is not None:
        dataset_opts = (
            index, record, salt_secret, format, sort_leaves, canonical_json, index_file,
            skip_lines, header_row,
        )  # fmt: skip
        if any(o is not None for o in dataset_opts) or unsalted or omit_record:
            raise InvalidInput("--tensor proves a model tensor: drop the dataset options")
        summary = write_tensor_proof(
            path,
            out,
            tensor,
            file=tensor_file,
            algorithm=algorithm or "sha256",
            use_cache=not no_cache,
        )
        emit(summary, as_json, lambda: console.print(f"wrote tensor proof to {out}"))
        return
    if tensor_file is not None or algorithm is not None or no_cache:
        raise InvalidInput("--file, --algorithm and --no-cache apply to --tensor proofs only")
    if (index is None) == (record is None):
        raise InvalidInput("give exactly one of --index I or --record FILE (or --tensor NAME)")
    if not path.exists():
        raise NotFound(f"dataset not found: {path}")
    if salt_secret is None and not unsalted:
        idx = index_file or ds.default_index_path(path)
        header = ds.read_index_header(idx) if idx.is_file() else {}
        unsalted = header.get("scheme") == UNSALTED
    secret = dataset_secret(path, salt_secret, unsalted, create=False)
    with byte_progress("proving", file_size(path), enabled=not (quiet or as_json)) as bar:
        proof = ds.prove_record(
            path,
            secret=secret,
            index=index,
            record=record,
            format=format,
            sort_leaves=sort_leaves,
            canonical_json=canonical_json,
            index_file=index_file,
            include_record=not omit_record,
            skip_lines=skip_lines,
            header_row=header_row,
            progress=bar,
        )
    out.write_text(json.dumps(proof.to_dict(), indent=2) + "\n", encoding="utf-8")
    member = isinstance(proof, MembershipProof)
    doc: dict[str, Any] = {
        "proof_file": str(out),
        "kind": "membership" if member else "non-membership",
        "root": proof.dataset.root.hex(),
        "size": proof.dataset.size,
        "scheme": proof.dataset.scheme,
    }
    if isinstance(proof, MembershipProof):
        doc["leaf_index"] = proof.inclusion.leaf_index
    emit(doc, as_json, lambda: console.print(f"wrote {doc['kind']} proof to {out}"))


def _registered_value(ref: str, kind: str) -> bytes:
    """The root (dataset) or subject digest (model) the workspace registered as ``ref``."""
    from ailedger.cli._workflow import open_registry
    from ailedger.registry._refs import VersionRef

    with open_registry(read_only=True) as registry:
        version = VersionRef.parse(ref)
        row = registry.dataset(version) if kind == "dataset" else registry.model(version)
    value = row.root if kind == "dataset" else row.digest
    parsed = _hex32_option(value, f"the registered {kind} {ref}", digest=True)
    if parsed is None:  # pragma: no cover - a registered dataset always has a root
        raise InvalidInput(f"{kind} {ref} has no registered root")
    return parsed


def _registered_size(ref: str) -> int:
    """The tree size the dataset statement of ``ref`` records beside its root (a root alone
    does not fix the size, which a non-membership proof needs)."""
    from ailedger.attest.dsse import Envelope
    from ailedger.attest.predicates import DatasetPredicate
    from ailedger.attest.statements import Statement
    from ailedger.cli._workflow import open_registry
    from ailedger.registry._refs import VersionRef

    with open_registry(read_only=True) as registry:
        row = registry.dataset(VersionRef.parse(ref))
        envelope = Envelope.from_json(registry.log.get(row.log_index).envelope)
    predicate = Statement.from_json(envelope.payload).typed_predicate()
    if not isinstance(predicate, DatasetPredicate):  # pragma: no cover - the index reads it so
        raise InvalidInput(f"log entry {row.log_index} is not the dataset statement of {ref}")
    return predicate.size


def _agree(given: _T | None, trusted: _T, option: str, ref: str) -> _T:
    if given is not None and given != trusted:
        shown = trusted.hex() if isinstance(trusted, bytes) else str(trusted)
        raise InvalidInput(f"{option} differs from what {ref} registered ({shown})")
    return trusted


def _hex32_option(value: str | None, name: str, *, digest: bool = False) -> bytes | None:
    """32 bytes from hex or 0x-hex; a ``digest`` (a SHA-256 subject digest) may also be
    written ``sha256:HEX``, as every other command prints and accepts digests."""
    if value is None:
        return None
    text = value.strip()
    if digest and text[:7].lower() == "sha256:":
        text = text[7:]
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"{name} is not hex: {value!r}") from None
    if len(raw) != 32:
        raise InvalidInput(f"{name} is {len(raw)} bytes, expected 32")
    return raw


@verify_app.command("proof")
def verify_proof_command(
    proof_file: Annotated[Path, typer.Argument(help="A proof document (JSON).")],
    root: Annotated[
        str | None, typer.Option("--root", help="Expected root (hex); fail if it differs.")
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            min=0,
            help="Expected tree size; fail if it differs (a root alone does not fix the size: "
            "a non-membership proof checked against --root needs it, --registered reads it).",
        ),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Check that the proof is about this record (tensor proof: the raw tensor bytes).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Tensor proof: re-hash the tensor from this model on disk."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject", help="Tensor proof: expected model subject digest (sha256:HEX or hex)."
        ),
    ] = None,
    registered: Annotated[
        str | None,
        typer.Option(
            "--registered",
            help="Check against what the workspace registered as N@V: a dataset's root and "
            "size (dataset proofs) or a model's subject digest (tensor proofs).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a dataset membership/non-membership proof, a model tensor proof or a Merkle
    inclusion/consistency proof. Exit 0 when valid, 1 with the reason otherwise (a
    non-membership proof checked against --root without --size: 1, proof-size-unpinned)."""
    expected = _hex32_option(root, "--root")
    expected_subject = _hex32_option(subject, "--subject", digest=True)
    raw = proof_file.read_bytes()
    record_bytes = None if record is None else record.read_bytes()
    try:
        proof = load_proof(_json.loads(raw, what=str(proof_file)))
    except (ValueError, FormatError) as exc:
        raise ProofInvalid(
            f"malformed proof {proof_file}: {exc}", code="proof-format-invalid"
        ) from None
    if registered is not None:
        if isinstance(proof, TensorProof):
            trusted = _registered_value(registered, "model")
            expected_subject = _agree(expected_subject, trusted, "--subject", registered)
        else:
            trusted = _registered_value(registered, "dataset")
            expected = _agree(expected, trusted, "--root", registered)
            size = _agree(size, _registered_size(registered), "--size", registered)
    stated_leaf = isinstance(proof, NonMembershipProof) or (
        isinstance(proof, InclusionProof) and record is None
    )
    if stated_leaf and expected is not None and size is None:
        what = "non-membership" if isinstance(proof, NonMembershipProof) else "inclusion"
        raise ProofInvalid(
            f"a {what} proof checked against --root needs --size too: the trusted tree size, "
            "from where the root came (a root does not fix the size)",
            code="proof-size-unpinned",
        )
    check = verify_proof(
        proof,
        expected_root=expected,
        record=record_bytes,
        model=model,
        expected_subject=expected_subject,
        expected_size=size,
    )
    doc = check.to_dict()
    # Say what was and was not checked: a proof checked only against the root it carries
    # shows it is well formed, not that the record is in the dataset someone registered.
    not_checked: list[str] = []
    if expected is None:
        not_checked.append("root: the proof was checked against its own root (pass --root)")
    if size is None and stated_leaf:
        not_checked.append("size: the proof was checked against its own tree size (pass --size)")
    if isinstance(proof, TensorProof):
        doc["tensor"] = proof.tensor.name
        doc["subject_digest"] = proof.model.subject_digest.hex()
        if expected_subject is None:
            not_checked.append("subject: pass --subject sha256:HEX")
        if not check.record_checked:
            not_checked.append("tensor bytes: pass --model PATH")
    elif not check.record_checked:
        not_checked.append("record: pass --record FILE")
    doc["root_checked"] = expected is not None
    doc["size_checked"] = size is not None
    doc["not_checked"] = not_checked

    def human() -> None:
        against = "the expected root" if expected is not None else "its own root"
        console.print(
            f"[green]valid[/green] {check.kind} proof against {against} {check.root.hex()}, "
            f"size {check.size}"
        )
        if expected is None:
            err_console.print(
                "note: the root was not checked against a trusted value; pass --root ROOT "
                "(from the dataset's registration, anchor or log entry) to prove membership "
                "in that dataset"
            )
        rest = [item.split(":", 1)[0] for item in not_checked if not item.startswith("root")]
        if rest:
            err_console.print(f"note: not checked: {', '.join(rest)}")

    emit(doc, as_json, human)

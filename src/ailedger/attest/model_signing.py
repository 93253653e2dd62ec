"""Sign and verify models in the OpenSSF model-signing format (``model-signing`` 1.1.1).

::

    bundle = sign_model("my-model/", p256_signer)                 # a KeyBundle
    Path("model.sig").write_bytes(bundle.to_json())              # model_signing verify key ...
    result = verify_model("my-model/", read_bundle(data), public_key)

The bundle is a Sigstore v0.3 bundle around a DSSE envelope (see
``ailedger.attest._sigstore_bundle``)
whose payload is an in-toto Statement v1 with predicate type
``https://model_signing/signature/v1.0``: one subject (the model's name and the SHA-256 over
every resource digest in order) and a predicate with the ``serialization`` parameters
(method, hash type, shard size, symlinks, ignored paths) and one resource per file or shard.
The manifest comes from :func:`ailedger.fingerprint.model.fingerprint_model`, which hashes exactly
as
model-signing does, so ``model_signing verify key`` accepts what :func:`sign_model` writes and
:func:`verify_model` accepts what ``model_signing sign key`` writes.

:func:`verify_model` fails closed. It checks the signature and the signed manifest's own
consistency, re-hashes the model the way the signature says it was hashed, and raises
:class:`ModelMismatch` (exit code 1) listing every added, missing and changed file, in
model-signing's words, when the model is not the signed one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec

from ailedger import _json
from ailedger.attest import dsse
from ailedger.attest._sigstore_bundle import (
    BUNDLE_MEDIA_TYPE,
    KeyBundle,
    check_curve,
    key_hint,
    load_ec_public_key,
)
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid, VerificationFailed
from ailedger.fingerprint._walk import list_model_files
from ailedger.fingerprint.model import (
    DEFAULT_IGNORE_PATHS,
    HashingConfig,
    Resource,
    StatCache,
    fingerprint_model,
    subject_digest,
)
from ailedger.identity._signers import P256PublicKey, PublicKey, Signer

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "ChangedResource",
    "KeyBundle",
    "ModelDiff",
    "ModelMismatch",
    "ModelVerification",
    "SignedModel",
    "diff_resources",
    "load_ec_public_key",
    "open_signed_model",
    "read_bundle",
    "relative_ignore_paths",
    "sign_model",
    "verify_model",
]

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_COMPAT_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"


# --- Differences -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangedResource:
    """A file (or shard) whose digest is not the signed one."""

    name: str
    algorithm: str
    expected: bytes
    actual: bytes

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "expected": self.expected.hex(),
            "actual": self.actual.hex(),
        }


@dataclass(frozen=True)
class ModelDiff:
    """How a model differs from its signed manifest; empty when it matches."""

    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    changed: tuple[ChangedResource, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.changed)

    def messages(self, model_name: str) -> list[str]:
        """One line per difference kind, as ``model_signing verify`` words them."""
        out = []
        if self.added:
            out.append(f"Extra files found in model '{model_name}': {', '.join(self.added)}")
        if self.missing:
            out.append(f"Missing files in model '{model_name}': {', '.join(self.missing)}")
        for c in self.changed:
            out.append(
                f"Hash mismatch for '{c.name}': Expected '{c.algorithm}:{c.expected.hex()}', "
                f"Actual '{c.algorithm}:{c.actual.hex()}'"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "missing": list(self.missing),
            "changed": [c.to_dict() for c in self.changed],
        }


def diff_resources(expected: Sequence[Resource], actual: Sequence[Resource]) -> ModelDiff:
    """Added, missing and changed resources of ``actual`` against ``expected``, by name."""
    want = {r.name: r for r in expected}
    have = {r.name: r for r in actual}
    changed = [
        ChangedResource(name, want[name].algorithm, want[name].digest, have[name].digest)
        for name in sorted(want.keys() & have.keys())
        if (want[name].algorithm, want[name].digest) != (have[name].algorithm, have[name].digest)
    ]
    return ModelDiff(
        added=tuple(sorted(have.keys() - want.keys())),
        missing=tuple(sorted(want.keys() - have.keys())),
        changed=tuple(changed),
    )


class ModelMismatch(VerificationFailed):
    """The model is not the one that was signed; ``diff`` says how."""

    exit_code = 1
    default_code = "model-signature-mismatch"

    def __init__(self, model_name: str, diff: ModelDiff) -> None:
        lines = diff.messages(model_name)
        super().__init__(
            "signature mismatch: " + "; ".join(lines),
            hint="the model changed since it was signed; leave local files out with "
            "--ignore-paths (ignore_paths=...)",
        )
        self.model_name = model_name
        self.diff = diff


# --- Signing -----------------------------------------------------------------------------------


def relative_ignore_paths(
    model: str | os.PathLike[str], paths: Iterable[str | os.PathLike[str]]
) -> tuple[str, ...]:
    """``paths`` (absolute, or relative to the working directory) that lie inside ``model``,
    relative to it; the others are dropped. model-signing's CLI does this with the signature
    file and ``--ignore-paths``."""
    root = Path(model).resolve()
    out = []
    for p in paths:
        try:
            rel = Path(p).resolve().relative_to(root)
        except ValueError:
            continue
        if rel.parts:
            out.append(rel.as_posix())
    return tuple(dict.fromkeys(out))


def _statement(model_name: str, config: HashingConfig, resources: tuple[Resource, ...]) -> bytes:
    statement: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": subject_digest(resources).hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": config.serialization(),
            "resources": [r.to_dict() for r in resources],
        },
    }
    return bytes(rfc8785.dumps(statement))


def sign_model(
    path: str | os.PathLike[str],
    signer: Signer,
    *,
    config: HashingConfig | None = None,
    cache: StatCache | None = None,
) -> KeyBundle:
    """Hash the model at ``path`` and sign its manifest with a P-256 ``signer``.

    ``config`` (default: model-signing's defaults, SHA-256 per file, git paths ignored) is
    recorded in the bundle. Put the signature file's own path in ``config.ignore_paths`` when
    it lies inside the model (see :func:`relative_ignore_paths`).
    """
    if not isinstance(signer.public_key, P256PublicKey):
        raise InvalidInput(
            f"model-signing bundles need a P-256 key; {signer.keyid} is {signer.keytype}",
            hint="create one with `ailedger keys new NAME --type p256`",
        )
    cfg = config or HashingConfig()
    if cfg.algorithm == "blake3" and cfg.shard_size is not None:
        raise InvalidInput(
            "model-signing hashes BLAKE3 by whole files only: use blake3 without a shard size"
        )
    fp = fingerprint_model(path, cfg, tensors=False, cache=cache)
    payload = _statement(fp.model_name, cfg, fp.resources)
    pae = dsse.pae(dsse.PAYLOAD_TYPE_IN_TOTO, payload)
    envelope = dsse.Envelope(
        dsse.PAYLOAD_TYPE_IN_TOTO, payload, (dsse.Signature("", signer.sign(pae)),)
    )
    return KeyBundle(envelope, signer.public_key.keyid)


# --- Verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedModel:
    """The manifest inside a bundle whose signature verified."""

    model_name: str
    subject_digest: bytes
    serialization: dict[str, Any]
    config: HashingConfig
    resources: tuple[Resource, ...]
    key_hint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "subject": {"name": self.model_name, "digest": {"sha256": self.subject_digest.hex()}},
            "hashing": self.config.identifier,
            "serialization": self.serialization,
            "resources": len(self.resources),
            "key_hint": self.key_hint,
        }


def read_bundle(data: bytes | str | Mapping[str, Any]) -> KeyBundle:
    """Parse a bundle from JSON bytes or a parsed JSON object."""
    if isinstance(data, Mapping):
        return KeyBundle.from_dict(dict(data))
    return KeyBundle.from_json(data)


def _ec_key(public_key: PublicKey | ec.EllipticCurvePublicKey) -> ec.EllipticCurvePublicKey:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        check_curve(public_key, "the public key")
        return public_key
    if isinstance(public_key, P256PublicKey):
        return public_key.key
    raise InvalidInput(
        f"model-signing bundles are signed with P-256 keys; {public_key.keyid} is "
        f"{public_key.keytype}"
    )


def _field(doc: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise FormatError(f"signed statement: {what} must be a {kind.__name__}")
    return value


def _parse_statement(payload: bytes) -> tuple[str, bytes, dict[str, Any], list[Resource]]:
    try:
        doc = _json.loads(payload, what="the signed payload")
    except FormatError:
        raise FormatError("the signed payload is not JSON (or nests too deeply)") from None
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise FormatError(f"the signed payload is not an in-toto statement ({STATEMENT_TYPE})")
    if doc.get("predicateType") == _COMPAT_PREDICATE_TYPE:
        raise FormatError("this is a model-signing 0.2 signature (Digests/v0.1): re-sign it")
    if doc.get("predicateType") != PREDICATE_TYPE:
        raise FormatError(
            f"predicate type is {doc.get('predicateType')!r}, expected {PREDICATE_TYPE}"
        )
    subjects = _field(doc, "subject", list, "subject")
    if len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise FormatError(f"expected exactly one subject, got {len(subjects)}")
    name = _field(subjects[0], "name", str, "subject name")
    digest = _field(_field(subjects[0], "digest", dict, "subject digest"), "sha256", str, "sha256")
    predicate = _field(doc, "predicate", dict, "predicate")
    serialization = _field(predicate, "serialization", dict, "serialization")
    resources = [Resource.from_dict(r) for r in _field(predicate, "resources", list, "resources")]
    try:
        subject = bytes.fromhex(digest)
    except ValueError:
        raise FormatError("subject sha256 digest is not hex") from None
    return name, subject, serialization, resources


def open_signed_model(
    bundle: KeyBundle, public_key: PublicKey | ec.EllipticCurvePublicKey
) -> SignedModel:
    """Check the bundle's signature and return the manifest it signs (not yet the model)."""
    key = _ec_key(public_key)
    payload = bundle.verify(key)
    name, subject, serialization, resources = _parse_statement(payload)
    config = HashingConfig.from_serialization(serialization)
    names = [r.name for r in resources]
    if len(set(names)) != len(names):
        raise FormatError("the signed manifest names a resource twice")
    for r in resources:
        if r.algorithm != config.identifier:
            raise FormatError(
                f"resource {r.name!r} is hashed with {r.algorithm}, but the serialization "
                f"says {config.identifier}"
            )
    if subject_digest(resources) != subject:
        raise SignatureInvalid(
            f"the signed manifest is inconsistent: its subject digest is {subject.hex()}, "
            f"but its resources hash to {subject_digest(resources).hex()}",
            code="model-manifest-inconsistent",
        )
    return SignedModel(name, subject, serialization, config, tuple(resources), key_hint(key))


@dataclass(frozen=True)
class ModelVerification:
    """A model that matched its signature."""

    signed: SignedModel
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"valid": True, "path": self.path, **self.signed.to_dict()}


def _verify_config(
    signed: SignedModel,
    path: str | os.PathLike[str],
    ignore_paths: Sequence[str],
    ignore_git_paths: bool,
    allow_symlinks: bool,
    ignore_unsigned_files: bool,
) -> HashingConfig:
    # As model-signing's verifier: the signature's ignored paths, the caller's, and the git
    # paths when asked; the hashing method and symlink rule the signature recorded.
    signed_ignores = signed.serialization.get("ignore_paths", [])
    ignored = [*signed_ignores, *ignore_paths]
    base = signed.config
    symlinks = base.allow_symlinks or allow_symlinks
    if ignore_unsigned_files:
        wanted = {r.name.rsplit(":", 2)[0] if base.shard_size else r.name for r in signed.resources}
        git = DEFAULT_IGNORE_PATHS if ignore_git_paths else ()
        _, files = list_model_files(
            path, ignore_paths=tuple(dict.fromkeys([*ignored, *git])), allow_symlinks=symlinks
        )
        ignored.extend(f.name for f in files if f.name not in wanted and f.name != ".")
    return HashingConfig(
        base.algorithm, base.shard_size, symlinks, tuple(dict.fromkeys(ignored)), ignore_git_paths
    )


def verify_model(
    path: str | os.PathLike[str],
    bundle: KeyBundle,
    public_key: PublicKey | ec.EllipticCurvePublicKey,
    *,
    ignore_paths: Sequence[str] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    ignore_unsigned_files: bool = False,
) -> ModelVerification:
    """Check that ``bundle`` is signed by ``public_key`` and that the model is what it signs.

    ``ignore_paths`` (relative to the model) are left out in addition to those the signature
    records; ``ignore_unsigned_files`` leaves out every file the signature does not name.
    Raises ``SignatureInvalid`` (bad signature, wrong key), ``ModelMismatch`` (added, missing
    or changed files), ``FormatError`` / ``InvalidInput`` (malformed or unsupported bundle).
    """
    signed = open_signed_model(bundle, public_key)
    config = _verify_config(
        signed, path, ignore_paths, ignore_git_paths, allow_symlinks, ignore_unsigned_files
    )
    actual = fingerprint_model(path, config, tensors=False)
    diff = diff_resources(signed.resources, actual.resources)
    if diff:
        raise ModelMismatch(actual.model_name, diff)
    return ModelVerification(signed, os.fspath(path))

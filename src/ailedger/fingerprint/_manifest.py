"""The model manifest: hashing configuration, resources, subject digest, tensor roots.

``ModelFingerprint.to_dict()`` is the JSON manifest; ``from_dict`` reads one back and checks
that it is consistent (the subject digest over the resources, the tensor root over the
leaves) before anything is built on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ailedger import merkle
from ailedger.errors import FormatError, InvalidInput
from ailedger.fingerprint._hashing import ALGORITHMS, Algorithm
from ailedger.fingerprint._tensors import TENSOR_LEAF_TYPE, TensorFile, TensorLeaf
from ailedger.fingerprint._walk import DEFAULT_IGNORE_PATHS

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "MANIFEST_TYPE",
    "FingerprintStats",
    "HashingConfig",
    "ModelFingerprint",
    "Resource",
    "subject_digest",
]

MANIFEST_TYPE = "https://ailedger.dev/model/manifest/v1"
#: model-signing's default shard size (``use_shard_serialization``).
DEFAULT_SHARD_SIZE = 1_000_000_000


@dataclass(frozen=True)
class HashingConfig:
    """How to hash a model. The defaults are model-signing's ``hashing.hash()`` defaults."""

    algorithm: Algorithm = "sha256"
    shard_size: int | None = None
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = ()
    ignore_git_paths: bool = True
    max_workers: int | None = field(default=None, compare=False)  # speed only

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise InvalidInput(f"unknown algorithm {self.algorithm!r} (use sha256 or blake3)")
        if self.shard_size is not None and self.shard_size <= 0:
            raise InvalidInput(f"shard size must be positive, got {self.shard_size}")

    @property
    def identifier(self) -> str:
        """``sha256``, ``blake3`` or ``<algorithm>-sharded-<bytes>``."""
        if self.shard_size is None:
            return self.algorithm
        return f"{self.algorithm}-sharded-{self.shard_size}"

    @property
    def effective_ignore_paths(self) -> tuple[str, ...]:
        extra = DEFAULT_IGNORE_PATHS if self.ignore_git_paths else ()
        return tuple(dict.fromkeys((*self.ignore_paths, *extra)))

    def serialization(self) -> dict[str, Any]:
        """The ``serialization`` section model-signing writes into its predicate."""
        doc: dict[str, Any] = {
            "method": "files" if self.shard_size is None else "shards",
            "hash_type": self.algorithm,
        }
        if self.shard_size is not None:
            doc["shard_size"] = self.shard_size
        doc["allow_symlinks"] = self.allow_symlinks
        if self.effective_ignore_paths:
            doc["ignore_paths"] = list(self.effective_ignore_paths)
        return doc

    @classmethod
    def from_serialization(cls, doc: Any) -> HashingConfig:
        """The configuration a ``serialization`` section (model-signing's) describes."""
        if not isinstance(doc, Mapping):
            raise FormatError("serialization must be an object")
        method, algorithm = doc.get("method"), doc.get("hash_type")
        if method not in ("files", "shards") or algorithm not in ALGORITHMS:
            raise FormatError(f"unsupported serialization {method!r} with {algorithm!r}")
        shard = doc.get("shard_size") if method == "shards" else None
        if isinstance(shard, float) and shard.is_integer():
            shard = int(shard)  # protobuf Structs (model-signing's payloads) carry floats
        if method == "shards" and (not isinstance(shard, int) or isinstance(shard, bool)):
            raise FormatError("shard serialization needs an integer shard_size")
        symlinks, ignored = doc.get("allow_symlinks", False), doc.get("ignore_paths", [])
        if not isinstance(symlinks, bool) or not isinstance(ignored, list):
            raise FormatError("allow_symlinks must be a boolean and ignore_paths a list")
        if not all(isinstance(p, str) for p in ignored):
            raise FormatError("ignore_paths must be strings")
        git = all(p in ignored for p in DEFAULT_IGNORE_PATHS)
        own = tuple(p for p in ignored if not (git and p in DEFAULT_IGNORE_PATHS))
        try:
            return cls(cast(Algorithm, algorithm), shard, symlinks, own, git)
        except InvalidInput as exc:
            raise FormatError(f"bad serialization: {exc.message}") from None


@dataclass(frozen=True)
class Resource:
    """One manifest entry: a file (``name``) or a shard (``name:start:end``)."""

    name: str
    algorithm: str
    digest: bytes

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest.hex()}

    @classmethod
    def from_dict(cls, doc: Any) -> Resource:
        if not isinstance(doc, Mapping):
            raise FormatError("a resource must be an object")
        name, algorithm, digest = doc.get("name"), doc.get("algorithm"), doc.get("digest")
        if not (isinstance(name, str) and isinstance(algorithm, str) and isinstance(digest, str)):
            raise FormatError("a resource needs string name, algorithm and digest")
        try:
            return cls(name, algorithm, bytes.fromhex(digest))
        except ValueError:
            raise FormatError(f"resource {name!r} has a digest that is not hex") from None


@dataclass(frozen=True)
class FingerprintStats:
    """How the work went (not part of the manifest)."""

    files: int
    bytes_total: int
    bytes_read: int
    cached_items: int
    seconds: float


def subject_digest(resources: list[Resource] | tuple[Resource, ...]) -> bytes:
    """SHA-256 over the raw resource digests in manifest order (model-signing's subject)."""
    h = hashlib.sha256()
    for r in resources:
        h.update(r.digest)
    return h.digest()


@dataclass(frozen=True)
class ModelFingerprint:
    """A model's manifest: what :func:`~ailedger.fingerprint.model.fingerprint_model` returns."""

    model_name: str
    config: HashingConfig
    resources: tuple[Resource, ...]
    subject_digest: bytes
    tensor_files: tuple[TensorFile, ...] | None = None
    tensor_leaves: tuple[TensorLeaf, ...] | None = None
    tensor_root: bytes | None = None
    #: the digest of the tensors' bytes in the leaves (None: no tensors)
    tensor_algorithm: str | None = None
    stats: FingerprintStats | None = field(default=None, compare=False)

    @property
    def hashing(self) -> str:
        return self.config.identifier

    def to_dict(self, *, leaves: bool = False) -> dict[str, Any]:
        """The manifest as JSON data; ``leaves`` adds every tensor leaf (to serve proofs)."""
        doc: dict[str, Any] = {
            "type": MANIFEST_TYPE,
            "model_name": self.model_name,
            "hashing": self.hashing,
            "subject": {"name": self.model_name, "digest": {"sha256": self.subject_digest.hex()}},
            "serialization": self.config.serialization(),
            "resources": [r.to_dict() for r in self.resources],
            "tensors": None,
        }
        if self.tensor_files is not None and self.tensor_root is not None:
            tensors: dict[str, Any] = {
                "tree": merkle.TREE_ALGORITHM,
                "leaf_type": TENSOR_LEAF_TYPE,
                "digest_algorithm": self.tensor_algorithm or self.config.algorithm,
                "root": self.tensor_root.hex(),
                "count": len(self.tensor_leaves or ()),
                "files": [t.to_dict() for t in self.tensor_files],
            }
            if leaves:
                tensors["leaves"] = [leaf.to_dict() for leaf in self.tensor_leaves or ()]
            doc["tensors"] = tensors
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> ModelFingerprint:
        """Read a manifest written by :meth:`to_dict`; raises ``FormatError`` when it is
        malformed or inconsistent (subject digest, tensor root)."""
        if not isinstance(doc, Mapping) or doc.get("type") != MANIFEST_TYPE:
            raise FormatError(f"not a model manifest (type must be {MANIFEST_TYPE})")
        try:
            config = HashingConfig.from_serialization(doc["serialization"])
            name = _str(doc["model_name"], "model_name")
            resources = tuple(Resource.from_dict(r) for r in doc["resources"])
            subject = bytes.fromhex(doc["subject"]["digest"]["sha256"])
            tensors = doc["tensors"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"malformed model manifest ({type(exc).__name__}: {exc})") from None
        if doc.get("hashing") != config.identifier:
            raise FormatError(f"hashing {doc.get('hashing')!r} does not match the serialization")
        if any(r.algorithm != config.identifier for r in resources):
            raise FormatError(f"every resource must be hashed with {config.identifier}")
        if subject_digest(resources) != subject:
            raise FormatError("inconsistent manifest: the subject digest is not over the resources")
        if tensors is None:
            return cls(name, config, resources, subject)
        files, leaves, root, algorithm = _tensors_from_dict(tensors, config.algorithm)
        return cls(name, config, resources, subject, files, leaves, root, algorithm)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"manifest field {what} must be a string")
    return value


def _tensors_from_dict(
    doc: Any, file_algorithm: str
) -> tuple[tuple[TensorFile, ...], tuple[TensorLeaf, ...] | None, bytes, str]:
    """Files, leaves (if listed), root and tensor digest algorithm. Manifests written before
    ``digest_algorithm`` existed digested the tensors with the files' algorithm."""
    try:
        if doc["tree"] != merkle.TREE_ALGORITHM or doc["leaf_type"] != TENSOR_LEAF_TYPE:
            raise FormatError("unsupported tensor tree or leaf type")
        algorithm = doc.get("digest_algorithm", file_algorithm)
        root = bytes.fromhex(doc["root"])
        count = doc["count"]
        files = tuple(TensorFile.from_dict(f) for f in doc["files"])
        raw_leaves = doc.get("leaves")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"malformed tensors section ({type(exc).__name__}: {exc})") from None
    if algorithm not in ALGORITHMS:
        raise FormatError(
            f"unknown tensor digest algorithm {algorithm!r} (this version knows "
            f"{' and '.join(ALGORITHMS)})"
        )
    if sum(f.count for f in files) != count:
        raise FormatError("tensor count does not match the files")
    if raw_leaves is None:
        return files, None, root, algorithm
    if not isinstance(raw_leaves, list):
        raise FormatError("tensor leaves must be a list")
    leaves = tuple(TensorLeaf.from_dict(leaf) for leaf in raw_leaves)
    if any(leaf.algorithm != algorithm for leaf in leaves):
        raise FormatError(f"every tensor leaf must have a {algorithm} digest")
    hashes = [leaf.leaf_hash() for leaf in leaves]
    if len(leaves) != count or merkle.root_from_leaf_hashes(hashes) != root:
        raise FormatError("inconsistent manifest: the tensor root is not over the leaves")
    for f in files:
        part = hashes[f.first_leaf : f.first_leaf + f.count]
        if len(part) != f.count or merkle.root_from_leaf_hashes(part) != f.root:
            raise FormatError(f"inconsistent manifest: tensor root of {f.path} is wrong")
    return files, leaves, root, algorithm

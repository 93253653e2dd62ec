"""Per-tensor Merkle leaves of safetensors files.

A leaf is the RFC 8785 canonical JSON of::

    {"type": TENSOR_LEAF_TYPE, "file": <resource path>, "name": <tensor name>,
     "dtype": "F32", "shape": [2, 3], "digest": {"<algorithm>": "<hex of the tensor bytes>"}}

hashed as an RFC 9162 leaf (``SHA-256(0x00 || json)``). Binding the file path makes every
leaf of a model unique; binding dtype and shape means a proof says what the bytes are. The
digest names its algorithm, so a verifier knows how to re-hash the tensor: ``blake3`` by
default (:data:`DEFAULT_TENSOR_ALGORITHM`), ``sha256`` in fingerprints made before 2026-12
(and on request).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import rfc8785

from ailedger import merkle
from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.fingerprint._hashing import Algorithm
from ailedger.fingerprint._safetensors import DTYPE_BITS, SafetensorsHeader, read_header

__all__ = [
    "DEFAULT_TENSOR_ALGORITHM",
    "TENSOR_LEAF_TYPE",
    "TensorFile",
    "TensorLeaf",
    "decode_leaves",
    "encode_leaves",
    "tensor_ranges",
]

TENSOR_LEAF_TYPE = "https://ailedger.dev/model/tensor/v1"
#: The digest of a tensor's bytes in new fingerprints, whatever the file digests.
DEFAULT_TENSOR_ALGORITHM: Algorithm = "blake3"


@dataclass(frozen=True)
class TensorLeaf:
    """One tensor of one safetensors file of a model."""

    file: str
    name: str
    dtype: str
    shape: tuple[int, ...]
    algorithm: str
    digest: bytes

    def encode(self) -> bytes:
        """The canonical bytes this leaf commits to."""
        doc: dict[str, Any] = {
            "type": TENSOR_LEAF_TYPE,
            "file": self.file,
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "digest": {self.algorithm: self.digest.hex()},
        }
        return rfc8785.dumps(doc)

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.encode())

    def with_digest(self, digest: bytes) -> TensorLeaf:
        return replace(self, digest=digest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "digest": {self.algorithm: self.digest.hex()},
        }

    @classmethod
    def from_dict(cls, doc: Any) -> TensorLeaf:
        """Rebuild a leaf from :meth:`to_dict` output; raises ``FormatError``."""
        try:
            (algorithm, hexdigest), *rest = doc["digest"].items()
            shape = tuple(doc["shape"])
            leaf = cls(
                doc["file"], doc["name"], doc["dtype"], shape, algorithm, bytes.fromhex(hexdigest)
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise FormatError("tensor leaf must have file, name, dtype, shape, digest") from None
        if (
            rest
            or not all(isinstance(x, str) for x in (leaf.file, leaf.name, leaf.dtype))
            or leaf.dtype not in DTYPE_BITS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise FormatError("tensor leaf has a malformed field")
        return leaf


@dataclass(frozen=True)
class TensorFile:
    """The tensors of one file: leaves ``first_leaf .. first_leaf+count`` of the model tree,
    and the root of a tree over just those leaves."""

    path: str
    count: int
    first_leaf: int
    root: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "count": self.count,
            "first_leaf": self.first_leaf,
            "root": self.root.hex(),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> TensorFile:
        try:
            path, count, first = doc["path"], doc["count"], doc["first_leaf"]
            root = bytes.fromhex(doc["root"])
        except (KeyError, TypeError, ValueError):
            raise FormatError("tensor file entry needs path, count, first_leaf, root") from None
        ints = (count, first)
        if not isinstance(path, str) or not all(isinstance(i, int) and i >= 0 for i in ints):
            raise FormatError("tensor file entry has a malformed field")
        return cls(path, count, first, root)


def tensor_ranges(path: str, name: str) -> tuple[SafetensorsHeader, tuple[tuple[int, int], ...]]:
    """Parse a safetensors header; the absolute byte range of each tensor in file order."""
    try:
        with open(path, "rb") as f:
            header = read_header(f, name)
    except FileNotFoundError:
        raise NotFound(f"{name} disappeared while being fingerprinted") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {name}: {exc.strerror}") from None
    return header, tuple((t.begin, t.end) for t in header.tensors)


def encode_leaves(leaves: list[TensorLeaf]) -> bytes:
    """Compact cache form of a file's leaves (file order)."""
    rows = [[x.name, x.dtype, list(x.shape), x.digest.hex()] for x in leaves]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_leaves(blob: bytes, file: str, algorithm: str) -> list[TensorLeaf]:
    rows = json.loads(blob)
    return [
        TensorLeaf(file, n, d, tuple(shape), algorithm, bytes.fromhex(h)) for n, d, shape, h in rows
    ]

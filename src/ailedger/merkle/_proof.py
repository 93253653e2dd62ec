"""Verification of RFC 9162 proofs and the JSON documents that carry them.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and raises
:class:`~ailedger.errors.ProofInvalid` on any mismatch; parsing a document raises
:class:`~ailedger.errors.FormatError`. Public names are re-exported by :mod:`ailedger.merkle`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.errors import FormatError, ProofInvalid
from ailedger.merkle._hash import EMPTY_ROOT, HASH_SIZE

_sha256 = hashlib.sha256


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofInvalid(
            f"{what} is {len(value)} bytes, expected {HASH_SIZE}", code="proof-hash-size-invalid"
        )


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that leaf hash ``leaf`` sits at ``index`` of the tree of ``size`` with root
    ``expected_root`` (RFC 9162 2.1.3.2). Returns ``None`` or raises ``ProofInvalid``."""
    _check_hash(leaf, "leaf hash")
    _check_hash(expected_root, "root")
    if not 0 <= index < size:
        raise ProofInvalid(
            f"leaf index {index} is outside a tree of size {size}", code="leaf-index-out-of-range"
        )
    if not set(map(len, proof)) <= {HASH_SIZE}:
        raise ProofInvalid(f"a proof hash is not {HASH_SIZE} bytes", code="proof-hash-size-invalid")
    fn, sn, r = index, size - 1, leaf
    sha = _sha256
    for p in proof:
        if sn == 0:
            raise ProofInvalid(
                "inclusion proof is longer than the tree is deep", code="inclusion-proof-invalid"
            )
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid(
            "inclusion proof is shorter than the tree is deep", code="inclusion-proof-invalid"
        )
    if r != expected_root:
        raise ProofInvalid(
            "inclusion proof does not lead to the expected root", code="inclusion-proof-invalid"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root)
    (RFC 9162 2.1.4.2). Returns ``None`` or raises ``ProofInvalid``."""
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if not 0 <= old_size <= new_size:
        raise ProofInvalid(
            f"old size {old_size} is not within 0..{new_size}", code="consistency-proof-invalid"
        )
    if old_size == new_size:
        if proof:
            raise ProofInvalid(
                "consistency proof between equal sizes must be empty",
                code="consistency-proof-invalid",
            )
        if old_root != new_root:
            raise ProofInvalid(
                "equal tree sizes with different roots", code="consistency-proof-invalid"
            )
        return
    if old_size == 0:
        if proof:
            raise ProofInvalid(
                "consistency proof from the empty tree must be empty",
                code="consistency-proof-invalid",
            )
        if old_root != EMPTY_ROOT:
            raise ProofInvalid(
                "old root of the empty tree is not the empty hash", code="consistency-proof-invalid"
            )
        return
    if not proof:
        raise ProofInvalid("consistency proof is empty", code="consistency-proof-invalid")
    for p in proof:
        _check_hash(p, "proof hash")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    sha = _sha256
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("consistency proof is too long", code="consistency-proof-invalid")
        if fn & 1 or fn == sn:
            fr = sha(b"\x01" + c + fr).digest()
            sr = sha(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid("consistency proof is too short", code="consistency-proof-invalid")
    if fr != old_root:
        raise ProofInvalid(
            "consistency proof does not lead to the old root", code="consistency-proof-invalid"
        )
    if sr != new_root:
        raise ProofInvalid(
            "consistency proof does not lead to the new root", code="consistency-proof-invalid"
        )


# --- Proof documents -------------------------------------------------------------------------

INCLUSION_PROOF_TYPE = "https://ailedger.dev/merkle/inclusion-proof/v1"
CONSISTENCY_PROOF_TYPE = "https://ailedger.dev/merkle/consistency-proof/v1"
#: Names the tree construction: RFC 9162 leaf/node prefixes over SHA-256.
TREE_ALGORITHM = "rfc9162-sha256"


def _hex32(doc: Mapping[str, Any], key: str) -> bytes:
    value = doc.get(key)
    if not isinstance(value, str):
        raise FormatError(f"proof field {key!r} must be a hex string")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise FormatError(f"proof field {key!r} is not valid hex") from None
    if len(raw) != HASH_SIZE:
        raise FormatError(f"proof field {key!r} is {len(raw)} bytes, expected {HASH_SIZE}")
    return raw


def _uint(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"proof field {key!r} must be a non-negative integer")
    return value


def _hash_list(doc: Mapping[str, Any], key: str) -> tuple[bytes, ...]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise FormatError(f"proof field {key!r} must be a list of hex strings")
    return tuple(_hex32({key: v}, key) for v in value)


def _check_header(doc: Mapping[str, Any], expected_type: str) -> None:
    if doc.get("type") != expected_type:
        raise FormatError(f"not a proof of type {expected_type} (type={doc.get('type')!r})")
    if doc.get("algorithm") != TREE_ALGORITHM:
        raise FormatError(f"unsupported tree algorithm {doc.get('algorithm')!r}")


@dataclass(frozen=True)
class InclusionProof:
    """That ``leaf_hash`` is leaf ``leaf_index`` of the tree (``tree_size``, ``root``).

    An RFC 9162 root does not commit to the tree size, and for some sizes the same path also
    fits a larger size: check ``root`` against a tree head that binds size and root (a signed
    checkpoint), not the root alone, when the size matters.
    """

    tree_size: int
    leaf_index: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    root: bytes

    def verify(self, expected_root: bytes | None = None) -> None:
        """Raise ``ProofInvalid`` unless the proof holds (and matches ``expected_root``)."""
        if expected_root is not None and expected_root != self.root:
            raise ProofInvalid(
                f"proof is for root {self.root.hex()}, expected {expected_root.hex()}",
                code="proof-root-mismatch",
            )
        verify_inclusion(self.leaf_hash, self.leaf_index, self.tree_size, self.hashes, self.root)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": INCLUSION_PROOF_TYPE,
            "algorithm": TREE_ALGORITHM,
            "tree_size": self.tree_size,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash.hex(),
            "hashes": [h.hex() for h in self.hashes],
            "root": self.root.hex(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> InclusionProof:
        _check_header(doc, INCLUSION_PROOF_TYPE)
        return cls(
            tree_size=_uint(doc, "tree_size"),
            leaf_index=_uint(doc, "leaf_index"),
            leaf_hash=_hex32(doc, "leaf_hash"),
            hashes=_hash_list(doc, "hashes"),
            root=_hex32(doc, "root"),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """That the tree (``old_size``, ``old_root``) is a prefix of (``new_size``, ``new_root``)."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def verify(self) -> None:
        verify_consistency(self.old_size, self.new_size, self.old_root, self.new_root, self.hashes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": CONSISTENCY_PROOF_TYPE,
            "algorithm": TREE_ALGORITHM,
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ConsistencyProof:
        _check_header(doc, CONSISTENCY_PROOF_TYPE)
        return cls(
            old_size=_uint(doc, "old_size"),
            new_size=_uint(doc, "new_size"),
            old_root=_hex32(doc, "old_root"),
            new_root=_hex32(doc, "new_root"),
            hashes=_hash_list(doc, "hashes"),
        )

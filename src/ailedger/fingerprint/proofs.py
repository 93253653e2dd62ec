"""Proof documents: a record is (or is not) in a fingerprinted dataset; a tensor is in a model.

:func:`load_proof` reads, and :func:`verify_proof` checks, every proof document ailedger
writes: the dataset proofs below, tensor proofs (:class:`TensorProof`, made by
:func:`prove_tensor`; see :mod:`ailedger.fingerprint._tensor_proof`) and plain Merkle inclusion and
consistency proofs.

A membership proof carries the record (or only its name, see below), its salt, the dataset's
leaf encoding and salt scheme, and an RFC 9162 :class:`~ailedger.merkle.InclusionProof`. A
verifier rebuilds ``leaf = SHA-256(0x00 || salt || record)`` and walks the inclusion proof to
the root. With ``include_record=False`` the record is left out (never replaced by a digest,
which an unsalted hash would expose to guessing); whoever holds the record checks it with
``verify_proof(..., record=...)``.

A non-membership proof (datasets fingerprinted in sorted order) carries the absent record's
leaf hash and inclusion proofs of the two adjacent leaves that bracket it: ``left < leaf <
right`` with ``right.index == left.index + 1``; at the edges only ``right`` at index 0 or only
``left`` at the last index. Sorted order is the fingerprinter's claim, checkable by anyone who
can recompute the dataset. Under ``salted-blake3-record-v1`` a verifier cannot check that the
disclosed salt was derived from the dataset secret; see :mod:`ailedger.fingerprint._leaves`.

The bracketing leaves are stated hashes, not records, and an RFC 9162 root does not fix the
tree's size: a proof claiming a smaller size can name an interior node as a leaf (leaves a, b,
c, d: at size 3 the node H(c, d) is "leaf 2" of the same root) and so "prove" a present record
absent. Checking a non-membership proof against a trusted root therefore needs the trusted size
too (``expected_size``, from the same source: the dataset statement records both); a root
without a size is refused (``proof-size-unpinned``). Membership proofs rebuild their leaf from
the record (0x00 prefix), so no interior node can pass for it; pinning their size also pins the
leaf index.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ailedger import merkle
from ailedger.errors import FormatError, InvalidInput, ProofInvalid
from ailedger.fingerprint._formats import CSV_ROW, ENCODINGS, FILE_ENTRY, encode_record_file
from ailedger.fingerprint._leaves import (
    SALT_SCHEMES,
    SALT_SIZE,
    SALTED_BY_INDEX,
    UNSALTED,
    leaf_entry,
)
from ailedger.fingerprint._proof_fields import check_type as _check_type
from ailedger.fingerprint._proof_fields import hex_bytes as _hex
from ailedger.fingerprint._proof_fields import inclusion as _inclusion
from ailedger.fingerprint._proof_fields import mapping as _mapping
from ailedger.fingerprint._proof_fields import only_keys as _only_keys
from ailedger.fingerprint._proof_fields import strict_hex_fields as _strict_hex_fields
from ailedger.fingerprint._proof_fields import string as _str
from ailedger.fingerprint._proof_fields import uint as _uint
from ailedger.fingerprint._tensor_proof import (
    TENSOR_PROOF_TYPE,
    ModelRef,
    TensorProof,
    prove_tensor,
)
from ailedger.merkle import ConsistencyProof, InclusionProof

__all__ = [
    "MEMBERSHIP_PROOF_TYPE",
    "NON_MEMBERSHIP_PROOF_TYPE",
    "TENSOR_PROOF_TYPE",
    "AnyProof",
    "DatasetRef",
    "MembershipProof",
    "ModelRef",
    "NonMembershipProof",
    "ProofCheck",
    "TensorProof",
    "load_proof",
    "prove_tensor",
    "verify_proof",
]

MEMBERSHIP_PROOF_TYPE = "https://ailedger.dev/dataset/membership-proof/v1"
NON_MEMBERSHIP_PROOF_TYPE = "https://ailedger.dev/dataset/non-membership-proof/v1"


@dataclass(frozen=True)
class DatasetRef:
    """The fingerprint a proof refers to: root, size and how leaves are built."""

    root: bytes
    size: int
    format: str
    leaf_encoding: str
    scheme: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root.hex(),
            "size": self.size,
            "format": self.format,
            "leaf_encoding": self.leaf_encoding,
            "scheme": self.scheme,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> DatasetRef:
        d = _mapping(doc, "dataset")
        return cls(
            root=_hex(d, "root", merkle.HASH_SIZE),
            size=_uint(d, "size"),
            format=_str(d, "format"),
            leaf_encoding=_str(d, "leaf_encoding"),
            scheme=_str(d, "scheme"),
        )

    def check(self) -> None:
        if self.leaf_encoding not in ENCODINGS.get(self.format, ()):
            raise ProofInvalid(
                f"leaf encoding {self.leaf_encoding!r} is not one of {self.format}",
                code="proof-format-invalid",
            )
        if self.scheme not in SALT_SCHEMES:
            raise ProofInvalid(f"unknown salt scheme {self.scheme!r}", code="proof-format-invalid")


@dataclass(frozen=True)
class ProofCheck:
    """What a successful verification established."""

    kind: str
    root: bytes
    size: int
    #: The record itself was rebuilt into the leaf (False: only the leaf hash was checked).
    record_checked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": True,
            "kind": self.kind,
            "root": self.root.hex(),
            "size": self.size,
            "record_checked": self.record_checked,
        }


@dataclass(frozen=True)
class MembershipProof:
    """Record ``record`` (salted with ``salt``) is leaf ``inclusion.leaf_index``."""

    dataset: DatasetRef
    record: bytes | None
    salt: bytes | None
    inclusion: InclusionProof
    #: Directory datasets only: the file's relative path (kept when the record is left out).
    record_path: str | None = None

    def verify(
        self,
        expected_root: bytes | None = None,
        record: bytes | None = None,
        *,
        expected_size: int | None = None,
    ) -> ProofCheck:
        """Raise ``ProofInvalid`` unless the proof holds; ``record`` is a record file's bytes.
        ``expected_size`` (optional here) also pins the tree size, and with it the leaf index."""
        ds = self.dataset
        ds.check()
        _check_size(ds.size, expected_size)
        _check_tree(ds, self.inclusion, expected_root)
        salt = _salt(ds, self.salt)
        encoded = _record_to_check(
            self.record, record, ds.leaf_encoding, self.record_path, self.inclusion.leaf_hash, salt
        )
        if encoded is not None:
            leaf = merkle.leaf_hash(leaf_entry(encoded, salt))
            if leaf != self.inclusion.leaf_hash:
                raise ProofInvalid(
                    "the record and salt do not hash to the proven leaf",
                    code="record-leaf-mismatch",
                )
        self.inclusion.verify(ds.root)
        return ProofCheck("dataset-membership", ds.root, ds.size, encoded is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": MEMBERSHIP_PROOF_TYPE,
            "dataset": self.dataset.to_dict(),
            "record": _record_doc(self.dataset, self.record, self.record_path),
            "salt": None if self.salt is None else self.salt.hex(),
            "inclusion": self.inclusion.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MembershipProof:
        _check_type(doc, MEMBERSHIP_PROOF_TYPE)
        _only_keys(doc, {"type", "dataset", "record", "salt", "inclusion"})
        ds = DatasetRef.from_dict(doc.get("dataset"))
        record, path = _record_from_doc(ds, doc.get("record"))
        return cls(ds, record, _opt_hex(doc, "salt"), _inclusion(doc.get("inclusion")), path)


@dataclass(frozen=True)
class NonMembershipProof:
    """The leaf of ``record`` lies strictly between two adjacent leaves of a sorted tree."""

    dataset: DatasetRef
    record: bytes | None
    salt: bytes | None
    leaf_hash: bytes
    left: InclusionProof | None
    right: InclusionProof | None
    record_path: str | None = None

    def verify(
        self,
        expected_root: bytes | None = None,
        record: bytes | None = None,
        *,
        expected_size: int | None = None,
    ) -> ProofCheck:
        """Raise ``ProofInvalid`` unless the bracket holds; ``record`` is a record file's bytes.

        ``expected_root`` and ``expected_size`` are the trusted root and size; without a root
        the proof is checked against the root it carries, which shows only that it is well
        formed. A root without a size is refused: see the module docstring."""
        ds = self.dataset
        ds.check()
        if expected_root is not None and expected_size is None:
            raise ProofInvalid(
                "a non-membership proof needs the trusted tree size as well as the trusted root "
                "(a root does not fix the size; pass it from the same source)",
                code="proof-size-unpinned",
            )
        _check_size(ds.size, expected_size)
        if ds.scheme == SALTED_BY_INDEX:
            raise ProofInvalid(
                f"{ds.scheme} salts by position: no non-membership proof exists",
                code="non-membership-unsupported",
            )
        if expected_root is not None and expected_root != ds.root:
            raise ProofInvalid(
                f"proof is for root {ds.root.hex()}, expected {expected_root.hex()}",
                code="proof-root-mismatch",
            )
        salt = _salt(ds, self.salt)
        encoded = _record_to_check(
            self.record, record, ds.leaf_encoding, self.record_path, self.leaf_hash, salt
        )
        if encoded is not None:
            leaf = merkle.leaf_hash(leaf_entry(encoded, salt))
            if leaf != self.leaf_hash:
                raise ProofInvalid(
                    "the record and salt do not hash to the stated leaf hash",
                    code="record-leaf-mismatch",
                )
        for side in (self.left, self.right):
            if side is not None:
                _check_tree(ds, side, expected_root)
                side.verify(ds.root)
        left, right, h = self.left, self.right, self.leaf_hash
        if left is None and right is None:
            if ds.size != 0 or ds.root != merkle.EMPTY_ROOT:
                raise ProofInvalid(
                    "a non-empty dataset needs a bracketing leaf",
                    code="non-membership-proof-invalid",
                )
        elif left is None:
            assert right is not None
            if right.leaf_index != 0 or not h < right.leaf_hash:
                raise ProofInvalid(
                    "the record is not below the first leaf", code="non-membership-proof-invalid"
                )
        elif right is None:
            if left.leaf_index != ds.size - 1 or not left.leaf_hash < h:
                raise ProofInvalid(
                    "the record is not above the last leaf", code="non-membership-proof-invalid"
                )
        else:
            if right.leaf_index != left.leaf_index + 1:
                raise ProofInvalid(
                    "the bracketing leaves are not adjacent", code="non-membership-proof-invalid"
                )
            if not left.leaf_hash < h < right.leaf_hash:
                raise ProofInvalid(
                    "the record's leaf hash is not between the bracketing leaves",
                    code="non-membership-proof-invalid",
                )
        return ProofCheck("dataset-non-membership", ds.root, ds.size, encoded is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": NON_MEMBERSHIP_PROOF_TYPE,
            "dataset": self.dataset.to_dict(),
            "record": _record_doc(self.dataset, self.record, self.record_path),
            "salt": None if self.salt is None else self.salt.hex(),
            "leaf_hash": self.leaf_hash.hex(),
            "left": None if self.left is None else self.left.to_dict(),
            "right": None if self.right is None else self.right.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NonMembershipProof:
        _check_type(doc, NON_MEMBERSHIP_PROOF_TYPE)
        _only_keys(doc, {"type", "dataset", "record", "salt", "leaf_hash", "left", "right"})
        ds = DatasetRef.from_dict(doc.get("dataset"))
        record, path = _record_from_doc(ds, doc.get("record"))
        left, right = doc.get("left"), doc.get("right")
        return cls(
            dataset=ds,
            record=record,
            salt=_opt_hex(doc, "salt"),
            leaf_hash=_hex(doc, "leaf_hash", merkle.HASH_SIZE),
            left=None if left is None else _inclusion(left),
            right=None if right is None else _inclusion(right),
            record_path=path,
        )


#: Every proof document :func:`load_proof` reads.
AnyProof = MembershipProof | NonMembershipProof | TensorProof | InclusionProof | ConsistencyProof


def load_proof(doc: Any) -> AnyProof:
    """Parse any proof document ailedger writes; ``FormatError`` if it is none of them."""
    if not isinstance(doc, Mapping):
        raise FormatError("a proof document must be a JSON object")
    kind = doc.get("type")
    if kind == MEMBERSHIP_PROOF_TYPE:
        return MembershipProof.from_dict(doc)
    if kind == NON_MEMBERSHIP_PROOF_TYPE:
        return NonMembershipProof.from_dict(doc)
    if kind == TENSOR_PROOF_TYPE:
        return TensorProof.from_dict(doc)
    if kind == merkle.INCLUSION_PROOF_TYPE:
        return _inclusion(doc)
    if kind == merkle.CONSISTENCY_PROOF_TYPE:
        _strict_hex_fields(doc, ("old_root", "new_root"), "hashes")
        return ConsistencyProof.from_dict(doc)
    raise FormatError(f"unknown proof type {kind!r}")


def verify_proof(
    proof: AnyProof,
    *,
    expected_root: bytes | None = None,
    record: bytes | None = None,
    model: str | os.PathLike[str] | None = None,
    expected_subject: bytes | None = None,
    expected_size: int | None = None,
) -> ProofCheck:
    """Verify any proof; ``expected_root`` pins the (new or tensor) root and ``expected_size``
    the (new) tree size, ``record`` is a record file's bytes (for a plain inclusion proof: the
    raw entry; for a tensor proof: the tensor's raw bytes). Tensor proofs only: ``model`` is a
    model on disk to re-hash the tensor from, ``expected_subject`` pins the model's subject
    digest. Raises ``ProofInvalid``.

    A proof whose leaf is a stated hash rather than rebuilt from a record (a non-membership
    proof; a plain inclusion proof without ``record``) checked against ``expected_root`` needs
    ``expected_size`` too, or is refused (``proof-size-unpinned``): see the module docstring."""
    if (model is not None or expected_subject is not None) and not isinstance(proof, TensorProof):
        raise InvalidInput("a model path or subject digest applies to tensor proofs only")
    if isinstance(proof, TensorProof):
        _check_size(proof.inclusion.tree_size, expected_size)
        checked = proof.verify(
            expected_root, expected_subject=expected_subject, tensor_data=record, model_path=model
        )
        inc = proof.inclusion
        return ProofCheck("model-tensor", inc.root, inc.tree_size, checked)
    if isinstance(proof, MembershipProof | NonMembershipProof):
        return proof.verify(expected_root, record, expected_size=expected_size)
    if isinstance(proof, InclusionProof):
        if record is not None and merkle.leaf_hash(record) != proof.leaf_hash:
            raise ProofInvalid(
                "the record does not hash to the proven leaf", code="record-leaf-mismatch"
            )
        if record is None and expected_root is not None and expected_size is None:
            raise ProofInvalid(
                "an inclusion proof of a stated leaf hash needs the trusted tree size as well as "
                "the trusted root (or the entry itself, to rebuild the leaf)",
                code="proof-size-unpinned",
            )
        _check_size(proof.tree_size, expected_size)
        proof.verify(expected_root)
        return ProofCheck("inclusion", proof.root, proof.tree_size, record is not None)
    _check_size(proof.new_size, expected_size)
    if record is not None:
        raise ProofInvalid("a consistency proof has no record to check", code="proof-kind-mismatch")
    if expected_root is not None and expected_root != proof.new_root:
        raise ProofInvalid(
            f"proof is for root {proof.new_root.hex()}, expected {expected_root.hex()}",
            code="proof-root-mismatch",
        )
    proof.verify()
    return ProofCheck("consistency", proof.new_root, proof.new_size, False)


# --- Helpers -----------------------------------------------------------------------------------


def _check_size(size: int, expected_size: int | None) -> None:
    if expected_size is not None and size != expected_size:
        raise ProofInvalid(
            f"proof is for a tree of size {size}, expected {expected_size}",
            code="proof-tree-mismatch",
        )


def _check_tree(ds: DatasetRef, inc: InclusionProof, expected_root: bytes | None) -> None:
    if inc.root != ds.root or inc.tree_size != ds.size:
        raise ProofInvalid(
            "the inclusion proof is for another tree than the dataset", code="proof-tree-mismatch"
        )
    if expected_root is not None and expected_root != ds.root:
        raise ProofInvalid(
            f"proof is for root {ds.root.hex()}, expected {expected_root.hex()}",
            code="proof-root-mismatch",
        )


def _salt(ds: DatasetRef, salt: bytes | None) -> bytes | None:
    if ds.scheme == UNSALTED:
        if salt is not None:
            raise ProofInvalid(
                "an unsalted dataset proof carries a salt", code="proof-salt-invalid"
            )
        return None
    if salt is None or len(salt) != SALT_SIZE:
        raise ProofInvalid(f"{ds.scheme} needs a {SALT_SIZE}-byte salt", code="proof-salt-invalid")
    return salt


def _record_to_check(
    carried: bytes | None,
    given: bytes | None,
    leaf_encoding: str,
    path: str | None,
    leaf_hash: bytes,
    salt: bytes | None,
) -> bytes | None:
    """The encoded record to check against the leaf: the one the proof carries, or the one
    ``given`` as a file. A CSV record file is read with a comma and, for a TSV dataset, with a
    tab (a proof does not name the delimiter): the reading that hashes to the leaf is used."""
    if given is None:
        return carried
    delimiters: tuple[str | None, ...] = (",", "\t") if leaf_encoding == CSV_ROW else (None,)
    readings: list[bytes] = []
    problem: str | None = None
    for delimiter in delimiters:
        try:
            readings.append(
                encode_record_file(given, leaf_encoding, relpath=path, delimiter=delimiter)
            )
        except InvalidInput as exc:
            problem = problem or str(exc)
    if not readings:
        raise ProofInvalid(
            f"the record file does not parse: {problem}", code="record-unreadable"
        ) from None
    if carried is not None:
        if carried not in readings:
            raise ProofInvalid(
                "the record file does not match the record in the proof", code="record-mismatch"
            )
        return carried
    for reading in readings:
        if merkle.leaf_hash(leaf_entry(reading, salt)) == leaf_hash:
            return reading
    return readings[0]


def _record_doc(ds: DatasetRef, record: bytes | None, path: str | None) -> Any:
    if ds.leaf_encoding == FILE_ENTRY:
        out: dict[str, str | None] = {"path": path}
        if record is not None:
            out["sha256"] = record[: merkle.HASH_SIZE].hex()
        return out
    return None if record is None else {"text": record.decode("utf-8")}


def _record_from_doc(ds: DatasetRef, value: Any) -> tuple[bytes | None, str | None]:
    if ds.leaf_encoding == FILE_ENTRY:
        d = _mapping(value, "record")
        path = _str(d, "path")
        if "sha256" not in d:
            return None, path
        return _hex(d, "sha256", merkle.HASH_SIZE) + path.encode("utf-8"), path
    if value is None:
        return None, None
    return _str(_mapping(value, "record"), "text").encode("utf-8"), None


def _opt_hex(d: Mapping[str, Any], key: str) -> bytes | None:
    return None if d.get(key) is None else _hex(d, key, SALT_SIZE)

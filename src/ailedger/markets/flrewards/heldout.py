"""The held-out set, fixed before training, and kept out of every client's training data.

Both the held-out set and each client's declared training data are sorted, salted record
trees: records are JSON values encoded as RFC 8785 canonical JSON, salted by record under a
secret (``salted-blake3-record-v1``), ordered by leaf hash: exactly the tree
``fingerprint_dataset(path, secret=..., sort_leaves=True, canonical_json=True)`` computes for
the same records written as JSONL (the tests check it), so the root is a dataset fingerprint
and its proofs are the documents ``ailedger verify proof`` checks.

1. Pre-registration. The sponsor builds :class:`RecordTree` over the held-out set and creates
   the FLRewards task with its root; the contract records the root with the creation block
   and refuses scores computed against any other. :func:`verify_preregistered` reads the task
   back and checks, for a verifier holding the held-out set (or its root), that the registered
   root is that set's and that the task's creation block precedes round 1's record.
2. Disjointness. Each client commits its declared training data when it joins:
   :attr:`RecordTree.commitment`, which binds the tree's root *and size* (an RFC 9162 root
   alone does not commit to the size, and a proof that names a smaller size can pass an
   interior node off as a leaf and bracket a record the tree holds; the tests show one). For
   every held-out record the client proves, with its own tree, that the record is absent
   (:meth:`RecordTree.prove_absent`; a record it holds cannot be proven absent);
   :func:`verify_disjoint` checks one proof per held-out record against the commitment read
   from the chain.

A record-salted tree's salts derive from its owner's secret, which a verifier cannot check
without it: a client could salt an absent-looking leaf with another salt. So
:func:`verify_disjoint` rebuilds each salt from the client's secret (given to an auditor), and
without it refuses unless the caller says ``unsafe_unchecked_salts=True`` (the result then
says the salts were not checked).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rfc8785

from ailedger import merkle
from ailedger.errors import ConflictError, InvalidInput, VerificationFailed
from ailedger.fingerprint._formats import JSONL_JCS
from ailedger.fingerprint._leaves import SALTED_BY_RECORD, derive_key, leaf_entry, record_salt
from ailedger.fingerprint.proofs import DatasetRef, MembershipProof, NonMembershipProof

if TYPE_CHECKING:
    from ailedger.chain.fl_rewards import FLRewards

__all__ = [
    "DATA_COMMITMENT_CONTEXT",
    "DisjointCheck",
    "PreRegistration",
    "RecordTree",
    "data_commitment",
    "encode_record",
    "verify_disjoint",
    "verify_preregistered",
]


#: Domain separation of :func:`data_commitment`.
DATA_COMMITMENT_CONTEXT = b"ailedger fl training data v1\x00"


def data_commitment(root: bytes, size: int) -> bytes:
    """What a client commits on joining: ``sha256(context || root || size as 8 bytes)``."""
    if len(root) != 32 or isinstance(size, bool) or not 0 < size < 2**64:
        raise InvalidInput("a data commitment takes a 32-byte root and a size in 1..2^64-1")
    return hashlib.sha256(DATA_COMMITMENT_CONTEXT + root + size.to_bytes(8, "big")).digest()


def encode_record(value: Any) -> bytes:
    """A record (any JSON value) as RFC 8785 canonical JSON, the leaf encoding of the trees.
    NaN and infinities have no JSON form and are refused."""

    def finite(v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidInput("a record holds a NaN or infinite number")
        if isinstance(v, dict):
            for x in v.values():
                finite(x)
        elif isinstance(v, list | tuple):
            for x in v:
                finite(x)

    finite(value)
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"a record is not canonical JSON: {exc}") from None


class RecordTree:
    """A sorted, record-salted tree over JSON records (see the module docstring)."""

    def __init__(self, records: Iterable[Any], secret: bytes) -> None:
        self._key = derive_key(secret, SALTED_BY_RECORD)
        encoded = [encode_record(r) for r in records]
        if not encoded:
            raise InvalidInput("a record tree needs at least one record")
        pairs = sorted((self._leaf(e), e) for e in encoded)
        self._leaves = [h for h, _ in pairs]
        self._records = [e for _, e in pairs]
        self.root = merkle.root_from_leaf_hashes(self._leaves)
        self.size = len(self._leaves)

    def _salt(self, encoded: bytes) -> bytes:
        return record_salt(self._key, encoded)

    def _leaf(self, encoded: bytes) -> bytes:
        return merkle.leaf_hash(leaf_entry(encoded, self._salt(encoded)))

    @property
    def commitment(self) -> bytes:
        """The commitment a client sends to ``join`` (root and size, :func:`data_commitment`)."""
        return data_commitment(self.root, self.size)

    @property
    def ref(self) -> DatasetRef:
        """The dataset this tree fingerprints, as proofs name it."""
        return DatasetRef(self.root, self.size, "jsonl", JSONL_JCS, SALTED_BY_RECORD)

    @property
    def records(self) -> list[bytes]:
        """The encoded records in tree order."""
        return list(self._records)

    def _inclusion(self, i: int) -> merkle.InclusionProof:
        return merkle.InclusionProof(
            leaf_index=i,
            tree_size=self.size,
            leaf_hash=self._leaves[i],
            hashes=tuple(merkle.inclusion_proof_from_leaf_hashes(self._leaves, i)),
            root=self.root,
        )

    def prove_present(self, record: Any) -> MembershipProof:
        encoded = encode_record(record)
        leaf = self._leaf(encoded)
        i = bisect.bisect_left(self._leaves, leaf)
        if i == self.size or self._leaves[i] != leaf:
            raise InvalidInput("the record is not in the tree")
        return MembershipProof(self.ref, encoded, self._salt(encoded), self._inclusion(i))

    def prove_absent(self, record: Any) -> NonMembershipProof:
        """The proof that ``record`` is not in the tree; ``ConflictError`` if it is."""
        encoded = encode_record(record)
        leaf = self._leaf(encoded)
        i = bisect.bisect_left(self._leaves, leaf)
        if i < self.size and self._leaves[i] == leaf:
            raise ConflictError("the record is in the tree: it cannot be proven absent")
        left = self._inclusion(i - 1) if i > 0 else None
        right = self._inclusion(i) if i < self.size else None
        return NonMembershipProof(self.ref, encoded, self._salt(encoded), leaf, left, right)


@dataclass(frozen=True)
class PreRegistration:
    """What :func:`verify_preregistered` established."""

    task_id: bytes
    heldout_root: bytes
    created_block: int
    round_one_block: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id.hex(),
            "heldout_root": self.heldout_root.hex(),
            "created_block": self.created_block,
            "round_one_block": self.round_one_block,
            "fixed_before_training": True,
        }


def verify_preregistered(
    rewards: FLRewards, task_id: bytes, heldout_root: bytes
) -> PreRegistration:
    """Check on-chain that task ``task_id`` registered ``heldout_root`` (the root a verifier
    recomputed from its copy of the held-out set) and that its creation block precedes round
    1's record. A task with no round yet has nothing to show: that is refused too."""
    task = rewards.task(task_id)
    if task.terms.heldout_root != heldout_root:
        raise VerificationFailed(
            f"the task registered held-out root {task.terms.heldout_root.hex()}, "
            f"not {heldout_root.hex()}",
            code="proof-root-mismatch",
        )
    if task.last_round < 1:
        raise VerificationFailed(
            "the task has no round yet: nothing shows the set was fixed before training",
            code="heldout-not-preregistered",
        )
    first = rewards.round(task_id, 1)
    if not task.created_block < first.posted_block:
        raise VerificationFailed(
            f"round 1 (block {first.posted_block}) is not after the task's creation "
            f"(block {task.created_block})",
            code="heldout-not-preregistered",
        )
    return PreRegistration(task_id, heldout_root, task.created_block, first.posted_block)


@dataclass(frozen=True)
class DisjointCheck:
    """What :func:`verify_disjoint` established: none of ``records`` held-out records is in
    the training data committed as ``commitment`` (tree ``data_root`` of ``data_size``)."""

    commitment: bytes
    data_root: bytes
    data_size: int
    records: int
    salts_checked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "commitment": self.commitment.hex(),
            "data_root": self.data_root.hex(),
            "data_size": self.data_size,
            "records": self.records,
            "salts_checked": self.salts_checked,
            "disjoint": True,
        }


def verify_disjoint(
    proofs: Sequence[NonMembershipProof],
    heldout: Iterable[Any],
    commitment: bytes,
    *,
    client_secret: bytes | None = None,
    unsafe_unchecked_salts: bool = False,
) -> DisjointCheck:
    """Check that no record of ``heldout`` is in the client's training data committed as
    ``commitment`` (read it from the chain: ``FLRewards.client(task, addr).data_root``): every
    held-out record needs a valid non-membership proof in the tree whose root and size that
    commitment binds. With ``client_secret`` each salt is rebuilt from it; without it the call
    is refused unless ``unsafe_unchecked_salts`` (see the module docstring)."""
    if client_secret is None and not unsafe_unchecked_salts:
        raise InvalidInput(
            "the client's secret is needed to check its salts "
            "(or pass unsafe_unchecked_salts=True and accept the client's word for them)"
        )
    key = None if client_secret is None else derive_key(client_secret, SALTED_BY_RECORD)
    wanted = {encode_record(r) for r in heldout}
    if not wanted:
        raise InvalidInput("the held-out set is empty: nothing to check")
    trees = {(p.dataset.root, p.dataset.size) for p in proofs}
    if len(trees) > 1 or (trees and data_commitment(*next(iter(trees))) != commitment):
        raise VerificationFailed(
            "the proofs are not all for the tree (root and size) the client committed",
            code="proof-tree-mismatch",
        )
    by_record: dict[bytes, NonMembershipProof] = {}
    for p in proofs:
        if p.record is None:
            raise VerificationFailed(
                "a non-membership proof leaves its record out", code="heldout-overlap-unproven"
            )
        by_record[p.record] = p
    for record in wanted:
        found = by_record.get(record)
        if found is None:
            raise VerificationFailed(
                "a held-out record has no non-membership proof", code="heldout-overlap-unproven"
            )
        p = found
        if p.dataset.scheme != SALTED_BY_RECORD or p.dataset.leaf_encoding != JSONL_JCS:
            raise VerificationFailed(
                "a proof is not over a sorted, record-salted JSON tree",
                code="non-membership-unsupported",
            )
        if key is not None and p.salt != record_salt(key, record):
            raise VerificationFailed(
                "a proof's salt is not derived from the client's secret", code="proof-salt-invalid"
            )
        p.verify(p.dataset.root, expected_size=p.dataset.size)
    root, size = next(iter(trees))
    return DisjointCheck(commitment, root, size, len(wanted), key is not None)

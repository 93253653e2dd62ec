"""RFC 9162 (RFC 6962) Merkle trees over SHA-256.

``leaf = SHA-256(0x00 || entry)``, ``node = SHA-256(0x01 || left || right)``; the tree over
``n`` entries splits at the largest power of two below ``n``.

Two ways in:

- list functions (``root``, ``inclusion_proof``, ``consistency_proof`` and their
  ``*_from_leaf_hashes`` forms) take the raw entries D[n] or their leaf hashes and follow the
  RFC's definitions directly: O(n) per call, for one-off proofs over a list in hand;
- :class:`MerkleTree` grows by appends (or a fast bulk build), keeps its complete subtrees in a
  compact :class:`NodeStore`, and serves roots and proofs for any past size in O(log n).

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and raises
:class:`~ailedger.errors.ProofInvalid` on any mismatch. :class:`InclusionProof` and
:class:`ConsistencyProof` are the JSON documents (``to_dict`` / ``from_dict``) a third party
checks with ``ailedger verify proof``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ailedger.errors import InvalidInput
from ailedger.merkle._hash import (
    EMPTY_ROOT,
    HASH_SIZE,
    hash_entries,
    hash_pairs,
    leaf_hash,
    node_hash,
    root_of_leaf_hashes,
    split_point,
)
from ailedger.merkle._proof import (
    CONSISTENCY_PROOF_TYPE,
    INCLUSION_PROOF_TYPE,
    TREE_ALGORITHM,
    ConsistencyProof,
    InclusionProof,
    verify_consistency,
    verify_inclusion,
)
from ailedger.merkle._tree import MemoryNodeStore, MerkleTree, NodeStore

__all__ = [
    "CONSISTENCY_PROOF_TYPE",
    "EMPTY_ROOT",
    "HASH_ALGORITHM",
    "HASH_SIZE",
    "INCLUSION_PROOF_TYPE",
    "TREE_ALGORITHM",
    "ConsistencyProof",
    "InclusionProof",
    "MemoryNodeStore",
    "MerkleTree",
    "NodeStore",
    "consistency_proof",
    "consistency_proof_from_leaf_hashes",
    "inclusion_proof",
    "inclusion_proof_from_leaf_hashes",
    "leaf_hash",
    "leaf_hashes",
    "node_hash",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_ALGORITHM = "sha256"


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """Leaf hashes of many entries (a tight loop; no per-entry function call)."""
    return hash_entries(entries if isinstance(entries, Sequence) else list(entries))


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes. Pairing neighbours level by level and promoting a lone last node
    gives the same tree as RFC 9162's split at the largest power of two."""
    return root_of_leaf_hashes(hashes)


def root(entries: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of the raw entries."""
    return root_of_leaf_hashes(leaf_hashes(entries))


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    out = hash_pairs(level)
    if len(level) & 1:
        out.append(level[-1])
    return out


def inclusion_proof_from_leaf_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) as a list of sibling hashes, leaf level first."""
    n = len(hashes)
    if not 0 <= index < n:
        raise InvalidInput(f"leaf index {index} is outside a tree of size {n}")
    path: list[bytes] = []
    level: Sequence[bytes] = hashes
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _next_level(level)
        i >>= 1
    return path


def inclusion_proof(entries: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) for the raw entries."""
    return inclusion_proof_from_leaf_hashes(leaf_hashes(entries), index)


def _subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    # RFC 9162 section 2.1.4.1, SUBPROOF(m, D[n], b).
    n = len(hashes)
    if m == n:
        return [] if complete else [root_of_leaf_hashes(hashes)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete), root_of_leaf_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), root_of_leaf_hashes(hashes[:k])]


def consistency_proof_from_leaf_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]): shows the tree of ``old_size`` is a prefix of this one."""
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise InvalidInput(f"old size {old_size} is outside 0..{n}")
    if old_size in (0, n):
        return []
    return _subproof(old_size, hashes, True)


def consistency_proof(entries: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) for the raw entries."""
    return consistency_proof_from_leaf_hashes(leaf_hashes(entries), old_size)

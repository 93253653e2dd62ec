"""MerkleTree: RFC vectors, agreement with the list functions, stores, bulk builds, bad input."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.errors import IntegrityError, InvalidInput, NotFound
from ailedger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    MemoryNodeStore,
    MerkleTree,
    NodeStore,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    leaf_hashes,
    root,
)

from .test_merkle import CONSISTENCY_VECTORS, INCLUSION_VECTORS, LEAVES, ROOTS


class DictNodeStore(NodeStore):
    """A row-per-node store, as a database table would be, counting its batches."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, int], bytes] = {}
        self._size = 0
        self.writes: list[int] = []  # nodes per write batch
        self.reads: list[int] = []  # keys per get_many

    @property
    def size(self) -> int:
        return self._size

    def get_many(self, keys: Sequence[tuple[int, int]]) -> list[bytes]:
        self.reads.append(len(keys))
        try:
            return [self.rows[key] for key in keys]
        except KeyError as exc:
            raise NotFound(f"no node {exc}") from None

    def write(self, size: int, runs: Sequence[tuple[int, int, bytes]]) -> None:
        nodes = list(self.iter_nodes(runs))
        self.writes.append(len(nodes))
        for level, index, value in nodes:
            self.rows[level, index] = value
        self._size = size


def _check_against_lists(tree: MerkleTree, entries: list[bytes], sizes: Sequence[int]) -> None:
    assert tree.size == len(tree) == len(entries)
    assert tree.root() == root(entries)
    for size in sizes:
        assert tree.root_at(size) == root(entries[:size])
        for index in {0, size // 2, size - 1} if size else set():
            proof = tree.inclusion_proof(index, size)
            assert proof.hashes == tuple(inclusion_proof(entries[:size], index))
            assert proof.leaf_hash == leaf_hash(entries[index])
            assert proof.root == root(entries[:size])
            proof.verify(root(entries[:size]))
        cproof = tree.consistency_proof(size)
        assert cproof.hashes == tuple(consistency_proof(entries, size))
        assert (cproof.old_root, cproof.new_root) == (root(entries[:size]), root(entries))
        cproof.verify()


# --- RFC vectors --------------------------------------------------------------------------------


@pytest.fixture
def ct_tree() -> MerkleTree:
    tree = MerkleTree()
    for entry in LEAVES:
        tree.append(entry)
    return tree


def test_tree_heads_match_rfc_vectors(ct_tree: MerkleTree) -> None:
    assert [ct_tree.root_at(size) for size in range(9)] == ROOTS
    assert ct_tree.root() == ROOTS[8]
    assert MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_paths_match_rfc_vectors(
    ct_tree: MerkleTree, index: int, size: int, path: list[bytes]
) -> None:
    proof = ct_tree.inclusion_proof(index, size)
    assert proof == InclusionProof(size, index, leaf_hash(LEAVES[index]), tuple(path), ROOTS[size])
    proof.verify(ROOTS[size])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_consistency_paths_match_rfc_vectors(
    ct_tree: MerkleTree, old: int, new: int, path: list[bytes]
) -> None:
    proof = ct_tree.consistency_proof(old, new)
    assert proof == ConsistencyProof(old, new, ROOTS[old], ROOTS[new], tuple(path))
    proof.verify()


# --- agreement with the list functions ---------------------------------------------------------

entry_lists = st.lists(st.binary(max_size=8), max_size=70)


@given(entry_lists, st.data())
def test_appended_tree_agrees_with_list_functions(
    entries: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree()
    for entry in entries:
        tree.append(entry)
    sizes = data.draw(st.lists(st.integers(0, len(entries)), max_size=4))
    _check_against_lists(tree, entries, sizes)


@given(st.lists(st.tuples(st.sampled_from(["one", "many", "leaf", "leaves"]), entry_lists)))
def test_random_append_sequences_agree_with_list_functions(
    steps: list[tuple[str, list[bytes]]],
) -> None:
    tree = MerkleTree()
    entries: list[bytes] = []
    for kind, batch in steps:
        start = tree.size
        if kind == "one" and batch:
            assert tree.append(batch[0]) == start
            batch = batch[:1]
        elif kind == "leaf" and batch:
            assert tree.append_leaf_hash(leaf_hash(batch[0])) == start
            batch = batch[:1]
        elif kind == "many":
            assert tree.extend(iter(batch)) == range(start, start + len(batch))
        else:
            assert tree.extend_leaf_hashes(leaf_hashes(batch)) == range(start, start + len(batch))
        entries += batch
        assert tree.root() == root(entries)
    _check_against_lists(tree, entries, range(0, len(entries) + 1, 7))


@given(entry_lists)
def test_every_proof_of_a_tree_verifies(entries: list[bytes]) -> None:
    tree = MerkleTree.from_entries(entries)
    for size in range(len(entries) + 1):
        for index in range(size):
            tree.inclusion_proof(index, size).verify()
        tree.consistency_proof(size).verify()


# --- stores -------------------------------------------------------------------------------------


def test_a_tree_reopens_over_its_store_and_keeps_growing() -> None:
    entries = [i.to_bytes(4, "big") for i in range(300)]
    store = DictNodeStore()
    first = MerkleTree(store)
    first.extend(entries[:123])
    again = MerkleTree(store)
    assert (again.size, again.root()) == (123, root(entries[:123]))
    again.extend(entries[123:200])
    for entry in entries[200:]:
        again.append(entry)
    _check_against_lists(again, entries, [0, 1, 123, 255, 256, 299])


def test_appends_write_one_batch_of_log_n_nodes_and_proofs_read_once() -> None:
    store = DictNodeStore()
    tree = MerkleTree(store)
    n = 1000
    for i in range(n):
        tree.append(i.to_bytes(2, "big"))
    assert len(store.writes) == n
    assert max(store.writes) <= n.bit_length() + 1
    assert sum(store.writes) == 2 * n - bin(n).count("1")  # every complete node, once
    assert store.reads == []  # appends read nothing
    tree.inclusion_proof(345, 777)
    tree.consistency_proof(300, 999)
    assert len(store.reads) == 2
    assert max(store.reads) <= 3 * n.bit_length()
    tree.extend([b"x"] * 5000)
    assert len(store.writes) == n + 1


def test_memory_store_is_one_compact_buffer_per_level() -> None:
    tree = MerkleTree.from_entries([i.to_bytes(3, "big") for i in range(10_000)])
    store = tree.store
    assert isinstance(store, MemoryNodeStore)
    assert store.nbytes == 32 * sum(10_000 >> level for level in range(14))


def test_memory_store_rejects_runs_that_do_not_continue_the_tree() -> None:
    store = MemoryNodeStore()
    h = leaf_hash(b"a")
    with pytest.raises(IntegrityError):
        store.write(1, [(0, 1, h)])  # gap
    with pytest.raises(IntegrityError):
        store.write(2, [(0, 0, h + h)])  # the level-1 node is missing
    with pytest.raises(IntegrityError):
        store.write(1, [(0, 0, h[:31])])
    with pytest.raises(IntegrityError):
        store.write(1, [(2, 0, h)])  # skips levels
    assert store.size == 0
    assert store.nbytes == 0
    store.write(1, [(0, 0, h)])
    assert store.get(0, 0) == h
    with pytest.raises(NotFound):
        store.get(0, 1)
    with pytest.raises(NotFound):
        store.get(1, 0)
    with pytest.raises(IntegrityError):
        store.write(0, [])  # shrinking


def test_iter_nodes_splits_runs() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert list(NodeStore.iter_nodes([(0, 4, a + b), (2, 1, a)])) == [
        (0, 4, a),
        (0, 5, b),
        (2, 1, a),
    ]


# --- bulk builds --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 1023, 1024, 1025, 3000, 4096 + 1024 + 3])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_bulk_builds_agree_with_appends(n: int, workers: int) -> None:
    # workers > 1 forks once the tree spans more than one block of 1024 leaves.
    entries = [os.urandom(4) for _ in range(n)]
    tree = MerkleTree.from_entries(entries, workers=workers)
    same = MerkleTree.from_leaf_hashes(leaf_hashes(entries), workers=workers)
    assert tree.root() == same.root() == root(entries)
    step = MerkleTree()
    for entry in entries[:1500]:
        step.append(entry)
    step.extend(entries[1500:])
    assert step.root() == tree.root()
    sizes = {1, n // 3, n - 1, n}
    assert [tree.root_at(s) for s in sizes] == [step.root_at(s) for s in sizes]
    tree.inclusion_proof(n - 1).verify(root(entries))


@pytest.mark.slow
def test_large_automatic_build_matches_the_list_root() -> None:
    n = (1 << 17) + 12345  # above the threshold where idle cores get forked workers
    entries = [i.to_bytes(4, "big") for i in range(n)]
    tree = MerkleTree.from_entries(entries)
    assert tree.root() == root(entries)
    for index in (0, 1 << 16, n - 1):
        tree.inclusion_proof(index).verify(tree.root())
    tree.consistency_proof(1 << 17).verify()


# --- bad input ----------------------------------------------------------------------------------


def test_out_of_range_requests_are_invalid_input(ct_tree: MerkleTree) -> None:
    for call in (
        lambda: ct_tree.inclusion_proof(8),
        lambda: ct_tree.inclusion_proof(-1),
        lambda: ct_tree.inclusion_proof(3, 3),
        lambda: ct_tree.inclusion_proof(0, 9),
        lambda: ct_tree.consistency_proof(5, 4),
        lambda: ct_tree.consistency_proof(1, 9),
        lambda: ct_tree.consistency_proof(-1),
        lambda: ct_tree.root_at(9),
        lambda: ct_tree.root_at(-1),
        lambda: ct_tree.leaf_hash(8),
    ):
        with pytest.raises(InvalidInput):
            call()
    with pytest.raises(InvalidInput):
        MerkleTree().inclusion_proof(0)


def test_leaf_hashes_must_be_32_bytes() -> None:
    tree = MerkleTree()
    with pytest.raises(InvalidInput):
        tree.append_leaf_hash(b"\x00" * 31)
    with pytest.raises(InvalidInput):
        tree.extend_leaf_hashes([leaf_hash(b"a"), b"\x00" * 33])
    with pytest.raises(InvalidInput):
        tree.append_leaf_hash("00" * 16)  # type: ignore[arg-type]
    assert tree.size == 0
    assert tree.root() == EMPTY_ROOT


def test_trivial_proofs(ct_tree: MerkleTree) -> None:
    assert ct_tree.consistency_proof(0) == ConsistencyProof(0, 8, EMPTY_ROOT, ROOTS[8], ())
    assert ct_tree.consistency_proof(8) == ConsistencyProof(8, 8, ROOTS[8], ROOTS[8], ())
    assert ct_tree.consistency_proof(0, 0) == ConsistencyProof(0, 0, EMPTY_ROOT, EMPTY_ROOT, ())
    assert ct_tree.leaf_hash(7) == leaf_hash(LEAVES[7])
    assert "size=8" in repr(ct_tree)


def test_entries_must_be_bytes() -> None:
    tree = MerkleTree()
    with pytest.raises(InvalidInput):
        tree.append("text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        tree.extend(b"abc")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        tree.extend([b"a", 7])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        MerkleTree.from_entries([b"a", None] * 2000, workers=2)  # type: ignore[list-item]
    assert tree.size == 0

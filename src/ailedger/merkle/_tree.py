"""An incremental RFC 9162 tree over a pluggable store of complete-subtree hashes.

The store keeps only complete (perfect) subtrees: node ``(level, index)`` covers leaves
``[index * 2**level, (index + 1) * 2**level)`` and exists once all its leaves do, so level
``l`` of a tree of ``n`` leaves holds exactly ``n >> l`` hashes and nothing is ever rewritten.
The ragged right edge (subtrees that are not complete yet) is computed on the fly from at most
``log2(n)`` perfect pieces. :class:`MemoryNodeStore` keeps one compact ``bytearray`` per level
(32 bytes a node, about 64 bytes a leaf in all); a database store implements the same three
methods and gets one ``write`` per append or extend (one transaction) and one ``get_many``
per proof (one query).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from ailedger.errors import IntegrityError, InvalidInput, NotFound
from ailedger.merkle._hash import (
    EMPTY_ROOT,
    HASH_SIZE,
    LeafSource,
    NodeKey,
    NodeRun,
    auto_workers,
    build_levels,
    consistency_ranges,
    fold,
    hash_entries,
    hash_pairs,
    inclusion_ranges,
    leaf_hash,
    perfect_pieces,
    range_hashes,
)
from ailedger.merkle._proof import ConsistencyProof, InclusionProof

_sha256 = hashlib.sha256


class NodeStore(ABC):
    """Where a :class:`MerkleTree` keeps the hashes of its complete subtrees.

    A store is append-only: :meth:`write` adds the nodes that a batch of new leaves completes,
    as runs ``(level, first_index, hashes)`` where ``hashes`` concatenates the 32-byte hashes
    of nodes ``first_index, first_index + 1, ...`` of that level. A run of one node is the
    ``(level, index, hash)`` triple a row-per-node database table wants
    (see :meth:`iter_nodes`).

    A SQLite store, for instance: a ``nodes(level, idx, hash, PRIMARY KEY (level, idx))``
    table and the size in a one-row table; ``write`` is one transaction of ``executemany``
    over :meth:`iter_nodes` plus the size update; ``get_many`` is one ``SELECT`` for all keys
    (a proof asks for O(log n) of them at once).
    """

    @property
    @abstractmethod
    def size(self) -> int:
        """The number of leaves stored."""

    @abstractmethod
    def get_many(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """The hashes of the complete nodes ``keys`` (``(level, index)`` pairs), in order.
        Raises :class:`~ailedger.errors.NotFound` for a node that is not stored."""

    @abstractmethod
    def write(self, size: int, runs: Sequence[NodeRun]) -> None:
        """Store the nodes completed by growing the tree to ``size`` leaves, and the new size,
        as one batch (all or nothing)."""

    def get(self, level: int, index: int) -> bytes:
        """The hash of the complete node ``(level, index)``."""
        return self.get_many([(level, index)])[0]

    @staticmethod
    def iter_nodes(runs: Iterable[NodeRun]) -> Iterator[tuple[int, int, bytes]]:
        """``(level, index, hash)`` for every node of ``runs``."""
        for level, first, blob in runs:
            for i in range(len(blob) // HASH_SIZE):
                yield level, first + i, blob[i * HASH_SIZE : (i + 1) * HASH_SIZE]


class MemoryNodeStore(NodeStore):
    """All complete nodes in memory, one ``bytearray`` per level (no object per node)."""

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes of hash storage in use."""
        return sum(len(level) for level in self._levels)

    def get_many(self, keys: Sequence[NodeKey]) -> list[bytes]:
        levels = self._levels
        out: list[bytes] = []
        try:
            for level, index in keys:
                start = index * HASH_SIZE
                if level < 0 or index < 0:
                    raise IndexError
                node = bytes(levels[level][start : start + HASH_SIZE])
                if len(node) != HASH_SIZE:
                    raise IndexError
                out.append(node)
        except IndexError:
            raise NotFound(f"no complete Merkle node ({level}, {index}) in this store") from None
        return out

    def write(self, size: int, runs: Sequence[NodeRun]) -> None:
        # Check the whole batch first so a bad one leaves the store as it was.
        lengths = [len(level) for level in self._levels]
        for level, first, blob in runs:
            if level > len(lengths):
                raise IntegrityError(f"Merkle node run at level {level} skips a level")
            if level == len(lengths):
                lengths.append(0)
            if first * HASH_SIZE != lengths[level] or len(blob) % HASH_SIZE:
                raise IntegrityError(
                    f"Merkle node run ({level}, {first}) does not continue level {level}"
                )
            lengths[level] += len(blob)
        if (
            size < self._size
            or len(lengths) != size.bit_length()
            or any(length != (size >> level) * HASH_SIZE for level, length in enumerate(lengths))
        ):
            raise IntegrityError(f"Merkle node runs do not make a tree of size {size}")
        for level, _, blob in runs:
            if level == len(self._levels):
                self._levels.append(bytearray())
            self._levels[level] += blob
        self._size = size


def _levels_of(n: int) -> list[int]:
    """Levels of the perfect pieces of a tree of ``n`` leaves, leftmost (highest) first."""
    return [lvl for lvl in range(n.bit_length() - 1, -1, -1) if n >> lvl & 1]


def _check_leaf(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise InvalidInput(f"a leaf hash must be {HASH_SIZE} bytes")
    return bytes(value)


class MerkleTree:
    """An RFC 9162 Merkle tree that grows by appends and serves proofs for any past size.

    Appends cost O(1) amortised hashes and no reads (the tree keeps the ``log2(n)`` hashes of
    its right edge); roots and proofs cost O(log n) node reads and hashes. Not thread-safe.
    """

    __slots__ = ("_frontier", "_root", "_size", "_store")

    def __init__(self, store: NodeStore | None = None) -> None:
        """A tree over ``store`` (a new :class:`MemoryNodeStore` by default), which may
        already hold leaves."""
        self._store: NodeStore = store if store is not None else MemoryNodeStore()
        self._size = self._store.size
        self._frontier = self._store.get_many(perfect_pieces(0, self._size)) if self._size else []
        self._root: bytes | None = None

    @classmethod
    def from_entries(
        cls, entries: Iterable[bytes], *, store: NodeStore | None = None, workers: int | None = None
    ) -> MerkleTree:
        """Bulk build from raw entries (see :meth:`extend` for ``workers``)."""
        tree = cls(store)
        tree.extend(entries, workers=workers)
        return tree

    @classmethod
    def from_leaf_hashes(
        cls, hashes: Iterable[bytes], *, store: NodeStore | None = None, workers: int | None = None
    ) -> MerkleTree:
        """Bulk build from leaf hashes (see :meth:`extend` for ``workers``)."""
        tree = cls(store)
        tree.extend_leaf_hashes(hashes, workers=workers)
        return tree

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def __len__(self) -> int:
        return self._size

    @property
    def store(self) -> NodeStore:
        return self._store

    def __repr__(self) -> str:
        return f"MerkleTree(size={self._size}, root={self.root().hex()})"

    # --- growing ------------------------------------------------------------------------------

    def append(self, entry: bytes) -> int:
        """Append a raw entry; returns its leaf index."""
        if not isinstance(entry, bytes | bytearray | memoryview):
            raise InvalidInput(f"a Merkle entry must be bytes, not {type(entry).__name__}")
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf hash; returns its leaf index."""
        cur = _check_leaf(leaf)
        n = self._size
        runs: list[NodeRun] = [(0, n, cur)]
        frontier = self._frontier[:]
        index, level = n, 0
        while index & 1:
            cur = _sha256(b"\x01" + frontier.pop() + cur).digest()
            index >>= 1
            level += 1
            runs.append((level, index, cur))
        frontier.append(cur)
        self._commit(n + 1, runs, frontier)
        return n

    def extend(self, entries: Iterable[bytes], *, workers: int | None = None) -> range:
        """Append raw entries; returns the range of their leaf indices.

        ``workers`` is the number of processes for a bulk build into an empty tree (forked,
        each hashing an aligned chunk); ``None`` picks one per CPU for large single-threaded
        builds and 1 otherwise.
        """
        if isinstance(entries, bytes | bytearray | str):
            raise InvalidInput("extend takes an iterable of entries, not a single entry")
        items = entries if isinstance(entries, Sequence) else list(entries)

        def leaves(a: int, b: int) -> list[bytes]:
            try:
                return hash_entries(items[a:b])
            except TypeError:
                raise InvalidInput("every Merkle entry must be bytes") from None

        return self._extend(leaves, len(items), workers)

    def extend_leaf_hashes(self, hashes: Iterable[bytes], *, workers: int | None = None) -> range:
        """Append leaf hashes; returns the range of their leaf indices."""
        items = list(hashes)
        types = set(map(type, items))  # C-level passes: about 30 ms for a million hashes
        if not types <= {bytes, bytearray} or not set(map(len, items)) <= {HASH_SIZE}:
            raise InvalidInput(f"every leaf hash must be {HASH_SIZE} bytes")
        return self._extend(lambda a, b: items[a:b], len(items), workers)

    def _extend(self, leaves: LeafSource, m: int, workers: int | None) -> range:
        n = self._size
        if m == 0:
            return range(n, n)
        if n == 0:
            count = auto_workers(m) if workers is None else max(1, workers)
            blobs = build_levels(leaves, m, count)
            runs: list[NodeRun] = [(level, 0, blob) for level, blob in enumerate(blobs)]
        else:
            runs = self._runs_after(n, [bytes(h) for h in leaves(0, m)])
        self._commit(n + m, runs, self._frontier_after(n, n + m, runs))
        return range(n, n + m)

    def _runs_after(self, n: int, new_leaves: list[bytes]) -> list[NodeRun]:
        old = dict(zip(_levels_of(n), self._frontier, strict=True))
        runs: list[NodeRun] = []
        level, first, nodes = 0, n, new_leaves
        while nodes:
            runs.append((level, first, b"".join(nodes)))
            # An odd first index: its left sibling is the old frontier piece of this level.
            nodes = hash_pairs([old[level], *nodes] if first & 1 else nodes)
            level += 1
            first >>= 1
        return runs

    def _frontier_after(self, n: int, new_size: int, runs: Sequence[NodeRun]) -> list[bytes]:
        old = dict(zip(_levels_of(n), self._frontier, strict=True))
        by_level = {level: (first, blob) for level, first, blob in runs}
        frontier: list[bytes] = []
        for level in _levels_of(new_size):
            index = (new_size >> level) - 1
            first, blob = by_level.get(level, (index + 1, b""))
            if index >= first:
                start = (index - first) * HASH_SIZE
                frontier.append(blob[start : start + HASH_SIZE])
            else:
                frontier.append(old[level])
        return frontier

    def _commit(self, size: int, runs: Sequence[NodeRun], frontier: list[bytes]) -> None:
        self._store.write(size, runs)
        self._size = size
        self._frontier = frontier
        self._root = None

    # --- reading ------------------------------------------------------------------------------

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < self._size:
            raise InvalidInput(f"leaf index {index} is outside a tree of size {self._size}")
        return self._store.get(0, index)

    def root(self) -> bytes:
        """MTH of the whole tree."""
        if self._root is None:
            self._root = fold(self._frontier) if self._frontier else EMPTY_ROOT
        return self._root

    def root_at(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves (any size the tree has had)."""
        self._check_size(size, "tree size")
        if size == self._size:
            return self.root()
        if size == 0:
            return EMPTY_ROOT
        return fold(self._store.get_many(perfect_pieces(0, size)))

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        """PATH(index, D[size]) for the tree of ``size`` leaves (default: the current size)."""
        size = self._size if size is None else size
        self._check_size(size, "tree size")
        if not 0 <= index < size:
            raise InvalidInput(f"leaf index {index} is outside a tree of size {size}")
        ranges = inclusion_ranges(index, size)
        values = range_hashes([*ranges, (index, index + 1), (0, size)], self._store.get_many)
        return InclusionProof(
            tree_size=size,
            leaf_index=index,
            leaf_hash=values[-2],
            hashes=tuple(values[:-2]),
            root=values[-1],
        )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """PROOF(old_size, D[new_size]) (default new size: the current size)."""
        new_size = self._size if new_size is None else new_size
        self._check_size(new_size, "new size")
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"old size {old_size} is outside 0..{new_size}")
        ranges = consistency_ranges(old_size, new_size) if 0 < old_size < new_size else []
        wanted = [*ranges, (0, old_size), (0, new_size)]
        values = range_hashes([r for r in wanted if r[1] > r[0]], self._store.get_many)
        new_root = values.pop() if new_size else EMPTY_ROOT
        old_root = values.pop() if old_size else EMPTY_ROOT
        return ConsistencyProof(
            old_size=old_size,
            new_size=new_size,
            old_root=old_root,
            new_root=new_root,
            hashes=tuple(values),
        )

    def _check_size(self, size: int, what: str) -> None:
        if not 0 <= size <= self._size:
            raise InvalidInput(f"{what} {size} is outside 0..{self._size}")

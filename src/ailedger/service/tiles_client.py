"""A verifying C2SP tlog-tiles client: consistency and inclusion proofs read from hash tiles.

::

    client = TilesClient.over_http("http://127.0.0.1:8080", log_key)
    new = client.update(trusted_old, client.latest_note())   # new checkpoint, consistent
    proof = client.inclusion(index, new)                     # checked against new.root
    envelope = client.entry(index, new)                      # hashes to the proven leaf

The client trusts one thing: the log's note key. A checkpoint is used only once its signature
by that key (and its origin) verified; every tile it reads is then authenticated against that
checkpoint's root the way golang.org/x/mod/sumdb/tlog's ``TileHashReader`` does it, so a
tampered byte anywhere in a fetched tile fails with :class:`~ailedger.errors.ProofInvalid`:

- the rightmost (partial) tile of each tile level holds exactly the hashes that compose the
  tree hash of ``n`` entries: those tiles together must reproduce the signed root;
- any other tile it reads is full, and the hash of its 256 hashes must be the one its parent
  tile (one tile level up) holds, walking up to an already authenticated tile.

The proof hashes (RFC 9162 PATH and PROOF, each a subtree of ``2**k`` leaves or a fold of a
few) come from those authenticated hashes, and the proof is then checked once more with
:func:`~ailedger.merkle.verify_consistency` / :func:`~ailedger.merkle.verify_inclusion`
against the signed roots, so a bug in the tile arithmetic can only fail closed.

A stored hash at tree level ``k``, index ``i`` lies in tile level ``L = k // 8``: it is the
root of the ``2**(k % 8)`` hashes of tree level ``8 L`` numbered from ``i << (k % 8)``, in
tile ``N = (i << (k % 8)) >> 8``, whose width for a tree of ``n`` entries is
``min(256, (n >> 8 L) - 256 N)``. A proof reads at most two tiles per tile level, so
``2 * ceil(log2(n) / 8)`` tiles (6 at a million entries) with an empty cache: the hashes of a
consistency proof (inclusion proof) at tree levels ``8 L .. 8 L + 7`` are siblings on the path
of leaf ``m - 1`` (leaf ``i``), all in the level-``L`` tile of that leaf's block, or pieces of
a subtree ending at ``n``, in the rightmost tile; a full tile's parent is the tile of the same
leaf one level up, and the tree hash needs only the rightmost tiles.

Authenticated tiles are kept in a small LRU cache keyed by their path (a tile path names
immutable bytes); cached tiles are authenticated again for every checkpoint they serve, so the
cache saves fetches, never checks. :attr:`TilesClient.fetched` counts fetches.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ailedger.errors import FormatError, InvalidInput, ProofInvalid
from ailedger.log import Checkpoint, NoteVerifier, SignedNote
from ailedger.merkle import (
    HASH_SIZE,
    ConsistencyProof,
    InclusionProof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from ailedger.merkle._hash import consistency_ranges, fold, inclusion_ranges, perfect_pieces
from ailedger.service.client import DEFAULT_TIMEOUT, LogClient
from ailedger.service.tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, parse_entry_bundle

__all__ = [
    "DEFAULT_CACHE_TILES",
    "TileFetch",
    "TilesClient",
    "max_proof_tiles",
    "node_tile",
    "tile_levels",
    "tile_width",
]

#: Tiles kept by default (about 8 MiB of full tiles).
DEFAULT_CACHE_TILES = 1024

#: Fetch a tile or entry bundle by its path (``tile/0/x001/234.p/7``): its bytes, or raise
#: (:class:`~ailedger.errors.NotFound` when the log has no such tile).
TileFetch = Callable[[str], bytes]

_sha256 = hashlib.sha256


def tile_width(level: int, index: int, size: int) -> int:
    """Width of tile ``(level, index)`` in a tree of ``size`` entries (0: it does not exist)."""
    available = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, available - TILE_WIDTH * index))


def tile_levels(size: int) -> int:
    """How many tile levels a tree of ``size`` entries has (one per 8 tree levels)."""
    return max(1, -(-size.bit_length() // TILE_HEIGHT))


def max_proof_tiles(size: int) -> int:
    """The most tiles a consistency proof to (:meth:`TilesClient.update`) or an inclusion
    proof in a tree of ``size`` entries reads with an empty cache: two per tile level."""
    return 2 * tile_levels(size)


def node_tile(level: int, index: int, size: int) -> tuple[TileRef, int, int]:
    """The tile holding stored hash ``(level, index)`` of a tree of ``size`` entries, the
    position of its first hash there and how many hashes compose it (``2**(level % 8)``)."""
    tile_level, height = divmod(level, TILE_HEIGHT)
    first = index << height  # of its hashes at tree level 8 * tile_level
    tile = first >> TILE_HEIGHT
    width = tile_width(tile_level, tile, size)
    if width == 0 or (index + 1) << level > size:
        raise InvalidInput(f"hash ({level}, {index}) is not in a tree of {size} entries")
    return TileRef(tile_level, tile, width), first % TILE_WIDTH, 1 << height


def _parent(ref: TileRef, size: int) -> TileRef:
    level = (ref.level or 0) + 1
    index = ref.index >> TILE_HEIGHT
    return TileRef(level, index, tile_width(level, index, size))


def _hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a power-of-two run of hashes."""
    level = list(hashes)
    while len(level) > 1:
        level = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


@dataclass
class _Tree:
    """The tiles read for one checkpoint, each authenticated against its root."""

    size: int
    tiles: dict[TileRef, bytes]

    def node(self, level: int, index: int) -> bytes:
        ref, pos, count = node_tile(level, index, self.size)
        data = self.tiles[ref]
        return _perfect_root(_hashes(data[pos * HASH_SIZE : (pos + count) * HASH_SIZE]))

    def subtree(self, lo: int, hi: int) -> bytes:
        return fold([self.node(level, index) for level, index in perfect_pieces(lo, hi)])


class TilesClient:
    """Verifies a log's checkpoints and entries from its tlog-tiles, trusting ``log_key``.

    ``fetch`` reads a tile path (see :data:`TileFetch`), ``fetch_checkpoint`` the current
    signed note; ``origin`` defaults to the key's name (C2SP: the log key is named after the
    origin). ``cache_tiles`` authenticated tiles are kept (least recently used dropped)."""

    def __init__(
        self,
        fetch: TileFetch,
        log_key: NoteVerifier,
        *,
        fetch_checkpoint: Callable[[], str | bytes] | None = None,
        origin: str | None = None,
        cache_tiles: int = DEFAULT_CACHE_TILES,
    ) -> None:
        self._fetch = fetch
        self._fetch_checkpoint = fetch_checkpoint
        self.log_key = log_key
        self.origin = log_key.name if origin is None else origin
        self._cache: OrderedDict[TileRef, bytes] = OrderedDict()
        self._cache_tiles = cache_tiles
        #: Tiles and entry bundles fetched so far (cache hits not counted).
        self.fetched = 0

    @classmethod
    def over_http(
        cls,
        url: str,
        log_key: NoteVerifier,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cache_tiles: int = DEFAULT_CACHE_TILES,
    ) -> TilesClient:
        """A client of the log service at ``url`` (``GET /checkpoint``, ``GET /tile/...``)."""
        http = LogClient(url, timeout=timeout)
        return cls(http.tile, log_key, fetch_checkpoint=http.checkpoint, cache_tiles=cache_tiles)

    # --- checkpoints -----------------------------------------------------------------------

    def latest_note(self) -> str:
        """The log's current signed checkpoint, unverified (pass it to :meth:`verify_note`,
        :meth:`update` or :meth:`inclusion`)."""
        if self._fetch_checkpoint is None:
            raise InvalidInput("this tiles client was given no way to fetch a checkpoint")
        note = self._fetch_checkpoint()
        return note.decode("utf-8", "replace") if isinstance(note, bytes) else note

    def verify_note(self, note: str | bytes | SignedNote) -> Checkpoint:
        """The checkpoint of ``note`` once the log key's signature on it verified and its
        origin is this log's (:class:`~ailedger.errors.SignatureInvalid` /
        :class:`~ailedger.errors.ProofInvalid` otherwise)."""
        signed = note if isinstance(note, SignedNote) else SignedNote.parse(note)
        signed.verify_one(self.log_key)
        cp = Checkpoint.parse(signed.text)
        if cp.origin != self.origin:
            raise ProofInvalid(
                f"checkpoint is for log {cp.origin!r}, not {self.origin!r}",
                code="checkpoint-origin-mismatch",
            )
        return cp

    # --- proofs ----------------------------------------------------------------------------

    def update(self, trusted: Checkpoint, note: str | bytes | SignedNote) -> Checkpoint:
        """Verify ``note`` (signed by the log key) and that its tree extends ``trusted`` (a
        checkpoint of this log the caller verified before): the new checkpoint, or
        :class:`~ailedger.errors.ProofInvalid`. A smaller new tree is a rollback."""
        new = self.verify_note(note)
        self.consistency(trusted, new)
        return new

    def consistency(self, old: Checkpoint, new: Checkpoint) -> ConsistencyProof:
        """The RFC 9162 consistency proof from ``old`` to ``new`` (both trusted), read from
        tiles and verified against both roots."""
        for cp in (old, new):
            if cp.origin != self.origin:
                raise ProofInvalid(
                    f"checkpoint is for log {cp.origin!r}, not {self.origin!r}",
                    code="checkpoint-origin-mismatch",
                )
        if old.size > new.size:
            raise ProofInvalid(
                f"the new checkpoint (size {new.size}) is smaller than the trusted one "
                f"(size {old.size}): a rollback",
                code="consistency-proof-invalid",
            )
        hashes: list[bytes] = []
        if 0 < old.size < new.size:
            ranges = consistency_ranges(old.size, new.size)
            tree = self._read(new, [p for lo, hi in ranges for p in perfect_pieces(lo, hi)])
            hashes = [tree.subtree(lo, hi) for lo, hi in ranges]
        verify_consistency(old.size, new.size, old.root, new.root, hashes)
        return ConsistencyProof(old.size, new.size, old.root, new.root, tuple(hashes))

    def inclusion(self, index: int, checkpoint: Checkpoint) -> InclusionProof:
        """The inclusion proof of entry ``index`` in ``checkpoint`` (trusted), its leaf hash
        read from the authenticated level-0 tile, verified against the checkpoint's root."""
        return self._inclusion(index, checkpoint)[0]

    def entry(self, index: int, checkpoint: Checkpoint) -> bytes:
        """The bytes of entry ``index`` from its entry bundle: every entry of the bundle must
        hash to its leaf in the authenticated level-0 tile of ``checkpoint`` (trusted)."""
        _, tree = self._inclusion(index, checkpoint)
        tile_ref, _, _ = node_tile(0, index, checkpoint.size)
        bundle_ref = TileRef(None, tile_ref.index, tile_ref.width)
        try:
            entries = parse_entry_bundle(self._get(bundle_ref))
        except FormatError as exc:
            raise ProofInvalid(
                f"entry bundle {bundle_ref.path()} is malformed: {exc}", code="tile-invalid"
            ) from None
        if [leaf_hash(e) for e in entries] != _hashes(tree.tiles[tile_ref]):
            raise ProofInvalid(
                f"entry bundle {bundle_ref.path()} does not hash to the log's leaves",
                code="tile-invalid",
            )
        return bytes(entries[index % TILE_WIDTH])

    def _inclusion(self, index: int, checkpoint: Checkpoint) -> tuple[InclusionProof, _Tree]:
        if checkpoint.origin != self.origin:
            raise ProofInvalid(
                f"checkpoint is for log {checkpoint.origin!r}, not {self.origin!r}",
                code="checkpoint-origin-mismatch",
            )
        if not 0 <= index < checkpoint.size:
            raise InvalidInput(f"entry {index} is not in a tree of {checkpoint.size} entries")
        ranges = inclusion_ranges(index, checkpoint.size)
        keys = [(0, index), *(p for lo, hi in ranges for p in perfect_pieces(lo, hi))]
        tree = self._read(checkpoint, keys)
        leaf = tree.node(0, index)
        hashes = tuple(tree.subtree(lo, hi) for lo, hi in ranges)
        verify_inclusion(leaf, index, checkpoint.size, hashes, checkpoint.root)
        return InclusionProof(checkpoint.size, index, leaf, hashes, checkpoint.root), tree

    # --- tiles -----------------------------------------------------------------------------

    def _get(self, ref: TileRef) -> bytes:
        data = self._fetch(ref.path())
        self.fetched += 1
        return data

    def _read(self, checkpoint: Checkpoint, keys: Sequence[tuple[int, int]]) -> _Tree:
        """Fetch the tiles holding stored hashes ``keys`` of ``checkpoint``'s tree, with the
        tiles that authenticate them (tlog's ``TileHashReader``); check them all."""
        size = checkpoint.size
        # The tree hash: its perfect subtrees lie in the rightmost tile of each tile level.
        edge_keys = perfect_pieces(0, size)
        plan: dict[TileRef, None] = {}
        for level, index in edge_keys:
            plan.setdefault(node_tile(level, index, size)[0])
        # Each requested hash: its tile, then parents up to a planned one (parents first).
        for level, index in keys:
            chain = [node_tile(level, index, size)[0]]
            while chain[-1] not in plan:
                if chain[-1].partial:  # pragma: no cover - only edge tiles are partial
                    raise ProofInvalid("tile arithmetic error", code="tile-invalid")
                chain.append(_parent(chain[-1], size))
            for ref in reversed(chain[:-1]):
                plan.setdefault(ref)
        tiles: dict[TileRef, bytes] = {}
        for ref in plan:
            cached = self._cache.get(ref)
            data = self._get(ref) if cached is None else cached
            if len(data) != ref.width * HASH_SIZE:
                raise ProofInvalid(
                    f"tile {ref.path()} has {len(data)} bytes, not {ref.width * HASH_SIZE}",
                    code="tile-invalid",
                )
            tiles[ref] = data
        tree = _Tree(size, tiles)
        if (
            size
            and fold([tree.node(level, index) for level, index in edge_keys]) != checkpoint.root
        ):
            raise ProofInvalid(
                f"the log's edge tiles do not hash to the root of the checkpoint of size {size}",
                code="tile-invalid",
            )
        for ref, data in tiles.items():
            parent = _parent(ref, size)
            if ref.partial or parent.width == 0:  # an edge tile: checked with the root
                continue
            pos = (ref.index % TILE_WIDTH) * HASH_SIZE
            expected = tiles[parent][pos : pos + HASH_SIZE]
            if _perfect_root(_hashes(data)) != expected:
                raise ProofInvalid(
                    f"tile {ref.path()} does not hash to its entry in {parent.path()}",
                    code="tile-invalid",
                )
        for ref, data in tiles.items():
            self._remember(ref, data)
        return tree

    def _remember(self, ref: TileRef, data: bytes) -> None:
        self._cache[ref] = data
        self._cache.move_to_end(ref)
        while len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)

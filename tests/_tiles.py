"""Helpers of the tiles-client tests: logs built fast, and a tile source over a log in process.

:func:`bulk_log` writes ``n`` leaves through the log's storage layer in one transaction (no
signatures: the tiles and the tree are what is under test, and a million signed appends would
take minutes); :func:`tile_source` answers tile paths from a log as ``ailedger serve`` does,
for any tree size up to ``size``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ailedger.errors import NotFound
from ailedger.log import Checkpoint, Ed25519NoteKey, SignedNote, TransparencyLog
from ailedger.log._store import Row, Store
from ailedger.merkle import leaf_hash
from ailedger.service import TILE_HEIGHT, TILE_WIDTH, entry_bundle, parse_tile_path


def bulk_log(path: Path, n: int, origin: str, *, chunk: int = 1 << 16) -> TransparencyLog:
    """A log of ``n`` synthetic entries (``b"entry <i>"``), appended in chunks."""
    store = Store(path, origin)
    try:
        for start in range(store.size(), n, chunk):
            rows = []
            for i in range(start, min(n, start + chunk)):
                data = b"entry %d" % i
                rows.append(Row(data, leaf_hash(data), 0, "text/plain", None, (), ()))
            store.append(rows)
    finally:
        store.close()
    return TransparencyLog.open(path)


def tile_source(log: TransparencyLog, size: int) -> Callable[[str], bytes]:
    """Tile paths -> bytes for a log whose latest checkpoint has ``size`` entries."""

    def fetch(path: str) -> bytes:
        ref = parse_tile_path(path.removeprefix("tile/"))
        first = ref.index * TILE_WIDTH
        if ref.level is None:
            if first + ref.width > size:
                raise NotFound(f"no {path}")
            return entry_bundle(log.envelopes(first, ref.width))
        if first + ref.width > size >> (TILE_HEIGHT * ref.level):
            raise NotFound(f"no {path}")
        return b"".join(log.hashes(TILE_HEIGHT * ref.level, first, ref.width))

    return fetch


def signed(log: TransparencyLog, key: Ed25519NoteKey, size: int) -> tuple[Checkpoint, str]:
    """The checkpoint of ``log`` at ``size`` and its note signed by ``key`` (not stored)."""
    cp = Checkpoint(log.origin, size, log.root(size))
    return cp, SignedNote.sign(cp.body(), [key]).format()

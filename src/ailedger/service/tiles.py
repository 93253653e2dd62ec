"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths and entry bundles.

A tile at level ``L``, index ``N`` holds the hashes of tree level ``8 L`` numbered
``256 N .. 256 N + W - 1`` (``W`` = 256 for a full tile, 1..255 for a partial one), 32 bytes each,
concatenated. ``N`` is written in groups of three digits, all but the last prefixed with ``x``
(``1234067`` -> ``x001/x234/067``); a partial tile adds ``.p/<W>``.

An entry bundle (``tile/entries/<N>``) holds the entries of the leaves of level-0 tile ``N``,
each as a big-endian uint16 length and its bytes. Here an entry's bytes are the canonical (RFC
8785) envelope, the very bytes whose RFC 9162 leaf hash is in the tree, so a tiles client
recomputes every leaf hash from a bundle. The uint16 length caps a bundled entry at 65,535
bytes: the service refuses larger submissions (413). A log that already holds a larger entry
(appended through the CLI) answers 409 for that one bundle; its entries stay readable at
``/v1/entries/{i}`` and the hash tiles are unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ailedger.errors import FormatError

__all__ = [
    "MAX_BUNDLED_ENTRY",
    "MAX_INDEX_GROUPS",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRef",
    "encode_index",
    "entry_bundle",
    "parse_entry_bundle",
    "parse_tile_path",
]

#: Levels of the tree per tile level, and hashes per full tile (2 ** TILE_HEIGHT).
TILE_HEIGHT = 8
TILE_WIDTH = 256
#: The largest entry an entry bundle can hold (its length is a uint16).
MAX_BUNDLED_ENTRY = 0xFFFF
#: Tile levels 0..63 (tree levels up to 504 cover any 64-bit tree size).
MAX_TILE_LEVEL = 63
#: A 64-bit tile index needs at most 7 path groups of three digits.
MAX_INDEX_GROUPS = 7

_GROUP = re.compile(r"x\d{3}")
_LAST = re.compile(r"\d{3}")
_DECIMAL = re.compile(r"0|[1-9]\d{0,2}")


@dataclass(frozen=True)
class TileRef:
    """A tile (``level`` 0..63) or an entry bundle (``level`` None), index and width."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        """The spec's path below the log's prefix, e.g. ``tile/0/x001/234.p/7``."""
        kind = "entries" if self.level is None else str(self.level)
        tail = f".p/{self.width}" if self.partial else ""
        return f"tile/{kind}/{encode_index(self.index)}{tail}"


def encode_index(index: int) -> str:
    """``N`` as tlog-tiles writes it: ``1234067`` -> ``x001/x234/067``, ``5`` -> ``005``."""
    if index < 0:
        raise ValueError("a tile index is not negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> TileRef:
    """Parse ``<L>/<N>[.p/<W>]`` or ``entries/<N>[.p/<W>]`` (the part after ``tile/``).

    Only the canonical spelling is accepted (no leading zero group, no ``.p/256``), so every
    tile has exactly one path and caches never hold two copies; anything else is a
    :class:`FormatError`."""
    parts = path.split("/")
    if len(parts) < 2:
        raise FormatError(f"not a tile path: {path!r}")
    kind, rest = parts[0], parts[1:]
    level: int | None
    if kind == "entries":
        level = None
    elif _DECIMAL.fullmatch(kind) and int(kind) <= MAX_TILE_LEVEL:
        level = int(kind)
    else:
        raise FormatError(f"tile level {kind!r} is not 0..{MAX_TILE_LEVEL} or 'entries'")
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not _DECIMAL.fullmatch(w) or not 1 <= int(w) < TILE_WIDTH:
            raise FormatError(f"partial tile width {w!r} is not 1..{TILE_WIDTH - 1}")
        width = int(w)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or not _LAST.fullmatch(rest[-1]):
        raise FormatError(f"tile index in {path!r} does not end in three digits")
    if any(not _GROUP.fullmatch(g) for g in rest[:-1]):
        raise FormatError(f"tile index groups in {path!r} must be x followed by three digits")
    if len(rest) > MAX_INDEX_GROUPS:  # a 64-bit index needs at most 7 groups of 3 digits
        raise FormatError(f"tile index in {path!r} has more than {MAX_INDEX_GROUPS} groups")
    if len(rest) > 1 and rest[0] == "x000":
        raise FormatError(f"tile index in {path!r} has a leading zero group")
    index = int("".join(g.lstrip("x") for g in rest))
    return TileRef(level, index, width)


def entry_bundle(entries: Iterable[bytes]) -> bytes:
    """Entries as a tlog-tiles bundle: each a big-endian uint16 length and its bytes."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_BUNDLED_ENTRY:
            raise FormatError(f"an entry of {len(entry)} bytes does not fit an entry bundle")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes) -> Sequence[bytes]:
    """The entries of a bundle; :class:`FormatError` if it is truncated."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FormatError("entry bundle ends inside a length")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise FormatError("entry bundle ends inside an entry")
        entries.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return entries

"""The sidecar index of a fingerprinted dataset: the tree on disk, so ``prove`` reads
O(log n) nodes instead of re-hashing the data.

Layout (version 2; integers little-endian; ``n`` leaves)::

    magic        8 bytes  b"AILDSIX2"
    leaves       n * 32   leaf hashes, in tree order
    levels       for l = 4 .. bitlen(n) - 1: (n >> l) * 32, the complete nodes of level l
    starts       (n + 1) * u64, if flag 1: where record i (input order) starts in the data
                 file (CSV, JSONL: a byte offset), then the file size
    positions    n * u64, if flag 2: the tree position of input record i (sorted order)
    numbers      n * u64, if flag 2: the input record number at tree position p
    header       RFC 8785 JSON: format, leaf_encoding, scheme, order, size, root,
                 data_sha256, data_size, secret_id (or null), metadata
    flags        u32
    header_len   u32
    header_hash  SHA-256 of header || flags || header_len
    checksum     SHA-256 of everything above

Levels 1 to 3 are not stored: a node there is recomputed from the (at most 8) leaves under
it, one read of 16 leaves per proof. So the index holds about 36 bytes of tree a record (plus 8
for its start, plus 16 in sorted order). The header sits at the end so that the sections can
be written while the data is still being read. Version 1 files (``AILDSIX1``: header first,
leaves and record numbers only) are still read by :func:`read_index_header` so that ``prove``
knows their options; they are never used for proofs (the caller recomputes).

A damaged file (checksum, lengths, header) raises :class:`~ailedger.errors.IntegrityError`; a
whole file that describes other data is the caller's to detect from the header.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
import tempfile
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import rfc8785

from ailedger import merkle
from ailedger.errors import IntegrityError, NotFound

__all__ = [
    "LOW_LEVEL",
    "MAGIC",
    "IndexFile",
    "IndexWriter",
    "read_index",
    "read_index_header",
    "temporary_file",
    "write_index",
]

MAGIC = b"AILDSIX2"
MAGIC_V1 = b"AILDSIX1"
#: The lowest stored level above the leaves.
LOW_LEVEL = 4
FLAG_STARTS = 1
FLAG_SORTED = 2
_H = merkle.HASH_SIZE
_TAIL = 4 + 4 + 32 + 32
_COPY = 1 << 20
#: Indexes up to this size are kept in memory (no file descriptor held) when loaded.
_IN_MEMORY = 4 << 20
Progress = Callable[[int], None]


def _u64(values: Sequence[int] | array[int]) -> bytes:
    arr = values if isinstance(values, array) else array("Q", values)
    if sys.byteorder != "little":  # pragma: no cover
        arr = array("Q", arr)
        arr.byteswap()
    return arr.tobytes()


def _from_u64(raw: bytes | memoryview) -> array[int]:
    arr = array("Q")
    arr.frombytes(raw)
    if sys.byteorder != "little":  # pragma: no cover
        arr.byteswap()
    return arr


def _parents(blob: bytes | bytearray | memoryview) -> bytes:
    """The parents of the neighbouring pairs of a level blob (an odd last node left out)."""
    sha = hashlib.sha256
    out = bytearray()
    view = memoryview(blob)
    pairs = len(view) // (2 * _H)
    step = 4096
    for a in range(0, pairs, step):
        b = min(pairs, a + step)
        chunk = bytes(view[2 * _H * a : 2 * _H * b])
        out += b"".join(
            sha(b"\x01" + chunk[o : o + 2 * _H]).digest() for o in range(0, len(chunk), 2 * _H)
        )
    return bytes(out)


def _layout(n: int, flags: int) -> tuple[dict[int, int], int, int, int, int]:
    """Offsets: ``{level: offset}`` (level 0 and the stored levels), starts, positions,
    numbers and the end of the sections."""
    offsets = {0: len(MAGIC)}
    pos = len(MAGIC) + n * _H
    for level in range(LOW_LEVEL, n.bit_length()):
        offsets[level] = pos
        pos += (n >> level) * _H
    starts = pos
    if flags & FLAG_STARTS:
        pos += (n + 1) * 8
    positions = pos
    if flags & FLAG_SORTED:
        pos += n * 8
    numbers = pos
    if flags & FLAG_SORTED:
        pos += n * 8
    return offsets, starts, positions, numbers, pos


class _TreeStore(merkle.NodeStore):
    """Read-only complete nodes: leaves and levels >= 4 read, levels 1-3 recomputed."""

    def __init__(self, size: int, read: Callable[[int, int], bytes], offsets: dict[int, int]):
        self._size = size
        self._read = read
        self._offsets = offsets

    @property
    def size(self) -> int:
        return self._size

    def get_many(self, keys: Sequence[tuple[int, int]]) -> list[bytes]:
        out: list[bytes] = []
        for level, index in keys:
            if level < 0 or index < 0 or index >= self._size >> level:
                raise NotFound(f"no complete Merkle node ({level}, {index}) in this index")
            if level == 0 or level >= LOW_LEVEL:
                out.append(self._read(self._offsets[level] + index * _H, _H))
                continue
            blob = self._read(self._offsets[0] + (index << level) * _H, _H << level)
            for _ in range(level):
                blob = _parents(blob)
            out.append(blob)
        return out

    def write(self, size: int, runs: Sequence[tuple[int, int, bytes]]) -> None:
        raise IntegrityError("a dataset index is read-only")


class _Sink:
    """A file being written, hashed as it goes (the checksum)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.pos = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.f.write(data)
        self.sha.update(data)
        self.pos += len(data)


class IndexWriter:
    """Writes an index into ``f`` (an empty file open for reading and writing).

    Leaf hashes come in tree order (:meth:`add_leaves`), record starts in input order
    (:meth:`add_starts`, kept in a temporary file meanwhile); :meth:`finish` adds the upper
    levels, the sorted-order maps and the header, and returns the root. Memory: the level-4
    nodes (2 bytes a leaf) and fewer than 16 pending leaves.
    """

    def __init__(self, f: IO[bytes], *, spool_dir: Path | None = None) -> None:
        self._sink = _Sink(f)
        self._sink.write(MAGIC)
        self._spool_dir = spool_dir
        self._starts: IO[bytes] | None = None
        self._pending: list[bytes] = []
        self._low = bytearray()
        self.size = 0

    def add_leaves(self, leaves: Sequence[bytes]) -> None:
        self._sink.write(b"".join(leaves))
        self.size += len(leaves)
        pending = [*self._pending, *leaves]
        block = 1 << LOW_LEVEL
        full = len(pending) - len(pending) % block
        if full:
            blob = b"".join(pending[:full])
            for _ in range(LOW_LEVEL):
                blob = _parents(blob)
            self._low += blob
        self._pending = pending[full:]

    def add_starts(self, starts: Sequence[int]) -> None:
        if self._starts is None:
            self._starts = temporary_file(self._spool_dir)
        self._starts.write(_u64(starts))

    def finish(
        self,
        header: Callable[[bytes], dict[str, Any]],
        *,
        data_size: int | None = None,
        positions: array[int] | None = None,
        numbers: array[int] | None = None,
    ) -> bytes:
        """Write the rest; ``header(root)`` gives the header. Returns the root."""
        sink, n = self._sink, self.size
        levels: dict[int, bytes | bytearray] = {}
        blob: bytes | bytearray = self._low
        for level in range(LOW_LEVEL, n.bit_length()):
            levels[level] = blob
            blob = _parents(blob)
        sink.f.flush()
        fd = sink.f.fileno()
        offsets = {0: len(MAGIC)}

        def read(offset: int, length: int) -> bytes:
            for level, at in offsets.items():  # leaves on disk, upper levels in memory
                if level and at <= offset < at + len(levels[level]):
                    return bytes(levels[level][offset - at : offset - at + length])
            return os.pread(fd, length, offset)

        pos = len(MAGIC) + n * _H
        for level in range(LOW_LEVEL, n.bit_length()):
            offsets[level] = pos
            pos += len(levels[level])
        root = merkle.MerkleTree(_TreeStore(n, read, offsets)).root() if n else merkle.EMPTY_ROOT
        for level in range(LOW_LEVEL, n.bit_length()):
            sink.write(levels[level])
        flags = 0
        if self._starts is not None:
            flags |= FLAG_STARTS
            self._starts.seek(0)
            while chunk := self._starts.read(_COPY):
                sink.write(chunk)
            self._starts.close()
            sink.write(_u64([data_size or 0]))
        if positions is not None and numbers is not None:
            flags |= FLAG_SORTED
            sink.write(_u64(positions))
            sink.write(_u64(numbers))
        head = rfc8785.dumps(header(root))
        tail = flags.to_bytes(4, "little") + len(head).to_bytes(4, "little")
        sink.write(head)
        sink.write(tail)
        sink.write(hashlib.sha256(head + tail).digest())
        sink.f.write(sink.sha.digest())
        sink.f.flush()
        return root

    def abort(self) -> None:
        if self._starts is not None:
            self._starts.close()


def temporary_file(directory: Path | None) -> IO[bytes]:
    """An anonymous temporary file, beside the data when possible (not a RAM-backed /tmp)."""
    if directory is not None:
        try:
            return tempfile.TemporaryFile(dir=directory)
        except OSError:
            pass
    return tempfile.TemporaryFile()


# --- Reading -----------------------------------------------------------------------------------


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError:
        raise IntegrityError(f"{path}: dataset index header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("size"), int):
        raise IntegrityError(f"{path}: dataset index header is malformed")
    return header


def _read_v2_header(f: IO[bytes], path: Path) -> tuple[dict[str, Any], int]:
    size = os.fstat(f.fileno()).st_size
    if size < len(MAGIC) + _TAIL:
        raise IntegrityError(f"{path}: truncated dataset index")
    f.seek(size - _TAIL)
    tail = f.read(_TAIL)
    flags = int.from_bytes(tail[0:4], "little")
    head_len = int.from_bytes(tail[4:8], "little")
    if head_len + _TAIL + len(MAGIC) > size:
        raise IntegrityError(f"{path}: truncated dataset index")
    f.seek(size - _TAIL - head_len)
    head = f.read(head_len)
    if hashlib.sha256(head + tail[:8]).digest() != tail[8:40]:
        raise IntegrityError(f"{path}: dataset index is damaged (header checksum mismatch)")
    header = _parse_header(head, path)
    n = header["size"]
    if n < 0 or _layout(n, flags)[4] + head_len + _TAIL != size:
        raise IntegrityError(f"{path}: dataset index length does not match its header")
    return header, flags


def read_index_header(path: Path) -> dict[str, Any]:
    """Only the header (cheap: the end of the file; version 1: its start)."""
    with path.open("rb") as f:
        magic = f.read(len(MAGIC))
        if magic == MAGIC_V1:
            start = f.read(4)
            if len(start) < 4:
                raise IntegrityError(f"{path}: truncated dataset index")
            header = _parse_header(f.read(int.from_bytes(start, "little")), path)
            return {**header, "index_version": 1}
        if magic != MAGIC:
            raise IntegrityError(f"{path} is not an ailedger dataset index")
        return _read_v2_header(f, path)[0]


def _verify_checksum(f: IO[bytes], path: Path, progress: Progress | None) -> None:
    size = os.fstat(f.fileno()).st_size
    if size < 32 + len(MAGIC):
        raise IntegrityError(f"{path}: dataset index is damaged (checksum mismatch)")
    f.seek(0)
    sha = hashlib.sha256()
    left = size - 32
    while left:
        chunk = f.read(min(_COPY, left))
        if not chunk:
            raise IntegrityError(f"{path}: truncated dataset index")
        sha.update(chunk)
        left -= len(chunk)
        if progress is not None:
            progress(len(chunk))
    if sha.digest() != f.read(32):
        raise IntegrityError(f"{path}: dataset index is damaged (checksum mismatch)")


class IndexFile:
    """A version 2 index, checked (checksum, lengths) and mapped for reading."""

    def __init__(self, buf: bytes | mmap.mmap, header: dict[str, Any], flags: int) -> None:
        self._buf = buf
        self.header = header
        self.flags = flags
        self.size: int = header["size"]
        self._offsets, self._starts, self._positions, self._numbers, _ = _layout(self.size, flags)

    @classmethod
    def open(
        cls, path: Path, *, checksum: bool = True, progress: Progress | None = None
    ) -> IndexFile:
        """Open the file and check its header (hash) and length; with ``checksum``, also the
        whole file (one sequential read). Without it, whatever a caller reads must be checked
        by the caller (``prove`` checks the record against its leaf, and the proof against
        the root in the checked header)."""
        with path.open("rb") as f:
            magic = f.read(len(MAGIC))
            if magic != MAGIC:
                if magic == MAGIC_V1:
                    raise IntegrityError(f"{path}: a version 1 dataset index")
                raise IntegrityError(f"{path} is not an ailedger dataset index")
            if checksum:
                _verify_checksum(f, path, progress)
            header, flags = _read_v2_header(f, path)
            size = os.fstat(f.fileno()).st_size
            if size <= _IN_MEMORY:
                f.seek(0)
                return cls(f.read(), header, flags)
            return cls(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), header, flags)

    @classmethod
    def from_file(cls, f: IO[bytes], path: Path) -> IndexFile:
        """A file just written by :class:`IndexWriter` (trusted: no checksum pass)."""
        f.flush()
        header, flags = _read_v2_header(f, path)
        size = os.fstat(f.fileno()).st_size
        if size <= _IN_MEMORY:
            f.seek(0)
            return cls(f.read(), header, flags)
        return cls(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), header, flags)

    def raw(self) -> bytes | None:
        """The whole file when it is held in memory (small indexes), else None."""
        return self._buf if isinstance(self._buf, bytes) else None

    def write_to(self, out: IO[bytes]) -> None:
        """Write the whole file to ``out``."""
        out.write(self._buf)

    def _read(self, offset: int, length: int) -> bytes:
        return bytes(self._buf[offset : offset + length])

    @property
    def has_starts(self) -> bool:
        return bool(self.flags & FLAG_STARTS)

    @property
    def sorted_maps(self) -> bool:
        return bool(self.flags & FLAG_SORTED)

    def store(self) -> merkle.NodeStore:
        return _TreeStore(self.size, self._read, self._offsets)

    def leaf(self, position: int) -> bytes:
        return self._read(self._offsets[0] + position * _H, _H)

    def leaf_hashes(self) -> list[bytes]:
        raw = self._read(self._offsets[0], self.size * _H)
        return [raw[i : i + _H] for i in range(0, len(raw), _H)]

    def position_of(self, record: int) -> int:
        if not self.sorted_maps:
            return record
        at = self._positions + 8 * record
        return int.from_bytes(self._buf[at : at + 8], "little")

    def record_numbers(self) -> Sequence[int]:
        if not self.sorted_maps:
            return range(self.size)
        return _from_u64(self._read(self._numbers, 8 * self.size))

    def record_span(self, record: int) -> tuple[int, int]:
        """Where record ``record`` starts in the data file and where the next one does."""
        at = self._starts + 8 * record
        raw = self._buf[at : at + 16]
        return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")

    def bisect(self, leaf: bytes) -> int:
        """The first tree position whose leaf hash is not below ``leaf`` (sorted order)."""
        lo, hi = 0, self.size
        while lo < hi:
            mid = (lo + hi) // 2
            if self.leaf(mid) < leaf:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()


# --- Whole-index helpers (the tests' and small callers' view) ----------------------------------


def write_index(
    path: Path, header: dict[str, Any], leaf_hashes: Sequence[bytes], record_numbers: Sequence[int]
) -> None:
    """Write an index from leaf hashes and record numbers in memory, atomically (a temporary
    file renamed over ``path``). Without record starts, ``prove`` will not use it."""
    numbers = array("Q", record_numbers)
    identity = list(numbers) == list(range(len(numbers)))
    positions = array("Q", bytes(8 * len(numbers)))
    for p, r in enumerate(numbers):
        positions[r] = p
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w+b") as f:
        writer = IndexWriter(f)
        writer.add_leaves(list(leaf_hashes))
        if identity:
            writer.finish(lambda _root: header)
        else:
            writer.finish(lambda _root: header, positions=positions, numbers=numbers)
    os.replace(tmp, path)


def read_index(path: Path) -> tuple[dict[str, Any], list[bytes], Sequence[int]]:
    """Header, leaf hashes (tree order) and record numbers; checks the checksum."""
    index = IndexFile.open(path)
    try:
        return index.header, index.leaf_hashes(), index.record_numbers()
    finally:
        index.close()

"""Dataset fingerprints: a Merkle root over salted records, and proofs about single records.

A dataset is a CSV, JSONL or Parquet file or a directory of files. Each record is encoded
(:mod:`ailedger.fingerprint._formats` names the encodings), salted
(:mod:`ailedger.fingerprint._leaves` names the
schemes) and becomes one RFC 9162 leaf; the fingerprint is the tree's root and size together
with the format, leaf encoding, salt scheme, order and metadata (CSV header, Parquet schema).

- ``secret=None`` means unsalted (``unsalted-v1``), for public data; otherwise leaves are salted
  in input order (``salted-blake3-index-v1``) or, with ``sort_leaves=True``, ordered by leaf
  hash and salted by record content (``salted-blake3-record-v1``), which allows proofs that a
  record is absent.
- Records are read as a stream (:mod:`ailedger.fingerprint._stream`): the leaf hashes go to
  a temporary index file as they are computed, never a list of parsed rows, so memory stays
  flat in the file size: input order needs a few MB and 4 bytes a record (the tree's levels
  from 4 up, computed as the leaves go by); sorted order spills
  the leaf hashes to 16 temporary files by their first bits and sorts one at a time (about 6
  bytes a record in memory) and keeps the position maps (16 bytes a record).
- :func:`write_index_file` stores that index, the tree's leaves and upper levels and where each
  record starts, beside the data (:mod:`ailedger.fingerprint._index`). :func:`prove_record`
  uses it when it is bound to the data (same size and SHA-256, scheme, secret and reading
  options: CSV ``skip_lines``, ``header_row``, delimiter): it re-reads the one record from its
  offset and reads O(log n) nodes, so a proof costs one hash pass over the data instead of
  parsing and re-hashing every record. A stale index, or one made with other options, is
  ignored and the tree recomputed. A damaged one is an ``IntegrityError`` (exit 7), not
  silently replaced: a disk that corrupts files is worth knowing about, and the fix
  (fingerprint again) is the user's to run. ``prove`` does not re-hash the whole index: its
  header and length are checked, the record re-read from the data must hash to the stored
  leaf, and the proof must lead to the stored root, so damage anywhere on the proof's path
  is caught and damage elsewhere cannot change the proof.
"""

from __future__ import annotations

import os
import shutil
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ailedger import merkle
from ailedger.errors import InvalidInput, NotFound
from ailedger.fingerprint import _leaves
from ailedger.fingerprint._formats import (
    ENCODINGS,
    FILE_ENTRY,
    FORMATS,
    JSONL_JCS,
    Records,
    csv_options,
    detect_format,
    encode_record_file,
)
from ailedger.fingerprint._index import (
    IndexFile,
    IndexWriter,
    read_index_header,
    temporary_file,
)
from ailedger.fingerprint._leaves import SALTED_BY_INDEX, SALTED_BY_RECORD, UNSALTED
from ailedger.fingerprint._proving import (
    ORDER_INPUT,
    ORDER_SORTED,
    Reading,
    Wanted,
    bound_index,
    prove_from,
)
from ailedger.fingerprint._stream import BATCH, RecordStream, delimiter_of, open_records
from ailedger.fingerprint.proofs import DatasetRef, MembershipProof, NonMembershipProof

__all__ = [
    "FINGERPRINT_TYPE",
    "FORMATS",
    "INDEX_SUFFIX",
    "ORDER_INPUT",
    "ORDER_SORTED",
    "SECRET_SUFFIX",
    "DatasetFingerprint",
    "Progress",
    "default_index_path",
    "default_secret_path",
    "fingerprint_dataset",
    "prove_record",
    "read_index_header",
    "write_index_file",
]

FINGERPRINT_TYPE = "https://ailedger.dev/dataset/fingerprint/v1"
INDEX_SUFFIX = ".ailedger-index"
SECRET_SUFFIX = ".ailedger-secret"
#: Called with a number of bytes read (dataset, then index) as work proceeds.
Progress = Callable[[int], None]


class _Built:
    """The index a fingerprint computed, in an anonymous temporary file (or in memory when
    small), until :func:`write_index_file` copies it."""

    def __init__(self, f: IO[bytes], path: Path) -> None:
        self.index = IndexFile.from_file(f, path)
        self._file: IO[bytes] | None = f
        if self.index.raw() is not None:
            f.close()
            self._file = None

    @classmethod
    def of(cls, index: IndexFile) -> _Built:
        """An index opened from disk (nothing to copy from but the file it came from)."""
        built = cls.__new__(cls)
        built.index, built._file = index, None
        return built

    def copy_to(self, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        with tmp.open("wb") as out:
            if self._file is not None:  # copied through the page cache, not this process
                self._file.seek(0)
                shutil.copyfileobj(self._file, out, 1 << 20)
            else:
                self.index.write_to(out)
        os.replace(tmp, target)


@dataclass(frozen=True)
class DatasetFingerprint:
    """A fingerprinted dataset; ``leaf_hashes`` are in tree order and ``record_numbers[p]``
    is the input record number of the leaf at tree position ``p`` (both read from the index
    on demand: O(n) memory, for tests and small data)."""

    path: Path
    format: str
    leaf_encoding: str
    scheme: str
    order: str
    root: bytes
    size: int
    metadata: dict[str, Any]
    data_sha256: str
    secret_id: str | None
    _built: _Built = field(repr=False, compare=False)

    @property
    def leaf_hashes(self) -> list[bytes]:
        return self._built.index.leaf_hashes()

    @property
    def record_numbers(self) -> Sequence[int]:
        return self._built.index.record_numbers()

    @property
    def ref(self) -> DatasetRef:
        return DatasetRef(self.root, self.size, self.format, self.leaf_encoding, self.scheme)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": FINGERPRINT_TYPE,
            "path": str(self.path),
            "format": self.format,
            "leaf_encoding": self.leaf_encoding,
            "scheme": self.scheme,
            "order": self.order,
            "tree_algorithm": merkle.TREE_ALGORITHM,
            "size": self.size,
            "root": self.root.hex(),
            "data_sha256": self.data_sha256,
            "metadata": self.metadata,
        }

    def _index_header(self) -> dict[str, Any]:
        return dict(self._built.index.header)


def default_index_path(path: Path) -> Path:
    """``<dataset>.ailedger-index``, beside the file or directory."""
    path = path.absolute()
    return path.with_name(path.name + INDEX_SUFFIX)


def default_secret_path(path: Path) -> Path:
    """``<dataset>.ailedger-secret``, beside the file or directory."""
    path = path.absolute()
    return path.with_name(path.name + SECRET_SUFFIX)


def _encoding(fmt: str, canonical_json: bool) -> str:
    if fmt not in ENCODINGS:
        raise InvalidInput(f"unknown dataset format {fmt!r} (one of {', '.join(FORMATS)})")
    if canonical_json and fmt != "jsonl":
        raise InvalidInput("canonical JSON leaves apply to JSONL only")
    return JSONL_JCS if canonical_json else ENCODINGS[fmt][0]


def _scheme(secret: bytes | None, sort_leaves: bool) -> str:
    if secret is None:
        return UNSALTED
    return SALTED_BY_RECORD if sort_leaves else SALTED_BY_INDEX


def _spool_dir(path: Path) -> Path:
    return path.absolute().parent


#: Sorted order: leaf hashes are spilled to this many temporary files by their first 4 bits,
#: then each is sorted in memory (so about 1/16 of them at a time).
_BUCKETS = 16
_KEY = merkle.HASH_SIZE + 8


def _spill(buckets: list[IO[bytes]], leaves: list[bytes], first: int) -> None:
    """Append ``leaf || big-endian record number`` to the bucket of each leaf."""
    parts: list[list[bytes]] = [[] for _ in buckets]
    for k, leaf in enumerate(leaves, first):
        parts[leaf[0] >> 4].append(leaf + k.to_bytes(8, "big"))
    for bucket, part in zip(buckets, parts, strict=True):
        if part:
            bucket.write(b"".join(part))


def _sort_buckets(
    buckets: list[IO[bytes]], writer: IndexWriter, n: int
) -> tuple[array[int], array[int]]:
    """Feed the leaves in sorted order (by hash, ties by record number, as a stable sort
    orders them) and return the maps position -> record number and back (8 bytes a record
    each, in memory)."""
    positions = array("Q", bytes(8 * n))
    numbers = array("Q")
    p = 0
    for bucket in buckets:
        bucket.seek(0)
        raw = bucket.read()
        keys = [raw[o : o + _KEY] for o in range(0, len(raw), _KEY)]
        del raw
        keys.sort()
        for a in range(0, len(keys), BATCH):
            writer.add_leaves([k[: merkle.HASH_SIZE] for k in keys[a : a + BATCH]])
        for key in keys:
            r = int.from_bytes(key[merkle.HASH_SIZE :], "big")
            numbers.append(r)
            positions[r] = p
            p += 1
    return positions, numbers


def _build(
    path: Path,
    stream: RecordStream,
    secret: bytes | None,
    sort_leaves: bool,
    want: Wanted | None = None,
) -> DatasetFingerprint:
    scheme = _scheme(secret, sort_leaves)
    order = ORDER_SORTED if sort_leaves else ORDER_INPUT
    sid = None if secret is None else _leaves.secret_id(secret)
    f = temporary_file(_spool_dir(path))
    buckets: list[IO[bytes]] = []
    try:
        writer = IndexWriter(f, spool_dir=_spool_dir(path))
        if sort_leaves:
            buckets = [temporary_file(_spool_dir(path)) for _ in range(_BUCKETS)]
        n = 0
        for records, starts in stream.batches():
            leaves = _leaves.leaf_hashes(records, scheme, secret, n)
            if want is not None:
                want.see(records, n)
            if sort_leaves:
                _spill(buckets, leaves, n)
            else:
                writer.add_leaves(leaves)
            if stream.offsets:
                writer.add_starts(starts)
            n += len(records)
        if n == 0:
            raise InvalidInput(f"{path}: the dataset has no records")
        positions = numbers = None
        if sort_leaves:
            positions, numbers = _sort_buckets(buckets, writer, n)

        def header(root: bytes) -> dict[str, Any]:
            return {
                "type": FINGERPRINT_TYPE,
                "format": stream.format,
                "leaf_encoding": stream.leaf_encoding,
                "scheme": scheme,
                "order": order,
                "tree_algorithm": merkle.TREE_ALGORITHM,
                "size": n,
                "root": root.hex(),
                "data_sha256": stream.data_sha256,
                "data_size": stream.data_size,
                "metadata": stream.metadata,
                "secret_id": sid,
            }

        root = writer.finish(
            header, data_size=stream.data_size, positions=positions, numbers=numbers
        )
        built = _Built(f, path)
    except BaseException:
        f.close()
        raise
    finally:
        for bucket in buckets:
            bucket.close()
    return DatasetFingerprint(
        path, stream.format, stream.leaf_encoding, scheme, order, root, n,
        stream.metadata, stream.data_sha256, sid, built,
    )  # fmt: skip


def fingerprint_dataset(
    path: Path,
    *,
    secret: bytes | None,
    format: str | None = None,
    sort_leaves: bool = False,
    canonical_json: bool = False,
    skip_lines: int = 0,
    header_row: bool = True,
    progress: Progress | None = None,
) -> DatasetFingerprint:
    """Fingerprint the dataset at ``path``; ``secret=None`` (explicitly) for unsalted leaves.

    CSV only: ``skip_lines`` leading lines are dropped before the header, and
    ``header_row=False`` makes every row a record; both are recorded in the metadata.
    ``progress`` is called with the number of bytes read as the data streams by.
    """
    fmt = format or detect_format(path)
    stream = open_records(
        path,
        fmt,
        _encoding(fmt, canonical_json),
        skip_lines=skip_lines,
        header_row=header_row,
        progress=progress,
    )
    return _build(path, stream, secret, sort_leaves)


def write_index_file(fp: DatasetFingerprint, index_path: Path | None = None) -> Path:
    """Write the sidecar index of ``fp`` (default: :func:`default_index_path`), atomically."""
    target = index_path or default_index_path(fp.path)
    fp._built.copy_to(target)
    return target


# --- Using an index ----------------------------------------------------------------------------


def _from_index(
    path: Path, recs: Records, secret: bytes | None, sort_leaves: bool, index_path: Path
) -> DatasetFingerprint | None:
    """The fingerprint stored in the index when it matches ``recs`` (read in memory), else
    None (kept for tests of the binding rules)."""
    scheme = _scheme(secret, sort_leaves)
    reading = Reading(
        recs.format, recs.leaf_encoding, scheme,
        ORDER_SORTED if sort_leaves else ORDER_INPUT,
        None if secret is None else _leaves.secret_id(secret),
        *(csv_options(recs.metadata) if recs.format == "csv" else (0, True)),
    )  # fmt: skip
    found = bound_index(path, index_path, reading, None)
    if found is None:
        return None
    index = found[0]
    h = index.header
    if h.get("metadata") != recs.metadata or h.get("size") != len(recs.records):
        return None
    built = _Built.of(index)
    return DatasetFingerprint(
        path, recs.format, recs.leaf_encoding, scheme, reading.order, bytes.fromhex(h["root"]),
        index.size, recs.metadata, recs.data_sha256, reading.secret_id, built,
    )  # fmt: skip


def _record_relpath(dataset: Path, record: Path) -> str:
    try:
        return record.resolve().relative_to(dataset.resolve()).as_posix()
    except ValueError:
        return record.name  # a file outside the dataset is looked up under its own name


def prove_record(
    path: Path,
    *,
    secret: bytes | None,
    index: int | None = None,
    record: Path | None = None,
    format: str | None = None,
    sort_leaves: bool | None = None,
    canonical_json: bool | None = None,
    index_file: Path | None = None,
    include_record: bool = True,
    skip_lines: int | None = None,
    header_row: bool | None = None,
    progress: Progress | None = None,
) -> MembershipProof | NonMembershipProof:
    """Prove that record number ``index`` (input order) or the record in file ``record`` is in
    the dataset, or, for an absent record in sorted order, that it is not.

    Options left as ``None`` come from the sidecar index when it exists; the index is used when
    it is bound to the data, scheme, secret and reading options, and the tree is recomputed
    (streaming) otherwise. ``--record`` in input order always reads the data through (a
    salt depends on the position, so the record is found by reading).
    """
    if (index is None) == (record is None):
        raise InvalidInput("give exactly one of a record index or a record file")
    index_file = index_file or default_index_path(path)
    header = read_index_header(index_file) if index_file.is_file() else {}
    fmt = format or header.get("format") or detect_format(path)
    if canonical_json is None:
        canonical_json = header.get("leaf_encoding") == JSONL_JCS and fmt == "jsonl"
    if sort_leaves is None:
        sort_leaves = header.get("order") == ORDER_SORTED
    if fmt == "csv" and header.get("format") == "csv":
        stored_skip, stored_header = csv_options(header.get("metadata") or {})
        skip_lines = stored_skip if skip_lines is None else skip_lines
        header_row = stored_header if header_row is None else header_row
    encoding = _encoding(fmt, canonical_json)
    stream = open_records(
        path,
        fmt,
        encoding,
        skip_lines=skip_lines or 0,
        header_row=True if header_row is None else header_row,
        progress=progress,
    )
    scheme = _scheme(secret, sort_leaves)
    reading = Reading(
        fmt, encoding, scheme, ORDER_SORTED if sort_leaves else ORDER_INPUT,
        None if secret is None else _leaves.secret_id(secret),
        stream.skip_lines, stream.header_row,
    )  # fmt: skip
    wanted: bytes | None = None
    relpath = None
    if record is not None:
        if not record.is_file():
            raise NotFound(f"record file not found: {record}")
        relpath = _record_relpath(path, record) if encoding == FILE_ENTRY else None
        delimiter = delimiter_of(path) if fmt == "csv" else None
        wanted = encode_record_file(
            record.read_bytes(), encoding, relpath=relpath, delimiter=delimiter
        )
    found = None
    if header and not (record is not None and not sort_leaves):
        found = bound_index(path, index_file, reading, progress)
    if found is not None:
        idx, entries = found
        try:
            return prove_from(path, idx, entries, secret, index, wanted, relpath, include_record)
        finally:
            idx.close()
    want = Wanted(index=index, encoded=wanted if not sort_leaves else None)
    fp = _build(path, stream, secret, sort_leaves, want)
    if index is not None and not 0 <= index < fp.size:
        raise InvalidInput(f"record index {index} is outside 0..{fp.size - 1}")
    return prove_from(
        path, fp._built.index, None, secret, index, wanted, relpath, include_record, want
    )

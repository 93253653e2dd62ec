"""Streaming dataset readers: records in batches, never the whole file in memory.

:func:`open_records` reads a CSV, JSONL or Parquet file once, front to back, hashing its bytes
(``data_sha256``) as they go by, and yields the encoded records in batches together with the
byte offset where each record starts in the file (CSV, JSONL) or its row number (Parquet). The
leaf encodings and every reading rule are those of :mod:`ailedger.fingerprint._formats`, whose
whole-file :func:`~ailedger.fingerprint._formats.read_records` is the reference the tests hold
this module to. :func:`record_at` re-reads a single record from its stored offset.

Memory: one read buffer (1 MiB) and one batch of records (about 4096); a directory (format
``files``) is still listed in memory, one entry of 32 bytes plus its path per file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

import rfc8785

from ailedger.errors import FormatError, InvalidInput
from ailedger.fingerprint._formats import (
    JSONL_JCS,
    JSONL_LINE,
    _canonical_row,
    _json_validator,
    _line_error,
    _read_files,
    _where,
    check_reading,
)

__all__ = [
    "BATCH",
    "Progress",
    "RecordStream",
    "delimiter_of",
    "open_records",
    "record_at",
    "row_encoder",
]

#: Records per batch.
BATCH = 4096
_READ = 1 << 20
Progress = Callable[[int], None]


def delimiter_of(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


class _HashingReader(io.RawIOBase):
    """A raw file whose bytes are hashed (and counted, for progress) as they are read."""

    def __init__(self, f: BinaryIO, progress: Progress | None) -> None:
        self._f = f
        self.sha = hashlib.sha256()
        self.size = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._f.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            with memoryview(buffer) as view:
                self.sha.update(view[:n])
            self.size += n
            if self._progress is not None:
                self._progress(n)
        return n or 0


@dataclass
class RecordStream:
    """The records of one dataset file; ``metadata``, ``data_sha256`` and ``data_size`` are
    complete once :meth:`batches` is exhausted."""

    path: Path
    format: str
    leaf_encoding: str
    skip_lines: int = 0
    header_row: bool = True
    progress: Progress | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    data_sha256: str = ""
    data_size: int = 0
    #: With ``offsets``, the second item of each batch holds byte offsets (else row numbers).
    offsets: bool = True
    _files: list[bytes] | None = None

    def batches(self) -> Iterator[tuple[list[bytes], list[int]]]:
        """``(records, starts)`` batches in input order."""
        if self.format == "files":
            yield from self._directory()
            return
        if self.format == "parquet":
            yield from self._parquet()
            return
        try:
            f = self.path.open("rb", buffering=0)
        except IsADirectoryError:
            raise InvalidInput(f"{self.path} is a directory, not a {self.format} file") from None
        with f:
            raw = _HashingReader(f, self.progress)
            buffered = io.BufferedReader(raw, _READ)
            if self.format == "jsonl":
                yield from _jsonl_batches(buffered, self.leaf_encoding, self.path)
            else:
                yield from self._csv(buffered)
            buffered.read()  # hash whatever the reader left (nothing, normally)
            self.data_sha256 = raw.sha.hexdigest()
            self.data_size = raw.size

    def _directory(self) -> Iterator[tuple[list[bytes], list[int]]]:
        recs = _read_files(self.path)
        self.metadata, self.data_sha256 = recs.metadata, recs.data_sha256
        self.offsets = False
        self._files = recs.records
        for a in range(0, len(recs.records), BATCH):
            chunk = recs.records[a : a + BATCH]
            yield chunk, list(range(a, a + len(chunk)))

    def _parquet(self) -> Iterator[tuple[list[bytes], list[int]]]:
        from ailedger.fingerprint._parquet import iter_parquet

        self.offsets = False
        schema, batches = iter_parquet(self.path, _canonical_row, BATCH)
        self.metadata = {
            "schema": schema,
            "schema_sha256": hashlib.sha256(rfc8785.dumps(schema)).hexdigest(),
        }
        row = 0
        for records in batches:
            yield records, list(range(row, row + len(records)))
            row += len(records)
        sha = hashlib.sha256()
        with self.path.open("rb") as f:
            while chunk := f.read(_READ):
                sha.update(chunk)
                self.data_size += len(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
        self.data_sha256 = sha.hexdigest()

    def _csv(self, f: BinaryIO) -> Iterator[tuple[list[bytes], list[int]]]:
        path, skip = self.path, self.skip_lines
        meta: dict[str, Any] = {"delimiter": delimiter_of(path), "header_row": self.header_row}
        meta["skip_lines"] = skip
        self.metadata = meta
        lines = _PhysicalLines(f)
        if skip:
            skipped = hashlib.sha256()
            for done in range(skip):
                line = lines.next_raw()
                if line is None:
                    raise InvalidInput(
                        f"{path}: cannot skip {skip} lines, the file has {done}",
                        hint="lower --skip-lines",
                    )
                skipped.update(line)
            meta["skipped_sha256"] = skipped.hexdigest()
        first = skip + 1
        text = lines.decoded(path, first)
        reader = csv.reader(text, delimiter=meta["delimiter"], strict=True)
        width = -1
        out: list[bytes] = []
        starts: list[int] = []
        start, line_no = lines.pos, first
        dumps = row_encoder()
        try:
            for row in reader:
                if row:
                    if width < 0:
                        width = len(row)
                        if self.header_row:
                            meta["header"] = row
                            digest = hashlib.sha256(rfc8785.dumps(row))
                            meta["header_sha256"] = digest.hexdigest()
                            start, line_no = lines.pos, reader.line_num + first
                            continue
                    if len(row) != width:
                        what = "the header has" if self.header_row else "the first row has"
                        raise FormatError(
                            f"{path}: line {line_no}: ragged row with {len(row)} fields, "
                            f"{what} {width}",
                            hint="a first line that is not a header row? "
                            "try --skip-lines N or --no-header",
                        )
                    out.append(dumps(row))
                    starts.append(start)
                    if len(out) >= BATCH:
                        yield out, starts
                        out, starts = [], []
                start, line_no = lines.pos, reader.line_num + first
        except csv.Error as exc:
            raise FormatError(f"{_where(path, line_no)}: malformed CSV: {exc}") from None
        if self.header_row and width < 0:
            raise InvalidInput(f"{path}: the CSV file has no header row")
        if out:
            yield out, starts


def row_encoder() -> Callable[[list[str]], bytes]:
    """``csv-row-jcs-v1`` of a row of strings, fast. For a list of strings RFC 8785 is plain
    JSON without spaces: UTF-8 unescaped; quote, backslash and control characters escaped
    (``\\b \\f \\n \\r \\t``, else ``\\u00xx`` in lowercase). orjson and the stdlib's
    ``ensure_ascii=False`` write exactly that (a property test holds them to
    ``rfc8785.dumps``); orjson is about 16x faster than ``rfc8785.dumps`` here."""
    try:
        import orjson
    except ImportError:
        encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
        return lambda row: encoder.encode(row).encode("utf-8")
    dumps = orjson.dumps

    def encode(row: list[str]) -> bytes:
        # a copy of exact size: orjson's own result holds a 4 KiB buffer, 100x the record
        encoded: bytes = dumps(row)
        return encoded[:-1] + b"]"

    return encode


class _PhysicalLines:
    """Physical lines of a binary file, ended by ``\\n``, ``\\r\\n`` or ``\\r`` (kept), and
    the byte offset just past the last line handed out (``pos``)."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._it = iter(lines)
        self._pending: deque[bytes] = deque()
        self.pos = 0

    def next_raw(self) -> bytes | None:
        if not self._pending:
            line = next(self._it, None)
            if line is None:
                return None
            cr = line.find(b"\r")
            if cr < 0 or (cr == len(line) - 2 and line[-1:] == b"\n"):
                self.pos += len(line)
                return line
            self._pending.extend(_split_cr(line))
        line = self._pending.popleft()
        self.pos += len(line)
        return line

    def decoded(self, path: Path, first: int) -> Iterator[str]:
        """The remaining lines as text, the first being line ``first`` of the file; a byte-order
        mark is dropped from line 1 only. Invalid UTF-8 names its line."""
        bom = first == 1
        number = first - 1
        while (line := self.next_raw()) is not None:
            number += 1
            try:
                if bom and number == 1:
                    yield line.decode("utf-8-sig")
                else:
                    yield line.decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"{_where(path, number)}: invalid UTF-8") from None


def _split_cr(line: bytes) -> list[bytes]:
    """``line`` (at most one ``\\n``, at its end) split after every ``\\r`` that no ``\\n``
    follows."""
    parts = line.split(b"\r")
    out = [p + b"\r" for p in parts[:-1]]
    last = parts[-1]
    if last == b"\n":
        out[-1] += b"\n"
    elif last:
        out.append(last)
    return out


def _jsonl_batches(
    f: BinaryIO, leaf_encoding: str, path: Path
) -> Iterator[tuple[list[bytes], list[int]]]:
    loads = _json_validator()
    pos, number = 0, 0
    while lines := f.readlines(_READ):
        starts = list(accumulate(map(len, lines), initial=pos))
        pos = starts.pop()
        stripped = [ln[:-1] if ln[-1:] == b"\n" else ln for ln in lines]
        stripped = [ln[:-1] if ln[-1:] == b"\r" else ln for ln in stripped]
        if all(stripped):
            records, rec_starts = stripped, starts
        else:
            keep = [i for i, ln in enumerate(stripped) if ln]
            records = [stripped[i] for i in keep]
            rec_starts = [starts[i] for i in keep]
        try:
            deque(map(loads, records), 0)
        except ValueError:
            for k, line in enumerate(stripped, number + 1):
                try:
                    if line:
                        loads(line)
                except ValueError:
                    raise _line_error(line, k, path) from None
            raise
        if leaf_encoding == JSONL_JCS:
            encoded: list[bytes] = []
            for k, line in enumerate(stripped, number + 1):
                if line:
                    try:
                        encoded.append(rfc8785.dumps(json.loads(line)))
                    except rfc8785.CanonicalizationError as exc:
                        raise FormatError(f"{_where(path, k)}: not canonical JSON: {exc}") from None
            records = encoded
        number += len(lines)
        if records:
            yield records, rec_starts


def open_records(
    path: Path,
    fmt: str,
    leaf_encoding: str,
    *,
    skip_lines: int = 0,
    header_row: bool = True,
    progress: Progress | None = None,
) -> RecordStream:
    """A stream over the records of the dataset at ``path`` (checks as ``read_records``)."""
    check_reading(path, fmt, leaf_encoding, skip_lines, header_row)
    if fmt != "files" and path.is_dir():
        raise InvalidInput(f"{path} is a directory, not a {fmt} file", hint="use --format files")
    return RecordStream(path, fmt, leaf_encoding, skip_lines, header_row, progress)


def record_at(
    path: Path, fmt: str, leaf_encoding: str, metadata: dict[str, Any], start: int, end: int
) -> bytes:
    """Re-read one record: CSV and JSONL from the bytes ``[start, end)`` of the file where it
    starts (the next record, or the end of the file, ends it); Parquet by its row number
    ``start``. The caller checks the result against the stored leaf."""
    if fmt == "parquet":
        from ailedger.fingerprint._parquet import parquet_row

        return parquet_row(path, start, _canonical_row)
    with path.open("rb") as f:
        f.seek(start)
        data = f.read(max(0, end - start))
    if fmt == "jsonl":
        for line in data.split(b"\n"):
            line = line[:-1] if line[-1:] == b"\r" else line
            if line:
                if leaf_encoding == JSONL_LINE:
                    return line
                return rfc8785.dumps(json.loads(line))
        raise FormatError(f"{path}: no record at byte {start}")
    if fmt == "csv":
        text = _PhysicalLines(io.BytesIO(data)).decoded(path, 1 if start == 0 else 2)
        delimiter = metadata.get("delimiter") or delimiter_of(path)
        try:
            for row in csv.reader(text, delimiter=delimiter, strict=True):
                if row:
                    return rfc8785.dumps(row)
        except csv.Error as exc:
            raise FormatError(f"{path}: malformed CSV at byte {start}: {exc}") from None
        raise FormatError(f"{path}: no record at byte {start}")
    raise InvalidInput(f"format {fmt!r} has no stored record offsets")

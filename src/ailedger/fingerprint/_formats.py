"""Dataset readers: a file or directory -> encoded records (the leaf content before salting).

Leaf encodings (each names exactly how a record becomes bytes):

``jsonl-line-v1``
    The line's bytes as stored, without its ``\\n`` or ``\\r\\n`` terminator. Every line must
    be UTF-8 JSON; empty lines are skipped. Byte-exact and fast; a ``--record`` must then match
    byte for byte.
``jsonl-jcs-v1``
    The line's JSON value in RFC 8785 canonical form: independent of spacing and key order, so
    ``--record FILE`` finds a record however it was re-serialised. Slower (pure Python).
``csv-row-jcs-v1``
    A data row as the RFC 8785 JSON array of its field strings. The header row is not a leaf;
    it goes into the metadata (``header`` and ``header_sha256``). Empty lines are skipped.
    Two reading options change which rows are leaves, so the metadata records them:
    ``skip_lines`` (leading physical lines, ended by ``\n``, ``\r\n`` or ``\r``, dropped
    before the header; their exact bytes are bound by ``skipped_sha256``) and ``header_row``
    (``false``: every row is a record and ``header`` is absent). Like the header, skipped lines
    are not leaves: the root covers the records, the metadata (and ``data_sha256``) the rest.
``parquet-row-jcs-v1``
    A row as the RFC 8785 JSON object ``{column: value}``; bytes as base64, dates and times as
    ISO 8601 strings, decimals as strings, integers beyond 2**53 as decimal strings.
``file-sha256-path-v1``
    ``SHA-256(content) || relative POSIX path (UTF-8)``, one per regular file, in path order.
"""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import hashlib
import io
import json
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785

from ailedger.errors import FormatError, InvalidInput, NotFound

__all__ = [
    "CSV_ROW",
    "ENCODINGS",
    "FILE_ENTRY",
    "FORMATS",
    "JSONL_JCS",
    "JSONL_LINE",
    "PARQUET_ROW",
    "Records",
    "check_reading",
    "csv_options",
    "detect_format",
    "encode_record_file",
    "read_records",
]

JSONL_LINE = "jsonl-line-v1"
JSONL_JCS = "jsonl-jcs-v1"
CSV_ROW = "csv-row-jcs-v1"
PARQUET_ROW = "parquet-row-jcs-v1"
FILE_ENTRY = "file-sha256-path-v1"
#: format -> the leaf encodings it supports (the first is the default).
ENCODINGS: dict[str, tuple[str, ...]] = {
    "jsonl": (JSONL_LINE, JSONL_JCS),
    "csv": (CSV_ROW,),
    "parquet": (PARQUET_ROW,),
    "files": (FILE_ENTRY,),
}
FORMATS = tuple(ENCODINGS)
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_MAX_SAFE_INT = 2**53 - 1


@dataclass
class Records:
    """The encoded records of a dataset, in input order."""

    format: str
    leaf_encoding: str
    records: list[bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: SHA-256 of the file's bytes (of the per-file entries for a directory).
    data_sha256: str = ""


def detect_format(path: Path) -> str:
    """The dataset format of ``path``, from its type and extension."""
    if path.is_dir():
        return "files"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"cannot tell the dataset format of {path.name!r} from its extension",
            hint=f"pass --format ({'|'.join(FORMATS)})",
        )
    return fmt


def csv_options(metadata: dict[str, Any]) -> tuple[int, bool]:
    """``(skip_lines, header_row)`` as a CSV fingerprint's metadata records them (absent keys,
    from fingerprints made before the options existed, mean the defaults ``(0, True)``)."""
    skip = metadata.get("skip_lines", 0)
    header = metadata.get("header_row", True)
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        raise FormatError(f"metadata skip_lines is not a count: {skip!r}")
    if not isinstance(header, bool):
        raise FormatError(f"metadata header_row is not a boolean: {header!r}")
    return skip, header


def check_reading(
    path: Path, fmt: str, leaf_encoding: str, skip_lines: int, header_row: bool
) -> None:
    """Refuse a reading of ``path`` that cannot work: an encoding the format lacks, a negative
    ``skip_lines``, CSV options on another format, a missing path."""
    if leaf_encoding not in ENCODINGS.get(fmt, ()):
        raise InvalidInput(f"format {fmt!r} has no leaf encoding {leaf_encoding!r}")
    if skip_lines < 0:
        raise InvalidInput(f"cannot skip {skip_lines} lines")
    if fmt != "csv" and (skip_lines or not header_row):
        raise InvalidInput("--skip-lines and --no-header apply to CSV datasets only")
    if not path.exists():
        raise NotFound(f"dataset not found: {path}")


def read_records(
    path: Path, fmt: str, leaf_encoding: str, *, skip_lines: int = 0, header_row: bool = True
) -> Records:
    """Read and encode every record of the dataset at ``path``; ``skip_lines`` and
    ``header_row`` (CSV only) say where the header is and whether there is one."""
    check_reading(path, fmt, leaf_encoding, skip_lines, header_row)
    if fmt == "files":
        return _read_files(path)
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory, not a {fmt} file", hint="use --format files")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if fmt == "jsonl":
        return Records(fmt, leaf_encoding, _jsonl(data, leaf_encoding, path), {}, digest)
    if fmt == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        return Records(
            fmt, leaf_encoding, *_csv(data, path, delimiter, skip_lines, header_row), digest
        )
    from ailedger.fingerprint._parquet import read_parquet

    records, schema = read_parquet(path, _canonical_row)
    meta = {
        "schema": schema,
        "schema_sha256": hashlib.sha256(rfc8785.dumps(schema)).hexdigest(),
    }
    return Records(fmt, leaf_encoding, records, meta, digest)


# --- JSONL -------------------------------------------------------------------------------------


def _json_validator() -> Callable[[bytes], object]:
    try:
        import orjson
    except ImportError:  # the stdlib: same rules, about 8x slower
        return _stdlib_loads
    return orjson.loads


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} overflows a double")
    return value


def _stdlib_loads(line: bytes) -> object:
    return json.loads(
        line.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float
    )


def _where(path: Path | None, line: int) -> str:
    return f"{path}: line {line}" if path else f"line {line}"


def _line_error(line: bytes, number: int, path: Path | None) -> FormatError:
    where = _where(path, number)
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FormatError(f"{where}: invalid UTF-8 at byte {exc.start + 1}")
    try:
        _stdlib_loads(line)
    except ValueError as exc:
        return FormatError(f"{where}: invalid JSON: {exc}")
    try:
        _json_validator()(line)
    except ValueError as exc:
        return FormatError(f"{where}: invalid JSON: {exc}")
    raise AssertionError("unreachable: the line is valid")  # pragma: no cover


def _jsonl(data: bytes, leaf_encoding: str, path: Path | None) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if b"\r" in data:
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
    records = [ln for ln in lines if ln] if b"" in lines else lines
    loads = _json_validator()
    try:
        deque(map(loads, records), 0)  # validates UTF-8 and JSON at C speed
    except ValueError:
        for number, line in enumerate(lines, 1):
            try:
                if line:
                    loads(line)
            except ValueError:
                raise _line_error(line, number, path) from None
        raise
    if leaf_encoding == JSONL_LINE:
        return records
    out: list[bytes] = []
    for number, line in enumerate(lines, 1):
        if line:
            try:
                out.append(rfc8785.dumps(json.loads(line)))
            except rfc8785.CanonicalizationError as exc:
                raise FormatError(f"{_where(path, number)}: not canonical JSON: {exc}") from None
    return out


# --- CSV ---------------------------------------------------------------------------------------


def _decode_utf8(data: bytes, path: Path | None, first: int = 1) -> str:
    """UTF-8 text (a BOM dropped at the start of the file only); ``first``: the line number
    of the first line of ``data`` in its file, for messages."""
    try:
        return data.decode("utf-8-sig" if first == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + first
        raise FormatError(f"{_where(path, line)}: invalid UTF-8") from None


def _csv_rows(
    text: str, path: Path | None, delimiter: str, first: int = 1
) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = first
    try:
        for row in reader:
            if row:
                rows.append((start, row))
            start = reader.line_num + first
    except csv.Error as exc:
        raise FormatError(f"{_where(path, start)}: malformed CSV: {exc}") from None
    return rows


def _skip(data: bytes, count: int, path: Path) -> int:
    """Offset just past the first ``count`` physical lines (``\n``, ``\r\n`` or ``\r``)."""
    pos = 0
    for done in range(count):
        ends = [i for i in (data.find(b"\n", pos), data.find(b"\r", pos)) if i >= 0]
        if not ends:
            if pos < len(data):  # a last line without a terminator
                pos = len(data)
                continue
            raise InvalidInput(
                f"{path}: cannot skip {count} lines, the file has {done}",
                hint="lower --skip-lines",
            )
        end = min(ends)
        pos = end + (2 if data[end : end + 2] == b"\r\n" else 1)
    return pos


def _csv(
    data: bytes, path: Path, delimiter: str, skip_lines: int, header_row: bool
) -> tuple[list[bytes], dict[str, Any]]:
    meta: dict[str, Any] = {"delimiter": delimiter, "header_row": header_row}
    meta["skip_lines"] = skip_lines
    first = 1
    if skip_lines:
        offset = _skip(data, skip_lines, path)
        meta["skipped_sha256"] = hashlib.sha256(data[:offset]).hexdigest()
        first += skip_lines  # each skipped line had one terminator (or ended the file)
        data = data[offset:]
    rows = _csv_rows(_decode_utf8(data, path, first), path, delimiter, first)
    if header_row:
        if not rows:
            raise InvalidInput(f"{path}: the CSV file has no header row")
        header = rows[0][1]
        meta["header"] = header
        meta["header_sha256"] = hashlib.sha256(rfc8785.dumps(header)).hexdigest()
        rows = rows[1:]
    else:
        header = rows[0][1] if rows else []
    width = len(header)
    out: list[bytes] = []
    for line, row in rows:
        if len(row) != width:
            what = "the header has" if header_row else "the first row has"
            raise FormatError(
                f"{path}: line {line}: ragged row with {len(row)} fields, {what} {width}",
                hint="a first line that is not a header row? try --skip-lines N or --no-header",
            )
        out.append(rfc8785.dumps(row))
    return out, meta


# --- Parquet rows, directories ------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite float {value}")
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | datetime.timedelta):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    raise ValueError(f"unsupported value of type {type(value).__name__}")


def _canonical_row(row: dict[str, Any]) -> bytes:
    return rfc8785.dumps(_jsonable(row))


def _file_entry(path: Path, relpath: str) -> bytes:
    try:
        name = relpath.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(f"file name is not valid UTF-8: {relpath!r}") from None
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").digest()
    return digest + name


def _read_files(root: Path) -> Records:
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a directory", hint="pass --format for a single file")
    entries: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=_walk_error):
        base = Path(dirpath)
        for d in dirnames:
            if (base / d).is_symlink():
                raise FormatError(f"symlink to a directory is not supported: {base / d}")
        for name in filenames:
            p = base / name
            if not p.exists():
                raise NotFound(f"broken symlink in dataset: {p}")
            if not p.is_file():
                raise FormatError(f"not a regular file: {p}")
            entries.append((p.relative_to(root).as_posix(), p))
    entries.sort()
    records = [_file_entry(p, rel) for rel, p in entries]
    listing = hashlib.sha256()
    for r in records:
        listing.update(len(r).to_bytes(8, "big") + r)
    return Records("files", FILE_ENTRY, records, {"files": len(records)}, listing.hexdigest())


def _walk_error(exc: OSError) -> None:
    raise exc


# --- A single record from a file (prove --record, verify --record) ------------------------------


def encode_record_file(
    data: bytes, leaf_encoding: str, *, relpath: str | None = None, delimiter: str | None = None
) -> bytes:
    """Encode one record given as a file's bytes, as the dataset's ``leaf_encoding`` would.

    JSONL: one line (a trailing newline is ignored). CSV: the last non-empty row, so a file
    holding the header and one row works too. Parquet: a JSON object. Files: the content, named
    ``relpath``.
    """
    if leaf_encoding == FILE_ENTRY:
        if relpath is None:
            raise InvalidInput("a directory record needs its relative path")
        return hashlib.sha256(data).digest() + relpath.encode("utf-8")
    if leaf_encoding in (JSONL_LINE, JSONL_JCS):
        line = data[:-1] if data.endswith(b"\n") else data
        if b"\n" in line:
            raise InvalidInput("a JSONL record file must hold a single line")
        return _jsonl(line + b"\n", leaf_encoding, None)[0] if line.strip() else _empty()
    if leaf_encoding == CSV_ROW:
        text = _decode_utf8(data, None)
        rows = _csv_rows(text, None, delimiter or ",")  # the dataset's (a .tsv: a tab)
        if not rows:
            _empty()
        return rfc8785.dumps(rows[-1][1])
    if leaf_encoding == PARQUET_ROW:
        try:
            value = json.loads(_decode_utf8(data, None))
        except ValueError as exc:
            raise FormatError(f"record is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise InvalidInput("a Parquet record must be a JSON object {column: value}")
        return rfc8785.dumps(value)
    raise InvalidInput(f"unknown leaf encoding {leaf_encoding!r}")


def _empty() -> bytes:
    raise InvalidInput("the record file is empty")

"""The sidecar index of a fingerprinted dataset: what ``prove`` needs without re-hashing.

Layout (integers little-endian)::

    magic        8 bytes  b"AILDSIX1"
    header_len   u32
    header       RFC 8785 JSON: format, leaf_encoding, scheme, order, size, root,
                 data_sha256, secret_id (or null), metadata
    leaf hashes  size * 32 bytes, in tree order
    records      size * u64: the input record number at each tree position
    checksum     SHA-256 of everything above

A damaged file raises :class:`~ailedger.errors.IntegrityError`; a file that is whole but
describes other data (or another scheme) is the caller's to detect from the header.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rfc8785

from ailedger.errors import IntegrityError

__all__ = ["MAGIC", "read_index", "read_index_header", "write_index"]

MAGIC = b"AILDSIX1"
_HASH = 32


def _u64(values: Sequence[int]) -> bytes:
    arr = array("Q", values)
    if sys.byteorder != "little":  # pragma: no cover
        arr.byteswap()
    return arr.tobytes()


def write_index(
    path: Path, header: dict[str, Any], leaf_hashes: Sequence[bytes], record_numbers: Sequence[int]
) -> None:
    """Write the index atomically (a temporary file renamed over ``path``)."""
    head = rfc8785.dumps(header)
    body = b"".join(
        [MAGIC, len(head).to_bytes(4, "little"), head, b"".join(leaf_hashes), _u64(record_numbers)]
    )
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(body)
        f.write(hashlib.sha256(body).digest())
    os.replace(tmp, path)


def _parse_header(raw: bytes, path: Path) -> tuple[dict[str, Any], int]:
    if raw[:8] != MAGIC:
        raise IntegrityError(f"{path} is not an ailedger dataset index")
    if len(raw) < 12:
        raise IntegrityError(f"{path}: truncated dataset index")
    size = int.from_bytes(raw[8:12], "little")
    try:
        header = json.loads(raw[12 : 12 + size])
    except ValueError:
        raise IntegrityError(f"{path}: dataset index header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("size"), int):
        raise IntegrityError(f"{path}: dataset index header is malformed")
    return header, 12 + size


def read_index_header(path: Path) -> dict[str, Any]:
    """Only the header (cheap: reads the first few kilobytes)."""
    with path.open("rb") as f:
        start = f.read(12)
        if start[:8] != MAGIC or len(start) < 12:
            raise IntegrityError(f"{path} is not an ailedger dataset index")
        raw = start + f.read(int.from_bytes(start[8:12], "little"))
    return _parse_header(raw, path)[0]


def read_index(path: Path) -> tuple[dict[str, Any], list[bytes], array[int]]:
    """Header, leaf hashes (tree order) and record numbers; checks the checksum."""
    raw = path.read_bytes()
    if len(raw) < 44 or hashlib.sha256(raw[:-32]).digest() != raw[-32:]:
        raise IntegrityError(f"{path}: dataset index is damaged (checksum mismatch)")
    header, offset = _parse_header(raw, path)
    n = header["size"]
    if len(raw) != offset + n * (_HASH + 8) + 32:
        raise IntegrityError(f"{path}: dataset index length does not match its header")
    leaves_end = offset + n * _HASH
    leaves = [raw[i : i + _HASH] for i in range(offset, leaves_end, _HASH)]
    numbers = array("Q")
    numbers.frombytes(raw[leaves_end : leaves_end + 8 * n])
    if sys.byteorder != "little":  # pragma: no cover
        numbers.byteswap()
    return header, leaves, numbers

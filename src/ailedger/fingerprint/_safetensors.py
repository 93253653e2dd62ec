"""A strict parser of safetensors headers (no framework needed).

A safetensors file is ``u64 little-endian N || N bytes of JSON || data``. The JSON object maps
tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the
start of the data) plus an optional ``"__metadata__"`` object of strings. The tensors must tile
the data exactly: sorted by offset, each begins where the previous one ends, the last ends at
the end of the file, and each holds ``prod(shape) * bits(dtype) / 8`` bytes. Anything else
raises :class:`~ailedger.errors.FormatError` with one message naming the file and the problem,
mirroring the checks of the reference implementation (``safetensors`` 0.6+).
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from ailedger.errors import FormatError

__all__ = [
    "DTYPE_BITS",
    "MAX_HEADER_SIZE",
    "SafetensorsHeader",
    "TensorInfo",
    "parse_header",
    "read_header",
]

#: Bits per element of every dtype the reference implementation knows.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
#: The reference implementation refuses headers larger than this.
MAX_HEADER_SIZE = 100_000_000
_KEYS = frozenset({"dtype", "shape", "data_offsets"})


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: ``begin``/``end`` are absolute byte offsets in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed header; ``tensors`` are in file (offset) order."""

    header_size: int
    data_start: int
    file_size: int
    metadata: dict[str, str]
    tensors: tuple[TensorInfo, ...]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _uint(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, entry: object, where: str) -> tuple[str, str, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != _KEYS:
        raise FormatError(f"{where}: tensor {name!r} must have exactly dtype, shape, data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise FormatError(f"{where}: tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_uint(d) for d in shape):
        raise FormatError(f"{where}: tensor {name!r} shape must be a list of non-negative ints")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_uint(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise FormatError(f"{where}: tensor {name!r} data_offsets must be [begin, end], begin<=end")
    return name, dtype, tuple(shape), offsets[0], offsets[1]


def parse_header(
    prefix: bytes, file_size: int, where: str = "safetensors file"
) -> SafetensorsHeader:
    """Parse and validate a header from ``prefix`` (the first ``8 + N`` bytes, or more) of a
    file of ``file_size`` bytes. ``where`` names the file in error messages."""
    if file_size < 8 or len(prefix) < 8:
        raise FormatError(f"{where}: truncated (shorter than the 8-byte header length)")
    (size,) = struct.unpack("<Q", prefix[:8])
    if size > MAX_HEADER_SIZE:
        raise FormatError(f"{where}: header length {size} exceeds the {MAX_HEADER_SIZE} limit")
    if 8 + size > file_size:
        raise FormatError(
            f"{where}: header length {size} reaches beyond the end of the {file_size}-byte file"
        )
    if len(prefix) < 8 + size:
        raise FormatError(f"{where}: truncated inside the header")
    raw = prefix[8 : 8 + size]
    if not raw.startswith(b"{"):
        raise FormatError(f"{where}: header is not a JSON object")
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except FormatError as exc:
        raise FormatError(f"{where}: header has a {exc.message}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{where}: header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{where}: header is not a JSON object")
    metadata = doc.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{where}: __metadata__ must map strings to strings")
    data_start = 8 + size
    data_size = file_size - data_start
    entries = sorted((_tensor(n, e, where) for n, e in doc.items()), key=lambda t: (t[3], t[4]))
    tensors: list[TensorInfo] = []
    position = 0
    for name, dtype, shape, begin, end in entries:
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a gap"
            raise FormatError(f"{where}: tensor {name!r} at offset {begin} {problem}")
        if end > data_size:
            raise FormatError(
                f"{where}: tensor {name!r} ends at {end}, beyond the {data_size} data bytes"
            )
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != end - begin:
            raise FormatError(
                f"{where}: tensor {name!r} is {dtype}{list(shape)} ({bits / 8:g} bytes) "
                f"but its data_offsets span {end - begin} bytes"
            )
        tensors.append(TensorInfo(name, dtype, shape, data_start + begin, data_start + end))
        position = end
    if position != data_size:
        raise FormatError(
            f"{where}: tensors cover {position} of the {data_size} data bytes "
            "(the data does not match the header)"
        )
    return SafetensorsHeader(size, data_start, file_size, metadata, tuple(tensors))


def read_header(f: BinaryIO, where: str = "safetensors file") -> SafetensorsHeader:
    """Read and validate the header of an open safetensors file."""
    file_size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(8)
    if len(head) == 8:
        (size,) = struct.unpack("<Q", head)
        if size <= MAX_HEADER_SIZE and 8 + size <= file_size:
            head += f.read(size)
    return parse_header(head, file_size, where)

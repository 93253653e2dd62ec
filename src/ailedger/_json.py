"""Parsing JSON documents that may be hostile: bounded in size and nesting before parsing.

A document nested 100,000 levels deep made the process die (exit 139): py_ecc, which
eth-account imports, raises Python's recursion limit to 100,000, and the JSON decoder then
overflows the C stack before it reaches that limit. Every document a user or a peer hands
us (proofs, statements, envelopes, receipts, keystores, bundles, request bodies) goes through
:func:`loads`, which refuses one that is larger than ``max_bytes`` or nested deeper than
``max_depth`` with one :class:`~ailedger.errors.FormatError`, and turns any other decoding
failure into the same error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ailedger.errors import FormatError

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "check_bounds", "loads"]

#: The deepest nesting any ailedger document has is under 10; 64 leaves room for foreign ones.
MAX_DEPTH = 64
#: 64 MiB: far above any proof, statement or receipt (a proof of 2^64 leaves is 2 KiB).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")


def check_bounds(
    data: bytes,
    *,
    what: str,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> None:
    """Raise :class:`FormatError` if ``data`` is over ``max_bytes`` or nests arrays and
    objects deeper than ``max_depth`` (brackets inside strings do not count)."""
    if len(data) > max_bytes:
        raise FormatError(f"{what} is {len(data)} bytes, over the {max_bytes}-byte limit")
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # cannot nest deeper than it has brackets
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token[0] in _OPEN:
            depth += 1
            if depth > max_depth:
                raise FormatError(f"{what} nests deeper than {max_depth} levels")
        else:
            depth -= 1


def loads(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """``json.loads`` for documents from outside, within size and nesting bounds."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    check_bounds(raw, what=what, max_bytes=max_bytes, max_depth=max_depth)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{what} is not valid JSON (truncated?): {exc}") from None
    except RecursionError:  # unreachable after check_bounds; kept so it can never crash
        raise FormatError(f"{what} nests too deeply") from None

"""Strict readers for the fields of proof documents (shared by :mod:`ailedger.fingerprint.proofs`).

Every reader raises :class:`~ailedger.errors.FormatError` with the field's name. Hex is
lower-case without ``0x`` (one spelling per value, so any changed byte is a change), objects
carry only the keys they are allowed to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ailedger import merkle
from ailedger.errors import FormatError
from ailedger.merkle import InclusionProof

__all__ = [
    "check_type",
    "hex_bytes",
    "inclusion",
    "mapping",
    "only_keys",
    "strict_hex_fields",
    "string",
    "uint",
]

_INCLUSION_KEYS = {"type", "algorithm", "tree_size", "leaf_index", "leaf_hash", "hashes", "root"}


def inclusion(value: Any, *, strict_keys: bool = False) -> InclusionProof:
    """An RFC 9162 inclusion proof object; ``strict_keys`` rejects unknown fields."""
    d = mapping(value, "inclusion")
    if strict_keys:
        only_keys(d, _INCLUSION_KEYS)
    strict_hex_fields(d, ("leaf_hash", "root"), "hashes")
    return InclusionProof.from_dict(d)


def strict_hex_fields(d: Mapping[str, Any], keys: tuple[str, ...], list_key: str) -> None:
    values = [d.get(k) for k in keys]
    hashes = d.get(list_key)
    values += hashes if isinstance(hashes, list) else []
    for v in values:
        if isinstance(v, str) and v != v.lower().removeprefix("0x"):
            raise FormatError("proof hashes must be lower-case hex without 0x")


def only_keys(doc: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise FormatError(f"proof has unknown field(s): {', '.join(map(repr, unknown))}")


def check_type(doc: Mapping[str, Any], expected: str) -> None:
    if doc.get("type") != expected:
        raise FormatError(f"not a proof of type {expected} (type={doc.get('type')!r})")


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FormatError(f"proof field {what!r} must be an object")
    return value


def string(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise FormatError(f"proof field {key!r} must be a string")
    return value


def uint(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"proof field {key!r} must be a non-negative integer")
    return value


def hex_bytes(d: Mapping[str, Any], key: str, size: int = merkle.HASH_SIZE) -> bytes:
    value = string(d, key)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise FormatError(f"proof field {key!r} is not hex") from None
    if len(raw) != size or raw.hex() != value:
        raise FormatError(f"proof field {key!r} must be {size} bytes of lower-case hex")
    return raw

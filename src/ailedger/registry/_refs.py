"""Parsers shared by the registry commands: ``name@version``, times, digests, ``k=v``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ailedger.errors import InvalidInput, NotFound
from ailedger.log.receipt import sha256_file

__all__ = ["VersionRef", "parse_digest_or_file", "parse_param", "parse_time"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_DIGEST = re.compile(r"(sha256|sha384|sha512|blake3):([0-9a-fA-F]+)")
_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128, "blake3": 64}


@dataclass(frozen=True, order=True)
class VersionRef:
    """``name@version`` of a registered dataset or model."""

    name: str
    version: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InvalidInput(
                f"not a name: {self.name!r} (letters, digits and . _ / -, starting with a "
                "letter or digit)"
            )
        if not _VERSION.fullmatch(self.version):
            raise InvalidInput(
                f"not a version: {self.version!r} (letters, digits and . _ + -, starting with a "
                "letter or digit)"
            )

    @classmethod
    def parse(cls, text: str) -> VersionRef:
        """``NAME@VERSION``; :class:`InvalidInput` otherwise."""
        name, sep, version = text.rpartition("@")
        if not sep or not name or not version:
            raise InvalidInput(f"not a reference: {text!r} (expected NAME@VERSION)")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def parse_time(text: str) -> datetime:
    """An RFC 3339 / ISO 8601 time with a time zone (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"not a time: {text!r} (expected RFC 3339, e.g. 2026-11-25T10:42:00Z)"
        ) from None
    if value.tzinfo is None:
        raise InvalidInput(f"the time {text!r} has no time zone (add Z or +HH:MM)")
    return value


def parse_digest_or_file(spec: str, base: Path | None = None) -> str:
    """``ALG:HEX`` as given (lower-cased), else the ``sha256:HEX`` of the file ``spec``."""
    match = _DIGEST.fullmatch(spec.strip())
    if match:
        alg, hexpart = match.group(1), match.group(2).lower()
        if len(hexpart) != _HEX_LEN[alg]:
            raise InvalidInput(f"{alg} digest must be {_HEX_LEN[alg]} hex characters: {spec!r}")
        return f"{alg}:{hexpart}"
    path = Path(spec)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise NotFound(f"{spec!r} is neither a file nor a digest like sha256:<64 hex>")
    return f"sha256:{sha256_file(path)}"


def parse_param(item: str) -> tuple[str, Any]:
    """``KEY=VALUE``; a value that parses as JSON is taken as JSON, else as a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--param {item!r}: expected KEY=VALUE")
    try:
        value: Any = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        value = raw
    return key.strip(), value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity stay strings

"""A tiny TOML writer for ailedger's own config files (reading uses :mod:`tomllib`).

It writes what the config needs and nothing more: top-level scalars, then one ``[table]``
per nested mapping (nested again as ``[a.b]``). Values are strings, booleans, integers,
finite floats and lists of those. Anything else raises :class:`TypeError`, so a config that
cannot round-trip through :func:`tomllib.loads` is never written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"TOML keys must be strings, not {type(name).__name__}")
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TypeError("TOML strings must be valid Unicode (no lone surrogates)") from None
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("TOML config values must be finite numbers")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _table(lines: list[str], prefix: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    if prefix and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars)
    for name, sub in tables:
        _table(lines, (*prefix, name), sub)


def dumps(document: Mapping[str, Any]) -> str:
    """Return ``document`` as TOML text (ending in a newline)."""
    lines: list[str] = []
    _table(lines, (), document)
    return "\n".join(lines) + "\n"

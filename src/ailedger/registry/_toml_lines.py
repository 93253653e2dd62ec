"""Where each key of a TOML document is defined: ``("env", "prod", "approvals")`` -> line.

:mod:`tomllib` returns plain dicts without positions, so policy errors would have no line
numbers. :func:`key_lines` scans the text once (after :mod:`tomllib` has accepted it) and
records the first line of every table header (``[a.b]``, ``[[a.b]]``) and every key
assignment (``k = ``, dotted ``a.b = ``, quoted ``"k" = ``), skipping comments, strings
(including multi-line ones) and multi-line arrays, and the keys of inline tables.
:func:`line_of` falls back to the nearest enclosing key that was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["key_lines", "line_of"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")

KeyPath = tuple[str, ...]


class _Scanner:
    def __init__(self) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.table: KeyPath = ()
        self.depth = 0  # open [ and { across lines
        self.inline: list[KeyPath] = []  # key path of each open { (inline table)
        self.pending: KeyPath = ()  # path of the key whose value is being scanned
        self.multiline: str | None = None  # the open ''' or """

    def record(self, path: KeyPath, line: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def scan_line(self, text: str, line: int) -> None:
        pos = 0
        if self.multiline is not None:
            pos = self._close_multiline(text, 0)
            if pos < 0:
                return
        elif self.depth == 0:
            pos = self._statement(text, line)
            if pos < 0:
                return
        self._value(text, pos, line)

    def _statement(self, text: str, line: int) -> int:
        stripped = text.lstrip()
        pos = len(text) - len(stripped)
        if not stripped or stripped.startswith("#"):
            return -1
        if stripped.startswith("["):
            double = stripped.startswith("[[")
            parts, end = _key_path(text, pos + (2 if double else 1))
            self.table = parts
            self.record(parts, line)
            close = text.find("]]" if double else "]", end)
            return close + (2 if double else 1) if close >= 0 else -1
        parts, end = _key_path(text, pos)
        self.pending = self.table + parts
        self.record(self.pending, line)
        equals = text.find("=", end)
        return equals + 1 if equals >= 0 else -1

    def _close_multiline(self, text: str, pos: int) -> int:
        delim = self.multiline
        assert delim is not None
        while pos < len(text):
            if delim == '"""' and text[pos] == "\\":
                pos += 2
                continue
            if text.startswith(delim, pos):
                # a closing delimiter may be followed by up to two more quotes
                end = pos + 3
                while end < len(text) and text[end] == delim[0] and end < pos + 5:
                    end += 1
                self.multiline = None
                return end
            pos += 1
        return -1

    def _value(self, text: str, pos: int, line: int) -> None:
        while pos < len(text):
            ch = text[pos]
            if ch == "#":
                return
            if ch in "\"'":
                if text.startswith(ch * 3, pos):
                    self.multiline = ch * 3
                    pos = self._close_multiline(text, pos + 3)
                    if pos < 0:
                        return
                    continue
                pos = _skip_string(text, pos)
                continue
            if ch == "{":
                self.inline.append(self.pending)
                self.depth += 1
                key_start = _skip_space(text, pos + 1)
                pos = self._inline_key(text, key_start, line)
                continue
            if ch == "[":
                self.depth += 1
            elif ch in "]}":
                self.depth -= 1
                if ch == "}" and self.inline:
                    self.inline.pop()
            elif ch == "," and self.inline and self._in_inline_table(text, pos):
                pos = self._inline_key(text, _skip_space(text, pos + 1), line)
                continue
            pos += 1

    def _in_inline_table(self, text: str, pos: int) -> bool:
        # a comma belongs to the innermost open bracket; find whether that is a { or a [
        depth = 0
        for ch in reversed(text[:pos]):
            if ch in "]}":
                depth += 1
            elif ch in "[{":
                if depth == 0:
                    return ch == "{"
                depth -= 1
        return True

    def _inline_key(self, text: str, pos: int, line: int) -> int:
        if pos >= len(text) or text[pos] == "}":
            return pos
        parts, end = _key_path(text, pos)
        if not parts:
            return pos
        self.pending = self.inline[-1] + parts
        self.record(self.pending, line)
        equals = text.find("=", end)
        return equals + 1 if equals >= 0 else len(text)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _skip_string(text: str, pos: int) -> int:
    quote, pos = text[pos], pos + 1
    while pos < len(text):
        if quote == '"' and text[pos] == "\\":
            pos += 2
            continue
        if text[pos] == quote:
            return pos + 1
        pos += 1
    return pos


def _unquote(raw: str) -> str:
    if raw[0] == "'":
        return raw[1:-1]
    try:
        value = json.loads(raw)  # TOML basic-string escapes are JSON's plus \U and \e
    except json.JSONDecodeError:
        return raw[1:-1]
    return value if isinstance(value, str) else raw[1:-1]


def _key_path(text: str, pos: int) -> tuple[KeyPath, int]:
    """The dotted key starting at ``pos`` and the position after it."""
    parts: list[str] = []
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            break
        if text[pos] in "\"'":
            end = _skip_string(text, pos)
            raw = text[pos:end]
            parts.append(_unquote(raw))
            pos = end
        else:
            match = _BARE.match(text, pos)
            if match is None:
                break
            parts.append(match.group())
            pos = match.end()
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ".":
            pos += 1
            continue
        break
    return tuple(parts), pos


def key_lines(text: str) -> dict[KeyPath, int]:
    """Line (1-based) of the first definition of every key path in a valid TOML document."""
    scanner = _Scanner()
    # TOML lines end in LF or CRLF only (str.splitlines would also split on U+2028 etc.)
    for number, line in enumerate(text.split("\n"), start=1):
        scanner.scan_line(line.removesuffix("\r"), number)
    return scanner.lines


def line_of(lines: dict[KeyPath, int], path: Sequence[str]) -> int | None:
    """The line of ``path``, or of its nearest enclosing key that has one."""
    key = tuple(path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None

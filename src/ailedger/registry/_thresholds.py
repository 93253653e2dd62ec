"""Threshold expressions (``accuracy >= 0.9``) and durations (``30d``, ``1h30m``).

Both are parsed by small regular grammars, never by ``eval``::

    threshold  = metric ws* comparator ws* number
    metric     = [A-Za-z_][A-Za-z0-9_.:/-]*
    comparator = ">=" | "<=" | "==" | ">" | "<"
    number     = [+-]? (digits ["." digits*] | "." digits) [("e"|"E") [+-]? digits]
    duration   = (digits unit)+        units in descending order, each once: w d h m s

Anything else raises :class:`InvalidInput` naming the text and the expected form.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from ailedger.errors import InvalidInput

__all__ = [
    "COMPARATORS",
    "Comparator",
    "Threshold",
    "format_duration",
    "parse_duration",
    "parse_threshold",
]

Comparator = Literal[">=", ">", "<=", "<", "=="]

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

_METRIC = r"[A-Za-z_][A-Za-z0-9_.:/-]*"
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_THRESHOLD = re.compile(rf"({_METRIC})[ \t]*(>=|<=|==|>|<)[ \t]*({_NUMBER})")
_METRIC_RE = re.compile(_METRIC)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
#: Longest duration accepted: 100 years is far beyond any sensible maximum age.
_MAX_SECONDS = 100 * 366 * 86400


@dataclass(frozen=True)
class Threshold:
    """``metric comparator value``; :meth:`holds` applies it to a measured value."""

    metric: str
    comparator: Comparator
    value: float

    def __post_init__(self) -> None:
        if not _METRIC_RE.fullmatch(self.metric):
            raise InvalidInput(f"not a metric name: {self.metric!r}")
        if self.comparator not in COMPARATORS:
            raise InvalidInput(f"not a comparator: {self.comparator!r}")
        if not math.isfinite(self.value):
            raise InvalidInput(f"threshold for {self.metric} must be a finite number")

    def holds(self, measured: float) -> bool:
        return math.isfinite(measured) and COMPARATORS[self.comparator](measured, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.comparator} {self.value!r}"


def parse_threshold(text: str) -> Threshold:
    """``"accuracy>=0.9"`` or ``"accuracy >= 0.9"`` -> :class:`Threshold`."""
    if not isinstance(text, str):
        raise InvalidInput(f"a threshold must be a string like 'accuracy >= 0.9', not {text!r}")
    match = _THRESHOLD.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            f"not a threshold: {text!r}",
            hint="write METRIC OP NUMBER with OP one of >=, >, <=, <, ==, e.g. 'accuracy >= 0.9'",
        )
    metric, comparator, number = match.groups()
    value = float(number)
    if not math.isfinite(value):
        raise InvalidInput(f"threshold {text!r}: {number} is out of range")
    comp: Comparator = comparator  # type: ignore[assignment]  # the regex admits only these
    return Threshold(metric, comp, value)


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"1w2d"``, ``"1h30m"`` -> :class:`timedelta` (> 0)."""
    if not isinstance(text, str):
        raise InvalidInput(f"a duration must be a string like '30d', not {text!r}")
    match = _DURATION.fullmatch(text.strip())
    if match is None or not text.strip():
        raise InvalidInput(
            f"not a duration: {text!r}",
            hint="write a number and a unit (w, d, h, m, s), e.g. '30d', '12h', '1h30m'",
        )
    seconds = sum(
        int(amount) * size
        for amount, size in zip(match.groups(), _UNITS.values(), strict=True)
        if amount is not None
    )
    if seconds <= 0:
        raise InvalidInput(f"duration {text!r} must be longer than zero")
    if seconds > _MAX_SECONDS:
        raise InvalidInput(f"duration {text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The canonical text of a whole-second duration: ``timedelta(minutes=90)`` -> ``"1h30m"``."""
    total = value.total_seconds()
    if total <= 0 or total != int(total):
        raise InvalidInput(f"cannot write {value} as a duration: need whole seconds > 0")
    rest, parts = int(total), []
    for unit, size in _UNITS.items():
        if unit == "w":  # "30d" reads better than "4w2d"
            continue
        amount, rest = divmod(rest, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)

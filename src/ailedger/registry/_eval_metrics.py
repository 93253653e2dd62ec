"""Metrics from an evaluation's output: a JSON object (stdout's last line or a file) or a
JUnit XML report (pytest ``--junitxml``).

JSON: numbers become metrics; nested objects flatten to dotted names (``per_class.cat``);
booleans become 1.0 / 0.0; an integer ``sample_size`` is taken as the sample size; strings,
lists and nulls are ignored. NaN and Infinity are refused.

JUnit: ``tests``, ``failures``, ``errors``, ``skipped``, ``passed`` and ``pass_rate``
(passed / (tests - skipped)), summed over the report's test suites; sample size = tests.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger import _json
from ailedger.errors import FormatError, NotFound

__all__ = ["Metrics", "metrics_from_json", "metrics_from_junit", "metrics_from_stdout"]


@dataclass(frozen=True)
class Metrics:
    values: dict[str, float]
    sample_size: int | None
    source: str


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _flatten(prefix: str, node: Any, out: dict[str, float]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)
    elif isinstance(node, bool):
        out[prefix] = 1.0 if node else 0.0
    elif isinstance(node, int | float):
        value = float(node)
        if not math.isfinite(value):
            raise FormatError(f"metric {prefix!r} is not a finite number")
        out[prefix] = value


def metrics_from_json(text: str, source: str) -> Metrics:
    """Metrics from the text of one JSON object; :class:`FormatError` if it is not one."""
    _json.check_bounds(text.encode("utf-8", "surrogatepass"), what=source)
    try:
        doc = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise FormatError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{source} is JSON but not an object of metrics")
    sample = doc.get("sample_size")
    sample_size = sample if isinstance(sample, int) and not isinstance(sample, bool) else None
    if sample_size is not None:
        if sample_size < 0:
            raise FormatError(f"{source}: sample_size must not be negative")
        doc = {k: v for k, v in doc.items() if k != "sample_size"}
    values: dict[str, float] = {}
    _flatten("", doc, values)
    return Metrics(values, sample_size, source)


def metrics_from_stdout(stdout: str) -> Metrics:
    """Metrics from the last non-empty line of ``stdout``, which must be a JSON object."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise FormatError("the command printed nothing on stdout (expected a JSON object)")
    last = lines[-1].strip()
    if not last.startswith("{"):
        shown = last if len(last) <= 80 else last[:77] + "..."
        raise FormatError(f"the last line of stdout is not a JSON object: {shown!r}")
    return metrics_from_json(last, "the last line of stdout")


def _count(suite: ET.Element, attr: str, child: str | None) -> int:
    raw = suite.get(attr)
    if raw is not None:
        try:
            return int(float(raw))
        except ValueError:
            raise FormatError(f"JUnit XML: {attr}={raw!r} is not a number") from None
    cases = suite.iter("testcase")
    if child is None:
        return sum(1 for _ in cases)
    return sum(1 for case in cases if case.find(child) is not None)


def metrics_from_junit(path: Path) -> Metrics:
    """Test counts and pass rate from a JUnit XML report (as pytest ``--junitxml`` writes)."""
    try:
        # expat refuses external entities and (since 2.4.1) entity-expansion bombs
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise NotFound(f"no JUnit XML report at {path}") from None
    except ET.ParseError as exc:
        raise FormatError(f"{path} is not valid JUnit XML: {exc}") from None
    if root.tag == "testsuite":
        suites = [root]
    elif root.tag == "testsuites":
        suites = [s for s in root if s.tag == "testsuite"]
    else:
        raise FormatError(f"{path}: root element <{root.tag}> is not <testsuites>/<testsuite>")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        totals["tests"] += _count(suite, "tests", None)
        totals["failures"] += _count(suite, "failures", "failure")
        totals["errors"] += _count(suite, "errors", "error")
        totals["skipped"] += _count(suite, "skipped", "skipped")
    passed = totals["tests"] - totals["failures"] - totals["errors"] - totals["skipped"]
    values = {k: float(v) for k, v in totals.items()} | {"passed": float(passed)}
    ran = totals["tests"] - totals["skipped"]
    if ran > 0:
        values["pass_rate"] = passed / ran
    return Metrics(values, totals["tests"], f"JUnit XML {path.name}")

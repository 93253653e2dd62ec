"""Run an evaluation command and turn its outcome into an evaluation record.

::

    result = run_evaluation(
        [sys.executable, "-m", "pytest", "tests/"], name="unit-tests", timeout=600
    )
    result.passed, result.metrics, result.checks, result.problems
    result.to_predicates()        # EvaluationPredicate(s) to sign, one per threshold

The command is an argv list run without a shell, with stdin closed, in its own process
group (killed as a whole on timeout). Metrics come from, in this order: a ``metrics_file``
the command writes (JSON), a JUnit XML report (``--junitxml PATH`` in the command, or added
automatically to a pytest command), else the last non-empty stdout line (a JSON object).
A pytest run with no thresholds is held to ``pass_rate >= 1.0``.

The run passes only if the command started, finished in time, exited 0, reported metrics
and met every threshold. Otherwise ``status`` says which (``not-started``, ``timeout``,
``failed``, ``no-metrics``) and ``problems`` says why, one line each; the result (exit
code, output, metrics so far) is kept either way, to be recorded as a failure.
:func:`record_evaluation` builds the same result for metrics computed elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ailedger.attest.predicates import EvaluationPredicate
from ailedger.errors import AiledgerError, InvalidInput
from ailedger.registry._eval_metrics import (
    Metrics,
    metrics_from_json,
    metrics_from_junit,
    metrics_from_stdout,
)
from ailedger.registry._eval_process import (
    execute,
    exit_problem,
    file_stat,
    is_pytest,
    junit_in_argv,
)
from ailedger.registry._thresholds import Threshold, parse_threshold

__all__ = [
    "PYTEST_DEFAULT_THRESHOLD",
    "EvaluationResult",
    "Status",
    "Threshold",
    "ThresholdCheck",
    "parse_threshold",
    "record_evaluation",
    "run_evaluation",
]

Status = Literal["passed", "failed", "no-metrics", "timeout", "not-started"]

#: What a test suite run without thresholds is held to.
PYTEST_DEFAULT_THRESHOLD = Threshold("pass_rate", ">=", 1.0)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_HEX256 = re.compile(r"[0-9a-f]{64}")
_TAIL = 4000


@dataclass(frozen=True)
class ThresholdCheck:
    """One threshold and the measured value (None: the metric was not reported)."""

    threshold: Threshold
    value: float | None

    @property
    def passed(self) -> bool:
        return self.value is not None and self.threshold.holds(self.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.threshold.metric,
            "comparator": self.threshold.comparator,
            "threshold": self.threshold.value,
            "value": self.value,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class EvaluationResult:
    """Everything an evaluation record needs, whether the run passed or not."""

    name: str
    status: Status
    metrics: dict[str, float]
    checks: tuple[ThresholdCheck, ...]
    problems: tuple[str, ...]
    command: tuple[str, ...] | None = None
    exit_code: int | None = None
    duration: float | None = None
    metrics_source: str | None = None
    sample_size: int | None = None
    dataset_root: str | None = None
    tool: str | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def command_text(self) -> str | None:
        return None if self.command is None else shlex.join(self.command)

    def summary(self) -> str:
        """One human line: name, status, the checks, and the first problem."""
        checks = ", ".join(
            f"{c.threshold.metric}={c.value!r} ({'ok' if c.passed else 'FAIL'} {c.threshold})"
            for c in self.checks
        )
        why = f": {self.problems[0]}" if self.problems else ""
        return f"{self.name}: {self.status}{' - ' + checks if checks else ''}{why}"

    def predicate_fields(self) -> dict[str, Any]:
        """The record in the shape the evaluation predicate should grow to (see report)."""
        first = self.checks[0] if self.checks else None
        fields: dict[str, Any] = {
            "name": self.name,
            "metric": first.threshold.metric if first else None,
            "value": first.value if first else None,
            "comparator": first.threshold.comparator if first else None,
            "threshold": first.threshold.value if first else None,
            "passed": self.passed,
            "metrics": dict(self.metrics),
            "checks": [c.to_dict() for c in self.checks],
            "dataset_root": self.dataset_root,
            "sample_size": self.sample_size,
            "tool": self.tool,
            "command": self.command_text,
            "exit_code": self.exit_code,
            "duration_seconds": None if self.duration is None else round(self.duration, 6),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def to_predicates(self) -> list[EvaluationPredicate]:
        """One ``EvaluationPredicate`` (v1) per threshold check, to sign and log.

        v1 has no exit code or status, so a run that did not complete cleanly cannot be
        expressed without claiming more than happened: that raises :class:`InvalidInput`.
        """
        if self.status in ("not-started", "timeout") or self.exit_code not in (None, 0):
            raise InvalidInput(
                f"evaluation {self.name!r} {self.status}: "
                f"{self.problems[0] if self.problems else 'no result'}; the v1 evaluation "
                "predicate cannot record a run that did not finish with exit code 0",
                hint="keep the result's JSON (to_dict) as the record of the failed run",
            )
        missing = [c.threshold.metric for c in self.checks if c.value is None]
        if missing or not self.checks:
            what = f"no value for {', '.join(missing)}" if missing else "no threshold"
            raise InvalidInput(f"evaluation {self.name!r} has {what} to record")
        return [
            EvaluationPredicate(
                metric=c.threshold.metric,
                value=c.value,
                comparator=c.threshold.comparator,
                threshold=c.threshold.value,
                dataset_root=self.dataset_root,
                sample_size=self.sample_size,
                tool=self.tool,
                command=self.command_text,
            )
            for c in self.checks
            if c.value is not None
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "problems": list(self.problems),
            "metrics": dict(self.metrics),
            "metrics_source": self.metrics_source,
            "checks": [c.to_dict() for c in self.checks],
            "command": None if self.command is None else list(self.command),
            "exit_code": self.exit_code,
            "duration_seconds": self.duration,
            "sample_size": self.sample_size,
            "dataset_root": self.dataset_root,
            "tool": self.tool,
            "stdout_tail": self.stdout[-_TAIL:],
            "stderr_tail": self.stderr[-_TAIL:],
        }


def _check_inputs(name: str, dataset_root: str | None) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"not an evaluation name: {name!r} (letters, digits, _ . : / -)")
    if dataset_root is not None and not _HEX256.fullmatch(dataset_root):
        raise InvalidInput("dataset_root must be 64 lower-case hex characters (a dataset root)")


def _thresholds(items: Sequence[Threshold | str]) -> tuple[Threshold, ...]:
    return tuple(t if isinstance(t, Threshold) else parse_threshold(t) for t in items)


def _judge(
    metrics: Metrics | None, thresholds: tuple[Threshold, ...], problems: list[str]
) -> tuple[tuple[ThresholdCheck, ...], bool]:
    """The checks, and whether every one passed (and there were metrics at all)."""
    values = metrics.values if metrics is not None else {}
    checks = tuple(ThresholdCheck(t, values.get(t.metric)) for t in thresholds)
    for check in checks:
        if check.value is None and metrics is not None:
            problems.append(f"metric {check.threshold.metric!r} was not reported")
        elif check.value is not None and not check.passed:
            problems.append(f"{check.threshold.metric} = {check.value!r} fails {check.threshold}")
    return checks, metrics is not None and all(c.passed for c in checks)


def record_evaluation(
    name: str,
    metrics: Mapping[str, float],
    thresholds: Sequence[Threshold | str] = (),
    *,
    exit_code: int | None = None,
    sample_size: int | None = None,
    dataset_root: str | None = None,
    tool: str | None = None,
    command: Sequence[str] | None = None,
) -> EvaluationResult:
    """A result for metrics computed elsewhere (``ailedger eval record``)."""
    _check_inputs(name, dataset_root)
    parsed = metrics_from_json(_json_object(metrics), "the recorded metrics")
    problems: list[str] = []
    if exit_code not in (None, 0):
        problems.append(f"the evaluation exited with status {exit_code}")
    checks, ok = _judge(parsed, _thresholds(thresholds), problems)
    status: Status = "passed" if ok and exit_code in (None, 0) else "failed"
    return EvaluationResult(
        name,
        status,
        parsed.values,
        checks,
        tuple(problems),
        command=None if command is None else tuple(command),
        exit_code=exit_code,
        metrics_source="recorded",
        sample_size=sample_size if sample_size is not None else parsed.sample_size,
        dataset_root=dataset_root,
        tool=tool,
    )


def _json_object(metrics: Mapping[str, float]) -> str:
    try:
        return json.dumps(dict(metrics), allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metrics must be a mapping of names to numbers: {exc}") from None


def run_evaluation(
    command: Sequence[str],
    *,
    name: str,
    thresholds: Sequence[Threshold | str] = (),
    timeout: float = 3600.0,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    metrics_file: Path | None = None,
    junit_xml: Path | None = None,
    dataset_root: str | None = None,
    tool: str | None = None,
) -> EvaluationResult:
    """Run ``command`` (argv, no shell) and judge it; see the module docstring."""
    argv = [str(a) for a in command]
    if not argv or not argv[0]:
        raise InvalidInput("the evaluation command is empty")
    if not timeout > 0:
        raise InvalidInput("the timeout must be positive")
    _check_inputs(name, dataset_root)
    limits = _thresholds(thresholds)
    base = cwd if cwd is not None else Path.cwd()
    pytest = is_pytest(argv)
    in_argv = junit_in_argv(argv)
    junit = junit_xml if junit_xml is not None else (Path(in_argv) if in_argv else None)
    with tempfile.TemporaryDirectory(prefix="ailedger-eval-") as scratch:
        run_argv = argv
        if junit is None and pytest:
            junit = Path(scratch) / "junit.xml"
            run_argv = [*argv, f"--junitxml={junit}"]
        files = [p if p.is_absolute() else base / p for p in (metrics_file, junit) if p]
        before = {p: file_stat(p) for p in files}
        exit_code, out, err, seconds, problem = execute(run_argv, timeout, cwd, env)
        stdout = out.decode("utf-8", errors="replace")
        stderr = err.decode("utf-8", errors="replace")
        problems = [problem] if problem else []
        metrics: Metrics | None = None
        if exit_code is not None:
            if exit_code != 0:
                problems.append(exit_problem(exit_code))
            metrics = _collect(stdout, metrics_file, junit, base, before, problems)
    if not limits and metrics is not None and metrics.source.startswith("JUnit"):
        limits = (PYTEST_DEFAULT_THRESHOLD,)
        if "pass_rate" not in metrics.values:
            problems.append("no tests ran")
    checks, ok = _judge(metrics, limits, problems)
    status: Status
    if exit_code is None:
        status = "not-started" if problem and problem.startswith("could not") else "timeout"
    elif exit_code != 0:
        status = "failed"
    elif metrics is None:
        status = "no-metrics"
    else:
        status = "passed" if ok else "failed"
    return EvaluationResult(
        name,
        status,
        metrics.values if metrics else {},
        checks,
        tuple(problems),
        command=tuple(argv),
        exit_code=exit_code,
        duration=seconds,
        metrics_source=metrics.source if metrics else None,
        sample_size=metrics.sample_size if metrics else None,
        dataset_root=dataset_root,
        tool=tool or ("pytest" if junit is not None else os.path.basename(argv[0])),
        stdout=stdout,
        stderr=stderr,
    )


def _collect(
    stdout: str,
    metrics_file: Path | None,
    junit: Path | None,
    base: Path,
    before: dict[Path, tuple[int, int] | None],
    problems: list[str],
) -> Metrics | None:
    """Metrics by precedence: metrics file, JUnit XML, stdout; failures become problems."""
    for kind, path in (("metrics file", metrics_file), ("JUnit XML", junit)):
        if path is None:
            continue
        full = path if path.is_absolute() else base / path
        after = file_stat(full)
        if after is None:
            problems.append(f"the command wrote no {kind} at {path}")
            continue
        if before.get(full) == after:
            problems.append(f"the {kind} {path} was not rewritten by this run (stale)")
            continue
        try:
            if kind == "metrics file":
                return metrics_from_json(full.read_text(encoding="utf-8"), f"metrics file {path}")
            return metrics_from_junit(full)
        except (AiledgerError, OSError, UnicodeDecodeError) as exc:
            problems.append(str(exc))
    if metrics_file is not None or junit is not None:
        return None
    try:
        return metrics_from_stdout(stdout)
    except AiledgerError as exc:
        problems.append(str(exc))
        return None

"""Evaluation runs with real commands: JSON metrics, metrics files, pytest suites, failures."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.attest.predicates import EvaluationPredicate
from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.registry._eval_metrics import (
    metrics_from_json,
    metrics_from_junit,
    metrics_from_stdout,
)
from ailedger.registry.evaluation import (
    PYTEST_DEFAULT_THRESHOLD,
    Threshold,
    record_evaluation,
    run_evaluation,
)

PY = sys.executable
ROOT = "12" * 32


def script(code: str) -> list[str]:
    return [PY, "-c", code]


def test_json_on_the_last_stdout_line() -> None:
    metrics = {"accuracy": 0.93, "f1": 0.8, "sample_size": 500}
    code = f"import json; print('training done'); print(json.dumps({metrics!r}))\nprint()"
    result = run_evaluation(
        script(code), name="holdout", thresholds=["accuracy>=0.9", "f1 > 0.75"], dataset_root=ROOT
    )
    assert result.passed, result.problems
    assert result.status == "passed"
    assert result.metrics == {"accuracy": 0.93, "f1": 0.8}
    assert result.sample_size == 500
    assert result.exit_code == 0
    assert result.duration is not None
    assert result.duration >= 0
    assert result.metrics_source == "the last line of stdout"
    assert "training done" in result.stdout
    predicates = result.to_predicates()
    assert [p.metric for p in predicates] == ["accuracy", "f1"]
    assert all(isinstance(p, EvaluationPredicate) and p.passed for p in predicates)
    assert predicates[0].dataset_root == ROOT
    assert predicates[0].sample_size == 500
    assert predicates[0].command is not None
    assert predicates[0].command.startswith(PY)
    fields = result.predicate_fields()
    assert fields["name"] == "holdout"
    assert fields["exit_code"] == 0
    assert fields["metrics"] == {"accuracy": 0.93, "f1": 0.8}
    assert [c["passed"] for c in fields["checks"]] == [True, True]
    json.dumps(result.to_dict())


def test_threshold_not_met() -> None:
    result = run_evaluation(
        script("print('{\"accuracy\": 0.85}')"), name="acc", thresholds=["accuracy >= 0.9"]
    )
    assert result.status == "failed"
    assert result.problems == ("accuracy = 0.85 fails accuracy >= 0.9",)
    (predicate,) = result.to_predicates()  # a clean run that missed its threshold is recorded
    assert predicate.passed is False


def test_metric_not_reported() -> None:
    result = run_evaluation(script("print('{\"f1\": 1}')"), name="acc", thresholds=["acc >= 0.9"])
    assert result.status == "failed"
    assert "metric 'acc' was not reported" in result.problems
    with pytest.raises(InvalidInput, match="no value for acc"):
        result.to_predicates()


def test_nonzero_exit_is_recorded_but_not_passed() -> None:
    code = "import sys; print('{\"accuracy\": 0.99}'); sys.exit(3)"
    result = run_evaluation(script(code), name="acc", thresholds=["accuracy >= 0.9"])
    assert result.status == "failed"
    assert not result.passed
    assert result.exit_code == 3
    assert result.metrics == {"accuracy": 0.99}
    assert result.problems == ("exited with status 3",)
    assert result.predicate_fields()["passed"] is False
    assert result.to_dict()["exit_code"] == 3
    with pytest.raises(InvalidInput, match="exit code 0"):
        result.to_predicates()


def test_killed_by_a_signal() -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = run_evaluation(script(code), name="acc")
    assert result.status == "failed"
    assert result.exit_code is not None
    assert result.exit_code < 0
    assert result.problems[0] == "killed by signal SIGTERM"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild-survived"
    # the child starts a grandchild that would write a marker after 3 s, then both sleep
    inner = f"import time; time.sleep(3); open({str(marker)!r}, 'w')"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {inner!r}]); "
    code += "time.sleep(60)"
    result = run_evaluation(script(code), name="slow", thresholds=["x > 0"], timeout=0.5)
    assert result.status == "timeout"
    assert result.exit_code is None
    assert result.problems[0] == "timed out after 0.5 s and was killed"
    with pytest.raises(InvalidInput, match="timeout"):
        result.to_predicates()
    import time

    time.sleep(3.5)
    assert not marker.exists()


def test_command_that_cannot_start(tmp_path: Path) -> None:
    result = run_evaluation([str(tmp_path / "missing")], name="acc")
    assert result.status == "not-started"
    assert result.problems[0].startswith(f"could not start '{tmp_path / 'missing'}'")
    not_exec = tmp_path / "data.txt"
    not_exec.write_text("x")
    result = run_evaluation([str(not_exec)], name="acc")
    assert result.status == "not-started"
    assert "Permission denied" in result.problems[0]


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("pass", "printed nothing on stdout"),
        ("print('accuracy: 0.9')", "not a JSON object: 'accuracy: 0.9'"),
        ("print('{\"a\": 1'); ", "not valid JSON"),
        ("print('[1, 2]')", "not a JSON object: '[1, 2]'"),
        ("print('{\"a\": NaN}')", "NaN is not a number"),
        ("print('{\"a\": 1e999}')", "not a finite number"),
    ],
)
def test_no_metrics(code: str, problem: str) -> None:
    result = run_evaluation(script(code), name="acc", thresholds=["a >= 0"])
    assert result.status == "no-metrics"
    assert not result.passed
    assert any(problem in p for p in result.problems), result.problems
    assert result.checks[0].value is None


def test_json_without_thresholds_passes_on_a_clean_exit() -> None:
    result = run_evaluation(
        script('print(\'{"demographic_parity": {"gap": 0.02}, "ok": true}\')'), name="bias-audit"
    )
    assert result.passed
    assert result.metrics == {"demographic_parity.gap": 0.02, "ok": 1.0}
    with pytest.raises(InvalidInput, match="no threshold"):
        result.to_predicates()


def test_metrics_file(tmp_path: Path) -> None:
    code = "import json; json.dump({'auc': 0.91}, open('out/metrics.json', 'w'))\n"
    code += "print('{\"auc\": 0.1}')"
    (tmp_path / "out").mkdir()
    result = run_evaluation(
        script(code),
        name="auc",
        thresholds=["auc >= 0.9"],
        metrics_file=Path("out/metrics.json"),
        cwd=tmp_path,
    )
    assert result.passed, result.problems
    assert result.metrics == {"auc": 0.91}  # the file wins over stdout
    assert result.metrics_source == "metrics file out/metrics.json"
    # a file the command did not rewrite is stale and does not count
    stale = run_evaluation(
        script("print('done')"), name="auc", metrics_file=tmp_path / "out/metrics.json"
    )
    assert stale.status == "no-metrics"
    assert "was not rewritten by this run (stale)" in stale.problems[0]
    missing = run_evaluation(
        script("print('{\"auc\": 1}')"), name="auc", metrics_file=tmp_path / "none.json"
    )
    assert missing.status == "no-metrics"
    assert "wrote no metrics file" in missing.problems[0]


def test_cwd_and_environment_reach_the_command(tmp_path: Path) -> None:
    code = "import json, os; print(json.dumps({'here': os.getcwd() == os.environ['WANT']}))"
    result = run_evaluation(
        script(code),
        name="env",
        thresholds=["here == 1"],
        cwd=tmp_path,
        env={"WANT": str(tmp_path)},
    )
    assert result.passed, (result.problems, result.stderr)


SUITE = """
import pytest

def test_one():
    assert 1 + 1 == 2

def test_two():
    assert "a".upper() == "A"

@pytest.mark.skip(reason="not today")
def test_skipped():
    raise AssertionError

def test_three():
    assert sorted([3, 1, 2]) == [1, 2, 3]
"""


def pytest_command(directory: Path, *extra: str) -> list[str]:
    return [
        PY,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *extra,
        str(directory),
    ]


def test_pytest_suite_passes(tmp_path: Path) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_model.py").write_text(SUITE)
    result = run_evaluation(pytest_command(tmp_path / "suite"), name="unit-tests", cwd=tmp_path)
    assert result.passed, (result.problems, result.stdout)
    assert result.metrics == {
        "tests": 4.0,
        "failures": 0.0,
        "errors": 0.0,
        "skipped": 1.0,
        "passed": 3.0,
        "pass_rate": 1.0,
    }
    assert result.sample_size == 4
    assert result.tool == "pytest"
    assert [c.threshold for c in result.checks] == [PYTEST_DEFAULT_THRESHOLD]
    assert "--junitxml" not in " ".join(result.command or ())  # the added report is not recorded
    (predicate,) = result.to_predicates()
    assert (predicate.metric, predicate.value, predicate.passed) == ("pass_rate", 1.0, True)


def test_pytest_suite_with_a_failure(tmp_path: Path) -> None:
    (tmp_path / "test_bad.py").write_text(SUITE + "\ndef test_bad():\n    assert 0.85 >= 0.9\n")
    report = tmp_path / "report.xml"
    result = run_evaluation(
        pytest_command(tmp_path, f"--junitxml={report}"),
        name="unit-tests",
        thresholds=["pass_rate >= 0.7"],
        cwd=tmp_path,
    )
    assert result.status == "failed"
    assert result.exit_code == 1
    assert result.metrics["failures"] == 1.0
    assert result.metrics["pass_rate"] == 0.75
    assert result.checks[0].passed  # the threshold holds, but the suite exited 1
    assert result.problems == ("exited with status 1",)
    assert report.exists()


def test_pytest_with_no_tests(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_evaluation(pytest_command(tmp_path / "empty"), name="unit-tests", cwd=tmp_path)
    assert result.status == "failed"  # pytest exits 5 when it collects nothing
    assert "no tests ran" in result.problems


def test_junit_reports(tmp_path: Path) -> None:
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuite name="x"><testcase name="a"/><testcase name="b"><failure/></testcase>'
        '<testcase name="c"><error/></testcase><testcase name="d"><skipped/></testcase></testsuite>'
    )
    metrics = metrics_from_junit(xml)
    assert metrics.values["tests"] == 4.0
    assert (metrics.values["failures"], metrics.values["errors"], metrics.values["skipped"]) == (
        1.0,
        1.0,
        1.0,
    )
    assert math.isclose(metrics.values["pass_rate"], 1 / 3)
    xml.write_text(
        '<testsuites><testsuite tests="2" failures="0" errors="0" skipped="2"/></testsuites>'
    )
    assert "pass_rate" not in metrics_from_junit(xml).values
    xml.write_text("<html/>")
    with pytest.raises(FormatError, match="not <testsuites>"):
        metrics_from_junit(xml)
    xml.write_text("<testsuite")
    with pytest.raises(FormatError, match="not valid JUnit XML"):
        metrics_from_junit(xml)
    xml.write_text('<testsuite tests="many"/>')
    with pytest.raises(FormatError, match="not a number"):
        metrics_from_junit(xml)
    with pytest.raises(NotFound):
        metrics_from_junit(tmp_path / "none.xml")


def test_metrics_json_must_be_an_object() -> None:
    with pytest.raises(FormatError, match="not an object of metrics"):
        metrics_from_json("[1, 2]", "metrics file m.json")
    with pytest.raises(FormatError, match="sample_size must not be negative"):
        metrics_from_json('{"sample_size": -1}', "m")


finite = st.floats(allow_nan=False, allow_infinity=False)
keys = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda k: k != "sample_size")


@given(
    st.dictionaries(keys, finite | st.integers(-(10**6), 10**6)),
    st.lists(st.text(max_size=20).filter(lambda t: "\n" not in t and "\r" not in t), max_size=3),
)
def test_metrics_from_stdout_round_trip(values: dict[str, float], noise: list[str]) -> None:
    stdout = "\n".join([*noise, json.dumps(values), "", "  "])
    parsed = metrics_from_stdout(stdout)
    assert parsed.values == {k: float(v) for k, v in values.items()}


@given(st.text(max_size=40))
def test_metrics_from_json_parses_or_raises_format_error(text: str) -> None:
    try:
        parsed = metrics_from_json(text, "x")
    except FormatError:
        return
    assert all(math.isfinite(v) for v in parsed.values.values())


def test_record_evaluation() -> None:
    result = record_evaluation(
        "bias-audit",
        {"parity_gap": 0.03},
        [Threshold("parity_gap", "<=", 0.05)],
        sample_size=1200,
        tool="fairlearn",
        command=["python", "audit.py"],
    )
    assert result.passed
    (predicate,) = result.to_predicates()
    assert (predicate.sample_size, predicate.tool, predicate.command) == (
        1200,
        "fairlearn",
        "python audit.py",
    )
    failed = record_evaluation(
        "bias-audit", {"parity_gap": 0.03}, ["parity_gap <= 0.05"], exit_code=2
    )
    assert failed.status == "failed"
    assert failed.problems == ("the evaluation exited with status 2",)
    with pytest.raises(InvalidInput, match="NaN"):
        record_evaluation("x", {"a": float("nan")})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": []}, "command is empty"),
        ({"name": "bad name"}, "not an evaluation name"),
        ({"dataset_root": "XYZ"}, "dataset_root"),
        ({"thresholds": ["accuracy => 1"]}, "not a threshold"),
        ({"timeout": 0}, "timeout must be positive"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"command": script("print(1)"), "name": "acc"} | kwargs
    command = options.pop("command")
    with pytest.raises(InvalidInput, match=message):
        run_evaluation(command, **options)  # type: ignore[arg-type]

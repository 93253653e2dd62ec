"""The README's main job: ``ailedger demo`` runs every step for real and succeeds.

One demo run (``--dir``, ``--json``) is shared by the tests of its steps; the workspace it
leaves is then questioned with the ordinary CLI commands, as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _cli import run_process as cli
from ailedger.demos import _ml as ml

#: The workflow steps, in order (part two), by the start of their titles.
WORKFLOW = [
    "deploy the contracts on the embedded chain",
    "train v1 and register",
    "evaluate cancer-classifier@1 and audit it for bias",
    "approve, gate and deploy cancer-classifier@1 to prod",
    "train v2, evaluate, approve and deploy",
    "change one byte of cancer-classifier@2's model file",
    "roll prod back to cancer-classifier@1",
    "trace prod before and after the rollback",
    "anchor the log on the embedded chain",
    "receipt for the cancer-classifier@1 deployment",
    "record one prediction and trace its output",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo") / "run"
    done = cli("demo", "--dir", out, "--json")
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def step(doc: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = [s for s in doc["steps"] if s["title"].startswith(prefix)]
    assert len(found) == 1, prefix
    only: dict[str, Any] = found[0]
    return only


def test_every_step_is_ok_and_in_order(demo: tuple[Path, dict[str, Any]]) -> None:
    _, doc = demo
    assert doc["ok"] is True
    assert all(s["ok"] for s in doc["steps"]), [s["title"] for s in doc["steps"] if not s["ok"]]
    titles = [s["title"] for s in doc["steps"]]
    assert "prove an outside record is NOT in the dataset" in titles  # part one is kept
    at = [next(i for i, t in enumerate(titles) if t.startswith(p)) for p in WORKFLOW]
    assert at == sorted(at)
    rejected = [s["title"] for s in doc["steps"] if s["expected_failure"]]
    assert any(t.startswith("change one byte") for t in rejected)
    assert any(t.startswith("a proof that held record 42 is absent") for t in rejected)


def test_the_model_is_real_and_both_evaluations_are_signed(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    out, doc = demo
    evals = step(doc, "evaluate cancer-classifier@1")["data"]["evaluations"]
    assert [e["name"] for e in evals] == ["accuracy", "bias-audit"]
    assert evals[0]["metrics"]["accuracy"] >= 0.9
    assert evals[1]["metrics"]["accuracy_gap"] <= 0.1
    assert evals[0]["sample_size"] == 143
    config = json.loads((out / "models" / "cancer-classifier-1" / "config.json").read_text())
    assert config["hyperparameters"]["C"] == 1.0
    header = (out / "data" / "train.csv").read_text().splitlines()[0]
    assert header.startswith("mean radius,")
    assert header.endswith(",target")


def test_the_tampered_artifact_is_rejected_for_that_reason_only(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    _, doc = demo
    gate = step(doc, "change one byte")["data"]["gate"]
    assert gate["passed"] is False
    assert [u["code"] for u in gate["unmet"]] == ["artifact-mismatch"]


def test_trace_reports_the_rollback(demo: tuple[Path, dict[str, Any]]) -> None:
    out, doc = demo
    data = step(doc, "trace prod before")["data"]
    assert data["before"]["model"] == "cancer-classifier@2"
    assert data["before"]["action"] == "deploy"
    assert data["after"]["model"] == "cancer-classifier@1"
    assert data["after"]["action"] == "rollback"
    assert doc["summary"]["serving"] == {"prod": "cancer-classifier@1"}
    # the same question through the CLI, on the workspace the demo left
    done = cli("trace", "--env", "prod", "--at", data["before"]["at"], "--json", cwd=out)
    assert done.returncode == 0, done.stderr
    traced = json.loads(done.stdout)
    assert traced["model"] == "cancer-classifier@2"
    # the log was anchored after the rollback, so an on-chain anchor covers both events
    assert traced["anchor"]["size"] > traced["next_event"]["log_index"]
    assert traced["anchor"]["size"] == doc["summary"]["anchor"]["size"]


def test_the_gate_cli_rejects_the_tampered_model(demo: tuple[Path, dict[str, Any]]) -> None:
    out, _ = demo
    done = cli("gate", "cancer-classifier@2", "--policy", "policy.toml", "--env", "prod", cwd=out)
    assert done.returncode == 1
    assert "artifact-mismatch" in done.stdout


def test_the_receipt_verifies_against_the_chain(demo: tuple[Path, dict[str, Any]]) -> None:
    out, doc = demo
    receipt = Path(step(doc, "receipt for the")["data"]["receipt"])
    assert receipt.parent == out
    done = cli("verify", "receipt", receipt, "--rpc", "workspace", "--json", cwd=out)
    assert done.returncode == 0, done.stderr
    assert doc["summary"]["anchor"]["size"] >= 17


def test_trace_output_finds_the_model(demo: tuple[Path, dict[str, Any]]) -> None:
    out, doc = demo
    digest = doc["summary"]["traced_input"]
    assert digest == ml.sha256_digest((out / "inference" / "input.json").read_bytes())
    done = cli("trace", "output", "--input", digest, "--json", cwd=out)
    assert done.returncode == 0, done.stderr
    assert "cancer-classifier@1" in done.stdout


@pytest.mark.slow  # a second whole run
def test_human_output_marks_every_step() -> None:
    done = cli("demo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("✓") == 23
    assert "✗" not in done.stdout
    assert "demo passed" in done.stdout
    assert "prod serves cancer-classifier@1" in done.stdout


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    done = cli("demo", "--dir", tmp_path)
    assert done.returncode == 10
    assert "not empty" in done.stderr


def test_without_scikit_learn_the_demo_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from ailedger.cli import main\n"
        f"main(['demo', '--dir', {str(tmp_path / 'run')!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert "ailedger[ml]" in done.stderr
    assert not (tmp_path / "run").exists()


def test_the_split_and_the_audit_groups_are_deterministic() -> None:
    a, b = ml.load_split(), ml.load_split()
    assert (a.x_test == b.x_test).all()
    assert (a.group_test == b.group_test).all()
    assert len(a.y_train) + len(a.y_test) == 569
    assert 0 < int(a.group_test.sum()) < len(a.y_test)
    model = ml.train(a, {"C": 1.0, "max_iter": 1000})
    gap = ml.group_accuracy_gap(model, a)
    assert gap["accuracy_gap"] == pytest.approx(
        abs(gap["accuracy_high_texture"] - gap["accuracy_low_texture"]), abs=1e-6
    )
    assert gap["n_high_texture"] + gap["n_low_texture"] == len(a.y_test)


def test_a_saved_model_round_trips(tmp_path: Path) -> None:
    split = ml.load_split()
    model = ml.train(split, {"C": 0.5, "max_iter": 500})
    path = ml.save_model(model, {"C": 0.5, "max_iter": 500}, split, tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", ml.MODEL_FILE]
    again = ml.load_model(path)
    assert (again.predict(split.x_test) == model.predict(split.x_test)).all()
    inp, out, label = ml.predict_one(again, split, 3)
    assert json.loads(out)["label"] == label
    assert len(json.loads(inp)["features"]) == 30

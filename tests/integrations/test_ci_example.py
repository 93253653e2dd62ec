"""The GitHub Actions example (examples/ci/): its job graph, its `ailedger` commands against
the real CLI, its handling of secrets, and a run of its jobs on this machine, where the gate
blocks a model whose evaluation failed and lets a good one through to the deploy."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer

from ailedger.cli import app, load_commands
from ailedger.identity.keys import PBKDF2_ROUNDS_TEST_ONLY, SCRYPT_N_TEST_ONLY, Keystore
from ailedger.registry import Registry, VersionRef
from ailedger.workspace import Workspace

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci"
PASSWORD = "ci-pass-0123"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_locally", EXAMPLE / "run_locally.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_locally"] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
WORKFLOW: dict[str, Any] = runner.load_workflow(EXAMPLE / "github-actions.yml")
JOBS: dict[str, Any] = WORKFLOW["jobs"]


def _run_scripts() -> list[str]:
    return [str(s["run"]) for job in JOBS.values() for s in job["steps"] if "run" in s]


def _ailedger_lines() -> list[str]:
    lines = []
    for script in _run_scripts():
        for line in script.replace("\\\n", " ").splitlines():
            if line.strip().startswith("ailedger "):
                lines.append(line.strip())
    return lines


def test_the_deploy_waits_for_the_gate() -> None:
    assert runner.job_order(JOBS) == ["train", "register", "evaluate", "gate", "deploy"]
    assert runner.needs(JOBS["deploy"]) == ["gate"]
    assert JOBS["deploy"].get("if") in (None, "success()", "${{ success() }}")
    gate_steps = [s for s in JOBS["gate"]["steps"] if "run" in s]
    assert gate_steps[-1]["run"].startswith("ailedger gate ")
    assert not gate_steps[-1].get("continue-on-error")  # the gate's exit code decides
    with pytest.raises(ValueError, match="cycle"):
        runner.job_order({"a": {"needs": "b"}, "b": {"needs": ["a"]}})


def test_every_ailedger_command_exists_with_its_options() -> None:
    load_commands()
    root: Any = typer.main.get_command(app)
    seen = set()
    for line in _ailedger_lines():
        tokens = shlex.split(line)[1:]
        if "--" in tokens:
            tokens = tokens[: tokens.index("--")]  # the evaluated command follows
        command, rest, path = root, tokens, []
        while hasattr(command, "commands") and rest and rest[0] in command.commands:
            command = command.commands[rest[0]]
            path.append(rest[0])
            rest = rest[1:]
        assert not hasattr(command, "commands"), f"incomplete command: {line}"
        options = {o for p in command.params for o in p.opts + p.secondary_opts}
        for token in rest:
            if token.startswith("--"):
                assert token.split("=")[0] in options, f"{line}: no option {token}"
        seen.add(" ".join(path))
    assert {"init", "keys import", "dataset register", "model register", "eval run", "gate",
            "deploy"} <= seen  # fmt: skip


def test_secrets_reach_steps_only_through_env_and_are_never_printed() -> None:
    for script in _run_scripts():
        assert "secrets." not in script  # expressions in scripts end up in the logs
        assert "set -x" not in script
        for line in script.splitlines():
            if re.match(r"\s*(echo|printf|cat)\b", line):
                assert "AILEDGER_PASSWORD" not in line
                assert "AILEDGER_KEYSTORE_JSON" not in line or ">" in line  # only into a file
    for job in JOBS.values():
        for step in job["steps"]:
            for key, value in (step.get("env") or {}).items():
                if "secrets." in str(value):
                    assert value == f"${{{{ secrets.{key} }}}}"


@pytest.fixture(scope="module")
def keystore_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    store = Keystore(
        tmp_path_factory.mktemp("ci-key"),
        scrypt_n=SCRYPT_N_TEST_ONLY,
        pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY,
    )
    info = store.create("ci", PASSWORD, org="acme")
    return info.file.read_text()


@pytest.mark.slow
def test_running_the_jobs_gate_blocks_a_failed_evaluation_and_passes_a_good_one(
    tmp_path: Path, keystore_json: str
) -> None:
    secrets = {"AILEDGER_KEYSTORE_JSON": keystore_json, "AILEDGER_PASSWORD": PASSWORD}

    def run(label: str, noise: str) -> dict[str, Any]:
        return runner.Runner(  # type: ignore[no-any-return]
            WORKFLOW, tmp_path / label, secrets=secrets, env={"LABEL_NOISE": noise}
        ).run()

    with ThreadPoolExecutor(2) as pool:
        good_future = pool.submit(run, "good", "0.0")
        bad_future = pool.submit(run, "bad", "0.9")
        good, bad = good_future.result(), bad_future.result()

    assert {name: job.status for name, job in good.items()} == dict.fromkeys(JOBS, "success")
    ws = Workspace.open(tmp_path / "good" / "deploy")
    keys = Keystore(ws.keys_dir).list_keys()
    with Registry.open(ws, keys=keys) as registry:
        assert registry.current("prod") == VersionRef("churn", "1.1")

    statuses = {name: job.status for name, job in bad.items()}
    assert statuses == {"train": "success", "register": "success", "evaluate": "success",
                        "gate": "failure", "deploy": "skipped"}  # fmt: skip
    steps = {s.name: s for s in bad["evaluate"].steps}
    assert steps["Accuracy"].status == "failure"  # recorded, then left to the gate
    assert steps["Bias audit"].status == "success"
    assert "[evaluation-failed] evaluation 'accuracy'" in bad["gate"].output
    assert not (tmp_path / "bad" / "deploy").exists()

    logs = "".join(job.output for job in [*good.values(), *bad.values()])
    assert PASSWORD not in logs
    assert '"ciphertext"' not in logs
    assert keystore_json[:40] not in logs

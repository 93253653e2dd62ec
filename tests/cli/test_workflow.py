"""The provenance workflow through the real CLI: each command, and each bad input."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _cli import fails, ok, run
from _workflow_util import Setup, variant
from ailedger.cli._deploy import read_batch
from ailedger.cli._eval import parse_metric
from ailedger.errors import FormatError, InvalidInput


def registered(setup: Setup, version: str = "1.0", path: Path | None = None) -> None:
    if not (setup.root / ".ailedger" / "registry.sqlite").exists() or version == "1.0":
        ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
            "--key", "trainer"])  # fmt: skip
    ok(["model", "register", path or setup.model, "--name", "triage", "--version", version,
        "--dataset", "patients@1", "--param", "lr=0.01", "--code-revision", "abc",
        "--team", "ml", "--key", "trainer"])  # fmt: skip


def releasable(setup: Setup, version: str) -> None:
    ok(["eval", "record", f"triage@{version}", "--name", "accuracy", "--metric",
        "accuracy=0.93", "--threshold", "accuracy>=0.9", "--key", "trainer"])  # fmt: skip
    ok(["approve", f"triage@{version}", "--role", "qa", "--comment", "fine", "--key", "qa"])


def test_register_evaluate_approve_gate_deploy_rollback_trace(setup: Setup) -> None:
    registered(setup)
    doc = ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
              "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    assert doc["already_recorded"] is True  # same artifact again: the existing entry
    releasable(setup, "1.0")
    gate = ok(["gate", "triage@1.0", "--policy", setup.policy, "--env", "prod"])
    assert gate["passed"] is True
    assert gate["unmet"] == []
    first = ok(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy,
                "--key", "trainer"])  # fmt: skip
    registered(setup, "2.0", variant(setup, "m2", '{"v": 2}'))
    releasable(setup, "2.0")
    second = ok(["deploy", "triage@2.0", "--env", "prod", "--policy", setup.policy,
                 "--key", "trainer"])  # fmt: skip
    assert second["predicate"]["previous_version"] == "triage@1.0"  # type: ignore[index]
    back = ok(["rollback", "--env", "prod", "--key", "trainer"])
    assert back["ref"] == "triage@1.0"

    for recorded, expected in zip(
        (first, second, back), ("triage@1.0", "triage@2.0", "triage@1.0"), strict=True
    ):
        index, stamp = recorded["log_index"], recorded["predicate"]["time"]  # type: ignore[index]
        trace = ok(["trace", "--env", "prod", "--at", stamp])
        assert trace["model"] == expected
        assert trace["event"]["log_index"] == index  # type: ignore[index]
    lineage = ok(["lineage", "triage@1.0"])
    datasets = lineage["datasets"]
    assert isinstance(datasets, list)
    assert [d["registered_as"] for d in datasets] == [["patients@1"]]
    actions = [d["action"] for d in lineage["deployments"]]  # type: ignore[union-attr]
    assert actions == ["deploy", "rollback"]
    human = run(["lineage", "triage@1.0"])
    assert human.exit_code == 0
    assert "approve as qa: fine" in human.output


def test_eval_run_records_failures_and_exits_1(setup: Setup) -> None:
    registered(setup)
    script = 'import json; print(json.dumps({"accuracy": 0.5}))'
    result = run(["eval", "run", "triage@1.0", "--name", "accuracy", "--threshold",
                  "accuracy>=0.9", "--key", "trainer", "--json",
                  "--", sys.executable, "-c", script])  # fmt: skip
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["predicate"]["passed"] is False
    assert doc["predicate"]["exit_code"] == 0
    fails(["gate", "triage@1.0", "--policy", setup.policy], 1, "evaluation-failed", "0.5")
    missing = run(["eval", "run", "triage@1.0", "--name", "smoke", "--key", "trainer", "--",
                   "/no/such/command"])  # fmt: skip
    assert missing.exit_code == 1
    assert "not-started" in missing.output
    passing = 'import json; print(json.dumps({"accuracy": 0.95}))'
    good = run(["eval", "run", "triage@1.0", "--name", "accuracy", "--threshold",
                "accuracy>=0.9", "--key", "trainer",
                "--", sys.executable, "-c", passing])  # fmt: skip
    assert good.exit_code == 0, good.output
    lineage = ok(["lineage", "triage@1.0"])
    evaluations = lineage["evaluations"]
    assert isinstance(evaluations, list)
    verdicts = [(e["name"], e["passed"]) for e in evaluations]
    assert verdicts == [("accuracy", False), ("smoke", False), ("accuracy", True)]


def test_gate_lists_every_unmet_requirement(setup: Setup) -> None:
    registered(setup)
    out = fails(["gate", "triage@1.0", "--policy", setup.policy], 1, "evaluation-missing",
                "approvals-missing")  # fmt: skip
    assert "2 unmet" in out
    result = run(["gate", "triage@1.0", "--policy", setup.policy, "--json"])
    assert result.exit_code == 1
    codes = sorted(u["code"] for u in json.loads(result.stdout)["unmet"])
    assert codes == ["approvals-missing", "evaluation-missing"]


def test_gate_text_output_says_why_evidence_did_not_count(setup: Setup) -> None:
    """Not only --json: an approval that did not count is shown under its requirement."""
    registered(setup)
    releasable(setup, "1.0")
    trainer = setup.store.info("trainer").keyid  # only the trainer's approvals would count
    policy = setup.root / "only-trainer.toml"
    policy.write_text(setup.policy.read_text().replace(
        "qa = 1", f'qa = {{ count = 1, signers = ["{trainer.lower()}"] }}'))  # fmt: skip
    result = run(["gate", "triage@1.0", "--policy", policy, "--env", "prod"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    fail = next(i for i, line in enumerate(lines) if "FAIL [approvals-missing]" in line)
    assert "did not count: entry " in lines[fail + 1], result.stdout
    assert "is not an allowed signer" in lines[fail + 1]
    assert lines[fail + 1].rstrip().endswith("[signer-not-allowed]")


def test_changed_model_fails_the_gate_and_the_deploy(setup: Setup) -> None:
    registered(setup)
    releasable(setup, "1.0")
    (setup.model / "config.json").write_text('{"changed": true}')
    fails(["gate", "triage@1.0", "--policy", setup.policy], 1, "artifact-mismatch")
    fails(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy, "--key",
           "trainer"], 1, "artifact-mismatch")  # fmt: skip
    assert "deploy" not in json.dumps(ok(["lineage", "triage@1.0"])["deployments"])


def test_policy_error_names_the_line(setup: Setup) -> None:
    registered(setup)
    bad = setup.root / "bad.toml"
    bad.write_text("version = 1\n[all]\nmax_age = 'forever'\n")
    fails(["gate", "triage@1.0", "--policy", bad], 3, "bad.toml:3")
    fails(["gate", "triage@1.0", "--policy", setup.root / "none.toml"], 4, "no such policy")


def test_unknown_references_list_what_exists(setup: Setup) -> None:
    registered(setup)
    fails(["model", "register", setup.model, "--name", "x", "--version", "1", "--dataset",
           "patients@9", "--key", "trainer"], 4, "unknown dataset patients@9",
          "versions of patients: patients@1")  # fmt: skip
    fails(["approve", "triage@9", "--role", "qa", "--key", "qa"], 4, "triage@1.0")
    fails(["gate", "nope@1", "--policy", setup.policy], 4, "registered models: triage@1.0")
    fails(["eval", "record", "triage@1.0", "--name", "a", "--metric", "a=1", "--dataset",
           "nope@1", "--key", "trainer"], 4, "unknown dataset nope@1")  # fmt: skip
    fails(["lineage", "triage"], 3, "expected NAME@VERSION")
    fails(["model", "register", setup.root / "missing", "--name", "a", "--version", "1",
           "--key", "trainer"], 4, "no such model")  # fmt: skip


def test_same_name_with_another_artifact_conflicts(setup: Setup) -> None:
    registered(setup)
    again = ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
                "--key", "trainer"])  # fmt: skip
    assert again["already_recorded"] is True
    other_data = setup.root / "other.csv"
    other_data.write_text("id,age\n1,40\n")
    fails(["dataset", "register", other_data, "--name", "patients", "--version", "1",
           "--key", "trainer"], 10, "already registered")  # fmt: skip
    other = variant(setup, "m2", '{"v": 2}')
    fails(["model", "register", other, "--name", "triage", "--version", "1.0", "--key",
           "trainer"], 10, "already registered")  # fmt: skip


def test_approval_needs_the_role(setup: Setup) -> None:
    registered(setup)
    fails(["approve", "triage@1.0", "--role", "qa", "--key", "trainer"], 5,
          "does not hold the role 'qa'")  # fmt: skip
    fails(["approve", "triage@1.0", "--role", "security", "--key", "qa"], 5, "holds: qa")
    granted = ok(["roles", "grant", "trainer", "security"])
    assert granted["roles"] == ["deployer", "security"]  # make_setup: trainer deploys
    assert granted["org"] == "acme"
    ok(["approve", "triage@1.0", "--role", "security", "--reject", "--key", "trainer"])
    fails(["roles", "grant", "outsider", "qa"], 4, "no organisation")
    assert "security" in json.dumps(ok_list(["roles", "list"]))


def ok_list(args: list[object]) -> object:
    result = run([*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_deprecated_version_cannot_be_deployed(setup: Setup) -> None:
    registered(setup)
    releasable(setup, "1.0")
    ok(["deprecate", "triage@1.0", "--reason", "bias found", "--key", "trainer"])
    fails(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy, "--key",
           "trainer"], 10, "deprecated", "bias found")  # fmt: skip
    again = ok(["deprecate", "triage@1.0", "--reason", "again", "--key", "trainer"])
    assert again["already_recorded"] is True


def test_rollback_and_deploy_refusals(setup: Setup) -> None:
    registered(setup)
    releasable(setup, "1.0")
    fails(["rollback", "--env", "prod", "--key", "trainer"], 10, "nothing has been deployed")
    fails(["deploy", "triage@1.0", "--env", "prod", "--key", "trainer"], 4, "no policy")
    (setup.root / ".ailedger" / "policy.toml").write_text(setup.policy.read_text())
    ok(["deploy", "triage@1.0", "--env", "prod", "--key", "trainer"])
    again = ok(["deploy", "triage@1.0", "--env", "prod", "--key", "trainer"])
    assert again["already_recorded"] is True  # a retry signs nothing new
    fails(["rollback", "--env", "prod", "--key", "trainer"], 10, "nothing to roll back to")
    fails(["rollback", "--env", "prod", "--to", "triage@0.9", "--key", "trainer"], 10,
          "not an earlier deployment")  # fmt: skip


def test_trace_bad_times(setup: Setup) -> None:
    registered(setup)
    fails(["trace", "--env", "prod"], 4, "nothing was ever deployed")
    releasable(setup, "1.0")
    ok(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy, "--key", "trainer"])
    fails(["trace", "--env", "prod", "--at", "2001-01-01T00:00:00Z"], 4,
          "no deployment to 'prod' before", "the first was triage@1.0")  # fmt: skip
    fails(["trace", "--env", "prod", "--at", "2001-01-01T00:00:00"], 3, "no time zone")
    fails(["trace", "--env", "prod", "--at", "yesterday"], 3, "not a time")
    fails(["trace"], 3, "give --env")
    now = ok(["trace", "--env", "prod"])
    assert now["model"] == "triage@1.0"
    assert now["next_event"] is None


def test_infer_record_and_trace_output(setup: Setup) -> None:
    registered(setup)
    (setup.root / "in.txt").write_text("scan 1")
    (setup.root / "out.txt").write_text("benign")
    ok(["infer", "record", "--model", "triage@1.0", "--input", "in.txt", "--output", "out.txt",
        "--key", "trainer"])  # fmt: skip
    lines = [json.dumps({"input": f"sha256:{i:064x}", "output": "out.txt"}) for i in range(5)]
    (setup.root / "batch.jsonl").write_text("\n".join(lines) + "\n")
    batch = ok(["infer", "record", "--model", "triage@1.0", "--batch", "batch.jsonl", "--key",
                "trainer"])  # fmt: skip
    assert batch["records"] == 5
    found = ok_list(["trace", "output", "--input", "in.txt"])
    assert isinstance(found, list)
    assert found[0]["model"] == "triage@1.0"
    third = ok_list(["trace", "output", "--input", f"sha256:{3:064x}"])
    assert isinstance(third, list)
    assert third[0]["batch_position"] == 3
    assert third[0]["record_proof"]["tree_size"] == 5
    fails(["trace", "output", "--input", f"sha256:{9:064x}"], 4, "no inference record")
    fails(["infer", "record", "--model", "triage@1.0", "--key", "trainer"], 3, "--batch")
    (setup.root / "bad.jsonl").write_text('{"input": "sha256:00", "output": "out.txt"}\n')
    fails(["infer", "record", "--model", "triage@1.0", "--batch", "bad.jsonl", "--key",
           "trainer"], 3, "bad.jsonl:1")  # fmt: skip


def test_read_batch_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"input": "sha256:' + "a" * 64 + '", "output": "sha256:' + "b" * 64 + '"}\n'
                    "not json\n")  # fmt: skip
    with pytest.raises(FormatError, match=r"b\.jsonl:2"):
        read_batch(path)
    path.write_text("\n")
    with pytest.raises(InvalidInput, match="no records"):
        read_batch(path)


@given(st.text(min_size=1, max_size=20).filter(lambda s: "=" not in s and s.strip()),
       st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip
def test_parse_metric_round_trips(name: str, value: float) -> None:
    assert parse_metric(f"{name}={value!r}") == (name.strip(), value)


@pytest.mark.parametrize("item", ["acc", "=1", "acc=high", "acc=nan", "acc=inf"])
def test_parse_metric_rejects(item: str) -> None:
    with pytest.raises(InvalidInput):
        parse_metric(item)
    assert math.isfinite(1.0)

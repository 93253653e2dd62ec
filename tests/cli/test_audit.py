"""``ailedger audit report`` through the real CLI entry point."""

from __future__ import annotations

import json

import pytest

import ailedger.cli._audit  # noqa: F401  (registers `audit` until cli/_app.py imports it)
from _cli import ok as _ok
from _cli import run
from _workflow_util import Setup, variant
from ailedger.audit import AUDIT_SCHEMA
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


@pytest.fixture
def setup(setup: Setup) -> Setup:
    """The workflow workspace with two registered versions, v1 deployed to prod."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        v1, v2 = VersionRef("triage", "1"), VersionRef("triage", "2")
        reg.register_model(setup.model, v1, trainer)
        reg.register_model(variant(setup, "m2", '{"v": 2}'), v2, trainer)
        reg.record_evaluation(v1, record_evaluation("fairness", {"parity": 0.9}), trainer)
        reg.record_evaluation(v2, record_evaluation("bias-review", {"parity": 0.7}), trainer)
        reg.deploy(v1, "prod", trainer, OPEN)
    return setup


def test_report_writes_html_and_json(setup: Setup) -> None:
    out = setup.root / "audit"
    doc = _ok(["audit", "report", "--out", out])
    assert doc["html"] == str(out / "report.html")
    written = json.loads((out / "report.json").read_text())
    assert written["schema"] == AUDIT_SCHEMA
    assert written["summary"] == doc["summary"]
    assert written["audit_names"] == ["bias", "bias-audit", "fairness", "fairness-audit"]
    assert [r["bias_audit"] for r in written["releases"]] == ["passed", "missing"]
    assert written["summary"]["deployments"] == {"prod": {"deploy": 1}}
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    human = run(["audit", "report", "--out", out])
    assert human.exit_code == 0, human.output
    assert "2 releases, 1 without a passed bias audit" in human.output
    assert "items unverified" in human.output  # no checkpoint yet: inclusion is pending


def test_require_audit_and_policy_choose_the_audit(setup: Setup) -> None:
    out = setup.root / "audit"
    doc = _ok(["audit", "report", "--out", out, "--require-audit", "bias-review"])
    assert doc["summary"]["bias_audit"]["passed"] == 1  # type: ignore[index]
    written = json.loads((out / "report.json").read_text())
    assert [r["bias_audit"] for r in written["releases"]] == ["missing", "passed"]
    policy = setup.root / "audits.toml"
    policy.write_text('version = 1\n[all.audits.bias-review]\nroles = ["qa"]\n')
    _ok(["audit", "report", "--out", out, "--policy", policy])
    written = json.loads((out / "report.json").read_text())
    assert written["audit_names"] == ["bias-review"]


def test_strict_exits_1_when_anything_is_missing(setup: Setup) -> None:
    result = run(["audit", "report", "--out", setup.root / "a", "--strict"])
    assert result.exit_code == 1, result.output
    assert (setup.root / "a" / "report.html").is_file()  # written either way


def test_check_artifacts_reports_a_changed_model(setup: Setup) -> None:
    (setup.model / "config.json").write_text("{}")
    doc = _ok(["audit", "report", "--out", setup.root / "a", "--check-artifacts"])
    assert doc["summary"]["unverified"]["artifact"] == 1  # type: ignore[index]


def test_bad_input_is_one_clear_error(setup: Setup) -> None:
    bad = setup.root / "bad.toml"
    bad.write_text("version = 1\n[all]\nunknown_key = 1\n")
    result = run(["audit", "report", "--out", setup.root / "a", "--policy", bad])
    assert result.exit_code == 3, result.output
    assert "bad.toml:3:" in result.output
    missing = run(["audit", "report", "--out", setup.root / "a", "--policy", setup.root / "no"])
    assert missing.exit_code == 4, missing.output
    no_chain = run(["audit", "report", "--out", setup.root / "a", "--chain-check"])
    assert no_chain.exit_code == 4, no_chain.output  # no contracts deployed for this workspace
    blocked = setup.root / "file"
    blocked.write_text("")
    result = run(["audit", "report", "--out", blocked])
    assert result.exit_code == 3, result.output
    assert "cannot write the report" in result.output

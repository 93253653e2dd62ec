"""``ailedger demo labeling`` runs end to end on the embedded chain (once per module, through the
CLI with ``--json``), and its report agrees with facts the test rebuilds on its own: who must be
slashed and why, the pro-rata rewards, the aggregated labels' records and their provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _cli import run_process as cli
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.errors import VerificationFailed
from ailedger.log import open_workspace_log
from ailedger.workspace import Workspace

pytest.importorskip("sklearn")

from ailedger.demos import labeling


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("labeling") / "demo"
    done = cli("demo", "labeling", "--dir", out, "--json")
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def test_the_inaccurate_late_and_copycat_are_slashed_the_careful_paid(
    run: tuple[Path, dict[str, Any]],
) -> None:
    _, report = run
    outcome = {r["name"]: r["outcome"] for r in report["labelers"]}
    assert outcome == {
        "careful": "paid",
        "careful-2": "paid",
        "lazy": "low-accuracy",
        "copycat": "late",
        "late": "late",
        "colluder-1": "low-accuracy",
        "colluder-2": "low-accuracy",
        "colluder-3": "low-accuracy",
    }
    paid = [r for r in report["labelers"] if r["outcome"] == "paid"]
    total = sum(r["correct"] for r in paid)
    assert [r["reward"] for r in paid] == [report["pool"] * r["correct"] // total for r in paid]
    assert sum(r["reward"] for r in paid) + report["remainder_to_requester"] == report["pool"]
    for r in report["labelers"]:
        if r["outcome"] != "paid":
            assert r["slashed"] == report["min_stake"]
            assert r["reason_code"] == (2 if r["outcome"] == "late" else 1)
    assert report["claims_checked"] >= 30


def test_labels_records_name_their_labelers_and_the_log_has_the_settlement(
    run: tuple[Path, dict[str, Any]],
) -> None:
    out, report = run
    paid = {r["address"] for r in report["labelers"] if r["outcome"] == "paid"}
    lines = (out / "data" / "digits-labels.jsonl").read_text().splitlines()
    assert len(lines) == labeling.BATCH
    for line in lines:
        record = json.loads(line)
        assert {p["labeler"] for p in record["labelers"]} <= paid
        assert record["task"]["id"] == report["task"]
    ws = Workspace.open(out)
    with open_workspace_log(ws, read_only=True) as log:
        envelope = dsse.Envelope.from_json(log.get(report["settlement_log_index"]).envelope)
    logged = Statement.from_json(envelope.payload).predicate
    assert logged["task_id"] == report["task"]
    assert {r["address"]: r["outcome"] for r in logged["labelers"]} == {
        r["address"]: r["outcome"] for r in report["labelers"]
    }


def test_a_claim_that_does_not_hold_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(labeling.StakeManager, "is_judge", lambda self, account: False)
    with pytest.raises(VerificationFailed, match="registered judge"):
        labeling.run_labeling(tmp_path / "demo")

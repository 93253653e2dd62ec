"""``ailedger demo crop-insurance`` and ``ailedger demo safety-bonus`` run end to end.

Each demo runs once per module through the CLI in a subprocess (``--dir``, ``--json``); the
tests then check its report against the chain-independent facts left in the directory: the
batches and their roots, the model's fingerprint and the log.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from _anvil import Anvil
from _cli import run_process as cli
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.chain import ANVIL_CHAIN_ID
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.oracle_judge import DEFAULT_PROVER_BPS, REASON_OUT_OF_TOLERANCE
from ailedger.demos._oracle_stakes import SLASH
from ailedger.demos.crop_insurance import (
    DROUGHT_FARMS,
    LIE_BY,
    PAYOUT,
    THRESHOLD,
    demo_world,
    oracle_processes,
)
from ailedger.demos.safety_bonus import INCIDENT_WEEKS, WEEKLY, WEEKS
from ailedger.errors import NodeUnavailable
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.log import open_workspace_log
from ailedger.oracle.incidents import write_rule
from ailedger.workspace import Workspace

pytest.importorskip("sklearn")


def run(tmp_path_factory: pytest.TempPathFactory, name: str) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp(name) / "run"
    done = cli("demo", name, "--dir", out, "--json")
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


@pytest.fixture(scope="module")
def crop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return run(tmp_path_factory, "crop-insurance")


@pytest.fixture(scope="module")
def bonus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return run(tmp_path_factory, "safety-bonus")


def statement_at(workdir: Path, index: int) -> Statement:
    with open_workspace_log(Workspace.open(workdir)) as log:
        envelope = dsse.Envelope.from_json(log.get(index).envelope)
    return Statement.from_json(envelope.payload)


def check_common(workdir: Path, report: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
    totals = report["totals"]
    assert report["balanced"]
    assert totals["paid"] + totals["claimable"] + totals["remaining"] == totals["deposited"]
    for r in rounds:  # the lie reached every report, and no stored median left the honest range
        assert r["median_honest"]
        assert len(set(r["honest"])) == 1
        assert r["stored_answer"] == r["honest"][0]
        assert r["lying"] == [r["honest"][0] + report["lie_by"]]
        assert set(r["signers"]) <= set(report["oracles"])
        assert len(r["signers"]) >= 2  # f + 1
        assert r["model_digest"] == report["model_digest"]
    model = statement_at(workdir, report["model_log_index"])
    assert model.subject[0].digest["sha256"] == report["model_digest"]
    # the node processes were stopped
    for pid in report["node_pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    anchors = report["anchors"]
    assert anchors[-1]["anchor"]["size"] == report["log_entries"]


def test_crop_insurance_pays_the_drought_farms_only(crop: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = crop
    assert report["paid"] == sorted(DROUGHT_FARMS)
    assert report["lie_by"] == LIE_BY
    for farm in report["farms"]:
        assert farm["in_drought"] == (farm["farm"] in DROUGHT_FARMS)
        assert (max(farm["scores"]) > THRESHOLD) == farm["in_drought"]
        assert farm["paid_wei"] == (PAYOUT if farm["in_drought"] else 0)
        assert farm["policy"]["status"] == ("triggered" if farm["in_drought"] else "active")
    totals = report["totals"]
    paid = PAYOUT * len(DROUGHT_FARMS)
    assert totals == {
        "deposited": PAYOUT * len(report["farms"]),
        "paid": paid,
        "claimable": 0,
        "remaining": PAYOUT * len(report["farms"]) - paid,
    }
    check_common(workdir, report, report["rounds"])
    assert len(report["rounds"]) == 4 * len(report["farms"])


def test_crop_insurance_slashes_the_lying_oracle(crop: tuple[Path, dict[str, Any]]) -> None:
    """The watcher's challenge slashed the liar's whole stake, split between the watcher and
    the treasury (the demo read it back from the StakeManager); the evidence is the liar's own
    signed observation in the last round's report statement in the log."""
    workdir, report = crop
    slash = report["slash"]
    assert slash["oracle"] == report["lying_oracle"]
    assert slash["slashed"] == SLASH == slash["min_stake"]
    assert slash["prover_share"] == SLASH * DEFAULT_PROVER_BPS // 10_000
    assert slash["prover_share"] + slash["treasury_share"] == SLASH
    assert slash["reason_code"] == REASON_OUT_OF_TOLERANCE
    assert slash["value"] - slash["answer"] == report["lie_by"] == slash["deviation"]
    assert slash["deviation"] > slash["tolerance"]
    assert slash["liar_stake_after"]["slashed"] == SLASH
    assert slash["liar_stake_after"]["free"] == 0
    assert slash["proven_from_log"]
    logged = statement_at(workdir, slash["report_log_index"]).predicate
    assert logged["epoch"] == slash["epoch"]
    position = logged["observers"].index(slash["oracle"])
    assert logged["observations"][position] == slash["value"]
    assert len(logged["observation_signatures"]) == len(logged["observations"])
    assert report["contracts"]["judge"] == slash["judge"]


def test_crop_escrow_refuses_while_an_oracle_unbonds(crop: tuple[Path, dict[str, Any]]) -> None:
    """Every policy names the judge; the escrow itself refused a settle while an honest oracle
    was unbonding (FeedNotAccountable), and paid on the same round once it staked again."""
    _, report = crop
    judge = report["contracts"]["judge"]
    assert all(farm["policy"]["judge"] == judge for farm in report["farms"])
    refusal = report["refused_while_unstaked"]
    assert refusal["error"] == "FeedNotAccountable"
    assert refusal["judge"] == judge
    assert refusal["policy_status_after"] == "active"
    assert refusal["oracle"] in report["oracles"]
    assert refusal["oracle"] != report["lying_oracle"]
    (refused,) = [f for f in report["farms"] if f["policy"]["policy_id"] == refusal["policy_id"]]
    assert refused["policy"]["status"] == "triggered"
    assert refused["policy"]["settled_epoch"] == refusal["epoch"]


def test_crop_payouts_trace_to_batch_model_and_signers(crop: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = crop
    model = fingerprint_model(workdir / "drought-model", tensors=False)
    assert model.subject_digest.hex() == report["model_digest"]
    for farm in report["farms"]:
        why = farm["why"]
        if why is None:
            continue
        assert why["stored_answer"] > THRESHOLD
        assert why["withdrawn_wei"] == PAYOUT
        batch = workdir / "batches" / farm["farm"] / f"epoch-{why['epoch'] - 1}.jsonl"
        root = fingerprint_dataset(batch, secret=None).root.hex()
        assert why["input_root"] == root
        dataset = statement_at(workdir, why["dataset_log_index"])
        assert dataset.predicate["root"] == root
        *observations, report_entry = why["log_indices"]
        assert len(observations) == 4
        predicate = statement_at(workdir, report_entry).predicate
        assert predicate["input_root"] == root
        assert predicate["model_digest"] == report["model_digest"]
        assert predicate["signers"] == why["signers"]
        assert predicate["transaction"] == why["transaction"]


def test_safety_bonus_pays_incident_free_weeks(bonus: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = bonus
    safe = [w + 1 for w in range(WEEKS) if w not in INCIDENT_WEEKS]
    assert report["paid_weeks"] == safe
    for week in report["weeks"]:
        assert week["stored_answer"] == week["real_incidents"]
        assert week["paid_to"] == ("payer" if week["real_incidents"] else "contractor")
        batch = workdir / "cameras" / f"week-{week['week'] - 1}.jsonl"
        assert week["input_root"] == fingerprint_dataset(batch, secret=None).root.hex()
        assert (
            statement_at(workdir, week["dataset_log_index"]).predicate["root"]
            == (week["input_root"])
        )
    assert report["totals"] == {
        "deposited": WEEKS * WEEKLY,
        "paid": WEEKS * WEEKLY,
        "claimable": 0,
        "remaining": 0,
    }
    check_common(workdir, report, report["weeks"])


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    for name in ("crop-insurance", "safety-bonus"):
        done = cli("demo", name, "--dir", tmp_path)
        assert done.returncode == 10, done.stderr
        assert "not empty" in done.stderr


@pytest.mark.chain
def test_crop_insurance_on_anvil(
    anvil_node: Anvil,
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    done = cli("demo", "crop-insurance", "--dir", out, "--rpc", anvil_node.url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["chain_id"] == ANVIL_CHAIN_ID
    assert report["paid"] == sorted(DROUGHT_FARMS)
    check_common(out, report, report["rounds"])
    assert report["slash"]["oracle"] == report["lying_oracle"]
    assert report["slash"]["slashed"] == SLASH


def test_node_processes_are_stopped_on_error(tmp_path: Path) -> None:
    rule = write_rule(tmp_path / "rule")
    digest = fingerprint_model(rule, tensors=False).subject_digest.hex()
    args = ["--model-dir", str(rule), "--incidents", "0.8", "--feed-creator", "0x" + "11" * 20]
    procs: list[subprocess.Popen[str]] = []

    def fail_midway() -> None:
        with (
            demo_world(tmp_path / "ws", "t.test/log", []) as world,
            oracle_processes(world, ["incidents/a"], [*args, "--digest", digest], -1) as nodes,
        ):
            procs.extend(nodes.procs)
            assert all(p.poll() is None for p in procs)
            raise RuntimeError("a step failed")

    with pytest.raises(RuntimeError, match="a step failed"):
        fail_midway()
    assert len(procs) == 4
    assert all(p.poll() is not None for p in procs)
    # a node that refuses its model (wrong digest) fails the start, and the others stop
    with (
        demo_world(tmp_path / "ws2", "t.test/log", []) as world,
        pytest.raises(NodeUnavailable, match="exited"),
        oracle_processes(world, ["incidents/a"], [*args, "--digest", "00" * 32], 0),
    ):
        pass


def test_demos_record_their_contracts_in_the_deployment_book(
    crop: tuple[Path, dict[str, Any]], bonus: tuple[Path, dict[str, Any]]
) -> None:
    """``serve DIR`` and the explorer find the demo's contracts in the workspace's book."""
    expected = [
        (crop, {"feeds": "OracleFeeds", "escrow": "ParametricEscrow"}),
        (bonus, {"feeds": "OracleFeeds", "bonus": "PerformanceBonus"}),
    ]
    for (workdir, report), extra in expected:
        book = DeploymentBook(Workspace.open(workdir).path / DEPLOYMENTS_FILE).all()
        assert len(book) == 1
        recorded = {name: r.address for name, r in book[0].contracts.items()}
        assert {"Membership", "LogAnchors", "ModelRegistry"} <= set(recorded)
        for key, name in extra.items():
            assert recorded[name] == report["contracts"][key]

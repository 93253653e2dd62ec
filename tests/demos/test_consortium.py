"""``ailedger demo consortium`` runs end to end, proves what it prints, and leaves no process.

One run through the CLI in a subprocess (``--dir``, ``--json``) is shared by the tests that
check its report against what it left in the directory: the retailer's receipts (verified
again here, offline, with the keys the report names), the operator's log, the PIDs. A second,
in-process run with a wrong expectation (batch 43 said to be flagged) must fail with one line
naming the claim, and stop every process it started.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from _cli import fails
from _cli import run_process as cli
from ailedger.attest.flags import AnomalyFlagPredicate
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.membership import Membership, org_id
from ailedger.cli._demo import connect_service
from ailedger.demos import consortium
from ailedger.errors import ProofInvalid, SignatureInvalid
from ailedger.log import Receipt, open_workspace_log, parse_vkey, verify_receipt
from ailedger.log.receipt import sha256_file
from ailedger.oracle.coldchain import write_cold_chain_batches
from ailedger.workspace import Workspace

pytest.importorskip("sklearn")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("consortium") / "run"
    done = cli("demo", "consortium", "--dir", out, "--json")
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def _pids(workdir: Path) -> list[int]:
    lines = (workdir / consortium.PID_FILE).read_text().splitlines()
    return [int(line.split()[0]) for line in lines]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_every_step_behaves_and_rejections_come(demo: tuple[Path, dict[str, Any]]) -> None:
    _, report = demo
    assert report["ok"]
    steps = report["steps"]
    assert all(s["ok"] for s in steps)
    rejected = [s for s in steps if s["expected_failure"]]
    assert [s["title"] for s in rejected] == [
        "an outsider (no organisation on-chain) submits a statement",
        "a tampered copy of the model, before loading",
        "the same proof with a one-byte-changed batch file",
    ]
    assert "HTTP 403" in rejected[0]["detail"]
    assert "is not a member of any organisation" in rejected[0]["detail"]
    assert "refusing to load it" in rejected[1]["detail"]
    assert "is not a subject of the receipt's statement" in rejected[2]["detail"]
    assert report["summary"]["claims_checked"] > 50


def test_children_were_stopped_by_pid(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = demo
    pids = report["summary"]["pids"]
    assert len(pids) == 4  # two witnesses, the service and its restart
    assert _pids(workdir) == pids
    assert all(_gone(pid) for pid in pids)


def test_flags_are_exactly_the_excursions(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = demo
    summary = report["summary"]
    assert summary["flagged"] == list(consortium.EXCURSIONS)
    # the generator is deterministic: the same seed writes the same bytes
    again = write_cold_chain_batches(
        workdir / "regenerated",
        shipments=consortium.SHIPMENTS,
        excursions=consortium.EXCURSIONS,
        seed=consortium.SEED,
    )
    for batch in again:
        assert batch.path.read_bytes() == (workdir / "generated" / batch.name).read_bytes()


def test_the_retailers_receipts_verify_offline_here(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = demo
    summary = report["summary"]
    log_key = parse_vkey(summary["log_key"])
    witnesses = [parse_vkey(v) for v in summary["witnesses"]]
    evidence = workdir / "retailer" / "evidence"
    held = workdir / "retailer" / "batches" / "batch-042.csv"
    digest = sha256_file(held)
    for name in ("flag.receipt.json", "batch-042.csv.receipt.json"):
        receipt = Receipt.load(evidence / name)
        checked = verify_receipt(
            receipt,
            log_key=log_key,
            witnesses=witnesses,
            witness_threshold=2,
            artifact_sha256=digest,
        )
        assert checked.index in (
            summary["offline"]["flag_entry"],
            summary["offline"]["batch_entry"],
        )
        # one witness is not enough for a threshold of 3, and another file is not this one
        with pytest.raises(SignatureInvalid):
            verify_receipt(receipt, log_key=log_key, witnesses=witnesses, witness_threshold=3)
        with pytest.raises(ProofInvalid):
            verify_receipt(receipt, log_key=log_key, artifact_sha256="0" * 64)
    assert summary["offline"]["cosignatures"] == 2


def test_the_operators_log_holds_the_trail(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = demo
    summary = report["summary"]
    trail = summary["trail"]
    assert [t["type"] for t in trail] == ["batch"] * 4 + ["flag", "ack", "ack"]
    assert [t["role"] for t in trail] == [
        "manufacturer", "shipper", "shipper", "retailer", "shipper", "manufacturer", "retailer"
    ]  # fmt: skip
    with open_workspace_log(Workspace.open(workdir / "log-operator"), read_only=True) as log:
        assert log.size() == summary["log_entries"]
        flag = trail[4]["index"]
        assert log.get(flag).predicate_type == AnomalyFlagPredicate.PREDICATE_TYPE
        assert log.get(flag).index == summary["offline"]["flag_entry"]
    # each party kept its own workspace, keys and mirror; the auditor only public keys
    for role in ("manufacturer", "shipper", "retailer"):
        keys = list((workdir / role / ".ailedger" / "keys").glob("*.keystore.json"))
        assert [k.name for k in keys] == [f"{role}.keystore.json"]
        assert (workdir / role / ".ailedger" / "remote").is_dir()
    assert not list((workdir / "auditor" / ".ailedger" / "keys").glob("*.keystore.json"))


def test_membership_is_on_the_operators_chain(demo: tuple[Path, dict[str, Any]]) -> None:
    workdir, report = demo
    membership = report["summary"]["membership"]
    assert {r: m["org"] for r, m in membership.items()} == consortium.PARTIES
    operator = Workspace.open(workdir / "log-operator")
    with open_workspace_chain(operator, read_only=True) as chain:  # the service is stopped
        dep = DeploymentBook(operator.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        members = Membership(chain, dep.open(chain, "Membership"))
        for m in membership.values():
            assert members.org_of(m["address"]) == org_id(m["org"])
            assert members.has_role(m["org"], m["address"], "admin")
        assert members.org_of("0x" + "00" * 19 + "01") is None


def test_a_claim_that_does_not_hold_fails_and_stops_every_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consortium, "PROVEN_BATCH", 43)  # batch 43 had no cooling failure
    workdir = tmp_path / "run"
    out = fails(
        ["demo", "consortium", "--dir", workdir],
        1,
        "demo claim does not hold: batch 43 was flagged",
    )
    assert len([line for line in out.splitlines() if line.strip()]) >= 1
    pids = _pids(workdir)
    assert len(pids) == 3  # both witnesses and the service were running
    assert all(_gone(pid) for pid in pids)


def test_an_interrupt_stops_every_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C once the witnesses and the service run

    monkeypatch.setattr(consortium, "write_cold_chain_batches", interrupt)
    workdir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        consortium.run_consortium(workdir, connect_service)
    pids = _pids(workdir)
    assert len(pids) == 3
    assert all(_gone(pid) for pid in pids)

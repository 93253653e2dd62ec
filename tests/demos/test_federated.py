"""``ailedger demo federated`` runs end to end (once per module, through the CLI with
``--json``: a real Flower simulation on Ray, the embedded chain, FLRewards), and its report
agrees with what this test reads on its own from the workspace's log, the model on disk and
the receipt (checked by ``ailedger verify receipt`` in another process). Ray's start costs most
of the run's wall time (tens of seconds on the shared 2-core machine), little CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _cli import run_process as cli
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.errors import VerificationFailed
from ailedger.fingerprint.model import fingerprint_model
from ailedger.log import open_workspace_log
from ailedger.log._envelope import check_ethereum_signature
from ailedger.workspace import Workspace

pytest.importorskip("flwr")
pytest.importorskip("sklearn")

from ailedger.demos import federated
from ailedger.demos._fl_settle import BOND, STAKE
from ailedger.fl import RoundPredicate, UpdatePredicate


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("federated") / "demo"
    done = cli("demo", "federated", "--dir", out, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(done.stdout)


def _statement(log: Any, index: int) -> tuple[dsse.Envelope, Statement]:
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    for sig in envelope.signatures:
        check_ethereum_signature(sig.keyid.lower(), envelope.pae(), sig.sig)
    return envelope, Statement.from_json(envelope.payload)


def test_the_poisoner_and_spammer_lose_stake_the_honest_are_paid(
    run: tuple[Path, dict[str, Any]],
) -> None:
    _, report = run
    rows = {r["behaviour"] + r["name"][-2:]: r for r in report["clients"]}
    assert len(report["rounds"]) == federated.ROUNDS
    for r in report["clients"]:
        if r["behaviour"] in ("poisoner", "spammer"):
            assert r["penalised"]
            assert r["stake_lost"] == r["harmful_rounds"] * (STAKE // federated.ROUNDS) > 0
            assert r["earned_wei"] == 0
        else:
            assert not r["penalised"]
            assert r["stake_lost"] == 0
        if r["behaviour"] == "honest":
            assert r["earned_wei"] > 0
        if r["behaviour"] == "free-rider":
            assert (r["contribution"], r["earned_wei"]) == (0.0, 0)
    assert len(rows) == 8
    earned = sum(r["earned_wei"] for r in report["clients"])
    assert earned + report["pool_left_wei"] == federated.ROUNDS * federated.POOL_PER_ROUND
    accuracy = [r["accuracy"] for r in report["rounds"]]
    assert accuracy[-1] >= 0.85
    assert accuracy[-1] > accuracy[0]
    assert report["claims_checked"] > 100


def test_a_dishonest_round_is_challenged_corrected_and_the_bond_slashed(
    run: tuple[Path, dict[str, Any]],
) -> None:
    """The last round's record paid the colluding free rider; a client's challenge with the
    verifiers' recomputation corrected it and cost the aggregator its bond (the demo reads
    each of these back from the chain; here its report must say so)."""
    _, report = run
    challenge = report["challenge"]
    assert challenge["round"] == federated.ROUNDS
    assert challenge["colluder"].startswith("free-rider")
    assert challenge["challenger"].startswith("honest")
    assert challenge["finding"].startswith("[fl-score-mismatch]")
    assert challenge["inflated_payout_wei"] > 0
    assert challenge["bond_slashed"] == BOND
    assert challenge["challenger_owed"] == BOND // 2
    rider = next(r for r in report["clients"] if r["behaviour"] == "free-rider")
    assert rider["earned_wei"] == 0


def test_the_log_holds_every_round_and_update_signed(run: tuple[Path, dict[str, Any]]) -> None:
    out, report = run
    addresses = {r["address"].lower() for r in report["clients"]}
    with open_workspace_log(Workspace.open(out), read_only=True) as log:
        previous = None
        for row in report["rounds"]:
            _, statement = _statement(log, row["log_index"])
            rnd = RoundPredicate.model_validate(statement.predicate)
            assert rnd.round == row["round"]
            assert rnd.global_model == row["global_model"]
            assert rnd.held_out_root == report["held_out"]["root"]
            assert previous is None or rnd.base_model == previous
            previous = rnd.global_model
            assert {c.client for c in rnd.clients} == addresses
            for line in rnd.clients:
                assert line.log_index is not None  # nobody's update was refused
                upd_env, upd = _statement(log, line.log_index)
                assert [s.keyid.lower() for s in upd_env.signatures] == [line.client]
                pred = UpdatePredicate.model_validate(upd.predicate)
                assert (pred.round, pred.base_model, pred.update) == (
                    rnd.round,
                    rnd.base_model,
                    line.update,
                )
        _, model = _statement(log, report["model"]["log_index"])
    training = model.predicate["training"]
    assert training["dataset_roots"] == [report["held_out"]["root"]]
    hyper = training["hyperparameters"]
    assert hyper["round_log_indices"] == [r["log_index"] for r in report["rounds"]]
    assert set(hyper["clients"]) == addresses
    assert hyper["parameters_digest"] == report["rounds"][-1]["global_model"]


def test_the_receipt_verifies_offline_and_catches_an_edited_model(
    run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, report = run
    model_dir = out / federated.MODEL_DIR
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
    assert digest == report["model"]["digest"]
    receipt = report["model"]["receipt"]
    done = cli("verify", "receipt", receipt, "--artifact", model_dir, "--json", cwd=out)
    assert done.returncode == 0, done.stderr
    edited = tmp_path / "model"
    edited.mkdir()
    for f in model_dir.iterdir():
        (edited / f.name).write_bytes(f.read_bytes())
    raw = bytearray((edited / "coef.npy").read_bytes())
    raw[-1] ^= 1
    (edited / "coef.npy").write_bytes(bytes(raw))
    bad = cli("verify", "receipt", receipt, "--artifact", edited, cwd=out)
    assert bad.returncode == 1
    assert "receipt-artifact-mismatch" in bad.stderr


def test_a_claim_that_does_not_hold_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first claim is checked before the simulation: a task that lost its clients."""
    real = federated.open_market

    def lost_clients(*args: Any, **kwargs: Any) -> Any:
        market = real(*args, **kwargs)
        task = market.rewards.task

        def fewer(task_id: bytes) -> Any:
            import dataclasses

            return dataclasses.replace(task(task_id), clients=0)

        market.rewards.task = fewer  # type: ignore[method-assign]
        return market

    monkeypatch.setattr(federated, "open_market", lost_clients)
    with pytest.raises(VerificationFailed, match="all clients joined"):
        federated.run_federated(tmp_path / "demo")

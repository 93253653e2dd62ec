"""``ailedger demo imaging-dispute`` runs end to end, once per backend (the embedded chain, and
anvil under the ``chain`` marker), through the CLI with ``--json``; the tests check its report
against what it left in the directory (the hospital's archive and study index, the log, the
verifiers' attestation files, the provider processes' PID file). A claim that does not hold
fails the demo; the model plug-ins refuse what they must."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _anvil import Anvil
from _cli import run_process as cli
from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.chain.stake import StakeManager
from ailedger.errors import InvalidInput, ProofInvalid, VerificationFailed
from ailedger.log import open_workspace_log
from ailedger.markets.inference import ReceiptWallet, request_digest, response_digest
from ailedger.workspace import Workspace

pytest.importorskip("sklearn")

from ailedger.demos import _imaging_model as im
from ailedger.demos import imaging
from ailedger.demos._children import alive
from ailedger.demos._imaging_world import STAKE, K


def _run(out: Path, *extra: object) -> dict[str, Any]:
    done = cli("demo", "imaging-dispute", "--dir", out, "--json", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("imaging") / "demo"
    return out, _run(out)


def _check(out: Path, report: dict[str, Any], calls: int = imaging.CALLS) -> None:
    """What every run must show, read from its report and its directory."""
    assert report["calls"] == calls
    dispute, dec = report["dispute"], report["job_dec"]
    # the disputed study: flagged, and its archived image and salt give the salted digest
    archive = {
        s["study"]: s
        for s in map(json.loads, (out / "hospital" / "archive-nov.jsonl").read_text().splitlines())
    }
    assert len(archive) == calls
    study = archive[dispute["study"]]
    assert study["output"] == dispute["output"]
    assert dispute["output"]["flag"] is True
    assert dispute["output"]["finding"] == im.FLAG_FINDING
    digest = request_digest(study["pixels"], bytes.fromhex(study["salt"][2:]))
    assert "0x" + digest.hex() == dispute["salted_digest"]
    assert [s["step"] for s in dispute["steps"]] == list(range(1, len(dispute["steps"]) + 1))
    assert len(dispute["steps"]) >= 12
    # the study index in the log names the study's digest; the receipt in the wallet too
    index_log = report["job_nov"]["study_index_log"]
    with open_workspace_log(Workspace.open(out), read_only=True) as log:
        envelope = dsse.Envelope.from_json(log.get(index_log).envelope)
    statement = Statement.from_json(envelope.payload)
    assert statement.subject[0].name.startswith("st-mary-studies-nov@")
    with ReceiptWallet(out / "hospital" / "receipts.sqlite") as wallet:
        rows = wallet.rows(bytes.fromhex(dispute["job"][2:]))
    assert len(rows) == calls
    row = next(r for r in rows if r.receipt.receipt.counter == dispute["counter"])
    assert row.receipt.receipt.request_digest == digest
    assert row.receipt.receipt.response_digest == response_digest(dispute["output"])
    assert row.receipt.receipt.model_digest.hex() == report["model_digest"]
    # the lineage reached the dataset, both evaluations and both approvals
    tree = dispute["lineage"]
    assert [d["registered_as"] for d in tree["datasets"]] == [["digits-train@1"]]
    assert {e["name"] for e in tree["evaluations"]} == {"accuracy", "flag-safety"}
    assert {a["role"] for a in tree["approvals"]} == {"qa", "auditor"}
    # the swap: caught by a sample of K, slashed, refunded
    assert 0 < dec["wrong_outputs"] < calls * 0.15
    assert dec["sample"]["total"] == K
    assert dec["sample"]["passed"] < K
    assert dec["slash"]["slashed"] == STAKE
    assert dec["slash"]["prover_share"] == STAKE // 2
    assert dec["slash"]["counter"] in dec["sample"]["wrong_outputs_signed"]
    assert dec["refund"] > 0
    assert len(dec["slash"]["verifiers"]) >= 2
    files = list((out / "verifiers").glob("verifier-*/dec-*.json"))
    assert len(files) >= 3
    assert report["sampling"]["k"] == K
    assert report["sampling"]["catch_probability_per_epoch"] >= 0.99
    assert report["stake_totals"]["slashed"] == STAKE
    assert report["claims_checked"] >= 50
    # every provider process was stopped
    pids = [int(line.split()[0]) for line in (out / "provider" / "pids").read_text().splitlines()]
    assert len(pids) == 2
    assert not any(alive(p) for p in pids)


def test_the_demo_on_the_embedded_chain(run: tuple[Path, dict[str, Any]]) -> None:
    out, report = run
    _check(out, report)
    assert report["chain_id"] != 31337


@pytest.mark.chain
def test_the_demo_on_anvil(anvil_node: Anvil, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    report = _run(out, "--rpc", anvil_node.url, "--calls", 200)  # fewer: CI time
    assert report["chain_id"] == 31337
    _check(out, report, 200)


def test_a_claim_that_does_not_hold_fails_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(StakeManager, "is_judge", lambda self, account: False)
    with pytest.raises(VerificationFailed, match="registered judge"):
        imaging.run_imaging_dispute(tmp_path / "demo")
    assert not (tmp_path / "demo" / "provider").exists()  # no provider was started


def test_a_gap_in_the_receipts_fails_the_demo_and_stops_the_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ReceiptWallet, "gaps", lambda self, job: [7])
    with pytest.raises(VerificationFailed, match="no gap"):
        imaging.run_imaging_dispute(tmp_path / "demo", calls=imaging.MIN_CALLS)
    pids = (tmp_path / "demo" / "provider" / "pids").read_text().splitlines()
    assert pids
    assert not any(alive(int(line.split()[0])) for line in pids)


def test_too_few_calls_are_refused(tmp_path: Path) -> None:
    done = cli("demo", "imaging-dispute", "--dir", tmp_path / "d", "--calls", "10")
    assert done.returncode == 2
    with pytest.raises(InvalidInput, match="--calls"):
        imaging.run_imaging_dispute(tmp_path / "e", calls=10)
    assert not (tmp_path / "e").exists()


@pytest.fixture(scope="module")
def estimator() -> Any:
    return im.train_triage(im.load_digits_split(), im.PARAMS)


@given(st.lists(st.integers(0, 16), min_size=im.PIXELS, max_size=im.PIXELS))
@settings(max_examples=examples(40))
def test_a_study_gets_a_finding_and_a_rounded_confidence(estimator: Any, pixels: list[int]) -> None:
    out = im.triage_output(estimator, pixels)
    assert set(out) == {"finding", "confidence", "flag"}
    assert 0 <= out["finding"] <= 9
    assert 0.0 < out["confidence"] <= 1.0
    assert round(out["confidence"], 4) == out["confidence"]
    assert out["flag"] == (out["finding"] == im.FLAG_FINDING)
    assert im.triage_output(estimator, pixels) == out  # deterministic


@given(
    st.one_of(
        st.lists(st.integers(0, 16), max_size=im.PIXELS - 1),
        st.lists(st.integers(0, 16), min_size=im.PIXELS + 1, max_size=im.PIXELS + 3),
        st.lists(st.integers(17, 300), min_size=im.PIXELS, max_size=im.PIXELS),
        st.lists(st.floats(allow_nan=True), min_size=im.PIXELS, max_size=im.PIXELS),
        st.lists(st.booleans(), min_size=im.PIXELS, max_size=im.PIXELS),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
        st.text(max_size=5),
        st.none(),
    )
)
@settings(max_examples=examples(60))
def test_anything_but_a_study_is_refused(estimator: Any, value: Any) -> None:
    with pytest.raises(InvalidInput, match="pixel values"):
        im.triage_output(estimator, value)


def test_the_swapping_plug_in_refuses_a_cheap_model_it_was_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, estimator: Any
) -> None:
    import pickle

    from ailedger.fingerprint.model import fingerprint_model
    from ailedger.markets.inference.models import verified_model

    model_dir = im.save_model(estimator, tmp_path / "model", {"params": im.PARAMS})
    model = verified_model(model_dir, fingerprint_model(model_dir, tensors=False).subject_digest)
    cheap = tmp_path / "cheap.pkl"
    cheap.write_bytes(pickle.dumps(im.train_cheap(im.load_digits_split())))
    monkeypatch.setenv(im.SWAP_ENV, im.swap_setting(cheap, 1.0, 1))
    pixels = im.load_digits_split().studies[0]
    cheap_model = pickle.loads(cheap.read_bytes())
    assert im.swapped(model)(pixels) == im.triage_output(cheap_model, pixels)  # rate 1: always
    monkeypatch.setenv(im.SWAP_ENV, im.swap_setting(cheap, 0.0, 1))
    assert im.swapped(model)(pixels) == im.triage(model)(pixels)  # rate 0: never
    cheap.write_bytes(cheap.read_bytes() + b"\0")
    with pytest.raises(ProofInvalid, match="not the cheap model"):
        im.swapped(model)
    monkeypatch.setenv(im.SWAP_ENV, "nonsense")
    with pytest.raises(InvalidInput, match="PATH#SHA256#RATE#SEED"):
        im.swapped(model)
    monkeypatch.delenv(im.SWAP_ENV)
    assert os.environ.get(im.SWAP_ENV) is None
    with pytest.raises(InvalidInput, match="PATH#SHA256#RATE#SEED"):
        im.swapped(model)


def test_without_the_server_extra_the_demo_says_so_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(InvalidInput, match="server extra") as raised:
        imaging.run_imaging_dispute(tmp_path / "demo")
    assert raised.value.hint == "pip install 'ailedger[server]'"
    assert not (tmp_path / "demo").exists()

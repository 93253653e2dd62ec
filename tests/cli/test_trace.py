"""``ailedger trace --out`` and ``ailedger verify trace``: a trace document checked in a
directory with no workspace, with the log's key alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _cli import fails, ok, run
from _workflow_util import Setup, variant
from ailedger.registry._refs import VersionRef
from ailedger.registry._trace_proof import event_predicate
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def _deploys(setup: Setup) -> list[str]:
    """Deploy r@1, r@2, r@3 to prod; the signed time of each event."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        for i in (1, 2, 3):
            ref = VersionRef("r", str(i))
            reg.register_model(variant(setup, f"m{i}", f'{{"v": {i}}}'), ref, trainer)
            reg.deploy(ref, "prod", trainer, OPEN)
        times = []
        for event in reg.index.events("prod"):
            predicate = event_predicate(reg.log.get(event.log_index).envelope)
            assert predicate is not None
            times.append(predicate.time.isoformat())
    return times


def _load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    return doc


def test_a_trace_document_verifies_without_a_workspace(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = _deploys(setup)
    early = setup.root / "unsigned.json"
    ok(["trace", "--env", "prod", "--at", times[0], "--out", early])
    ok(["log", "checkpoint", "--key", "trainer"])
    doc_path = setup.root / "trace.json"
    shown = run(["trace", "--env", "prod", "--at", times[1], "--out", doc_path])
    assert shown.exit_code == 0, shown.output
    assert "names this one as its previous" in shown.output
    assert "ailedger verify trace" in shown.output
    later = setup.root / "later.json"
    ok(["trace", "--env", "prod", "--at", times[2], "--out", later])
    address = setup.store.info("trainer").keyid
    # in the workspace of the log, its deployer grants are the trusted deployers
    assert ok(["verify", "trace", doc_path, "--log-key", address])["model"] == "r@2"

    elsewhere = tmp_path_factory.mktemp("no-workspace")
    monkeypatch.chdir(elsewhere)
    copy = elsewhere / "trace.json"
    copy.write_bytes(doc_path.read_bytes())
    result = ok(["verify", "trace", copy, "--deployer", address, "--log-key", address])
    assert (result["model"], result["adjacency"], result["log_key_trusted"]) == (
        "r@2",
        "linked",
        True,
    )
    assert (result["since"], result["until"]) == (times[1], times[2])
    # the document's own key proves nothing: refused, with what to pass (review finding)
    fails(
        ["verify", "trace", copy, "--deployer", address], 1, "[checkpoint-untrusted]", "--log-key"
    )
    human = run(["verify", "trace", copy, "--deployer", address, "--log-key", address])
    assert human.exit_code == 0, human.output
    assert "nothing happened in between" in human.output
    last = ok(["verify", "trace", later, "--deployer", address, "--log-key", address])
    assert (last["adjacency"], last["until"]) == ("open", None)

    fails(["verify", "trace", early, "--deployer", address], 1, "[trace-checkpoint-missing]")
    # with a trusted key too: the missing checkpoint is named, with what to do
    fails(["verify", "trace", early, "--deployer", address, "--log-key", address], 1,
          "[trace-checkpoint-missing]", "ailedger log checkpoint")  # fmt: skip
    fails(
        ["verify", "trace", copy, "--deployer", address, "--log-key", "0x" + "11" * 20],
        1,
        "[checkpoint-signature-missing]",
    )
    doc = _load(copy)
    doc["at"] = times[2]  # after the next event
    copy.write_text(json.dumps(doc))
    fails(["verify", "trace", copy, "--deployer", address], 1, "[trace-time-mismatch]")
    doc = _load(doc_path)
    doc["model"] = "r@3"
    copy.write_text(json.dumps(doc))
    fails(["verify", "trace", copy, "--deployer", address], 1, "[trace-claim-mismatch]")
    # r@1 "served until r@3", r@2's event in between left out (all proven in one tree).
    doc = _load(early)
    doc["next_event"] = _load(later)["event"]
    doc["checkpoint"], doc["log"] = _load(later)["checkpoint"], _load(later)["log"]
    copy.write_text(json.dumps(doc))
    fails(
        ["verify", "trace", copy, "--deployer", address, "--log-key", address],
        1,
        "[trace-link-mismatch]",
    )
    fails(["verify", "trace", elsewhere / "missing.json"], 4, "no such trace document")
    # issue 11: who signed the events is checked against trusted deployer keys; with none
    # (no --deployer, no workspace of the log here) the trace is refused, never "any signer"
    doc_copy = elsewhere / "again.json"
    doc_copy.write_bytes(doc_path.read_bytes())
    fails(["verify", "trace", doc_copy, "--log-key", address], 1, "[trace-deployers-unknown]",
          "--deployer")  # fmt: skip
    qa = setup.store.info("qa").keyid
    fails(["verify", "trace", doc_copy, "--log-key", address, "--deployer", qa], 1,
          "[trace-signer-not-deployer]")  # fmt: skip
    fails(["verify", "trace", doc_copy, "--log-key", address, "--deployer", "nope"], 3,
          "--deployer")  # fmt: skip
    both = ok(["verify", "trace", doc_copy, "--log-key", address, "--deployer", qa,
               "--deployer", address.upper().replace("0X", "0x")])  # fmt: skip
    assert both["model"] == "r@2"
    fails(["trace", "--env", "prod"], 6)  # trace itself needs the workspace


def test_deployer_keys_are_addresses_verifier_keys_or_key_ids() -> None:
    from ailedger.cli._trace import _deployer_id
    from ailedger.errors import InvalidInput
    from ailedger.log import vkey
    from ailedger.log.checkpoint import Secp256k1NoteKey

    address = "0x" + "ab" * 20
    assert _deployer_id(address) == address.lower()
    assert _deployer_id(vkey(Secp256k1NoteKey("example.com/log", address))) == address.lower()
    assert _deployer_id("00" * 16) == "00" * 16
    for bad in ("admin", "0x12", ""):
        with pytest.raises(InvalidInput, match="--deployer"):
            _deployer_id(bad)

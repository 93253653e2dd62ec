"""``ailedger chain ...``, ``ailedger anchor`` and ``verify receipt --rpc`` on the embedded
chain, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ailedger.cli._chain
import ailedger.cli._keys
import ailedger.cli._log  # noqa: F401  (importing registers the commands)
from _anvil import Anvil
from _cli import PASSWORD, fails, ok, run
from _log_util import ALICE, LOG_SIGNER, WITNESS_SIGNER, envelope
from _workflow_util import NewWorkspace
from ailedger.chain import ANVIL_CHAIN_ID
from ailedger.identity.keys import Secp256k1Signer
from ailedger.workspace import Workspace

ORIGIN = "example.com/cli-chain"
REMOTE_WITNESS = Secp256k1Signer(bytes.fromhex("66" * 32))
MEMBER_KEY = Secp256k1Signer(bytes.fromhex("77" * 32))
MEMBER = MEMBER_KEY.address


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace(ORIGIN)
    store.add("logkey", LOG_SIGNER, PASSWORD)
    store.add("witness", WITNESS_SIGNER, PASSWORD)
    store.add("remote", REMOTE_WITNESS, PASSWORD)
    store.add("admin", ALICE, PASSWORD)
    store.add("member", MEMBER_KEY, PASSWORD)
    for i in range(6):
        (tmp_path / f"e{i}.json").write_bytes(envelope(i))
    return ws


def test_deploy_status_and_roles(ws: Workspace) -> None:
    status = ok(["chain", "status"])
    assert status["backend"] == "embedded"
    assert status["contracts"] is None
    dep = ok(["chain", "deploy", "--key", "admin"])
    assert dep["deployer"] == ALICE.address
    contracts = dep["contracts"]
    assert set(contracts) == {
        "Membership",
        "LogAnchors",
        "ModelRegistry",
        "StakeManager",
        "OracleFeeds",
        "OracleJudge",
        "LabelingMarket",
        "DatasetVouching",
        "InferenceMarket",
    }
    book = json.loads((ws.path / "deployments.json").read_text())
    assert book[str(dep["chain_id"])]["contracts"] == contracts
    fails(["chain", "deploy", "--key", "admin"], 10, "already deployed")

    status = ok(["chain", "status"])
    assert status["contracts"] == contracts
    assert status["log"] == {
        "origin": ORIGIN,
        "registered": False,
        "log": None,
        "anchors": 0,
        "latest": None,
    }

    # nobody joins without consenting: first an invitation, which MEMBER accepts itself
    grant = ["chain", "grant", MEMBER, "--org", "acme", "--role", "qa", "--key", "admin"]
    invited = ok(grant)
    assert (invited["org_created"], invited["invited"], invited["granted"]) == (True, True, False)
    assert ok(["chain", "members", "--org", "acme"])["members"] == []
    ok(["chain", "join", "--org", "acme", "--key", "member"])
    granted = ok(grant)
    assert (granted["org_created"], granted["invited"], granted["granted"]) == (False, False, True)
    # or in one command, with the member's signed consent (--consent-key)
    remote = REMOTE_WITNESS.address
    wrong = ["chain", "grant", remote, "--org", "acme", "--role", "qa", "--key", "admin"]
    fails([*wrong, "--consent-key", "member"], 3, "not of")
    ok([*wrong, "--consent-key", "remote"])
    members = ok(["chain", "members", "--org", "acme"])["members"]
    assert sorted((m["account"], m["role"]) for m in members) == sorted(
        [(MEMBER, "admin"), (MEMBER, "qa"), (remote, "qa")]
    )
    ok(["chain", "revoke", MEMBER, "--org", "acme", "--role", "qa", "--key", "admin"])
    members = ok(["chain", "members", "--org", "acme"])["members"]
    assert sorted((m["account"], m["role"]) for m in members) == [(MEMBER, "admin"), (remote, "qa")]
    # a member leaves only without roles; then it belongs to no organisation
    fails(["chain", "remove", remote, "--org", "acme", "--key", "admin"], 9, "RolesStillHeld")
    ok(["chain", "revoke", remote, "--org", "acme", "--role", "qa", "--key", "admin"])
    removed = ok(["chain", "remove", remote, "--org", "acme", "--key", "admin"])
    assert (removed["account"], removed["org"]) == (remote, "acme")
    fails(["chain", "remove", remote, "--org", "acme", "--key", "admin"], 9, "NotAMember")
    # a non-admin cannot grant: the contract's custom error, exit 9
    fails(
        ["chain", "grant", ALICE.address, "--org", "acme", "--role", "qa", "--key", "witness"],
        9,
        "NotOrgAdmin",
    )
    fails(["chain", "members", "--org", "nobody"], 4, "no organisation")


def test_anchor_receipt_and_verify_on_chain(ws: Workspace, tmp_path: Path) -> None:
    fails(["anchor", "--key", "logkey"], 4, "not deployed")
    ok(["chain", "deploy", "--key", "admin"])
    fails(["anchor", "--key", "logkey"], 3, "log is empty")
    ok(["log", "append", "e0.json", "e1.json", "e2.json"])
    ok(["log", "checkpoint", "--key", "logkey"])
    ok(["chain", "cosign", "--key", "remote", "--out", "remote.json"])
    first = ok(
        ["anchor", "--key", "logkey", "--witness-key", "witness", "--cosignature", "remote.json"]
    )
    assert first["registered"] is True
    assert first["cosigners"] == sorted([WITNESS_SIGNER.address, REMOTE_WITNESS.address])
    anchor = first["anchor"]
    assert (anchor["index"], anchor["size"]) == (0, 3)
    fails(["anchor", "--key", "logkey", "--witness-key", "witness"], 10, "already anchored")

    status = ok(["chain", "status"])["log"]
    assert status["latest"]["size"] == 3
    assert status["log"]["threshold"] == 2

    receipt = ok(["log", "receipt", "1"])
    assert receipt["anchor"]["index"] == 0
    (tmp_path / "r1.json").write_text(json.dumps(receipt))
    checked = ok(["verify", "receipt", "r1.json", "--rpc", "workspace"])
    assert checked["anchor_verified"]["anchor"]["size"] == 3
    human = run(["verify", "receipt", "r1.json", "--rpc", "workspace"])
    assert human.exit_code == 0, human.output
    assert "anchored: #0 size 3" in human.output
    human = run(["chain", "status"])
    assert "anchored size 3" in human.output

    # the log grows; `anchor` signs the new checkpoint itself; the proof is checked on-chain
    ok(["log", "append", "e3.json", "e4.json"])
    fails(["anchor", "--key", "logkey", "--witness-key", "witness"], 9, "ThresholdNotMet")
    second = ok(
        [
            "anchor",
            "--key",
            "logkey",
            "--witness-key",
            "witness",
            "--witness-key",
            "remote",
            "--with-consistency",
        ]
    )
    assert second["anchor"]["size"] == 5
    assert second["anchor"]["consistency_checked"] is True
    # the old receipt is still covered (by its own anchor); a new one by the new anchor
    ok(["verify", "receipt", "r1.json", "--rpc", "workspace"])
    receipt = ok(["log", "receipt", "4"])
    assert receipt["anchor"]["index"] == 1
    (tmp_path / "r4.json").write_text(json.dumps(receipt))
    checked = ok(["verify", "receipt", "r4.json", "--rpc", "workspace"])
    assert checked["anchor_verified"]["consistency_proven"] is True


def test_receipt_without_anchor_fails_on_chain(ws: Workspace, tmp_path: Path) -> None:
    ok(["chain", "deploy", "--key", "admin"])
    ok(["log", "append", "e0.json", "e1.json"])
    ok(["log", "checkpoint", "--key", "logkey"])
    receipt = ok(["log", "receipt", "0"])
    assert receipt["anchor"] is None
    (tmp_path / "r.json").write_text(json.dumps(receipt))
    ok(["verify", "receipt", "r.json"])  # offline it is fine
    fails(["verify", "receipt", "r.json", "--rpc", "workspace"], 1, "not registered")
    # finding 6: no witnesses, no anchor (a threshold of 0 is refused before sending)
    fails(["anchor", "--key", "logkey"], 3, "without witness cosignatures")
    ok(["anchor", "--key", "logkey", "--witness-key", "witness"])
    # still no anchor object in r.json, but the chain holds an anchor of that exact checkpoint
    checked = ok(["verify", "receipt", "r.json", "--rpc", "workspace"])
    # ... anchored without a consistency proof: verify says so, from the chain's storage
    assert checked["anchor_verified"]["consistency_proven"] is False
    assert checked["anchor_verified"]["anchor"]["cosignatures"] == 1


def test_node_down_is_a_clear_error(ws: Workspace) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    fails(["chain", "status", "--rpc", url], 8, "cannot reach")


def test_bad_cosignature_file(ws: Workspace, tmp_path: Path) -> None:
    ok(["chain", "deploy", "--key", "admin"])
    ok(["log", "append", "e0.json"])
    ok(["log", "checkpoint", "--key", "logkey"])
    ok(["chain", "cosign", "--key", "remote", "--out", "c.json"])
    doc = json.loads((tmp_path / "c.json").read_text())
    doc["size"] = 2  # claims another checkpoint: the signature no longer recovers to the signer
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    fails(["anchor", "--key", "logkey", "--cosignature", "bad.json"], 1, "made by")
    (tmp_path / "junk.json").write_text("{not json")
    fails(["anchor", "--key", "logkey", "--cosignature", "junk.json"], 3, "not JSON")


def test_audit_chain_check_on_the_embedded_chain(ws: Workspace) -> None:
    """Issue 11 item 7: ``audit report --chain-check`` opened the embedded chain twice in one
    process, and its own lock refused the second: the README's example always failed."""
    ok(["chain", "deploy", "--key", "admin"])
    ok(["log", "append", "e0.json", "e1.json"])
    ok(["anchor", "--key", "logkey", "--witness-key", "witness"])
    ok(["audit", "report", "--out", "audit", "--chain-check"])
    log = json.loads(Path("audit/report.json").read_text())["log"]
    assert log["anchors_confirmed_on_chain"] is True
    assert [a["size"] for a in log["anchors"]] == [2]


@pytest.mark.chain
def test_receipt_carries_the_anchor_on_the_named_chain(ws: Workspace, anvil_node: Anvil) -> None:
    """The same checkpoint anchored on the embedded chain and on a node: `log receipt --rpc`
    picks the anchor on that node's chain, so `verify receipt --rpc` checks the right one."""
    rpc = ["--rpc", anvil_node.url]
    ok(["log", "append", "e0.json", "e1.json"])
    ok(["log", "checkpoint", "--key", "logkey"])
    for where in ([], rpc):
        ok(["chain", "deploy", "--key", "admin", *where])
        ok(["anchor", "--key", "logkey", "--witness-key", "witness", *where])
    on_node = ok(["log", "receipt", "0", *rpc])
    on_workspace = ok(["log", "receipt", "0", "--rpc", "workspace"])
    assert on_node["anchor"]["chain_id"] == ANVIL_CHAIN_ID
    assert on_workspace["anchor"]["chain_id"] != ANVIL_CHAIN_ID
    Path("node.receipt.json").write_text(json.dumps(on_node))
    checked = ok(["verify", "receipt", "node.receipt.json", *rpc])
    assert checked["anchor_verified"]["anchor"]["size"] == 2
    Path("ws.receipt.json").write_text(json.dumps(on_workspace))  # what used to be picked
    result = run(["verify", "receipt", "ws.receipt.json", *rpc])
    assert result.exit_code != 0
    assert "the node is on" in result.output

"""The chain commands against a real anvil: a workspace configured with ``backend = "rpc"``,
``--rpc URL`` and ``$AILEDGER_RPC_URL``, and ``verify receipt --rpc`` against the node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ailedger.cli._chain
import ailedger.cli._keys
import ailedger.cli._log  # noqa: F401  (importing registers the commands)
from _anvil import Anvil
from _cli import ok, run
from _workflow_util import chain_client_workspace
from ailedger.chain import ANVIL_CHAIN_ID
from ailedger.workspace import Workspace

ORIGIN = "example.com/cli-rpc"

pytestmark = pytest.mark.chain


def _workspace(root: Path, chain: dict[str, Any]) -> Workspace:
    return chain_client_workspace(root, chain, ORIGIN)


def test_rpc_workspace_anchor_and_verify(
    make_anvil: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node: Anvil = make_anvil()
    monkeypatch.chdir(tmp_path)
    _workspace(tmp_path, {"backend": "rpc", "url": node.url, "chain_id": ANVIL_CHAIN_ID})
    dep = ok(["chain", "deploy", "--key", "admin"])
    assert dep["chain_id"] == ANVIL_CHAIN_ID
    ok(["log", "append", "e0.json", "e1.json", "e2.json"])
    anchored = ok(["anchor", "--key", "logkey", "--witness-key", "witness"])
    assert anchored["anchor"]["size"] == 3
    status = ok(["chain", "status"])
    assert (status["backend"], status["chain_id"]) == ("rpc", ANVIL_CHAIN_ID)
    assert status["log"]["latest"]["size"] == 3
    (tmp_path / "r.json").write_text(json.dumps(ok(["log", "receipt", "2"])))
    checked = ok(["verify", "receipt", "r.json", "--rpc", node.url])
    assert checked["anchor_verified"]["chain_id"] == ANVIL_CHAIN_ID
    # the verifier needs no workspace: only the receipt and the node
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ok(["verify", "receipt", str(tmp_path / "r.json"), "--rpc", node.url])

    node.stop()
    result = run(["verify", "receipt", str(tmp_path / "r.json"), "--rpc", node.url])
    assert result.exit_code == 8, result.output
    assert "cannot reach" in result.output


def test_env_url_and_chain_id_mismatch(
    make_anvil: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node: Anvil = make_anvil()
    monkeypatch.chdir(tmp_path)
    _workspace(tmp_path, {"backend": "rpc", "url": node.url, "chain_id": 1})
    result = run(["chain", "status"])
    assert result.exit_code == 8, result.output
    assert "chain id 31337" in result.output
    # $AILEDGER_RPC_URL overrides the config (and --rpc would too)
    status = ok(["chain", "status"], env={"AILEDGER_RPC_URL": node.url})
    assert status["chain_id"] == ANVIL_CHAIN_ID

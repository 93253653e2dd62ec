"""chain.backends: one name -> backend map, strict [chain] settings, chains opened through it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ailedger.chain import DEV_FAUCET_ADDRESS, DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID
from ailedger.chain.backends import (
    BACKENDS,
    EmbeddedBackend,
    RpcBackend,
    backend_named,
    open_workspace_chain,
    workspace_chain_id,
)
from ailedger.errors import NodeUnavailable, WorkspaceError
from ailedger.workspace import Workspace


def _workspace(tmp_path: Path, chain: dict[str, Any]) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    lines = ["[chain]"] + [
        f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in chain.items()
    ]
    text = ws.config_path.read_text().split("[chain]")[0] + "\n".join(lines) + "\n"
    ws.config_path.write_text(text)
    return Workspace.open(ws.path)


def test_the_map_names_every_backend_once() -> None:
    assert set(BACKENDS) == {"embedded", "rpc"}
    assert all(name == b.name for name, b in BACKENDS.items())
    assert isinstance(BACKENDS["embedded"], EmbeddedBackend)
    assert isinstance(BACKENDS["rpc"], RpcBackend)


@pytest.mark.parametrize("name", ["", "Embedded", "anvil", None, 3])
def test_an_unknown_backend_is_refused_naming_the_known_ones(name: object) -> None:
    with pytest.raises(WorkspaceError, match="unknown chain backend") as info:
        backend_named(name)
    assert 'backend = "embedded"' in (info.value.hint or "")
    assert 'backend = "rpc"' in (info.value.hint or "")


def test_the_faucet_address_is_the_faucet_keys() -> None:
    assert Account.from_key(DEV_FAUCET_KEY).address == DEV_FAUCET_ADDRESS


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "rpc"}, "needs a url"),
        ({"backend": "rpc", "url": ""}, "needs a url"),
        ({"backend": "rpc", "url": "http://127.0.0.1:9", "chain_id": "1"}, "integer"),
        ({"backend": "rpc", "url": "http://127.0.0.1:9", "chain_id": True}, "integer"),
        ({"backend": "rpc", "url": "http://127.0.0.1:9", "chainid": 1}, "does not understand"),
    ],
)
def test_rpc_settings_fail_closed(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkspaceError, match=message):
        BACKENDS["rpc"].check(settings, source="config.toml")


def test_embedded_takes_no_node_settings() -> None:
    with pytest.raises(WorkspaceError, match="takes no url"):
        BACKENDS["embedded"].check({"backend": "embedded", "url": "x"}, source="config.toml")


def test_a_workspace_with_an_unknown_backend_opens_no_chain(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, {"backend": "ganache"})
    with pytest.raises(WorkspaceError, match="unknown chain backend 'ganache'"):
        open_workspace_chain(ws)
    with pytest.raises(WorkspaceError, match="unknown chain backend"):
        workspace_chain_id(ws)


def test_the_embedded_backend_opens_the_workspace_chain(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, {"backend": "embedded"})
    assert workspace_chain_id(ws) == EMBEDDED_CHAIN_ID
    with open_workspace_chain(ws) as chain:
        assert (chain.backend, chain.chain_id) == ("embedded", EMBEDDED_CHAIN_ID)
    assert (ws.path / "chain").is_dir()


def test_the_rpc_backend_reports_a_node_that_is_down(tmp_path: Path) -> None:
    ws = _workspace(
        tmp_path, {"backend": "rpc", "url": "http://127.0.0.1:9", "chain_id": 5, "retries": 0}
    )
    assert workspace_chain_id(ws) == 5
    assert workspace_chain_id(ws, "http://127.0.0.1:8545") is None  # --rpc: ask the node
    with pytest.raises(NodeUnavailable, match=r"cannot reach http://127\.0\.0\.1:9"):
        open_workspace_chain(ws)


def test_without_a_workspace_only_rpc_opens_a_chain() -> None:
    with pytest.raises(WorkspaceError, match="no workspace"):
        open_workspace_chain(None)

"""JSON-RPC 2.0 framing and limits of ``/rpc``, in process over an embedded chain: batches,
notifications, ids, parse and request errors, the ``eth_getLogs`` bounds; and the body limit
of a real ``ailedger serve``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from _chain_util import ARTIFACTS
from _log_util import ALICE
from _rpc_util import rpc_raw, well_formed
from _service import Service, server_workspace
from ailedger.chain import DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID, open_embedded
from ailedger.errors import ChainError
from ailedger.service.rpc import EmbeddedRpc, RpcSettings, handle

TAG = b"\x22" * 32


@pytest.fixture
def rpc(tmp_path: Path) -> Iterator[EmbeddedRpc]:
    """An embedded chain with three Probe.store calls (three logs in blocks 2, 3, 4)."""
    faucet = Account.from_key(DEV_FAUCET_KEY)
    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        probe = chain.deploy("Probe", 0, signer=faucet)
        for i in range(3):
            chain.transact(probe, "store", i + 1, TAG, f"note {i}", signer=faucet)
    node = EmbeddedRpc(tmp_path / "chain", RpcSettings(max_batch=3, max_log_blocks=2, max_logs=2))
    yield node
    node.close()


def _ask(rpc: EmbeddedRpc, body: object) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return asyncio.run(handle(raw, rpc))


def _call(method: str, *params: Any, id: object = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}


def test_single_and_batch(rpc: EmbeddedRpc) -> None:
    answer = _ask(rpc, _call("eth_chainId"))
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": hex(EMBEDDED_CHAIN_ID)}
    batch = [_call("eth_blockNumber", id="a"), _call("nope", id=2), _call("net_version", id=None)]
    answers = _ask(rpc, batch)
    assert [a["id"] for a in answers] == ["a", 2, None]  # in order, ids echoed
    assert answers[0]["result"] == "0x4"
    assert answers[1]["error"]["code"] == -32601
    assert answers[2]["result"] == str(EMBEDDED_CHAIN_ID)
    for a in answers:
        well_formed(a)


def test_notifications_get_no_answer(rpc: EmbeddedRpc) -> None:
    note = {"jsonrpc": "2.0", "method": "eth_blockNumber"}
    assert _ask(rpc, note) is None
    assert _ask(rpc, [note, note]) is None
    answers = _ask(rpc, [note, _call("eth_blockNumber", id=9)])
    assert [a["id"] for a in answers] == [9]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", -32700),
        (b"\xff\xfe", -32700),
        (b"[" * 50 + b"]" * 50, -32700),  # nests too deep
        (b"1" * 5000, -32700),  # an integer Python refuses to parse
        (b"[]", -32600),
        (b'"eth_chainId"', -32600),
        (b"null", -32600),
        (json.dumps([_call("eth_chainId")] * 4).encode(), -32600),  # over max_batch
    ],
)
def test_whole_request_errors(rpc: EmbeddedRpc, body: bytes, code: int) -> None:
    answer = _ask(rpc, body)
    well_formed(answer)
    assert answer["id"] is None
    assert answer["error"]["code"] == code


@pytest.mark.parametrize(
    ("call", "code", "echoed"),
    [
        ({"id": 1, "method": "eth_chainId"}, -32600, 1),  # no "jsonrpc"
        ({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}, -32600, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, -32600, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": ""}, -32600, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": "x" * 200}, -32600, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "extra": 1}, -32600, 1),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "eth_chainId"}, -32600, None),
        ({"jsonrpc": "2.0", "id": True, "method": "eth_chainId"}, -32600, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"}, -32600, None),
        ({"jsonrpc": "2.0", "id": "i" * 300, "method": "eth_chainId"}, -32600, None),
        ({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": {"a": 1}}, -32602, 1),
        ({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": ["extra"]}, -32602, 1),
    ],
)
def test_call_errors(rpc: EmbeddedRpc, call: dict[str, Any], code: int, echoed: object) -> None:
    for answer in (_ask(rpc, call), _ask(rpc, [call])[0]):
        well_formed(answer)
        assert answer["error"]["code"] == code
        assert answer["id"] == echoed


def test_get_logs_filters_and_bounds(rpc: EmbeddedRpc) -> None:
    def logs(**query: Any) -> Any:
        return _ask(rpc, _call("eth_getLogs", query))

    found = logs(fromBlock="0x2", toBlock="0x3")["result"]
    assert [int(log["blockNumber"], 16) for log in found] == [2, 3]
    assert all(log["removed"] is False for log in found)
    # value is the second indexed topic of Stored(sender, value, tag, note)
    three = "0x" + (3).to_bytes(32, "big").hex()
    picked = logs(fromBlock="0x3", toBlock="0x4", topics=[None, None, [three]])["result"]
    assert [int(log["blockNumber"], 16) for log in picked] == [4]
    assert logs(fromBlock="0x3", toBlock="0x4", address="0x" + "00" * 20)["result"] == []
    assert logs(fromBlock="0x3", toBlock="latest", topics=[None, None, three])["result"]
    # more blocks, or more logs, than allowed
    assert logs(fromBlock="0x1", toBlock="0x4")["error"]["code"] == -32005
    assert logs(fromBlock="0x1", toBlock="0x2")["result"]
    # reversed or beyond the head: empty
    assert logs(fromBlock="0x4", toBlock="0x2")["result"] == []
    assert logs(fromBlock="0x9", toBlock="0x10")["result"] == []
    # malformed
    for bad in (
        {"fromBlock": 2},
        {"address": "0x12"},
        {"topics": ["0x12"]},
        {"topics": [None] * 5},
        {"limit": 5},
        {"blockHash": "0x" + "00" * 32, "fromBlock": "0x1"},
    ):
        assert logs(**bad)["error"]["code"] == -32602, bad


def test_max_logs(tmp_path: Path) -> None:
    faucet = Account.from_key(DEV_FAUCET_KEY)
    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        probe = chain.deploy("Probe", 0, signer=faucet)
        for i in range(3):
            chain.transact(probe, "store", i + 1, TAG, "n", signer=faucet)
    rpc = EmbeddedRpc(tmp_path / "chain", RpcSettings(max_logs=2))
    try:
        answer = _ask(rpc, _call("eth_getLogs", {"fromBlock": "0x0"}))
        assert answer["error"]["code"] == -32005
        assert len(_ask(rpc, _call("eth_getLogs", {"fromBlock": "0x3"}))["result"]) == 2
    finally:
        rpc.close()


def test_the_chain_is_owned_while_served(tmp_path: Path) -> None:
    rpc = EmbeddedRpc(tmp_path / "chain")
    try:
        with pytest.raises(ChainError, match="in use by another process"):
            open_embedded(tmp_path / "chain", lock_timeout=0.1)
    finally:
        rpc.close()
    with open_embedded(tmp_path / "chain", lock_timeout=0.1) as chain:
        assert chain.block_number() == 0


def test_body_limit_over_http(tmp_path: Path) -> None:
    server_workspace(tmp_path / "server")
    with Service(tmp_path / "server", "--allow", ALICE.address) as service:
        status, answer = rpc_raw(service, b" " * (1 << 20) + b"{}")
        assert status == 413
        well_formed(answer)
        assert answer["error"]["code"] == -32600
        status, answer = rpc_raw(service, json.dumps([_call("eth_chainId")] * 100).encode())
        assert status == 200
        assert len(answer) == 100
        status, answer = rpc_raw(service, json.dumps([_call("eth_chainId")] * 101).encode())
        assert answer["error"]["code"] == -32600
        status, answer = rpc_raw(service, json.dumps({"jsonrpc": "2.0", "method": "x"}).encode())
        assert (status, answer) == (204, None)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("eth_estimateGas", [{"nonce": "0x0"}, "0x9"]),  # py-evm's HeaderNotFound
        ("eth_call", [{"to": "0x" + "11" * 20}, "0x9"]),
        ("eth_getBalance", ["0x" + "11" * 20, "0x9"]),
        ("eth_feeHistory", ["0x1", "0x9"]),
    ],
)
def test_blocks_beyond_the_head(rpc: EmbeddedRpc, method: str, params: list[Any]) -> None:
    answer = _ask(rpc, _call(method, *params))
    assert answer["error"] == {"code": -32000, "message": "header not found"}

"""The embedded chain over JSON-RPC at ``/rpc`` of a real ``ailedger serve`` process:
web3.py's HTTPProvider uses it as a node, another workspace runs ``ailedger`` chain commands
through it, and what they did survives a restart of the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound, ContractLogicError, Web3RPCError

from _chain_util import ARTIFACTS
from _cli import ok
from _log_util import ALICE
from _rpc_util import rpc_call, rpc_error
from _service import Service, server_workspace
from _workflow_util import chain_client_workspace
from ailedger._toml import dumps as toml_dumps
from ailedger.chain import DEV_FAUCET_ADDRESS, DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID
from ailedger.chain.backends import open_workspace_chain
from ailedger.workspace import Workspace

FAUCET = Account.from_key(DEV_FAUCET_KEY)
PROBE = json.loads((ARTIFACTS / "Probe.json").read_text())
TAG = b"\x11" * 32


def _web3(service: Service) -> Web3:
    return Web3(HTTPProvider(service.url + "/rpc", request_kwargs={"timeout": 60}))


def _send(w3: Web3, tx: dict[str, Any], key: str = DEV_FAUCET_KEY) -> Any:
    """Fill, sign locally and send ``tx``; its receipt."""
    sender = Account.from_key(key)
    tx = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "maxFeePerGas": w3.eth.gas_price,
        "maxPriorityFeePerGas": w3.eth.max_priority_fee,
        **tx,
    }
    tx["gas"] = w3.eth.estimate_gas({**tx, "from": sender.address})
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)


def test_web3_uses_the_service_as_a_node(served: Service) -> None:
    assert served.ready["chain"] == {
        "backend": "embedded",
        "chain_id": EMBEDDED_CHAIN_ID,
        "rpc": served.url + "/rpc",
    }
    w3 = _web3(served)
    assert w3.is_connected()
    assert w3.eth.chain_id == EMBEDDED_CHAIN_ID
    assert w3.net.version == str(EMBEDDED_CHAIN_ID)
    assert w3.client_version.startswith("ailedger/")
    assert w3.eth.accounts == []  # the service holds no keys
    assert w3.eth.syncing is False
    head = w3.eth.block_number
    assert w3.eth.get_balance(DEV_FAUCET_ADDRESS) > 10**24

    # a plain transfer, signed by the client
    payee = Account.create().address
    receipt = _send(w3, {"to": payee, "value": 12345})
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == head + 1 == w3.eth.block_number
    assert w3.eth.get_balance(payee) == 12345
    assert w3.eth.get_transaction_count(FAUCET.address, "latest") == receipt["blockNumber"]
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert (tx["from"], tx["to"], tx["value"]) == (FAUCET.address, payee, 12345)
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["hash"] == receipt["blockHash"]
    assert block["transactions"][0]["hash"] == receipt["transactionHash"]
    assert w3.eth.get_block(receipt["blockHash"])["number"] == receipt["blockNumber"]
    with pytest.raises(BlockNotFound):
        w3.eth.get_block(10**6)
    history = w3.eth.fee_history(1, receipt["blockNumber"], [50])
    assert history["oldestBlock"] == receipt["blockNumber"]
    assert history["baseFeePerGas"][0] == block["baseFeePerGas"]
    assert len(history["baseFeePerGas"]) == 2  # and the next block's
    assert history["gasUsedRatio"] == [21000 / block["gasLimit"]]
    assert history["reward"] == [[w3.eth.max_priority_fee]]  # the transfer's tip

    # deploy a contract and use it
    factory = w3.eth.contract(abi=PROBE["abi"], bytecode=PROBE["bytecode"])
    deployed = _send(w3, factory.constructor(5).build_transaction({"from": FAUCET.address}))
    address = deployed["contractAddress"]
    assert address
    assert w3.eth.get_code(address).startswith(bytes.fromhex("6080"))
    probe = w3.eth.contract(address=address, abi=PROBE["abi"])
    assert probe.functions.value().call() == 5
    assert int.from_bytes(w3.eth.get_storage_at(address, 0), "big") == 5  # slot 0: value
    stored = _send(
        w3, probe.functions.store(42, TAG, "hello").build_transaction({"from": FAUCET.address})
    )
    assert probe.functions.value().call() == 42
    [event] = probe.events.Stored().process_receipt(stored)
    assert stored["logsBloom"] == w3.eth.get_block(stored["blockNumber"])["logsBloom"] != bytes(256)
    assert (event["args"]["value"], event["args"]["note"]) == (42, "hello")

    # logs: by address, by topic, bounded
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": address})
    assert [log["transactionHash"] for log in logs] == [stored["transactionHash"]]
    topic = Web3.keccak(text="Stored(address,uint256,bytes32,string)")
    assert len(w3.eth.get_logs({"fromBlock": 0, "topics": [topic]})) == 1
    assert w3.eth.get_logs({"fromBlock": 0, "topics": [topic, "0x" + "00" * 32]}) == []

    # reverts keep their data: web3 decodes the custom error and the reason
    with pytest.raises(ContractLogicError, match="probe: plain reason"):
        probe.functions.failWithReason().call()
    with pytest.raises(ContractLogicError):
        probe.functions.store(2_000_000, TAG, "too large").estimate_gas({"from": FAUCET.address})

    # no key on the server: sending unsigned is refused
    with pytest.raises(Web3RPCError, match="holds no keys"):
        w3.eth.send_transaction({"from": FAUCET.address, "to": payee, "value": 1})


def test_refusals_are_json_rpc_errors(served: Service) -> None:
    w3 = _web3(served)
    _send(w3, {"to": ALICE.address, "value": 1})  # the faucet's nonce 0 is used
    head = w3.eth.block_number
    payee = Account.create().address
    base = {"to": payee, "value": 1, "gas": 21000, "nonce": 0}
    # a transaction signed for another chain, and an unprotected (pre-EIP-155) one
    other = FAUCET.sign_transaction({**base, "chainId": 1, "gasPrice": 10**10})
    error = rpc_error(served, "eth_sendRawTransaction", "0x" + other.raw_transaction.hex())
    assert error["code"] == -32000
    assert "chain id 1" in error["message"]
    legacy = FAUCET.sign_transaction({**base, "gasPrice": 10**10})
    error = rpc_error(served, "eth_sendRawTransaction", "0x" + legacy.raw_transaction.hex())
    assert error["code"] == -32000
    assert "unprotected" in error["message"]
    # a stale nonce and a sender without funds are refused by the chain, not mined
    fee = {"chainId": EMBEDDED_CHAIN_ID, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1}
    stale = FAUCET.sign_transaction({**base, **fee, "nonce": 0})
    error = rpc_error(served, "eth_sendRawTransaction", "0x" + stale.raw_transaction.hex())
    assert error["code"] == -32000
    assert "nonce" in error["message"].lower()
    poor = Account.create().sign_transaction({**base, **fee})
    error = rpc_error(served, "eth_sendRawTransaction", "0x" + poor.raw_transaction.hex())
    assert error["code"] == -32000
    assert rpc_error(served, "eth_sendRawTransaction", "0x00")["code"] == -32602
    assert w3.eth.block_number == head  # nothing was mined
    # parameters
    assert rpc_error(served, "eth_getBalance", "0x12")["code"] == -32602
    assert rpc_error(served, "eth_getBalance", payee, "next")["code"] == -32602
    assert rpc_error(served, "eth_getBalance")["code"] == -32602
    assert rpc_error(served, "eth_getBalance", payee, "0x01")["code"] == -32602  # leading 0
    assert rpc_error(served, "eth_getBalance", payee, hex(head + 100))["code"] == -32000
    assert rpc_error(served, "eth_getBlockByNumber", "latest", "yes")["code"] == -32602
    assert rpc_error(served, "eth_call", {"to": payee, "bogus": 1})["code"] == -32602
    assert rpc_error(served, "eth_feeHistory", "0x0", "latest")["code"] == -32602
    assert rpc_call(served, "eth_getTransactionReceipt", "0x" + "ab" * 32)["result"] is None
    assert rpc_call(served, "eth_getTransactionCount", payee, "pending")["result"] == "0x0"
    # methods
    assert rpc_error(served, "eth_sign", FAUCET.address, "0x00")["code"] == -32601
    assert rpc_error(served, "personal_unlockAccount", FAUCET.address, "x")["code"] == -32601
    assert rpc_error(served, "debug_traceTransaction", "0x00")["code"] == -32601


def _client(root: Path, chain: dict[str, Any]) -> Workspace:
    return chain_client_workspace(root, chain, "example.com/rpc-client")


def test_another_workspace_uses_the_served_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_workspace(tmp_path / "server")
    service = Service(tmp_path / "server", "--allow", ALICE.address).start()
    try:
        url = service.ready["chain"]["rpc"]
        _client(tmp_path / "client", {"backend": "rpc", "url": url, "chain_id": EMBEDDED_CHAIN_ID})
        monkeypatch.chdir(tmp_path / "client")
        deployed = ok(["chain", "deploy", "--key", "admin"])
        assert deployed["chain_id"] == EMBEDDED_CHAIN_ID
        ok(["log", "append", "e0.json", "e1.json", "e2.json"])
        anchored = ok(["anchor", "--key", "logkey", "--witness-key", "witness"])
        assert anchored["anchor"]["size"] == 3
        status = ok(["chain", "status"])
        assert (status["backend"], status["chain_id"]) == ("rpc", EMBEDDED_CHAIN_ID)
        assert status["log"]["latest"]["size"] == 3
        head = _web3(service).eth.block_number
        # `--rpc URL` works the same from a workspace configured for another chain
        (tmp_path / "third").mkdir()
        _client(tmp_path / "third", {"backend": "embedded"})
        monkeypatch.chdir(tmp_path / "third")
        assert ok(["chain", "status", "--rpc", url])["block_number"] == head
    finally:
        service.stop()

    # the serving workspace holds what the client did (its chain, opened locally once free)
    addresses = [c["address"] for c in deployed["contracts"].values()]
    with open_workspace_chain(server) as chain:
        assert chain.block_number() == head
        for address in addresses:
            assert chain.code(address), address

    # and the service serves it again after a restart
    service = Service(tmp_path / "server", "--allow", ALICE.address).start()
    try:
        url = service.ready["chain"]["rpc"]
        assert _web3(service).eth.block_number == head
        monkeypatch.chdir(tmp_path / "client")
        config = json.loads(json.dumps(Workspace.open(tmp_path / "client").config.data))
        config["chain"]["url"] = url  # a new port
        (tmp_path / "client" / ".ailedger" / "config.toml").write_text(toml_dumps(config))
        status = ok(["chain", "status"])
        assert status["block_number"] == head
        assert status["log"]["latest"]["size"] == 3
    finally:
        service.stop()


def test_external_chain_is_named_not_served(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    data = dict(ws.config.data) | {
        "chain": {"backend": "rpc", "url": "http://user:secret@127.0.0.1:9/node", "chain_id": 5}
    }
    ws.config_path.write_text(toml_dumps(data), encoding="utf-8")
    with Service(tmp_path / "server", "--allow", ALICE.address) as service:
        named = {"backend": "rpc", "chain_id": 5, "rpc": "http://127.0.0.1:9/node"}
        assert service.ready["chain"] == named
        status, _, body = service.request("GET", "/v1/chain")
        assert (status, json.loads(body)) == (200, named)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        status, headers, data = service.request("POST", "/rpc", body)
        assert status == 404
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(data)
        assert "http://127.0.0.1:9/node" in problem["detail"]
        assert "secret" not in problem["detail"]
    assert not (tmp_path / "server" / ".ailedger" / "chain").exists()


def test_no_chain_rpc_leaves_the_chain_alone(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    with Service(tmp_path / "server", "--allow", ALICE.address, "--no-chain-rpc") as service:
        assert service.ready["chain"] == {
            "backend": "embedded",
            "chain_id": EMBEDDED_CHAIN_ID,
            "rpc": None,
        }
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
        status, headers, data = service.request("POST", "/rpc", body)
        assert status == 404
        assert headers["content-type"] == "application/problem+json"
        assert "--no-chain-rpc" in json.loads(data)["detail"]
        with open_workspace_chain(ws) as chain:  # not locked by the service
            assert chain.block_number() == 0

"""The JSON-RPC backend: node down, chain-id checks, retries, confirmations; revert decoding."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from _anvil import Anvil, free_port
from _chain_util import ARTIFACTS, ETHER
from ailedger.chain import ANVIL_CHAIN_ID, connect_rpc, decode_revert
from ailedger.chain._revert import revert_error
from ailedger.errors import ChainError, NodeUnavailable

TAG = b"\x33" * 32


def test_node_down_is_node_unavailable() -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(NodeUnavailable) as info:
        connect_rpc(url, retries=1, backoff=0.01)
    assert str(info.value) == f"cannot reach {url}: connection refused"
    assert info.value.exit_code == 8
    assert info.value.hint


@pytest.mark.chain
def test_chain_id_mismatch_is_a_clear_error(anvil_node: Anvil) -> None:
    with pytest.raises(ChainError, match=f"chain id {ANVIL_CHAIN_ID}, but chain id 1 is"):
        connect_rpc(anvil_node.url, chain_id=1)
    chain = connect_rpc(anvil_node.url, chain_id=ANVIL_CHAIN_ID)
    assert chain.chain_id == ANVIL_CHAIN_ID
    chain.close()


@pytest.mark.chain
def test_node_stopping_mid_session(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    chain = connect_rpc(node.url, retries=1, backoff=0.01, artifacts_dir=ARTIFACTS)
    me: LocalAccount = Account.create()
    chain.fund(me.address, ETHER)
    node.stop()
    with pytest.raises(NodeUnavailable, match=f"cannot reach {node.url}"):
        chain.block_number()
    with pytest.raises(NodeUnavailable):
        chain.deploy("Probe", 1, signer=me)
    chain.close()


@pytest.mark.chain
def test_retries_ride_out_a_node_that_comes_back(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    chain = connect_rpc(node.url, retries=8, backoff=0.05)
    head = chain.block_number()
    node.stop()
    restarter = threading.Timer(0.3, node.start)
    restarter.start()
    try:
        assert chain.block_number() == head  # a fresh anvil, same genesis height
    finally:
        restarter.join()
        chain.close()


@pytest.mark.chain
def test_confirmations_wait_for_later_blocks(make_anvil: Callable[..., Anvil]) -> None:
    node = make_anvil()
    chain = connect_rpc(node.url, confirmations=2, receipt_timeout=0.5, poll_interval=0.02)
    me: LocalAccount = Account.create()
    with pytest.raises(ChainError, match="not confirmed"):
        chain.fund(me.address, ETHER)  # mined, but nothing follows it on an idle anvil
    done = threading.Event()

    def mine_until_done() -> None:
        while not done.wait(0.05):
            node.mine(1)

    miner = threading.Thread(target=mine_until_done)
    miner.start()
    chain.receipt_timeout = 30
    try:
        receipt = chain.send_value(Account.create().address, 1, signer=me)
    finally:
        done.set()
        miner.join()
    assert chain.block_number() >= receipt.block_number + 2
    chain.close()


@pytest.mark.chain
def test_consecutive_sends_from_two_clients_share_a_key(anvil_node: Anvil) -> None:
    one = connect_rpc(anvil_node.url, artifacts_dir=ARTIFACTS)
    two = connect_rpc(anvil_node.url, artifacts_dir=ARTIFACTS)
    me: LocalAccount = Account.create()
    one.fund(me.address, ETHER)
    probe = one.deploy("Probe", 0, signer=me)
    same = two.at("Probe", probe.address)
    for i in range(6):  # each client's cached nonce goes stale every other send
        (one if i % 2 else two).transact(same, "store", i, TAG, "x", signer=me)
    assert one.call(probe, "count") == 6
    assert one.nonce(me.address) == 7
    one.close()
    two.close()


# -- revert decoding ---------------------------------------------------------------------

_ABI = [
    {
        "type": "error",
        "name": "Bad",
        "inputs": [
            {"name": "who", "type": "address"},
            {"name": "amount", "type": "uint256"},
            {"name": "why", "type": "string"},
            {"name": "list", "type": "address[]"},
        ],
    }
]
_BAD = keccak(text="Bad(address,uint256,string,address[])")[:4]


@given(
    who=st.binary(min_size=20, max_size=20),
    amount=st.integers(min_value=0, max_value=2**256 - 1),
    why=st.text(max_size=40),
    many=st.lists(st.binary(min_size=20, max_size=20), max_size=3),
)
def test_custom_errors_round_trip(who: bytes, amount: int, why: str, many: list[bytes]) -> None:
    data = _BAD + encode(["address", "uint256", "string", "address[]"], [who, amount, why, many])
    name, args = decode_revert(data, [_ABI])
    assert name == "Bad"
    assert args == {
        "who": to_checksum_address(who),
        "amount": amount,
        "why": why,
        "list": [to_checksum_address(m) for m in many],
    }
    assert str(revert_error("X.f", data, [_ABI])).startswith("X.f reverted: Bad(who=")


@given(reason=st.text(max_size=60))
def test_require_reasons_round_trip(reason: str) -> None:
    data = bytes.fromhex("08c379a0") + encode(["string"], [reason])
    assert decode_revert(data, []) == ("Error", {"reason": reason})


def test_panics_and_unknown_data() -> None:
    panic = bytes.fromhex("4e487b71") + encode(["uint256"], [0x11])
    assert decode_revert(panic, []) == (
        "Panic",
        {"code": 0x11, "meaning": "arithmetic overflow or underflow"},
    )
    assert "panic 0x11" in str(revert_error("X.f", panic, []))
    assert decode_revert(b"\xde\xad\xbe\xef", [_ABI]) == ("", {})
    assert "unknown error 0xdeadbeef" in str(revert_error("X.f", b"\xde\xad\xbe\xef", []))
    assert decode_revert(_BAD + b"\x00" * 5, [_ABI]) == ("", {})  # truncated: not decodable
    assert str(revert_error("X.f", b"", [])) == "X.f reverted: no reason given"


@pytest.mark.chain
def test_event_index_follows_a_reorg(make_anvil: Callable[..., Anvil], tmp_path: Path) -> None:
    node = make_anvil()
    chain = connect_rpc(node.url, index_path=tmp_path / "events.sqlite", artifacts_dir=ARTIFACTS)
    me: LocalAccount = Account.create()
    chain.fund(me.address, ETHER)
    probe = chain.deploy("Probe", 0, signer=me)
    chain.transact(probe, "store", 1, TAG, "kept", signer=me)
    snapshot = node.rpc("evm_snapshot")
    chain.transact(probe, "store", 2, TAG, "orphaned", signer=me)
    chain.transact(probe, "store", 3, TAG, "orphaned too", signer=me)
    assert [e.args["note"] for e in chain.events(probe)] == ["kept", "orphaned", "orphaned too"]
    chain.close()

    node.rpc("evm_revert", [snapshot])  # those two blocks are gone: another branch grows
    chain = connect_rpc(node.url, index_path=tmp_path / "events.sqlite", artifacts_dir=ARTIFACTS)
    probe = chain.at("Probe", probe.address)
    chain.transact(probe, "store", 4, TAG, "new branch", signer=me)
    assert [e.args["note"] for e in chain.events(probe)] == ["kept", "new branch"]
    chain.close()

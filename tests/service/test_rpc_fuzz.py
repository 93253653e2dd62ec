"""Fuzz ``POST /rpc`` of a real ``ailedger serve``: whatever the body, the answer is a
well-formed JSON-RPC response (or none, for notifications), never an HTTP 500 and never an
internal error (-32603), and nothing is mined from a fuzzed request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _log_util import ALICE
from _rpc_util import rpc_call, rpc_raw, well_formed
from _service import Service, server_workspace
from ailedger.chain import DEV_FAUCET_ADDRESS

FUZZ = settings(
    deadline=None,  # a shared machine: never depend on its speed
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

METHODS = [
    "eth_accounts",
    "eth_blockNumber",
    "eth_call",
    "eth_chainId",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getCode",
    "eth_getLogs",
    "eth_getStorageAt",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas",
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "eth_sign",
    "eth_syncing",
    "net_version",
    "web3_clientVersion",
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("rpc-fuzz") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address) as service:
        yield service


hexes = (
    st.sampled_from(["latest", "pending", "earliest", "safe", "finalized", "0x", "0x0", "0x1"])
    | st.from_regex(r"0x[0-9a-fA-F]{0,70}", fullmatch=True)
    | st.just(DEV_FAUCET_ADDRESS)
    | st.integers(min_value=-(2**70), max_value=2**70)
)
scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=12) | hexes
tx_objects = st.dictionaries(
    st.sampled_from(["from", "to", "gas", "gasPrice", "value", "data", "input", "nonce", "x"]),
    hexes | st.none(),
    max_size=5,
)
filters = st.dictionaries(
    st.sampled_from(["fromBlock", "toBlock", "address", "topics", "blockHash", "y"]),
    hexes | st.none() | st.lists(hexes | st.none() | st.lists(hexes, max_size=2), max_size=5),
    max_size=4,
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner)
)
params = st.lists(hexes | tx_objects | filters | scalars, max_size=4) | json_values
calls = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "method": st.sampled_from(METHODS) | st.text(max_size=20)},
    optional={
        "id": st.none() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
        "params": params,
    },
)
bodies = (
    calls.map(json.dumps)
    | st.lists(calls, min_size=0, max_size=5).map(json.dumps)
    | json_values.map(json.dumps)
    | st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
)


def _check(status: int, answer: Any) -> None:
    assert status in (200, 204), (status, answer)
    if status == 204:
        assert answer is None
        return
    for one in answer if isinstance(answer, list) else [answer]:
        well_formed(one)
        if "error" in one:
            assert one["error"]["code"] != -32603, one  # an internal error is a bug


@FUZZ
@given(body=bodies)
def test_rpc_never_fails_badly(fuzzed: Service, body: str) -> None:
    head = rpc_call(fuzzed, "eth_blockNumber")["result"]
    status, answer = rpc_raw(fuzzed, body.encode("utf-8", "surrogatepass"))
    _check(status, answer)
    assert rpc_call(fuzzed, "eth_blockNumber")["result"] == head  # nothing was mined


@FUZZ
@given(method=st.sampled_from(METHODS), args=st.lists(hexes | tx_objects | filters, max_size=4))
def test_methods_with_fuzzed_params(fuzzed: Service, method: str, args: list[Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": args})
    status, answer = rpc_raw(fuzzed, body.encode())
    _check(status, answer)
    assert rpc_call(fuzzed, "eth_blockNumber")["result"] == "0x0"


addresses = st.sampled_from([DEV_FAUCET_ADDRESS, "0x" + "00" * 20, "0x" + "ff" * 20])
quantities = st.integers(min_value=0, max_value=2**256 - 1).map(hex) | st.sampled_from(["0x0"])
blocks = st.sampled_from(["latest", "pending", "earliest", "safe", "finalized", "0x0", "0x1"])
words = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
typed_tx = st.fixed_dictionaries(
    {},
    optional={
        "from": addresses,
        "to": addresses,
        "gas": quantities,
        "gasPrice": quantities,
        "maxFeePerGas": quantities,
        "maxPriorityFeePerGas": quantities,
        "value": quantities,
        "data": st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
        "input": st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
        "nonce": quantities,
        "type": st.sampled_from(["0x0", "0x2"]),
        "chainId": quantities,
    },
)
typed_calls = st.one_of(
    st.tuples(st.sampled_from(["eth_call", "eth_estimateGas"]), st.tuples(typed_tx, blocks)),
    st.tuples(st.sampled_from(["eth_call", "eth_estimateGas"]), st.tuples(typed_tx)),
    st.tuples(
        st.just("eth_feeHistory"),
        st.tuples(
            quantities,
            blocks | quantities,
            st.lists(st.floats(min_value=-1, max_value=101) | st.integers(), max_size=3),
        ),
    ),
    st.tuples(
        st.sampled_from(["eth_getBalance", "eth_getCode", "eth_getTransactionCount"]),
        st.tuples(addresses, blocks | quantities),
    ),
    st.tuples(st.just("eth_getStorageAt"), st.tuples(addresses, quantities, blocks | quantities)),
    st.tuples(st.just("eth_getBlockByNumber"), st.tuples(blocks | quantities, st.booleans())),
    st.tuples(
        st.just("eth_getLogs"),
        st.tuples(
            st.fixed_dictionaries(
                {},
                optional={
                    "fromBlock": blocks | quantities,
                    "toBlock": blocks | quantities,
                    "address": addresses | st.lists(addresses, max_size=3),
                    "topics": st.lists(
                        st.none()
                        | st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
                        max_size=4,
                    ),
                },
            )
        ),
    ),
    st.tuples(
        st.just("eth_sendRawTransaction"),
        st.tuples(st.binary(max_size=120).map(lambda b: "0x" + b.hex())),
    ),
)


@FUZZ
@given(call=typed_calls)
def test_well_typed_calls(fuzzed: Service, call: tuple[str, tuple[Any, ...]]) -> None:
    method, args = call
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(args)})
    status, answer = rpc_raw(fuzzed, body.encode())
    _check(status, answer)
    assert rpc_call(fuzzed, "eth_blockNumber")["result"] == "0x0"

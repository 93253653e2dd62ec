"""The chain client's conformance suite (tests/chain/test_conformance.py), run a third way: on
the embedded chain served by ``ailedger serve`` at ``/rpc``, through the ``rpc`` backend, as
another party's ``ailedger`` uses it. Plus: what a client was told is mined survives a SIGKILL
of the service."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from _chain_util import ARTIFACTS, ETHER
from _log_util import ALICE
from _service import Service, server_workspace
from ailedger.chain import EMBEDDED_CHAIN_ID, Chain, connect_rpc
from chain.test_conformance import (
    TAG,
    test_bad_requests_fail_clearly,
    test_call_reverts_are_decoded,
    test_custom_error_is_decoded_before_sending,
    test_deploy_and_call,
    test_events_query_order_and_filters,
    test_mined_revert_is_decoded,
    test_nonce_sequences,
    test_status,
    test_transact_returns_receipt_with_decoded_events,
    test_value_transfers,
)

__all__ = [
    "test_bad_requests_fail_clearly",
    "test_call_reverts_are_decoded",
    "test_custom_error_is_decoded_before_sending",
    "test_deploy_and_call",
    "test_events_query_order_and_filters",
    "test_mined_revert_is_decoded",
    "test_nonce_sequences",
    "test_status",
    "test_transact_returns_receipt_with_decoded_events",
    "test_value_transfers",
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("rpc-conformance") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address) as service:
        yield service


def _connect(url: str, index: Path | None = None) -> Chain:
    return connect_rpc(url, EMBEDDED_CHAIN_ID, index_path=index, artifacts_dir=ARTIFACTS, retries=1)


@pytest.fixture
def chain(node: Service) -> Iterator[Chain]:
    with _connect(node.ready["chain"]["rpc"]) as client:
        yield client


@pytest.fixture
def account(chain: Chain) -> LocalAccount:
    """A fresh account holding 10 ether on the served chain."""
    acct: LocalAccount = Account.create()
    chain.fund(acct.address, 10 * ETHER)
    return acct


def test_acknowledged_transactions_survive_a_kill(tmp_path: Path) -> None:
    server_workspace(tmp_path / "server")
    service = Service(tmp_path / "server", "--allow", ALICE.address).start()
    try:
        owner: LocalAccount = Account.create()
        with _connect(service.ready["chain"]["rpc"], tmp_path / "index.sqlite") as client:
            client.fund(owner.address, ETHER)
            probe = client.deploy("Probe", 0, signer=owner)
            for i in range(5):
                client.transact(probe, "store", i + 1, TAG, f"n{i}", signer=owner)
            head = client.block_number()
        service.stop(signal.SIGKILL)  # no shutdown: only what was committed is left
        service.start()
        with _connect(service.ready["chain"]["rpc"], tmp_path / "index.sqlite") as client:
            assert client.block_number() == head
            probe = client.at("Probe", probe.address, from_block=probe.block_number)
            assert client.call(probe, "count") == 5
            assert [e.args["value"] for e in client.events(probe, "Stored")] == [1, 2, 3, 4, 5]
            client.transact(probe, "store", 6, TAG, "after", signer=owner)
            assert client.call(probe, "value") == 6
    finally:
        service.stop()

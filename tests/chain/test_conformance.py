"""One suite, every backend: the embedded chain and a real anvil behave the same."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from _chain_util import ETHER, Backend
from ailedger.chain import Chain, ContractReverted
from ailedger.errors import InvalidInput, NotFound, TransactionReverted

TAG = b"\x11" * 32


def test_deploy_and_call(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 5, signer=account)
    assert chain.code(probe.address).startswith(bytes.fromhex("6080"))
    assert chain.call(probe, "value") == 5
    assert chain.call(probe, "owner") == account.address
    assert chain.call(probe, "info") == [account.address, 5, 0]
    assert probe.block_number == chain.block_number()


def test_transact_returns_receipt_with_decoded_events(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    receipt = chain.transact(probe, "store", 42, TAG, "hello", signer=account)
    assert receipt.block_number == chain.block_number()
    assert receipt.sender == account.address
    assert receipt.to == probe.address
    assert receipt.gas_used > 21_000
    [event] = receipt.events
    assert event.event == "Stored"
    assert event.args == {
        "sender": account.address,
        "value": 42,
        "tag": "0x" + TAG.hex(),
        "note": "hello",
    }
    assert event.tx_hash == receipt.tx_hash
    assert chain.call(probe, "value") == 42
    assert chain.call(probe, "count") == 1


def test_events_query_order_and_filters(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    for v in (3, 1, 2):
        chain.transact(probe, "store", v, TAG, f"n{v}", signer=account)
    chain.transact(probe, "pay", signer=account, value=1234)
    stored = chain.events(probe, "Stored")
    assert [e.args["value"] for e in stored] == [3, 1, 2]
    assert [e.block_number for e in stored] == sorted(e.block_number for e in stored)
    assert [e.args["note"] for e in chain.events(probe, "Stored", args={"value": 1})] == ["n1"]
    [paid] = chain.events(probe, "Paid")
    assert paid.args == {"from": account.address, "amount": 1234}
    later = chain.events(probe, from_block=stored[1].block_number)
    assert [e.event for e in later] == ["Stored", "Stored", "Paid"]
    assert chain.events(probe, "Stored", to_block=stored[0].block_number) == stored[:1]


def test_events_sent_by_another_client_are_indexed(backend: Backend) -> None:
    first = backend.open()
    alice: LocalAccount = Account.create()
    first.fund(alice.address, ETHER)
    probe = first.deploy("Probe", 0, signer=alice)
    address = probe.address
    if backend.kind == "embedded":  # one process at a time: hand the directory over
        first.close()
        second = backend.open()
    else:
        second = backend.open()
    other = second.at("Probe", address, from_block=probe.block_number)
    second.transact(other, "store", 9, TAG, "from second", signer=alice)
    if backend.kind == "embedded":
        second.close()
        first = backend.open()
        probe = first.at("Probe", address)
    assert [e.args["note"] for e in first.events(probe, "Stored")] == ["from second"]


def test_custom_error_is_decoded_before_sending(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    head = chain.block_number()
    with pytest.raises(ContractReverted) as info:
        chain.transact(probe, "store", 2_000_000, TAG, "too big", signer=account)
    err = info.value
    assert isinstance(err, TransactionReverted)
    assert err.exit_code == 9
    assert err.error_name == "TooLarge"
    assert err.error_args == {"value": 2_000_000, "limit": 1_000_000}
    assert err.tx_hash is None
    assert "Probe.store reverted: TooLarge(value=2000000, limit=1000000)" in str(err)
    assert chain.block_number() == head  # nothing was sent
    # the nonce was not consumed: the next transaction goes through
    chain.transact(probe, "store", 1, TAG, "ok", signer=account)


def test_mined_revert_is_decoded(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    with pytest.raises(ContractReverted) as info:
        chain.transact(probe, "store", 2_000_001, TAG, "x", signer=account, gas=200_000)
    assert info.value.tx_hash is not None
    assert info.value.error_name == "TooLarge"
    assert chain.call(probe, "count") == 0
    chain.transact(probe, "store", 2, TAG, "after", signer=account)
    assert chain.call(probe, "count") == 1


def test_call_reverts_are_decoded(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    stranger = Account.create().address  # no balance: calls cost nothing
    with pytest.raises(ContractReverted) as info:
        chain.call(probe, "ownerOnly", sender=stranger)
    assert info.value.error_name == "NotOwner"
    assert info.value.error_args == {"caller": stranger, "owner": account.address}
    assert chain.call(probe, "ownerOnly", sender=account.address) is True
    with pytest.raises(ContractReverted, match="probe: plain reason") as info:
        chain.call(probe, "failWithReason")
    assert info.value.error_name == "Error"


def test_nonce_sequences(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    other: LocalAccount = Account.create()
    chain.fund(other.address, ETHER)
    start = chain.nonce(account.address)
    hashes = []
    for i in range(12):
        signer = account if i % 3 else other
        hashes.append(chain.transact(probe, "store", i, TAG, "n", signer=signer).tx_hash)
    assert len(set(hashes)) == 12
    assert chain.nonce(account.address) == start + 8
    assert chain.nonce(other.address) == 4
    assert chain.call(probe, "count") == 12


def test_value_transfers(chain: Chain, account: LocalAccount) -> None:
    target = Account.create().address
    assert chain.balance(target) == 0
    chain.send_value(target, 12345, signer=account)
    assert chain.balance(target) == 12345
    chain.fund(target, ETHER)
    assert chain.balance(target) == ETHER + 12345
    with pytest.raises(InvalidInput):
        chain.send_value(target, -1, signer=account)


def test_bad_requests_fail_clearly(chain: Chain, account: LocalAccount) -> None:
    with pytest.raises(NotFound, match="NoSuchContract"):
        chain.deploy("NoSuchContract", signer=account)
    probe = chain.deploy("Probe", 0, signer=account)
    with pytest.raises(InvalidInput, match=r"Probe\.store"):
        chain.transact(probe, "store", "not a number", TAG, "x", signer=account)
    with pytest.raises(InvalidInput):
        chain.deploy("Probe", signer=account)  # missing constructor argument


def test_status(chain: Chain, account: LocalAccount) -> None:
    probe = chain.deploy("Probe", 0, signer=account)
    status = chain.status()
    assert status["chain_id"] == chain.chain_id
    assert status["block_number"] == chain.block_number()
    assert status["tracked_contracts"] == {probe.address: "Probe"}


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "sigkill"])
def test_restart_keeps_everything(restartable: Backend, kill: bool) -> None:
    chain = restartable.open()
    alice: LocalAccount = Account.create()
    chain.fund(alice.address, ETHER)
    probe = chain.deploy("Probe", 7, signer=alice)
    receipts = [chain.transact(probe, "store", v, TAG, f"v{v}", signer=alice) for v in (1, 2, 3)]
    head = chain.block_number()
    balance = chain.balance(alice.address)
    code = chain.code(probe.address)

    chain = restartable.restart(chain, kill=kill)
    assert chain.block_number() == head
    assert chain.balance(alice.address) == balance
    assert chain.code(probe.address) == code
    probe = chain.at("Probe", probe.address)
    assert chain.call(probe, "count") == 3
    assert [e.tx_hash for e in chain.events(probe, "Stored")] == [r.tx_hash for r in receipts]
    # and it carries on from there
    chain.transact(probe, "store", 4, TAG, "v4", signer=alice)
    assert chain.block_number() == head + 1
    assert chain.call(probe, "value") == 4

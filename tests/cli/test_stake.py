"""``ailedger stake ...`` on the embedded chain, through the real entry point: deposits in
ether and in an ERC-20 (decimal units), the two-step withdrawal, status, and one decoded line
with a hint for every refusal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import ailedger.cli._chain
import ailedger.cli._stake  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok
from _log_util import ALICE
from _workflow_util import NewWorkspace
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.stake import Token, format_units, parse_units
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.workspace import Workspace

ETH = 10**18
BOB = Secp256k1Signer(bytes.fromhex("78" * 32))


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace("example.com/cli-stake")
    store.add("admin", ALICE, PASSWORD)
    store.add("bob", BOB, PASSWORD)
    ok(["chain", "deploy", "--key", "admin", "--unbonding-delay", "1"])
    return ws


def test_ether_stake_round_trip_and_refusals(ws: Workspace) -> None:
    doc = ok(["stake", "deposit", "1.5", "--key", "bob"])
    assert doc["participant"] == BOB.address
    assert doc["credited"] == 3 * ETH // 2
    status = ok(["stake", "status", "--key", "bob"])
    assert status["stake"]["free"] == 3 * ETH // 2
    assert status["unbonding_delay"] == 1
    assert status["totals"]["staked"] == 3 * ETH // 2
    assert ok(["stake", "status", "--address", BOB.address])["stake"] == status["stake"]

    fails(["stake", "withdraw", "--key", "bob"], 9, "NothingUnbonding", "hint:")
    fails(["stake", "request-withdraw", "2", "--key", "bob"], 9, "InsufficientFree", "hint:")
    doc = ok(["stake", "request-withdraw", "0.5", "--key", "bob"])
    assert doc["stake"]["unbonding"] == ETH // 2
    # the unbonding delay is 1 s: the embedded chain stamps each new block with the time the
    # one before it was mined, so wait, then mine a block (another deposit)
    time.sleep(1.5)
    ok(["stake", "deposit", "0.25", "--key", "bob"])
    doc = ok(["stake", "withdraw", "--key", "bob"])
    assert doc["withdrawn"] == ETH // 2
    status = ok(["stake", "status", "--key", "bob"])
    assert status["stake"]["withdrawn"] == ETH // 2
    assert status["stake"]["free"] == ETH + ETH // 4
    fails(["stake", "claim", "--key", "bob"], 9, "NothingOwed")
    fails(["stake", "deposit", "0", "--key", "bob"], 3, "positive")
    fails(["stake", "deposit", "0.0000000000000000001", "--key", "bob"], 3, "decimals")
    fails(["stake", "status"], 3, "exactly one of")


def test_not_yet_due_is_one_line(ws: Workspace) -> None:
    ok(["chain", "deploy", "--key", "admin", "--force", "--unbonding-delay", "3600"])
    ok(["stake", "deposit", "1", "--key", "bob"])
    ok(["stake", "request-withdraw", "1", "--key", "bob"])
    out = fails(["stake", "withdraw", "--key", "bob"], 9, "UnbondingNotDue", "hint: wait")
    assert len([line for line in out.splitlines() if line.strip()]) == 2


def test_token_stake_in_token_units(ws: Workspace) -> None:
    with open_workspace_chain(ws) as chain:
        chain.fund(ALICE.address, 10 * ETH)
        token = chain.deploy(
            "ConsortiumToken", "Consortium", "CON", ALICE.address, 10**6 * ETH, signer=ALICE
        )
        Token(chain, token).transfer(BOB.address, 100 * ETH, signer=ALICE)
    doc = ok(["stake", "deposit", "12.25", "--token", token.address, "--key", "bob"])
    assert doc["credited"] == 1225 * ETH // 100
    status = ok(["stake", "status", "--key", "bob", "--token", token.address])
    assert (status["symbol"], status["decimals"]) == ("CON", 18)
    assert status["stake"]["free"] == 1225 * ETH // 100
    assert ok(["stake", "status", "--key", "bob"])["stake"]["free"] == 0  # ether is apart
    fails(["stake", "deposit", "1000", "--token", token.address, "--key", "bob"], 9, "ERC20")


def test_units() -> None:
    assert parse_units("1.5", 18) == 3 * ETH // 2
    assert parse_units("7", 0) == 7
    assert format_units(3 * ETH // 2, 18) == "1.5"
    assert format_units(10**6, 6) == "1"
    for bad in ("0", "-1", "x", "nan", "0.5"):
        with pytest.raises(InvalidInput):
            parse_units(bad, 0)

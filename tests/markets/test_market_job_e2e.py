"""``ailedger market job`` end to end, on the embedded chain and on anvil, through the CLI a
user runs: the contracts deployed (`chain deploy`), the provider's stake deposited, a job
opened by the consumer and accepted by the provider; a real ``market serve --commit-epochs``
process serves the registered digits model and commits its epochs on-chain; the consumer
calls it with signed requests (`market call --key`), approves one epoch and never settles the
other; after the deadline the provider finishes the job and both claim. Every amount is read
back from the chain (the contract's books, balances, the provider's stake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3.providers.eth_tester import EthereumTesterProvider

from _anvil import Anvil
from _cli import PASSWORD, fails, ok
from _workflow_util import fast_keystore
from ailedger.chain.backends import open_workspace_chain
from ailedger.identity.keys import Secp256k1Signer
from ailedger.workspace import Workspace
from markets._helpers import CONSUMER, PROVIDER, Market, Provider, make_market

VERIFIER = Secp256k1Signer(bytes.fromhex("77" * 32))
PRICE = 1000
CALLS = 10
STAKE = 10**17
DEADLINE = 3_600
SETTLE_WINDOW = 86_400  # what `ailedger chain deploy` gives InferenceMarket
PAYEE = "0x" + "5a" * 20  # fresh accounts: their balances show exactly what was claimed
REFUNDEE = "0x" + "5b" * 20


@dataclass
class World:
    market: Market
    rpc: tuple[str, ...]

    def cli(self, *args: object) -> dict[str, Any]:
        return ok(["--workspace", self.market.root, *args, *self.rpc])

    def fails(self, code: int, *args: object, needle: str = "") -> str:
        return fails(["--workspace", self.market.root, *args, *self.rpc], code, needle)

    def advance(self, seconds: int) -> None:
        """Mine a block ``seconds`` later (the chain is opened only for this, then closed)."""
        ws = Workspace.open(self.market.root)
        url = self.rpc[1] if self.rpc else None
        with open_workspace_chain(ws, url) as chain:
            target = chain.block_timestamp() + seconds
            request: Any = chain.w3.provider.make_request
            if isinstance(chain.w3.provider, EthereumTesterProvider):
                request("testing_timeTravel", [target])
                request("evm_mine", [1])
            else:
                request("evm_setNextBlockTimestamp", [target])
                request("evm_mine", [])


def _world(root: Path, rpc: tuple[str, ...]) -> World:
    market = make_market(root)
    store = fast_keystore(Workspace.open(root))
    store.add("admin", Secp256k1Signer(bytes.fromhex("71" * 32)), PASSWORD)
    store.add("verifier", VERIFIER, PASSWORD)
    world = World(market, rpc)
    # a short unbonding delay: the InferenceMarket acts twice as long after its registration
    world.cli("chain", "deploy", "--key", "admin", "--unbonding-delay", "1")
    world.advance(3)
    world.cli("stake", "deposit", "1", "--key", "provider")
    return world


def _scenario(world: World) -> None:
    market = world.market
    opened = world.cli(
        "market", "job", "open", "--key", "consumer", "--provider", "provider",
        "--model", "digits@1", "--price", PRICE, "--max-calls", CALLS, "--stake", STAKE,
        "--verifier", "verifier", "--deadline", f"+{DEADLINE}", "--k", 2,
    )  # fmt: skip
    job = opened["job"]
    assert opened["status"] == "open"
    assert opened["consumer"] == CONSUMER
    assert opened["escrow"] == PRICE * CALLS
    accepted = world.cli("market", "job", "accept", job, "--key", "provider")
    assert (accepted["status"], accepted["signer"]) == ("active", PROVIDER.address)
    stake = world.cli("stake", "status", "--key", "provider")["stake"]
    assert stake["locked"] == STAKE

    serve = ["--commit-epochs", "--model", "digits@1", "--key", "provider"]
    serve += ["--price", str(PRICE), "--epoch-size", "2", *world.rpc]
    with Provider(market.root, *serve) as provider:
        call = [
            "market", "call", provider.url, "--key", "consumer", "--job", job,
            "--provider", PROVIDER.address, "--model-digest", "sha256:" + market.digest.hex(),
            "--price", PRICE, "--chain-id", opened["chain_id"],
            "--market-contract", opened["market"],
        ]  # fmt: skip
        ws = ["--workspace", market.root]
        outputs = [  # two epochs of two calls, each committed when it closes
            ok([*ws, *call, "--input", json.dumps(sample)]) for sample in market.samples[:4]
        ]
        assert [o["receipt"]["message"]["counter"] for o in outputs] == [1, 2, 3, 4]
        # a call signed by another key than the job's consumer: refused, nothing charged
        other = [*call[:4], "provider", *call[5:], "--input", json.dumps(market.samples[0])]
        fails([*ws, *other], 10, "belongs to another consumer")
        provider.wait_stderr("calls committed")
    status = world.cli("market", "job", "status", job)
    assert [(e["epoch"], e["calls"], e["status"]) for e in status["epochs"]] == [
        (0, 2, "committed"),
        (1, 2, "committed"),
    ]
    assert status["committed_calls"] == 4

    # the consumer approves epoch 0 (paid at once) and never settles epoch 1
    approved = world.cli("market", "job", "approve", job, "0", "--key", "consumer")
    assert (approved["calls"], approved["paid_calls"]) == (2, 2)
    claimed = world.cli("market", "job", "claim", "--key", "provider", "--to", PAYEE)
    assert claimed["claimed"] == 2 * PRICE
    assert claimed["balance_after"] - claimed["balance_before"] == 2 * PRICE
    world.fails(9, "market", "job", "finish", job, "--key", "provider", needle="settle window")

    world.advance(DEADLINE + SETTLE_WINDOW + 1)
    finished = world.cli("market", "job", "finish", job, "--key", "provider")
    assert (finished["paid"], finished["refund"]) == (4 * PRICE, 6 * PRICE)
    assert (finished["status"], finished["paid_calls"]) == ("finished", 4)
    claimed = world.cli("market", "job", "claim", "--key", "provider", "--to", PAYEE)
    assert claimed["claimed"] == 2 * PRICE  # the epoch the consumer never settled
    assert claimed["balance_after"] == 4 * PRICE
    refund = world.cli("market", "job", "claim", "--key", "consumer", "--to", REFUNDEE)
    assert (refund["claimed"], refund["balance_after"]) == (6 * PRICE, 6 * PRICE)
    final = world.cli("market", "job", "status", job)
    assert final["owed"] == {"consumer": 0, "provider": 0}
    assert world.cli("stake", "status", "--key", "provider")["stake"]["locked"] == 0
    world.fails(9, "market", "job", "claim", "--key", "consumer", needle="owes")


@pytest.fixture(scope="module")
def module_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    from _anvil import free_port, require_anvil

    require_anvil()
    node = Anvil(free_port()).start()  # private: the test moves its clock by a day
    yield node
    node.stop()


def test_a_job_end_to_end_on_the_embedded_chain(tmp_path: Path) -> None:
    _scenario(_world(tmp_path / "ws", ()))


@pytest.mark.chain
def test_a_job_end_to_end_on_anvil(tmp_path: Path, module_anvil: Anvil) -> None:
    _scenario(_world(tmp_path / "ws", ("--rpc", module_anvil.url)))

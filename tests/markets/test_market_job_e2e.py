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

    def cli_free_market_address(self, chain_id: int) -> str:
        """The InferenceMarket the deployment book records (read without opening the chain)."""
        from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook

        book = DeploymentBook(Workspace.open(self.market.root).path / DEPLOYMENTS_FILE)
        return book.require(chain_id).address("InferenceMarket")

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
    # epoch 1's sample, fixed by the hash of the block after its commitment (for verifiers)
    drawn = world.cli("market", "draw", job, "1", "--key", "verifier")
    assert drawn["drawn"]
    assert len(drawn["counters"]) == 2
    assert set(drawn["counters"]) <= {3, 4}
    epochs = world.cli("market", "job", "status", job)["epochs"]
    assert (epochs[1]["sample"], epochs[0]["status"]) == (drawn["counters"], "passed")
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


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One workspace on the embedded chain, contracts deployed, the provider's stake in."""
    return _world(tmp_path_factory.mktemp("job") / "ws", ())


def test_a_job_end_to_end_on_the_embedded_chain(embedded: World) -> None:
    _scenario(embedded)


def _open(world: World, calls: int = CALLS) -> str:
    opened = world.cli(
        "market", "job", "open", "--key", "consumer", "--provider", "provider",
        "--model", "digits@1", "--price", PRICE, "--max-calls", calls, "--stake", STAKE,
        "--verifier", "verifier", "--deadline", f"+{DEADLINE}", "--k", 2,
    )  # fmt: skip
    return str(opened["job"])


def test_cancel_and_who_may_act_on_a_job(embedded: World) -> None:
    job = _open(embedded)
    embedded.fails(9, "market", "job", "cancel", job, "--key", "provider", needle="consumer")
    embedded.fails(9, "market", "job", "accept", job, "--key", "consumer", needle="provider")
    embedded.fails(9, "market", "job", "approve", job, "0", "--key", "consumer")
    embedded.fails(3, "market", "job", "status", "0x1234", needle="64 hex digits")
    embedded.fails(4, "market", "job", "status", "0x" + "42" * 32, needle="no job")
    cancelled = embedded.cli("market", "job", "cancel", job, "--key", "consumer")
    assert cancelled["status"] == "cancelled"
    embedded.fails(9, "market", "job", "accept", job, "--key", "provider", needle="status")
    assert embedded.cli("market", "job", "status", job)["owed"]["consumer"] == PRICE * CALLS
    claimed = embedded.cli("market", "job", "claim", "--key", "consumer", "--to", "0x" + "5c" * 20)
    assert claimed["balance_after"] == PRICE * CALLS


def test_disputes_from_the_consumers_receipt_store(embedded: World, tmp_path: Path) -> None:
    """A provider that served another model than the job pays for, and one that committed a
    root without a receipt it signed, are each proven wrong by `market job dispute` from the
    receipts the consumer kept (the receipts and commitments made in process, as a cheating
    provider would)."""
    from ailedger.chain.inference_market import InferenceMarket
    from ailedger.markets.inference import (
        EpochRoot,
        ReceiptBook,
        ReceiptWallet,
        market_domain,
        request_digest,
        response_digest,
    )
    from ailedger.markets.inference.onchain import commit_closed_epoch
    from ailedger.markets.inference.receipt import sign_epoch_root
    from ailedger.merkle import leaf_hashes, root_from_leaf_hashes

    world = embedded
    jobs = [_open(world) for _ in range(2)]
    for job in jobs:
        world.cli("market", "job", "accept", job, "--key", "provider")
    wrong, omitted = (bytes.fromhex(j[2:]) for j in jobs)
    store = tmp_path / "consumer.sqlite"
    ws = Workspace.open(world.market.root)
    with open_workspace_chain(ws, None) as chain, ReceiptWallet(store) as wallet:
        address = world.cli_free_market_address(chain.chain_id)
        market = InferenceMarket(chain, chain.at("InferenceMarket", address, track=False))
        domain = market_domain(chain.chain_id, address)

        def keep(book: ReceiptBook, job: bytes, value: list[int]) -> None:
            output = [sum(value)]
            signed = book.issue(job, CONSUMER, request_digest(value), response_digest(output))
            wallet.add(PROVIDER.address, signed, {"job": "0x" + job.hex(), "input": value}, output)

        # another model than the one paid for: committed, its proofs kept by the consumer
        with ReceiptBook(
            tmp_path / "swapped.sqlite", signer=PROVIDER, domain=domain,
            model_digest=b"\x99" * 32, price=PRICE, epoch_size=2,
        ) as book:  # fmt: skip
            keep(book, wrong, [1])
            keep(book, wrong, [2])
            commit_closed_epoch(market, book, book.closed(0), signer=PROVIDER)
            for row in wallet.rows(wrong):
                signed, closed, proof = book.proof(wrong, row.receipt.receipt.counter)
                wallet.set_proof(PROVIDER.address, signed, closed.signed, proof)
        # three receipts signed, a root of two committed
        with ReceiptBook(
            tmp_path / "omitting.sqlite", signer=PROVIDER, domain=domain,
            model_digest=world.market.digest, price=PRICE, epoch_size=3,
        ) as book:  # fmt: skip
            for value in ([1], [2], [3]):
                keep(book, omitted, value)
            digests = [book.receipt(omitted, c).digest() for c in (1, 2)]
            truncated = EpochRoot(0, 2, root_from_leaf_hashes(leaf_hashes(digests)))
            signature = sign_epoch_root(truncated, domain, PROVIDER).signature
            market.commit_epoch(omitted, 0, 2, truncated.root, 2, signature, signer=PROVIDER)

    common = ["--key", "consumer", "--store", store]
    # receipt 2 of the omitting job is in the committed root: nothing to dispute
    world.fails(3, "market", "job", "dispute", "omission", jobs[1], "--counter", 2, *common)
    world.fails(4, "market", "job", "dispute", "omission", jobs[1], "--counter", 9, *common)
    slashed = world.cli("market", "job", "dispute", "wrong-model", jobs[0], "--counter", 2, *common)
    assert (slashed["slashed"], slashed["status"]) == (STAKE, "slashed")
    assert slashed["owed"] >= PRICE * CALLS  # the whole escrow: nothing was paid
    omission = world.cli("market", "job", "dispute", "omission", jobs[1], "--counter", 3, *common)
    assert omission["slashed"] == STAKE
    assert "beyond the 2 receipts committed" in omission["reason"]
    for job in jobs:
        assert world.cli("market", "job", "status", job)["status"] == "slashed"
    # a slashed job is over: no second dispute
    world.fails(9, "market", "job", "dispute", "wrong-model", jobs[0], "--counter", 1, *common)


@pytest.mark.chain
def test_a_job_end_to_end_on_anvil(tmp_path: Path, module_anvil: Anvil) -> None:
    _scenario(_world(tmp_path / "ws", ("--rpc", module_anvil.url)))

"""Epochs that closed while the chain was down are committed later (``ailedger market
commit``). On the embedded chain, in-process: the provider's book closes three epochs while
every attempt to reach the market fails (the serve hook reports them as not committed); then
:func:`commit_stored_epochs` over the book's stored epochs commits all three, in order, and a
second run sends nothing (each is reported as already committed). On anvil, with real
processes: the node stops while ``market serve --commit-epochs`` runs, and ``market commit``
commits what closed meanwhile once it is back. Read back from the chain."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _anvil import Anvil
from _chain_util import Backend
from _cli import fails, ok
from ailedger.chain.inference_market import EpochStatus, InferenceMarket, JobTerms
from ailedger.errors import ChainError
from ailedger.markets.inference import market_domain, request_digest, response_digest
from ailedger.markets.inference._store import ReceiptBook, stored_epochs
from ailedger.markets.inference.onchain import commit_stored_epochs, epoch_committer
from markets._helpers import PROVIDER, Provider
from markets.test_market_job_e2e import _world as _job_world
from markets.test_verify_e2e import CONSUMER, PRICE, STAKE, VERIFIERS, _world

MODEL = b"\x3d" * 32


def test_epochs_closed_while_the_chain_was_down_are_committed_later(tmp_path: Path) -> None:
    backend = Backend("embedded", tmp_path, None)
    backend.artifacts_dir = None
    try:
        chain = backend.open()
        market, _, token = _world(chain)
        terms = JobTerms(
            PROVIDER.address, token.address, token.address, STAKE, MODEL, PRICE, 100,
            chain.block_timestamp() + 3_600, k=2, threshold=2,
        )  # fmt: skip
        job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
        market.accept_job(job, PROVIDER.address, signer=PROVIDER)

        @contextlib.contextmanager
        def down() -> Iterator[InferenceMarket]:
            raise ChainError("the chain is down (connection refused)")
            yield market  # pragma: no cover

        reported: list[str] = []
        store = tmp_path / "provider.sqlite"
        book = ReceiptBook(
            store, signer=PROVIDER, domain=market_domain(chain.chain_id, market.address),
            model_digest=MODEL, price=PRICE, epoch_size=2,
        )  # fmt: skip
        book.on_epoch_closed = epoch_committer(down, book, signer=PROVIDER, report=reported.append)
        with book:
            for i in range(6):
                digest = request_digest([i], secrets.token_bytes(32))
                book.issue(job, CONSUMER.address, digest, response_digest([2 * i]))
        assert reported == [f"epoch {e}: not committed: the chain is down (connection refused)"
                            for e in range(3)]  # fmt: skip
        assert market.epoch(job, 0).status == EpochStatus.NONE

        provider, epochs = stored_epochs(store)
        assert provider == PROVIDER.address
        assert [(e.epoch, e.size, e.jobs) for e in epochs] == [(i, 2, {job: 2}) for i in range(3)]
        done = commit_stored_epochs(market, provider, epochs, signer=PROVIDER)
        assert [(e, c.committed, c.reason, c.failed) for e, c in done] == [
            (i, True, "", False) for i in range(3)
        ]
        for e in epochs:
            onchain = market.epoch(job, e.epoch)
            assert (onchain.status, onchain.root, onchain.calls) == (
                EpochStatus.COMMITTED, e.root, 2,
            )  # fmt: skip
        assert market.job(job).committed_calls == 6
        block = chain.w3.eth.block_number
        again = commit_stored_epochs(market, provider, epochs, signer=PROVIDER)
        assert [(c.committed, c.reason) for _, c in again] == [(True, "already committed")] * 3
        assert chain.w3.eth.block_number == block  # nothing sent
    finally:
        backend.close_all()


def test_the_serve_hook_catches_up_on_epochs_the_chain_missed(tmp_path: Path) -> None:
    """The market takes a job's epochs in order: an epoch the hook could not commit (chain
    down) would be lost for good once a later one is committed (EpochNotIncreasing), and its
    receipts would read as omitted. The hook commits the earlier epochs first, in order."""
    backend = Backend("embedded", tmp_path, None)
    backend.artifacts_dir = None
    try:
        chain = backend.open()
        market, _, token = _world(chain)
        terms = JobTerms(
            PROVIDER.address, token.address, token.address, STAKE, MODEL, PRICE, 100,
            chain.block_timestamp() + 3_600, k=2, threshold=2,
        )  # fmt: skip
        job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
        market.accept_job(job, PROVIDER.address, signer=PROVIDER)
        up = [False]

        @contextlib.contextmanager
        def flaky() -> Iterator[InferenceMarket]:
            if not up[0]:
                raise ChainError("the chain is down (connection refused)")
            yield market

        reported: list[str] = []
        book = ReceiptBook(
            tmp_path / "provider.sqlite", signer=PROVIDER,
            domain=market_domain(chain.chain_id, market.address),
            model_digest=MODEL, price=PRICE, epoch_size=2,
        )  # fmt: skip
        book.on_epoch_closed = epoch_committer(flaky, book, signer=PROVIDER, report=reported.append)
        with book:
            for i in range(6):
                if i == 4:
                    up[0] = True  # back before epoch 2 closes
                digest = request_digest([i], secrets.token_bytes(32))
                book.issue(job, CONSUMER.address, digest, response_digest([2 * i]))
        tag = "0x" + job.hex()
        assert reported == [
            "epoch 0: not committed: the chain is down (connection refused)",
            "epoch 1: not committed: the chain is down (connection refused)",
            f"epoch 0: job {tag}: 2 calls committed (catching up)",
            f"epoch 1: job {tag}: 2 calls committed (catching up)",
            f"epoch 2: job {tag}: 2 calls committed",
        ]
        for e in range(3):
            assert market.epoch(job, e).status == EpochStatus.COMMITTED
        assert market.job(job).committed_calls == 6
    finally:
        backend.close_all()


@pytest.mark.chain
def test_market_commit_after_the_node_was_down_during_serve(
    tmp_path: Path, make_anvil: Callable[..., Anvil]
) -> None:
    """Real processes: anvil (with a state file) stops while ``market serve --commit-epochs``
    closes two epochs (each reported as not committed); anvil restarts on its state and
    ``ailedger market commit`` (beside the still-serving provider) commits both, epoch 0
    (committed while the node was up) reported as already committed; read back with
    ``market job status``."""
    node = make_anvil(state=True)
    world = _job_world(tmp_path / "ws", ("--rpc", node.url))
    market = world.market
    opened = world.cli(
        "market", "job", "open", "--key", "consumer", "--provider", "provider",
        "--model", "digits@1", "--price", 1000, "--max-calls", 10, "--stake", 10**17,
        "--verifier", "verifier", "--deadline", "+3600", "--k", 2,
    )  # fmt: skip
    job = opened["job"]
    world.cli("market", "job", "accept", job, "--key", "provider")
    serve = ["--commit-epochs", "--model", "digits@1", "--key", "provider", "--price", "1000"]
    serve += ["--epoch-size", "2", "--rpc", node.url]
    ws = ["--workspace", market.root]
    with Provider(market.root, *serve) as provider:
        call = [
            *ws, "market", "call", provider.url, "--key", "consumer", "--job", job,
            "--provider", PROVIDER.address, "--model-digest", "sha256:" + market.digest.hex(),
            "--price", 1000, "--chain-id", opened["chain_id"],
            "--market-contract", opened["market"],
        ]  # fmt: skip
        for sample in market.samples[:2]:
            ok([*call, "--input", json.dumps(sample)])
        assert "2 calls committed" in provider.wait_stderr("epoch 0")
        node.stop()  # the chain goes down; the provider keeps serving
        for sample in market.samples[2:6]:
            ok([*call, "--input", json.dumps(sample)])
        assert "not committed" in provider.wait_stderr("epoch 1")
        assert "not committed" in provider.wait_stderr("epoch 2")
        fails([*ws, "market", "commit", "--key", "provider", "--rpc", node.url], 8)
        node.start()  # back, on its saved state
        done = ok([*ws, "market", "commit", "--key", "provider", "--rpc", node.url])
        assert [(r["epoch"], r["calls"], r["committed"], r["reason"]) for r in done["epochs"]] == [
            (0, 2, True, "already committed"),
            (1, 2, True, ""),
            (2, 2, True, ""),
        ]
    status = world.cli("market", "job", "status", job)
    assert [(e["epoch"], e["calls"], e["status"]) for e in status["epochs"]] == [
        (0, 2, "committed"),
        (1, 2, "committed"),
        (2, 2, "committed"),
    ]
    assert status["committed_calls"] == 6
    again = ok([*ws, "market", "commit", "--key", "provider", "--rpc", node.url])
    assert {r["reason"] for r in again["epochs"]} == {"already committed"}

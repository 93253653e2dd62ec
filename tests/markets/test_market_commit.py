"""Epochs that closed while the chain was down are committed later (``ailedger market
commit``), on the embedded chain: the provider's book closes three epochs while every attempt
to reach the market fails (the serve hook reports them as not committed); then
:func:`commit_stored_epochs` over the book's stored epochs commits all three, in order, and a
second run sends nothing (each is reported as already committed). Read back from the chain."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

from _chain_util import Backend
from ailedger.chain.inference_market import EpochStatus, InferenceMarket, JobTerms
from ailedger.errors import ChainError
from ailedger.markets.inference import market_domain, request_digest, response_digest
from ailedger.markets.inference._store import ReceiptBook, stored_epochs
from ailedger.markets.inference.onchain import commit_stored_epochs, epoch_committer
from markets._helpers import PROVIDER
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

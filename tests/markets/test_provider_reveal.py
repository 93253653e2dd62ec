"""The provider reveals a sampled epoch itself, on the embedded chain: the consumer made its
calls (each signed with its key) and withholds them all; the provider's receipt book kept every
call with the consumer's signed request, so the provider hands the sample over
(:func:`reveal_from_book`, ``ailedger market reveal --provider-store``), two verifiers
re-execute it on the registered model, the epoch passes on-chain and the provider is owed the
epoch's calls. A provider revealing inputs the consumer did not sign is refused: every sampled
call counts as withheld. Every figure is read back from the chain."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from _chain_util import Backend
from ailedger.chain.inference_market import EpochStatus, JobTerms
from ailedger.markets.inference import (
    InferenceRequest,
    Reveal,
    RevealedCall,
    gather_verification,
    load_predictor,
    market_domain,
    read_sample,
    request_digest,
    request_domain,
    response_digest,
    reveal_from_book,
    sign_request,
    verified_model,
    verify_epoch,
)
from ailedger.markets.inference._store import ReceiptBook
from ailedger.markets.inference.onchain import commit_closed_epoch
from markets._helpers import PROVIDER, make_market
from markets.test_verify_e2e import CONSUMER, PRICE, STAKE, VERIFIERS, _mine, _world

CALLS = 8
K = 6


def test_the_provider_reveals_what_the_consumer_withholds_and_is_paid(tmp_path: Path) -> None:
    backend = Backend("embedded", tmp_path, None)
    backend.artifacts_dir = None
    try:
        chain = backend.open()
        market_ws = make_market(tmp_path / "provider")
        market, _, token = _world(chain)
        terms = JobTerms(
            PROVIDER.address, token.address, token.address, STAKE, market_ws.digest, PRICE, 100,
            chain.block_timestamp() + 3_600, k=K, threshold=2,
        )  # fmt: skip
        job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
        market.accept_job(job, PROVIDER.address, signer=PROVIDER)
        model = verified_model(market_ws.model_dir, market_ws.digest)
        predictor = load_predictor(model, "sklearn")

        # the provider serves CALLS consumer-signed calls; its book keeps each with its request
        store = tmp_path / "provider.sqlite"
        book = ReceiptBook(
            store, signer=PROVIDER, domain=market_domain(chain.chain_id, market.address),
            model_digest=market_ws.digest, price=PRICE, epoch_size=CALLS,
        )  # fmt: skip
        signing = request_domain(chain.chain_id, market.address)
        with book:
            for value in market_ws.samples[:CALLS]:
                call: Any = [value]
                salt = secrets.token_bytes(32)
                digest = request_digest(call, salt)
                asked = InferenceRequest(
                    job, PROVIDER.address, market_ws.digest, digest, secrets.token_bytes(32),
                    chain.block_timestamp() + 600,
                )  # fmt: skip
                output = predictor.predict(call)
                book.issue(
                    job, CONSUMER.address, digest, response_digest(output),
                    sign_request(asked, signing, CONSUMER), (call, salt),
                )  # fmt: skip
            done = commit_closed_epoch(market, book, book.closed(0), signer=PROVIDER)
        assert [(c.calls, c.committed) for c in done] == [(CALLS, True)]
        _mine(chain)
        _mine(chain)  # the seed is the hash of the block after the commitment
        assert market.draw(job, 0, signer=PROVIDER)
        sample = read_sample(market, job, 0)

        # the consumer reveals nothing; the provider reveals from its book (read-only)
        reveal, missing = reveal_from_book(store, job, 0, sample.counters)
        assert missing == []
        assert {c.receipt.receipt.counter for c in reveal.calls} == set(sample.counters)
        assert Reveal.from_dict(reveal.to_dict()) == reveal  # the file round-trips

        def attest(reveals: list[Reveal]) -> list[Any]:
            return [
                verify_epoch(
                    market,
                    job,
                    0,
                    model=model,
                    predictor=predictor,
                    reveals=reveals,
                    signer=verifier,
                )
                for verifier in VERIFIERS[:2]
            ]

        # a provider revealing inputs the consumer did not sign (here: requests signed by the
        # provider's own key) is refused: every sampled call counts as withheld
        forged = Reveal(
            job,
            0,
            tuple(
                RevealedCall(
                    c.receipt,
                    c.input,
                    c.salt,
                    None,
                    False,
                    c.proof,
                    _resigned(c, chain.chain_id, market.address),
                )
                for c in reveal.calls
            ),
        )
        refused = attest([forged])
        for att in refused:
            assert att.verification.passed == 0
            assert {s.outcome for s in att.samples} == {"withheld"}
            assert all("did not sign" in s.detail for s in att.samples)

        attestations = attest([reveal])
        for att in attestations:
            assert (att.verification.passed, att.verification.total) == (K, K)
        e = market.epoch(job, 0)
        result, sigs, ignored = gather_verification(
            attestations, domain=market_domain(chain.chain_id, market.address), job=job,
            epoch=0, seed=e.seed, verifiers=market.verifiers(job), threshold=2,
        )  # fmt: skip
        assert ignored == []
        assert market.settle_epoch(job, 0, result.passed, result.total, sigs, signer=PROVIDER)
        assert market.epoch(job, 0).status == EpochStatus.PASSED
        assert market.job(job).paid_calls == CALLS
        assert market.owed(PROVIDER.address, token.address) == CALLS * PRICE
        before = token.balance_of(PROVIDER.address)
        assert market.claim(token.address, signer=PROVIDER) == CALLS * PRICE
        assert token.balance_of(PROVIDER.address) - before == CALLS * PRICE
    finally:
        backend.close_all()


def _resigned(call: RevealedCall, chain_id: int, market: str) -> Any:
    assert call.request is not None
    r = call.receipt.receipt
    asked = InferenceRequest(
        r.job, PROVIDER.address, r.model_digest, r.request_digest, call.request.nonce,
        call.request.expires,
    )  # fmt: skip
    return sign_request(asked, request_domain(chain_id, market), PROVIDER)

"""End to end on the embedded chain and anvil: a consumer opens a job on the InferenceMarket;
the provider accepts with the key of its receipt book; the book's closed epochs are committed
on-chain by its ``on_epoch_closed`` hook; the verifiers check the sampled receipts (the
contract's sample, recomputed in Python) and sign; the provider is paid per call and the rest
refunded. A second job served with another model than the one paid for is disputed with the
book's own receipt and proof, and the provider is slashed."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3.providers.eth_tester import EthereumTesterProvider

from _chain_util import ETHER, Backend
from ailedger.chain import Chain
from ailedger.chain.inference_market import (
    EpochStatus,
    InferenceMarket,
    JobStatus,
    JobTerms,
    deploy_inference_market,
)
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.errors import ConflictError, NotFound
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import ReceiptBook, market_domain, verify_receipt
from ailedger.markets.inference.onchain import (
    commit_closed_epoch,
    epoch_committer,
    onchain_jobs,
    wrong_model_args,
)
from ailedger.markets.inference.settlement import (
    Verification,
    sample_counters,
    sign_verification,
)

ADMIN = Secp256k1Signer(bytes.fromhex("a1" * 32))
PROVIDER = Secp256k1Signer(bytes.fromhex("a3" * 32))
BOOK_KEY = Secp256k1Signer(bytes.fromhex("a4" * 32))
CONSUMER = Secp256k1Signer(bytes.fromhex("c3" * 32))
VERIFIERS = [Secp256k1Signer(bytes.fromhex(f"d{i}" * 32)) for i in range(1, 4)]
MODEL = b"\x11" * 32
PRICE = 3
STAKE = 10**6
WINDOW = 600


def _advance(chain: Chain, seconds: int) -> None:
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        target = chain.block_timestamp() + seconds
        provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@pytest.fixture
def chain(backend: Backend) -> Chain:
    backend.artifacts_dir = None  # the contracts shipped in the package
    return backend.open()


def _world(chain: Chain) -> tuple[InferenceMarket, StakeManager, Token]:
    for who in (ADMIN, PROVIDER, CONSUMER):
        chain.fund(who.address, 10 * ETHER)
    manager = StakeManager(chain, deploy_stake_manager(chain, ADMIN, unbonding_delay=60))
    token = Token(
        chain,
        chain.deploy("ConsortiumToken", "Consortium", "CON", ADMIN.address, 10**30, signer=ADMIN),
    )
    market = InferenceMarket(
        chain,
        deploy_inference_market(chain, ADMIN, stake_manager=manager.address, settle_window=WINDOW),
    )
    register_with_stake_manager(
        chain, manager.address, market.address, prover_bps=5_000, signer=ADMIN
    )
    _advance(chain, 121)
    assert manager.is_market(market.address)
    for who in (PROVIDER, CONSUMER):
        token.transfer(who.address, 10**12, signer=ADMIN)
    token.approve(manager.address, 10 * STAKE, signer=PROVIDER)
    manager.deposit(10 * STAKE, token.address, signer=PROVIDER)
    return market, manager, token


def _job(market: InferenceMarket, token: Token, chain: Chain, calls: int) -> bytes:
    terms = JobTerms(
        PROVIDER.address, token.address, token.address, STAKE, MODEL, PRICE, calls,
        chain.block_timestamp() + 3_600, k=4, threshold=2,
    )  # fmt: skip
    job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
    market.accept_job(job, BOOK_KEY.address, signer=PROVIDER)
    return job


def _book(tmp: Path, market: InferenceMarket, chain: Chain, model: bytes, name: str) -> ReceiptBook:
    domain = market_domain(chain.chain_id, market.address)
    book = ReceiptBook(
        tmp / name, signer=BOOK_KEY, domain=domain, model_digest=model, price=PRICE, epoch_size=6
    )
    book.on_epoch_closed = lambda closed: commits.extend(
        commit_closed_epoch(market, book, closed, signer=PROVIDER)
    )
    return book


commits: list[object] = []


def test_a_served_job_is_committed_verified_and_paid(chain: Chain, tmp_path: Path) -> None:
    market, manager, token = _world(chain)
    job = _job(market, token, chain, 100)
    commits.clear()
    book = _book(tmp_path, market, chain, MODEL, "book.sqlite")
    with book:
        # a job the chain does not know shares epoch 0: it is reported, not committed
        book.issue(b"\x77" * 32, CONSUMER.address, b"\x01" * 32, b"\x22" * 32)
        for i in range(11):  # two epochs of 6, each closed by its 6th receipt
            book.issue(job, CONSUMER.address, bytes([i]) * 32, b"\x22" * 32)
        done = [(c.job, c.calls, c.committed) for c in commits]  # type: ignore[attr-defined]
        assert sorted(done) == sorted([(b"\x77" * 32, 1, False), (job, 5, True), (job, 6, True)])
        info = market.job(job)
        assert (info.committed_calls, info.last_epoch) == (11, 1)
        domain = market_domain(chain.chain_id, market.address)
        for epoch in (0, 1):
            chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            assert market.draw(job, epoch, signer=CONSUMER)
            e = market.epoch(job, epoch)
            counters = market.sample_counters(job, epoch)
            assert counters == sample_counters(e.seed, job, epoch, e.first, e.calls, 4)
            # the verifiers check each sampled receipt and its proof against the committed root
            for c in counters:
                signed, closed, proof = book.proof(job, c)
                verify_receipt(signed, domain=domain, provider=BOOK_KEY.address, job=job)
                assert closed.signed.epoch_root.root == e.root
                proof.verify(e.root)
            sigs = sign_verification(Verification(job, epoch, e.seed, 4, 4), domain, VERIFIERS[1:])
            assert market.settle_epoch(job, epoch, 4, 4, sigs, signer=CONSUMER)
            assert market.epoch(job, epoch).status == EpochStatus.PASSED
    _advance(chain, 3_600 + WINDOW + 1)
    assert market.finish(job, signer=PROVIDER) == (11 * PRICE, 89 * PRICE)
    assert market.claim(token.address, signer=PROVIDER) == 11 * PRICE
    assert market.claim(token.address, signer=CONSUMER) == 89 * PRICE
    assert market.held(token.address) == 0
    assert manager.stake_of(PROVIDER.address, token.address).locked == 0


def test_a_swapped_model_is_disputed_with_the_books_receipt(chain: Chain, tmp_path: Path) -> None:
    market, manager, token = _world(chain)
    job = _job(market, token, chain, 20)
    commits.clear()
    with _book(tmp_path, market, chain, b"\x99" * 32, "swapped.sqlite") as book:
        for i in range(6):
            book.issue(job, CONSUMER.address, bytes([i]) * 32, b"\x22" * 32)
        signed, _, proof = book.proof(job, 3)
    args = wrong_model_args(signed, proof)
    assert market.prove_wrong_model(*args, signer=CONSUMER) == STAKE
    assert market.job(job).status == JobStatus.SLASHED
    assert market.owed(CONSUMER.address, token.address) == 20 * PRICE
    assert manager.stake_of(PROVIDER.address, token.address).free == 9 * STAKE


def test_the_serve_hook_reports_and_never_raises(chain: Chain, tmp_path: Path) -> None:
    market, _, token = _world(chain)
    job = _job(market, token, chain, 10)
    lines: list[str] = []
    domain = market_domain(chain.chain_id, market.address)
    with ReceiptBook(
        tmp_path / "a.sqlite", signer=BOOK_KEY, domain=domain, model_digest=MODEL, price=PRICE,
        epoch_size=2,
    ) as book:  # fmt: skip
        book.on_epoch_closed = epoch_committer(market, book, signer=PROVIDER, report=lines.append)
        for i in range(2):
            book.issue(job, CONSUMER.address, bytes([i]) * 32, b"\x22" * 32)
        assert lines == [f"epoch 0: job 0x{job.hex()}: 2 calls committed"]
        assert market.job(job).committed_calls == 2
    # a book signing for another contract: reported, the call that closed the epoch succeeds
    lines.clear()
    other = market_domain(chain.chain_id, token.address)
    with ReceiptBook(
        tmp_path / "b.sqlite", signer=BOOK_KEY, domain=other, model_digest=MODEL, price=PRICE,
        epoch_size=1,
    ) as book:  # fmt: skip
        book.on_epoch_closed = epoch_committer(market, book, signer=PROVIDER, report=lines.append)
        book.issue(job, CONSUMER.address, b"\x05" * 32, b"\x22" * 32)
        assert len(lines) == 1
        assert lines[0].startswith("epoch 0: not committed: the receipt book signs for")
    assert market.job(job).committed_calls == 2


def test_the_endpoint_serves_only_jobs_open_on_chain_for_it(chain: Chain, tmp_path: Path) -> None:
    market, _, token = _world(chain)
    job = _job(market, token, chain, 10)
    domain = market_domain(chain.chain_id, market.address)
    with ReceiptBook(
        tmp_path / "g.sqlite", signer=BOOK_KEY, domain=domain, model_digest=MODEL, price=PRICE
    ) as book:
        jobs = onchain_jobs(market, book)
        entry = jobs(job)  # open for this key, model and price: its consumer signs the calls
        assert (entry.consumer, entry.max_calls) == (CONSUMER.address, 10)
        assert entry.deadline == market.job(job).terms.deadline
        with pytest.raises(NotFound):
            jobs(b"\x42" * 32)
    other = ReceiptBook(
        tmp_path / "h.sqlite", signer=BOOK_KEY, domain=domain, model_digest=b"\x99" * 32,
        price=PRICE + 1,
    )  # fmt: skip
    with other, pytest.raises(ConflictError, match=r"another model.*price is"):
        onchain_jobs(market, other)(job)

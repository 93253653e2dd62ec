"""End to end, on the embedded chain and on anvil: a provider (``ailedger market serve``, a
real process on loopback) serves the registered digits classifier through a callable plug-in
that answers three calls in four with another model; the consumer calls it, keeps receipts
and proofs, relays the provider's signed epoch root on-chain and reveals the sampled calls;
three verifiers re-execute the sample on their own fingerprint-checked copies of the model and
sign; the epoch fails on-chain; the consumer proves one wrong output with the verifiers'
Mismatch signatures and the provider is slashed. Every figure is read back from the chain."""

from __future__ import annotations

import json
import os
import pickle
import shutil
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
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    ProviderClient,
    ReceiptWallet,
    SignedEpochRoot,
    gather_verification,
    gather_wrong_outputs,
    load_predictor,
    market_domain,
    read_sample,
    reveal_from_wallet,
    verified_model,
    verify_epoch,
)
from markets._helpers import MODEL, PROVIDER, Provider, make_market

ADMIN = Secp256k1Signer(bytes.fromhex("b1" * 32))
CONSUMER = Secp256k1Signer(bytes.fromhex("b5" * 32))
VERIFIERS = [Secp256k1Signer(bytes.fromhex(f"e{i}" * 32)) for i in range(1, 4)]
PRICE = 1_000
STAKE = 10**9
CALLS = 24
EPOCH = 12
K = 8
WINDOW = 600
HERE = Path(__file__).parent


def _mine(chain: Chain, seconds: int = 0) -> None:
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        if seconds:
            target = chain.block_timestamp() + seconds
            provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        if seconds:
            provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


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
    _mine(chain, 121)
    for who in (PROVIDER, CONSUMER):
        token.transfer(who.address, 10**15, signer=ADMIN)
    token.approve(manager.address, 2 * STAKE, signer=PROVIDER)
    manager.deposit(2 * STAKE, token.address, signer=PROVIDER)
    return market, manager, token


@pytest.fixture
def chain(backend: Backend) -> Chain:
    backend.artifacts_dir = None  # the contracts shipped in the package
    return backend.open()


@pytest.fixture
def swapped_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider process imports ``_swapped_model`` from this directory."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    )


def _inputs(model_dir: Path) -> list[list[list[float]]]:
    """Digits the honest model and the swapped one classify differently (so every swapped
    call is a wrong output)."""
    from sklearn.datasets import load_digits

    from markets._swapped_model import shallow_model

    honest = pickle.loads((model_dir / "model.pkl").read_bytes())
    x = load_digits().data[1500:]
    differ = honest.predict(x) != shallow_model().predict(x)
    rows = [row.tolist() for row, d in zip(x, differ, strict=True) if d]
    return [[row] for row in rows[:CALLS]]


def test_a_swapped_model_fails_verification_and_is_slashed(
    chain: Chain, tmp_path: Path, swapped_path: None
) -> None:
    market_ws = make_market(tmp_path / "provider")
    market, manager, token = _world(chain)
    terms = JobTerms(
        PROVIDER.address, token.address, token.address, STAKE, market_ws.digest, PRICE, 100,
        chain.block_timestamp() + 3_600, k=K, threshold=2,
    )  # fmt: skip
    job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
    market.accept_job(job, PROVIDER.address, signer=PROVIDER)
    domain = market_domain(chain.chain_id, market.address)
    jobs = tmp_path / "jobs.json"  # the provider's job table: who signs this job's calls
    jobs.write_text(json.dumps({"0x" + job.hex(): CONSUMER.address}))

    args = (
        "--model", MODEL, "--key", "provider", "--market-contract", market.address,
        "--chain-id", str(chain.chain_id), "--price", str(PRICE), "--epoch-size", str(EPOCH),
        "--plugin", "callable", "--callable", "_swapped_model:factory", "--jobs", str(jobs),
    )  # fmt: skip
    inputs = _inputs(market_ws.model_dir)
    wallet = ReceiptWallet(tmp_path / "consumer.sqlite")
    with Provider(market_ws.root, *args) as served, wallet:
        client = ProviderClient(
            served.url, provider=PROVIDER.address, model_digest=market_ws.digest,
            domain=domain, wallet=wallet, price=PRICE,
        )  # fmt: skip
        with client:
            results = [client.call(v, job=job, signer=CONSUMER) for v in inputs]
            for result in results:
                client.prove(result.receipt)
            roots = [
                SignedEpochRoot.from_dict(json.loads(served.request("GET", f"/v1/epochs/{e}")[2]))
                for e in (0, 1)
            ]
    # the provider commits its signed epoch roots (nobody else may: NotProvider)
    for signed in roots:
        r = signed.epoch_root
        market.commit_epoch(job, r.epoch, r.size, r.root, r.size, signed.signature, signer=PROVIDER)
    _mine(chain)
    assert market.draw(job, 0, signer=CONSUMER)
    sample = read_sample(market, job, 0)
    honest = {c for c in sample.counters if c % 4 == 1}  # the provider's honest calls
    with ReceiptWallet(tmp_path / "consumer.sqlite") as wallet:
        reveal, missing = reveal_from_wallet(wallet, job, 0, sample.counters)
    assert missing == []

    attestations = []
    for i, verifier in enumerate(VERIFIERS):
        own_copy = tmp_path / f"verifier-{i}"
        shutil.copytree(market_ws.model_dir, own_copy)
        model = verified_model(own_copy, terms.model_digest)
        predictor = load_predictor(model, "sklearn")
        att = verify_epoch(
            market, job, 0, model=model, predictor=predictor, reveals=[reveal], signer=verifier
        )
        attestations.append(att)
        expected = sum(1 for c in sample.counters if c in honest)
        assert att.verification.passed == expected
        assert att.verification.total == K
        outcomes = {s.counter: s.outcome for s in att.samples}
        assert all((o == "ok") == (c in honest) for c, o in outcomes.items()), outcomes
        assert {m.mismatch.counter for m in att.mismatches} == set(sample.counters) - honest
    assert len(honest & set(sample.counters)) < K, "no swapped call sampled (p = 4^-8)"

    e = market.epoch(job, 0)
    result, sigs, ignored = gather_verification(
        attestations[1:], domain=domain, job=job, epoch=0, seed=e.seed,
        verifiers=market.verifiers(job), threshold=2,
    )  # fmt: skip
    assert ignored == []
    assert not market.settle_epoch(job, 0, result.passed, result.total, sigs, signer=CONSUMER)
    assert market.epoch(job, 0).status == EpochStatus.FAILED
    assert market.job(job).failed_calls == EPOCH

    evidence = gather_wrong_outputs(
        attestations[:2], domain=domain, job=job, epoch=0, seed=e.seed,
        verifiers=market.verifiers(job), threshold=2,
    )  # fmt: skip
    assert evidence, "a wrong output signed by two verifiers"
    free_before = manager.stake_of(PROVIDER.address, token.address).free
    slashed = market.prove_wrong_output(*evidence[0].args(), signer=CONSUMER)
    assert slashed == STAKE
    info = market.job(job)
    assert info.status == JobStatus.SLASHED
    stake = manager.stake_of(PROVIDER.address, token.address)
    assert (stake.locked, stake.slashed, stake.free) == (0, STAKE, free_before)
    # nothing was paid: epoch 0 failed, epoch 1 was never settled; all 100 calls refunded
    assert market.owed(PROVIDER.address, token.address) == 0
    assert market.owed(CONSUMER.address, token.address) == 100 * PRICE
    before = token.balance_of(CONSUMER.address)
    assert market.claim(token.address, signer=CONSUMER) == 100 * PRICE
    assert token.balance_of(CONSUMER.address) - before == 100 * PRICE
    assert market.held(token.address) == 0

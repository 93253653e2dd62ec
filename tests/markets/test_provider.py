"""``ailedger market serve`` as a real process on loopback, called by the Python client and the
CLI: a digits classifier end to end (outputs, receipts, wallet, epoch proofs), malformed
requests (4xx, no counter consumed), pins the client enforces, a model refused at start."""

from __future__ import annotations

import json
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _cli import fails, ok
from ailedger.errors import ConflictError, NotFound, SignatureInvalid
from ailedger.markets.inference import (
    ProviderClient,
    ReceiptWallet,
    SignedReceipt,
    market_domain,
    verify_kept,
)
from markets._helpers import (
    CHAIN_ID,
    CONSUMER,
    CONTRACT,
    OTHER_CONSUMER,
    PROVIDER,
    Market,
    Provider,
    make_market,
    provider_args,
)

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
EPOCH_SIZE = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Provider]]:
    market = make_market(tmp_path_factory.mktemp("market") / "provider")
    provider = Provider(market.root, *provider_args("--epoch-size", str(EPOCH_SIZE))).start()
    try:
        yield market, provider
    finally:
        provider.stop()


def _client(
    served: Provider, market: Market, wallet: ReceiptWallet | None = None, **pins: Any
) -> ProviderClient:
    options: dict[str, Any] = {
        "provider": PROVIDER.address,
        "model_digest": market.digest,
        "domain": DOMAIN,
        "wallet": wallet,
    }
    options.update(pins)
    return ProviderClient(served.url, **options)


def _post(provider: Provider, body: bytes) -> tuple[int, dict[str, Any]]:
    status, headers, data = provider.request("POST", "/v1/infer", body)
    if status >= 400:
        assert headers["content-type"] == "application/problem+json", headers
    doc = json.loads(data)
    assert isinstance(doc, dict)
    return status, doc


def _call(job: str, value: Any = None, consumer: str = CONSUMER, **extra: Any) -> bytes:
    return json.dumps({"job": job, "consumer": consumer, "input": value, **extra}).encode()


def test_digits_end_to_end(served: tuple[Market, Provider], tmp_path: Path) -> None:
    market, provider = served
    job = b"\x10" * 32
    estimator = pickle.loads((market.model_dir / "model.pkl").read_bytes())
    with (
        ReceiptWallet(tmp_path / "wallet.sqlite") as wallet,
        _client(provider, market, wallet) as client,
    ):
        assert client.info()["model_digest"] == "sha256:" + market.digest.hex()
        results = [client.call([x], job=job, consumer=CONSUMER) for x in market.samples]
        assert [r.output for r in results] == [[int(v)] for v in estimator.predict(market.samples)]
        assert sum(r.output == [y] for r, y in zip(results, market.labels, strict=True)) >= 15
        assert [r.receipt.receipt.counter for r in results] == list(range(1, 21))
        assert {r.receipt.receipt.price for r in results} == {1000}
        rows = wallet.rows(job)
        assert [row.receipt for row in rows] == [r.receipt for r in results]
        proven = pending = 0
        for result in results:
            try:
                client.prove(result.receipt)
                proven += 1
            except NotFound:
                pending += 1  # its epoch is still open
        # the module's provider is shared: at least the whole epochs among these 20 closed
        assert proven >= 20 - EPOCH_SIZE
        assert proven + pending == 20
        kept = [verify_kept(row, model_digest=market.digest) for row in wallet.rows(job)]
        assert kept.count(True) == proven


def test_malformed_requests_are_refused_and_charge_nothing(
    served: tuple[Market, Provider],
) -> None:
    market, provider = served
    job = "0x" + "20" * 32
    status, doc = _post(provider, _call(job, market.samples[0]))
    assert status == 200
    assert doc["receipt"]["message"]["counter"] == 1
    good = market.samples[0]
    refused = [
        (b"{", 400),
        (b"[1, 2]", 400),
        (b'{"job": "' + job.encode() + b'"}', 400),
        (_call(job, good, extra=1), 400),
        (_call("0x" + "zz" * 32, good), 400),
        (_call(job[:-2], good), 400),
        (_call(job, good, consumer="0x1234"), 400),
        (_call(job, good, salt="0x00"), 400),
        (_call(job, good[:10]), 422),
        (_call(job, [[1.0] * 64, [1.0] * 3]), 422),
        (_call(job, "a digit"), 422),
        (
            b'{"job": "'
            + job.encode()
            + b'", "consumer": "'
            + CONSUMER.encode()
            + b'", "input": [NaN]}',
            400,
        ),
        (_call(job, good, consumer=OTHER_CONSUMER), 409),
        (_call(job, [0.0] * (1 << 18)), 413),
    ]
    for body, expected in refused:
        status, problem = _post(provider, body)
        assert status == expected, (body[:80], problem)
        assert problem["status"] == expected
        assert problem["detail"]
    status, doc = _post(provider, _call(job, market.samples[1]))
    assert status == 200
    assert doc["receipt"]["message"]["counter"] == 2
    for path, expected in [
        (f"/v1/receipts/{job}/1", 200),
        (f"/v1/receipts/{job}/3", 404),
        (f"/v1/receipts/0x{'zz' * 32}/1", 400),
        (f"/v1/receipts/{job}/-1", 400),
        (f"/v1/receipts/{job}/{1 << 63}", 400),
        (f"/v1/receipts/{job}/{'9' * 40}", 400),
        (f"/v1/epochs/{1 << 64}", 400),
        (f"/v1/epochs/{10**6}", 404),
        ("/v1/infer", 405),
    ]:
        status, _, _ = provider.request("GET", path)
        assert status == expected, path


def test_the_client_enforces_its_pins(served: tuple[Market, Provider], tmp_path: Path) -> None:
    market, provider = served
    job = b"\x30" * 32
    cases = [
        ({"provider": OTHER_CONSUMER}, "receipt-signer-mismatch"),
        ({"model_digest": b"\x00" * 32}, "receipt-model-mismatch"),
        ({"domain": market_domain(CHAIN_ID + 1, CONTRACT)}, "receipt-domain-mismatch"),
        ({"domain": market_domain(CHAIN_ID, "0x" + "cd" * 20)}, "receipt-domain-mismatch"),
    ]
    with ReceiptWallet(tmp_path / "wallet.sqlite") as wallet:
        for pins, code in cases:
            with _client(provider, market, wallet, **pins) as client:
                with pytest.raises(SignatureInvalid) as err:
                    client.call(market.samples[0], job=job, consumer=CONSUMER)
                assert err.value.code == code
        assert wallet.rows() == []  # nothing unverified is kept
        with _client(provider, market, wallet) as client, pytest.raises(ConflictError):
            client.call(market.samples[0], job=job, consumer=OTHER_CONSUMER)


def test_the_wallet_refuses_a_repeated_counter_and_lists_gaps(
    served: tuple[Market, Provider], tmp_path: Path
) -> None:
    market, provider = served
    job = b"\x40" * 32
    with ReceiptWallet(tmp_path / "wallet.sqlite") as wallet, _client(provider, market) as client:
        results = [client.call(x, job=job, consumer=CONSUMER) for x in market.samples[:3]]
        request = {"input": market.samples[0]}
        # out of order (concurrent calls): kept; the missing counter is listed
        for result in (results[2], results[0]):
            wallet.add(PROVIDER.address, result.receipt, request, result.output)
        assert wallet.gaps(job) == [2]
        with pytest.raises(SignatureInvalid) as err:
            wallet.add(PROVIDER.address, results[2].receipt, request, results[2].output)
        assert err.value.code == "receipt-counter-mismatch"
        wallet.add(PROVIDER.address, results[1].receipt, request, results[1].output)
        assert wallet.gaps(job) == []
        assert len(wallet.rows(job)) == 3


def test_cli_call_receipts_verify(served: tuple[Market, Provider], tmp_path: Path) -> None:
    market, provider = served
    store = tmp_path / "consumer.sqlite"
    job = "0x" + "50" * 32
    pins = [
        "--provider", PROVIDER.address,
        "--model-digest", "sha256:" + market.digest.hex(),
        "--consumer", CONSUMER,
        "--market-contract", CONTRACT,
        "--chain-id", str(CHAIN_ID),
        "--store", str(store),
    ]  # fmt: skip
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(market.samples[0]))
    for i in range(EPOCH_SIZE + 1):
        source = f"@{sample}" if i == 0 else json.dumps(market.samples[i])
        doc = ok(["market", "call", provider.url, "--input", source, "--job", job, *pins])
        assert doc["receipt"]["message"]["counter"] == i + 1
        SignedReceipt.from_dict(doc["receipt"])
    listed = ok(["market", "receipts", "--store", store, "--job", job])
    assert len(listed["receipts"]) == EPOCH_SIZE + 1
    verified = ok(["market", "verify", "--url", provider.url, "--store", store])
    # EPOCH_SIZE + 1 calls span at least one whole epoch
    assert verified["receipts"] == EPOCH_SIZE + 1
    assert verified["proven"] >= 1
    assert verified["proven"] == verified["fetched"]
    again = ok(["market", "verify", "--store", store])  # offline, the proofs kept
    assert again["proven"] == verified["proven"]
    with sqlite3.connect(store) as db:  # a kept response altered afterwards
        db.execute("UPDATE receipts SET response = ? WHERE counter = 1", (b'"tampered"',))
    fails(["market", "verify", "--store", store], 1, "receipt-job-mismatch")
    fails(
        ["market", "call", provider.url, "--input", "[1, 2]", "--job", job, *pins],
        3,
        "the model takes rows of 64 features",
    )
    wrong = [p if p != PROVIDER.address else OTHER_CONSUMER for p in pins]
    fails(
        ["market", "call", provider.url, "--input", json.dumps(market.samples[0]), *wrong],
        1,
        "receipt-signer-mismatch",
    )
    sample_text = json.dumps(market.samples[0])
    agreed = ok(["market", "call", provider.url, "--input", sample_text, "--price", "1000", *pins])
    assert agreed["receipt"]["message"]["price"] == 1000
    fails(
        ["market", "call", provider.url, "--input", sample_text, "--price", "999", *pins],
        1,
        "receipt-price-mismatch",
    )


def test_serve_refuses_a_model_that_is_not_the_registered_one(market: Market) -> None:
    (market.model_dir / "model.pkl").write_bytes(pickle.dumps({"swapped": True}))
    out = fails(
        ["--workspace", market.root, "market", "serve", "--port", "0", *provider_args()],
        1,
        "refusing to load it",
    )
    assert "served-model-mismatch" in out


def test_a_second_provider_on_the_same_store_is_refused(served: tuple[Market, Provider]) -> None:
    market, _ = served
    fails(
        ["--workspace", market.root, "market", "serve", "--port", "0", *provider_args()],
        10,
        "in use by another provider",
    )

"""``ailedger market serve`` as a real process on loopback, called by the Python client and the
CLI: a digits classifier end to end (outputs, receipts, wallet, epoch proofs), malformed
requests (4xx, no counter consumed), pins the client enforces, a model refused at start."""

from __future__ import annotations

import json
import pickle
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
    CONSUMER_KEY,
    CONTRACT,
    OTHER_CONSUMER,
    OTHER_KEY,
    PROVIDER,
    Market,
    Provider,
    make_market,
    provider_args,
    signed_body,
)

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
EPOCH_SIZE = 8


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Provider]]:
    market = make_market(tmp_path_factory.mktemp("market") / "provider")
    provider = Provider(
        market.root, *provider_args("--epoch-size", str(EPOCH_SIZE), jobs=market.jobs)
    ).start()
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


def _call(
    market: Market,
    job: str,
    value: Any = None,
    consumer: str = CONSUMER,
    sign_job: str | None = None,
    **extra: Any,
) -> bytes:
    """A body signed by the consumer (for job 0x2020.. when ``job`` is not a job id)."""
    if sign_job is None:
        valid = re.fullmatch(r"0x[0-9a-f]{64}", job) is not None
        sign_job = job if valid else "0x" + "20" * 32
    return signed_body(job, value, market.digest, consumer=consumer, sign_job=sign_job, **extra)


def test_digits_end_to_end(served: tuple[Market, Provider], tmp_path: Path) -> None:
    market, provider = served
    job = b"\x10" * 32
    estimator = pickle.loads((market.model_dir / "model.pkl").read_bytes())
    with (
        ReceiptWallet(tmp_path / "wallet.sqlite") as wallet,
        _client(provider, market, wallet) as client,
    ):
        assert client.info()["model_digest"] == "sha256:" + market.digest.hex()
        results = [client.call([x], job=job, signer=CONSUMER_KEY) for x in market.samples]
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
    first = _call(market, job, market.samples[0])
    status, doc = _post(provider, first)
    assert status == 200
    assert doc["receipt"]["message"]["counter"] == 1
    good = market.samples[0]
    unsigned = json.dumps({"job": job, "consumer": CONSUMER, "input": good}).encode()
    refused = [
        (unsigned, 401),
        (first, 409),  # replayed: its nonce was charged
        (_call(market, job, good, expires=1), 403),
        (signed_body(job, good, market.digest, key=OTHER_KEY, consumer=CONSUMER), 403),
        (_call(market, job, good, sign_job="0x" + "21" * 32), 403),  # signed for another job
        (_call(market, "0x" + "ee" * 31 + "00", good), 404),  # not in the job table
        (b"{", 400),
        (b"[1, 2]", 400),
        (b'{"job": "' + job.encode() + b'"}', 400),
        (_call(market, job, good, extra=1), 400),
        (_call(market, "0x" + "zz" * 32, good), 400),
        (_call(market, job[:-2], good), 400),
        (_call(market, job, good, consumer="0x1234"), 400),
        (_call(market, job, good, salt="0x00"), 400),
        (_call(market, job, good[:10]), 422),
        (_call(market, job, [[1.0] * 64, [1.0] * 3]), 422),
        (_call(market, job, "a digit"), 422),
        (
            b'{"job": "'
            + job.encode()
            + b'", "consumer": "'
            + CONSUMER.encode()
            + b'", "input": [NaN]}',
            400,
        ),
        (signed_body(job, good, market.digest, key=OTHER_KEY), 409),  # another's job
        (_call(market, job, [0.0] * (1 << 18)), 413),
    ]
    for body, expected in refused:
        status, problem = _post(provider, body)
        assert status == expected, (body[:80], problem)
        if status in (401, 403):
            assert problem["code"].startswith("request-")
        assert problem["status"] == expected
        assert problem["detail"]
    status, doc = _post(provider, _call(market, job, market.samples[1]))
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
        # the request is signed for what the client pins: the provider refuses it (403)
        ({"provider": OTHER_CONSUMER}, "request-signature-invalid"),
        ({"model_digest": b"\x00" * 32}, "request-signature-invalid"),
        ({"domain": market_domain(CHAIN_ID + 1, CONTRACT)}, "request-signature-invalid"),
        ({"domain": market_domain(CHAIN_ID, "0x" + "cd" * 20)}, "request-signature-invalid"),
    ]
    with ReceiptWallet(tmp_path / "wallet.sqlite") as wallet:
        for pins, code in cases:
            with _client(provider, market, wallet, **pins) as client:
                with pytest.raises(SignatureInvalid) as err:
                    client.call(market.samples[0], job=job, signer=CONSUMER_KEY)
                assert err.value.code == code
        assert wallet.rows() == []  # nothing unverified is kept
        with _client(provider, market, wallet) as client, pytest.raises(ConflictError):
            client.call(market.samples[0], job=job, signer=OTHER_KEY)
        with _client(provider, market, wallet) as client:  # nothing was charged for the job
            first = client.call(market.samples[0], job=job, signer=CONSUMER_KEY)
            assert first.receipt.receipt.counter == 1


def test_the_wallet_refuses_a_repeated_counter_and_lists_gaps(
    served: tuple[Market, Provider], tmp_path: Path
) -> None:
    market, provider = served
    job = b"\x40" * 32
    with ReceiptWallet(tmp_path / "wallet.sqlite") as wallet, _client(provider, market) as client:
        results = [client.call(x, job=job, signer=CONSUMER_KEY) for x in market.samples[:3]]
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
        "--key", "consumer",
        "--market-contract", CONTRACT,
        "--chain-id", str(CHAIN_ID),
        "--store", str(store),
    ]  # fmt: skip
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(market.samples[0]))
    for i in range(EPOCH_SIZE + 1):
        source = f"@{sample}" if i == 0 else json.dumps(market.samples[i])
        call = ["market", "call", provider.url, "--input", source, "--job", job, *pins]
        doc = ok(["--workspace", market.root, *call])
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
    ws = ["--workspace", market.root]
    fails(
        [*ws, "market", "call", provider.url, "--input", "[1, 2]", "--job", job, *pins],
        3,
        "the model takes rows of 64 features",
    )
    wrong = [p if p != PROVIDER.address else OTHER_CONSUMER for p in pins]
    sample_text = json.dumps(market.samples[0])
    fails(
        [*ws, "market", "call", provider.url, "--input", sample_text, "--job", job, *wrong],
        1,
        "request-signature-invalid",
    )
    agreed = ok(
        [*ws, "market", "call", provider.url, "--input", sample_text, "--price", "1000",
         "--job", job, *pins]
    )  # fmt: skip
    assert agreed["receipt"]["message"]["price"] == 1000
    fails(
        [*ws, "market", "call", provider.url, "--input", sample_text, "--price", "999",
         "--job", job, *pins],
        1,
        "receipt-price-mismatch",
    )  # fmt: skip


def test_serve_refuses_a_model_that_is_not_the_registered_one(market: Market) -> None:
    (market.model_dir / "model.pkl").write_bytes(pickle.dumps({"swapped": True}))
    out = fails(
        [
            "--workspace",
            market.root,
            "market",
            "serve",
            "--port",
            "0",
            *provider_args(jobs=market.jobs),
        ],
        1,
        "refusing to load it",
    )
    assert "served-model-mismatch" in out


def test_a_second_provider_on_the_same_store_is_refused(served: tuple[Market, Provider]) -> None:
    market, _ = served
    fails(
        [
            "--workspace",
            market.root,
            "market",
            "serve",
            "--port",
            "0",
            *provider_args(jobs=market.jobs),
        ],
        10,
        "in use by another provider",
    )


def test_one_signed_request_sent_by_32_clients_at_once_is_charged_once(
    served: tuple[Market, Provider],
) -> None:
    # a replay race over real connections: exactly one 200, 31 request-nonce-reused (409),
    # and the job's counter moved by one
    market, provider = served
    job = "0x" + "31" * 32
    body = _call(market, job, market.samples[2])
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda _: _post(provider, body), range(32)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * 31
    assert {doc.get("code") for status, doc in answers if status == 409} == {"request-nonce-reused"}
    assert provider.request("GET", f"/v1/receipts/{job}/1")[0] == 200
    assert provider.request("GET", f"/v1/receipts/{job}/2")[0] == 404
    status, doc = _post(provider, _call(market, job, market.samples[2]))
    assert (status, doc["receipt"]["message"]["counter"]) == (200, 2)

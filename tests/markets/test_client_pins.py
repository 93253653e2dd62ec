"""The consumer client's inputs and the price pin, in process: a URL that does not parse is
one InvalidInput (exit 3, it was an internal error), a receipt charging another price than the
agreed one is refused and not kept."""

from __future__ import annotations

import http.server
import sqlite3
import threading
from pathlib import Path

import pytest

from _cli import fails
from ailedger.errors import InvalidInput, ServiceError, SignatureInvalid
from ailedger.markets.inference import (
    ProviderClient,
    Receipt,
    ReceiptWallet,
    SignedReceipt,
    market_domain,
    request_digest,
    response_digest,
    sign_receipt,
)
from ailedger.markets.inference.client import MAX_ANSWER
from markets._helpers import CHAIN_ID, CONSUMER, CONSUMER_KEY, CONTRACT, PROVIDER

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
MODEL = b"\x04" * 32
JOB = b"\x0a" * 32


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999", "https://x", "ftp://x", "http://"]
)
def test_a_url_that_does_not_parse_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        ProviderClient(url, provider=PROVIDER.address, model_digest=MODEL, domain=DOMAIN)


def test_the_cli_reports_a_bad_url_with_exit_3(tmp_path: Path) -> None:
    out = fails(
        [
            "market", "call", "http://[::1", "--input", "[1]",
            "--provider", PROVIDER.address, "--model-digest", "sha256:" + MODEL.hex(),
            "--key", "consumer", "--job", "0x" + "0a" * 32, "--market-contract", CONTRACT,
            "--chain-id", str(CHAIN_ID), "--store", str(tmp_path / "w.sqlite"),
        ],
        3,
    )  # fmt: skip
    assert "is not an http:// URL" in out


def _receipt(price: int) -> SignedReceipt:
    receipt = Receipt(
        JOB, 1, request_digest([1]), response_digest([2]), MODEL, price, 1, CONSUMER, 0, 0
    )
    return SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, PROVIDER))


def test_a_receipt_charging_another_price_is_refused(tmp_path: Path) -> None:
    with ReceiptWallet(tmp_path / "w.sqlite") as wallet:
        pinned = ProviderClient(
            "http://127.0.0.1:1",
            provider=PROVIDER.address,
            model_digest=MODEL,
            domain=DOMAIN,
            wallet=wallet,
            price=1000,
        )
        pinned.check(_receipt(1000), [1], [2], job=JOB, consumer=CONSUMER)
        with pytest.raises(SignatureInvalid) as err:
            pinned.check(_receipt(10**18), [1], [2], job=JOB, consumer=CONSUMER)
        assert err.value.code == "receipt-price-mismatch"
        unpinned = ProviderClient(
            "http://127.0.0.1:1", provider=PROVIDER.address, model_digest=MODEL, domain=DOMAIN
        )
        unpinned.check(_receipt(10**18), [1], [2], job=JOB, consumer=CONSUMER)
    with pytest.raises(InvalidInput):
        ProviderClient(
            "http://x", provider=PROVIDER.address, model_digest=MODEL, domain=DOMAIN, price=-1
        )


def test_a_wallet_path_under_a_file_is_invalid_input_not_corruption(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInput, match="cannot make its directory"):
        ReceiptWallet(tmp_path / "a-file" / "w.sqlite")  # was IntegrityError (exit 7)


class _Liar(http.server.BaseHTTPRequestHandler):
    """A provider answering every call with ``server.answer`` (status 200)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        body: bytes = self.server.answer  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        (b"not json", "malformed answer"),
        (b'{"output": [2], "receipt": {"message": 1}}', "malformed receipt"),
        (
            b'{"output": [2], "receipt": {"domain": {}, "message": {}, "signature": "0x"}}',
            "malformed receipt",
        ),
        (b" " * (MAX_ANSWER + 1), "over"),
    ],
    ids=["not-json", "bad-receipt", "empty-fields", "oversized"],
)
def test_a_malformed_answer_is_the_providers_fault(answer: bytes, needle: str) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Liar)
    server.answer = answer  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = ProviderClient(url, provider=PROVIDER.address, model_digest=MODEL, domain=DOMAIN)
        with client, pytest.raises(ServiceError, match=needle):  # exit 13, not 3 ("your input")
            client.call([1], job=JOB, signer=CONSUMER_KEY)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("UPDATE receipts SET request = CAST('[1]' AS BLOB)", "not an object with an input"),
        (
            'UPDATE receipts SET request = CAST(\'{"input": [1], "salt": "0xzz"}\' AS BLOB)',
            "salt is not 0x and 64 hex digits",
        ),
        ("UPDATE receipts SET counter = 7", "its row says counter 7"),
        ("UPDATE receipts SET chain_id = 1", "on chain 1"),
    ],
    ids=["request-not-an-object", "salt-not-hex", "counter-column", "chain-column"],
)
def test_a_tampered_wallet_row_is_one_integrity_error(
    tmp_path: Path, sql: str, needle: str
) -> None:
    # before: a kept request that is not an object, or a salt that is not hex, crashed
    # `market verify` and `market receipts` (exit 70, an internal error); a row whose counter
    # column was changed passed `market verify`, while `gaps` listed counters it did hold
    store = tmp_path / "w.sqlite"
    with ReceiptWallet(store) as wallet:
        wallet.add(PROVIDER.address, _receipt(1), {"input": [1]}, [2])
        assert len(wallet.rows()) == 1
    db = sqlite3.connect(store)
    db.execute(sql)
    db.commit()
    db.close()
    for command in (["market", "verify"], ["market", "receipts"]):
        out = fails([*command, "--store", str(store)], 7)
        assert needle in out

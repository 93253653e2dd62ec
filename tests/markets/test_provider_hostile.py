"""Hostile requests to the provider app, in process (a hand-driven ASGI call, no network):
every bad request is a 4xx ``application/problem+json`` with one detail, never a bare 500 or
a plain-text page, and consumes no counter; a body is read no further than the limit."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ailedger.errors import ConflictError, InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    InferenceRequest,
    Predictor,
    ReceiptBook,
    SignedRequest,
    job_table,
    market_domain,
    request_digest,
    request_domain,
    response_digest,
    sign_request,
    verify_request,
)
from ailedger.markets.inference.provider import MAX_BODY, create_provider_app, listen
from markets._helpers import CHAIN_ID, CONSUMER, CONSUMER_KEY, CONTRACT, OTHER_KEY, PROVIDER

JOB = "0x" + "11" * 32
OTHER_JOB = "0x" + "12" * 32
MODEL = b"\x04" * 32
JOBS = job_table({bytes.fromhex(JOB[2:]): CONSUMER, bytes.fromhex(OTHER_JOB[2:]): CONSUMER})


def _app(book: ReceiptBook, predictor: Predictor | None = None, **options: Any) -> Any:
    return create_provider_app(book, predictor or Echo(), model="m@1", jobs=JOBS, **options)


class Echo(Predictor):
    """Answers its input (any JSON), or raises what it is told to."""

    kind = "callable"

    def __init__(self, fault: Exception | None = None) -> None:
        self.fault = fault

    def predict(self, value: Any) -> Any:
        if self.fault is not None:
            raise self.fault
        return value


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json", self.body[:200]
        doc = orjson.loads(self.body)
        assert doc["status"] == self.status
        assert isinstance(doc["detail"], str)
        assert doc["detail"]
        return dict(doc)


def _run(
    app: Any,
    method: str,
    path: str,
    chunks: Iterable[bytes] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> Answer:
    feed: Iterator[bytes] = iter(chunks)
    answer = Answer()

    async def receive() -> dict[str, Any]:
        chunk = next(feed, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "server": ("127.0.0.1", 8090),
        "client": ("127.0.0.1", 40000),
    }
    try:
        asyncio.run(app(scope, receive, send))
    except Exception:  # Starlette re-raises a 500 for the server's log, after answering
        if answer.status != 500:
            raise
    return answer


@pytest.fixture
def book(tmp_path: Path) -> Iterator[ReceiptBook]:
    with ReceiptBook(
        tmp_path / "book.sqlite",
        signer=PROVIDER,
        domain=market_domain(CHAIN_ID, CONTRACT),
        model_digest=MODEL,
        price=1,
        epoch_seconds=3600.0,
    ) as opened:
        yield opened


def _signed(
    value: Any,
    *,
    key: Secp256k1Signer = CONSUMER_KEY,
    job: str = JOB,
    provider: str = PROVIDER.address,
    model: bytes = MODEL,
    domain_chain: int = CHAIN_ID,
    nonce: bytes | None = None,
    expires: int | None = None,
) -> SignedRequest:
    try:
        digest = request_digest(value)
    except InvalidInput:  # nested too deeply: refused before the signature is looked at
        digest = b"\x00" * 32
    asked = InferenceRequest(
        bytes.fromhex(job[2:]),
        provider,
        model,
        digest,
        secrets.token_bytes(32) if nonce is None else nonce,
        int(time.time()) + 300 if expires is None else expires,
    )
    return sign_request(asked, request_domain(domain_chain, CONTRACT), key)


def _body(
    input_text: bytes, signed: SignedRequest | None = None, *, job: str = JOB, **fields: Any
) -> bytes:
    """A call with ``input_text`` verbatim, signed by the consumer unless ``signed`` says
    otherwise; ``fields`` replace or drop (None) body fields."""
    if signed is None:
        try:
            value = orjson.loads(input_text)
        except orjson.JSONDecodeError:
            value = None
        signed = _signed(value, job=job)
    doc: dict[str, Any] = {"job": job, "consumer": CONSUMER, **signed.to_dict()}
    for name, replacement in fields.items():
        if replacement is None:
            doc.pop(name, None)
        else:
            doc[name] = replacement
    return orjson.dumps(doc)[:-1] + b', "input": ' + input_text + b"}"


def _charged(book: ReceiptBook) -> int:
    return book.stats()["receipts"]


def test_a_good_call_is_answered_and_charged(book: ReceiptBook) -> None:
    app = _app(book)
    answer = _run(app, "POST", "/v1/infer", [_body(b"[1, 2]")])
    assert answer.status == 200, answer.body
    assert orjson.loads(answer.body)["output"] == [1, 2]
    assert _charged(book) == 1


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 990 + b"1" + b"]" * 990,  # under orjson's depth limit, over Python's recursion
        b'{"a": ' * 1000 + b"1" + b"}" * 1000,
        b"[" * 65 + b"]" * 65,
    ],
    ids=["lists-990", "objects-1000", "lists-65"],
)
def test_deeply_nested_input_is_a_400(book: ReceiptBook, text: bytes) -> None:
    app = _app(book)
    answer = _run(app, "POST", "/v1/infer", [_body(text)])
    assert answer.status == 400
    assert "nested" in answer.problem()["detail"]
    assert _charged(book) == 0
    ok = _run(app, "POST", "/v1/infer", [_body(b"[" * 64 + b"]" * 64)])
    assert ok.status == 200, ok.body  # the limit is 64 levels of input


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("GET", "/v1/receipts/" + JOB, 404),
        ("GET", "/v1/receipts/" + JOB + "/..%2f..%2f1", 400),  # not a counter
        ("DELETE", "/v1/infer", 405),
        ("GET", "/v1/infer", 405),
        ("POST", "/v1/info", 405),
    ],
)
def test_unknown_paths_and_methods_are_problems(
    book: ReceiptBook, method: str, path: str, status: int
) -> None:
    answer = _run(_app(book), method, path)
    assert answer.status == status
    answer.problem()


class Returns(Predictor):
    """Answers what it was built with, whatever the input."""

    kind = "callable"

    def __init__(self, output: Any) -> None:
        self.output = output

    def predict(self, value: Any) -> Any:
        return self.output


def test_a_failing_model_is_a_422_and_charges_nothing(book: ReceiptBook) -> None:
    # a model that raises on an input is that input's refusal (the caller learns nothing of
    # the internals; the traceback is in the provider's log), never a 500
    app = _app(book, Echo(RuntimeError("boom")))
    answer = _run(app, "POST", "/v1/infer", [_body(b"[1]")])
    assert answer.status == 422, answer.body
    assert "boom" not in answer.problem()["detail"]
    assert _charged(book) == 0
    refused = _run(
        _app(book, Echo(InvalidInput("no"))),
        "POST",
        "/v1/infer",
        [_body(b"[1]")],
    )
    assert refused.status == 422
    refused.problem()


@pytest.mark.parametrize(
    "output",
    [float("nan"), [1.0, float("inf")], {1: 2}, {"a": object()}, "x\ud800"],
    ids=["nan", "inf-in-list", "int-key", "object", "lone-surrogate"],
)
def test_an_output_with_no_json_form_is_a_422_and_charges_nothing(
    book: ReceiptBook, output: Any
) -> None:
    answer = _run(_app(book, Returns(output)), "POST", "/v1/infer", [_body(b"[1]")])
    assert answer.status == 422, answer.body
    answer.problem()
    assert _charged(book) == 0
    assert book.calls(bytes.fromhex(JOB[2:])) == 0


def test_numpy_outputs_are_answered_as_the_json_their_receipt_signs(book: ReceiptBook) -> None:
    # before: a callable model answering numpy floats passed the digest, was charged, then
    # could not be written: a 500 with the receipt stored and the counter consumed
    import numpy as np

    outputs = [
        np.float64(0.25),
        [np.float64(2.0), np.int64(3)],
        np.array([[1.5, 2.0]], dtype=np.float32),
        (1, np.bool_(True)),
    ]
    for n, output in enumerate(outputs, start=1):
        answer = _run(_app(book, Returns(output)), "POST", "/v1/infer", [_body(b"[1]")])
        assert answer.status == 200, answer.body
        doc = orjson.loads(answer.body)
        assert doc["receipt"]["message"]["counter"] == n
        assert bytes.fromhex(doc["receipt"]["message"]["responseDigest"][2:]) == (
            response_digest(doc["output"])
        )
    assert _charged(book) == len(outputs)


def test_a_streamed_body_is_read_no_further_than_the_limit(book: ReceiptBook) -> None:
    pulled = 0
    chunk = b" " * 65536

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(4 * MAX_BODY // len(chunk)):  # bounded, so a broken limit still ends
            pulled += len(chunk)
            yield chunk

    app = _app(book)
    answer = _run(app, "POST", "/v1/infer", endless(), [("transfer-encoding", "chunked")])
    assert answer.status == 413
    answer.problem()
    assert pulled <= MAX_BODY + len(chunk)
    assert _charged(book) == 0


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_a_body_that_is_not_declared_json_is_a_415(book: ReceiptBook, content_type: str) -> None:
    app = _app(book)
    answer = _run(app, "POST", "/v1/infer", [_body(b"[1]")], [("content-type", content_type)])
    assert answer.status == 415
    answer.problem()
    assert _charged(book) == 0
    for declared in ("application/json", "application/json; charset=utf-8"):
        ok = _run(app, "POST", "/v1/infer", [_body(b"[1]")], [("content-type", declared)])
        assert ok.status == 200, ok.body


@pytest.mark.parametrize("value", [[[]], {"a": 1}], ids=["lists", "objects"])
def test_digests_of_a_value_nested_too_deeply_are_refused(value: Any) -> None:
    deep = value
    for _ in range(5000):
        deep = [deep] if isinstance(value, list) else {"a": deep}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # another import may have raised it (the default is 1,000)
    try:
        with pytest.raises(InvalidInput, match="nested too deeply"):
            request_digest(deep)
        with pytest.raises(InvalidInput, match="nested too deeply"):
            response_digest(deep)
    finally:
        sys.setrecursionlimit(limit)


def test_listen_reports_a_bad_or_busy_port_in_one_line() -> None:
    with pytest.raises(InvalidInput, match=r"not in 0\.\.65535"):
        listen("127.0.0.1", 99999)  # was an OverflowError: an internal error, exit 70
    sock, url = listen("127.0.0.1", 0)
    try:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConflictError, match="is in use"):
            listen("127.0.0.1", port)
    finally:
        sock.close()


def _refusals() -> list[tuple[str, bytes, int, str]]:
    value = [1, 2]
    text = orjson.dumps(value)
    return [
        ("unsigned", _body(text, signature=None, nonce=None, expires=None), 401,
         "request-unsigned"),
        ("no-signature", _body(text, signature=None), 401, "request-unsigned"),
        ("other-key", _body(text, _signed(value, key=OTHER_KEY)), 403,
         "request-signature-invalid"),
        ("other-job", _body(text, _signed(value, job=OTHER_JOB)), 403,
         "request-signature-invalid"),
        ("other-provider", _body(text, _signed(value, provider=CONSUMER)), 403,
         "request-signature-invalid"),
        ("other-model", _body(text, _signed(value, model=b"\x05" * 32)), 403,
         "request-signature-invalid"),
        ("other-chain", _body(text, _signed(value, domain_chain=CHAIN_ID + 1)), 403,
         "request-signature-invalid"),
        ("other-input", _body(b"[1, 3]", _signed(value)), 403, "request-signature-invalid"),
        ("expired", _body(text, _signed(value, expires=int(time.time()) - 1)), 403,
         "request-expired"),
        ("high-s", _body(text, signature="0x" + "ff" * 65), 403, "request-signature-invalid"),
        ("short-signature", _body(text, signature="0x" + "11" * 64), 400, ""),
        ("bad-nonce", _body(text, nonce="0x01"), 400, ""),
        ("bad-expiry", _body(text, expires="soon"), 400, ""),
        ("negative-expiry", _body(text, expires=-1), 400, ""),
    ]  # fmt: skip


@pytest.mark.parametrize("case", [case[0] for case in _refusals()])
def test_a_request_not_signed_by_the_jobs_consumer_is_refused_and_charges_nothing(
    book: ReceiptBook, case: str
) -> None:
    # the bodies are signed now, not at collection: a request expires 300 s after signing,
    # and a test may run long after the suite was collected
    body, status, code = next(c[1:] for c in _refusals() if c[0] == case)
    app = _app(book)
    answer = _run(app, "POST", "/v1/infer", [body])
    assert answer.status == status, answer.body
    problem = answer.problem()
    if code:
        assert problem["code"] == code
    if status == 401:
        assert answer.headers["www-authenticate"].startswith("EIP712")
    assert _charged(book) == 0
    good = _run(app, "POST", "/v1/infer", [_body(b"[1, 2]")])
    assert good.status == 200, good.body
    assert orjson.loads(good.body)["receipt"]["message"]["counter"] == 1  # no counter consumed


def test_a_replayed_request_is_refused_even_after_a_restart(tmp_path: Path) -> None:
    def open_book() -> ReceiptBook:
        return ReceiptBook(
            tmp_path / "book.sqlite", signer=PROVIDER, domain=market_domain(CHAIN_ID, CONTRACT),
            model_digest=MODEL, price=1,
        )  # fmt: skip

    body = _body(b"[7]")
    with open_book() as book:
        app = _app(book)
        assert _run(app, "POST", "/v1/infer", [body]).status == 200
        again = _run(app, "POST", "/v1/infer", [body])
        assert again.status == 409
        assert again.problem()["code"] == "request-nonce-reused"
        # the same nonce on another job of the same consumer is another request
        signed = SignedRequest.from_dict(orjson.loads(body))
        other = _signed([7], job=OTHER_JOB, nonce=signed.nonce)
        assert _run(app, "POST", "/v1/infer", [_body(b"[7]", other, job=OTHER_JOB)]).status == 200
        assert _charged(book) == 2
    with open_book() as book:  # the nonce is stored with the receipt: refused after a restart
        again = _run(_app(book), "POST", "/v1/infer", [body])
        assert again.status == 409
        assert _charged(book) == 2


def test_the_provider_can_show_the_consumer_asked_for_every_call(book: ReceiptBook) -> None:
    app = _app(book)
    for value in ([1], [2], {"a": 3}):
        assert _run(app, "POST", "/v1/infer", [_body(orjson.dumps(value))]).status == 200
    job = bytes.fromhex(JOB[2:])
    domain = request_domain(CHAIN_ID, CONTRACT)
    for counter in (1, 2, 3):
        receipt = book.receipt(job, counter).receipt
        answer = _run(app, "GET", f"/v1/receipts/{JOB}/{counter}/request")
        assert answer.status == 200, answer.body
        signed = SignedRequest.from_dict(orjson.loads(answer.body))
        assert signed == book.request(job, counter)
        asked = InferenceRequest(
            job, PROVIDER.address, MODEL, receipt.request_digest, signed.nonce, signed.expires
        )
        # what the receipt bills is what the consumer signed (checked as of signing time)
        verify_request(asked, signed, domain=domain, consumer=CONSUMER, now=0)
    assert _run(app, "GET", f"/v1/receipts/{JOB}/4/request").status == 404


def test_jobs_are_served_only_as_the_directory_says(book: ReceiptBook) -> None:
    app = _app(book)
    unknown = "0x" + "13" * 32
    answer = _run(app, "POST", "/v1/infer", [_body(b"[1]", _signed([1], job=unknown), job=unknown)])
    assert answer.status == 404
    other = _body(b"[1]", _signed([1], key=OTHER_KEY), consumer=OTHER_KEY.address)
    assert _run(app, "POST", "/v1/infer", [other]).status == 409  # the job is CONSUMER's
    assert _charged(book) == 0
    with pytest.raises(InvalidInput, match="names no job"):
        job_table({})


def test_calls_past_a_jobs_deadline_or_maximum_are_refused(tmp_path: Path) -> None:
    from ailedger.markets.inference import JobEntry

    def directory(job: bytes) -> JobEntry:
        return JobEntry(CONSUMER, max_calls=2, deadline=2_000_000_000)

    with ReceiptBook(
        tmp_path / "b.sqlite", signer=PROVIDER, domain=market_domain(CHAIN_ID, CONTRACT),
        model_digest=MODEL, price=1,
    ) as book:  # fmt: skip
        app = create_provider_app(book, Echo(), model="m@1", jobs=directory)
        assert _run(app, "POST", "/v1/infer", [_body(b"[1]")]).status == 200
        assert _run(app, "POST", "/v1/infer", [_body(b"[2]")]).status == 200
        used = _run(app, "POST", "/v1/infer", [_body(b"[3]")])
        assert used.status == 409
        assert "all its 2 calls" in used.problem()["detail"]
        late = create_provider_app(
            book, Echo(), model="m@1", jobs=directory, clock=lambda: 2_000_000_001.0
        )
        body = _body(b"[4]", _signed([4], job=OTHER_JOB, expires=2_000_000_100), job=OTHER_JOB)
        assert _run(late, "POST", "/v1/infer", [body]).status == 409
        assert _charged(book) == 2


def test_a_refused_signature_never_reaches_the_job_directory(book: ReceiptBook) -> None:
    """An on-chain directory reads the chain for a job it has not seen: an unsigned or forged
    request must be refused before, so it cannot make the provider read the chain."""
    from ailedger.markets.inference import JobEntry

    looked_up: list[bytes] = []

    def directory(job: bytes) -> JobEntry:
        looked_up.append(job)
        return JobEntry(CONSUMER)

    app = create_provider_app(book, Echo(), model="m@1", jobs=directory)
    for body, _, _ in [case[1:] for case in _refusals() if case[2] in (401, 403)]:
        assert _run(app, "POST", "/v1/infer", [body]).status in (401, 403)
    assert looked_up == []
    assert _run(app, "POST", "/v1/infer", [_body(b"[1]")]).status == 200
    assert looked_up == [bytes.fromhex(JOB[2:])]

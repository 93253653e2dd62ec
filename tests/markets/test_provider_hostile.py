"""Hostile requests to the provider app, in process (a hand-driven ASGI call, no network):
every bad request is a 4xx ``application/problem+json`` with one detail, never a bare 500 or
a plain-text page, and consumes no counter; a body is read no further than the limit."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ailedger.errors import ConflictError, InvalidInput
from ailedger.markets.inference import (
    Predictor,
    ReceiptBook,
    market_domain,
    request_digest,
    response_digest,
)
from ailedger.markets.inference.provider import MAX_BODY, create_provider_app, listen
from markets._helpers import CHAIN_ID, CONSUMER, CONTRACT, PROVIDER

JOB = "0x" + "11" * 32


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
        model_digest=b"\x04" * 32,
        price=1,
        epoch_seconds=3600.0,
    ) as opened:
        yield opened


def _body(input_text: bytes) -> bytes:
    return (
        b'{"job": "'
        + JOB.encode()
        + b'", "consumer": "'
        + CONSUMER.encode()
        + b'", "input": '
        + input_text
        + b"}"
    )


def _charged(book: ReceiptBook) -> int:
    return book.stats()["receipts"]


def test_a_good_call_is_answered_and_charged(book: ReceiptBook) -> None:
    app = create_provider_app(book, Echo(), model="m@1")
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
    app = create_provider_app(book, Echo(), model="m@1")
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
    answer = _run(create_provider_app(book, Echo(), model="m@1"), method, path)
    assert answer.status == status
    answer.problem()


def test_a_failing_model_is_a_problem_500_and_charges_nothing(book: ReceiptBook) -> None:
    app = create_provider_app(book, Echo(RuntimeError("boom")), model="m@1")
    answer = _run(app, "POST", "/v1/infer", [_body(b"[1]")])
    assert answer.status == 500
    assert "boom" not in answer.problem()["detail"]  # no internals leak to the caller
    assert _charged(book) == 0
    refused = _run(
        create_provider_app(book, Echo(InvalidInput("no")), model="m@1"),
        "POST",
        "/v1/infer",
        [_body(b"[1]")],
    )
    assert refused.status == 422
    refused.problem()


def test_a_streamed_body_is_read_no_further_than_the_limit(book: ReceiptBook) -> None:
    pulled = 0
    chunk = b" " * 65536

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(4 * MAX_BODY // len(chunk)):  # bounded, so a broken limit still ends
            pulled += len(chunk)
            yield chunk

    app = create_provider_app(book, Echo(), model="m@1")
    answer = _run(app, "POST", "/v1/infer", endless(), [("transfer-encoding", "chunked")])
    assert answer.status == 413
    answer.problem()
    assert pulled <= MAX_BODY + len(chunk)
    assert _charged(book) == 0


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_a_body_that_is_not_declared_json_is_a_415(book: ReceiptBook, content_type: str) -> None:
    app = create_provider_app(book, Echo(), model="m@1")
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

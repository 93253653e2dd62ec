"""``POST /v1/entries`` in process, through the app's ASGI callable (no sockets): the fast path
that answers submissions before FastAPI routes them keeps the route's refusals (problem+json),
its body limits and durability, and answers nobody who went away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from _log_util import ALICE, LOG_SIGNER, envelope
from _service import LOG_KEY
from ailedger.errors import StorageError
from ailedger.log import PreparedEntry, Secp256k1NoteKey, TransparencyLog
from ailedger.service._sequencer import Sequencer, Submitted
from ailedger.service.app import SUBMIT_PATH, ServiceSettings, create_app

LIMIT = 4096

Sent = list[dict[str, Any]]


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    """The app between its lifespan's start-up and shutdown."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[str] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        await outbox.put(message["type"])

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert await outbox.get() == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert await outbox.get() == "lifespan.shutdown.complete"
        await task


async def call(
    app: FastAPI,
    messages: list[dict[str, Any]],
    headers: list[tuple[bytes, bytes]],
    sent: Sent | None = None,
) -> Sent:
    """One POST /v1/entries whose body arrives as ``messages``; what the app sent back (also
    into ``sent``, kept if the app raises)."""
    queue = iter(messages)
    sent = [] if sent is None else sent

    async def receive() -> dict[str, Any]:
        return next(queue, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": SUBMIT_PATH,
        "raw_path": SUBMIT_PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"log.test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return sent


def body_of(data: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": data, "more_body": False}]


def answer(sent: Sent) -> tuple[int, str, dict[str, Any]]:
    """(status, content type, JSON body) of a complete response."""
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"], sent
    headers = dict(sent[0]["headers"])
    return sent[0]["status"], headers[b"content-type"].decode(), json.loads(sent[1]["body"])


class Service:
    """The app over a fresh log, ALICE allowed, bodies up to LIMIT bytes; :meth:`run` once
    (a sequencer does not restart)."""

    def __init__(self, path: Path) -> None:
        TransparencyLog.open(path, LOG_KEY.name).close()
        self.path = path
        self.reader = TransparencyLog.open(path)
        self.sequencer = Sequencer(
            lambda: TransparencyLog.open(path),
            Secp256k1NoteKey.from_signer(LOG_KEY.name, LOG_SIGNER),
        )
        settings = ServiceSettings(allow=frozenset({ALICE.address.lower()}), max_body_bytes=LIMIT)
        self.app = create_app(self.reader, self.sequencer, LOG_KEY, settings)

    def run(self, *requests: tuple[list[dict[str, Any]], list[tuple[bytes, bytes]]]) -> list[Sent]:
        async def go() -> list[Sent]:
            async with running(self.app):
                return [await call(self.app, m, h) for m, h in requests]

        return asyncio.run(go())

    def size(self) -> int:
        with TransparencyLog.open(self.path, read_only=True) as log:
            return log.size()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = Service(tmp_path / "log.sqlite")
    try:
        yield s
    finally:
        s.reader.close()


def test_a_submission_is_durable_when_answered_and_a_duplicate_is_200(service: Service) -> None:
    data = envelope(1)
    first, second = service.run((body_of(data), []), (body_of(data), []))
    assert answer(first)[0] == 201
    assert answer(first)[1] == "application/json"
    assert answer(first)[2]["index"] == 0
    assert answer(second)[0] == 200
    assert answer(second)[2] == {**answer(first)[2], "duplicate": True}
    assert service.size() == 1


def test_a_body_streamed_over_the_limit_is_413(service: Service) -> None:
    chunk = b" " * (LIMIT // 2 + 1)
    streamed = [
        {"type": "http.request", "body": chunk, "more_body": True},
        {"type": "http.request", "body": chunk, "more_body": False},
    ]
    # a body within the limit, streamed in pieces, is taken whole
    data = envelope(2)
    pieces = [
        {"type": "http.request", "body": data[:10], "more_body": True},
        {"type": "http.request", "body": data[10:], "more_body": False},
    ]
    over, within = service.run((streamed, []), (pieces, []))
    status, media, problem = answer(over)
    assert (status, media) == (413, "application/problem+json")
    assert problem["type"] == "https://ailedger.dev/problems/too-large"
    assert answer(within)[0] == 201
    assert service.size() == 1


@pytest.mark.parametrize(
    ("length", "status"), [(b"12x", 400), (str(LIMIT + 1).encode(), 413)], ids=["bad", "over"]
)
def test_the_declared_length_is_checked_before_the_body(
    service: Service, length: bytes, status: int
) -> None:
    # the body never arrives: the refusal does not wait for it
    (sent,) = service.run(([], [(b"content-length", length)]))
    assert answer(sent)[:2] == (status, "application/problem+json")


def test_a_client_gone_before_its_body_arrived_gets_no_answer(service: Service) -> None:
    (sent,) = service.run(([{"type": "http.disconnect"}], []))
    assert sent == []
    assert service.size() == 0


def test_an_error_of_ours_while_checking_is_its_problem(service: Service) -> None:
    # signed by an allowed signer, but an in-toto payload without a subject list
    (sent,) = service.run((body_of(envelope(1, payload=b'{"predicateType": "x"}')), []))
    status, media, problem = answer(sent)
    assert (status, media) == (400, "application/problem+json")
    assert "subject" in problem["detail"]
    assert service.size() == 0


def test_a_storage_fault_while_sequencing_is_503(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(entry: PreparedEntry) -> Submitted:
        raise StorageError("disk full", path="log.sqlite")

    monkeypatch.setattr(service.sequencer, "submit", failing)
    (sent,) = service.run((body_of(envelope(1)), []))
    status, media, problem = answer(sent)
    assert (status, media) == (503, "application/problem+json")
    assert problem["type"] == "https://ailedger.dev/problems/storage-fault"


def test_a_bug_while_sequencing_is_a_500_problem(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(entry: PreparedEntry) -> Submitted:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service.sequencer, "submit", broken)
    sent: Sent = []

    async def go() -> None:
        async with running(service.app):
            with pytest.raises(RuntimeError, match="a bug"):  # re-raised for the server's log
                await call(service.app, body_of(envelope(1)), [], sent)

    asyncio.run(go())
    status, media, problem = answer(sent)
    assert (status, media) == (500, "application/problem+json")
    assert "RuntimeError" in problem["detail"]

"""The uvicorn entry point: once a server has started, start-up's heap is frozen out of the
cyclic garbage collector (full collections walked it: 50-70 ms pauses under load) before
the ready line."""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from _log_util import ALICE, LOG_SIGNER
from _service import LOG_KEY, ORIGIN, server_workspace
from ailedger.log import Secp256k1NoteKey
from ailedger.service import _server
from ailedger.service.app import ServiceSettings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the test process's heap back to the collector afterwards."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _tracked(obj: object) -> bool:
    """Whether ``obj`` is in one of the collector's generations (not the permanent one)."""
    return any(o is obj for o in gc.get_objects())


def test_started_hook_freezes_the_heap_then_reports_ready(unfrozen: None) -> None:
    survivor: list[object] = []
    survivor.append(survivor)  # a cycle, kept alive by this frame
    assert _tracked(survivor)
    ready: list[tuple[str, int]] = []

    _server.when_started(lambda url: ready.append((url, gc.get_freeze_count())), "http://h:1")()

    assert len(ready) == 1
    url, frozen = ready[0]
    assert url == "http://h:1"
    assert frozen > 0  # frozen before the ready line
    assert not _tracked(survivor)
    gc.unfreeze()
    assert _tracked(survivor)


def test_started_hook_without_a_ready_callback_still_freezes(unfrozen: None) -> None:
    _server.when_started(None, "http://h:1")()
    assert gc.get_freeze_count() > 0


def _run_lifespan(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """Stands in for ``uvicorn.Server.run``: the app's start-up and shutdown, no requests."""

    async def lifespan() -> None:
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent: list[str] = []

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message["type"])

        await server.config.loaded_app(
            {"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send
        )
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"], sent

    server.config.load()
    asyncio.run(lifespan())


def test_serve_settles_the_heap_once_started_before_the_ready_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = server_workspace(tmp_path / "server")
    events: list[str] = []
    monkeypatch.setattr(_server, "settle_heap", lambda: events.append("settled"))
    monkeypatch.setattr(uvicorn.Server, "run", _run_lifespan)

    _server.serve(
        ws,
        Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER),
        LOG_KEY,
        ServiceSettings(allow=frozenset({ALICE.address.lower()})),
        port=0,
        serve_chain=False,
        on_ready=lambda url: events.append(f"ready {url.split(':')[0]}"),
    )

    assert events == ["settled", "ready http"]

"""Rate limits of the log service: token buckets on an injected clock (no sleeping, no
wall-clock bounds), per signer for submissions and per client IP for reads, 429 with
Retry-After and a problem+json body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _cli import fails, ok
from _log_util import ALICE, BOB, LOG_SIGNER, envelope
from _service import LOG_KEY, Service, server_workspace, wait_for_checkpoint
from ailedger.errors import InvalidInput
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.service._sequencer import Sequencer, SequencerSettings
from ailedger.service.app import ServiceSettings, create_app
from ailedger.service.ratelimit import RateLimit, TokenBuckets, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(RateLimit(2.0, burst=3), clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # one bucket per key
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # capped at the burst


def test_buckets_are_bounded_in_number() -> None:
    buckets = TokenBuckets(RateLimit(1.0, burst=1), clock=Clock(), max_keys=10)
    for i in range(100):
        buckets.take(f"k{i}")
    assert len(buckets) == 10


@settings(deadline=None)
@given(
    rate=st.floats(0.1, 100),
    burst=st.integers(1, 50),
    steps=st.lists(st.floats(0, 2), min_size=1, max_size=200),
)
def test_admitted_requests_never_exceed_burst_plus_rate_times_time(
    rate: float, burst: int, steps: list[float]
) -> None:
    clock = Clock()
    buckets = TokenBuckets(RateLimit(rate, burst=burst), clock=clock)
    start, admitted = clock.now, 0
    for dt in steps:
        clock.now += dt
        wait = buckets.take("k")
        if wait == 0.0:
            admitted += 1
        else:  # the wait it names is enough, and needed
            assert wait <= 1 / rate + 1e-9
        assert admitted <= burst + rate * (clock.now - start) + 1e-6


@pytest.mark.parametrize(
    ("text", "rate", "burst"), [("20/s", 20.0, 20), ("0.5/s", 0.5, 1), (" 7 ", 7.0, 7)]
)
def test_rate_parsing(text: str, rate: float, burst: int) -> None:
    assert RateLimit.parse(text) == RateLimit(rate, burst)


@pytest.mark.parametrize("text", ["", "fast", "-1/s", "0/s", "1/min", "nan"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        RateLimit.parse(text)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2)] == ["1", "1", "2"]


# --- the app, in process, over a raw ASGI call -----------------------------------------------


async def _call(
    app: Any, method: str, path: str, body: bytes = b"", client: str = "10.0.0.1"
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": (client, 40000),
        "server": ("test", 80),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def _run(
    tmp_path: Path,
    settings_: ServiceSettings,
    steps: Callable[[Any], Any],
    sequencing: SequencerSettings | None = None,
) -> None:
    path = tmp_path / "log.sqlite"
    TransparencyLog.open(path, LOG_KEY.name).close()
    signer = Secp256k1NoteKey.from_signer(LOG_KEY.name, LOG_SIGNER)

    async def main() -> None:
        sequencer = Sequencer(
            lambda: TransparencyLog.open(path), signer, sequencing or SequencerSettings()
        )
        with TransparencyLog.open(path, read_only=True) as reader:
            app = create_app(reader, sequencer, LOG_KEY, settings_)
            await sequencer.start()
            try:
                await steps(app)
            finally:
                await sequencer.stop()

    asyncio.run(main())


def _problem(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"] == "application/problem+json"
    doc = json.loads(body)
    assert doc["status"] == status
    assert isinstance(doc, dict)
    return doc


def test_a_signer_over_its_rate_gets_429_and_nothing_is_appended(tmp_path: Path) -> None:
    clock = Clock()
    allow = frozenset({ALICE.address.lower(), BOB.address.lower()})
    limits = ServiceSettings(allow, signer_limit=RateLimit(1.0, burst=2), clock=clock)

    async def steps(app: Any) -> None:
        assert (await _call(app, "POST", "/v1/entries", envelope(1)))[0] == 201
        assert (await _call(app, "POST", "/v1/entries", envelope(2)))[0] == 201
        status, headers, body = await _call(app, "POST", "/v1/entries", envelope(3))
        assert (status, headers["retry-after"]) == (429, "1")
        assert "over the rate limit" in _problem(429, headers, body)["detail"]
        # another signer has its own bucket; the refused entry was not appended
        done = json.loads((await _call(app, "POST", "/v1/entries", envelope(4, (BOB,))))[2])
        assert done["index"] == 2
        clock.now += 1.0
        done = json.loads((await _call(app, "POST", "/v1/entries", envelope(3)))[2])
        assert (done["index"], done["duplicate"]) == (3, False)
        # reads are not limited without a read limit
        for _ in range(20):
            assert (await _call(app, "GET", "/checkpoint"))[0] == 200

    _run(tmp_path, limits, steps)


def test_a_client_ip_over_the_read_rate_gets_429(tmp_path: Path) -> None:
    clock = Clock()
    limits = ServiceSettings(
        frozenset({ALICE.address.lower()}), read_limit=RateLimit(0.5, burst=2), clock=clock
    )

    async def steps(app: Any) -> None:
        assert (await _call(app, "GET", "/checkpoint"))[0] == 200
        assert (await _call(app, "GET", "/v1/entries"))[0] == 200
        status, headers, body = await _call(app, "GET", "/checkpoint")
        assert (status, headers["retry-after"]) == (429, "2")
        assert "client 10.0.0.1" in _problem(429, headers, body)["detail"]
        assert (await _call(app, "GET", "/checkpoint", client="10.0.0.2"))[0] == 200
        # submissions are the signers' limit's business, not the read limit's
        assert (await _call(app, "POST", "/v1/entries", envelope(1)))[0] == 201
        clock.now += 2.0
        assert (await _call(app, "GET", "/checkpoint"))[0] == 200

    _run(tmp_path, limits, steps)


def test_serve_takes_the_limits_from_options_and_config(tmp_path: Path) -> None:
    root = tmp_path / "server"
    ws = server_workspace(root)
    fails(["--workspace", root, "serve", "--allow", ALICE.address, "--rate", "fast"], 3, "LIMIT/s")
    fails(
        ["--workspace", root, "serve", "--allow", ALICE.address, "--burst", "3"], 3, "needs a rate"
    )
    text = ws.config_path.read_text() + '\n[serve]\nrate = "0.001/s"\nburst = 1\n'
    ws.config_path.write_text(text)
    good, again = tmp_path / "a.json", tmp_path / "b.json"
    good.write_bytes(envelope(1))
    again.write_bytes(envelope(2))
    with Service(root, "--allow", ALICE.address, "--checkpoint-interval-ms", "20") as service:
        client = tmp_path / "client"
        client.mkdir()
        home = {"AILEDGER_HOME": str(server_workspace(client).root)}
        assert ok(["log", "append", "--log", service.url, good], env=home)["indexes"] == [0]
        fails(["log", "append", "--log", service.url, again], 13, "HTTP 429", "retry in", env=home)
        wait_for_checkpoint(service, 1)


def test_cached_tiles_are_inside_the_read_limit(tmp_path: Path) -> None:
    """The tile cache answers before routing; it must not answer before the read limit."""
    clock = Clock()
    limits = ServiceSettings(
        frozenset({ALICE.address.lower()}), read_limit=RateLimit(0.5, burst=3), clock=clock
    )

    async def steps(app: Any) -> None:
        assert (await _call(app, "POST", "/v1/entries", envelope(1)))[0] == 201
        for _ in range(1000):  # the checkpoint covering the entry (signed once it is in)
            if (await _call(app, "GET", "/tile/0/000.p/1", client="10.0.0.9"))[0] == 200:
                break
            clock.now += 2.0
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("no checkpoint covered the entry")
        assert (await _call(app, "GET", "/tile/0/000.p/1"))[0] == 200  # cached now
        assert (await _call(app, "GET", "/tile/0/000.p/1"))[0] == 200
        assert (await _call(app, "GET", "/tile/0/000.p/1"))[0] == 200
        status, headers, _ = await _call(app, "GET", "/tile/0/000.p/1")
        assert (status, headers["retry-after"]) == (429, "2")

    _run(tmp_path, limits, steps, SequencerSettings(checkpoint_entries=1))


def test_rpc_calls_are_inside_the_read_limit(tmp_path: Path) -> None:
    """The embedded chain's JSON-RPC (POST /rpc) is limited per client IP like reads: each
    transaction it takes mines a block, so it must not be open to a flood."""
    from fastapi import APIRouter

    router = APIRouter()

    @router.post("/rpc")
    async def rpc() -> dict[str, object]:
        return {"jsonrpc": "2.0", "id": 1, "result": "0x1"}

    clock = Clock()
    limits = ServiceSettings(
        frozenset({ALICE.address.lower()}), read_limit=RateLimit(0.5, burst=2), clock=clock
    )
    path = tmp_path / "log.sqlite"
    TransparencyLog.open(path, LOG_KEY.name).close()
    signer = Secp256k1NoteKey.from_signer(LOG_KEY.name, LOG_SIGNER)

    async def main() -> None:
        sequencer = Sequencer(lambda: TransparencyLog.open(path), signer, SequencerSettings())
        with TransparencyLog.open(path, read_only=True) as reader:
            app = create_app(reader, sequencer, LOG_KEY, limits, routers=[router])
            await sequencer.start()
            try:
                assert (await _call(app, "POST", "/rpc", b"{}"))[0] == 200
                assert (await _call(app, "POST", "/rpc", b"{}"))[0] == 200
                status, headers, _ = await _call(app, "POST", "/rpc", b"{}")
                assert (status, headers["retry-after"]) == (429, "2")
                # submissions stay the signers' limit's business
                assert (await _call(app, "POST", "/v1/entries", envelope(1)))[0] == 201
            finally:
                await sequencer.stop()

    asyncio.run(main())

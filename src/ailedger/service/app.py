"""The log service: an ASGI app (FastAPI) over one transparency log.

::

    POST /v1/entries                    a DSSE envelope -> 201 {index, leaf_hash} (200: duplicate)
    GET  /checkpoint                    the latest published checkpoint (C2SP signed note;
                                        with witnesses: once k of them cosigned it)
    GET  /tile/<L>/<N>[.p/<W>]          C2SP tlog-tiles hash tiles
    GET  /tile/entries/<N>[.p/<W>]      entry bundles (canonical envelopes)
    GET  /v1/entries/{i}                envelope + inclusion proof against the latest checkpoint
    GET  /v1/entries?subject=&predicate_type=&signer=&limit=
    GET  /v1/entries?start=&limit=      a range, with envelopes and append times (mirrors)
    GET  /v1/proof/consistency?old=&new=
    GET  /v1/receipts/{i}               the receipt `ailedger log receipt` writes
    GET  /healthz                       liveness (200 while the service runs; the published size)
    GET  /openapi.json
    GET  /, /explorer/...               the explorer (:mod:`.explorer`; added by ``ailedger serve``)

:func:`create_app` takes its dependencies (a read connection to the log, the
:class:`~ailedger.service._sequencer.Sequencer` that writes it, the log's verifier key, the
allow-list or the on-chain membership check, and limits); it reads no environment. Submissions
are checked in this order: size (413), JSON bounds and envelope form (400), every signer in the
allow-list (403), every signature (422), with on-chain membership instead of an allow-list
every verified signer a member (403 ``signer-not-member``; 503 ``chain-unavailable`` when the
chain cannot say: :mod:`.membership`), the signer's rate limit (429), canonical size within an
entry bundle (413).
A read-only service (``serve --read-only``) refuses every submission (403).
Reads are bounded by the latest checkpoint: a tile or entry that no published checkpoint
covers is 404; with a read limit, a client IP over it gets 429 (:mod:`.ratelimit`).

Two hot paths are answered by ASGI middleware before FastAPI routes a request: a cached tile
(:class:`TileCache`) and a submission (the same checks as the documented route, the same
problem+json refusals; FastAPI's middleware stack, routing and request objects cost ~40% of the
event loop's CPU per submission).
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ailedger import _json
from ailedger.attest.dsse import Envelope
from ailedger.errors import AiledgerError, FormatError
from ailedger.log import AnyNoteKey, Checkpoint, Entry, SignedNote, TransparencyLog
from ailedger.service._openapi import (
    CONSISTENCY,
    ENTRY,
    ENTRY_PROOF,
    HEALTH,
    SUBMITTED,
    json_body,
    with_problem_schema,
)
from ailedger.service._sequencer import Sequencer
from ailedger.service.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    problem_for,
    problem_responses,
)
from ailedger.service.ratelimit import RateLimit, TokenBuckets, retry_after
from ailedger.service.tiles import (
    MAX_BUNDLED_ENTRY,
    TILE_HEIGHT,
    TILE_WIDTH,
    entry_bundle,
    parse_tile_path,
)

if TYPE_CHECKING:  # the chain client is imported only by a service that anchors
    from ailedger.service._anchoring import AnchorSchedule
    from ailedger.service.membership import ChainMembership

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TILE_CACHE_BYTES",
    "MAX_PAGE",
    "SUBMIT_PATH",
    "ServiceSettings",
    "TileCache",
    "create_app",
]

_log = logging.getLogger("ailedger.service")

#: Default request body limit (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1 << 20
#: Largest page of ``GET /v1/entries``.
MAX_PAGE = 100
#: JSON nesting allowed in a submission (a DSSE envelope nests 3 levels).
MAX_BODY_DEPTH = 8
IMMUTABLE = "public, max-age=31536000, immutable"
IMMUTABLE_HEADERS = {"Cache-Control": IMMUTABLE}
OCTETS = "application/octet-stream"
#: Tile bytes kept in memory by default (a full hash tile is 8 KiB: 8,192 of them).
DEFAULT_TILE_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class ServiceSettings:
    """The service's policy: who may submit (the ``allow`` list of addresses, or instead the
    on-chain ``membership`` check: never both), the request size limit, the rate limits (per
    signer for submissions, per client IP for reads; None: unlimited) on ``clock``, and how
    many bytes of served tiles to keep in memory (0: none)."""

    allow: frozenset[str]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    signer_limit: RateLimit | None = None
    read_limit: RateLimit | None = None
    clock: Callable[[], float] = time.monotonic
    tile_cache_bytes: int = DEFAULT_TILE_CACHE_BYTES
    membership: ChainMembership | None = None

    def __post_init__(self) -> None:
        if self.membership is not None and self.allow:
            raise ValueError("an allow-list and on-chain membership do not combine")

    def allowed(self, keyid: str) -> bool:
        return keyid.lower() in self.allow


class TileCache:
    """Served tiles and entry bundles by path (``/tile/...``), least recently used dropped
    beyond ``limit`` bytes. A tile path names immutable bytes (a partial tile's width is in
    its path), so an entry never goes stale; only canonical paths of tiles a published
    checkpoint covers are put here."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._tiles: OrderedDict[str, bytes] = OrderedDict()

    def get(self, path: str) -> bytes | None:
        data = self._tiles.get(path)
        if data is not None:
            self._tiles.move_to_end(path)
        return data

    def put(self, path: str, data: bytes) -> None:
        if len(data) > self.limit or path in self._tiles:
            return
        self._tiles[path] = data
        self.size += len(data)
        while self.size > self.limit:
            self.size -= len(self._tiles.popitem(last=False)[1])


class _CachedTiles:
    """ASGI middleware: a GET of a cached tile is answered before routing (no path parsing,
    no FastAPI dependency resolution: a third of a tile request's CPU); anything else, a
    cache miss included, goes on to the app, which fills the cache."""

    def __init__(self, app: ASGIApp, tiles: TileCache) -> None:
        self.app = app
        self.tiles = tiles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            data = self.tiles.get(scope["path"])
            if data is not None:
                headers = [*_TILE_HEADERS, (b"content-length", str(len(data)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return
        await self.app(scope, receive, send)


_TILE_HEADERS = [
    (b"content-type", b"application/octet-stream"),
    (b"cache-control", IMMUTABLE.encode()),
]

#: Where envelopes are submitted.
SUBMIT_PATH = "/v1/entries"

#: Checks and sequences one submission's body: ``(status, answer)`` or a raised refusal.
_Accept = Callable[[bytes], Awaitable[tuple[int, dict[str, Any]]]]


class _Submissions:
    """ASGI middleware: ``POST /v1/entries`` answered before FastAPI's middleware stack and
    routing (``accept`` does the route's checks; refusals become the same problem+json). In
    process, without sockets, the event loop's CPU per submission measured ~190 us through
    FastAPI and ~110 us here (of which ~75 us verify the signature)."""

    def __init__(self, app: ASGIApp, accept: _Accept, max_body_bytes: int) -> None:
        self.app = app
        self.accept = accept
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != SUBMIT_PATH:
            await self.app(scope, receive, send)
            return
        response: Response
        try:
            body = await _receive_body(scope, receive, self.max_body_bytes)
            status, doc = await self.accept(body)
            response = JSONResponse(doc, status_code=status)
        except ClientDisconnect:  # nobody to answer
            return
        except Problem as p:
            response = _problem_response(p)
        except AiledgerError as exc:
            response = _ailedger_response(exc)
        await response(scope, receive, send)


#: Query parameters that are integers (of any route): plain ASCII digits only.
_INTEGER_PARAMS = frozenset({"limit", "new", "old", "start"})
_DIGITS = re.compile(r"[0-9]{1,20}")


def _query_problem(query_string: bytes) -> Problem | None:
    """Why a query string is refused (422 ``invalid-parameter``, as FastAPI's own validation
    answers), or None: a parameter given twice (FastAPI would silently take the last one), or
    an integer parameter that is not plain ASCII digits (pydantic would read ``" 9"``, ``"+9"``,
    ``"9_0"`` and a no-break space before a digit as numbers)."""
    if not query_string:
        return None
    seen: set[str] = set()
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            detail = f"query parameter {name!r} is given more than once"
        elif name in _INTEGER_PARAMS and not _DIGITS.fullmatch(value):
            detail = f"query parameter {name!r} must be a decimal integer (ASCII digits)"
        else:
            seen.add(name)
            continue
        return Problem(422, "invalid-parameter", "Invalid parameter", detail)
    return None


class _StrictQuery:
    """ASGI middleware: the query string of every JSON API request (``/v1/...``, the explorer's
    included) checked by :func:`_query_problem` before routing. The explorer's page itself
    (``/?key=...&witness=...&witness=...``) reads its parameters in the browser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            problem = _query_problem(scope.get("query_string", b""))
            if problem is not None:
                await _problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _problem_response(p: Problem) -> JSONResponse:
    return JSONResponse(
        p.body(), status_code=p.status, media_type=PROBLEM_MEDIA_TYPE, headers=p.headers
    )


def _ailedger_response(exc: AiledgerError) -> JSONResponse:
    p = problem_for(exc)
    if p.status >= 500:
        _log.error("request failed: %s", exc, exc_info=exc)
    return _problem_response(p)


def create_app(
    reader: TransparencyLog,
    sequencer: Sequencer,
    log_key: AnyNoteKey,
    settings: ServiceSettings,
    *,
    on_started: Callable[[], None] | None = None,
    anchoring: AnchorSchedule | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The service over ``reader`` (used on the event loop's thread only) and ``sequencer``
    (started and stopped with the app, as is ``anchoring``, the on-chain anchoring schedule);
    ``on_started`` runs once the log is open and signed (the CLI prints its ready line there);
    ``routers`` add endpoints (``/rpc``: :mod:`.rpc`)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sequencer.start()
        if anchoring is not None:
            await anchoring.start()
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            if anchoring is not None:
                await anchoring.stop()
            await sequencer.stop()

    app = FastAPI(
        title="ailedger log service",
        summary="A transparency log of signed envelopes: submissions, C2SP tlog-tiles, proofs.",
        lifespan=lifespan,
    )
    per_signer = _buckets(settings.signer_limit, settings)
    # cached tiles are answered before routing, but inside the read limit (a middleware
    # added later wraps the ones added before it)
    tiles = TileCache(settings.tile_cache_bytes)
    app.add_middleware(_CachedTiles, tiles=tiles)
    app.add_middleware(_StrictQuery)  # inside the read limit, outside routing
    per_reader = _buckets(settings.read_limit, settings)

    if per_reader is not None:
        reads = per_reader

        @app.middleware("http")
        async def _limit_reads(request: Request, call_next: Any) -> Any:
            # reads, and the chain's JSON-RPC calls (each transaction mines a block)
            if request.method in ("GET", "HEAD") or request.url.path == "/rpc":
                client = request.client.host if request.client is not None else "unknown"
                wait = reads.take(client)
                if wait > 0:
                    return _problem_response(_too_many(wait, f"client {client}", reads))
            return await call_next(request)

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return _problem_response(exc)

    @app.exception_handler(AiledgerError)
    async def _ailedger(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AiledgerError)
        return _ailedger_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _problem_response(Problem(422, "invalid-parameter", "Invalid parameter", detail))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:  # RFC 9110: Allow lists every method of the path (Starlette
            # names only those of the first route matching it)
            methods = {
                m
                for route in app.router.routes
                if isinstance(route, BaseRoute) and route.matches(request.scope)[0] != Match.NONE
                for m in getattr(route, "methods", None) or ()
            }
            headers = {"Allow": ", ".join(sorted(methods))}
        p = Problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=headers)
        return _problem_response(p)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        _log.error("internal error: %s", exc, exc_info=exc)
        p = Problem(500, "internal", "Internal error", f"{type(exc).__name__} (a bug: see the log)")
        return _problem_response(p)

    parsed: list[tuple[SignedNote, Checkpoint]] = []  # the last note parsed, reused

    def checkpoint() -> tuple[SignedNote, Checkpoint]:
        note = sequencer.note
        if note is None:  # pragma: no cover - the sequencer signs one at start
            raise Problem(503, "no-checkpoint", "No checkpoint yet", "the log is starting")
        if not parsed or parsed[0][0] is not note:
            parsed[:] = [(note, Checkpoint.parse(note.text))]
        return parsed[0]

    # --- submissions -----------------------------------------------------------------------

    async def accept(body: bytes) -> tuple[int, dict[str, Any]]:
        """Check one submission (in the order of the module docstring), then sequence it:
        ``(201, answer)``, ``(200, answer)`` for a duplicate, or a raised refusal."""
        if sequencer.read_only:
            raise Problem(
                403, "read-only", "Read-only log", "this service serves the log read-only"
            )
        try:
            _json.check_bounds(
                body,
                what="request body",
                max_bytes=settings.max_body_bytes,
                max_depth=MAX_BODY_DEPTH,
            )
            envelope = Envelope.from_json(body)
        except (FormatError, ValueError, TypeError) as exc:
            raise Problem(400, "malformed", "Malformed envelope", str(exc)) from None
        if not envelope.signatures:
            raise Problem(400, "malformed", "Malformed envelope", "the envelope has no signatures")
        membership = settings.membership
        refused = [
            s.keyid
            for s in envelope.signatures
            if membership is None and not settings.allowed(s.keyid)
        ]
        if refused:
            raise Problem(
                403,
                "signer-not-allowed",
                "Signer not allowed",
                f"signer {refused[0]} is not allowed to submit to this log",
            )
        entry = reader.prepare(envelope)
        if membership is not None:  # verified signers only: no chain read for a forged keyid
            await membership.check(entry.signers)
        if per_signer is not None:  # after the signatures verified: whose request it is
            for signer in entry.signers:
                wait = per_signer.take(signer)
                if wait > 0:
                    raise _too_many(wait, f"signer {signer}", per_signer)
        if len(entry.envelope) > MAX_BUNDLED_ENTRY:
            raise Problem(
                413,
                "too-large",
                "Envelope too large",
                f"the canonical envelope is {len(entry.envelope)} bytes; a tlog-tiles entry "
                f"holds at most {MAX_BUNDLED_ENTRY}",
            )
        done = await sequencer.submit(entry)
        doc = {"index": done.index, "leaf_hash": done.leaf_hash.hex(), "duplicate": done.duplicate}
        return (200 if done.duplicate else 201), doc

    @app.post(
        SUBMIT_PATH,
        status_code=201,
        summary="Submit a DSSE envelope",
        response_description="Appended (durably) to the log",
        responses={
            200: {
                "description": "Already in the log (a duplicate): its index",
                "content": {"application/json": {"schema": SUBMITTED}},
            },
            **problem_responses(400, 403, 413, 422, 429, 503),
        },
        openapi_extra={
            **json_body(SUBMITTED, 201),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["payload", "payloadType", "signatures"],
                            "properties": {
                                "payload": {"type": "string"},
                                "payloadType": {"type": "string"},
                                "signatures": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "keyid": {"type": "string"},
                                            "sig": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        }
                    }
                },
            },
        },
    )
    async def submit(request: Request) -> JSONResponse:  # pragma: no cover - see below
        # _Submissions answers before routing: this route documents the endpoint (OpenAPI)
        # and would serve it the same way without the middleware
        body = await _receive_body(request.scope, request.receive, settings.max_body_bytes)
        status, doc = await accept(body)
        return JSONResponse(doc, status_code=status)

    # --- C2SP tlog-tiles -------------------------------------------------------------------

    @app.get(
        "/checkpoint",
        summary="The latest signed checkpoint (C2SP signed note)",
        response_class=PlainTextResponse,
        responses=problem_responses(429, 503),
    )
    async def get_checkpoint() -> Response:
        note, _ = checkpoint()
        return Response(
            note.format(),
            media_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get(
        "/tile/{path:path}",
        summary="A tlog-tiles hash tile or entry bundle",
        response_class=Response,
        responses={
            200: {
                "description": "The tile's bytes (immutable)",
                "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            },
            **problem_responses(400, 404, 409, 422, 429, 503),
        },
    )
    async def get_tile(path: str) -> Response:
        try:
            ref = parse_tile_path(path)
        except FormatError as exc:
            raise Problem(400, "malformed-tile-path", "Malformed tile path", str(exc)) from None
        _, cp = checkpoint()
        first = ref.index * TILE_WIDTH
        available = cp.size if ref.level is None else cp.size >> (TILE_HEIGHT * ref.level)
        if first + ref.width > available:
            what = "entry bundle" if ref.level is None else "tile"
            raise Problem(404, "not-found", "Not found", f"no {what} {path} yet")
        key = "/" + ref.path()
        data = tiles.get(key)  # published, so its bytes never change
        if data is None:
            if ref.level is None:
                entries = reader.envelopes(first, ref.width)
                if any(len(e) > MAX_BUNDLED_ENTRY for e in entries):
                    raise Problem(
                        409,
                        "entry-too-large",
                        "Entry too large for a bundle",
                        "an entry of this bundle is over 65,535 bytes; read it at /v1/entries/{i}",
                    )
                data = entry_bundle(entries)
            else:
                data = b"".join(reader.hashes(TILE_HEIGHT * ref.level, first, ref.width))
            tiles.put(key, data)
        return Response(data, media_type=OCTETS, headers=IMMUTABLE_HEADERS)

    @app.get(
        "/healthz",
        summary="Liveness: 200 while the service runs",
        responses=problem_responses(429),
        openapi_extra=json_body(HEALTH),
    )
    async def healthz() -> dict[str, Any]:
        note = sequencer.note  # None until a checkpoint is published
        return {"status": "ok", "size": None if note is None else Checkpoint.parse(note.text).size}

    # --- JSON conveniences -----------------------------------------------------------------

    @app.get(
        "/v1/entries/{index}",
        summary="An entry with its inclusion proof",
        responses=problem_responses(404, 422, 429, 503),
        openapi_extra=json_body(ENTRY_PROOF),
    )
    async def get_entry(index: int) -> dict[str, Any]:
        note, cp = checkpoint()
        if not 0 <= index < cp.size:  # reads are bounded by the published checkpoint
            raise Problem(
                404,
                "not-covered",
                "Not covered by a checkpoint",
                f"entry {index} is not covered by the latest checkpoint (size {cp.size})",
            )
        entry = reader.get(index)
        doc = entry.to_dict()
        doc["envelope"] = _json.loads(entry.envelope, what="stored envelope")
        doc["checkpoint"] = note.format()
        proof = reader.inclusion_proof(index, cp.size)
        doc["inclusion_proof"] = [h.hex() for h in proof.hashes]
        return doc

    @app.get(
        "/v1/entries",
        summary="Entries by subject digest, predicate type, signer",
        responses=problem_responses(400, 422, 429, 503),
        openapi_extra=json_body(
            {
                "type": "object",
                "required": ["entries"],
                "properties": {"entries": {"type": "array", "items": ENTRY}},
            }
        ),
    )
    async def query_entries(
        subject: str | None = None,
        predicate_type: str | None = None,
        signer: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
        start: Annotated[int | None, Query(ge=0)] = None,
    ) -> dict[str, Any]:
        _, cp = checkpoint()
        if start is not None:  # a range of the log, for clients that mirror it
            if subject is not None or predicate_type is not None or signer is not None:
                raise Problem(400, "invalid", "Invalid request", "start takes no filters")
            page = [reader.get(i) for i in range(start, min(cp.size, start + limit))]
            return {"entries": [_range_entry(e) for e in page]}
        found = reader.query(
            subject=subject, predicate_type=predicate_type, signer=signer, limit=limit
        )
        return {"entries": [e.to_dict() for e in found if e.index < cp.size]}

    @app.get(
        "/v1/proof/consistency",
        summary="RFC 9162 consistency proof",
        responses=problem_responses(400, 422, 429, 503),
        openapi_extra=json_body(CONSISTENCY),
    )
    async def consistency(
        old: Annotated[int, Query(ge=0)], new: Annotated[int | None, Query(ge=0)] = None
    ) -> dict[str, Any]:
        _, cp = checkpoint()
        n = cp.size if new is None else new
        if not old <= n <= cp.size:
            raise Problem(
                400, "invalid", "Invalid request", f"need old <= new <= {cp.size} (checkpoint)"
            )
        proof = reader.consistency_proof(old, n)
        return {
            "old_size": proof.old_size,
            "new_size": proof.new_size,
            "old_root": proof.old_root.hex(),
            "new_root": proof.new_root.hex(),
            "hashes": [h.hex() for h in proof.hashes],
        }

    @app.get(
        "/v1/receipts/{index}",
        summary="A receipt (verifiable offline)",
        responses=problem_responses(404, 422, 429, 503),
        openapi_extra=json_body({"type": "object"}),
    )
    async def receipt(index: int) -> dict[str, Any]:
        note, cp = checkpoint()
        if not 0 <= index < cp.size:
            raise Problem(
                404,
                "not-covered",
                "Not covered by a checkpoint",
                f"entry {index} is not covered by the latest checkpoint (size {cp.size})",
                headers={"Retry-After": "1"},
            )
        return reader.receipt(index, log_key, note).to_dict()

    for router in routers:
        app.include_router(router)
    with_problem_schema(app)
    # outermost of ours: a submission skips the read limit's BaseHTTPMiddleware too
    app.add_middleware(_Submissions, accept=accept, max_body_bytes=settings.max_body_bytes)
    return app


def _buckets(limit: RateLimit | None, settings: ServiceSettings) -> TokenBuckets | None:
    return None if limit is None else TokenBuckets(limit, clock=settings.clock)


def _too_many(wait: float, who: str, buckets: TokenBuckets) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"{who} is over the rate limit ({buckets.limit.describe()}); retry after "
        f"{retry_after(wait)} s",
        headers={"Retry-After": retry_after(wait)},
    )


def _range_entry(entry: Entry) -> dict[str, Any]:
    """One entry of a range page: what the query shows, the envelope and the append time."""
    doc = entry.to_dict()
    doc["envelope"] = _json.loads(entry.envelope, what="stored envelope")
    doc["time_ms"] = entry.time_ms
    return doc


async def _receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it is over ``limit`` (declared or
    streamed); ``ClientDisconnect`` if the client goes away first."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise Problem(400, "malformed", "Malformed request", "bad Content-Length")
            if int(value) > limit:
                raise Problem(
                    413, "too-large", "Request too large", f"the body is over {limit} bytes"
                )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Problem(413, "too-large", "Request too large", f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

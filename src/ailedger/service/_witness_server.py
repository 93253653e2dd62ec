"""The witness over HTTP: an ASGI app (Starlette) with ``POST /add-checkpoint``, under uvicorn.

A witness with a secp256k1 key also serves ``POST /v1/anchor-cosign``, ailedger's extension
for on-chain anchors (:mod:`ailedger.service._anchor_cosign`). ``GET /openapi.json`` describes
the endpoints it serves (:func:`witness_openapi`), so that generic HTTP tooling (schemathesis in
the tests) can check every answer against it.

Answers follow c2sp.org/tlog-witness: 200 with the cosignature lines (``text/plain``), 409 with
``text/x.tlog.size`` when the old size is not the witness's, and other refusals as RFC 9457
problem+json with the spec's status. A storage fault is 503; nothing else is a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ailedger import __version__
from ailedger.chain.anchoring import COSIGNATURE_MEDIA_TYPE
from ailedger.service._anchor_cosign import ANCHOR_COSIGN_PATH, anchor_cosignature, anchor_cosigner
from ailedger.service._server import listen, when_started
from ailedger.service.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_SCHEMA,
    Problem,
    problem_responses,
)
from ailedger.service.witness import (
    MAX_REQUEST_BYTES,
    TLOG_SIZE_MEDIA_TYPE,
    Refusal,
    Witness,
)

__all__ = ["create_witness_app", "serve_witness", "witness_openapi"]

_log = logging.getLogger("ailedger.witness")

_SLUGS = {
    400: ("malformed", "Malformed request"),
    403: ("log-signature-untrusted", "No trusted log signature"),
    404: ("unknown-log", "Unknown log"),
    409: ("conflict", "Conflict with the witnessed checkpoint"),
    413: ("too-large", "Request too large"),
    422: ("consistency-proof-invalid", "Consistency proof does not verify"),
    503: ("storage-fault", "The witness's storage is failing"),
}


def witness_openapi(*, anchor_cosign: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the witness's endpoints (``anchor_cosign``: with
    ``POST /v1/anchor-cosign``, served by a witness with a secp256k1 key)."""
    text = {"type": "string"}
    paths: dict[str, Any] = {
        "/add-checkpoint": {
            "post": {
                "summary": "Cosign a checkpoint (c2sp.org/tlog-witness)",
                "requestBody": {
                    "required": True,
                    "description": "old <size>, consistency proof lines, an empty line, the "
                    "signed checkpoint note",
                    "content": {"text/plain": {"schema": text}},
                },
                "responses": {
                    "200": {
                        "description": "The witness's cosignature lines",
                        "content": {"text/plain": {"schema": text}},
                    },
                    **problem_responses(400, 403, 404, 413, 422, 503),
                    "409": {
                        "description": "Conflict: old is not the witness's size (the body is "
                        "that size), or another root at the cosigned size (a fork)",
                        "content": {
                            TLOG_SIZE_MEDIA_TYPE: {"schema": {"type": "string"}},
                            PROBLEM_MEDIA_TYPE: {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            },
                        },
                    },
                },
            }
        }
    }
    if anchor_cosign:
        paths[ANCHOR_COSIGN_PATH] = {
            "post": {
                "summary": "EIP-712 cosignature of the checkpoint cosigned last, for an anchor",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["checkpoint", "chain_id", "contract"],
                                "additionalProperties": False,
                                "properties": {
                                    "checkpoint": text,
                                    "chain_id": {"type": "integer", "minimum": 1},
                                    "contract": {
                                        "type": "string",
                                        "pattern": "^0x[0-9a-fA-F]{40}$",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The cosignature (as `ailedger chain cosign` writes it)",
                        "content": {COSIGNATURE_MEDIA_TYPE: {"schema": {"type": "object"}}},
                    },
                    **problem_responses(400, 403, 404, 409, 413),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ailedger witness", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"Problem": PROBLEM_SCHEMA}},
    }


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    slug, title = _SLUGS.get(status, ("http-error", "HTTP error"))
    p = Problem(status, slug, title, detail, headers=headers)
    return JSONResponse(
        p.body(), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=p.headers
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise Refusal(400, "bad Content-Length")
        if int(declared) > MAX_REQUEST_BYTES:
            raise Refusal(413, f"request body over {MAX_REQUEST_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise Refusal(413, f"request body over {MAX_REQUEST_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_witness_app(
    witness: Witness, *, on_started: Callable[[], None] | None = None
) -> Starlette:
    """The witness's ASGI app; ``on_started`` runs once it accepts requests."""

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
            lines = await asyncio.to_thread(witness.add_checkpoint, body)
        except Refusal as r:
            if r.status == 409 and r.size is not None:
                # exactly this type (Starlette would add "; charset=utf-8" to a text/ media type)
                return Response(
                    f"{r.size}\n".encode(),
                    status_code=409,
                    headers={"Content-Type": TLOG_SIZE_MEDIA_TYPE},
                )
            return _problem(r.status, r.detail)
        except OSError as exc:
            _log.error("cannot persist the witness state: %s", exc)
            return _problem(503, "the witness cannot persist its state", {"Retry-After": "1"})
        return PlainTextResponse(lines, media_type="text/plain; charset=utf-8")

    async def anchor_cosign(request: Request) -> Response:
        try:
            body = await _read_body(request)
            cosignature = anchor_cosignature(witness, body)
        except Refusal as r:
            return _problem(r.status, r.detail)
        return JSONResponse(cosignature.to_dict(), media_type=COSIGNATURE_MEDIA_TYPE)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _problem(404, f"no such endpoint: {request.method} {request.url.path[:100]}")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        allow = getattr(exc, "headers", None) or {"Allow": "POST"}  # the route's methods
        return _problem(405, f"{request.method} is not allowed here", dict(allow))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if on_started is not None:
            on_started()
        yield

    document = witness_openapi(anchor_cosign=anchor_cosigner(witness) is not None)

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    routes = [
        Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    if ANCHOR_COSIGN_PATH in document["paths"]:
        routes.append(Route(ANCHOR_COSIGN_PATH, anchor_cosign, methods=["POST"]))
    return Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_allowed},
        lifespan=lifespan,
    )


def serve_witness(
    witness: Witness,
    *,
    host: str = "127.0.0.1",
    port: int = 8081,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``witness`` until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts."""
    sock, url = listen(host, port, 512)
    app = create_witness_app(witness, on_started=when_started(on_ready, url))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()

"""The embedded chain as an Ethereum JSON-RPC node: ``POST /rpc`` (and ``GET /v1/chain``).

When the served workspace runs the embedded chain, ``ailedger serve`` owns it for its whole
life (it holds the chain directory's lock) and answers JSON-RPC 2.0 at ``/rpc``, single calls
and batches, so that another party's ``ailedger`` (``--rpc http://HOST:PORT/rpc`` or
``[chain] backend = "rpc"``), web3.py, ethers or a wallet use it as an ordinary node. The
methods are :mod:`._eth`'s; one worker thread runs every call (py-evm has one writer), and
each mined block is committed with an fsync before its transaction hash is answered.

Malformed input gets a JSON-RPC error, never an HTTP 500: ``-32700`` (not JSON), ``-32600``
(not a request, an empty or too long batch), ``-32601`` (unknown method), ``-32602`` (bad
parameters); a body over :attr:`RpcSettings.max_body_bytes` is HTTP 413 with a ``-32600``
error. With an external chain configured, ``/rpc`` is a 404 problem that names the node,
and ``GET /v1/chain`` says which chain the workspace uses either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ailedger import _json
from ailedger.chain import EMBEDDED_CHAIN_ID
from ailedger.errors import FormatError
from ailedger.service._eth import EthMethods
from ailedger.service._openapi import ANSWER, CHAIN
from ailedger.service._wire import INVALID_PARAMS, INVALID_REQUEST, RpcError
from ailedger.service.problems import Problem, problem_responses

__all__ = [
    "DEFAULT_MAX_BATCH",
    "PARSE_ERROR",
    "EmbeddedRpc",
    "RpcSettings",
    "handle",
    "public_url",
    "rpc_router",
]

_log = logging.getLogger("ailedger.service.rpc")

PARSE_ERROR = -32700
INTERNAL_ERROR = -32603
#: Most calls in one batch.
DEFAULT_MAX_BATCH = 100
#: JSON nesting of a request (a batch of calls whose filter nests topic lists is 5).
_MAX_DEPTH = 10
_MAX_ID = 256
_MAX_METHOD = 128


@dataclass(frozen=True)
class RpcSettings:
    """The limits of ``/rpc``."""

    max_body_bytes: int = 1 << 20
    max_batch: int = DEFAULT_MAX_BATCH
    #: Widest block range of one ``eth_getLogs`` (our own client asks for 2,000 at most).
    max_log_blocks: int = 2000
    max_logs: int = 10_000


class EmbeddedRpc:
    """The embedded chain in ``directory``, opened (and locked) for the life of the service.

    Every call runs on one worker thread, in order: the chain has one writer. Open fails with
    :class:`~ailedger.errors.ChainError` if another process holds the chain for
    ``lock_timeout`` seconds.
    """

    def __init__(
        self, directory: Path, settings: RpcSettings = RpcSettings(), *, lock_timeout: float = 10.0
    ) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ailedger-rpc")
        try:
            self.methods = self._pool.submit(self._open, directory, lock_timeout).result()
        except BaseException:
            self._pool.shutdown()
            raise

    def _open(self, directory: Path, lock_timeout: float) -> EthMethods:
        from ailedger.chain import EmbeddedNode

        node = EmbeddedNode(directory, lock_timeout=lock_timeout, durable=True)
        return EthMethods(
            node, max_log_blocks=self.settings.max_log_blocks, max_logs=self.settings.max_logs
        )

    def run(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answer validated ``calls`` (on the worker thread: see :meth:`answer`)."""
        return [_answer(self.methods, c) for c in calls]

    async def answer(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answer validated ``calls`` on the worker thread, in order."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run, calls)

    def close(self) -> None:
        """Close the chain (on its thread) and release its lock."""
        try:
            self._pool.submit(self.methods.node.close).result()
        finally:
            self._pool.shutdown()


def _error(request_id: object, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_dict()}


def _answer(methods: EthMethods, call: dict[str, Any]) -> dict[str, Any]:
    try:
        result = methods.dispatch(call["method"], call["params"])
    except RpcError as exc:
        return _error(call["id"], exc)
    except Exception as exc:  # a bug or an unexpected refusal: an error answer, never a 500
        _log.error("rpc %s failed: %s", call["method"], exc, exc_info=exc)
        return _error(
            call["id"], RpcError(INTERNAL_ERROR, f"internal error ({type(exc).__name__})")
        )
    return {"jsonrpc": "2.0", "id": call["id"], "result": result}


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    return isinstance(value, str) and len(value) <= _MAX_ID


def _check_call(item: object) -> dict[str, Any]:
    """A call ``{"id", "method", "params", "notify"}`` or :class:`RpcError` (with ``.id``)."""
    if not isinstance(item, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object")
    request_id = item.get("id")
    if not _valid_id(request_id):
        raise RpcError(INVALID_REQUEST, "the id must be a string, an integer or null")
    failure: RpcError | None = None
    method = item.get("method")
    params = item.get("params", [])
    if item.get("jsonrpc") != "2.0":
        failure = RpcError(INVALID_REQUEST, 'the request must say "jsonrpc": "2.0"')
    elif not isinstance(method, str) or not 0 < len(method) <= _MAX_METHOD:
        failure = RpcError(INVALID_REQUEST, "the method must be a non-empty string")
    elif set(item) - {"jsonrpc", "id", "method", "params"}:
        failure = RpcError(INVALID_REQUEST, "unknown request member")
    elif not isinstance(params, list):
        failure = RpcError(INVALID_PARAMS, "params must be an array (by position)")
    if failure is not None:
        raise _WithId(failure, request_id)
    return {"id": request_id, "method": method, "params": params, "notify": "id" not in item}


class _WithId(Exception):
    def __init__(self, error: RpcError, request_id: object) -> None:
        super().__init__(error.message)
        self.error = error
        self.request_id = request_id


async def handle(body: bytes, rpc: EmbeddedRpc) -> Any:
    """The JSON answer to a request ``body`` (``None``: only notifications, no answer)."""
    try:
        doc = _json.loads(body, what="request", max_bytes=len(body) + 1, max_depth=_MAX_DEPTH)
    except (FormatError, ValueError) as exc:
        return _error(None, RpcError(PARSE_ERROR, f"parse error: {str(exc)[:120]}"))
    batch = isinstance(doc, list)
    items = doc if batch else [doc]
    if batch and not items:
        return _error(None, RpcError(INVALID_REQUEST, "empty batch"))
    if len(items) > rpc.settings.max_batch:
        message = f"a batch of {len(items)} calls; at most {rpc.settings.max_batch}"
        return _error(None, RpcError(INVALID_REQUEST, message))
    slots: list[dict[str, Any] | None] = []
    calls: list[dict[str, Any]] = []
    for item in items:
        try:
            call = _check_call(item)
        except _WithId as exc:
            slots.append(_error(exc.request_id, exc.error))
            continue
        except RpcError as exc:
            slots.append(_error(None, exc))
            continue
        slots.append(None)
        calls.append(call)
    answers = iter(await rpc.answer(calls)) if calls else iter(())
    notify = iter([c["notify"] for c in calls])
    out: list[dict[str, Any]] = []
    for slot in slots:
        if slot is not None:
            out.append(slot)
            continue
        answer = next(answers)
        if not next(notify):
            out.append(answer)
    if not out:
        return None
    return out if batch else out[0]


def public_url(url: str) -> str:
    """``url`` without user and password (a node URL the service may show its clients)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def _read(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["jsonrpc", "method"],
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["string", "integer", "null"]},
        "method": {"type": "string"},
        "params": {"type": "array"},
    },
}


def rpc_router(
    rpc: EmbeddedRpc | None,
    *,
    external_url: str | None = None,
    chain_id: int | None = None,
    embedded: bool = False,
) -> APIRouter:
    """``POST /rpc`` over ``rpc`` and ``GET /v1/chain``, which chain the workspace uses.

    Without ``rpc``, ``/rpc`` is a 404 problem naming ``external_url`` (an external chain),
    or saying the embedded chain is not served (``embedded``: ``--no-chain-rpc``)."""
    router = APIRouter()
    shown = None if external_url is None else public_url(external_url)

    @router.get(
        "/v1/chain",
        summary="The chain this log's workspace uses",
        responses=problem_responses(429),
        openapi_extra={"responses": {"200": {"content": {"application/json": {"schema": CHAIN}}}}},
    )
    async def chain_info() -> dict[str, Any]:
        if rpc is not None:
            return {"backend": "embedded", "chain_id": EMBEDDED_CHAIN_ID, "rpc": "/rpc"}
        if embedded:
            return {"backend": "embedded", "chain_id": EMBEDDED_CHAIN_ID, "rpc": None}
        return {"backend": "rpc", "chain_id": chain_id, "rpc": shown}

    @router.post(
        "/rpc",
        summary="Ethereum JSON-RPC 2.0 over the embedded chain (single calls and batches)",
        response_description="The JSON-RPC answer (errors of a call are in its answer)",
        responses={
            204: {"description": "Only notifications: no answer"},
            413: {
                "description": "Request body too large (a JSON-RPC error object)",
                "content": {"application/json": {"schema": ANSWER}},
            },
            **problem_responses(404, 429),
        },
        openapi_extra={
            "responses": {
                "200": {
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [ANSWER, {"type": "array", "items": ANSWER}]}
                        }
                    }
                }
            },
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                _REQUEST_SCHEMA,
                                {"type": "array", "items": _REQUEST_SCHEMA, "minItems": 1},
                            ]
                        }
                    }
                },
            },
        },
    )
    async def json_rpc(request: Request) -> Response:
        if rpc is None:
            if embedded:
                where = "the service runs with --no-chain-rpc"
            else:
                where = f"use the node at {shown}" if shown else "no chain node is configured"
            raise Problem(
                404,
                "no-embedded-chain",
                "No JSON-RPC here",
                f"this service does not serve its workspace's chain: {where}",
            )
        body = await _read(request, rpc.settings.max_body_bytes)
        if body is None:
            error = RpcError(
                INVALID_REQUEST, f"the request is over {rpc.settings.max_body_bytes} bytes"
            )
            return JSONResponse(_error(None, error), status_code=413)
        answer = await handle(body, rpc)
        if answer is None:
            return Response(status_code=204)
        return Response(
            json.dumps(answer, separators=(",", ":")).encode(), media_type="application/json"
        )

    return router

"""The provider's HTTP endpoint (``ailedger market serve``): inference with a receipt per call.

::

    GET  /v1/info                              provider, domain, model digest, price
    POST /v1/infer                             {"job", "consumer", "input", "salt"?,
                                                "nonce", "expires", "signature"}
                                               -> {"output", "receipt"}
    GET  /v1/receipts/{job}/{counter}          the signed receipt
    GET  /v1/receipts/{job}/{counter}/request  the consumer's signed request it answered
    GET  /v1/receipts/{job}/{counter}/proof    {"receipt", "epoch_root", "proof"} once the
                                               receipt's epoch is closed (404 before)
    GET  /v1/epochs/{epoch}                    the signed root of a closed epoch

Every call carries the job's consumer's signature (:mod:`.request`: EIP-712 over the job,
this provider, the model, the request digest, a nonce and an expiry). ``jobs`` (a
:data:`JobDirectory`) names each job's consumer: a table the provider was given
(:func:`~ailedger.markets.inference.jobs.job_table`) or the InferenceMarket
(:func:`ailedger.markets.inference.onchain.onchain_jobs`); a job it does not name is refused.
A call is charged (its counter consumed, its receipt signed and committed with the signed
request) only after the request parsed, its signature held and the model answered: a
malformed request or an input nested deeper than 64 levels (400), an unsigned request (401),
a request signed by another key than the job's consumer, or for another job, provider, model
or input, or expired (403), an unknown job (404), a job of another consumer, past its
deadline or with all its calls used, or a nonce already charged for the job (409), a body
declared as anything but JSON (415), an input the model refuses or fails on, or an output
with no JSON form (422: :func:`~.models.answer`, before the receipt is signed) or a body
over 1 MiB (413, read no further) leave the job's counter where it was. Every error, an unknown path
(404), a wrong method (405) and a fault of the server (500, a bug) included, is
RFC 9457 ``application/problem+json`` (a refused signature also names its ``code``).
Requests run one at a time on the event loop (the model call, the signatures and the SQLite
insert are short), so counters are handed out in order with no lock. A background task
closes epochs by age.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ailedger.errors import (
    AiledgerError,
    ChainError,
    ConflictError,
    FormatError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
    StorageError,
    VerificationFailed,
)
from ailedger.identity.keys import checksum_address
from ailedger.markets.inference._store import ReceiptBook
from ailedger.markets.inference.jobs import JobDirectory, JobEntry, job_table
from ailedger.markets.inference.models import Predictor, answer
from ailedger.markets.inference.receipt import request_digest, response_digest
from ailedger.markets.inference.request import (
    InferenceRequest,
    SignedRequest,
    request_domain,
    verify_request,
)

__all__ = [
    "MAX_BODY",
    "MAX_DEPTH",
    "PROBLEM_MEDIA_TYPE",
    "JobDirectory",
    "JobEntry",
    "create_provider_app",
    "job_table",
    "listen",
    "run_provider",
]

MAX_BODY = 1 << 20
#: Levels of nesting an input may have (rows of rows are 2; JSON parsers and the canonical
#: form recurse, and Python's recursion limit is about 1,000).
MAX_DEPTH = 64
PROBLEM_MEDIA_TYPE = "application/problem+json"
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_JSON_TYPE = re.compile(r"application/json", re.IGNORECASE)
_FIELDS = frozenset({"job", "consumer", "input", "salt", "nonce", "expires", "signature"})


#: Error class -> (status, slug); the first class an error is an instance of wins.
_STATUS: tuple[tuple[type[AiledgerError], int, str], ...] = (
    (FormatError, 400, "malformed"),
    (InvalidInput, 422, "input-refused"),
    (NotFound, 404, "not-found"),
    (ConflictError, 409, "conflict"),
    (StorageError, 503, "storage-fault"),
    (ChainError, 503, "chain-unavailable"),
)


#: Verification codes with their own status (the rest of SignatureInvalid is 403).
_CODE_STATUS = {"request-unsigned": 401, "request-nonce-reused": 409}
_AUTHENTICATE = {"WWW-Authenticate": 'EIP712 realm="ailedger InferenceRequest"'}


def _problem(
    status: int, slug: str, detail: str, code: str | None = None, headers: Any = None
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://ailedger.dev/problems/{slug}",
        "title": slug.replace("-", " "),
        "status": status,
        "detail": detail,
    }
    if code is not None:
        body["code"] = code
    return Response(orjson.dumps(body), status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _ok(doc: Any) -> Response:
    return Response(orjson.dumps(doc), 200, media_type="application/json")


def _job(text: str) -> bytes:
    if not _HEX32.fullmatch(text):
        raise FormatError("a job id is 0x and 64 hex digits")
    return bytes.fromhex(text[2:])


#: EIP-55 forms of the consumers seen (a keccak each; every call names its consumer).
_checksum = functools.lru_cache(maxsize=4096)(checksum_address)
_INT63 = (1 << 63) - 1  # SQLite's integers: no counter or epoch gets near it


def _counter(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > _INT63:
        raise FormatError(f"a counter or epoch is a decimal integer in 0..{_INT63}")
    return int(text)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` levels (no recursion)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, list | dict)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, list | dict) for item in level)


def _parse_call(body: bytes) -> tuple[bytes, str, Any, bytes, SignedRequest]:
    try:  # orjson: strict RFC 8259 (no NaN), bounded nesting, raises instead of crashing
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"the request is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise FormatError("the request must be a JSON object")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise FormatError(
            f"unknown field {unknown[0]!r} (fields: job, consumer, input, salt, nonce, expires, "
            "signature)"
        )
    for name in ("job", "consumer", "input"):
        if name not in doc:
            raise FormatError(f"the request has no {name!r}")
    job, consumer, salt = doc["job"], doc["consumer"], doc.get("salt")
    if _too_deep(doc["input"], MAX_DEPTH):
        raise FormatError(f"the input is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(job, str) or not _HEX32.fullmatch(job):
        raise FormatError("job must be 0x and 64 hex digits")
    if not isinstance(consumer, str) or not _ADDRESS.fullmatch(consumer):
        raise FormatError("consumer must be an Ethereum address (0x and 40 hex digits)")
    try:
        consumer = _checksum(consumer)
    except InvalidInput as exc:
        raise FormatError(exc.message) from None
    if salt is not None and (not isinstance(salt, str) or not _HEX32.fullmatch(salt)):
        raise FormatError("salt must be 0x and 64 hex digits")
    signed = SignedRequest.from_dict(doc)  # request-unsigned (401) when a field is missing
    return (
        bytes.fromhex(job[2:]),
        consumer,
        doc["input"],
        b"" if salt is None else bytes.fromhex(salt[2:]),
        signed,
    )


def create_provider_app(
    book: ReceiptBook,
    predictor: Predictor,
    *,
    model: str,
    jobs: JobDirectory,
    on_started: Callable[[], None] | None = None,
    tick_seconds: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The provider's ASGI app over ``book`` (receipts) and ``predictor`` (the loaded model);
    ``model`` names the served version (``NAME@VERSION``); ``jobs`` names each served job's
    consumer (:func:`job_table`, or the market's:
    :func:`ailedger.markets.inference.onchain.onchain_jobs`); ``clock`` gives unix time (for
    request expiry and job deadlines)."""
    signing_domain = request_domain(book.domain.chain_id, book.domain.verifying_contract)
    info = {
        "provider": book.signer.address,
        "domain": book.domain.to_dict(),
        "model": model,
        "model_digest": "sha256:" + book.model_digest.hex(),
        "plugin": predictor.kind,
        "price": str(book.price),
        "epoch_size": book.epoch_size,
        "epoch_seconds": book.epoch_ms / 1000,
        "request_domain": signing_domain.to_dict(),
    }

    async def get_info(_: Request) -> Response:
        return _ok(info)

    async def infer(request: Request) -> Response:
        declared = request.headers.get("content-type")
        if declared is not None and not _JSON_TYPE.fullmatch(declared.split(";")[0].strip()):
            return _problem(415, "unsupported-media-type", "the body must be application/json")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _problem(413, "too-large", f"the body is over {MAX_BODY} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():  # a chunked body is read no further than the limit
            size += len(chunk)
            if size > MAX_BODY:
                return _problem(413, "too-large", f"the body is over {MAX_BODY} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        job, consumer, value, salt, signed_request = _parse_call(body)
        # every check before the model runs: a refusal costs nothing and charges nothing.
        # The signature is checked against the consumer the request names first, so that an
        # unsigned or forged request never makes the directory read the chain.
        now = int(clock())
        req = request_digest(value, salt)
        asked = InferenceRequest(
            job,
            book.signer.address,
            book.model_digest,
            req,
            signed_request.nonce,
            signed_request.expires,
        )
        verify_request(asked, signed_request, domain=signing_domain, consumer=consumer, now=now)
        entry = jobs(job)
        if entry.consumer != consumer:
            raise ConflictError(f"job 0x{job.hex()} belongs to another consumer ({entry.consumer})")
        if entry.deadline is not None and now > entry.deadline:
            raise ConflictError(f"job 0x{job.hex()} is past its deadline ({entry.deadline})")
        if entry.max_calls is not None and book.calls(job) >= entry.max_calls:
            raise ConflictError(f"job 0x{job.hex()} has used all its {entry.max_calls} calls")
        book.check_job(job, consumer)
        if book.nonce_used(job, signed_request.nonce):
            raise SignatureInvalid(
                f"nonce 0x{signed_request.nonce.hex()} was already charged for job 0x{job.hex()}",
                code="request-nonce-reused",
            )
        output, text = answer(predictor, value)
        signed = book.issue(
            job, consumer, req, response_digest(output), signed_request, (value, salt)
        )
        # the output's JSON was made before the receipt was signed: nothing fails after it
        receipt = orjson.dumps(signed.to_dict())
        return Response(
            b'{"output":' + text + b',"receipt":' + receipt + b"}",
            200,
            media_type="application/json",
        )

    async def get_receipt(request: Request) -> Response:
        job = _job(request.path_params["job"])
        counter = _counter(request.path_params["counter"])
        return _ok(book.receipt(job, counter).to_dict())

    async def get_request(request: Request) -> Response:
        job = _job(request.path_params["job"])
        counter = _counter(request.path_params["counter"])
        return _ok(book.request(job, counter).to_dict())

    async def get_proof(request: Request) -> Response:
        job = _job(request.path_params["job"])
        counter = _counter(request.path_params["counter"])
        signed, closed, proof = book.proof(job, counter)
        return _ok(
            {
                "receipt": signed.to_dict(),
                "epoch_root": closed.to_dict(),
                "proof": proof.to_dict(),
            }
        )

    async def get_epoch(request: Request) -> Response:
        return _ok(book.closed(_counter(request.path_params["epoch"])).to_dict())

    async def on_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AiledgerError)
        if isinstance(exc, VerificationFailed) and exc.code in _CODE_STATUS:
            status = _CODE_STATUS[exc.code]
            headers = _AUTHENTICATE if status == 401 else None
            return _problem(status, "request-refused", exc.message, exc.code, headers)
        if isinstance(exc, VerificationFailed):
            return _problem(403, "request-refused", exc.message, exc.code)
        for cls, status, slug in _STATUS:
            if isinstance(exc, cls):
                return _problem(status, slug, exc.message)
        raise exc

    async def on_http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "refused")
        return _problem(exc.status_code, slug, str(exc.detail))

    async def on_bug(_: Request, exc: Exception) -> Response:
        # the traceback goes to the server's log (Starlette re-raises); the caller learns
        # nothing of the internals, and nothing was charged (a receipt is the last step)
        return _problem(500, "internal-error", "the provider failed on this request (a bug)")

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_seconds)
            # a storage fault here recurs on the next call, which reports it to the client
            with contextlib.suppress(AiledgerError):
                book.tick()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(ticker())
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            task.cancel()

    return Starlette(
        routes=[
            Route("/v1/info", get_info, methods=["GET"]),
            Route("/v1/infer", infer, methods=["POST"]),
            Route("/v1/receipts/{job}/{counter}", get_receipt, methods=["GET"]),
            Route("/v1/receipts/{job}/{counter}/request", get_request, methods=["GET"]),
            Route("/v1/receipts/{job}/{counter}/proof", get_proof, methods=["GET"]),
            Route("/v1/epochs/{epoch}", get_epoch, methods=["GET"]),
        ],
        exception_handlers={
            AiledgerError: on_error,
            HTTPException: on_http_error,
            Exception: on_bug,
        },
        lifespan=lifespan,
    )


def listen(host: str, port: int, backlog: int = 2048) -> tuple[socket.socket, str]:
    """A listening TCP socket on ``host:port`` (0: any free port) and its ``http://`` URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OverflowError:
        sock.close()
        raise InvalidInput(f"port {port} is not in 0..65535") from None
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConflictError(
                f"{host}:{port} is in use", hint="stop what listens there, or give another --port"
            ) from None
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if family == socket.AF_INET6 else f"http://{host}:{bound}"
    return sock, url


def run_provider(
    book: ReceiptBook,
    predictor: Predictor,
    *,
    model: str,
    host: str = "127.0.0.1",
    port: int = 8090,
    jobs: JobDirectory,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts connections."""
    sock, url = listen(host, port)
    try:
        app = create_provider_app(
            book,
            predictor,
            model=model,
            jobs=jobs,
            on_started=None if on_ready is None else (lambda: on_ready(url)),
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()

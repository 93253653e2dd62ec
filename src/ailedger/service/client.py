"""A small client of the log service: submit envelopes, fetch receipts, checkpoints and tiles.

It trusts nothing it fetches: a receipt is checked by
:func:`ailedger.log.receipt.verify_receipt` against a log key the caller trusts, tiles against a
checkpoint it verified. Problem responses become :class:`~ailedger.errors.AiledgerError` with
the server's detail: 404 :class:`NotFound`, 409 :class:`ConflictError`, 422 (a submission
whose signature does not verify) :class:`SignatureInvalid`, any other 4xx
:class:`InvalidInput`; an unreachable service or a 5xx is :class:`ServiceUnavailable` (a
:class:`NotFound`, exit 4).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, NoReturn

from ailedger import _json
from ailedger.errors import (
    AiledgerError,
    ConflictError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
)

__all__ = ["DEFAULT_TIMEOUT", "LogClient", "ServiceUnavailable"]

DEFAULT_TIMEOUT = 30.0
#: The largest response the client reads (a receipt or an entry is far smaller).
MAX_RESPONSE_BYTES = 64 << 20


class ServiceUnavailable(NotFound):
    """The log service cannot be reached or failed (5xx)."""


class LogClient:
    """A client of one log service at ``url`` (``http://host:port``), standard library only."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"log URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data: bytes = response.read(MAX_RESPONSE_BYTES)
                return data
        except urllib.error.HTTPError as exc:
            _raise_problem(exc.code, exc.read(1 << 16), exc.reason, self.url)
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceUnavailable(f"log service {self.url} is unreachable: {exc}") from None

    def submit(self, envelope: bytes) -> dict[str, Any]:
        """POST one envelope: ``{"index", "leaf_hash", "duplicate"}`` once it is durable."""
        return _object(self._request("/v1/entries", envelope))

    def receipt(self, index: int) -> dict[str, Any]:
        """The receipt of entry ``index`` (NotFound until a checkpoint covers it)."""
        return _object(self._request(f"/v1/receipts/{index}"))

    def entry(self, index: int) -> dict[str, Any]:
        return _object(self._request(f"/v1/entries/{index}"))

    def checkpoint(self) -> str:
        """The latest signed checkpoint note (verify it before use)."""
        return self._request("/checkpoint").decode("utf-8", "replace")

    def tile(self, path: str) -> bytes:
        """A tile or entry bundle by its tlog-tiles path (``tile/0/000``)."""
        return self._request("/" + path.lstrip("/"))


def _object(data: bytes) -> dict[str, Any]:
    doc = _json.loads(data, what="log service response")
    if not isinstance(doc, dict):
        raise InvalidInput("the log service answered with something other than a JSON object")
    return doc


def _raise_problem(status: int, body: bytes, reason: object, url: str) -> NoReturn:
    detail = str(reason)
    try:
        doc = _json.loads(body, what="problem", max_bytes=1 << 16)
        if isinstance(doc, dict) and isinstance(doc.get("detail"), str):
            detail = doc["detail"]
    except AiledgerError:
        pass
    message = f"log service {url}: {detail} (HTTP {status})"
    if status >= 500:
        raise ServiceUnavailable(message)
    if status == 404:
        raise NotFound(message)
    if status == 409:
        raise ConflictError(message)
    if status == 422:
        raise SignatureInvalid(message, code="signature-invalid")
    raise InvalidInput(message)

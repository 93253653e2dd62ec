"""A small client of the log service: submit envelopes, fetch receipts, checkpoints, proofs.

It trusts nothing it fetches: :mod:`.remote` checks checkpoints against a log key the caller
trusts and every entry and proof against them. Problem responses become
:class:`~ailedger.errors.AiledgerError` with the server's detail: 404 :class:`NotFound`, 409
:class:`ConflictError`, a 422 whose problem type is ``signature-invalid`` (a submission whose
signature does not verify) :class:`SignatureInvalid`, any other 4xx (a request parameter
refused with 422, a signer refused with 403) :class:`InvalidInput`: by the problem's type, not
its status alone. A service that cannot be used is :class:`ServiceUnavailable` (a
:class:`~ailedger.errors.ServiceError`, exit 13): unreachable, timed out, 5xx, 429 (with the
wait it asks for), or an answer that is not the protocol's (a body over
:data:`MAX_RESPONSE_BYTES`, malformed JSON). Every failure is one line.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, NoReturn

from ailedger import _json
from ailedger.errors import (
    AiledgerError,
    ConflictError,
    InvalidInput,
    NotFound,
    ServiceError,
    SignatureInvalid,
)
from ailedger.service.problems import PROBLEM_TYPE_BASE

__all__ = ["DEFAULT_TIMEOUT", "MAX_RESPONSE_BYTES", "LogClient", "ServiceUnavailable"]

DEFAULT_TIMEOUT = 30.0
#: The largest response the client reads (a page of entries or a receipt is far smaller).
MAX_RESPONSE_BYTES = 16 << 20
#: The largest error body read for its problem detail.
MAX_PROBLEM_BYTES = 1 << 16


class ServiceUnavailable(ServiceError):
    """The log service cannot be reached, failed (5xx), is rate limiting (429) or answered
    something malformed."""


class LogClient:
    """A client of one log service at ``url`` (``http://host:port``), standard library only."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"log URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes

    def _request(self, path: str, body: bytes | None = None) -> bytes:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data: bytes = response.read(self.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            try:
                error_body = exc.read(MAX_PROBLEM_BYTES)
            except (OSError, http.client.HTTPException):
                error_body = b""
            _raise_problem(exc.code, error_body, exc.reason, exc.headers, self.url)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            what = "timed out" if isinstance(reason, TimeoutError) else f"is unreachable: {reason}"
            raise ServiceUnavailable(
                f"log service {self.url} {what}",
                hint="check the URL and that `ailedger serve` runs there",
            ) from None
        if len(data) > self.max_response_bytes:
            raise ServiceUnavailable(
                f"log service {self.url} answered {path} with more than "
                f"{self.max_response_bytes} bytes"
            )
        return data

    def _json(self, path: str, body: bytes | None = None) -> dict[str, Any]:
        data = self._request(path, body)
        try:
            doc = _json.loads(data, what="log service response", max_bytes=len(data) + 1)
        except AiledgerError:
            doc = None
        if not isinstance(doc, dict):
            raise ServiceUnavailable(f"log service {self.url} answered {path} with malformed JSON")
        return doc

    def submit(self, envelope: bytes) -> dict[str, Any]:
        """POST one envelope: ``{"index", "leaf_hash", "duplicate"}`` once it is durable."""
        return self._json("/v1/entries", envelope)

    def receipt(self, index: int) -> dict[str, Any]:
        """The receipt of entry ``index`` (NotFound until a checkpoint covers it)."""
        return self._json(f"/v1/receipts/{index}")

    def entry(self, index: int) -> dict[str, Any]:
        return self._json(f"/v1/entries/{index}")

    def entries(self, start: int, limit: int) -> list[dict[str, Any]]:
        """Entries ``start ..`` (at most ``limit``, at most the published checkpoint's), each
        with its envelope and append time."""
        doc = self._json(f"/v1/entries?start={start}&limit={limit}")
        page = doc.get("entries")
        if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
            raise ServiceUnavailable(f"log service {self.url} answered a malformed page")
        return page

    def query(
        self,
        *,
        subject: str | None = None,
        predicate_type: str | None = None,
        signer: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Entries matching every filter given (``GET /v1/entries?subject=...``), oldest
        first, as the service indexed them: unverified (check them against a mirror).
        ``limit`` is 1..100 (the service's page)."""
        if not 1 <= limit <= 100:
            raise InvalidInput(f"a query's limit must be 1..100, not {limit}")
        params = {"subject": subject, "predicate_type": predicate_type, "signer": signer}
        query = urllib.parse.urlencode(
            {**{k: v for k, v in params.items() if v is not None}, "limit": limit}
        )
        doc = self._json(f"/v1/entries?{query}")
        page = doc.get("entries")
        if not isinstance(page, list) or not all(isinstance(e, dict) for e in page):
            raise ServiceUnavailable(f"log service {self.url} answered a malformed query")
        return page

    def consistency(self, old: int, new: int) -> dict[str, Any]:
        """The RFC 9162 consistency proof between tree sizes ``old`` and ``new``."""
        return self._json(f"/v1/proof/consistency?old={old}&new={new}")

    def checkpoint(self) -> str:
        """The latest signed checkpoint note (verify it before use)."""
        data = self._request("/checkpoint")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceUnavailable(
                f"log service {self.url} answered a checkpoint that is not UTF-8"
            ) from None

    def tile(self, path: str) -> bytes:
        """A tile or entry bundle by its tlog-tiles path (``tile/0/000``)."""
        return self._request("/" + path.lstrip("/"))


def _raise_problem(status: int, body: bytes, reason: object, headers: Any, url: str) -> NoReturn:
    detail = str(reason)
    slug = None
    try:
        doc = _json.loads(body, what="problem", max_bytes=MAX_PROBLEM_BYTES)
        if isinstance(doc, dict) and isinstance(doc.get("detail"), str):
            detail = doc["detail"]
        if isinstance(doc, dict) and isinstance(doc.get("type"), str):
            kind = doc["type"]
            slug = kind[len(PROBLEM_TYPE_BASE) :] if kind.startswith(PROBLEM_TYPE_BASE) else None
    except AiledgerError:
        pass  # not problem+json (a proxy's page, say): the status line says enough
    detail = " ".join(detail.split())[:300]  # one line, whatever the server sent
    message = f"log service {url}: {detail} (HTTP {status})"
    if status == 429:
        wait = headers.get("Retry-After") if headers is not None else None
        raise ServiceUnavailable(
            message, hint=f"retry in {wait} s" if wait else "retry later, more slowly"
        )
    if status >= 500:
        raise ServiceUnavailable(message)
    if status == 404:
        raise NotFound(message)
    if status == 409:
        raise ConflictError(message)
    if slug == "signature-invalid" and status == 422:
        raise SignatureInvalid(message, code="signature-invalid")
    raise InvalidInput(message)

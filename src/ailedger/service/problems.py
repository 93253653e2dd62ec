"""RFC 9457 problem details: the one place where errors become HTTP status codes.

Every error response of the service is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``. A request the service refuses on purpose raises :class:`Problem`
(403, 413, ...) or an :class:`~ailedger.errors.AiledgerError`, mapped by :data:`STATUS`; a 500
means a bug (logged with its traceback).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ailedger.errors import (
    AiledgerError,
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInput,
    KeyAccessError,
    NotFound,
    SignatureInvalid,
    StorageError,
    VerificationFailed,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_SCHEMA",
    "PROBLEM_TYPE_BASE",
    "STATUS",
    "Problem",
    "problem_for",
    "problem_responses",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: ``type`` URIs are this base plus a slug (``signer-not-allowed``, ``too-large``, ...).
PROBLEM_TYPE_BASE = "https://ailedger.dev/problems/"

#: JSON Schema of a problem body (OpenAPI: the component ``Problem``).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

#: Error class -> (status, slug, title); the first class an error is an instance of wins.
STATUS: tuple[tuple[type[AiledgerError], int, str, str], ...] = (
    (SignatureInvalid, 422, "signature-invalid", "Signature does not verify"),
    (VerificationFailed, 422, "verification-failed", "Verification failed"),
    (FormatError, 400, "malformed", "Malformed request"),
    (InvalidInput, 400, "invalid", "Invalid request"),
    (NotFound, 404, "not-found", "Not found"),
    (ConflictError, 409, "conflict", "Conflict with recorded state"),
    (StorageError, 503, "storage-fault", "The log's storage is failing"),
    (IntegrityError, 500, "integrity", "Stored state is corrupt"),
    (KeyAccessError, 500, "key-access", "The log key cannot be used"),
)


class Problem(Exception):
    """A refusal with its own status (403 signer not allowed, 413 too large, ...)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


def problem_for(exc: AiledgerError) -> Problem:
    """The problem an ailedger error is (500 for the classes that mean a fault of ours)."""
    for cls, status, slug, title in STATUS:
        if isinstance(exc, cls):
            detail = exc.message if exc.code is None else f"[{exc.code}] {exc.message}"
            return Problem(status, slug, title, detail)
    return Problem(500, "internal", "Internal error", exc.message)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses (FastAPI's ``responses=``) for error ``statuses``: problem+json bodies,
    referring to the ``Problem`` component (:data:`PROBLEM_SCHEMA`)."""
    return {
        status: {
            "description": HTTPStatus(status).phrase + " (RFC 9457 problem details)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}},
        }
        for status in statuses
    }

"""The OpenAPI document of ``ailedger serve`` (``GET /openapi.json``): response schemas.

Every error is problem+json (:func:`~ailedger.service.problems.problem_responses`, the
``Problem`` component that :func:`with_problem_schema` adds); each route lists the statuses it
answers with, 429 (rate limits) and 503 (no checkpoint yet, busy, storage fault) included, and
a route with parameters lists 422 itself, so that FastAPI does not declare its own validation
body. The success bodies' schemas are here; tests/service/test_openapi_fuzz.py holds the live
service to all of it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from ailedger.service.problems import PROBLEM_SCHEMA

__all__ = [
    "ANSWER",
    "CHAIN",
    "CONSISTENCY",
    "ENTRY",
    "ENTRY_PROOF",
    "HEALTH",
    "HEX32",
    "SUBMITTED",
    "json_body",
    "with_problem_schema",
]

HEX32: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
SUBMITTED: dict[str, Any] = {
    "type": "object",
    "required": ["index", "leaf_hash", "duplicate"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "leaf_hash": HEX32,
        "duplicate": {"type": "boolean"},
    },
}
ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["index", "leaf_hash", "time", "payload_type", "signers", "subjects"],
    "properties": {"index": {"type": "integer", "minimum": 0}, "leaf_hash": HEX32},
}
ENTRY_PROOF: dict[str, Any] = {
    "type": "object",
    "required": [*ENTRY["required"], "envelope", "checkpoint", "inclusion_proof"],
    "properties": {
        **ENTRY["properties"],
        "envelope": {"type": "object"},
        "checkpoint": {"type": "string"},
        "inclusion_proof": {"type": "array", "items": HEX32},
    },
}
CONSISTENCY: dict[str, Any] = {
    "type": "object",
    "required": ["old_size", "new_size", "old_root", "new_root", "hashes"],
    "properties": {
        "old_size": {"type": "integer", "minimum": 0},
        "new_size": {"type": "integer", "minimum": 0},
        "old_root": HEX32,
        "new_root": HEX32,
        "hashes": {"type": "array", "items": HEX32},
    },
}
HEALTH: dict[str, Any] = {
    "type": "object",
    "required": ["status", "size"],
    "properties": {
        "status": {"const": "ok"},
        "size": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
    },
}


#: A JSON-RPC 2.0 answer (a result or an error).
ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["jsonrpc", "id"],
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["string", "integer", "null"]},
        "result": {},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
        },
    },
}
#: ``GET /v1/chain``.
CHAIN: dict[str, Any] = {
    "type": "object",
    "required": ["backend", "chain_id", "rpc"],
    "properties": {
        "backend": {"enum": ["embedded", "rpc"]},
        "chain_id": {"type": ["integer", "null"]},
        "rpc": {"type": ["string", "null"]},
    },
}


def json_body(schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    """``openapi_extra`` giving a route's success body its schema."""
    return {"responses": {str(status): {"content": {"application/json": {"schema": schema}}}}}


def with_problem_schema(app: FastAPI) -> None:
    """Add the ``Problem`` component that :func:`problem_responses` refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI builds it once and caches it
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

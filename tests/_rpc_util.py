"""Helpers of the ``/rpc`` tests: raw JSON-RPC posts to a running ``ailedger serve``."""

from __future__ import annotations

import json
from typing import Any

from _service import Service

#: The keys every JSON-RPC answer has besides ``result`` or ``error``.
ENVELOPE = {"jsonrpc", "id"}


def rpc_raw(service: Service, body: bytes) -> tuple[int, Any]:
    """POST ``body`` to /rpc: (status, decoded JSON body or None when there is none)."""
    status, headers, data = service.request(
        "POST", "/rpc", body, {"Content-Type": "application/json"}
    )
    if not data:
        return status, None
    assert headers["content-type"].startswith("application/json"), headers
    return status, json.loads(data)


def rpc_call(service: Service, method: str, *params: Any) -> dict[str, Any]:
    """One call: the whole answer (``result`` or ``error``), checked to be well formed."""
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})
    status, answer = rpc_raw(service, body.encode())
    assert status == 200, answer
    assert isinstance(answer, dict)
    assert answer["jsonrpc"] == "2.0", answer
    assert answer["id"] == 7, answer
    assert ("result" in answer) != ("error" in answer), answer
    return answer


def rpc_error(service: Service, method: str, *params: Any) -> dict[str, Any]:
    """A call that must fail: its ``error`` member."""
    answer = rpc_call(service, method, *params)
    assert "error" in answer, answer
    error = answer["error"]
    assert isinstance(error, dict), error
    assert isinstance(error["code"], int), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    return error


def well_formed(answer: Any) -> None:
    """Assert ``answer`` is one JSON-RPC 2.0 response object."""
    assert isinstance(answer, dict), answer
    assert set(answer) >= ENVELOPE, answer
    assert answer["jsonrpc"] == "2.0"
    assert ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        assert isinstance(answer["error"]["code"], int)
        assert isinstance(answer["error"]["message"], str)

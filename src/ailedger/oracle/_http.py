"""JSON over HTTP between oracle nodes, on the standard library only.

A node serves ``GET`` and ``POST`` routes with JSON bodies from a ``ThreadingHTTPServer`` in
a background thread. A route returns a JSON object, or raises an :class:`AiledgerError`,
which the server turns into ``{"error", "type", "code", "exit_code"}`` (``code``: a
verification failure's stable code, else null) with status 422; the client raises
:class:`PeerRefused` with the peer's message. A client call retries a connection failure
(refused, reset, timed out) ``tries`` times with a growing pause, then raises
:class:`PeerUnavailable`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from ailedger import _json
from ailedger.errors import AiledgerError, FormatError, NodeUnavailable, VerificationFailed

__all__ = ["JsonServer", "PeerRefused", "PeerUnavailable", "Route", "request_json"]

Route = Callable[[dict[str, Any]], dict[str, Any]]
_MAX_BODY = 16 * 1024 * 1024


class PeerUnavailable(NodeUnavailable):
    """An oracle peer did not answer (after retries)."""

    exit_code: ClassVar[int] = 8


class PeerRefused(VerificationFailed):
    """An oracle peer answered with an error (it refused to observe or to sign)."""

    exit_code: ClassVar[int] = 1
    default_code = "oracle-peer-refused"


def request_json(
    url: str,
    body: dict[str, Any] | None = None,
    *,
    timeout: float = 10.0,
    tries: int = 3,
    backoff: float = 0.1,
) -> dict[str, Any]:
    """``POST`` ``body`` (or ``GET`` when it is None) to ``url``; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    last = ""
    for attempt in range(max(tries, 1)):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _decode(url, response.read())
        except urllib.error.HTTPError as exc:
            answer = _decode(url, exc.read())
            raise PeerRefused(f"{url}: {answer.get('error', f'HTTP {exc.code}')}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = str(reason) or type(reason).__name__
    raise PeerUnavailable(f"{url} unreachable after {max(tries, 1)} tries: {last}")


def _decode(url: str, raw: bytes) -> dict[str, Any]:
    try:
        doc = _json.loads(raw, what=f"{url}: the answer")
    except FormatError:
        raise FormatError(f"{url}: the answer is not JSON within bounds") from None
    if not isinstance(doc, dict):
        raise FormatError(f"{url}: the answer is not a JSON object")
    return doc


class JsonServer:
    """``routes`` (``"GET /health"``, ``"POST /observe"``) served on ``host:port`` (0 picks
    a free port) from a daemon thread. ``silent`` closes every connection without an answer
    (a faulty node)."""

    def __init__(
        self, routes: dict[str, Route], host: str = "127.0.0.1", port: int = 0, *, silent: bool
    ) -> None:
        handler = _handler(routes, silent)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> JsonServer:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JsonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(routes: dict[str, Route], silent: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, doc: dict[str, Any]) -> None:
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _serve(self, method: str) -> None:
            if silent:
                self.close_connection = True
                return
            route = routes.get(f"{method} {self.path}")
            if route is None:
                self._answer(404, {"error": f"no route {method} {self.path}"})
                return
            try:
                body: Any = {}
                if method == "POST":
                    length = int(self.headers.get("Content-Length", "0"))
                    if not 0 <= length <= _MAX_BODY:
                        raise FormatError("request body too large")
                    body = _json.loads(self.rfile.read(length) or b"{}", what="request body")
                    if not isinstance(body, dict):
                        raise FormatError("the request body must be a JSON object")
                self._answer(200, route(body))
            except AiledgerError as exc:
                doc = {"error": exc.message, "type": type(exc).__name__, "code": exc.code}
                self._answer(422, {**doc, "exit_code": exc.exit_code})
            except ValueError as exc:
                self._answer(400, {"error": f"bad request: {exc}"})

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler

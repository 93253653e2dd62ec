"""JSON-RPC plumbing: connection errors, retries with exponential backoff, HTTP Web3."""

from __future__ import annotations

import errno
import functools
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ailedger.errors import NodeUnavailable

if TYPE_CHECKING:
    from web3 import Web3

__all__ = ["Retry", "http_web3", "is_connection_error", "slim_middleware", "unreachable"]

T = TypeVar("T")


@functools.cache
def _timeouts() -> tuple[type[BaseException], ...]:
    import requests  # web3's HTTP client: imported with web3, when a node is used

    return (requests.exceptions.Timeout, TimeoutError, socket.timeout)


@functools.cache
def _connection_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (requests.exceptions.ConnectionError, ConnectionError, *_timeouts())


def is_connection_error(exc: BaseException) -> bool:
    """True if ``exc`` means the node could not be reached (as opposed to a bad answer)."""
    return isinstance(exc, _connection_errors())


def _reason(exc: BaseException) -> str:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(current, _timeouts()):
            return "timed out"
        if "Connection refused" in str(current):
            return "connection refused"
        if "Name or service not known" in str(current) or "nodename nor servname" in str(current):
            return "unknown host"
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def unreachable(endpoint: str, exc: BaseException) -> NodeUnavailable:
    """The error for a node at ``endpoint`` that did not answer."""
    return NodeUnavailable(
        f"cannot reach {endpoint}: {_reason(exc)}",
        hint="start the node, or check the RPC URL and your network",
    )


class Retry:
    """Call a function, retrying connection errors with exponential backoff.

    ``retries`` extra attempts, waiting ``backoff * 2**i`` seconds before attempt ``i+1``;
    after the last one the connection error becomes :class:`NodeUnavailable`.
    """

    def __init__(self, endpoint: str, retries: int = 4, backoff: float = 0.25) -> None:
        self.endpoint = endpoint
        self.retries = retries
        self.backoff = backoff

    def __call__(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                if attempt >= self.retries:
                    raise unreachable(self.endpoint, exc) from exc
                time.sleep(self.backoff * 2**attempt)
                attempt += 1


def slim_middleware(w3: Web3) -> Web3:
    """Drop middleware whose work the client does itself, once, instead of per request.

    The client checks the chain id when it connects, checksums addresses, uses no ENS
    names, and fills gas and fees itself; web3's validation middleware would otherwise
    ask the node for its chain id before every call, estimate and send.
    """
    for name in ("validation", "ens_name_to_address", "gas_price_strategy", "gas_estimate"):
        if name in w3.middleware_onion:
            w3.middleware_onion.remove(name)
    return w3


def http_web3(url: str, timeout: float = 10.0) -> Web3:
    """A Web3 over HTTP with web3's own retries off (``Retry`` does them, for every call)."""
    from web3 import HTTPProvider, Web3

    provider = HTTPProvider(
        url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
    )
    return slim_middleware(Web3(provider))

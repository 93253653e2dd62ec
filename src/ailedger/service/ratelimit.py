"""Token buckets for the log service: per signer for submissions, per client IP for reads.

::

    limit = RateLimit.parse("20/s", burst=40)
    buckets = TokenBuckets(limit, clock=time.monotonic)
    wait = buckets.take("0xabc...")     # 0.0: go ahead; else seconds until a token is back

Each key's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; a
request takes one. The clock is injected (tests step a fake one; nothing here sleeps). At most
``max_keys`` buckets are kept: the least recently used goes first (a forgotten key starts
full again, which only ever admits, so memory stays bounded under a flood of new keys).
Standard library only: the app turns a wait into ``429 Too Many Requests`` with
``Retry-After`` and a problem+json body.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ailedger.errors import InvalidInput

__all__ = ["DEFAULT_MAX_KEYS", "RateLimit", "TokenBuckets", "retry_after"]

#: Buckets kept at most (one per signer or client address).
DEFAULT_MAX_KEYS = 65536

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests a second on average, ``burst`` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise InvalidInput(
                f"a rate limit must be a positive number per second, not {self.rate}"
            )
        if self.burst < 1:
            raise InvalidInput(f"a burst must be at least 1, not {self.burst}")

    @classmethod
    def parse(cls, text: str, *, burst: int | None = None) -> RateLimit:
        """``"20/s"`` or ``"20"`` (per second); ``burst`` defaults to one second's worth."""
        match = _RATE.match(text)
        if match is None:
            raise InvalidInput(f"rate {text!r} is not LIMIT/s (e.g. 20/s or 0.5/s)")
        rate = float(match.group(1))
        return cls(rate, burst if burst is not None else max(1, math.ceil(rate)))

    def describe(self) -> str:
        return f"{self.rate:g}/s, burst {self.burst}"


class TokenBuckets:
    """One token bucket per key, all with the same :class:`RateLimit`."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token from ``key``'s bucket: 0.0 if there was one, else the seconds until
        there will be (nothing is taken then)."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + max(0.0, now - last) * self.limit.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.limit.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> str:
    """The ``Retry-After`` value for a wait: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))

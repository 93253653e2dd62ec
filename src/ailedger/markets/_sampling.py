"""How many sampled records back a claim "fewer than p of the records are bad, at confidence
1 - d", and which records an audit samples.

An audit draws ``k`` record indices independently and uniformly (with replacement): index
``i`` is ``keccak256(seed || auditId || i) mod size`` (each a 32-byte big-endian word, as
Solidity's ``abi.encode``), the seed being the hash of a block mined after the audit was
opened. If a fraction ``p`` or more of the records is bad, all ``k`` draws miss them with
probability at most ``(1 - p)^k``; so ``k = ceil(ln d / ln(1 - p))`` passing draws show
"< p bad" at confidence ``1 - d``. The bias of ``mod size`` is below ``size / 2^256``.

Sampling without replacement (distinct records) would need fewer draws for a small dataset:
:func:`sample_size_without_replacement` gives the exact hypergeometric count, shown for
comparison; the contract samples with replacement, so the with-replacement bound is the one it
earns (and it holds for any dataset size).
"""

from __future__ import annotations

import math

from eth_utils.crypto import keccak

from ailedger.errors import InvalidInput

__all__ = [
    "miss_probability",
    "sample_index",
    "sample_indices",
    "sample_size",
    "sample_size_without_replacement",
]


def _check(p: float, d: float) -> None:
    if not (0.0 < p < 1.0) or math.isnan(p):
        raise InvalidInput(f"the bad fraction p must be in (0, 1), not {p}")
    if not (0.0 < d < 1.0) or math.isnan(d):
        raise InvalidInput(f"the risk d must be in (0, 1), not {d}")


def miss_probability(p: float, k: int) -> float:
    """``(1 - p)^k``: the chance that ``k`` draws with replacement all miss a bad fraction
    ``p``."""
    return float((1.0 - p) ** k)


def sample_size(p: float, d: float) -> int:
    """The least ``k`` with ``(1 - p)^k <= d``: ``ceil(ln d / ln(1 - p))``, corrected for
    floating-point error at exact powers (so ``p=0.5, d=0.25`` gives 2, not 3)."""
    _check(p, d)
    k = max(1, math.ceil(math.log(d) / math.log1p(-p)))
    while miss_probability(p, k) > d:
        k += 1
    while k > 1 and miss_probability(p, k - 1) <= d:
        k -= 1
    return k


def sample_size_without_replacement(size: int, p: float, d: float) -> int:
    """The least ``k`` such that ``k`` distinct records drawn from ``size`` miss all
    ``ceil(p * size)`` bad ones with probability at most ``d`` (hypergeometric)."""
    _check(p, d)
    if size < 1:
        raise InvalidInput(f"the dataset size must be positive, not {size}")
    bad = math.ceil(p * size)
    miss = 1.0
    for k in range(1, size - bad + 2):
        miss *= (size - bad - (k - 1)) / (size - (k - 1))
        if miss <= d:
            return k
    return size - bad + 1  # unreachable: with size - bad + 1 draws a bad record is certain


def sample_index(seed: bytes, audit_id: int, i: int, size: int) -> int:
    """Record index of sample ``i`` of audit ``audit_id`` (the contract's ``sampleIndex``)."""
    if len(seed) != 32:
        raise InvalidInput(f"a seed is 32 bytes, not {len(seed)}")
    if size < 1:
        raise InvalidInput(f"the dataset size must be positive, not {size}")
    word = keccak(seed + audit_id.to_bytes(32, "big") + i.to_bytes(32, "big"))
    return int.from_bytes(word, "big") % size


def sample_indices(seed: bytes, audit_id: int, k: int, size: int) -> list[int]:
    """Record indices of samples ``0 .. k-1`` (duplicates possible: with replacement)."""
    return [sample_index(seed, audit_id, i, size) for i in range(k)]

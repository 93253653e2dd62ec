"""The audit sampling bound: k = ceil(ln d / ln(1 - p)) is the least sample size whose miss
probability (1 - p)^k is at most d; without replacement never needs more; sample indices
match the contract's keccak256(seed, auditId, i) mod size."""

from __future__ import annotations

import math

import pytest
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ailedger.errors import InvalidInput
from ailedger.markets._sampling import (
    miss_probability,
    sample_index,
    sample_indices,
    sample_size,
    sample_size_without_replacement,
)

fractions = st.floats(min_value=1e-4, max_value=0.99, allow_nan=False)
risks = st.floats(min_value=1e-9, max_value=0.99, allow_nan=False)


@given(fractions, risks)
def test_sample_size_is_the_least_that_bounds_the_miss(p: float, d: float) -> None:
    k = sample_size(p, d)
    assert miss_probability(p, k) <= d
    assert k == 1 or miss_probability(p, k - 1) > d
    # the closed form, up to floating-point error at exact powers
    assert abs(k - math.ceil(math.log(d) / math.log(1 - p))) <= 1


@pytest.mark.parametrize(
    ("p", "d", "k"),
    [(0.5, 0.25, 2), (0.5, 0.24, 3), (0.01, 0.05, 299), (0.05, 0.01, 90), (0.1, 0.05, 29)],
)
def test_known_sample_sizes(p: float, d: float, k: int) -> None:
    assert sample_size(p, d) == k


@given(st.integers(min_value=1, max_value=400), fractions, risks)
def test_without_replacement_never_needs_more(size: int, p: float, d: float) -> None:
    k = sample_size_without_replacement(size, p, d)
    bad = math.ceil(p * size)
    assert 1 <= k <= size - bad + 1
    assert k <= sample_size(p, d)  # (N-B-i)/(N-i) <= (N-B)/N <= 1 - p
    miss = math.prod((size - bad - i) / (size - i) for i in range(k))
    assert miss <= d + 1e-12
    if k > 1:
        before = math.prod((size - bad - i) / (size - i) for i in range(k - 1))
        assert before > d


@pytest.mark.parametrize(("p", "d"), [(0.0, 0.1), (1.0, 0.1), (0.1, 0.0), (0.1, 1.0)])
def test_degenerate_claims_are_refused(p: float, d: float) -> None:
    with pytest.raises(InvalidInput):
        sample_size(p, d)


@given(st.binary(min_size=32, max_size=32), st.integers(1, 2**64), st.integers(0, 300),
       st.integers(1, 2**64))  # fmt: skip
def test_sample_index_is_the_contract_formula(seed: bytes, audit: int, i: int, size: int) -> None:
    word = keccak(seed + audit.to_bytes(32, "big") + i.to_bytes(32, "big"))
    assert sample_index(seed, audit, i, size) == int.from_bytes(word, "big") % size
    assert sample_indices(seed, audit, i + 1, size)[i] == sample_index(seed, audit, i, size)


def test_sample_index_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput):
        sample_index(b"\0" * 31, 1, 0, 10)
    with pytest.raises(InvalidInput):
        sample_index(b"\0" * 32, 1, 0, 0)

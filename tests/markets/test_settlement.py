"""The settlement helpers of the inference market: the sample the contract draws, the
verifiers' result, and the sample sizes a claim needs (Hoeffding; zero failures)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.errors import InvalidInput
from ailedger.markets.inference.settlement import (
    Verification,
    hoeffding_sample_size,
    passes,
    sample_counters,
    zero_failure_sample_size,
)

margins = st.floats(0.001, 0.5)
confidences = st.floats(0.5, 0.999999)


def test_a_99_percent_claim_at_95_percent_confidence() -> None:
    # Hoeffding with a 1-point margin: ln(20) / (2 * 0.01^2) = 14978.66 -> 14979
    assert hoeffding_sample_size(0.01, 0.95) == 14_979
    # every sampled call must pass: (0.99)^k <= 0.05 -> 299
    assert zero_failure_sample_size(0.01, 0.95) == 299


@given(margins, confidences)
def test_hoeffding_is_the_least_k_meeting_the_bound(margin: float, confidence: float) -> None:
    k = hoeffding_sample_size(margin, confidence)
    risk = 1.0 - confidence
    assert math.exp(-2.0 * k * margin * margin) <= risk
    if k > 1:
        assert math.exp(-2.0 * (k - 1) * margin * margin) > risk


@given(margins, confidences, st.floats(0.5, 0.999))
def test_hoeffding_grows_with_confidence_and_shrinks_with_margin(
    margin: float, confidence: float, factor: float
) -> None:
    k = hoeffding_sample_size(margin, confidence)
    assert hoeffding_sample_size(margin, max(0.5, confidence * factor)) <= k
    assert hoeffding_sample_size(min(0.999, margin / factor), confidence) <= k


@pytest.mark.parametrize(("margin", "confidence"), [(0, 0.95), (1, 0.95), (0.1, 0), (0.1, 1)])
def test_hoeffding_refuses_out_of_range_arguments(margin: float, confidence: float) -> None:
    with pytest.raises(InvalidInput):
        hoeffding_sample_size(margin, confidence)


@given(
    st.binary(min_size=32, max_size=32),
    st.integers(1, 2**40),
    st.integers(1, 10_000),
    st.integers(0, 64),
)
def test_samples_stay_in_the_epochs_counter_range(
    seed: bytes, first: int, calls: int, k: int
) -> None:
    out = sample_counters(seed, b"\x01" * 32, 7, first, calls, k)
    assert len(out) == k
    assert all(first <= c < first + calls for c in out)


def test_pass_rule_and_verification_checks() -> None:
    assert passes(99, 100, 9_900)
    assert not passes(98, 100, 9_900)
    assert passes(0, 0, 9_900)
    with pytest.raises(InvalidInput):
        Verification(b"\x00" * 32, 0, b"\x00" * 32, 3, 2)
    with pytest.raises(InvalidInput):
        sample_counters(b"\x00" * 32, b"\x00" * 32, 0, 1, 0, 1)

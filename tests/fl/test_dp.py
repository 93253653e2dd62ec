"""The Gaussian mechanism on clipped updates and the per-client accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import InvalidInput
from ailedger.fl import DpSpent, PrivacyLedger, clip_and_noise, gaussian_sigma


def test_sigma_is_the_classical_calibration() -> None:
    assert gaussian_sigma(0.5, 1e-5, 2.0) == pytest.approx(
        2.0 * math.sqrt(2 * math.log(125000)) / 0.5
    )
    for eps, delta, clip in [
        (1.0, 1e-5, 1),
        (0, 1e-5, 1),
        (0.5, 0, 1),
        (0.5, 1e-5, 0),
        (math.nan, 0.1, 1),
    ]:
        with pytest.raises(InvalidInput):
            gaussian_sigma(eps, delta, clip)


@given(st.floats(0.01, 100), st.integers(0, 2**32 - 1))
@settings(max_examples=examples(30))
def test_the_update_is_clipped_before_noise(scale: float, seed: int) -> None:
    base = [np.zeros((3, 4)), np.zeros(3)]
    trained = [np.full((3, 4), scale), np.full(3, -scale)]
    # with epsilon close to 1 and a tiny clip, the noise is small and the clip dominates
    out, spent = clip_and_noise(
        base, trained, epsilon=0.99, delta=0.5, clip=1e-3, rng=np.random.default_rng(seed)
    )
    sigma = gaussian_sigma(0.99, 0.5, 1e-3)
    norm = math.sqrt(sum(float(np.sum(o * o)) for o in out))
    assert norm <= 1e-3 + 8 * sigma * math.sqrt(15)
    assert spent == DpSpent(epsilon=0.99, delta=0.5, mechanism="gaussian-clipped-update")


def test_shapes_must_match() -> None:
    with pytest.raises(InvalidInput):
        clip_and_noise(
            [np.zeros(2)],
            [np.zeros(3)],
            epsilon=0.5,
            delta=1e-5,
            clip=1,
            rng=np.random.default_rng(0),
        )


def test_basic_composition_per_client() -> None:
    ledger = PrivacyLedger()
    dp = DpSpent(epsilon=0.5, delta=1e-5, mechanism="gaussian-clipped-update")
    for _ in range(4):
        ledger.add("0xa", dp)
    ledger.add("0xb", dp)
    accounting = ledger.accounting()
    assert accounting is not None
    assert accounting.all_private
    assert accounting.epsilon == pytest.approx(2.0)
    assert accounting.delta == pytest.approx(4e-5)
    assert [(b.contributor, b.rounds) for b in accounting.contributors] == [("0xa", 4), ("0xb", 1)]
    assert accounting.as_outcome().metrics["epsilon"] == pytest.approx(2.0)
    ledger.add("0xc", None)
    after = ledger.accounting()
    assert after is not None
    assert not after.all_private
    assert not after.as_outcome().passed


def test_no_contributor_no_accounting() -> None:
    assert PrivacyLedger().accounting() is None


def test_composed_delta_of_one_or_more_is_no_guarantee() -> None:
    """Basic composition adds deltas: a client whose deltas sum to 1 or more has no (epsilon,
    delta) guarantee left. The accounting must not clamp its delta under 1 and call the model
    private (the gate's max_epsilon would then pass it on a small epsilon)."""
    ledger = PrivacyLedger()
    leaky = DpSpent(epsilon=0.01, delta=0.6, mechanism="claimed")
    ledger.add("0xa", leaky)
    first = ledger.accounting()
    assert first is not None
    assert first.all_private
    ledger.add("0xa", leaky)
    after = ledger.accounting()
    assert after is not None
    assert not after.all_private
    assert not after.as_outcome().passed


def test_composed_epsilon_is_summed_exactly() -> None:
    """fsum: ten rounds of 0.1 are 1.0, not 0.9999999999999999 (nor over a limit of 1.0)."""
    ledger = PrivacyLedger()
    for _ in range(10):
        ledger.add("0xa", DpSpent(epsilon=0.1, delta=1e-6, mechanism="gaussian-clipped-update"))
    accounting = ledger.accounting()
    assert accounting is not None
    assert accounting.epsilon == 1.0

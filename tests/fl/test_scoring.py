"""Scores on a held-out set, checked on a case computed by hand.

Utility: ``U(p) = -|p - 1|`` for a one-number model; base ``0``, updates ``1`` and ``3`` with
equal weight. Then ``U({}) = -1``, ``U({1}) = 0``, ``U({3}) = -2``, ``U({1, 3}) = U(2) = -1``:

- marginal: ``U({i}) - U({})`` = ``+1``, ``-1``;
- leave-one-out: ``U(all) - U(all - i)`` = ``-1 - (-2) = +1`` and ``-1 - 0 = -1``;
- Shapley: update 1 adds ``+1`` in both orders, update 3 adds ``-1``: ``+1``, ``-1``.

With weights 3 and 1, ``U(all) = U(1.5) = -0.5``: LOO ``+1.5`` and ``-0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import InvalidInput
from ailedger.fl import Scorer, weighted_average


def u(params: Sequence[np.ndarray]) -> float:
    return -abs(float(params[0][0]) - 1.0)


BASE = [np.array([0.0])]
UPDATES = [[np.array([1.0])], [np.array([3.0])]]


@pytest.mark.parametrize("method", ["marginal", "loo", "shapley"])
def test_by_hand(method: str) -> None:
    scores = Scorer(u, method, permutations=10).score(BASE, UPDATES, [1, 1])  # type: ignore[arg-type]
    assert scores.scores == pytest.approx((1.0, -1.0))
    assert (scores.base_utility, scores.all_utility) == (-1.0, -1.0)


def test_weights_count() -> None:
    scores = Scorer(u, "loo").score(BASE, UPDATES, [3, 1])
    assert scores.all_utility == pytest.approx(-0.5)
    assert scores.scores == pytest.approx((1.5, -0.5))
    assert weighted_average(UPDATES, [3, 1])[0] == pytest.approx([1.5])


def test_costs() -> None:
    assert Scorer(u, "loo").score(BASE, UPDATES * 4, [1] * 8).evaluations == 10
    assert Scorer(u, "shapley", permutations=5).score(BASE, UPDATES, [1, 1]).evaluations == 2 + 5


def test_nothing_to_score_and_bad_arguments() -> None:
    assert Scorer(u).score(BASE, [], []).scores == ()
    with pytest.raises(InvalidInput):
        Scorer(u, "best")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Scorer(u, "shapley", permutations=0)
    with pytest.raises(InvalidInput):
        Scorer(u).score(BASE, UPDATES, [1])


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
@settings(max_examples=examples(40))
def test_shapley_is_efficient(values: list[float], seed: int) -> None:
    """Shapley values sum to U(all) - U({}) for any permutation sample (efficiency)."""
    ups = [[np.array([v])] for v in values]
    s = Scorer(u, "shapley", permutations=3, seed=seed).score(BASE, ups, [1] * len(values))
    assert sum(s.scores) == pytest.approx(s.all_utility - s.base_utility, abs=1e-9)
    again = Scorer(u, "shapley", permutations=3, seed=seed).score(BASE, ups, [1] * len(values))
    assert again.scores == s.scores  # deterministic: anyone can recompute it

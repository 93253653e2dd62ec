"""Differential privacy for client updates: the Gaussian mechanism on a clipped update, and
the per-client accounting that the update statements carry.

A client that trains with DP clips its update (the difference between the parameters it
returns and the global model it was sent) to L2 norm ``clip`` and adds Gaussian noise of
standard deviation ``sigma = clip * sqrt(2 ln(1.25 / delta)) / epsilon`` to every coordinate:
the classical calibration of the Gaussian mechanism (Dwork and Roth, *The Algorithmic
Foundations of Differential Privacy*, theorem A.1), which gives (epsilon, delta)-DP for one
release with epsilon < 1, with respect to replacing the client's whole dataset (the update's
sensitivity is bounded by the clipping, whatever the data). :func:`gaussian_sigma` refuses
epsilon >= 1, where that bound does not hold.

Across rounds, :class:`PrivacyLedger` adds the (epsilon, delta) each client states, round after
round: basic sequential composition (epsilon and delta add up). It is a valid upper bound and
a loose one: an RDP or PLD accountant (e.g. Google's ``dp-accounting``) gives a much smaller
epsilon for the same noise over many rounds. Tighter accounting is left for later.

(diffprivlib 0.6.6, the scikit-learn DP library, does not import with scikit-learn 1.9: its
``models.forest`` imports ``DOUBLE`` from ``sklearn.tree._tree``, which 1.9 removed, and the
package's ``__init__`` imports it; so the mechanism here is numpy's. For PyTorch models,
:mod:`ailedger.fl.dpsgd` trains with Opacus DP-SGD and reports Opacus's accountant's figures.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ailedger.attest.privacy import PrivacyAccountingPredicate, PrivacyBudget
from ailedger.errors import InvalidInput
from ailedger.fl.update import DpSpent

__all__ = [
    "GAUSSIAN_MECHANISM",
    "PrivacyLedger",
    "clip_and_noise",
    "gaussian_sigma",
]

#: How the statements name the mechanism.
GAUSSIAN_MECHANISM = "gaussian-clipped-update"

Arrays = Sequence[npt.NDArray[np.floating]]


def gaussian_sigma(epsilon: float, delta: float, clip: float) -> float:
    """The noise standard deviation for (epsilon, delta)-DP of one release of an update of
    L2 norm at most ``clip`` (module docstring)."""
    if not (0 < epsilon < 1) or not math.isfinite(epsilon):
        raise InvalidInput(f"epsilon must be in (0, 1) for the Gaussian mechanism, not {epsilon}")
    if not 0 < delta < 1:
        raise InvalidInput(f"delta must be in (0, 1), not {delta}")
    if not (clip > 0 and math.isfinite(clip)):
        raise InvalidInput(f"the clipping norm must be positive, not {clip}")
    return clip * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def clip_and_noise(
    base: Arrays,
    trained: Arrays,
    *,
    epsilon: float,
    delta: float,
    clip: float,
    rng: np.random.Generator,
) -> tuple[list[npt.NDArray[np.floating]], DpSpent]:
    """``base + clip(trained - base) + N(0, sigma^2)``, and what it spent."""
    if len(base) != len(trained) or any(
        b.shape != t.shape for b, t in zip(base, trained, strict=True)
    ):
        raise InvalidInput("the trained parameters do not have the base model's shapes")
    sigma = gaussian_sigma(epsilon, delta, clip)
    deltas = [np.asarray(t, dtype=np.float64) - b for b, t in zip(base, trained, strict=True)]
    norm = math.sqrt(sum(float(np.sum(d * d)) for d in deltas))
    scale = min(1.0, clip / norm) if norm > 0 else 1.0
    out = [
        (b + d * scale + rng.normal(0.0, sigma, size=d.shape)).astype(b.dtype)
        for b, d in zip(base, deltas, strict=True)
    ]
    return out, DpSpent(epsilon=epsilon, delta=delta, mechanism=GAUSSIAN_MECHANISM)


@dataclass
class PrivacyLedger:
    """Per-client (epsilon, delta) summed over rounds (basic composition, summed exactly with
    :func:`math.fsum`); a client that sent one update without DP, or whose deltas add up to 1
    or more, has no guarantee left."""

    spent: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    without_dp: set[str] = field(default_factory=set)
    mechanisms: set[str] = field(default_factory=set)
    _rounds: dict[str, list[DpSpent]] = field(default_factory=dict, repr=False)

    def add(self, client: str, dp: DpSpent | None) -> None:
        history = self._rounds.setdefault(client, [])
        if dp is None:
            self.without_dp.add(client)
        else:
            history.append(dp)
            self.mechanisms.add(dp.mechanism)
        rounds = self.spent.get(client, (0.0, 0.0, 0))[2] + 1
        eps = math.fsum(d.epsilon for d in history)
        delta = math.fsum(d.delta for d in history)
        self.spent[client] = (eps, delta, rounds)

    def budgets(self) -> Mapping[str, tuple[float, float, int]]:
        return dict(self.spent)

    def accounting(self) -> PrivacyAccountingPredicate | None:
        """The model's accounting over every client that contributed, or None when none did.
        A client without DP, or with a composed delta of 1 or more (reported as 0.999999, the
        largest the statement takes), makes ``all_private`` false (the gate then refuses the
        model)."""
        if not self.spent:
            return None
        contributors = [
            PrivacyBudget(contributor=c, epsilon=e, delta=min(d, 0.999999), rounds=r)
            for c, (e, d, r) in sorted(self.spent.items())
        ]
        no_guarantee = self.without_dp | {c for c, (_, d, _) in self.spent.items() if d >= 1}
        return PrivacyAccountingPredicate(
            epsilon=max(b.epsilon for b in contributors),
            delta=max(b.delta for b in contributors),
            composition="basic",
            mechanism=",".join(sorted(self.mechanisms)) or "none",
            contributors=contributors,
            all_private=not no_guarantee,
        )

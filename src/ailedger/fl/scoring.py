"""Scores of client updates on a held-out set: how much each update improved the model.

The utility of a set ``S`` of updates is the held-out utility (higher is better: accuracy, or
minus the log-loss) of their average weighted by examples (what FedAvg would make of them);
the empty set's utility is the base model's. Three scores, all deterministic:

- ``marginal``: ``U({i}) - U({})``, the gain of the update alone over the base model;
- ``loo`` (leave-one-out, the default): ``U(all) - U(all minus i)``;
- ``shapley``: the Shapley value of ``U``, estimated by ``permutations`` random orders drawn
  from ``seed`` (exact in expectation; ``n`` evaluations per order).

``marginal`` and ``loo`` cost ``n + 1`` evaluations; ``shapley`` ``permutations * n + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ailedger.errors import InvalidInput

__all__ = ["Method", "Scorer", "Scores", "weighted_average"]

Method = Literal["marginal", "loo", "shapley"]
Arrays = Sequence[npt.NDArray[np.floating]]
Utility = Callable[[Arrays], float]


def weighted_average(
    updates: Sequence[Arrays], weights: Sequence[int]
) -> list[npt.NDArray[np.floating]]:
    """The example-weighted average of parameter lists (FedAvg's aggregate)."""
    total = float(sum(weights))
    if not updates or total <= 0:
        raise InvalidInput("nothing to average")
    return [
        np.sum(
            [
                np.asarray(u[k], dtype=np.float64) * (w / total)
                for u, w in zip(updates, weights, strict=True)
            ],
            axis=0,
        )
        for k in range(len(updates[0]))
    ]


@dataclass(frozen=True)
class Scores:
    """Each update's score, and the utility of the base model and of all updates together."""

    scores: tuple[float, ...]
    base_utility: float
    all_utility: float
    evaluations: int


@dataclass(frozen=True)
class Scorer:
    """Scores updates with ``utility`` (module docstring)."""

    utility: Utility
    method: Method = "loo"
    permutations: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("marginal", "loo", "shapley"):
            raise InvalidInput(f"unknown scoring method {self.method!r}")
        if self.permutations < 1:
            raise InvalidInput("shapley needs at least one permutation")

    @property
    def name(self) -> str:
        if self.method == "shapley":
            return f"shapley-mc-{self.permutations}-seed-{self.seed}"
        return self.method

    def score(self, base: Arrays, updates: Sequence[Arrays], weights: Sequence[int]) -> Scores:
        n = len(updates)
        if n != len(weights):
            raise InvalidInput("one weight per update")
        calls = 0

        def u(members: Sequence[int]) -> float:
            nonlocal calls
            calls += 1
            if not members:
                return float(self.utility(base))
            avg = weighted_average([updates[i] for i in members], [weights[i] for i in members])
            return float(self.utility(avg))

        base_u = u([])
        if n == 0:
            return Scores((), base_u, base_u, calls)
        everyone = list(range(n))
        all_u = u(everyone)
        if self.method == "marginal":
            scores = [u([i]) - base_u for i in everyone]
        elif self.method == "loo":
            scores = [all_u - u([j for j in everyone if j != i]) for i in everyone]
        else:
            rng = np.random.default_rng(self.seed)
            totals = [0.0] * n
            for _ in range(self.permutations):
                order = [int(i) for i in rng.permutation(n)]
                prev, members = base_u, []
                for i in order:
                    members.append(i)
                    cur = all_u if len(members) == n else u(sorted(members))
                    totals[i] += cur - prev
                    prev = cur
            scores = [t / self.permutations for t in totals]
        return Scores(tuple(scores), base_u, all_u, calls)

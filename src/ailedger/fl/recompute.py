"""A verifier's recomputation of a round's scores (what a client's challenge asks for).

Everything a score depends on is committed: the base model and every update by digest in the
round statement, the held-out set by its root, the scoring method by name. Given the base
parameters and the clients' updates (each checked against the digest the statement names) and
the same utility on the held-out set, :func:`verify_round_scores` recomputes every score and
refuses a statement whose scores differ by more than ``tolerance`` (``fl-score-mismatch``);
:func:`recompute_round_scores` gives the recomputed scores alone (what the verifiers build a
challenge's correction from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flwr.common import NDArrays

from ailedger.errors import VerificationFailed
from ailedger.fl._digest import parameters_digest
from ailedger.fl.scoring import Scorer
from ailedger.fl.update import RoundPredicate

__all__ = ["RecomputedScores", "recompute_round_scores", "verify_round_scores"]


@dataclass(frozen=True)
class RecomputedScores:
    """The scores a verifier recomputed for one round, by client."""

    round: int
    scores: dict[str, float]


def recompute_round_scores(
    record: RoundPredicate,
    base: NDArrays,
    updates: Mapping[str, NDArrays],
    scorer: Scorer,
) -> RecomputedScores:
    """Every scored client's score in ``record``, recomputed from the committed inputs (the
    statement's own scores are not read); raises ``VerificationFailed`` when an input is not
    the one the statement commits to."""

    def fail(message: str) -> VerificationFailed:
        return VerificationFailed(f"round {record.round}: {message}", code="fl-score-mismatch")

    if scorer.name != record.scoring:
        raise fail(f"scored by {record.scoring!r}, not {scorer.name!r}")
    if parameters_digest(base).hex() != record.base_model:
        raise fail("the base parameters are not the round's base model")
    scored = [c for c in record.clients if c.refused is None and c.score is not None]
    lowered = {k.lower(): v for k, v in updates.items()}
    work = []
    for line in scored:
        params = lowered.get(line.client)
        if params is None:
            raise fail(f"no update of {line.client} to recompute its score")
        if parameters_digest(params).hex() != line.update:
            raise fail(f"{line.client}'s parameters are not the update it signed")
        if line.update != record.base_model:  # the base model sent back scores 0
            work.append(line)
    result = scorer.score(base, [lowered[c.client] for c in work], [c.num_examples for c in work])
    mine = {c.client: 0.0 for c in scored} | {
        c.client: s for c, s in zip(work, result.scores, strict=True)
    }
    return RecomputedScores(record.round, mine)


def verify_round_scores(
    record: RoundPredicate,
    base: NDArrays,
    updates: Mapping[str, NDArrays],
    scorer: Scorer,
    *,
    tolerance: float = 1e-9,
) -> RecomputedScores:
    """Recompute ``record``'s scores (module docstring); raises ``VerificationFailed``."""
    mine = recompute_round_scores(record, base, updates, scorer)
    for line in record.clients:
        if line.refused is not None or line.score is None:
            continue
        if abs(mine.scores[line.client] - line.score) > tolerance * max(1.0, abs(line.score)):
            raise VerificationFailed(
                f"round {record.round}: {line.client}'s score is "
                f"{mine.scores[line.client]!r}, the statement says {line.score!r}",
                code="fl-score-mismatch",
            )
    return mine

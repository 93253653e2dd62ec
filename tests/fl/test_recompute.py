"""The verifiers' side of a challenge: a strategy that keeps its updates hands a verifier
everything to recompute a round's scores (:func:`~ailedger.fl.recompute_round_scores`),
whatever the posted statement claims; the demo (``tests/demos/test_federated.py``) runs the
whole challenge on FLRewards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.common import NDArrays

from ailedger.errors import VerificationFailed
from ailedger.fl import Scorer, SignedClient, recompute_round_scores, verify_round_scores
from ailedger.log import TransparencyLog

from .test_strategy import Step, fit_all, res, setup, utility


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")


@pytest.mark.parametrize("keep", [True, False])
def test_kept_updates_recompute_the_scores_of_an_inflated_statement(
    log: TransparencyLog, keep: bool
) -> None:
    strategy, keys, manager = setup(log, keep_updates=keep)
    _, a, b, c = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    results = []
    sent: dict[str, NDArrays] = {}
    for (proxy, i), key, step in zip(ins, [a, b, c], [0.5, -0.2, 0.0], strict=False):
        arrays, n, metrics = SignedClient(Step(step), key).fit(base, i.config)
        sent[key.address.lower()] = arrays
        results.append((proxy, res(arrays, metrics, n)))
    strategy.aggregate_fit(1, results, [])
    kept = strategy.rounds[-1]
    if not keep:  # nothing kept unless asked: a large model's updates stay out of memory
        assert (kept.base_parameters, dict(kept.updates)) == ([], {})
        return
    assert all(np.array_equal(x, y) for x, y in zip(kept.base_parameters, base, strict=True))
    assert set(kept.updates) == set(sent)
    for who, arrays in sent.items():
        assert all(np.array_equal(x, y) for x, y in zip(kept.updates[who], arrays, strict=True))
    record = kept.predicate
    honest = {line.client: line.score for line in record.clients}
    rider = c.address.lower()
    inflated = record.model_copy(
        update={
            "clients": [
                line.model_copy(update={"score": 1.0, "aggregated": True})
                if line.client == rider
                else line
                for line in record.clients
            ]
        }
    )
    scorer = Scorer(utility, "loo")
    with pytest.raises(VerificationFailed, match=r"score is 0\.0") as info:
        verify_round_scores(inflated, kept.base_parameters, kept.updates, scorer)
    assert info.value.code == "fl-score-mismatch"
    again = recompute_round_scores(inflated, kept.base_parameters, kept.updates, scorer)
    assert again.scores == honest  # what the posted statement says is not read
    assert again.scores[rider] == 0.0
    # the recomputation still refuses inputs that are not the committed ones
    with pytest.raises(VerificationFailed, match="not the update it signed"):
        recompute_round_scores(
            inflated,
            kept.base_parameters,
            dict(kept.updates) | {rider: kept.updates[a.address.lower()]},
            scorer,
        )

"""Federated learning on Flower that records who contributed what (issue 17).

- :mod:`.client`: :class:`SignedClient`, a ``NumPyClient`` wrapper that signs each update's
  statement (task, round, base model, parameters, examples, DP spent);
- :mod:`.update`: the statements (:class:`UpdatePredicate`, the aggregator's
  :class:`RoundPredicate`) and :func:`verify_update`, which fails closed;
- :mod:`.strategy`: :class:`LedgerStrategy`, wrapping any Flower strategy: checks, logs,
  scores, aggregates and records every round;
- :mod:`.scoring`: leave-one-out, marginal and Monte-Carlo Shapley scores on a held-out set;
- :mod:`.recompute`: a verifier's recomputation of a round's scores (a challenge's evidence);
- :mod:`.dp`: the Gaussian mechanism on clipped updates and per-client accounting;
- :mod:`.simulation`: :func:`start_ray`, Flower's simulation engine started with retries.

Needs the ``fl`` extra (``pip install 'ailedger[fl]'``: Flower and its Ray simulation engine).
"""

from __future__ import annotations

from ailedger.fl._digest import PARAMETERS_DIGEST_TYPE, parameter_leaves, parameters_digest
from ailedger.fl.client import (
    DP_DELTA_KEY,
    DP_EPSILON_KEY,
    DP_MECHANISM_KEY,
    ROUND_KEY,
    TASK_KEY,
    SignedClient,
    signed_fit,
)
from ailedger.fl.dp import GAUSSIAN_MECHANISM, PrivacyLedger, clip_and_noise, gaussian_sigma
from ailedger.fl.recompute import RecomputedScores, recompute_round_scores, verify_round_scores
from ailedger.fl.scoring import Method, Scorer, Scores, weighted_average
from ailedger.fl.simulation import SimulationEngineError, start_ray
from ailedger.fl.strategy import LedgerStrategy, RoundRecord
from ailedger.fl.update import (
    METRIC_KEY,
    ClientScore,
    DpSpent,
    RoundPredicate,
    UpdatePredicate,
    UpdateRefused,
    VerifiedUpdate,
    sign_update,
    update_statement,
    verify_update,
)

__all__ = [
    "DP_DELTA_KEY",
    "DP_EPSILON_KEY",
    "DP_MECHANISM_KEY",
    "GAUSSIAN_MECHANISM",
    "METRIC_KEY",
    "PARAMETERS_DIGEST_TYPE",
    "ROUND_KEY",
    "TASK_KEY",
    "ClientScore",
    "DpSpent",
    "LedgerStrategy",
    "Method",
    "PrivacyLedger",
    "RecomputedScores",
    "RoundPredicate",
    "RoundRecord",
    "Scorer",
    "Scores",
    "SignedClient",
    "SimulationEngineError",
    "UpdatePredicate",
    "UpdateRefused",
    "VerifiedUpdate",
    "clip_and_noise",
    "gaussian_sigma",
    "parameter_leaves",
    "parameters_digest",
    "recompute_round_scores",
    "sign_update",
    "signed_fit",
    "start_ray",
    "update_statement",
    "verify_round_scores",
    "verify_update",
    "weighted_average",
]

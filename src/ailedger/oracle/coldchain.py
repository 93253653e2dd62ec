"""Cold-chain sensor batches and the anomaly model that flags them (``demo consortium``).

Data. A shipment of chilled goods (2-8 °C) passes a manufacturer's cold store, a shipper's
truck (two legs) and a retailer's store; each stage records one **sensor batch**, a CSV file
of one reading every two minutes for four hours::

    timestamp,temperature_c,humidity_pct,door_open
    2026-03-02T06:00:00Z,4.62,61.3,0

Temperature wanders slowly around the stage's set point with sensor noise, humidity follows
it, and doors open briefly a few times (loading, a stop). A batch named in ``excursions``
gets a cooling failure: a door left open for 30-40 minutes while the temperature climbs to
11-15 °C and falls back. :func:`write_cold_chain_batches` is deterministic: the same seed
gives the same bytes.

Model. :func:`batch_features` reduces a batch to :data:`FEATURES` (mean, maximum and
spread of the temperature, minutes above 8 °C, door-open minutes, mean humidity);
:func:`train_anomaly_model` fits a scikit-learn IsolationForest on generated batches of normal
operation only and sets the flag threshold below the lowest training score (``margin``
under it), so an ordinary batch is not flagged. It writes ``model.pkl`` and ``config.json``
(features, threshold, seed), a model directory that
:func:`ailedger.fingerprint.model.fingerprint_model` fingerprints. :func:`load_verified`
refuses a directory whose subject digest is not the expected one BEFORE anything is
unpickled (:class:`~ailedger.oracle.scoring.ModelMismatch`), and unpickles only the bytes it
verified. :meth:`AnomalyModel.score` is IsolationForest's ``score_samples`` (lower is more
anomalous), rounded to 6 digits; a batch is flagged when its score is below the threshold.
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ailedger._extras import require_sklearn
from ailedger._json import loads as json_loads
from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.oracle.scoring import CONFIG_FILE, MODEL_FILE, verified_model_files

__all__ = [
    "COLUMNS",
    "FEATURES",
    "STAGES",
    "AnomalyModel",
    "ColdChainBatch",
    "batch_features",
    "cold_chain_csv",
    "load_verified",
    "read_batch",
    "train_anomaly_model",
    "write_cold_chain_batches",
]

COLUMNS = ("timestamp", "temperature_c", "humidity_pct", "door_open")
FEATURES = (
    "mean_temperature_c",
    "max_temperature_c",
    "temperature_spread_c",
    "minutes_above_8c",
    "door_open_minutes",
    "mean_humidity_pct",
)
#: A shipment's stages in order: (stage, the party that records it).
STAGES = (
    ("cold-store", "manufacturer"),
    ("truck-leg-1", "shipper"),
    ("truck-leg-2", "shipper"),
    ("store", "retailer"),
)
_STEP_MIN = 2
_READINGS = 120  # four hours
_LIMIT_C = 8.0
_SET_POINT = {"cold-store": 3.8, "truck-leg-1": 4.6, "truck-leg-2": 4.9, "store": 4.2}
_START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ColdChainBatch:
    """One written batch: number (1-based), shipment, stage, recording party, file."""

    number: int
    shipment: str
    stage: str
    party: str
    path: Path
    excursion: bool

    @property
    def name(self) -> str:
        return self.path.name


def cold_chain_csv(
    seed: int | str, stage: str, start: datetime, *, excursion: bool = False
) -> bytes:
    """One batch's CSV bytes (module docstring), deterministic for ``seed``."""
    rng = random.Random(f"cold-chain:{seed}")
    set_point = _SET_POINT.get(stage, 4.5) + rng.uniform(-0.3, 0.3)
    drift = 0.0
    door_left = 0
    excursion_at = rng.randrange(20, _READINGS - 40) if excursion else -1
    excursion_len = rng.randrange(15, 21)  # readings: 30-40 minutes
    peak = rng.uniform(11.0, 15.0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(_READINGS):
        drift = 0.9 * drift + rng.gauss(0.0, 0.08)
        temperature = set_point + drift + rng.gauss(0.0, 0.12)
        door = 0
        if door_left > 0:
            door, door_left = 1, door_left - 1
            temperature += 0.6
        elif rng.random() < 0.02:
            door_left = rng.randrange(0, 2)
            door = 1
            temperature += 0.4
        if excursion and excursion_at <= i < excursion_at + excursion_len:
            phase = (i - excursion_at) / excursion_len
            temperature = set_point + (peak - set_point) * math.sin(math.pi * phase) + 0.5
            door = 1
        humidity = 58.0 + 2.5 * (temperature - set_point) + rng.gauss(0.0, 1.2)
        when = start + timedelta(minutes=_STEP_MIN * i)
        writer.writerow(
            (
                when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"{temperature:.2f}",
                f"{humidity:.1f}",
                door,
            )
        )
    return out.getvalue().encode()


def write_cold_chain_batches(
    directory: Path, *, shipments: int, excursions: Sequence[int], seed: int
) -> list[ColdChainBatch]:
    """Write ``shipments`` x 4 batches (``batch-001.csv`` ..., one per stage of
    :data:`STAGES`), those numbered in ``excursions`` with a cooling failure."""
    total = shipments * len(STAGES)
    bad = set(excursions)
    if not bad <= set(range(1, total + 1)):
        raise InvalidInput(f"excursion batches must be numbered 1..{total}")
    directory.mkdir(parents=True, exist_ok=True)
    batches = []
    for number in range(1, total + 1):
        shipment = f"S{(number - 1) // len(STAGES) + 1:02d}"
        stage, party = STAGES[(number - 1) % len(STAGES)]
        start = _START + timedelta(hours=6 * (number - 1))
        path = directory / f"batch-{number:03d}.csv"
        path.write_bytes(cold_chain_csv(f"{seed}:{number}", stage, start, excursion=number in bad))
        batches.append(ColdChainBatch(number, shipment, stage, party, path, number in bad))
    return batches


def read_batch(path: Path) -> list[dict[str, str]]:
    """The rows of a batch; :class:`FormatError` for a file that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such batch") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise FormatError(f"{path}: not a cold-chain batch (columns {', '.join(COLUMNS)})")
    return rows


def batch_features(rows: Sequence[dict[str, str]]) -> list[float]:
    """The features of one batch, in :data:`FEATURES` order."""
    try:
        temps = [float(r["temperature_c"]) for r in rows]
        humidity = [float(r["humidity_pct"]) for r in rows]
        doors = [int(r["door_open"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        raise FormatError("a cold-chain batch row has a missing or non-numeric value") from None
    return [
        round(statistics.fmean(temps), 6),
        max(temps),
        round(max(temps) - min(temps), 6),
        float(_STEP_MIN * sum(1 for t in temps if t > _LIMIT_C)),
        float(_STEP_MIN * sum(doors)),
        round(statistics.fmean(humidity), 6),
    ]


def train_anomaly_model(
    directory: Path, *, seed: int, batches: int = 300, margin: float = 0.03
) -> Path:
    """Fit an IsolationForest on ``batches`` generated normal batches; write the model
    directory (``model.pkl``, ``config.json``) and return it."""
    sklearn = require_sklearn("the shipper trains a scikit-learn anomaly model")
    from sklearn.ensemble import IsolationForest

    if batches < 10 or not 0 <= margin < 1:
        raise InvalidInput("train on at least 10 batches with a margin in [0, 1)")
    x = []
    for i in range(batches):
        stage = STAGES[i % len(STAGES)][0]
        data = cold_chain_csv(f"history:{seed}:{i}", stage, _START - timedelta(days=90))
        x.append(batch_features(list(csv.DictReader(io.StringIO(data.decode())))))
    params = {"n_estimators": 200, "random_state": seed}
    model = IsolationForest(**params).fit(x)
    lowest = min(float(s) for s in model.score_samples(x))
    threshold = round(lowest - margin, 6)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(pickle.dumps(model, protocol=5))
    config = {
        "task": "cold-chain sensor batch anomalies",
        "library": f"scikit-learn {sklearn.__version__}",
        "estimator": "IsolationForest",
        "hyperparameters": params,
        "features": list(FEATURES),
        "score": "IsolationForest.score_samples (lower is more anomalous)",
        "threshold": threshold,
        "training": {"seed": seed, "batches": batches, "lowest_score": lowest, "margin": margin},
    }
    (directory / CONFIG_FILE).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return directory


@dataclass(frozen=True)
class AnomalyModel:
    """An anomaly model loaded from a directory whose fingerprint was checked."""

    subject_digest: str
    estimator: Any
    threshold: float

    def score(self, path: Path) -> float:
        """The batch's anomaly score (lower is more anomalous), 6 digits."""
        feats = batch_features(read_batch(path))
        return round(float(self.estimator.score_samples([feats])[0]), 6)

    def flags(self, score: float) -> bool:
        return score < self.threshold


def load_verified(model_dir: Path, expected_subject_digest: str) -> AnomalyModel:
    """Load the model only if its subject digest (hex, optionally ``sha256:``) matches."""
    actual, blobs = verified_model_files(
        model_dir,
        expected_subject_digest,
        kind="an anomaly model",
        mismatch_hint="use the model version that was logged, or log this one",
    )
    config = json_loads(blobs[CONFIG_FILE], what=f"{model_dir}/{CONFIG_FILE}")
    threshold = config.get("threshold") if isinstance(config, dict) else None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidInput(f"{model_dir}/{CONFIG_FILE} has no numeric threshold")
    require_sklearn("the anomaly model is a scikit-learn model")
    estimator = pickle.loads(blobs[MODEL_FILE])  # verified bytes only
    if not callable(getattr(estimator, "score_samples", None)):
        raise InvalidInput(f"{model_dir}/{MODEL_FILE} is not an estimator with score_samples")
    return AnomalyModel(actual, estimator, float(threshold))

"""The oracles' models: a drought-risk classifier for crop insurance and an incident counter
for the port safety bonus.

Drought risk. :func:`batch_features` turns one weather batch (one farm, one period) into four
features: the rainfall deficit against the farm's norm (``1 - mean daily rain / norm``, from
the training history, so it is negative in a wet period), the longest run of dry days (farm
rain under 1 mm, the per-day median over its stations), the mean soil moisture (the per-day
median over stations, so one stuck probe cannot move it far) and the number of heat days
(median air temperature of at least 28 °C). Missing values (``null``) are skipped.

:func:`train_drought_model` generates ``seasons`` historical seasons with
:mod:`ailedger.oracle.sensors` (random farms in drought each season), labels each batch by the
rule in :func:`drought_label` and flips ``label_noise`` of the labels at random (real claim
records are noisy), then fits a standardising logistic regression. It writes a model
directory (``model.pkl`` and ``config.json`` with the features, farm norms, seed and rule)
that :func:`ailedger.fingerprint.model.fingerprint_model` fingerprints.

:func:`load_verified` fingerprints the directory and refuses it (:class:`ModelMismatch`)
unless its subject digest is the expected one, BEFORE anything is unpickled; it then reads the
pickle's bytes once and checks them against the digest it just verified, so the file cannot be
swapped in between. :func:`score_batch` returns the drought probability in basis points
(0..10000), rounded half to even: deterministic for the same model, batch and library versions.

Safety incidents. :func:`count_incidents` is a documented confidence-threshold rule, not a
learned model: an event counts when its type is an incident and its confidence is at least
``threshold``; repeated reports of the same type by the same camera within
``dedupe_seconds`` count once (a camera re-flags one person for several frames).

scikit-learn is the ``ml`` extra; without it training and scoring raise :class:`InvalidInput`
with the install hint.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ailedger._extras import require_sklearn
from ailedger._json import loads as json_loads
from ailedger.errors import FormatError, InvalidInput, NotFound, VerificationFailed
from ailedger.fingerprint.model import fingerprint_model
from ailedger.oracle.sensors import (
    DEFAULT_FARMS,
    INCIDENT_TYPES,
    Farm,
    WeatherConfig,
    generate_weather,
)

__all__ = [
    "CONFIG_FILE",
    "DROUGHT_FEATURES",
    "MODEL_FILE",
    "DroughtModel",
    "ModelMismatch",
    "batch_features",
    "count_incidents",
    "drought_label",
    "load_verified",
    "read_jsonl",
    "score_batch",
    "train_drought_model",
    "verified_model_files",
]

MODEL_FILE = "model.pkl"
CONFIG_FILE = "config.json"
DROUGHT_FEATURES = ("rain_deficit", "max_dry_spell_days", "mean_soil_moisture_pct", "heat_days")
_DRY_MM = 1.0
_HEAT_C = 28.0


class ModelMismatch(VerificationFailed):
    """The model directory's fingerprint is not the one expected: nothing was loaded."""

    default_code = "oracle-model-mismatch"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL batch; :class:`FormatError` names the first bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"{path}: no such batch") from None
    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise FormatError(f"{path}:{number}: a record must be a JSON object")
        records.append(doc)
    if not records:
        raise InvalidInput(f"{path}: the batch has no records")
    return records


def _daily(records: Sequence[dict[str, Any]], field: str) -> dict[str, float]:
    by_day: dict[str, list[float]] = {}
    for rec in records:
        value = rec.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            by_day.setdefault(str(rec.get("timestamp", ""))[:10], []).append(float(value))
    return {day: statistics.median(vals) for day, vals in sorted(by_day.items())}


def _farm_of(records: Sequence[dict[str, Any]]) -> str:
    farms = {rec.get("farm") for rec in records}
    if len(farms) != 1 or not isinstance(next(iter(farms)), str):
        raise InvalidInput("a weather batch must hold the readings of exactly one farm")
    return str(next(iter(farms)))


def batch_features(records: Sequence[dict[str, Any]], norm_mm_per_day: float) -> list[float]:
    """The features of one farm's batch, in :data:`DROUGHT_FEATURES` order."""
    if norm_mm_per_day <= 0:
        raise InvalidInput("the rainfall norm must be positive")
    rain = _daily(records, "rainfall_mm")
    soil = _daily(records, "soil_moisture_pct")
    temp = _daily(records, "air_temp_c")
    if not rain or not soil:
        raise InvalidInput("the batch has no rainfall or no soil moisture readings")
    longest = run = 0
    for value in rain.values():
        run = run + 1 if value < _DRY_MM else 0
        longest = max(longest, run)
    deficit = 1.0 - statistics.fmean(rain.values()) / norm_mm_per_day
    heat = sum(1 for t in temp.values() if t >= _HEAT_C)
    return [round(deficit, 6), float(longest), round(statistics.fmean(soil.values()), 6), heat]


def drought_label(features: Sequence[float], period_days: int) -> int:
    """The labelling rule: drought when at least two of: rain under half the norm, a dry spell
    of at least a third of the period, mean soil moisture under 15 %."""
    deficit, spell, soil, _heat = features
    votes = (deficit > 0.5) + (spell >= period_days / 3) + (soil < 15.0)
    return int(votes >= 2)


def _history(
    farms: Sequence[Farm], seasons: int, seed: int, period_days: int, label_noise: float
) -> tuple[list[list[float]], list[int], dict[str, float]]:
    rng = random.Random(f"{seed}:history")
    cfg_days = 120
    weather = []
    for season in range(seasons):
        dry = tuple(f.farm_id for f in farms if rng.random() < 0.3)
        start = rng.randrange(0, cfg_days - 30)
        cfg = WeatherConfig(
            days=cfg_days, drought_farms=dry, drought_start=start, drought_days=rng.randint(20, 60)
        )
        weather.append(generate_weather(farms, cfg, seed=seed * 1000 + season))
    norms: dict[str, float] = {}
    for farm in farms:
        rain = [v for w in weather for v in _daily(w[farm.farm_id], "rainfall_mm").values()]
        norms[farm.farm_id] = round(statistics.fmean(rain), 6)
    x: list[list[float]] = []
    y: list[int] = []
    for w in weather:
        for farm_id, rows in w.items():
            per_day = len(rows) // cfg_days
            for first in range(0, cfg_days, period_days):
                chunk = rows[first * per_day : (first + period_days) * per_day]
                feats = batch_features(chunk, norms[farm_id])
                label = drought_label(feats, period_days)
                if rng.random() < label_noise:
                    label = 1 - label
                x.append(feats)
                y.append(label)
    return x, y, norms


def train_drought_model(
    directory: Path,
    *,
    seed: int,
    farms: Sequence[Farm] = DEFAULT_FARMS,
    seasons: int = 20,
    period_days: int = 30,
    label_noise: float = 0.05,
) -> Path:
    """Train on generated history and write ``model.pkl`` + ``config.json`` to ``directory``."""
    sklearn = require_sklearn("the oracle trains a scikit-learn model")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if seasons < 1 or not 0 <= label_noise < 0.5:
        raise InvalidInput("seasons must be positive and label_noise in [0, 0.5)")
    x, y, norms = _history(farms, seasons, seed, period_days, label_noise)
    if len(set(y)) < 2:
        raise InvalidInput("the generated history has one class only; use more seasons")
    params = {"C": 1.0, "max_iter": 1000}
    model = make_pipeline(StandardScaler(), LogisticRegression(**params))
    model.fit(x, y)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(pickle.dumps(model, protocol=5))
    config = {
        "task": "drought risk per farm and period",
        "library": f"scikit-learn {sklearn.__version__}",
        "estimator": "StandardScaler + LogisticRegression",
        "hyperparameters": params,
        "features": list(DROUGHT_FEATURES),
        "farm_norms_mm_per_day": norms,
        "output": "drought probability in basis points (0..10000)",
        "training": {
            "seed": seed,
            "seasons": seasons,
            "period_days": period_days,
            "label_noise": label_noise,
            "rows": len(y),
            "positives": sum(y),
            "label_rule": drought_label.__doc__,
        },
    }
    (directory / CONFIG_FILE).write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return directory


@dataclass(frozen=True)
class DroughtModel:
    """A drought model loaded from a directory whose fingerprint was checked."""

    subject_digest: str
    estimator: Any
    norms: dict[str, float]

    def score_records(self, records: Sequence[dict[str, Any]]) -> int:
        farm = _farm_of(records)
        if farm not in self.norms:
            raise InvalidInput(f"the model has no rainfall norm for {farm!r}")
        feats = batch_features(records, self.norms[farm])
        proba = float(self.estimator.predict_proba([feats])[0][1])
        return min(max(round(proba * 10_000), 0), 10_000)

    def score(self, batch_path: Path) -> int:
        """Drought probability of the batch in basis points (0..10000)."""
        return self.score_records(read_jsonl(batch_path))


def verified_model_files(
    model_dir: Path,
    expected_subject_digest: str,
    *,
    kind: str,
    mismatch_hint: str,
    missing_hint: str | None = None,
) -> tuple[str, dict[str, bytes]]:
    """The model's subject digest (hex) and the bytes of its MODEL_FILE and CONFIG_FILE, read
    once and checked against the fingerprint, only if the subject digest (hex, optionally
    ``sha256:``) is the expected one: what a loader may then unpickle. ``kind`` names the
    model in the error when a file is missing (``"a drought model"``)."""
    expected = expected_subject_digest.removeprefix("sha256:").lower()
    fp = fingerprint_model(model_dir, tensors=False)
    actual = fp.subject_digest.hex()
    if actual != expected:
        raise ModelMismatch(
            f"{model_dir}: the model's subject digest is sha256:{actual}, "
            f"expected sha256:{expected}; refusing to load it",
            hint=mismatch_hint,
        )
    digests = {r.name: r.digest for r in fp.resources}
    blobs: dict[str, bytes] = {}
    for name in (MODEL_FILE, CONFIG_FILE):
        if name not in digests:
            raise InvalidInput(f"{model_dir} is not {kind}: it has no {name}", hint=missing_hint)
        blob = (model_dir / name).read_bytes()
        if hashlib.sha256(blob).digest() != digests[name]:
            raise ModelMismatch(f"{model_dir}/{name} changed while it was being verified")
        blobs[name] = blob
    return actual, blobs


def load_verified(model_dir: Path, expected_subject_digest: str) -> DroughtModel:
    """Load the model only if its subject digest (hex, optionally ``sha256:``) matches."""
    actual, blobs = verified_model_files(
        model_dir,
        expected_subject_digest,
        kind="a drought model",
        mismatch_hint="use the model version that was registered, or register this one",
        missing_hint=_DROUGHT_HINT,
    )
    norms = _drought_norms(model_dir, blobs[CONFIG_FILE])  # before anything is unpickled
    require_sklearn("the oracle's model is a scikit-learn model")
    estimator = pickle.loads(blobs[MODEL_FILE])  # verified bytes only
    if not callable(getattr(estimator, "predict_proba", None)):
        raise InvalidInput(
            f"{model_dir}/{MODEL_FILE} is not a classifier with predict_proba",
            hint=_DROUGHT_HINT,
        )
    return DroughtModel(actual, estimator, norms)


_DROUGHT_HINT = (
    "oracle nodes score with drought models (model.pkl + config.json with "
    "farm_norms_mm_per_day), such as `ailedger demo crop-insurance` trains"
)


def _drought_norms(model_dir: Path, blob: bytes) -> dict[str, float]:
    """The per-farm rainfall norms of a drought model's config, checked."""
    config = json_loads(blob, what=f"{model_dir}/{CONFIG_FILE}")
    norms = config.get("farm_norms_mm_per_day") if isinstance(config, dict) else None
    if not isinstance(norms, dict) or not norms:
        raise InvalidInput(
            f"{model_dir} is not a drought model: {CONFIG_FILE} has no farm_norms_mm_per_day",
            hint=_DROUGHT_HINT,
        )
    checked: dict[str, float] = {}
    for farm, norm in norms.items():
        if isinstance(norm, bool) or not isinstance(norm, int | float) or not 0 < norm < math.inf:
            raise InvalidInput(
                f"{model_dir}/{CONFIG_FILE}: the rainfall norm of {farm!r} is not a positive "
                f"number ({norm!r})"
            )
        checked[farm] = float(norm)
    return checked


def score_batch(model_dir: Path, batch_path: Path, expected_subject_digest: str) -> int:
    """:func:`load_verified` then :meth:`DroughtModel.score`: basis points, 0..10000."""
    return load_verified(model_dir, expected_subject_digest).score(batch_path)


def count_incidents(batch_path: Path, threshold: float, *, dedupe_seconds: int = 60) -> int:
    """Incidents in a week of camera events, by the confidence-threshold rule (module doc)."""
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be in [0, 1], not {threshold}")
    if dedupe_seconds < 0:
        raise InvalidInput("dedupe_seconds must not be negative")
    last: dict[tuple[str, str], datetime] = {}
    count = 0
    for number, rec in enumerate(read_jsonl(batch_path), 1):
        kind, camera, confidence = rec.get("event"), rec.get("camera"), rec.get("confidence")
        if not isinstance(kind, str) or not isinstance(camera, str):
            raise FormatError(f"{batch_path}:{number}: an event needs 'event' and 'camera'")
        if not isinstance(confidence, int | float) or isinstance(confidence, bool):
            raise FormatError(f"{batch_path}:{number}: 'confidence' must be a number")
        try:
            when = datetime.fromisoformat(str(rec.get("timestamp")))
        except ValueError:
            raise FormatError(f"{batch_path}:{number}: bad 'timestamp'") from None
        if kind not in INCIDENT_TYPES or confidence < threshold:
            continue
        previous = last.get((camera, kind))
        last[(camera, kind)] = when
        if previous is not None and 0 <= (when - previous).total_seconds() <= dedupe_seconds:
            continue
        count += 1
    return count

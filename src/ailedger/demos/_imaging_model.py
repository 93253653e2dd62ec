"""The imaging demo's classifier: scikit-learn's bundled 8x8 digit images stand in for scans.

Nothing is downloaded: the 1,797 digit images ship inside scikit-learn. A fixed shuffle splits
them into a training set (600 images), a holdout set (197) for the signed evaluations, and
1,000 "studies" the hospital sends for triage (study ``i`` is image ``i mod 1000``). Each
digit class stands for a finding; class :data:`FLAG_FINDING` (an 8) stands for a suspicious
one, and a study whose finding is that class is *flagged*.

The provider serves the model through the ``callable`` plug-in of
:mod:`ailedger.markets.inference.models` (its files checked against the registered
fingerprint before they are unpickled): :func:`triage` answers one study (64 pixel values,
0..16) with ``{"finding", "confidence", "flag"}``, the confidence rounded to 4 decimals so
that a re-execution elsewhere gives the same bytes. :func:`swapped` is the dishonest
provider's plug-in: the same registered model, except that for a fraction of the calls it
answers with a cheaper model named by ``AILEDGER_DEMO_SWAP`` (``PATH#SHA256#RATE#SEED``; the
file's sha256 is checked before it is unpickled), while its receipts still name the
registered model's digest. Both need the ml extra (scikit-learn, numpy).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.demos._ml import require_sklearn, sklearn_version
from ailedger.errors import InvalidInput, ProofInvalid
from ailedger.markets.inference.models import SklearnPredictor, VerifiedModel

__all__ = [
    "CHEAP_PARAMS",
    "FLAG_FINDING",
    "PARAMS",
    "PIXELS",
    "STUDIES",
    "SWAP_ENV",
    "Digits",
    "flag_sensitivity",
    "load_digits_split",
    "save_model",
    "swap_setting",
    "swapped",
    "train_cheap",
    "train_triage",
    "triage",
    "triage_output",
    "triage_outputs",
]

PIXELS = 64
FLAG_FINDING = 8
STUDIES = 1_000
TRAIN = 600
SWAP_ENV = "AILEDGER_DEMO_SWAP"
_SEED = 16
#: The triage model's hyperparameters (signed in its training metadata).
PARAMS: dict[str, Any] = {"C": 0.5, "max_iter": 2_000}
CHEAP_PARAMS: dict[str, Any] = {"max_depth": 6, "random_state": 0}


@dataclass(frozen=True)
class Digits:
    """The fixed split: training and holdout images with their digits, and the studies."""

    x_train: Any
    y_train: Any
    x_holdout: Any
    y_holdout: Any
    studies: list[list[int]]


def load_digits_split() -> Digits:
    require_sklearn()
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.RandomState(_SEED).permutation(len(data.target))
    train, holdout = order[:TRAIN], order[TRAIN : len(order) - STUDIES]
    studies = order[len(order) - STUDIES :]
    return Digits(
        data.data[train],
        data.target[train],
        data.data[holdout],
        data.target[holdout],
        [[int(v) for v in data.data[i]] for i in studies],
    )


def train_triage(d: Digits, params: dict[str, Any]) -> Any:
    """The provider's triage model: a standardising logistic regression (one BLAS thread)."""
    require_sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(1):
        model = make_pipeline(StandardScaler(), LogisticRegression(**params))
        return model.fit(d.x_train, d.y_train)


def train_cheap(d: Digits) -> Any:
    """The cheaper model a dishonest provider swaps in: a shallow decision tree."""
    require_sklearn()
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(**CHEAP_PARAMS).fit(d.x_train, d.y_train)


def save_model(model: Any, directory: Path, config: dict[str, Any]) -> Path:
    """Write ``model.pkl`` and ``config.json`` (what the registry fingerprints)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
    doc = {"library": f"scikit-learn {sklearn_version()}", **config}
    (directory / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return directory


def flag_sensitivity(model: Any, d: Digits) -> dict[str, float]:
    """Holdout accuracy, and sensitivity / specificity of the flag (finding 8 or not)."""
    predicted = model.predict(d.x_holdout)
    truth = d.y_holdout == FLAG_FINDING
    flagged = predicted == FLAG_FINDING
    return {
        "accuracy": round(float((predicted == d.y_holdout).mean()), 6),
        "flag_sensitivity": round(float(flagged[truth].mean()), 6),
        "flag_specificity": round(float((~flagged[~truth]).mean()), 6),
        "n_flag_positive": float(truth.sum()),
    }


def _study(value: Any) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) != PIXELS
        or not all(type(v) is int and 0 <= v <= 16 for v in value)
    ):
        raise InvalidInput(f"a study is {PIXELS} pixel values 0..16 (an 8x8 image)")
    return value


def _answer(p: Any) -> dict[str, Any]:
    finding = int(p.argmax())
    return {
        "finding": finding,
        "confidence": round(float(p[finding]), 4),
        "flag": finding == FLAG_FINDING,
    }


def triage_output(estimator: Any, value: Any) -> dict[str, Any]:
    """The answer for one study: the finding, its probability (4 decimals), the flag."""
    import numpy as np

    return _answer(estimator.predict_proba(np.asarray([_study(value)], dtype=np.float64))[0])


def triage_outputs(estimator: Any, values: list[Any]) -> list[dict[str, Any]]:
    """:func:`triage_output` of many studies in one batch (the same answers, but for the
    last bits of a probability at a rounding boundary: confirm a difference one by one)."""
    import numpy as np

    rows = np.asarray([_study(v) for v in values], dtype=np.float64)
    return [_answer(p) for p in estimator.predict_proba(rows)]


def triage(model: VerifiedModel) -> Callable[[Any], Any]:
    """``--callable`` factory: the registered model (unpickled from its verified bytes)."""
    estimator = SklearnPredictor(model).estimator
    return lambda value: triage_output(estimator, value)


def swap_setting(path: Path, rate: float, seed: int) -> str:
    """The :data:`SWAP_ENV` value for a cheap model at ``path``."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path}#{digest}#{rate}#{seed}"


def swapped(model: VerifiedModel) -> Callable[[Any], Any]:
    """``--callable`` factory of the dishonest provider (module docstring): the registered
    model, except for a ``RATE`` fraction of calls (a ``SEED``-ed draw per call)."""
    honest = SklearnPredictor(model).estimator
    setting = os.environ.get(SWAP_ENV, "")
    parts = setting.split("#")
    if len(parts) != 4:
        raise InvalidInput(f"{SWAP_ENV} must be PATH#SHA256#RATE#SEED")
    blob = Path(parts[0]).read_bytes()
    if hashlib.sha256(blob).hexdigest() != parts[1]:
        raise ProofInvalid(
            f"{parts[0]} is not the cheap model named in {SWAP_ENV}", code="served-model-mismatch"
        )
    cheap = pickle.load(io.BytesIO(blob))  # checked bytes only
    rate, draws = float(parts[2]), random.Random(int(parts[3]))

    def predict(value: Any) -> Any:
        chosen = cheap if draws.random() < rate else honest
        return triage_output(chosen, value)

    return predict

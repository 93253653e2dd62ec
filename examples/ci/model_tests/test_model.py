"""Checks of the trained artifact, run by `ailedger eval run ... -- pytest` in CI."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from _model import load, predict

MODEL = Path(os.environ.get("MODEL_DIR", "model"))


def test_the_model_file_is_complete() -> None:
    model = load(MODEL)
    assert model["features"] == ["tenure", "spend"]
    assert all(math.isfinite(c) for c in model["coef"])  # type: ignore[attr-defined]


def test_predictions_are_binary_and_deterministic() -> None:
    x = np.random.default_rng(0).normal(size=(50, 2))
    model = load(MODEL)
    first = predict(model, x)
    assert set(first.tolist()) <= {0, 1}
    assert (first == predict(model, x)).all()

"""Load the example model and its test data (shared by the evaluation scripts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load(model_dir: Path) -> dict[str, object]:
    doc = json.loads((model_dir / "model.json").read_text())
    assert isinstance(doc, dict)
    return doc


def predict(model: dict[str, object], x: np.ndarray) -> np.ndarray:
    coef = np.asarray(model["coef"], dtype=float)
    intercept = float(model["intercept"])  # type: ignore[arg-type]
    labels: np.ndarray = (x @ coef + intercept > 0).astype(int)
    return labels


def read_csv(path: Path) -> np.ndarray:
    rows: np.ndarray = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return rows

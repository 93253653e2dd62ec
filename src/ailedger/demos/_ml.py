"""The demo's machine learning: a real classifier on scikit-learn's bundled breast-cancer data.

Nothing is downloaded: the Wisconsin diagnostic breast-cancer table (569 rows, 30 features)
ships inside scikit-learn. :func:`load_split` makes a fixed stratified train/holdout split;
:func:`train` fits a standardising logistic regression; :func:`save_model` writes the model
as a directory (``model.pkl`` and ``config.json`` with the hyperparameters), which is what
the registry fingerprints. The bias audit compares accuracy between two groups of a
synthetic, deterministic sensitive attribute: whether a sample's ``mean texture`` lies above
the training median. scikit-learn and numpy are the ``ml`` extra (``pip install
'ailedger[ml]'``); without them :func:`require_sklearn` raises :class:`InvalidInput` with
that hint.
"""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from ailedger._extras import require_sklearn as _require_sklearn

__all__ = [
    "GROUP_FEATURE",
    "MODEL_FILE",
    "Split",
    "accuracy",
    "group_accuracy_gap",
    "load_model",
    "load_split",
    "predict_one",
    "require_sklearn",
    "save_model",
    "sha256_digest",
    "sklearn_version",
    "train",
    "write_csv",
]

#: The feature whose training median splits samples into the audit's two groups.
GROUP_FEATURE = "mean texture"
#: The pickled estimator inside a saved model directory.
MODEL_FILE = "model.pkl"
_SEED = 7
_HOLDOUT = 0.25


def require_sklearn() -> Any:
    return _require_sklearn("the demo trains a scikit-learn model")


def sklearn_version() -> str:
    return str(require_sklearn().__version__)


@dataclass(frozen=True)
class Split:
    """The fixed train / holdout split, and each holdout row's audit group."""

    features: tuple[str, ...]
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    group_test: Any  # bool per holdout row: GROUP_FEATURE above the training median
    group_cut: float


def load_split() -> Split:
    """scikit-learn's breast-cancer data, split 75/25 (stratified, fixed seed)."""
    require_sklearn()
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=_HOLDOUT, random_state=_SEED, stratify=data.target
    )
    features = tuple(str(f) for f in data.feature_names)
    column = features.index(GROUP_FEATURE)
    cut = float(sorted(x_train[:, column])[len(x_train) // 2])
    return Split(features, x_train, y_train, x_test, y_test, x_test[:, column] > cut, cut)


def write_csv(path: Path, features: tuple[str, ...], x: Any, y: Any) -> int:
    """Write rows (features, then ``target``) with a header; return the number of rows."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([*features, "target"])
        for row, label in zip(x, y, strict=True):
            out.writerow([*(repr(float(v)) for v in row), int(label)])
    return len(y)


def train(split: Split, params: dict[str, Any]) -> Any:
    """A standardising logistic regression fitted on the training rows."""
    require_sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(**params))
    model.fit(split.x_train, split.y_train)
    return model


def save_model(model: Any, params: dict[str, Any], split: Split, directory: Path) -> Path:
    """Write ``model.pkl`` and ``config.json`` (estimator, hyperparameters, features)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / MODEL_FILE).open("wb") as fh:
        pickle.dump(model, fh, protocol=5)
    config = {
        "library": f"scikit-learn {sklearn_version()}",
        "estimator": "StandardScaler + LogisticRegression",
        "hyperparameters": params,
        "features": list(split.features),
        "target": {"0": "malignant", "1": "benign"},
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def load_model(directory: Path) -> Any:
    """Unpickle a saved model. Only for a directory whose fingerprint was checked first:
    unpickling runs code from the file."""
    with (directory / MODEL_FILE).open("rb") as fh:
        return pickle.load(fh)


def accuracy(model: Any, split: Split) -> float:
    return float((model.predict(split.x_test) == split.y_test).mean())


def group_accuracy_gap(model: Any, split: Split) -> dict[str, float]:
    """Accuracy in each audit group and the absolute gap between them."""
    right = model.predict(split.x_test) == split.y_test
    high, low = right[split.group_test], right[~split.group_test]
    acc_high, acc_low = float(high.mean()), float(low.mean())
    return {
        "accuracy_gap": round(abs(acc_high - acc_low), 6),
        "accuracy_high_texture": round(acc_high, 6),
        "accuracy_low_texture": round(acc_low, 6),
        "n_high_texture": float(len(high)),
        "n_low_texture": float(len(low)),
    }


def predict_one(model: Any, split: Split, row: int) -> tuple[bytes, bytes, str]:
    """Predict holdout row ``row``: the input and output documents (RFC 8785 JSON) and the
    label. An inference record names the documents by their sha256."""
    features = {f: float(v) for f, v in zip(split.features, split.x_test[row], strict=True)}
    label = int(model.predict(split.x_test[row : row + 1])[0])
    proba = float(model.predict_proba(split.x_test[row : row + 1])[0][label])
    name = "benign" if label == 1 else "malignant"
    inp = rfc8785.dumps({"features": features})
    out = rfc8785.dumps({"label": name, "probability": round(proba, 6)})
    return inp, out, name


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()

"""A cheating provider's model for ``market serve --plugin callable``: it loads the registered
(fingerprint-checked) digits classifier, but answers calls 2, 3 and 4 of every 4 with another
real model, a depth-2 decision tree trained on the same digits (cheaper to run, often wrong).
The callable plug-in fingerprints the model files, not this code: that is the swap the
sampled verification has to catch."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

from ailedger.markets.inference.models import VerifiedModel


def shallow_model() -> Any:
    from sklearn.datasets import load_digits
    from sklearn.tree import DecisionTreeClassifier

    digits = load_digits()
    return DecisionTreeClassifier(random_state=0, max_depth=2).fit(
        digits.data[:1500], digits.target[:1500]
    )


def factory(model: VerifiedModel) -> Callable[[Any], Any]:
    _, blob = model.file("model.pkl", suffix=".pkl")
    honest = pickle.load(io.BytesIO(blob))
    other = shallow_model()
    calls = [0]

    def predict(value: Any) -> Any:
        calls[0] += 1
        chosen = honest if calls[0] % 4 == 1 else other
        return [int(v) for v in chosen.predict(value)]

    return predict

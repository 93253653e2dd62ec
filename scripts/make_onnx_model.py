"""Make the tiny ONNX model the inference-market tests serve (tests/markets/data/onnx-digits).

A logistic regression on scikit-learn's digits (trained on the first 1,500 images), converted
to ONNX by skl2onnx, and the labels scikit-learn gives for 20 held-out images: the tests run
the committed graph through onnxruntime (``market serve --plugin onnx``) and compare. Only this
script needs skl2onnx (``pip install skl2onnx``); the tests need onnxruntime alone.

    .venv/bin/python scripts/make_onnx_model.py     # rewrites the two files
"""

from __future__ import annotations

import json
from pathlib import Path

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

OUT = Path(__file__).resolve().parents[1] / "tests" / "markets" / "data" / "onnx-digits"


def main() -> None:
    digits = load_digits()
    x, y = digits.data, digits.target
    model = LogisticRegression(max_iter=2000, random_state=0).fit(x[:1500], y[:1500])
    graph = convert_sklearn(
        model,
        initial_types=[("x", FloatTensorType([None, 64]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "model.onnx").write_bytes(graph.SerializeToString())
    held_out = x[1500:1520]
    expected = {
        "inputs": held_out.tolist(),
        "labels": [int(v) for v in model.predict(held_out)],
    }
    (OUT.parent / "onnx-digits.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {OUT / 'model.onnx'} and {OUT.parent / 'onnx-digits.json'}")


if __name__ == "__main__":
    main()

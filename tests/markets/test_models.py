"""The served model: refused before loading when its files do not match the registered
digest; the scikit-learn, callable and ONNX plug-ins; inputs a model cannot take."""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from ailedger.errors import InvalidInput
from ailedger.markets.inference import ModelRefused, VerifiedModel, load_predictor, verified_model
from markets._helpers import Market

ONNX_MODEL = Path(__file__).parent / "data" / "onnx-digits"
ONNX_EXPECTED = Path(__file__).parent / "data" / "onnx-digits.json"


def test_sklearn_model_is_served_after_its_fingerprint_matched(market: Market) -> None:
    predictor = load_predictor(verified_model(market.model_dir, market.digest), "sklearn")
    assert predictor.predict(market.samples) == pytest.approx(
        pickle.loads((market.model_dir / "model.pkl").read_bytes()).predict(market.samples)
    )
    assert predictor.predict(market.samples[0]) == predictor.predict(market.samples[:1])


def test_a_changed_model_is_refused_before_it_is_unpickled(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    (market.model_dir / "model.pkl").write_bytes(pickle.dumps({"swapped": True}))
    loads: list[object] = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: loads.append(a))
    with pytest.raises(ModelRefused) as err:
        verified_model(market.model_dir, market.digest)
    assert err.value.code == "served-model-mismatch"
    assert "refusing to load" in str(err.value)
    assert loads == []


@pytest.mark.parametrize(
    "value",
    [
        [],
        [[]],
        "digits",
        [[1.0] * 63],
        [[1.0] * 64, [1.0] * 63],
        [[True] * 64],
        [["1"] * 64],
        [[float("inf")] + [0.0] * 63],
        [[0.0] * 64] * 5000,
    ],
)
def test_inputs_the_model_cannot_take_are_refused(market: Market, value: Any) -> None:
    predictor = load_predictor(verified_model(market.model_dir, market.digest), "sklearn")
    with pytest.raises(InvalidInput):
        predictor.predict(value)


def factory(model: VerifiedModel) -> Any:
    """A callable plug-in: the model file's length plus the sum of the input."""
    size = len(model.files["model.pkl"])
    return lambda value: size + sum(value)


def test_callable_plugin_gets_the_verified_model(market: Market) -> None:
    model = verified_model(market.model_dir, market.digest)
    predictor = load_predictor(model, "callable", f"{__name__}:factory")
    assert predictor.predict([1, 2]) == len(model.files["model.pkl"]) + 3
    with pytest.raises(InvalidInput, match="refused"):
        predictor.predict(None)  # TypeError inside the function: a refusal, not a crash
    with pytest.raises(InvalidInput, match="module:function"):
        load_predictor(model, "callable", "no-colon")
    with pytest.raises(InvalidInput, match="unknown plug-in"):
        load_predictor(model, "tensorflow")


def test_onnx_plugin(tmp_path: Path) -> None:
    """The committed digits graph (scripts/make_onnx_model.py) answers as scikit-learn did."""
    pytest.importorskip("onnxruntime")
    from ailedger.fingerprint.model import fingerprint_model

    shutil.copytree(ONNX_MODEL, tmp_path / "model")
    path = tmp_path / "model"
    model = verified_model(path, fingerprint_model(path, tensors=False).subject_digest)
    predictor = load_predictor(model, "onnx")
    assert predictor.kind == "onnx"
    expected = json.loads(ONNX_EXPECTED.read_text())
    assert predictor.predict(expected["inputs"]) == expected["labels"]
    assert predictor.predict(expected["inputs"][0]) == expected["labels"][:1]
    for bad in ([[1.0] * 63], [["x"] * 64], {"rows": 1}):
        with pytest.raises(InvalidInput):
            predictor.predict(bad)
    # a changed graph is refused before onnxruntime reads it
    (path / "model.onnx").write_bytes((path / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ModelRefused):
        verified_model(path, model.subject_digest)


def test_onnx_plugin_without_onnxruntime_says_what_to_install(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    model = verified_model(market.model_dir, market.digest)
    with pytest.raises(InvalidInput, match="needs onnxruntime") as err:
        load_predictor(model, "onnx")
    assert err.value.hint == "pip install onnxruntime"

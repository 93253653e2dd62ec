"""What a provider serves: a model whose files are checked against its fingerprint first.

:func:`verified_model` fingerprints the model (a file or a directory, OpenSSF model-signing
manifest) and reads its files only if the subject digest is the registered one; the bytes
read are checked again against the manifest, so what a plug-in loads is what was hashed
(no window to swap a file between check and load). Then a plug-in turns the verified bytes
into a :class:`Predictor`:

- ``sklearn``: a pickled scikit-learn estimator (the model is one ``.pkl`` file, or a
  directory with ``model.pkl``); input: a list of feature rows (or one row); output: the
  list of ``predict`` results;
- ``onnx``: an ONNX graph (one ``.onnx`` file, or ``model.onnx``) run by onnxruntime (the
  optional extra ``ailedger[onnx]``: onnxruntime); input: rows of floats for the first input;
  output: the first output as lists;
- ``callable``: ``module:function``, a factory called once with the :class:`VerifiedModel`
  that returns the predict function (JSON in, JSON out). Only the model's files are
  fingerprinted, not the module: pin the code by registering it as part of the model.

A predictor raises :class:`~ailedger.errors.InvalidInput` on input it cannot take; the
provider answers 422 and charges nothing. :func:`answer` is how the provider and the
verifiers run a predictor: any exception of the model, and an output with no JSON form
(NaN, infinity, an object that is not JSON), is such a refusal, found before anything is
charged; numpy values and tuples become the plain JSON values the consumer receives.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import math
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ailedger._extras import require_sklearn
from ailedger.errors import InvalidInput, NotFound, VerificationFailed
from ailedger.fingerprint.model import fingerprint_model

__all__ = [
    "PLUGINS",
    "CallablePredictor",
    "ModelRefused",
    "OnnxPredictor",
    "Predictor",
    "SklearnPredictor",
    "VerifiedModel",
    "answer",
    "load_predictor",
    "verified_model",
]

PLUGINS = ("callable", "onnx", "sklearn")
_MAX_ROWS = 4096
_MAX_FEATURES = 65536
_log = logging.getLogger(__name__)


class ModelRefused(VerificationFailed):
    """The model files do not hash to the registered digest: refused before loading."""

    exit_code = 1
    default_code = "served-model-mismatch"


@dataclass(frozen=True)
class VerifiedModel:
    """A model's subject digest and the bytes of its files (by manifest name; a single-file
    model is named ``.``), read once and checked against the fingerprint."""

    path: Path
    subject_digest: bytes
    files: Mapping[str, bytes]

    def file(self, *candidates: str, suffix: str) -> tuple[str, bytes]:
        """The model file: the single file, or the first of ``candidates``, or the only one
        ending in ``suffix``."""
        if "." in self.files:
            return self.path.name, self.files["."]
        for name in candidates:
            if name in self.files:
                return name, self.files[name]
        matching = [n for n in self.files if n.endswith(suffix)]
        if len(matching) == 1:
            return matching[0], self.files[matching[0]]
        raise InvalidInput(
            f"{self.path}: expected one {suffix} file or {' or '.join(candidates)}, "
            f"found {len(matching)} {suffix} files"
        )


def verified_model(path: Path, expected: bytes) -> VerifiedModel:
    """The model at ``path`` if its subject digest is ``expected`` (32 bytes); else
    :class:`ModelRefused`, before a byte of it is unpickled or parsed."""
    fp = fingerprint_model(path, tensors=False)
    if fp.subject_digest != expected:
        raise ModelRefused(
            f"{path}: the model's subject digest is sha256:{fp.subject_digest.hex()}, the "
            f"registered version's is sha256:{expected.hex()}; refusing to load it",
            hint="serve the files that were registered, or register this model as a new version",
        )
    files: dict[str, bytes] = {}
    for resource in fp.resources:
        if resource.algorithm != "sha256" or ":" in resource.name:
            raise InvalidInput(f"{path}: only whole-file sha256 manifests are served")
        target = path if resource.name == "." else path / resource.name
        try:
            blob = target.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{target} disappeared while it was being verified") from None
        if hashlib.sha256(blob).digest() != resource.digest:
            raise ModelRefused(f"{target} changed while it was being verified")
        files[resource.name] = blob
    return VerifiedModel(path, fp.subject_digest, files)


class Predictor(ABC):
    """A loaded model: JSON input in, JSON output out."""

    #: Which plug-in loaded it (``sklearn``, ``onnx``, ``callable``).
    kind: str

    @abstractmethod
    def predict(self, value: Any) -> Any:
        """The output for ``value``; :class:`InvalidInput` for input the model cannot take."""


def _rows(value: Any, width: int | None) -> list[list[float]]:
    """``value`` as a non-empty list of equally long rows of finite numbers."""
    if isinstance(value, list) and value and not isinstance(value[0], list):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > _MAX_ROWS:
        raise InvalidInput(f"input must be a row of numbers or 1..{_MAX_ROWS} rows")
    n = len(value[0]) if isinstance(value[0], list) else -1
    for row in value:
        if not isinstance(row, list) or len(row) != n or not 0 < n <= _MAX_FEATURES:
            raise InvalidInput("input rows must be lists of numbers, all of the same length")
        for x in row:
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise InvalidInput("input rows must hold finite numbers only")
    if width is not None and n != width:
        raise InvalidInput(f"the model takes rows of {width} features, not {n}")
    return value


def _plain(value: Any) -> Any:
    """numpy results as JSON values (ints, floats, strings, lists)."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class SklearnPredictor(Predictor):
    """A pickled scikit-learn estimator (unpickled from verified bytes only)."""

    kind = "sklearn"

    def __init__(self, model: VerifiedModel) -> None:
        require_sklearn("the sklearn plug-in serves a scikit-learn model")
        name, blob = model.file("model.pkl", suffix=".pkl")
        try:
            estimator = pickle.load(io.BytesIO(blob))  # verified bytes only
        except Exception as exc:
            raise InvalidInput(f"{model.path}/{name} does not unpickle: {exc}") from None
        if not callable(getattr(estimator, "predict", None)):
            raise InvalidInput(f"{model.path}/{name} is not an estimator with predict")
        self.estimator = estimator
        width = getattr(estimator, "n_features_in_", None)
        self.width = None if width is None else int(width)

    def predict(self, value: Any) -> Any:
        import numpy as np
        import sklearn

        rows = np.asarray(_rows(value, self.width), dtype=np.float64)
        try:
            # _rows checked every value is finite: skip scikit-learn's second scan
            with sklearn.config_context(assume_finite=True):
                return _plain(self.estimator.predict(rows))
        except ValueError as exc:
            raise InvalidInput(f"the model refused the input: {exc}") from None


class OnnxPredictor(Predictor):
    """An ONNX graph run by onnxruntime (CPU), its first input fed float32 rows."""

    kind = "onnx"

    def __init__(self, model: VerifiedModel) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise InvalidInput(
                "the onnx plug-in needs onnxruntime, which is not installed",
                hint="pip install onnxruntime",
            ) from None
        _, blob = model.file("model.onnx", suffix=".onnx")
        try:
            self.session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidInput(f"{model.path}: not an ONNX model onnxruntime runs: {exc}") from None
        first = self.session.get_inputs()[0]
        self.input_name = str(first.name)
        width = first.shape[-1] if first.shape else None
        self.width = width if isinstance(width, int) else None

    def predict(self, value: Any) -> Any:
        import numpy as np

        rows = np.asarray(_rows(value, self.width), dtype=np.float32)
        try:
            outputs = self.session.run(None, {self.input_name: rows})
        except Exception as exc:
            raise InvalidInput(f"the model refused the input: {exc}") from None
        return _plain(outputs[0])


class CallablePredictor(Predictor):
    """``module:function``: a factory given the verified model, returning predict."""

    kind = "callable"

    def __init__(self, model: VerifiedModel, target: str) -> None:
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise InvalidInput(f"--callable {target!r}: expected module:function")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise NotFound(f"--callable {target!r}: {exc}") from None
        function = factory(model)
        if not callable(function):
            raise InvalidInput(f"--callable {target!r} did not return a function")
        self.function: Callable[[Any], Any] = function

    def predict(self, value: Any) -> Any:
        try:
            return self.function(value)
        except InvalidInput:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise InvalidInput(f"the model refused the input: {exc}") from None


def load_predictor(model: VerifiedModel, plugin: str, target: str | None = None) -> Predictor:
    """Load ``model`` with ``plugin`` (one of :data:`PLUGINS`)."""
    if plugin == "sklearn":
        return SklearnPredictor(model)
    if plugin == "onnx":
        return OnnxPredictor(model)
    if plugin == "callable":
        if target is None:
            raise InvalidInput("the callable plug-in needs --callable module:function")
        return CallablePredictor(model, target)
    raise InvalidInput(f"unknown plug-in {plugin!r}: use {', '.join(PLUGINS)}")


def _finite(value: Any) -> bool:
    """Whether ``value`` (JSON-like, numpy arrays and scalars included) holds no NaN or
    infinity (no recursion: orjson already refused anything nested too deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif type(item).__module__ == "numpy":
            import numpy as np

            array = np.asarray(item)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                return False
            if array.dtype.kind == "O":
                stack.extend(array.ravel().tolist())
    return True


def answer(predictor: Predictor, value: Any) -> tuple[Any, bytes]:
    """``predictor``'s output for ``value`` as the plain JSON value a consumer receives, and
    its JSON text (the value is what the text parses back to: numpy arrays and scalars,
    tuples, all as JSON). :class:`InvalidInput` when the model raises (its traceback goes
    to the log, not to the caller) or its output has no JSON form (NaN, infinity, an object
    orjson cannot write)."""
    try:
        output = predictor.predict(value)
    except InvalidInput:
        raise
    except Exception:
        _log.exception("the model raised on an input (refused as InvalidInput)")
        raise InvalidInput("the model failed on this input") from None
    try:
        text = orjson.dumps(output, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:  # orjson.JSONEncodeError: not JSON, or nested too deeply
        raise InvalidInput(f"the model's output has no JSON form ({exc})") from None
    if not _finite(output):  # orjson writes NaN and infinity as null
        raise InvalidInput("the model's output holds NaN or infinity (no JSON form)")
    return orjson.loads(text), text

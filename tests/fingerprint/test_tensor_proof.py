"""Tensor proof documents: round trips, strict parsing, tampering, re-hashing from disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from _profiles import examples
from ailedger.errors import AiledgerError, FormatError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint._safetensors import read_header
from ailedger.fingerprint.model import (
    HashingConfig,
    ModelFingerprint,
    TensorLeaf,
    fingerprint_model,
)
from ailedger.fingerprint.proofs import (
    TENSOR_PROOF_TYPE,
    TensorProof,
    load_proof,
    prove_tensor,
    verify_proof,
)

_settings = settings(max_examples=examples(30))
_DTYPES = [np.float32, np.float16, np.int8, np.int64, np.uint8]

tensor_st = st.tuples(
    st.sampled_from(_DTYPES),
    st.lists(st.integers(0, 4), max_size=3),  # shape (zero-size tensors too)
    st.integers(0, 2**32 - 1),  # seed of the values
)
model_st = st.tuples(
    # file -> tensor name -> (dtype, shape, seed); one file and single=True: a file model
    st.lists(
        st.dictionaries(
            st.text("abcxyz._", min_size=1, max_size=6), tensor_st, min_size=1, max_size=5
        ),
        min_size=1,
        max_size=3,
    ),
    st.booleans(),  # a single .safetensors file as the model
    st.sampled_from(["sha256", "blake3"]),
    st.integers(0, 10**6),  # which tensor
)


def _array(dtype: Any, shape: list[int], seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 100, size=shape).astype(dtype)


@contextmanager
def _model(files: list[dict[str, tuple[Any, list[int], int]]], single: bool) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "m"
        root.mkdir()
        for i, tensors in enumerate(files):
            arrays = {name: _array(*spec) for name, spec in tensors.items()}
            save_file(arrays, str(root / f"model-{i}.safetensors"))
        (root / "config.json").write_text("{}")
        yield root / "model-0.safetensors" if single else root


def _pick(fp: ModelFingerprint, pick: int) -> TensorLeaf:
    assert fp.tensor_leaves
    return fp.tensor_leaves[pick % len(fp.tensor_leaves)]


def _fingerprint(model: tuple[Any, bool, str, int], path: Path) -> ModelFingerprint:
    return fingerprint_model(path, HashingConfig(algorithm=model[2]))  # type: ignore[arg-type]


@given(model=model_st)
@_settings
def test_every_tensor_proof_round_trips_and_verifies(model: tuple[Any, bool, str, int]) -> None:
    files, single, _, pick = model
    with _model(files, single) as path:
        fp = _fingerprint(model, path)
        leaf = _pick(fp, pick)
        proof = prove_tensor(fp, leaf.name, file=leaf.file)
        doc = json.loads(json.dumps(proof.to_dict()))
        assert doc["type"] == TENSOR_PROOF_TYPE
        assert load_proof(doc) == proof
        assert proof.tensor == leaf
        pinned = {"expected_root": fp.tensor_root, "expected_subject": fp.subject_digest}
        check = verify_proof(load_proof(doc), **pinned)  # type: ignore[arg-type]
        assert (check.kind, check.root, check.record_checked) == (
            "model-tensor",
            fp.tensor_root,
            False,
        )
        assert verify_proof(proof, model=path, **pinned).record_checked
        file = path if leaf.file == "." else path / leaf.file
        data = load_file(str(file))[leaf.name].tobytes()
        assert verify_proof(proof, record=data).record_checked
        assert _fails(proof, record=data + b"\0")
        if data:
            assert _fails(proof, record=bytes([data[0] ^ 1]) + data[1:])
    assert (leaf.file == ".") == single


def _fails(proof: TensorProof, **kw: Any) -> bool:
    try:
        verify_proof(proof, **kw)
    except ProofInvalid:
        return True
    return False


@given(model=model_st, position=st.integers(0, 10**6), byte=st.integers(0, 255))
@_settings
def test_byte_changes_in_the_document_fail_or_change_nothing(
    model: tuple[Any, bool, str, int], position: int, byte: int
) -> None:
    files, single, _, pick = model
    with _model(files, single) as path:
        fp = _fingerprint(model, path)
    leaf = _pick(fp, pick)
    text = json.dumps(prove_tensor(fp, leaf.name, file=leaf.file).to_dict(), indent=1).encode()
    raw = bytearray(text)
    raw[position % len(raw)] = byte
    try:
        doc = json.loads(bytes(raw))
        verify_proof(
            load_proof(doc), expected_root=fp.tensor_root, expected_subject=fp.subject_digest
        )
    except (ValueError, AiledgerError):
        return
    original = json.loads(text)
    # The model name is a label (model-signing's subject name is not in any digest either).
    doc["model"].pop("name", None)
    original["model"].pop("name")
    assert doc == original, "a changed document still verified"


def _other_values(leaf: TensorLeaf) -> list[TensorLeaf]:
    other_digest = hashlib.sha256(leaf.digest).digest()
    return [
        dataclasses.replace(leaf, file=leaf.file + "x"),
        dataclasses.replace(leaf, name=leaf.name + "x"),
        dataclasses.replace(leaf, dtype="U8" if leaf.dtype != "U8" else "I8"),
        dataclasses.replace(leaf, shape=(*leaf.shape, 1)),
        dataclasses.replace(leaf, shape=leaf.shape[:-1] if leaf.shape else (1,)),
        dataclasses.replace(leaf, algorithm="blake3" if leaf.algorithm == "sha256" else "sha256"),
        dataclasses.replace(leaf, digest=other_digest),
    ]


@given(model=model_st)
@_settings
def test_tampered_leaf_fields_fail(model: tuple[Any, bool, str, int]) -> None:
    files, single, _, pick = model
    with _model(files, single) as path:
        fp = _fingerprint(model, path)
    leaf = _pick(fp, pick)
    proof = prove_tensor(fp, leaf.name, file=leaf.file)
    for other in _other_values(leaf):
        assert _fails(dataclasses.replace(proof, tensor=other)), other
    inc = proof.inclusion
    moved = [
        dataclasses.replace(inc, leaf_index=inc.leaf_index ^ 1),
        dataclasses.replace(inc, tree_size=inc.tree_size + 1),
        dataclasses.replace(inc, root=hashlib.sha256(inc.root).digest()),
    ]
    for bad in moved:
        if bad.leaf_index < bad.tree_size:
            assert _fails(dataclasses.replace(proof, inclusion=bad)), bad
    ref = proof.model
    assert _fails(proof, expected_root=hashlib.sha256(ref.tensor_root).digest())
    assert _fails(proof, expected_subject=hashlib.sha256(ref.subject_digest).digest())


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "m"
    root.mkdir()
    save_file(
        {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.int8)},
        str(root / "a.safetensors"),
    )
    save_file({"w": np.zeros((2, 2), np.float16)}, str(root / "sub.safetensors"))
    return root


def test_the_tensor_on_disk_is_rehashed(model_dir: Path) -> None:
    fp = fingerprint_model(model_dir)
    proof = prove_tensor(fp, "b")
    assert proof.verify(model_path=model_dir)
    path = model_dir / "a.safetensors"
    with path.open("rb") as f:
        header = read_header(f)
    w = next(t for t in header.tensors if t.name == "w")
    data = bytearray(path.read_bytes())
    data[w.begin] ^= 1  # tensor "w" changes, "b" does not
    path.write_bytes(bytes(data))
    assert proof.verify(model_path=model_dir)
    other = prove_tensor(fp, "w", file="a.safetensors")
    with pytest.raises(ProofInvalid, match="on disk has another digest"):
        other.verify(model_path=model_dir)
    save_file({"b": np.ones(2, np.int8)}, str(path))
    with pytest.raises(ProofInvalid, match="another shape"):
        proof.verify(model_path=model_dir)
    save_file({"c": np.ones(4, np.int8)}, str(path))
    with pytest.raises(ProofInvalid, match="no tensor named 'b'"):
        proof.verify(model_path=model_dir)
    with pytest.raises(InvalidInput, match="is a file"):
        proof.verify(model_path=path)
    path.unlink()
    with pytest.raises(NotFound):
        proof.verify(model_path=model_dir)
    with pytest.raises(NotFound):
        proof.verify(model_path=model_dir / "absent")


def test_single_file_proofs_need_the_file(model_dir: Path) -> None:
    path = model_dir / "sub.safetensors"
    proof = prove_tensor(fingerprint_model(path), "w")
    assert proof.tensor.file == "."
    assert proof.verify(model_path=path)
    with pytest.raises(InvalidInput, match="single-file model"):
        proof.verify(model_path=model_dir)


def test_ambiguous_and_unknown_tensors(model_dir: Path) -> None:
    fp = fingerprint_model(model_dir)
    with pytest.raises(InvalidInput, match="several files"):
        prove_tensor(fp, "w")
    assert prove_tensor(fp, "w", file="sub.safetensors").tensor.dtype == "F16"
    with pytest.raises(InvalidInput, match="no tensor named"):
        prove_tensor(fp, "nope")
    with pytest.raises(InvalidInput, match="no tensor leaves"):
        prove_tensor(fingerprint_model(model_dir, tensors=False), "w")


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(doc))
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


_DELETE = object()


def test_strict_parsing(model_dir: Path) -> None:
    doc = prove_tensor(fingerprint_model(model_dir), "b").to_dict()
    assert TensorProof.from_dict(doc).to_dict() == doc
    digest = doc["tensor"]["digest"]
    bad = [
        (("extra",), 1, "unknown field"),
        (("model", "extra"), 1, "unknown field"),
        (("tensor", "extra"), 1, "unknown field"),
        (("inclusion", "extra"), 1, "unknown field"),
        (("model", "tensor_root"), _DELETE, "tensor_root"),
        (("model", "subject_digest"), "0x" + doc["model"]["subject_digest"], "not hex"),
        (("model", "tensor_count"), -1, "non-negative integer"),
        (("model", "tensor_count"), "3", "non-negative integer"),
        (("model", "hashing"), "sha257", "hashing identifier"),
        (("model", "hashing"), "sha256-sharded-0", "hashing identifier"),
        (("tensor", "digest"), digest.upper(), "lower-case hex"),
        (("tensor", "digest"), digest[:-2], "32 bytes"),
        (("tensor", "algorithm"), "md5", "algorithm"),
        (("tensor", "dtype"), "F128", "dtype"),
        (("tensor", "shape"), [1, -1], "shape"),
        (("tensor", "shape"), [True], "shape"),
        (("tensor", "shape"), "4", "shape"),
        (("tensor", "file"), "../a.safetensors", "relative model path"),
        (("tensor", "file"), "/etc/passwd", "relative model path"),
        (("tensor", "file"), "", "relative model path"),
        (("tensor", "name"), 3, "must be a string"),
        (("tensor",), [], "must be an object"),
        (("inclusion", "root"), doc["inclusion"]["root"].upper(), "lower-case"),
        (("inclusion", "algorithm"), "rfc9162-sha512", "tree algorithm"),
        (("type",), TENSOR_PROOF_TYPE + "x", "unknown proof type"),
    ]
    for path, value, message in bad:
        with pytest.raises(FormatError, match=message):
            load_proof(_set(doc, path, value))


def test_proofs_name_the_tensor_digest_and_older_proofs_still_verify(model_dir: Path) -> None:
    proof = prove_tensor(fingerprint_model(model_dir), "b")
    doc = proof.to_dict()
    assert (doc["model"]["hashing"], doc["model"]["tensor_algorithm"]) == ("sha256", "blake3")
    assert doc["tensor"]["algorithm"] == "blake3"
    assert verify_proof(load_proof(doc), model=model_dir).record_checked
    # a proof made before "tensor_algorithm" existed: SHA-256 tensors of a SHA-256 model
    fp = fingerprint_model(model_dir, tensor_algorithm="sha256")
    old = prove_tensor(fp, "b").to_dict()
    del old["model"]["tensor_algorithm"]
    loaded = load_proof(old)
    assert loaded.model.tensor_algorithm is None
    assert loaded.to_dict() == old
    pins = {"expected_root": fp.tensor_root, "expected_subject": fp.subject_digest}
    assert verify_proof(loaded, model=model_dir, **pins).record_checked  # type: ignore[arg-type]
    # but a BLAKE3 tensor in such a proof is not what the model's tensors were
    with pytest.raises(ProofInvalid, match="tensor digest is blake3"):
        verify_proof(load_proof(_set(doc, ("model", "tensor_algorithm"), _DELETE)))
    for value in ("md5", 3):
        with pytest.raises(FormatError, match=r"tensor_algorithm|tensor digest algorithm"):
            load_proof(_set(doc, ("model", "tensor_algorithm"), value))


def test_inconsistent_documents_are_invalid(model_dir: Path) -> None:
    proof = prove_tensor(fingerprint_model(model_dir), "b")
    ref = dataclasses.replace(proof.model, tensor_algorithm="sha256")
    with pytest.raises(ProofInvalid, match="tensor digest is blake3"):
        dataclasses.replace(proof, model=ref).verify()
    ref = dataclasses.replace(proof.model, tensor_algorithm=None)  # older proofs: the files'
    with pytest.raises(
        ProofInvalid, match="tensor digest is blake3, the model's tensors are sha256"
    ):
        dataclasses.replace(proof, model=ref).verify()
    ref = dataclasses.replace(proof.model, tensor_root=proof.inclusion.hashes[0])
    with pytest.raises(ProofInvalid, match="another tree"):
        dataclasses.replace(proof, model=ref).verify()
    ref = dataclasses.replace(proof.model, tensor_count=proof.model.tensor_count + 1)
    with pytest.raises(ProofInvalid, match="another tree"):
        dataclasses.replace(proof, model=ref).verify()
    odd = dataclasses.replace(proof.tensor, dtype="F4", shape=(3,))
    with pytest.raises(ProofInvalid, match="whole number of bytes"):
        dataclasses.replace(proof, tensor=odd).verify()
    with pytest.raises(InvalidInput, match="tensor proofs only"):
        verify_proof(proof.inclusion, model=model_dir)

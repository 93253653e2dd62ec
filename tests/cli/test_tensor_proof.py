"""``ailedger prove MODEL --tensor NAME`` and ``ailedger verify proof`` of tensor proofs, run
through the real entry point (errors become one line and an exit code)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from _cli import run_main as run
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.fingerprint.model import fingerprint_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, root)
    return root


def test_prove_and_verify_a_tensor_of_a_directory(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    fp = fingerprint_model(model)
    assert fp.tensor_root is not None
    proof = tmp_path / "p.json"
    code, out, err = run(
        capsys, "prove", model, "--tensor", "lm_head.weight", "--out", proof, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "model-tensor"
    assert summary["root"] == fp.tensor_root.hex()
    assert summary["subject_digest"] == fp.subject_digest.hex()
    assert (summary["file"], summary["tensor"]) == ("model.safetensors", "lm_head.weight")
    doc = json.loads(proof.read_text())
    assert doc["type"] == "https://ailedger.dev/model/tensor-proof/v1"
    assert set(doc) == {"type", "model", "tensor", "inclusion"}
    assert set(doc["tensor"]) == {"file", "name", "dtype", "shape", "algorithm", "digest"}
    code, out, _ = run(capsys, "verify", "proof", proof, "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["valid"], result["kind"], result["record_checked"]) == (
        True,
        "model-tensor",
        False,
    )
    pins = ["--root", fp.tensor_root.hex(), "--subject", fp.subject_digest.hex()]
    code, out, _ = run(capsys, "verify", "proof", proof, *pins, "--model", model)
    assert code == 0
    assert "valid model-tensor proof" in out
    assert "not checked" not in out
    # the subject digest as every other command prints it: sha256:HEX
    pins = ["--root", fp.tensor_root.hex(), "--subject", f"sha256:{fp.subject_digest.hex()}"]
    code, out, err = run(capsys, "verify", "proof", proof, *pins, "--model", model, "--json")
    assert code == 0, err
    assert json.loads(out)["not_checked"] == []
    code, _, err = run(capsys, "verify", "proof", proof, "--subject", "sha256:" + "ab" * 32)
    assert code == 1
    assert "expected " + "ab" * 32 in err
    raw = tmp_path / "t.bin"
    raw.write_bytes(load_file(str(model / "model.safetensors"))["lm_head.weight"].tobytes())
    code, out, _ = run(capsys, "verify", "proof", proof, "--record", raw, "--json")
    assert json.loads(out)["record_checked"] is True


def test_blake3_and_a_single_file(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    weights = model / "model.safetensors"
    proof = tmp_path / "p.json"
    args = ("prove", weights, "--tensor", "lm_head.weight", "--out", proof, "-a", "blake3")
    assert run(capsys, *args)[0] == 0
    doc = json.loads(proof.read_text())
    assert (doc["tensor"]["file"], doc["tensor"]["algorithm"]) == (".", "blake3")
    assert doc["model"]["hashing"] == "blake3"
    assert run(capsys, "verify", "proof", proof, "--model", weights)[0] == 0
    code, _, err = run(capsys, "verify", "proof", proof, "--model", model)
    assert code == 3
    assert "single-file model" in err


def test_verify_failures_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    proof = tmp_path / "p.json"
    assert run(capsys, "prove", model, "--tensor", "lm_head.weight", "--out", proof)[0] == 0
    text = proof.read_text()
    doc = json.loads(text)
    other = "ab" * 32
    for pin in ("--root", "--subject"):
        code, _, err = run(capsys, "verify", "proof", proof, pin, other)
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        assert "expected " + other in err
    digest = doc["tensor"]["digest"]
    flipped = digest[:-1] + ("0" if digest[-1] != "0" else "1")
    proof.write_text(text.replace(digest, flipped))
    code, _, err = run(capsys, "verify", "proof", proof)
    assert code == 1
    assert "do not hash to the proven leaf" in err
    proof.write_text(text.replace('"dtype": "F32"', '"dtype": "F16"'))
    assert run(capsys, "verify", "proof", proof)[0] == 1
    proof.write_text(text.replace('"type": "https://ailedger.dev/model/tensor-proof/v1",', ""))
    code, _, err = run(capsys, "verify", "proof", proof)
    assert code == 1
    assert "malformed proof" in err
    proof.write_text(text.replace('"tensor": {', '"tensor": {"note": 1, '))
    code, _, err = run(capsys, "verify", "proof", proof)
    assert (code, "unknown field" in err) == (1, True)
    proof.write_text(text)
    arrays = load_file(str(model / "model.safetensors"))
    arrays["lm_head.weight"] = arrays["lm_head.weight"] + np.float32(1)
    save_file(arrays, str(model / "model.safetensors"))
    code, _, err = run(capsys, "verify", "proof", proof, "--model", model)
    assert code == 1
    assert "on disk has another digest" in err
    assert run(capsys, "verify", "proof", proof)[0] == 0  # the proof alone still holds


def test_ambiguous_names_need_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    save_file({"w": np.ones(3, np.float32)}, str(root / "a.safetensors"))
    save_file({"w": np.zeros(3, np.float32)}, str(root / "b.safetensors"))
    proof = tmp_path / "p.json"
    code, _, err = run(capsys, "prove", root, "--tensor", "w", "--out", proof)
    assert code == 3
    assert "several files" in err
    code, out, _ = run(
        capsys, "prove", root, "--tensor", "w", "--file", "b.safetensors", "--out", proof, "--json"
    )
    assert (code, json.loads(out)["leaf_index"]) == (0, 1)
    assert run(capsys, "verify", "proof", proof, "--model", root)[0] == 0


def test_bad_options_and_inputs(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    proof = tmp_path / "p.json"
    bad: list[tuple[list[str | Path], int, str]] = [
        (["prove", model, "--tensor", "nope", "--out", proof], 3, "no tensor named"),
        (["prove", model, "--tensor", "lm_head.weight", "--index", "1", "--out", proof], 3, "drop"),
        (["prove", model, "--tensor", "x", "-a", "md5", "--out", proof], 3, "sha256 or blake3"),
        (["prove", model / "config.json", "--tensor", "x", "--out", proof], 3, ".safetensors"),
        (["prove", tmp_path / "absent", "--tensor", "x", "--out", proof], 4, "not found"),
        (["prove", SAMPLE_DATA / "events.jsonl", "--file", "a", "--out", proof], 3, "--tensor"),
    ]
    for args, code, message in bad:
        got, _, err = run(capsys, *args)
        assert (got, message in err) == (code, True), (args, err)
    assert not proof.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    code, _, err = run(capsys, "prove", empty, "--tensor", "x", "--out", proof)
    assert (code, "no safetensors tensors" in err) == (3, True)
    assert run(capsys, "prove", model, "--tensor", "lm_head.weight", "--out", proof)[0] == 0
    code, _, err = run(capsys, "verify", "proof", proof, "--subject", "xyz")
    assert (code, "--subject is not hex" in err) == (3, True)
    code, _, err = run(capsys, "verify", "proof", proof, "--model", tmp_path / "absent")
    assert code == 4
    inclusion = tmp_path / "inc.json"
    inclusion.write_text(json.dumps(json.loads(proof.read_text())["inclusion"]))
    code, _, err = run(capsys, "verify", "proof", inclusion, "--model", model)
    assert (code, "tensor proofs only" in err) == (3, True)

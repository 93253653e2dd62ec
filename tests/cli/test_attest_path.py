"""``attest dataset|model --subject PATH`` (issue 11, item 8): the path is fingerprinted and
fills the predicate's computed fields; the user gives only what the tool cannot compute, and
a given field that says otherwise than the path is an error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from _cli import PASSWORD, fails, ok, run
from _workflow_util import Setup
from ailedger.attest.dsse import Envelope
from ailedger.errors import InvalidInput, NotFound

TRAINING = ["--set", "training.team=vision", "--set", "training.code_revision=abc123"]


@pytest.fixture
def logged(setup: Setup) -> Setup:
    """The workflow workspace with a log key, so ``attest --receipt`` can sign checkpoints."""
    setup.store.create("logkey", PASSWORD)
    return setup


def _statement(envelope: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Envelope.from_json(envelope.read_bytes()).payload)
    return doc


def _attest(kind: str, path: Path, *args: object) -> dict[str, Any]:
    out = path.with_name(path.name + ".dsse.json")
    ok(["attest", kind, "--subject", path, "--key", "trainer", "--out", out,
        "--receipt", f"{out}.receipt", "--log-key", "logkey", *args])  # fmt: skip
    return _statement(out)


def test_model_directory_fills_the_manifest_and_verifies(logged: Setup) -> None:
    setup = logged
    statement = _attest("model", setup.model, *TRAINING)
    predicate = statement["predicate"]
    manifest = ok(["fingerprint", "model", setup.model])
    assert {r["name"] for r in predicate["resources"]} == {r["name"] for r in manifest["resources"]}
    assert predicate["resources"] == manifest["resources"]
    assert predicate["subject_digest"] == manifest["subject"]["digest"]["sha256"]
    assert predicate["tensor_root"] == manifest["tensors"]["root"]
    assert predicate["hashing"] == "sha256"
    assert predicate["training"] == {
        "dataset_roots": [],
        "code_revision": "abc123",
        "hyperparameters": {},
        "team": "vision",
    }
    assert predicate["location"] == setup.model.resolve().as_uri()
    assert statement["subject"] == [
        {"name": "model", "digest": {"sha256": predicate["subject_digest"]}}
    ]
    receipt = setup.model.with_name("model.dsse.json.receipt")
    assert ok(["verify", "receipt", receipt, "--artifact", setup.model])["ok"] is True
    # a changed model no longer matches the receipt
    (setup.model / "config.json").write_text('{"changed": true}')
    fails(["verify", "receipt", receipt, "--artifact", setup.model], 1, "artifact")


def test_model_file_names_the_file_digest_too(logged: Setup) -> None:
    setup = logged
    weights = setup.model / "model.safetensors"
    statement = _attest("model", weights)
    file_sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert statement["predicate"]["resources"] == [
        {"name": ".", "algorithm": "sha256", "digest": file_sha256}  # model-signing names it "."
    ]
    digests = [s["digest"]["sha256"] for s in statement["subject"]]
    assert digests == [statement["predicate"]["subject_digest"], file_sha256]
    receipt = weights.with_name("model.safetensors.dsse.json.receipt")
    assert ok(["verify", "receipt", receipt, "--artifact", weights])["ok"] is True


def test_csv_fills_the_dataset_fields_as_dataset_register_does(logged: Setup) -> None:
    setup = logged
    statement = _attest("dataset", setup.data)
    predicate = statement["predicate"]
    data_sha256 = hashlib.sha256(setup.data.read_bytes()).hexdigest()
    assert statement["subject"] == [{"name": "patients.csv", "digest": {"sha256": data_sha256}}]
    # salted by default, with the same secret file as `fingerprint dataset`
    assert predicate["scheme"] != "unsalted-v1"
    fingerprint = ok(["fingerprint", "dataset", setup.data, "--no-index"])
    assert (predicate["root"], predicate["size"]) == (fingerprint["root"], fingerprint["size"])
    registered = ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
                     "--key", "trainer"])["predicate"]  # fmt: skip
    assert predicate == registered  # the same fields, computed the same way
    receipt = setup.data.with_name("patients.csv.dsse.json.receipt")
    assert ok(["verify", "receipt", receipt, "--artifact", setup.data])["ok"] is True
    other = setup.root / "other.csv"
    other.write_text("id,label\n1,a\n")
    fails(["verify", "receipt", receipt, "--artifact", other], 1, "not a subject")


@pytest.mark.usefixtures("logged")
def test_dataset_reading_options_change_the_fields(tmp_path: Path) -> None:
    csv = tmp_path / "notes.csv"
    csv.write_text("# exported 2026-12-04\nid,label\n1,a\n2,b\n")
    secret = tmp_path / "salt"
    secret.write_text("s" * 32 + "\n")
    plain = _attest("dataset", csv, "--skip-lines", "1", "--unsalted")["predicate"]
    assert plain["size"] == 2
    assert plain["scheme"] == "unsalted-v1"
    salted = _attest("dataset", csv, "--skip-lines", "1", "--salt-secret", secret)["predicate"]
    assert salted["scheme"] != plain["scheme"]
    assert salted["root"] != plain["root"]
    fingerprint = ok(["fingerprint", "dataset", csv, "--skip-lines", "1", "--salt-secret",
                      secret, "--no-index"])  # fmt: skip
    assert salted["root"] == fingerprint["root"]
    headless = _attest("dataset", csv, "--skip-lines", "1", "--no-header", "--unsalted")
    headless = headless["predicate"]
    assert headless["size"] == 3
    assert headless["metadata_hash"] != plain["metadata_hash"]


def test_given_fields_must_agree_with_the_path(logged: Setup) -> None:
    setup = logged
    fingerprint = ok(["fingerprint", "dataset", setup.data, "--no-index"])
    size_before = ok(["log", "show"])["size"]
    # the same values, even as text, are accepted; the user's location is kept
    statement = _attest("dataset", setup.data, "--set", f"size={fingerprint['size']}",
                        "--set", f"root={fingerprint['root']}", "--set",
                        "location=s3://bucket/patients.csv")  # fmt: skip
    assert statement["predicate"]["location"] == "s3://bucket/patients.csv"
    assert ok(["log", "show"])["size"] == size_before + 1
    base = ["attest", "dataset", "--subject", setup.data, "--key", "trainer"]
    result = run([*base, "--set", f"size={fingerprint['size'] + 1}"])
    assert result.exit_code == InvalidInput.exit_code, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: dataset predicate field 'size' is given as"), first
    assert str(fingerprint["size"]) in first
    assert "Traceback" not in result.output
    fails([*base, "--set", "format=jsonl"], 3, "field 'format'")
    fails([*base, "--set", "root=" + "00" * 32], 3, "field 'root'")
    fails([*base, "--set", "size=many"], 3, "field 'size'")
    assert ok(["log", "show"])["size"] == size_before + 1  # nothing appended


def test_a_stale_manifest_conflicts_with_the_model(logged: Setup, tmp_path: Path) -> None:
    setup = logged
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(ok(["fingerprint", "model", setup.model])))
    base = ["attest", "model", "--subject", setup.model, "--key", "trainer", "--no-log"]
    assert run([*base, "--predicate", manifest]).exit_code == 0
    (setup.model / "config.json").write_text('{"retrained": true}')
    fails([*base, "--predicate", manifest], 3, "field 'resources[1].digest'")  # config.json
    fails([*base, "--set", "subject_digest=" + "ab" * 32], 3, "field 'subject_digest'")


def test_missing_path_and_misused_options(logged: Setup) -> None:
    setup = logged
    missing = setup.root / "gone"
    result = run(["attest", "model", "--subject", missing, "--key", "trainer"])
    assert result.exit_code == NotFound.exit_code, result.output
    assert "gone" in result.stderr.splitlines()[0]
    fails(["attest", "dataset", "--subject", missing, "--key", "trainer"], 4, "gone")
    fails(["attest", "model", "--subject", setup.model, "--subject", setup.model / "config.json",
           "--key", "trainer"], 3, "one --subject PATH")  # fmt: skip
    fails(["attest", "model", "--subject", setup.model, "--skip-lines", "2", "--key", "trainer"],
          3, "--skip-lines applies to `attest dataset")  # fmt: skip
    fails(["attest", "dataset", "--subject", setup.data, "--format", "csv", "--no-cache",
           "--key", "trainer"], 3, "--no-cache applies to `attest model")  # fmt: skip
    fails(["attest", "dataset", "--subject", "sha256:" + "00" * 32, "--format", "csv",
           "--key", "trainer"], 3, "--format applies")  # fmt: skip
    fails(["attest", "dataset", "--subject", setup.data, "--salt-secret", missing,
           "--key", "trainer"], 4, "gone")  # fmt: skip


def test_digest_subjects_still_take_every_field_from_the_user(logged: Setup) -> None:
    setup = logged
    digest = "sha256:" + hashlib.sha256(setup.data.read_bytes()).hexdigest()
    fails(["attest", "dataset", "--subject", digest, "--key", "trainer"], 3, "field 'root'")
    sets = ["--set", "root=" + "11" * 32, "--set", "size=3", "--set", "scheme=unsalted-v1",
            "--set", "format=csv"]  # fmt: skip
    doc = ok(["attest", "dataset", "--subject", digest, *sets, "--key", "trainer", "--no-log"])
    assert json.loads(Envelope.from_dict(doc["envelope"]).payload)["predicate"]["size"] == 3

"""The small commands the README walkthrough leans on: `demo samples`, `keys show --address`
and `verify proof --registered`."""

from __future__ import annotations

import json
from pathlib import Path

from _cli import fails, ok, run
from _workflow_util import Setup
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL


def test_demo_samples_copies_the_model_and_the_datasets(tmp_path: Path) -> None:
    out = tmp_path / "here"
    doc = ok(["demo", "samples", out])
    assert doc["model"] == str(out / "model")
    assert sorted(Path(p).name for p in doc["data"]) == ["events.jsonl", "patients.csv"]
    for name in ("model.safetensors", "config.json"):
        assert (out / "model" / name).read_bytes() == (SAMPLE_MODEL / name).read_bytes()
    assert (out / "data" / "patients.csv").read_bytes() == (
        SAMPLE_DATA / "patients.csv"
    ).read_bytes()
    assert not any(p.name.endswith("ailedger-index") for p in (out / "data").iterdir())
    fails(["demo", "samples", out], 10, "exists already")  # never overwrites


def test_keys_show_address(setup: Setup) -> None:
    result = run(["keys", "show", "qa", "--address"])
    assert result.exit_code == 0, result.output
    assert result.stdout == setup.store.info("qa").keyid + "\n"
    setup.store.create("p", "s3cret-pass", keytype="p256")
    fails(["keys", "show", "p", "--address"], 3, "only secp256k1 keys have an address")


def test_verify_proof_against_what_was_registered(setup: Setup, tmp_path: Path) -> None:
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    proof = tmp_path / "p.json"
    ok(["prove", setup.data, "--index", "42", "--out", proof])
    checked = ok(["verify", "proof", proof, "--registered", "patients@1"])
    assert checked["root_checked"] is True
    assert checked["size_checked"] is True  # the dataset statement records the size too
    fails(["verify", "proof", proof, "--registered", "patients@1", "--size", "7"], 3,
          "--size differs from what patients@1 registered")  # fmt: skip
    # a proof from a dataset other than the registered one fails against it
    other = tmp_path / "other.csv"
    other.write_text(setup.data.read_text().replace("\n1,", "\n999,", 1))
    stranger = tmp_path / "q.json"
    ok(["prove", other, "--index", "42", "--out", stranger, "--unsalted"])
    fails(["verify", "proof", stranger, "--registered", "patients@1"], 1, "root")
    fails(["verify", "proof", proof, "--registered", "patients@1", "--root", "ab" * 32], 3,
          "differs from what patients@1 registered")  # fmt: skip
    fails(["verify", "proof", proof, "--registered", "nope@1"], 4, "unknown dataset")
    # a tensor proof is checked against the registered model's subject digest
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
        "--key", "trainer"])  # fmt: skip
    tensor = tmp_path / "t.json"
    doc = json.loads(run(["prove", setup.model, "--tensor", "lm_head.weight", "--out", tensor,
                          "--json"]).stdout)  # fmt: skip
    assert doc
    checked = ok(["verify", "proof", tensor, "--registered", "triage@1.0", "--model",
                  setup.model])  # fmt: skip
    assert "subject: pass --subject sha256:HEX" not in checked["not_checked"]

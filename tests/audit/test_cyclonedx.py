"""The CycloneDX 1.6 ML-BOM of a model version, validated by cyclonedx-python-lib's schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from _cli import fails, ok, run
from _workflow_util import Setup
from ailedger.audit.cyclonedx import ml_bom
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.policy import parse_policy
from ailedger.registry.provenance import record_provenance

REF = VersionRef("triage", "1")
OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def assert_valid(bom: dict[str, Any]) -> None:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    assert errors is None, errors


def _props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def _full(setup: Setup) -> dict[str, Any]:
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    (setup.root / "extra.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        reg.register_dataset(setup.root / "extra.jsonl", VersionRef("extra", "2"), trainer)
        reg.register_model(
            setup.model,
            REF,
            trainer,
            datasets=[VersionRef("patients", "1"), VersionRef("extra", "2")],
            params={"lr": 0.01, "layers": [64, 32], "shuffle": True},
            code_revision="abc",
        )
        record_provenance(reg, REF, trainer)
        acc = record_evaluation("accuracy", {"accuracy": 0.5}, ["accuracy>=0.9"])
        reg.record_evaluation(REF, acc, trainer)
        acc = record_evaluation("accuracy", {"accuracy": 0.93, "f1": 0.9}, ["accuracy>=0.9"])
        reg.record_evaluation(REF, acc, trainer)
        bias = record_evaluation("bias-audit", {"accuracy_gap": 0.03}, ["accuracy_gap<=0.05"])
        reg.record_evaluation(REF, bias, trainer)
        reg.approve(REF, "qa", qa, comment="ok")
        reg.deploy(REF, "prod", trainer, OPEN)
        when = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        serial = uuid.UUID(int=7)
        return ml_bom(reg, REF, timestamp=when, serial_number=serial)


def test_bom_with_two_datasets_an_evaluation_and_a_bias_audit(setup: Setup) -> None:
    bom = _full(setup)
    assert_valid(bom)
    assert (bom["specVersion"], bom["serialNumber"]) == ("1.6", f"urn:uuid:{uuid.UUID(int=7)}")
    assert bom["metadata"]["timestamp"] == "2026-12-04T12:00:00Z"
    model, patients, extra = bom["components"]
    with setup.registry() as reg:
        row = reg.model(REF)
        data_rows = [reg.dataset(VersionRef(*n.split("@"))) for n in ("patients@1", "extra@2")]
    assert model["type"] == "machine-learning-model"
    assert (model["name"], model["version"]) == ("triage", "1")
    assert model["hashes"] == [{"alg": "SHA-256", "content": row.digest[7:]}]
    assert {f["name"] for f in model["components"]} >= {"config.json", "model.safetensors"}
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [
        {"ref": "dataset:patients@1"},
        {"ref": "dataset:extra@2"},
    ]
    # the latest accuracy run only; the bias audit is a consideration, not a metric
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [
        {"type": "accuracy", "value": "0.93", "slice": "accuracy"},
        {"type": "f1", "value": "0.9", "slice": "accuracy"},
    ]
    fairness = card["considerations"]["fairnessAssessments"]
    assert len(fairness) == 1
    assert "bias-audit passed (accuracy_gap=0.03)" in fairness[0]["mitigationStrategy"]
    assert (
        card["considerations"]["ethicalConsiderations"][0]["mitigationStrategy"]
        == (fairness[0]["mitigationStrategy"])
    )
    card_props = _props(card)
    assert card_props["ailedger:hyperparameter:lr"] == "0.01"
    assert card_props["ailedger:hyperparameter:layers"] == "[64, 32]"
    assert card_props["ailedger:hyperparameter:shuffle"] == "true"
    assert card_props["ailedger:code-revision"] == "abc"
    props = _props(model)
    assert props["ailedger:log:registration"] == str(row.log_index)
    assert props["ailedger:log:slsaProvenance:0"] == str(row.log_index + 1)
    assert props["ailedger:log:origin"] == "example.com/workflow"
    assert "ailedger:log:approval:0" in props
    assert "ailedger:log:deployment:0" in props

    for component, data_row in zip((patients, extra), data_rows, strict=True):
        assert component["type"] == "data"
        assert component["bom-ref"] == f"dataset:{data_row.ref}"
        assert component["hashes"] == [{"alg": "SHA-256", "content": data_row.digest[7:]}]
        assert _props(component)["ailedger:merkleRoot"] == data_row.root
        assert _props(component)["ailedger:log:registration"] == str(data_row.log_index)
        assert component["data"][0]["contents"]["url"] == data_row.location
    assert _props(extra)["ailedger:records"] == "2"
    assert bom["dependencies"] == [
        {"ref": "model:triage@1", "dependsOn": ["dataset:patients@1", "dataset:extra@2"]},
        {"ref": "dataset:patients@1"},
        {"ref": "dataset:extra@2"},
    ]


def test_the_validator_can_fail(setup: Setup) -> None:
    bom = _full(setup)
    broken = json.loads(json.dumps(bom))
    broken["components"][0]["type"] = "model"  # not a CycloneDX component type
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None
    extra = json.loads(json.dumps(bom))
    extra["components"][1]["hashes"][0]["alg"] = "merkle"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(extra)) is not None


def test_a_model_without_lineage_data_still_gives_a_valid_bom(setup: Setup) -> None:
    with setup.registry() as reg:
        reg.register_model(setup.model, REF, setup.signer("trainer"))
        bom = ml_bom(reg, REF)
    assert_valid(bom)
    (model,) = bom["components"]
    assert "considerations" not in model.get("modelCard", {})
    assert "quantitativeAnalysis" not in model.get("modelCard", {})
    assert bom["dependencies"] == [{"ref": "model:triage@1", "dependsOn": []}]


def test_an_unregistered_root_and_a_failed_audit(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        reg.register_model(setup.model, REF, trainer, datasets=[VersionRef("patients", "1")])
        bias = record_evaluation("fairness", {"gap": 0.3}, ["gap<=0.05"])
        reg.record_evaluation(REF, bias, trainer)
        reg.index.db.execute("DELETE FROM versions WHERE kind = 'dataset'")
        bom = ml_bom(reg, REF)
        named = ml_bom(reg, REF, audit_names=["other"])
    assert_valid(bom)
    (_, data) = bom["components"]
    assert data["name"].startswith("unregistered dataset ")
    assert "hashes" not in data  # a Merkle root is not a file hash
    fairness = bom["components"][0]["modelCard"]["considerations"]["fairnessAssessments"]
    assert "fairness FAILED (gap=0.3)" in fairness[0]["mitigationStrategy"]
    # not named as an audit: reported as a plain metric
    card = named["components"][0]["modelCard"]
    assert "considerations" not in card
    assert card["quantitativeAnalysis"]["performanceMetrics"][0]["type"] == "gap"


def test_lineage_cli_formats(setup: Setup) -> None:
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
        "--key", "trainer", "--slsa"])  # fmt: skip
    result = run(["lineage", "triage@1", "--format", "cyclonedx"])
    assert result.exit_code == 0, result.output
    bom = json.loads(result.stdout)
    assert_valid(bom)
    written = ok(["lineage", "triage@1", "--format", "cyclonedx", "--out", "bom.json"])
    assert written == {"out": "bom.json", "format": "cyclonedx"}
    assert_valid(json.loads((setup.root / "bom.json").read_text()))
    assert "wrote l.json (json)" in run(["lineage", "triage@1", "--format", "json", "--out",
                                    "l.json"]).stdout  # fmt: skip
    doc = json.loads((setup.root / "l.json").read_text())
    assert doc["model"] == "triage@1"
    assert doc["provenance"][0]["build_type"].endswith("/training/v1")
    assert ok(["lineage", "triage@1"])["model"] == "triage@1"
    assert "provenance" in run(["lineage", "triage@1"]).stdout
    fails(["lineage", "triage@1", "--format", "spdx"], 3, "unknown --format")
    fails(["lineage", "triage@1", "--out", "x.json"], 3, "--out writes a document")
    assert ok(["lineage", "triage@1", "--format", "cyclonedx"])["bomFormat"] == "CycloneDX"


@pytest.mark.parametrize("audit", ["bias", "accuracy"])
def test_lineage_cli_audit_names(setup: Setup, audit: str) -> None:
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    ok(["eval", "record", "triage@1", "--name", "accuracy", "--metric", "accuracy=0.93",
        "--key", "trainer"])  # fmt: skip
    result = run(["lineage", "triage@1", "--format", "cyclonedx", "--audit-name", audit])
    card = json.loads(result.stdout)["components"][0]["modelCard"]
    assert ("considerations" in card) is (audit == "accuracy")


def test_shard_digests_are_not_listed_as_file_hashes() -> None:
    from ailedger.attest.predicates import ModelPredicate
    from ailedger.audit.cyclonedx import _files

    resources = [{"name": "w.bin:0:10", "digest": "01" * 32}]
    shards = ModelPredicate.model_validate(
        {"serialization": {"method": "shards", "shard_size": 10}, "resources": resources}
    )
    files = ModelPredicate.model_validate(
        {"serialization": {"method": "files"}, "resources": resources, "hashing": "sha256"}
    )
    assert _files("model:m@1", shards) == []
    assert _files("model:m@1", files)[0]["hashes"] == [{"alg": "SHA-256", "content": "01" * 32}]

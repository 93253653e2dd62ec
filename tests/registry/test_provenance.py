"""SLSA Provenance v1 of training runs: structure, the in-toto validator, signature, receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor as PbDescriptor
from in_toto_attestation.v1.statement import Statement as PbStatement

from _cli import fails, ok
from _workflow_util import Setup
from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import PREDICATES, predicate_types
from ailedger.attest.slsa import (
    MERKLE_ROOT_DIGEST,
    SLSA_PROVENANCE_TYPE,
    TRAINING_BUILD_TYPE,
    SlsaProvenancePredicate,
)
from ailedger.attest.statements import verify_statement
from ailedger.errors import InvalidInput, SignatureInvalid
from ailedger.registry import Registry
from ailedger.registry._refs import VersionRef
from ailedger.registry.lineage import lineage
from ailedger.registry.provenance import RunInfo, builder_id, record_provenance

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REF = VersionRef("triage", "1")


def _in_toto_valid(statement: dict[str, Any]) -> None:
    """What the in-toto-attestation package (protobuf) says of the statement: its Statement
    validator, then the predicate parsed as the SLSA v1 Provenance message (unknown fields
    refused) and the spec's required fields."""
    pb = json_format.ParseDict(statement, PbStatement([], "", {}).pb)
    PbStatement.copy_from_pb(pb).validate()
    prov = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    if not prov.build_definition.build_type or not prov.run_details.builder.id:
        raise ValueError("buildType and builder.id are required")
    if not prov.build_definition.HasField("external_parameters"):
        raise ValueError("externalParameters is required")
    for dep in prov.build_definition.resolved_dependencies:
        PbDescriptor.copy_from_pb(dep).validate()


def _register(setup: Setup, reg: Registry, **kwargs: Any) -> None:
    trainer = setup.signer("trainer")
    reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
    reg.register_dataset(setup.root / "extra.jsonl", VersionRef("extra", "2"), trainer)
    reg.register_model(
        setup.model,
        REF,
        trainer,
        datasets=[VersionRef("patients", "1"), VersionRef("extra", "2")],
        params={"lr": 0.01, "epochs": 3},
        team="ml",
        **kwargs,
    )


@pytest.fixture
def extra(setup: Setup) -> None:
    (setup.root / "extra.jsonl").write_text('{"a": 1}\n{"a": 2}\n')


@pytest.mark.usefixtures("extra")
def test_provenance_structure_signature_and_in_toto_validation(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    started = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    finished = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with setup.registry() as reg:
        _register(setup, reg, code_revision=COMMIT)
        model = reg.model(REF)
        patients = reg.dataset(VersionRef("patients", "1"))
        run = RunInfo(invocation_id="ci-1234", started_on=started, finished_on=finished)
        recorded = record_provenance(reg, REF, trainer, run)
        entry = reg.log.get(recorded.log_index)
        keys = [k.public_key for k in reg.keys]
    assert recorded.log_index == model.log_index + 1
    verified = verify_statement(Envelope.from_json(entry.envelope), keys)
    assert [k.keyid for k in verified.signers] == [trainer.keyid]
    assert isinstance(verified.predicate, SlsaProvenancePredicate)
    statement = verified.statement.to_dict()
    assert statement["predicateType"] == SLSA_PROVENANCE_TYPE
    assert statement["subject"] == [{"name": "triage@1", "digest": {"sha256": model.digest[7:]}}]
    _in_toto_valid(statement)

    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == TRAINING_BUILD_TYPE
    assert build["externalParameters"] == {
        "model": {"name": "triage", "version": "1"},
        "hyperparameters": {"lr": 0.01, "epochs": 3},
        "datasets": ["patients@1", "extra@2"],
        "codeRevision": COMMIT,
        "team": "ml",
    }
    assert build["internalParameters"]["modelStatementLogIndex"] == model.log_index
    first, second, code = build["resolvedDependencies"]
    assert first["name"] == "patients@1"
    assert first["digest"] == {MERKLE_ROOT_DIGEST: patients.root, "sha256": patients.digest[7:]}
    assert first["uri"] == setup.data.resolve().as_uri()
    assert first["annotations"]["format"] == "csv"
    assert first["annotations"]["ailedgerLogIndex"] == patients.log_index
    assert second["name"] == "extra@2"
    assert second["annotations"]["records"] == 2
    assert code == {"name": "training-code", "digest": {"gitCommit": COMMIT}}
    details = statement["predicate"]["runDetails"]
    assert details["builder"]["id"] == f"urn:ailedger:builder:acme:{trainer.keyid}"
    assert details["metadata"] == {
        "invocationId": "ci-1234",
        "startedOn": "2026-12-01T08:00:00Z",
        "finishedOn": "2026-12-01T09:30:00Z",
    }
    # an untrusted key does not verify it
    with pytest.raises(SignatureInvalid):
        verify_statement(Envelope.from_json(entry.envelope), [setup.store.info("qa").public_key])


@pytest.mark.usefixtures("extra")
def test_in_toto_validator_rejects_what_the_spec_forbids(setup: Setup) -> None:
    with setup.registry() as reg:
        _register(setup, reg)
        recorded = record_provenance(reg, REF, setup.signer("trainer"))
        statement = json.loads(Envelope.from_json(reg.log.get(recorded.log_index).envelope).payload)
    _in_toto_valid(statement)
    renamed = json.loads(json.dumps(statement))
    renamed["predicate"]["buildDefinition"]["build_kind"] = "x"  # not a Provenance field
    with pytest.raises(json_format.ParseError):
        _in_toto_valid(renamed)
    no_builder = json.loads(json.dumps(statement))
    del no_builder["predicate"]["runDetails"]["builder"]["id"]
    with pytest.raises(ValueError, match="required"):
        _in_toto_valid(no_builder)


def test_a_non_commit_revision_and_an_unregistered_root(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        reg.register_model(
            setup.model, REF, trainer, datasets=[VersionRef("patients", "1")], code_revision="v1"
        )
        root = reg.dataset(VersionRef("patients", "1")).root
        reg.index.db.execute("DELETE FROM versions WHERE kind = 'dataset'")  # forget it
        pred = record_provenance(reg, REF, trainer).predicate
    deps = pred["buildDefinition"]["resolvedDependencies"]
    # "v1" is no git commit: a parameter, not a digest
    assert deps == [
        {
            "name": f"dataset:{root}",
            "digest": {MERKLE_ROOT_DIGEST: root},
            "annotations": {"registered": False},
        }
    ]
    assert pred["buildDefinition"]["externalParameters"]["codeRevision"] == "v1"
    assert "metadata" not in pred["runDetails"]


def test_recorded_once_per_key_and_shown_in_lineage(setup: Setup) -> None:
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    with setup.registry() as reg:
        reg.register_model(setup.model, REF, trainer)
        first = record_provenance(reg, REF, trainer)
        again = record_provenance(reg, REF, trainer, RunInfo(invocation_id="other"))
        other = record_provenance(reg, REF, qa, RunInfo(builder_id="https://ci.example/runner"))
        tree = lineage(reg, REF)
    assert (again.log_index, again.already) == (first.log_index, True)
    assert other.log_index == first.log_index + 1
    assert other.predicate["runDetails"]["builder"]["id"] == "https://ci.example/runner"
    assert "resolvedDependencies" not in first.predicate["buildDefinition"]
    assert [i.log_index for i in tree.provenance] == [first.log_index, other.log_index]
    assert tree.to_dict()["provenance"][0]["builder"] == builder_id(trainer.keyid, reg.keys)


def test_run_times_out_of_order_are_refused(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    run = RunInfo(
        started_on=datetime(2026, 12, 2, tzinfo=UTC), finished_on=datetime(2026, 12, 1, tzinfo=UTC)
    )
    with setup.registry() as reg:
        reg.register_model(setup.model, REF, trainer)
        size = reg.log.size()
        with pytest.raises(InvalidInput, match="finishedOn is before startedOn"):
            record_provenance(reg, REF, trainer, run)
        assert reg.log.size() == size


def test_registered_for_lineage_only() -> None:
    assert PREDICATES["slsa-provenance"] is SlsaProvenancePredicate
    assert SLSA_PROVENANCE_TYPE in predicate_types("lineage")
    assert SLSA_PROVENANCE_TYPE not in predicate_types("gate")
    assert SLSA_PROVENANCE_TYPE not in predicate_types("audit")


def test_foreign_provenance_with_extensions_parses() -> None:
    doc = {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main"}},
            "resolvedDependencies": [{"uri": "git+https://github.com/o/r", "x-ext": 1}],
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
        "vendorExtension": {"k": "v"},
    }
    pred = SlsaProvenancePredicate.model_validate(doc)
    assert not pred.is_training_run
    assert pred.to_dict() == doc
    with pytest.raises(ValueError, match="uri, a digest or content"):
        SlsaProvenancePredicate.model_validate(
            {**doc, "buildDefinition": {**doc["buildDefinition"], "resolvedDependencies": [{}]}}
        )


@pytest.mark.usefixtures("extra")
def test_model_register_slsa_cli_verify_and_receipt(setup: Setup) -> None:
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer"])  # fmt: skip
    fails(["model", "register", setup.model, "--name", "triage", "--version", "1",
           "--key", "trainer", "--run-id", "r1"], 3, "--run-id needs --slsa")  # fmt: skip
    doc = ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
              "--dataset", "patients@1", "--code-revision", COMMIT, "--key", "trainer",
              "--slsa", "--run-id", "ci-9", "--started-on", "2026-12-01T08:00:00Z",
              "--finished-on", "2026-12-01T09:00:00+01:00"])  # fmt: skip
    prov = doc["provenance"]
    assert prov["log_index"] == doc["log_index"] + 1
    meta = prov["predicate"]["runDetails"]["metadata"]
    assert meta == {
        "invocationId": "ci-9",
        "startedOn": "2026-12-01T08:00:00Z",
        "finishedOn": "2026-12-01T09:00:00+01:00",
    }
    with setup.registry() as reg:
        (setup.root / "prov.dsse.json").write_bytes(reg.log.get(prov["log_index"]).envelope)
    verified = ok(["verify", "statement", "prov.dsse.json", "--key", "trainer"])
    assert verified["predicateType"] == SLSA_PROVENANCE_TYPE
    assert verified["typed_predicate"] is True
    ok(["log", "checkpoint", "--key", "trainer"])
    ok(["log", "receipt", str(prov["log_index"]), "--out", "prov.receipt.json"])
    receipt = ok(["verify", "receipt", "prov.receipt.json"])
    assert receipt["index"] == prov["log_index"]
    no_slsa = ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
                  "--key", "trainer"])  # fmt: skip
    assert "provenance" not in no_slsa

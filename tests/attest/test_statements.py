"""in-toto statements and the typed predicates."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest.flags import AcknowledgementPredicate, AnomalyFlagPredicate
from ailedger.attest.predicates import (
    PREDICATES,
    ApprovalPredicate,
    DatasetPredicate,
    DeploymentPredicate,
    EvaluationPredicate,
    EventLink,
    InferencePredicate,
    ModelPredicate,
    Predicate,
    parse_predicate,
    predicate_class,
)
from ailedger.attest.privacy import PrivacyAccountingPredicate, PrivacyBudget
from ailedger.attest.slsa import TRAINING_BUILD_TYPE, SlsaProvenancePredicate
from ailedger.attest.statements import (
    STATEMENT_TYPE,
    Statement,
    Subject,
    attest,
    make_statement,
    parse_digest,
    sign_statement,
    subject_from_digest,
    subject_from_file,
    verify_statement,
)
from ailedger.errors import FormatError, InvalidInput, NotFound, SignatureInvalid
from ailedger.identity.keys import P256Signer, Secp256k1Signer

ALICE = Secp256k1Signer.generate()
BOB = P256Signer.generate()
ROOT = "ab" * 32
DIGEST = "sha256:" + "cd" * 32
SUBJECT = Subject(name="artifact", digest={"sha256": "ef" * 32})
NOW = datetime(2026, 11, 25, 10, 42, tzinfo=UTC)

_RESOURCES = [
    {"name": "model.safetensors", "digest": "01" * 32},
    {"name": "config.json", "digest": "02" * 32},
]
_MODEL = ModelPredicate.model_validate(
    {
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
        "resources": _RESOURCES,
        "training": {
            "dataset_roots": [ROOT],
            "code_revision": "3f2a9c1",
            "hyperparameters": {"lr": 0.001, "epochs": 3, "optimizer": "adam"},
            "training_date": "2026-11-20T08:00:00Z",
            "team": "vision",
        },
    }
)
EXAMPLES: dict[str, Predicate] = {
    "dataset": DatasetPredicate(
        root=ROOT,
        size=1000,
        scheme="rfc9162-sha256-rows",
        format="parquet",
        schema_hash=DIGEST,
        location="s3://bucket/data.parquet",
    ),
    "model": _MODEL,
    "evaluation": EvaluationPredicate(
        metric="accuracy",
        value=0.93,
        comparator=">=",
        threshold=0.9,
        dataset_root=ROOT,
        sample_size=500,
        tool="sklearn",
        command="python eval.py",
    ),
    "approval": ApprovalPredicate(role="qa", decision="approve", comment_hash=DIGEST, time=NOW),
    "deployment": DeploymentPredicate(
        environment="prod", action="rollback", version="1.2.0", previous_version="1.3.0", time=NOW
    ),
    "inference": InferencePredicate(
        input_digest=DIGEST, model_digest="sha256:" + "aa" * 32, output_digest=DIGEST, time=NOW
    ),
    "anomaly-flag": AnomalyFlagPredicate(
        dataset_digest="sha256:" + "ef" * 32,
        dataset_entry=EventLink(log_index=3, leaf_hash="ab" * 32),
        model_digest=DIGEST,
        model_entry=EventLink(log_index=1, leaf_hash="ba" * 32),
        score=-0.74,
        threshold=-0.63,
        detector="IsolationForest.score_samples < threshold",
        time=NOW,
    ),
    "acknowledgement": AcknowledgementPredicate(
        entry=EventLink(log_index=4, leaf_hash="cd" * 32),
        acknowledged_type=AnomalyFlagPredicate.PREDICATE_TYPE,
        role="retailer",
        comment="batch quarantined",
        time=NOW,
    ),
    "privacy-accounting": PrivacyAccountingPredicate(
        epsilon=2.5,
        delta=2e-5,
        composition="basic",
        mechanism="gaussian-clipped-update",
        contributors=[
            PrivacyBudget(contributor="0x" + "ab" * 20, epsilon=2.5, delta=2e-5, rounds=5),
            PrivacyBudget(contributor="0x" + "cd" * 20, epsilon=1.0, delta=1e-5, rounds=2),
        ],
        all_private=True,
    ),
    "slsa-provenance": SlsaProvenancePredicate.model_validate(
        {
            "buildDefinition": {
                "buildType": TRAINING_BUILD_TYPE,
                "externalParameters": {"hyperparameters": {"lr": 0.001}},
                "resolvedDependencies": [
                    {"name": "data@1", "digest": {"ailedgerMerkleRoot": ROOT}}
                ],
            },
            "runDetails": {
                "builder": {"id": "urn:ailedger:builder:0xabc"},
                "metadata": {"invocationId": "run-1", "startedOn": "2026-11-20T08:00:00Z"},
            },
        }
    ),
}


def _subjects_for(predicate: Predicate) -> list[Subject]:
    if isinstance(predicate, ModelPredicate):
        return [Subject(name="model", digest={"sha256": str(predicate.subject_digest)})]
    return [SUBJECT]


def test_every_predicate_has_an_example_and_a_versioned_uri() -> None:
    assert set(EXAMPLES) == set(PREDICATES)
    for name, cls in PREDICATES.items():
        if cls is not SlsaProvenancePredicate:  # a standard type keeps its own URI
            assert f"https://ailedger.dev/predicates/{name}/v1" == cls.PREDICATE_TYPE
        assert predicate_class(cls.PREDICATE_TYPE) is cls


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_sign_and_verify_each_predicate(name: str) -> None:
    predicate = EXAMPLES[name]
    envelope = attest(predicate, _subjects_for(predicate), [ALICE, BOB])
    assert envelope.payload_type == "application/vnd.in-toto+json"
    parsed = dsse.Envelope.from_json(envelope.to_json())
    result = verify_statement(parsed, [ALICE.public_key, BOB.public_key], threshold=2)
    assert result.predicate == predicate
    assert result.statement.predicate_type == predicate.PREDICATE_TYPE
    assert {k.keyid for k in result.signers} == {ALICE.keyid, BOB.keyid}
    # The payload is RFC 8785 canonical JSON.
    assert envelope.payload == rfc8785.dumps(json.loads(envelope.payload))
    assert json.loads(envelope.payload)["_type"] == STATEMENT_TYPE


def test_times_are_rfc3339_utc() -> None:
    assert EXAMPLES["deployment"].to_dict()["time"] == "2026-11-25T10:42:00Z"
    with pytest.raises(InvalidInput, match="field 'time'"):
        parse_predicate(
            "deployment", {"environment": "prod", "action": "deploy", "time": "2026-11-25T10:42:00"}
        )


@pytest.mark.parametrize(
    ("name", "data", "field"),
    [
        ("dataset", {"root": "XYZ", "size": 1, "scheme": "s", "format": "f"}, "root"),
        ("dataset", {"root": ROOT, "size": -1, "scheme": "s", "format": "f"}, "size"),
        (
            "dataset",
            {"root": ROOT, "size": 1, "scheme": "s", "format": "f", "location": "no scheme"},
            "location",
        ),
        (
            "evaluation",
            {"metric": "m", "value": "high", "comparator": ">=", "threshold": 1},
            "value",
        ),
        (
            "evaluation",
            {"metric": "m", "value": 1, "comparator": "~", "threshold": 1},
            "comparator",
        ),
        ("approval", {"role": "qa", "decision": "maybe"}, "decision"),
        (
            "approval",
            {"role": "qa", "decision": "approve", "comment_hash": "md5:00"},
            "comment_hash",
        ),
        (
            "deployment",
            {"environment": "p", "action": "yeet", "time": "2026-01-01T00:00:00Z"},
            "action",
        ),
        (
            "inference",
            {"input_digest": DIGEST, "model_digest": DIGEST, "time": NOW.isoformat()},
            "output_digest",
        ),
        ("model", {"serialization": {"method": "files"}, "resources": []}, "resources"),
        (
            "model",
            {
                "serialization": {"method": "files"},
                "resources": _RESOURCES,
                "training": {"team": "t", "extra": 1},
            },
            "training.extra",
        ),
        ("dataset", {"root": ROOT, "size": 1, "scheme": "s", "format": "f", "oops": 1}, "oops"),
    ],
)
def test_validation_errors_name_the_field(name: str, data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=f"invalid {name} predicate: field '{field}'"):
        parse_predicate(name, data)


def test_evaluation_passed_is_computed_and_checked() -> None:
    assert EXAMPLES["evaluation"].to_dict()["passed"] is True
    failing = parse_predicate(
        "evaluation", {"metric": "bias", "value": 0.2, "comparator": "<=", "threshold": 0.1}
    )
    assert failing.to_dict()["passed"] is False
    with pytest.raises(InvalidInput, match="passed"):
        parse_predicate(
            "evaluation",
            {"metric": "m", "value": 0.2, "comparator": "<=", "threshold": 0.1, "passed": True},
        )


def test_unknown_predicate_type() -> None:
    with pytest.raises(InvalidInput, match="unknown predicate type 'bogus'"):
        parse_predicate("bogus", {})


def test_model_predicate_must_match_its_subject() -> None:
    with pytest.raises(InvalidInput, match="no subject has that digest"):
        make_statement([SUBJECT], _MODEL)
    expected = hashlib.sha256(bytes.fromhex("01" * 32) + bytes.fromhex("02" * 32)).hexdigest()
    assert _MODEL.subject_digest == expected
    with pytest.raises(InvalidInput, match="unique"):
        parse_predicate(
            "model", {"serialization": {"method": "files"}, "resources": _RESOURCES[:1] * 2}
        )


@pytest.mark.interop
def test_model_predicate_reads_model_signing_manifests(tmp_path: Path) -> None:
    from google.protobuf import json_format
    from model_signing import hashing
    from model_signing._signing import signing

    (tmp_path / "weights.bin").write_bytes(b"\x00" * 1000)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "config.json").write_text("{}")
    payload = signing.Payload(hashing.Config().hash(tmp_path))
    theirs = json.loads(json_format.MessageToJson(payload.statement.pb))
    ours = ModelPredicate.model_validate(theirs["predicate"])
    assert ours.subject_digest == theirs["subject"][0]["digest"]["sha256"]
    assert ours.to_dict()["serialization"] == theirs["predicate"]["serialization"]
    statement = make_statement([Subject.model_validate(theirs["subject"][0])], ours)
    assert statement.subject[0].digest == theirs["subject"][0]["digest"]


def test_statement_with_foreign_predicate_type_verifies_untyped() -> None:
    statement = Statement.from_dict(
        {
            "_type": STATEMENT_TYPE,
            "subject": [SUBJECT.model_dump()],
            "predicateType": "https://spdx.dev/Document/v2.3",
            "predicate": {"spdxVersion": "SPDX-2.3"},
        }
    )
    result = verify_statement(sign_statement(statement, [ALICE]), [ALICE.public_key])
    assert result.predicate is None
    assert result.to_dict()["typed_predicate"] is False


def test_a_malformed_slsa_statement_is_refused() -> None:
    """SLSA Provenance v1 is a registered type: a statement of that type must be one."""
    statement = Statement.from_dict(
        {
            "_type": STATEMENT_TYPE,
            "subject": [SUBJECT.model_dump()],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {}},
        }
    )
    with pytest.raises(InvalidInput, match="slsa-provenance predicate: field 'buildDefinition"):
        verify_statement(sign_statement(statement, [ALICE]), [ALICE.public_key])


def _signed(payload: bytes) -> dsse.Envelope:
    return dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, payload, [ALICE])


def test_signed_garbage_is_not_a_statement() -> None:
    with pytest.raises(FormatError, match="not valid JSON"):
        verify_statement(_signed(b"{nope"), [ALICE.public_key])
    no_type = {"subject": [SUBJECT.model_dump()], "predicateType": "x", "predicate": {}}
    with pytest.raises(InvalidInput, match="field '_type'"):
        verify_statement(_signed(json.dumps(no_type).encode()), [ALICE.public_key])
    empty = {"_type": STATEMENT_TYPE, "subject": [], "predicateType": "x", "predicate": {}}
    with pytest.raises(InvalidInput, match="field 'subject'"):
        verify_statement(_signed(json.dumps(empty).encode()), [ALICE.public_key])
    bad_pred = {
        "_type": STATEMENT_TYPE,
        "subject": [SUBJECT.model_dump()],
        "predicateType": ApprovalPredicate.PREDICATE_TYPE,
        "predicate": {"role": "qa", "decision": "perhaps"},
    }
    with pytest.raises(InvalidInput, match="field 'decision'"):
        verify_statement(_signed(json.dumps(bad_pred).encode()), [ALICE.public_key])


def test_wrong_payload_type_or_signer_fails() -> None:
    statement = make_statement([SUBJECT], EXAMPLES["approval"])
    other = dsse.sign("text/plain", statement.canonical_json(), [ALICE])
    with pytest.raises(SignatureInvalid, match="payload type"):
        verify_statement(other, [ALICE.public_key])
    with pytest.raises(SignatureInvalid):
        verify_statement(sign_statement(statement, [ALICE]), [BOB.public_key])


def test_subjects(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    subject = subject_from_file(path)
    assert subject == Subject(
        name="model.bin", digest={"sha256": hashlib.sha256(b"weights").hexdigest()}
    )
    with pytest.raises(NotFound):
        subject_from_file(tmp_path / "missing")
    with pytest.raises(InvalidInput, match="directory"):
        subject_from_file(tmp_path)
    assert parse_digest("SHA256:".lower() + "AB" * 32) == ("sha256", "ab" * 32)
    assert subject_from_digest(DIGEST, "x").digest == {"sha256": "cd" * 32}
    for bad in ("sha256:abc", "md5:" + "0" * 32, "nope", "sha256:" + "g" * 64):
        with pytest.raises(InvalidInput):
            parse_digest(bad)
    with pytest.raises(InvalidInput):
        Statement.from_dict(
            {
                "_type": STATEMENT_TYPE,
                "subject": [{"name": "a", "digest": {}}],
                "predicateType": "x",
            }
        )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [1.0, {"x": float("-inf")}]])
def test_non_finite_numbers_are_refused(bad: object) -> None:
    data = {
        "serialization": {"method": "files"},
        "resources": _RESOURCES,
        "training": {"hyperparameters": {"lr": bad}},
    }
    with pytest.raises(InvalidInput, match=r"field 'training\.hyperparameters'.*finite"):
        parse_predicate("model", data)


_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_subjects = st.lists(
    st.builds(Subject, name=st.text(max_size=30), digest=st.fixed_dictionaries({"sha256": _hex})),
    min_size=1,
    max_size=4,
)
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=examples(50))
@given(_subjects, st.text(min_size=1, max_size=40), st.dictionaries(st.text(max_size=8), _json))
def test_statement_round_trip(
    subjects: list[Subject], predicate_type: str, predicate: dict[str, Any]
) -> None:
    statement = Statement.from_dict(
        {
            "_type": STATEMENT_TYPE,
            "subject": [s.model_dump() for s in subjects],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )
    data = statement.canonical_json()
    again = Statement.from_json(data)
    assert again == statement
    assert again.canonical_json() == data


def test_model_predicate_from_fingerprint_manifest() -> None:
    resources = [
        {"name": "w.bin:0:10", "algorithm": "blake3-sharded-10", "digest": "03" * 32},
        {"name": "w.bin:10:15", "algorithm": "blake3-sharded-10", "digest": "04" * 32},
    ]
    digest = hashlib.sha256(bytes.fromhex("03" * 32 + "04" * 32)).hexdigest()
    manifest = {
        "type": "https://ailedger.dev/model/manifest/v1",
        "model_name": "tiny",
        "hashing": "blake3-sharded-10",
        "subject": {"name": "tiny", "digest": {"sha256": digest}},
        "serialization": {"method": "shards", "hash_type": "blake3", "shard_size": 10},
        "resources": resources,
        "tensors": {"root": "05" * 32, "count": 1},
    }
    predicate = ModelPredicate.from_manifest(manifest)
    assert predicate.hashing == "blake3-sharded-10"
    assert predicate.subject_digest == digest
    assert predicate.tensor_root == "05" * 32
    assert predicate.to_dict()["serialization"]["shard_size"] == 10
    manifest["subject"] = {"name": "tiny", "digest": {"sha256": "00" * 32}}
    with pytest.raises(InvalidInput, match="subject_digest: the resources hash to " + digest):
        ModelPredicate.from_manifest(manifest)
    with pytest.raises(InvalidInput, match="field 'resources'"):
        ModelPredicate.from_manifest({"serialization": {"method": "files"}})


def test_an_anomaly_flag_must_name_a_subject_of_its_statement() -> None:
    flag = EXAMPLES["anomaly-flag"]
    other = Subject(name="other", digest={"sha256": "12" * 32})
    with pytest.raises(InvalidInput, match="is not a subject"):
        attest(flag, [other], [ALICE])
    assert attest(flag, [other, SUBJECT], [ALICE]).payload  # among several subjects: fine

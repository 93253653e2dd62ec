"""Oracle observations: the record, its in-toto predicate, signing, and the median."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.attest.statements import Statement, sign_statement, verify_statement
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.oracle.observation import (
    INT256_MAX,
    Observation,
    OracleObservationPredicate,
    median_is_honest,
    median_of,
    min_reports,
)

SIGNER = Secp256k1Signer.generate()


def _fields(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "feed": "drought/farm-1",
        "epoch": 3,
        "value": 8123,
        "input_root": "ab" * 32,
        "input_size": 90,
        "input_sha256": "cd" * 32,
        "input_name": "farm-1/epoch-3.jsonl",
        "model_digest": "ef" * 32,
        "oracle": SIGNER.address,
        "time": datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
    }
    return {**base, **over}


def test_statement_round_trip_and_signature() -> None:
    obs = Observation.create(**_fields())
    statement = obs.statement()
    assert statement.predicate_type == "https://ailedger.dev/predicates/oracle-observation/v1"
    assert statement.subject[0].digest == {"sha256": "cd" * 32}
    assert statement.predicate["value"] == 8123
    assert "input_sha256" not in statement.predicate
    again = Statement.from_json(statement.canonical_json())
    assert Observation.from_statement(again) == obs
    envelope = sign_statement(statement, [SIGNER])
    verified = verify_statement(envelope, [SIGNER.public_key])
    assert Observation.from_statement(verified.statement) == obs
    assert obs.timestamp == 1782907200


def test_predicate_name_and_uri() -> None:
    assert OracleObservationPredicate.NAME == "oracle-observation"
    pred = Observation.create(**_fields()).predicate()
    assert pred.to_dict()["oracle"] == SIGNER.address


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epoch", -1),
        ("value", INT256_MAX + 1),
        ("value", True),
        ("value", 1.5),
        ("input_root", "AB" * 32),
        ("input_size", 0),
        ("model_digest", "sha256:" + "ef" * 32),
        ("oracle", "0x1234"),
        ("time", datetime(2026, 7, 1, 12, 0)),  # no time zone
        ("feed", ""),
    ],
)
def test_bad_fields_are_one_clear_error(field: str, value: object) -> None:
    with pytest.raises(InvalidInput, match=f"field '{field}'"):
        Observation.create(**_fields(**{field: value}))


def test_from_statement_rejects_other_predicates() -> None:
    doc = Observation.create(**_fields()).statement().to_dict()
    doc["predicateType"] = "https://ailedger.dev/predicates/inference/v1"
    with pytest.raises(InvalidInput, match="not an oracle observation"):
        Observation.from_statement(Statement.from_dict(doc))
    doc = Observation.create(**_fields()).statement().to_dict()
    doc["predicate"]["value"] = "8123"
    with pytest.raises(InvalidInput, match="field 'value'"):
        Observation.from_statement(Statement.from_dict(doc))
    doc = Observation.create(**_fields()).statement().to_dict()
    doc["subject"][0]["name"] = ""
    with pytest.raises(InvalidInput, match="field 'input_name'"):
        Observation.from_statement(Statement.from_dict(doc))


def test_median_examples() -> None:
    assert median_of([5]) == 5
    assert median_of([3, 1, 2]) == 2
    assert median_of([4, 1, 3, 2]) == 2  # lower median of an even count
    with pytest.raises(InvalidInput):
        median_of([])
    assert min_reports(0) == 1
    assert min_reports(2) == 5
    with pytest.raises(InvalidInput):
        min_reports(-1)


ints = st.integers(min_value=-(2**64), max_value=2**64)


@given(st.lists(ints, min_size=1, max_size=30))
def test_median_is_the_low_median(values: list[int]) -> None:
    assert median_of(values) == statistics.median_low(values)
    assert median_of(values) in values


@given(st.data(), st.integers(min_value=0, max_value=6))
def test_liars_within_f_cannot_leave_the_honest_range(data: st.DataObject, f: int) -> None:
    liars = data.draw(st.lists(ints, max_size=f), label="lying")
    need = max(min_reports(f) - len(liars), 1)
    honest = data.draw(st.lists(ints, min_size=need, max_size=need + 5), label="honest")
    assert median_is_honest(honest, liars)


@given(st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=10_000))
def test_two_f_reports_are_not_enough(f: int, honest_value: int) -> None:
    # with only 2f values, f liars below the honest ones capture the lower median
    honest = [honest_value] * f
    liars = [honest_value - 1] * f
    assert not median_is_honest(honest, liars)
    assert median_is_honest([*honest, honest_value], liars)

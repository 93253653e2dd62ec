"""Predicate fields computed from an artifact, merged with the user's (issue 11, item 8)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ailedger.attest.computed import dataset_fields, fill_predicate, model_fields
from ailedger.attest.predicates import DatasetPredicate, ModelPredicate
from ailedger.errors import InvalidInput
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("id,label\n1,a\n2,b\n3,c\n")
    return path


def _dataset(csv: Path) -> dict[str, Any]:
    return dataset_fields(fingerprint_dataset(csv, secret=None))


def test_dataset_fields(csv: Path) -> None:
    fp = fingerprint_dataset(csv, secret=None)
    fields = dataset_fields(fp)
    metadata = "sha256:" + hashlib.sha256(rfc8785.dumps(fp.metadata)).hexdigest()
    assert fields == {
        "root": fp.root.hex(),
        "size": 3,
        "scheme": "unsalted-v1",
        "format": "csv",
        "metadata_hash": metadata,
    }
    predicate = fill_predicate(DatasetPredicate, {}, fields, source="data.csv")
    assert isinstance(predicate, DatasetPredicate)
    assert predicate.to_dict() == fields


def test_model_fields(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "a.bin").write_bytes(b"a" * 10)
    (model / "b.json").write_text("{}")
    fp = fingerprint_model(model)
    fields = model_fields(fp)
    assert [r["name"] for r in fields["resources"]] == ["a.bin", "b.json"]
    assert fields["subject_digest"] == fp.subject_digest.hex()
    assert fp.tensor_root is not None  # (no safetensors file: the empty tree's root)
    assert fields["tensor_root"] == fp.tensor_root.hex()
    assert "training" not in fields
    given = {"training": {"team": "vision"}}
    predicate = fill_predicate(ModelPredicate, given, fields, source="model")
    assert isinstance(predicate, ModelPredicate)
    assert predicate.training is not None
    assert predicate.training.team == "vision"


def test_given_values_equal_after_parsing_are_accepted(csv: Path) -> None:
    fields = _dataset(csv)
    given = {"size": "3", "root": fields["root"], "format": "csv"}
    predicate = fill_predicate(DatasetPredicate, given, fields, source="data.csv")
    assert isinstance(predicate, DatasetPredicate)
    assert predicate.size == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("size", 4), ("size", "2"), ("root", "00" * 32), ("scheme", "salted-blake3-index-v1"),
     ("format", "jsonl"), ("metadata_hash", "sha256:" + "00" * 32)],
)  # fmt: skip
def test_a_conflicting_value_is_refused_not_replaced(csv: Path, field: str, value: Any) -> None:
    fields = _dataset(csv)
    with pytest.raises(InvalidInput, match=rf"field '{field}' is given as .*, but data.csv gives"):
        fill_predicate(DatasetPredicate, {field: value}, fields, source="data.csv")


def test_an_invalid_given_value_names_the_field(csv: Path) -> None:
    with pytest.raises(InvalidInput, match="field 'size'"):
        fill_predicate(DatasetPredicate, {"size": "many"}, _dataset(csv), source="data.csv")


def test_defaults_yield_to_the_user_and_fields_the_path_cannot_tell(csv: Path) -> None:
    fields = _dataset(csv)
    defaults = {"location": csv.as_uri()}
    filled = fill_predicate(DatasetPredicate, {}, fields, source="x", defaults=defaults)
    assert isinstance(filled, DatasetPredicate)
    assert filled.location == csv.as_uri()
    given = {"location": "s3://bucket/data.csv", "schema_hash": "sha256:" + "ab" * 32}
    mine = fill_predicate(DatasetPredicate, given, fields, source="x", defaults=defaults)
    assert isinstance(mine, DatasetPredicate)
    assert (mine.location, mine.schema_hash) == (given["location"], given["schema_hash"])


def test_a_nested_difference_is_located(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "a.bin").write_bytes(b"a")
    (model / "b.bin").write_bytes(b"b")
    fields = model_fields(fingerprint_model(model))
    stale = [dict(r) for r in fields["resources"]]
    stale[1]["digest"] = "00" * 32
    with pytest.raises(InvalidInput, match=r"field 'resources\[1\]\.digest' is given as '0000"):
        fill_predicate(ModelPredicate, {"resources": stale}, fields, source="model")

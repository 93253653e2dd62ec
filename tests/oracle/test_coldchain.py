"""Cold-chain sensor batches and the IsolationForest that flags them (``demo consortium``)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from ailedger.errors import FormatError, InvalidInput
from ailedger.fingerprint.model import fingerprint_model
from ailedger.oracle.coldchain import (
    COLUMNS,
    STAGES,
    batch_features,
    load_verified,
    read_batch,
    train_anomaly_model,
    write_cold_chain_batches,
)
from ailedger.oracle.scoring import MODEL_FILE, ModelMismatch

pytest.importorskip("sklearn")

EXCURSIONS = (3, 6)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_anomaly_model(tmp_path_factory.mktemp("model") / "m", seed=7, batches=80)


def test_batches_are_deterministic_and_excursions_leave_the_range(tmp_path: Path) -> None:
    one = write_cold_chain_batches(tmp_path / "a", shipments=2, excursions=EXCURSIONS, seed=1)
    two = write_cold_chain_batches(tmp_path / "b", shipments=2, excursions=EXCURSIONS, seed=1)
    other = write_cold_chain_batches(tmp_path / "c", shipments=2, excursions=EXCURSIONS, seed=2)
    assert [b.path.read_bytes() for b in one] == [b.path.read_bytes() for b in two]
    assert one[0].path.read_bytes() != other[0].path.read_bytes()
    assert [(b.shipment, b.stage, b.party) for b in one[:4]] == [
        ("S01", stage, party) for stage, party in STAGES
    ]
    for batch in one:
        rows = read_batch(batch.path)
        assert tuple(rows[0]) == COLUMNS
        minutes_above_8c = batch_features(rows)[3]
        assert (minutes_above_8c > 0) == (batch.number in EXCURSIONS), batch.name
    with pytest.raises(InvalidInput):
        write_cold_chain_batches(tmp_path / "d", shipments=1, excursions=(5,), seed=1)


def test_a_file_that_is_not_a_batch_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError):
        read_batch(other)
    broken = tmp_path / "broken.csv"
    broken.write_text(",".join(COLUMNS) + "\n2026-03-02T06:00:00Z,warm,60.0,0\n")
    with pytest.raises(FormatError):
        batch_features(read_batch(broken))


def test_the_model_flags_exactly_the_excursions(model_dir: Path, tmp_path: Path) -> None:
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
    model = load_verified(model_dir, f"sha256:{digest}")
    batches = write_cold_chain_batches(tmp_path, shipments=3, excursions=EXCURSIONS, seed=9)
    flagged = [b.number for b in batches if model.flags(model.score(b.path))]
    assert flagged == list(EXCURSIONS)


def test_a_changed_model_is_refused_before_it_is_unpickled(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
    changed = tmp_path / "changed"
    shutil.copytree(model_dir, changed)
    (changed / MODEL_FILE).write_bytes(b"not a pickle at all")

    def never(_data: bytes) -> object:
        raise AssertionError("unpickled a model whose fingerprint did not match")

    monkeypatch.setattr(pickle, "loads", never)
    with pytest.raises(ModelMismatch, match="refusing to load it"):
        load_verified(changed, digest)

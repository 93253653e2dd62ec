"""The drought model (training, fingerprint check before unpickling, scores) and the
incident counter."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ailedger.errors import FormatError, InvalidInput, NotFound, VerificationFailed
from ailedger.fingerprint.model import fingerprint_model
from ailedger.oracle.scoring import (
    DROUGHT_FEATURES,
    MODEL_FILE,
    ModelMismatch,
    batch_features,
    count_incidents,
    drought_label,
    load_verified,
    read_jsonl,
    score_batch,
    train_drought_model,
)
from ailedger.oracle.sensors import (
    DEFAULT_FARMS,
    Batch,
    WeatherConfig,
    write_camera_weeks,
    write_weather_batches,
)

pytest.importorskip("sklearn")

DROUGHT = WeatherConfig(drought_farms=("farm-1",), drought_start=30, drought_days=60)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = train_drought_model(
        tmp_path_factory.mktemp("model") / "drought", seed=5, seasons=10
    )
    return directory, fingerprint_model(directory, tensors=False).subject_digest.hex()


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> list[Batch]:
    return write_weather_batches(tmp_path_factory.mktemp("batches"), DEFAULT_FARMS, DROUGHT, seed=9)


def _batch(batches: list[Batch], farm: str, epoch: int) -> Path:
    return next(b.path for b in batches if b.key == farm and b.epoch == epoch)


def test_training_is_deterministic(model: tuple[Path, str], tmp_path: Path) -> None:
    directory, digest = model
    again = train_drought_model(tmp_path / "again", seed=5, seasons=10)
    assert fingerprint_model(again, tensors=False).subject_digest.hex() == digest
    config = json.loads((directory / "config.json").read_text())
    assert config["features"] == list(DROUGHT_FEATURES)
    assert set(config["farm_norms_mm_per_day"]) == {f.farm_id for f in DEFAULT_FARMS}
    assert 0 < config["training"]["positives"] < config["training"]["rows"]


def test_drought_farm_scores_higher_than_a_wet_farm(
    model: tuple[Path, str], batches: list[Batch]
) -> None:
    directory, digest = model
    verified = load_verified(directory, digest)
    norms = verified.norms
    for epoch in (1, 2):  # days 30..89: farm-1's drought
        dry, wet = _batch(batches, "farm-1", epoch), _batch(batches, "farm-4", epoch)
        dry_f = batch_features(read_jsonl(dry), norms["farm-1"])
        wet_f = batch_features(read_jsonl(wet), norms["farm-4"])
        assert dry_f[0] > wet_f[0] + 0.3  # rainfall deficit vs the farm's norm
        assert dry_f[0] > 0.5
        assert verified.score(dry) > 8000
        assert verified.score(dry) > verified.score(wet) + 2000
    assert score_batch(directory, _batch(batches, "farm-1", 0), digest) < 5000


def test_scores_are_deterministic_integers(model: tuple[Path, str], batches: list[Batch]) -> None:
    directory, digest = model
    first = [score_batch(directory, b.path, digest) for b in batches]
    second = [score_batch(directory, b.path, "sha256:" + digest) for b in batches]
    assert first == second
    assert all(isinstance(s, int) and 0 <= s <= 10_000 for s in first)


def test_tampered_model_is_refused_before_unpickling(
    model: tuple[Path, str], tmp_path: Path, batches: list[Batch]
) -> None:
    directory, digest = model
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_bytes((directory / "config.json").read_bytes())
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (Path.write_text, (marker, "x"))  # type: ignore[return-value]

    (evil / MODEL_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelMismatch, match="refusing") as err:
        load_verified(evil, digest)
    assert isinstance(err.value, VerificationFailed)
    assert err.value.exit_code == 1
    with pytest.raises(ModelMismatch):
        score_batch(evil, batches[0].path, digest)
    assert not marker.exists()


def test_one_changed_byte_in_config_is_refused(model: tuple[Path, str], tmp_path: Path) -> None:
    directory, digest = model
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / MODEL_FILE).write_bytes((directory / MODEL_FILE).read_bytes())
    text = (directory / "config.json").read_text().replace('"C": 1.0', '"C": 2.0')
    (copy / "config.json").write_text(text)
    with pytest.raises(ModelMismatch):
        load_verified(copy, digest)
    (copy / "config.json").write_bytes((directory / "config.json").read_bytes())
    assert load_verified(copy, digest).subject_digest == digest


@pytest.mark.parametrize(
    "config",
    [
        None,  # no config.json at all: an ordinary model directory
        "{}",
        '{"farm_norms_mm_per_day": {}}',
        '{"farm_norms_mm_per_day": []}',
        '{"farm_norms_mm_per_day": {"farm-1": "3"}}',
        '{"farm_norms_mm_per_day": {"farm-1": -1}}',
        '{"farm_norms_mm_per_day": {"farm-1": true}}',
        '{"farm_norms_mm_per_day": {"farm-1": 1e999}}',
        "[1, 2]",
    ],
)
def test_a_model_that_is_not_a_drought_model_is_one_clear_error(
    tmp_path: Path, config: str | None
) -> None:
    """Not a KeyError (exit 70): a fingerprint-checked model that is not a drought model."""
    other = tmp_path / "other"
    other.mkdir()
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[Path, str]]:
            return (Path.write_text, (marker, "x"))  # type: ignore[return-value]

    (other / MODEL_FILE).write_bytes(pickle.dumps(Payload()))
    if config is not None:
        (other / "config.json").write_text(config)
    digest = fingerprint_model(other, tensors=False).subject_digest.hex()
    with pytest.raises(InvalidInput, match=r"drought model|rainfall norm") as err:
        load_verified(other, digest)
    assert err.value.exit_code == 3
    assert not marker.exists()  # refused before anything was unpickled


def test_a_verified_pickle_that_is_no_classifier_is_refused(
    model: tuple[Path, str], tmp_path: Path
) -> None:
    directory, _ = model
    other = tmp_path / "other"
    other.mkdir()
    (other / MODEL_FILE).write_bytes(pickle.dumps({"weights": [1, 2]}))
    (other / "config.json").write_bytes((directory / "config.json").read_bytes())
    digest = fingerprint_model(other, tensors=False).subject_digest.hex()
    with pytest.raises(InvalidInput, match="predict_proba"):
        load_verified(other, digest)


def test_bad_batches(model: tuple[Path, str], tmp_path: Path, batches: list[Batch]) -> None:
    directory, digest = model
    verified = load_verified(directory, digest)
    with pytest.raises(NotFound):
        verified.score(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"farm": "farm-1"}\nnot json\n')
    with pytest.raises(FormatError, match=":2:"):
        verified.score(bad)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(_batch(batches, "farm-1", 0).read_bytes() + batches[-1].path.read_bytes())
    with pytest.raises(InvalidInput, match="exactly one farm"):
        verified.score(mixed)
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(_batch(batches, "farm-2", 0).read_text().replace('"farm-2"', '"farm-77"'))
    with pytest.raises(InvalidInput, match="no rainfall norm"):
        verified.score(stranger)


def test_label_rule() -> None:
    assert drought_label([0.7, 12.0, 20.0, 0.0], 30) == 1
    assert drought_label([0.7, 3.0, 25.0, 0.0], 30) == 0
    assert drought_label([-0.2, 2.0, 12.0, 0.0], 30) == 0
    assert drought_label([0.1, 10.0, 12.0, 0.0], 30) == 1


def test_incident_counter_on_generated_weeks(tmp_path: Path) -> None:
    incidents = {1: 2, 3: 4, 4: 1}
    weeks = write_camera_weeks(tmp_path, 6, seed=21, incident_weeks=incidents)
    counts = [count_incidents(w.path, 0.5) for w in weeks]
    assert counts == [incidents.get(w, 0) for w in range(6)]
    # with no threshold the low-confidence false alarms count as well
    assert sum(count_incidents(w.path, 0.0) for w in weeks) > sum(counts)


def test_incident_counter_dedupes_and_rejects_bad_input(tmp_path: Path) -> None:
    rows = [
        ("2026-01-05T08:00:00Z", "cam-1", "no-helmet", 0.9),
        ("2026-01-05T08:00:30Z", "cam-1", "no-helmet", 0.9),  # same person, 30 s later
        ("2026-01-05T08:00:40Z", "cam-2", "no-helmet", 0.9),  # another camera
        ("2026-01-05T09:00:00Z", "cam-1", "no-helmet", 0.9),  # an hour later
        ("2026-01-05T09:00:10Z", "cam-1", "normal", 0.99),
    ]
    path = tmp_path / "week.jsonl"
    path.write_text(
        "".join(
            json.dumps({"timestamp": t, "camera": c, "event": e, "confidence": p}) + "\n"
            for t, c, e, p in rows
        )
    )
    assert count_incidents(path, 0.5) == 3
    assert count_incidents(path, 0.5, dedupe_seconds=0) == 4
    assert count_incidents(path, 0.95) == 0
    with pytest.raises(InvalidInput):
        count_incidents(path, 1.5)
    path.write_text('{"timestamp": "2026-01-05T08:00:00Z", "camera": "c", "event": "x"}\n')
    with pytest.raises(FormatError, match="confidence"):
        count_incidents(path, 0.5)

"""The synthetic sensor and camera generators: determinism, realism, Merkle fingerprints."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from ailedger.errors import InvalidInput, ProofInvalid
from ailedger.fingerprint.dataset import fingerprint_dataset, prove_record
from ailedger.fingerprint.proofs import MembershipProof
from ailedger.oracle.sensors import (
    DEFAULT_FARMS,
    EVENT_TYPES,
    Farm,
    WeatherConfig,
    camera_week,
    generate_weather,
    write_camera_weeks,
    write_weather_batches,
)

CFG = WeatherConfig(drought_farms=("farm-3",), stuck_station="farm-1-s2")


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_same_seed_same_bytes_and_roots(tmp_path: Path) -> None:
    a = write_weather_batches(tmp_path / "a", DEFAULT_FARMS, CFG, seed=11)
    b = write_weather_batches(tmp_path / "b", DEFAULT_FARMS, CFG, seed=11)
    c = write_weather_batches(tmp_path / "c", DEFAULT_FARMS, CFG, seed=12)
    assert [x.path.read_bytes() for x in a] == [x.path.read_bytes() for x in b]
    assert [x.root for x in a] == [x.root for x in b]
    assert [x.root for x in a] != [x.root for x in c]


def test_batches_layout_and_fields(tmp_path: Path) -> None:
    batches = write_weather_batches(tmp_path, DEFAULT_FARMS, CFG, seed=1, period_days=30)
    assert len(batches) == len(DEFAULT_FARMS) * 4
    farm = {f.farm_id: f for f in DEFAULT_FARMS}
    for batch in batches:
        rows = _read(batch.path)
        assert batch.size == len(rows) == farm[batch.key].stations * 30
        assert {r["farm"] for r in rows} == {batch.key}
        assert set(rows[0]) == {
            "farm",
            "station",
            "timestamp",
            "rainfall_mm",
            "soil_moisture_pct",
            "air_temp_c",
            "rel_humidity_pct",
        }
        assert batch.fingerprint.scheme == "unsalted-v1"


def test_batch_root_is_the_dataset_fingerprint_and_records_are_provable(tmp_path: Path) -> None:
    batch = write_weather_batches(tmp_path, DEFAULT_FARMS, CFG, seed=2)[5]
    assert fingerprint_dataset(batch.path, secret=None).root == batch.root
    proof = prove_record(batch.path, secret=None, index=7)
    assert isinstance(proof, MembershipProof)
    assert proof.dataset.root == batch.root
    line = batch.path.read_bytes().splitlines()[7]
    proof.verify(batch.root, line)
    with pytest.raises(ProofInvalid):
        proof.verify(batch.root, line.replace(b'"farm-2"', b'"farm-9"'))


def test_missing_readings_and_stuck_sensor() -> None:
    rows = generate_weather(DEFAULT_FARMS, CFG, seed=3)["farm-1"]
    values = [r[k] for r in rows for k in ("rainfall_mm", "soil_moisture_pct", "air_temp_c")]
    missing = sum(v is None for v in values) / len(values)
    assert 0.005 < missing < 0.05
    stuck = [r["soil_moisture_pct"] for r in rows if r["station"] == "farm-1-s2"][45:]
    assert len(set(stuck)) == 1
    healthy = [r["soil_moisture_pct"] for r in rows if r["station"] == "farm-1-s1"][45:]
    assert len(set(healthy)) > 20


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_drought_farm_is_drier_and_hotter_in_the_drought(seed: int) -> None:
    cfg = WeatherConfig(drought_farms=("farm-1",), drought_start=30, drought_days=60)
    weather = generate_weather(DEFAULT_FARMS, cfg, seed=seed)

    def window(farm: str, field: str) -> float:
        per = next(f.stations for f in DEFAULT_FARMS if f.farm_id == farm)
        rows = weather[farm][30 * per : 90 * per]
        vals = [r[field] for r in rows if isinstance(r[field], float)]
        return statistics.fmean(vals)

    # farm-1 is the wettest farm in normal years; in its drought it is the driest
    assert window("farm-1", "rainfall_mm") < window("farm-4", "rainfall_mm") / 2
    assert window("farm-1", "soil_moisture_pct") < window("farm-4", "soil_moisture_pct")
    assert window("farm-1", "air_temp_c") > window("farm-4", "air_temp_c")


def test_seasonality_summer_is_warmer() -> None:
    rows = generate_weather(DEFAULT_FARMS, WeatherConfig(), seed=5)["farm-2"]
    spring = statistics.fmean(r["air_temp_c"] for r in rows[:20] if r["air_temp_c"] is not None)
    summer = statistics.fmean(r["air_temp_c"] for r in rows[110:130] if r["air_temp_c"] is not None)
    assert summer > spring + 5


def test_bad_weather_inputs() -> None:
    with pytest.raises(InvalidInput, match="unknown farms"):
        generate_weather(DEFAULT_FARMS, WeatherConfig(drought_farms=("farm-9",)), seed=1)
    with pytest.raises(InvalidInput, match="unique"):
        generate_weather([Farm("x", 2), Farm("x", 3)], WeatherConfig(), seed=1)
    with pytest.raises(InvalidInput, match="stations"):
        Farm("x", 0)
    with pytest.raises(InvalidInput, match="missing_rate"):
        WeatherConfig(missing_rate=1.5)


def test_camera_weeks_are_deterministic_and_hold_incidents(tmp_path: Path) -> None:
    a = write_camera_weeks(tmp_path / "a", 6, seed=4, incident_weeks={2: 3, 5: 1})
    b = write_camera_weeks(tmp_path / "b", 6, seed=4, incident_weeks={2: 3, 5: 1})
    assert [x.root for x in a] == [x.root for x in b]
    assert [x.epoch for x in a] == list(range(6))
    week2 = _read(a[2].path)
    assert len(week2) == 153
    assert {e["event"] for e in week2} <= set(EVENT_TYPES)
    assert [e["timestamp"] for e in week2] == sorted(e["timestamp"] for e in week2)
    confident = [e for e in week2 if e["event"] != "normal" and e["confidence"] >= 0.5]
    assert len(confident) == 3
    assert camera_week(0, seed=4) == camera_week(0, seed=4) != camera_week(1, seed=4)


def test_camera_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="incident_weeks"):
        write_camera_weeks(tmp_path, 3, seed=1, incident_weeks={3: 1})
    with pytest.raises(InvalidInput):
        camera_week(0, seed=1, cameras=0)

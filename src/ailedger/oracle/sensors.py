"""Synthetic but realistic field data for the oracle examples: farm weather stations and
port safety cameras. Deterministic: the same seed gives the same bytes and Merkle roots.

Weather (crop insurance). Each farm has 2-4 stations and a climate of its own (a rainfall
multiplier and a temperature offset). One daily reading per station::

    {"farm": "farm-1", "station": "farm-1-s2", "timestamp": "2026-04-01T00:00:00Z",
     "rainfall_mm": 3.4, "soil_moisture_pct": 31.2, "air_temp_c": 17.9,
     "rel_humidity_pct": 71.0}

- Rain days follow a two-state Markov chain per farm, shared by its stations (rain is
  spatially correlated), with a wet spring and a dry mid-summer; amounts are gamma-distributed
  and each station sees its own share of them (local variation).
- Temperature follows a seasonal sine plus farm offset and day-to-day noise; humidity falls
  with heat and rises after rain; soil moisture is a bucket that rain fills and heat drains.
- A farm named in ``drought_farms`` has a drought from ``drought_start`` for
  ``drought_days``: rain days become rare and light, and it runs hotter.
- Sensor noise on every value; each value is missing (JSON ``null``) with probability
  ``missing_rate``; one station per season (``stuck_station``) has a soil probe stuck at
  its reading of the day it failed.

:func:`write_weather_batches` writes one JSONL batch per farm per period (epoch) and
fingerprints it unsalted (public sensor data) with
:func:`ailedger.fingerprint.dataset.fingerprint_dataset`,
so each batch has a Merkle root that can be anchored and proven record by record.

Cameras (safety bonus): :func:`write_camera_weeks` writes one JSONL batch of camera events per
week. Every week has ordinary traffic (``normal``) and low-confidence false alarms; weeks in
``incident_weeks`` also hold real incidents, reported with high confidence (see
:func:`ailedger.oracle.scoring.count_incidents`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ailedger.errors import InvalidInput
from ailedger.fingerprint.dataset import DatasetFingerprint, fingerprint_dataset

__all__ = [
    "DEFAULT_FARMS",
    "EVENT_TYPES",
    "INCIDENT_TYPES",
    "Batch",
    "Farm",
    "WeatherConfig",
    "camera_week",
    "generate_weather",
    "write_camera_weeks",
    "write_jsonl",
    "write_weather_batches",
]

#: Every camera event type; all but ``normal`` are incidents.
EVENT_TYPES = ("normal", "no-helmet", "forklift-near-miss", "person-in-exclusion-zone")
INCIDENT_TYPES = EVENT_TYPES[1:]


@dataclass(frozen=True)
class Farm:
    """A farm: ``rain_factor`` scales its rainfall, ``temp_offset_c`` shifts its temperature."""

    farm_id: str
    stations: int
    rain_factor: float = 1.0
    temp_offset_c: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.stations <= 16:
            raise InvalidInput(f"{self.farm_id}: a farm has 1 to 16 stations")
        if self.rain_factor <= 0:
            raise InvalidInput(f"{self.farm_id}: rain_factor must be positive")

    @property
    def station_ids(self) -> tuple[str, ...]:
        return tuple(f"{self.farm_id}-s{i + 1}" for i in range(self.stations))


#: Five farms, 2-4 stations each, from a wet valley to a dry plateau.
DEFAULT_FARMS = (
    Farm("farm-1", 3, rain_factor=1.15, temp_offset_c=-0.5),
    Farm("farm-2", 2, rain_factor=1.0, temp_offset_c=0.0),
    Farm("farm-3", 4, rain_factor=0.85, temp_offset_c=1.0),
    Farm("farm-4", 3, rain_factor=1.05, temp_offset_c=-1.0),
    Farm("farm-5", 2, rain_factor=0.9, temp_offset_c=1.5),
)


@dataclass(frozen=True)
class WeatherConfig:
    """One season of daily readings. Days are counted from ``start``."""

    start: date = date(2026, 4, 1)
    days: int = 120
    drought_farms: tuple[str, ...] = ()
    drought_start: int = 30
    drought_days: int = 60
    missing_rate: float = 0.02
    stuck_station: str | None = None
    stuck_from: int = 45

    def __post_init__(self) -> None:
        if not 1 <= self.days <= 3660:
            raise InvalidInput("days must be between 1 and 3660")
        if not 0 <= self.missing_rate < 1:
            raise InvalidInput("missing_rate must be in [0, 1)")
        if self.drought_start < 0 or self.drought_days < 0:
            raise InvalidInput("drought_start and drought_days must not be negative")

    def in_drought(self, farm_id: str, day: int) -> bool:
        return (
            farm_id in self.drought_farms
            and self.drought_start <= day < self.drought_start + self.drought_days
        )


@dataclass(frozen=True)
class Batch:
    """One written batch: ``key`` names it (a farm or ``week``), ``epoch`` counts periods."""

    key: str
    epoch: int
    path: Path
    fingerprint: DatasetFingerprint

    @property
    def root(self) -> bytes:
        return self.fingerprint.root

    @property
    def size(self) -> int:
        return self.fingerprint.size


def _rng(seed: int, *parts: object) -> random.Random:
    # random.Random seeds a str through SHA-512: stable across runs and platforms.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _noisy(rng: random.Random, value: float, sd: float, missing: float) -> float | None:
    if rng.random() < missing:
        return None
    return round(value + rng.gauss(0.0, sd), 1)


def _rain_reading(rng: random.Random, rain: float, missing: float) -> float | None:
    if rng.random() < missing:
        return None
    return round(max(rain + rng.gauss(0.0, 0.1), 0.0), 1) if rain > 0 else 0.0


def _season(day: int, days: int) -> float:
    """0 at the start of the season, 1 at mid-season, back to 0 at the end."""
    return math.sin(math.pi * (day + 0.5) / days)


def _farm_days(farm: Farm, cfg: WeatherConfig, seed: int) -> list[dict[str, Any]]:
    rng = _rng(seed, "weather", farm.farm_id)
    stations = farm.station_ids
    shares = [rng.uniform(0.8, 1.2) for _ in stations]
    moisture = [rng.uniform(30.0, 38.0) for _ in stations]
    stuck: dict[int, float] = {}
    wet = False
    rows: list[dict[str, Any]] = []
    for day in range(cfg.days):
        season = _season(day, cfg.days)
        drought = cfg.in_drought(farm.farm_id, day)
        p_wet = (0.55 if wet else 0.30) * (1.0 - 0.35 * season)
        if drought:
            p_wet *= 0.15
        wet = rng.random() < p_wet
        rain = rng.gammavariate(0.8, 9.0) * farm.rain_factor if wet else 0.0
        if drought:
            rain *= 0.4
        temp = 12.0 + 13.0 * season + farm.temp_offset_c + rng.gauss(0.0, 2.0)
        temp += 4.0 if drought else 0.0
        stamp = datetime.combine(cfg.start + timedelta(days=day), datetime.min.time(), UTC)
        for i, station in enumerate(stations):
            local_rain = rain * shares[i] * rng.uniform(0.85, 1.15)
            drain = 0.03 + 0.004 * max(temp - 10.0, 0.0)
            moisture[i] = min(max(moisture[i] * (1.0 - drain) + 0.9 * local_rain, 2.0), 60.0)
            humidity = 85.0 - 1.2 * (temp - 12.0) + (10.0 if wet else 0.0)
            soil = _noisy(rng, moisture[i], 0.8, cfg.missing_rate)
            if station == cfg.stuck_station and day >= cfg.stuck_from:
                soil = stuck.setdefault(i, round(moisture[i], 1))
            rows.append(
                {
                    "farm": farm.farm_id,
                    "station": station,
                    "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "rainfall_mm": _rain_reading(rng, local_rain, cfg.missing_rate),
                    "soil_moisture_pct": soil,
                    "air_temp_c": _noisy(rng, temp, 0.3, cfg.missing_rate),
                    "rel_humidity_pct": _noisy(
                        rng, min(max(humidity, 15.0), 100.0), 2.0, cfg.missing_rate
                    ),
                }
            )
    return rows


def generate_weather(
    farms: Sequence[Farm], cfg: WeatherConfig, *, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Daily readings of every station, by farm id, in (day, station) order."""
    ids = [f.farm_id for f in farms]
    if len(set(ids)) != len(ids):
        raise InvalidInput("farm ids must be unique")
    unknown = set(cfg.drought_farms) - set(ids)
    if unknown:
        raise InvalidInput(f"drought_farms names unknown farms: {', '.join(sorted(unknown))}")
    return {farm.farm_id: _farm_days(farm, cfg, seed) for farm in farms}


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """One compact JSON object per line, keys sorted: the same records give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, sort_keys=True, separators=(",", ":"), allow_nan=False) for r in records]
    if not lines:
        raise InvalidInput(f"{path}: a batch needs at least one record")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_weather_batches(
    directory: Path,
    farms: Sequence[Farm],
    cfg: WeatherConfig,
    *,
    seed: int,
    period_days: int = 30,
) -> list[Batch]:
    """Write ``<farm>/epoch-<n>.jsonl`` per farm per period of ``period_days`` days and
    fingerprint each (unsalted). Returns the batches in (farm, epoch) order."""
    if period_days < 1:
        raise InvalidInput("period_days must be at least 1")
    batches: list[Batch] = []
    for farm_id, rows in generate_weather(farms, cfg, seed=seed).items():
        per_day = len(rows) // cfg.days
        for epoch, first in enumerate(range(0, cfg.days, period_days)):
            chunk = rows[first * per_day : (first + period_days) * per_day]
            path = write_jsonl(directory / farm_id / f"epoch-{epoch}.jsonl", chunk)
            batches.append(Batch(farm_id, epoch, path, fingerprint_dataset(path, secret=None)))
    return batches


def camera_week(
    week: int,
    *,
    seed: int,
    incidents: int = 0,
    cameras: int = 4,
    events: int = 150,
    start: date = date(2026, 1, 5),
) -> list[dict[str, Any]]:
    """One week of camera events in time order: ``events`` ordinary ones (some of them
    low-confidence false alarms, confidence < 0.5) and ``incidents`` real incidents
    (confidence 0.8-0.99)."""
    if cameras < 1 or events < 1 or incidents < 0:
        raise InvalidInput("cameras and events must be positive and incidents not negative")
    rng = _rng(seed, "camera", week)
    t0 = datetime.combine(start + timedelta(weeks=week), datetime.min.time(), UTC)
    seconds = 7 * 24 * 3600
    out: list[tuple[int, dict[str, Any]]] = []
    for n in range(events + incidents):
        real = n >= events
        false_alarm = not real and rng.random() < 0.06
        kind = rng.choice(INCIDENT_TYPES) if real or false_alarm else "normal"
        if real:
            confidence = rng.uniform(0.8, 0.99)
        elif false_alarm:
            confidence = rng.uniform(0.2, 0.49)
        else:
            confidence = rng.uniform(0.7, 0.99)
        offset = rng.randrange(seconds)
        stamp = (t0 + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "timestamp": stamp,
            "camera": f"cam-{rng.randrange(cameras) + 1}",
            "event": kind,
            "confidence": round(confidence, 3),
        }
        out.append((offset, event))
    out.sort(key=lambda item: (item[0], item[1]["camera"], item[1]["event"]))
    return [event for _, event in out]


def write_camera_weeks(
    directory: Path,
    weeks: int,
    *,
    seed: int,
    incident_weeks: dict[int, int] | None = None,
    cameras: int = 4,
    events: int = 150,
) -> list[Batch]:
    """Write ``week-<n>.jsonl`` for weeks ``0..weeks-1``; ``incident_weeks`` maps a week to
    its number of real incidents. Each batch is fingerprinted unsalted."""
    incidents = incident_weeks or {}
    if any(w < 0 or w >= weeks for w in incidents):
        raise InvalidInput(f"incident_weeks must name weeks in 0..{weeks - 1}")
    batches: list[Batch] = []
    for week in range(weeks):
        rows = camera_week(
            week, seed=seed, incidents=incidents.get(week, 0), cameras=cameras, events=events
        )
        path = write_jsonl(directory / f"week-{week}.jsonl", rows)
        batches.append(Batch("week", week, path, fingerprint_dataset(path, secret=None)))
    return batches

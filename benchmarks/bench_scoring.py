"""The oracle's data and model costs: sensor batches, verified model loading, scoring.

Peers side by side: loading the drought model through ``load_verified`` (fingerprint, then
unpickle the verified bytes) against a plain, unverified ``pickle.load``; scoring a batch
against computing its dataset fingerprint (Merkle root) alone.

    .venv/bin/python benchmarks/bench_scoring.py --repeat 7
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.oracle.scoring import MODEL_FILE, load_verified, train_drought_model
from ailedger.oracle.sensors import DEFAULT_FARMS, WeatherConfig, write_weather_batches

DATA = Path(__file__).parent / "_data" / "scoring"


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seasons", type=int, default=20)
    args = parser.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    cfg = WeatherConfig(drought_farms=("farm-3",), stuck_station="farm-1-s2")

    t0 = time.perf_counter()
    model_dir = train_drought_model(DATA / "model", seed=1, seasons=args.seasons)
    train_s = time.perf_counter() - t0
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()

    gen_s = best(
        lambda: write_weather_batches(DATA / "batches", DEFAULT_FARMS, cfg, seed=1), args.repeat
    )
    batches = write_weather_batches(DATA / "batches", DEFAULT_FARMS, cfg, seed=1)
    records = sum(b.size for b in batches)

    def plain_load() -> object:
        with (model_dir / MODEL_FILE).open("rb") as fh:
            return pickle.load(fh)

    verified_s = best(lambda: load_verified(model_dir, digest), args.repeat)
    plain_s = best(plain_load, args.repeat)
    model = load_verified(model_dir, digest)
    score_s = best(lambda: [model.score(b.path) for b in batches], args.repeat) / len(batches)
    root_s = best(
        lambda: [fingerprint_dataset(b.path, secret=None) for b in batches], args.repeat
    ) / len(batches)

    print(f"train ({args.seasons} seasons, once)       {train_s * 1e3:9.1f} ms")
    print(
        f"generate+write+fingerprint {len(batches)} batches "
        f"({records} records) {gen_s * 1e3:9.1f} ms"
    )
    print(f"load_verified (fingerprint + unpickle)  {verified_s * 1e3:9.3f} ms")
    print(
        f"plain pickle.load (unverified peer)     {plain_s * 1e3:9.3f} ms"
        f"   ratio verified/plain {verified_s / plain_s:5.1f}x"
    )
    print(f"score one batch                         {score_s * 1e3:9.3f} ms")
    print(
        f"fingerprint one batch (Merkle root)     {root_s * 1e3:9.3f} ms"
        f"   ratio score/root {score_s / root_s:5.1f}x"
    )
    print(f"median batch size {statistics.median(b.size for b in batches)} records")


if __name__ == "__main__":
    main()

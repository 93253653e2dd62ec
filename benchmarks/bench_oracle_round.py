"""One oracle round end to end: sensor batch -> 4 oracle processes -> on-chain report.

Each round writes a fresh weather batch (one farm, one period) and fingerprints it, then
:func:`ailedger.oracle.round.run_round` asks four ``ailedger oracle run`` processes on
127.0.0.1 to observe it (each re-hashes the batch, checks the model fingerprint, loads and
scores it, signs a statement), collects their co-signatures on the report, transmits it to
OracleFeeds on the embedded chain and appends the five statements to a log. The issue's
target is under 3 s.

Peers side by side: the same round with the four nodes as threads of this process (no
process boundary, shared CPU), and the on-chain part alone (a report of the same shape
signed locally by the four keys and transmitted).

    .venv/bin/python benchmarks/bench_oracle_round.py --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from eth_account import Account

from ailedger.chain import DEV_FAUCET_KEY, open_embedded
from ailedger.chain.oracle_report import (
    OracleReport,
    feed_id,
    feed_label,
    oracle_domain,
    pack_signatures,
    sign_observation,
    sign_report,
)
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import SCRYPT_N_TEST_ONLY, Keystore, Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.oracle.node import OracleNode, serve
from ailedger.oracle.round import run_round
from ailedger.oracle.scoring import train_drought_model
from ailedger.oracle.sensors import DEFAULT_FARMS, WeatherConfig, generate_weather, write_jsonl
from ailedger.workspace import Workspace

DATA = Path(__file__).parent / "_data" / "oracle_round"
FEED = "drought/farm-3"
PASSWORD = "bench-only"


def stats(times: list[float]) -> str:
    q = statistics.quantiles(times, n=10) if len(times) > 1 else times
    return f"median {statistics.median(times):.3f} s, p90 {q[-1]:.3f} s, min {min(times):.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    shutil.rmtree(DATA, ignore_errors=True)
    ws = Workspace.init(DATA, origin="bench.oracle/log")
    keys = sorted((Secp256k1Signer.generate() for _ in range(4)), key=lambda k: int(k.address, 16))
    store = Keystore(ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY)
    for i, key in enumerate(keys):
        store.add(f"oracle-{i}", key, PASSWORD)
    model_dir = train_drought_model(DATA / "model", seed=1, seasons=20)
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
    # one season per round, so every round has a new batch to write
    farm = [f for f in DEFAULT_FARMS if f.farm_id == "farm-3"]
    cfg = WeatherConfig(days=30, drought_farms=("farm-3",), drought_start=5)

    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    creator = Account.from_key(DEV_FAUCET_KEY).address  # creates the feeds below
    common = [
        "--feed",
        FEED,
        "--feed-creator",
        creator,
        "--model-dir",
        str(model_dir),
        "--digest",
        digest,
        "--json",
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ailedger.cli._oracle", "run", *common, "--key", f"oracle-{i}"],
            cwd=DATA,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    threads = [serve(OracleNode(FEED, k, model_dir, digest, creator=creator)) for k in keys]
    try:
        urls = [json.loads(p.stdout.readline())["url"] for p in procs if p.stdout]
        chain = open_embedded(DATA / "chain")
        faucet = Account.from_key(DEV_FAUCET_KEY)
        transmitter = Secp256k1Signer.generate()
        chain.fund(transmitter.address, 10**18)
        signers = [k.address for k in keys]
        feeds = {}
        tx = [transmitter.address]
        for name in ("processes", "threads"):
            feeds[name] = chain.deploy("OracleFeeds", 3600, signer=faucet)
            chain.transact(
                feeds[name],
                "createFeed",
                feed_label(FEED),
                signers,
                tx,
                1,
                0,
                10_000,
                3600,
                signer=faucet,
            )
        log = TransparencyLog.open(DATA / "log.sqlite", "bench.oracle/log")
        peers = {"processes": urls, "threads": [t.url for t in threads]}
        times: dict[str, list[float]] = {"processes": [], "threads": []}
        transmit: list[float] = []
        for epoch in range(1, args.rounds + 1):
            for name in ("processes", "threads"):
                t0 = time.perf_counter()
                rows = generate_weather(farm, cfg, seed=epoch)["farm-3"]
                path = write_jsonl(DATA / name / f"epoch-{epoch}.jsonl", rows)
                fingerprint_dataset(path, secret=None)  # what the sensor side anchors
                result = run_round(
                    chain,
                    feeds[name],
                    FEED,
                    epoch,
                    path,
                    peers[name],
                    model_digest=digest,
                    creator=creator,
                    transmitter=transmitter,
                    log=log,
                )
                times[name].append(time.perf_counter() - t0)
                assert not result.failures, result.failures
        # the on-chain part alone: a report of the same shape, signed here, transmitted
        contract = feeds["threads"]
        config = bytes(chain.call(contract, "activeConfig", feed_id(creator, FEED))[1][0])
        domain = oracle_domain(chain.chain_id, contract.address)
        for epoch in range(args.rounds + 1, 2 * args.rounds + 1):
            t0 = time.perf_counter()
            report = OracleReport.build(
                feed_id(creator, FEED),
                config,
                epoch,
                {k.address: 5000 for k in keys},
                signers,
                b"\x01" * 32,
                bytes.fromhex(digest),
                int(time.time()),
            )
            sigs = pack_signatures(sign_report(domain, report, keys))
            roster, params = chain.call(contract, "transmitConfig", feed_id(creator, FEED))
            by_address = {k.address: k for k in keys}
            observed = pack_signatures(
                [
                    sign_observation(domain, report, v, by_address[roster[i]])
                    for i, v in zip(report.observers, report.observations, strict=True)
                ]
            )
            chain.transact(
                contract,
                "transmit",
                report.as_tuple(),
                roster,
                params,
                sigs,
                observed,
                signer=transmitter.to_local_account(),
            )
            transmit.append(time.perf_counter() - t0)
        chain.close()
        log.close()
    finally:
        for t in threads:
            t.stop()
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    proc, thr = statistics.median(times["processes"]), statistics.median(times["threads"])
    print(f"rounds: {args.rounds}, 4 oracles, f=1, batch {len(rows)} records")
    print(f"4 oracle processes: {stats(times['processes'])}")
    print(f"4 oracle threads:   {stats(times['threads'])}")
    print(f"processes / threads: {proc / thr:.2f}x; target 3 s / processes: {3.0 / proc:.1f}x")
    print(f"sign + transmit alone:  {stats(transmit)}")
    print(f"on-chain share of a process round: {statistics.median(transmit) / proc:.0%}")


if __name__ == "__main__":
    main()

"""Transparency log benchmarks: durable appends with signature verification on ingest,
inclusion and consistency proofs from a 1,000,000-entry log, offline receipt verification.

Peers, side by side in one run:
- the per-core limit: secp256k1 recovery with coincurve alone (what ingest must do per
  signature), and ingest without the database;
- for proofs: rebuilding the proof from all leaf hashes (ailedger.merkle, no stored nodes),
  the approach the stored tree replaces.

The 1M-entry log is built once into benchmarks/_data/ (real signed envelopes, verified on
ingest, cycled from a pool) and reused::

    .venv/bin/python benchmarks/bench_log.py [--entries 20000] [--big 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import coincurve
from eth_hash.auto import keccak

from ailedger import merkle
from ailedger.attest.dsse import pae
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.log.receipt import Receipt, verify_receipt

DATA = Path(__file__).parent / "_data"
ORIGIN = "bench.ailedger.dev/log"
PTYPE = "application/vnd.in-toto+json"


def _envelopes(n: int, signers: list[Secp256k1Signer]) -> list[bytes]:
    out = []
    for i in range(n):
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"model-{i}.safetensors", "digest": {"sha256": f"{i:064x}"}}],
            "predicateType": "https://ailedger.dev/predicates/evaluation/v1",
            "predicate": {"metric": "accuracy", "value": 0.9 + (i % 100) / 1000, "passed": True},
        }
        body = json.dumps(statement).encode()
        s = signers[i % len(signers)]
        sig = base64.b64encode(s.sign(pae(PTYPE, body))).decode()
        env = {
            "payload": base64.b64encode(body).decode(),
            "payloadType": PTYPE,
            "signatures": [{"keyid": s.keyid, "sig": sig}],
        }
        out.append(json.dumps(env).encode())
    return out


def _rate(n: int, fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def _per_call_us(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t) / 1000)
    return statistics.median(times), statistics.mean(times)


def bench_ingest(n: int, workers: int) -> dict[str, float]:
    signers = [Secp256k1Signer(bytes([i + 1]) * 32) for i in range(8)]
    pool = _envelopes(min(n, 5000), signers)
    envs = [pool[i % len(pool)] for i in range(n)]
    res: dict[str, float] = {}

    # Peer 1: the per-core limit, secp256k1 recovery + address derivation alone.
    digests = [keccak(b"x%d" % i) for i in range(2000)]
    key = coincurve.PrivateKey(b"\x07" * 32)
    sigs = [key.sign_recoverable(d, hasher=None) for d in digests]

    def recover_all() -> None:
        for d, s in zip(digests, sigs, strict=True):
            pub = coincurve.PublicKey.from_signature_and_message(s, d, hasher=None)
            keccak(pub.format(compressed=False)[1:])

    res["coincurve_recover_per_core"] = _rate(len(digests), recover_all)
    verify_only = coincurve.PublicKey(key.public_key.format())
    sig_plain = key.sign(digests[0], hasher=None)
    res["coincurve_verify_per_core"] = _rate(
        2000, lambda: [verify_only.verify(sig_plain, digests[0], hasher=None) for _ in range(2000)]
    )

    # Peer 2: ingest (parse, verify, canonicalise) without the database.
    from ailedger.log._envelope import check_ethereum_signature, ingest

    sample = envs[:3000]
    res["ingest_no_db_per_core"] = _rate(
        len(sample), lambda: [ingest(e, check_ethereum_signature, 0) for e in sample]
    )

    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        for batch in (1, 100, 1000):
            path = Path(tmp) / f"b{batch}.sqlite"
            m = min(n, 2000) if batch == 1 else n
            with TransparencyLog.open(path, ORIGIN) as log:

                def run(log: TransparencyLog = log, m: int = m, batch: int = batch) -> None:
                    for i in range(0, m, batch):
                        log.append_many(envs[i : i + batch])

                res[f"append_batch{batch}"] = _rate(m, run)
        if workers > 1:
            with (
                ProcessPoolExecutor(workers) as ex,
                TransparencyLog.open(Path(tmp) / "par.sqlite", ORIGIN) as log,
            ):
                log.append_many(envs[:2000], executor=ex)  # warm the workers

                def run_par() -> None:
                    for i in range(0, n, 1000):
                        log.append_many(envs[i : i + 1000], executor=ex)

                res[f"append_batch1000_{workers}proc"] = _rate(n, run_par)
    return res


def build_big(path: Path, size: int, workers: int) -> None:
    signers = [Secp256k1Signer(bytes([i + 1]) * 32) for i in range(8)]
    pool = _envelopes(4096, signers)
    with ProcessPoolExecutor(workers) as ex, TransparencyLog.open(path, ORIGIN) as log:
        t = time.perf_counter()
        while (have := log.size()) < size:
            take = min(10_000, size - have)
            log.append_many([pool[(have + i) % len(pool)] for i in range(take)], executor=ex)
            if have % 100_000 == 0:
                print(f"  built {have:,} entries ({time.perf_counter() - t:.0f} s)", flush=True)
        log.checkpoint(Secp256k1NoteKey.from_signer(ORIGIN, Secp256k1Signer(b"\x42" * 32)))


def bench_proofs(path: Path, repeat: int) -> dict[str, float]:
    res: dict[str, float] = {}
    rng = random.Random(1)
    with TransparencyLog.open(path) as log:
        n = log.size()
        res["size"] = n
        idx = [rng.randrange(n) for _ in range(repeat)]
        it = iter(idx * 2)
        res["inclusion_proof_us_median"], res["inclusion_proof_us_mean"] = _per_call_us(
            lambda: log.inclusion_proof(next(it)), repeat
        )
        it2 = iter(idx * 2)
        res["consistency_proof_us_median"], _ = _per_call_us(
            lambda: log.consistency_proof(next(it2) + 1), repeat
        )
        # Peer: rebuild from all leaf hashes (what a log without stored nodes must do).
        t = time.perf_counter()
        leaves = [bytes(r[0]) for r in log._store.db.execute("SELECT leaf_hash FROM entries")]
        res["rebuild_read_leaves_s"] = time.perf_counter() - t
        t = time.perf_counter()
        merkle.inclusion_proof_from_leaf_hashes(leaves, idx[0])
        res["rebuild_proof_s"] = time.perf_counter() - t

        key = Secp256k1NoteKey.from_signer(ORIGIN, Secp256k1Signer(b"\x42" * 32))
        receipts = [log.receipt(i, key) for i in idx[:50]]
        blobs = [r.to_json() for r in receipts]
        trusted = Secp256k1NoteKey(ORIGIN, key.address)
        it3 = iter(list(range(len(blobs))) * (repeat // len(blobs) + 2))
        res["receipt_verify_us_median"], res["receipt_verify_us_mean"] = _per_call_us(
            lambda: verify_receipt(Receipt.from_json(blobs[next(it3)]), log_key=trusted), repeat
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=20_000, help="envelopes appended per variant")
    ap.add_argument("--big", type=int, default=1_000_000, help="entries in the proof log")
    ap.add_argument("--workers", type=int, default=2, help="processes for parallel verification")
    ap.add_argument("--repeat", type=int, default=1000, help="timed calls per proof measure")
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    print(f"python {sys.version.split()[0]}; entries={args.entries} big={args.big}")

    ing = bench_ingest(args.entries, args.workers)
    limit = ing["coincurve_recover_per_core"]
    print("\n== durable appends (synchronous=FULL, WAL), signature verified on ingest ==")
    print(f"coincurve secp256k1 recover+address (limit, per core): {limit:10,.0f} /s")
    print(
        f"coincurve secp256k1 verify, known key (reference):     "
        f"{ing['coincurve_verify_per_core']:10,.0f} /s"
    )
    no_db = ing["ingest_no_db_per_core"]
    print(
        f"ingest without database (parse+verify+JCS), 1 core:    {no_db:10,.0f} /s  "
        f"({no_db / limit:.2f}x limit)"
    )
    for k, v in ing.items():
        if k.startswith("append_"):
            print(f"{k:54s} {v:10,.0f} /s  ({v / limit:.2f}x limit)")

    big = DATA / f"log-{args.big}.sqlite"
    if not big.exists() or TransparencyLog.open(big).size() < args.big:
        print(f"\nbuilding {big} (once) ...")
        t = time.perf_counter()
        build_big(big, args.big, args.workers)
        print(f"built in {time.perf_counter() - t:.0f} s")
    pr = bench_proofs(big, args.repeat)
    print(f"\n== proofs from a {int(pr['size']):,}-entry log ==")
    print(
        f"inclusion proof (stored nodes):   median {pr['inclusion_proof_us_median']:8.1f} us, "
        f"mean {pr['inclusion_proof_us_mean']:8.1f} us"
    )
    print(f"consistency proof (stored nodes): median {pr['consistency_proof_us_median']:8.1f} us")
    rebuild = pr["rebuild_read_leaves_s"] + pr["rebuild_proof_s"]
    print(
        f"peer: rebuild from all leaves:    {rebuild * 1e6:12.0f} us "
        f"(read {pr['rebuild_read_leaves_s']:.2f} s + hash {pr['rebuild_proof_s']:.2f} s), "
        f"{rebuild * 1e6 / pr['inclusion_proof_us_median']:,.0f}x slower"
    )
    print(
        f"offline receipt verification:     median {pr['receipt_verify_us_median']:8.1f} us, "
        f"mean {pr['receipt_verify_us_mean']:8.1f} us"
    )


if __name__ == "__main__":
    main()

"""Dataset fingerprint of a 1,000,000-record JSONL file (~100-byte records), on one core.

Side by side in one run, warm page cache: ``sha256sum`` of the file, ailedger's root
(unsalted, salted, salted+sorted) and pymerkle 7's tree over the same leaves (the raw lines,
``InmemoryTree.append_entry``). Target: ailedger's root in under 3 s, salted and unsalted.

    .venv/bin/python benchmarks/bench_dataset.py [--records 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ailedger.fingerprint.dataset import fingerprint_dataset

T = TypeVar("T")
DATA = Path(__file__).parent / "_data"
_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


def make_jsonl(path: Path, n: int) -> None:
    """Deterministic records of about 100 bytes each."""
    rnd = random.Random(20261125)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(rnd.choice(_WORDS) for _ in range(4))
            rec = {"id": i, "user": f"u{rnd.randrange(10**7):07d}", "text": text}
            rec["score"] = round(rnd.random(), 4)
            line = json.dumps(rec, separators=(",", ":"))
            f.write(line + " " * max(0, 99 - len(line)) + "\n")


def _cpu() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best(fn: Callable[[], T], repeat: int) -> tuple[float, float, T]:
    """Best wall time and best CPU time (own + children) of ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _cpu()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return min(walls), min(cpus), out


def pymerkle_root(path: Path, limit: int) -> tuple[int, bytes]:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    with path.open("rb") as f:
        for i, line in enumerate(f):
            if i == limit:
                break
            tree.append_entry(line.rstrip(b"\n"))
    size: int = tree.get_size()
    root: bytes = tree.get_root()
    return size, root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pymerkle-records", type=int, default=1_000_000)
    parser.add_argument("--skip-pymerkle", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    DATA.mkdir(exist_ok=True)
    path = DATA / f"records-{args.records}.jsonl"
    if not path.exists():
        make_jsonl(path, args.records)
    size = path.stat().st_size
    path.read_bytes()  # warm the page cache
    secret = b"0123456789abcdef0123456789abcdef"
    print(f"{path.name}: {args.records:,} records, {size / 1e6:.1f} MB, one core")

    rows: list[tuple[str, float, float]] = []
    if shutil.which("sha256sum"):
        t, c, _ = best(lambda: subprocess.run(["sha256sum", str(path)], check=True, stdout=-1), 3)
        rows.append(("sha256sum (file digest only)", t, c))
    runs: dict[str, tuple[bytes | None, bool]] = {
        "ailedger unsalted": (None, False),
        "ailedger salted": (secret, False),
        "ailedger salted --sorted": (secret, True),
    }
    roots: dict[str, bytes] = {}
    for name, (key, sort) in runs.items():

        def run(key: bytes | None = key, sort: bool = sort) -> bytes:
            return fingerprint_dataset(path, secret=key, sort_leaves=sort).root

        t, c, root = best(run, args.repeat)
        roots[name] = root
        rows.append((name, t, c))
    if not args.skip_pymerkle:
        t, c, (n, root) = best(lambda: pymerkle_root(path, args.pymerkle_records), 1)
        t, c = t * args.records / n, c * args.records / n
        if n == args.records:
            assert root == roots["ailedger unsalted"], "pymerkle and ailedger roots differ"
        label = "pymerkle 7 InmemoryTree (same leaves)"
        rows.append((label + ("" if n == args.records else f", scaled from {n:,}"), t, c))

    wall = {name: t for name, t, _ in rows}
    cpu = {name: c for name, _, c in rows}
    base = wall["ailedger unsalted"]
    print(f"{'':40s} {'wall s':>7s} {'cpu s':>7s} {'records/s':>11s} {'wall vs unsalted':>17s}")
    for name, t, c in rows:
        print(f"{name:40s} {t:7.3f} {c:7.3f} {args.records / t:11,.0f} {t / base:16.2f}x")
    for name in runs:
        if "sorted" not in name:
            verdict = "MET" if wall[name] < 3.0 else "MISSED"
            print(
                f"target < 3 s, {name}: {verdict} (wall {wall[name]:.2f} s, cpu {cpu[name]:.2f} s)"
            )


if __name__ == "__main__":
    main()

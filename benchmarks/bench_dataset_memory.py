"""Peak memory of dataset fingerprints, and ``prove`` from the index against a rebuild.

For CSV files of 200,000 and 2,000,000 rows (about 42 bytes a row, like the 83 MB file of
issue 11), generated in a temporary directory: each measurement runs in a fresh Python
process and reports its peak RSS (``ru_maxrss`` from ``wait4``), beside the RSS of a process
that only imports ailedger (the fixed overhead). Then ``prove`` of random records, side by
side in one process: from the index written by the fingerprint (O(log n) nodes, one hash pass
over the data and the index to bind them) and by rebuilding the tree (``--index-file``
pointing nowhere), with the ratio, in this process (imports done).

    .venv/bin/python benchmarks/bench_dataset_memory.py [--rows 200000 2000000] [--proofs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECRET = b"0123456789abcdef0123456789abcdef"
_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")


def make_csv(path: Path, rows: int) -> None:
    rnd = random.Random(20261204)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("id,name,age,score,label,date\n")
        for i in range(rows):
            name, age, score = rnd.choice(_NAMES), rnd.randrange(18, 90), f"{rnd.random():.6f}"
            f.write(f"{i},{name},{age},{score},{i % 3},2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}\n")


_FINGERPRINT = """
import sys
from pathlib import Path
from ailedger.fingerprint import dataset as ds
fp = ds.fingerprint_dataset(Path(sys.argv[1]), secret=sys.argv[2].encode() or None,
                            sort_leaves=sys.argv[3] == "sorted")
ds.write_index_file(fp)
print(fp.root.hex())
"""
_IMPORT_ONLY = "from ailedger.fingerprint import dataset"


def run_rss(code: str, *args: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of a fresh Python process running
    ``code``."""
    env = {**os.environ}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"measurement failed ({proc.returncode}): {code.splitlines()[1:4]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    parser.add_argument("--proofs", type=int, default=5, help="records proven per mode")
    parser.add_argument("--dir", type=Path, default=None, help="where to generate the data")
    args = parser.parse_args()
    _, _, base = run_rss(_IMPORT_ONLY)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; import-only RSS {mb(base)} MB")
    print(
        f"{'rows':>10s} {'file MB':>8s} {'mode':>8s} {'wall s':>7s} {'cpu s':>6s} {'peak MB':>8s} "
        f"{'- import':>8s} {'x file':>7s} {'index MB':>9s}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for rows in args.rows:
            data = Path(tmp) / f"rows-{rows}.csv"
            make_csv(data, rows)
            size = data.stat().st_size
            for mode, secret in (("salted", SECRET), ("unsalted", b""), ("sorted", SECRET)):
                index = Path(str(data) + ".ailedger-index")
                wall, cpu, rss = run_rss(_FINGERPRINT, str(data), secret.decode(), mode)
                print(
                    f"{rows:>10,d} {mb(size)} {mode:>8s} {wall:7.2f} {cpu:6.2f} {mb(rss)} "
                    f"{mb(rss - base)} "
                    f"{(rss - base) / size:7.2f} {mb(index.stat().st_size)}"
                )
            # the index of the last run is salted+sorted; write the salted input-order one
            run_rss(_FINGERPRINT, str(data), SECRET.decode(), "salted")
            prove_side_by_side(data, rows, args.proofs, Path(tmp) / "no-such-index")
            for leftover in Path(tmp).iterdir():
                leftover.unlink()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def prove_side_by_side(data: Path, rows: int, proofs: int, nowhere: Path) -> None:
    """In this process (imports done): ``prove_record`` from the index and by a rebuild."""
    from ailedger.fingerprint.dataset import prove_record

    picks = random.Random(rows).sample(range(rows), proofs)
    walls: dict[str, list[float]] = {"index": [], "rebuild": []}
    cpus: dict[str, list[float]] = {"index": [], "rebuild": []}
    for i in picks:
        for how in ("index", "rebuild"):
            t0, c0 = time.perf_counter(), _cpu()
            proof = prove_record(
                data, secret=SECRET, index=i, index_file=None if how == "index" else nowhere
            )
            walls[how].append(time.perf_counter() - t0)
            cpus[how].append(_cpu() - c0)
            proof.verify()
            assert proof.inclusion.leaf_index == i  # type: ignore[union-attr]
    med = {k: sorted(v)[len(v) // 2] for k, v in walls.items()}
    cpu = {k: sorted(v)[len(v) // 2] for k, v in cpus.items()}
    print(
        f"{rows:>10,d} prove, median of {proofs} (in process): from the index "
        f"{med['index']:.3f} s wall / {cpu['index']:.3f} s CPU, rebuild {med['rebuild']:.2f} s "
        f"wall / {cpu['rebuild']:.2f} s CPU: {med['rebuild'] / med['index']:.0f}x wall, "
        f"{cpu['rebuild'] / cpu['index']:.0f}x CPU"
    )


if __name__ == "__main__":
    main()

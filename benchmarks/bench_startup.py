"""CLI start-up: how long until a command can do its work, beside ``python -c pass``.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15]

Each row starts a fresh process (the console script's interpreter, imports, Typer set-up,
help rendered) and reports the best and the median wall time of ``--runs`` runs, the CPU time
of the median run, and the ratio of the median to ``python -c pass``. ``--help`` on a command
loads exactly the modules that command loads before it does its work, so it measures start-up
without the work. Issue 9's target: every command under 0.5 s on an idle machine, chain
commands included (web3, eth-account and py-evm load only when a chain is opened).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).with_name("ailedger")
ROWS: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("ailedger --version", [str(CLI), "--version"]),
    ("ailedger --help", [str(CLI), "--help"]),
    ("ailedger fingerprint model", [str(CLI), "fingerprint", "model", "--help"]),
    ("ailedger chain status", [str(CLI), "chain", "status", "--help"]),
    ("ailedger rollback", [str(CLI), "rollback", "--help"]),
    ("ailedger anchor", [str(CLI), "anchor", "--help"]),
    ("ailedger log verify", [str(CLI), "log", "verify", "--help"]),
    ("ailedger demo", [str(CLI), "demo", "--help"]),
]


#: As an installed package runs: with its bytecode cache. (This workplace sets
#: PYTHONDONTWRITEBYTECODE, which would make every start compile the package from source;
#: pip compiles an installed package's bytecode at install time.)
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    results: dict[str, tuple[float, float, float]] = {}
    for label, argv in ROWS:
        _run(argv)  # warm the page cache and write the .pyc files
        runs = sorted(_run(argv) for _ in range(args.runs))
        walls = [w for w, _ in runs]
        median = statistics.median(walls)
        cpu = runs[len(runs) // 2][1]
        results[label] = (min(walls), median, cpu)
    base = results["python -c pass"][1]
    print(f"{'command':32s} {'best s':>8s} {'median s':>9s} {'cpu s':>7s} {'x python':>9s}")
    for label, (best, median, cpu) in results.items():
        flag = "" if label.startswith("python") or median < 0.5 else "  over 0.5 s"
        print(f"{label:32s} {best:8.3f} {median:9.3f} {cpu:7.3f} {median / base:9.1f}{flag}")


if __name__ == "__main__":
    main()

"""Merkle tree benchmark: ailedger.merkle.MerkleTree side by side with pymerkle 7.0.0.

Both build the same RFC 9162 / RFC 6962 SHA-256 tree (pymerkle's defaults: sha256 with the
0x00 / 0x01 "security" prefixes) over the same entries; the script asserts the roots are equal.
Targets (issue 2): build 1,000,000 entries at >= 1,000,000 entries/s, inclusion proof
generation < 1 ms, verification < 50 us.

    .venv/bin/python benchmarks/bench_merkle.py                      # 1,000,000 entries
    .venv/bin/python benchmarks/bench_merkle.py --entries 100000 --peer-entries 100000

Timings are wall-clock on a warm process; builds are repeated and the best and median runs are
shown (the machine is shared, so the median is the honest figure under load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ailedger import merkle
from ailedger.merkle import MerkleTree


def _entries(n: int, size: int, seed: int) -> list[bytes]:
    blob = random.Random(seed).randbytes(n * size)
    return [blob[i * size : (i + 1) * size] for i in range(n)]


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (forked build workers)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _runs(
    fn: Callable[[], Any], repeat: int, cpu: list[float] | None = None
) -> tuple[list[float], Any]:
    """Wall-clock seconds of ``repeat`` calls; CPU seconds appended to ``cpu``."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _cpu()
        result = fn()
        times.append(time.perf_counter() - start)
        if cpu is not None:
            cpu.append(_cpu() - start_cpu)
    return times, result


def _per_call(fn: Callable[[Any], Any], items: list[Any]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    out = [fn(item) for item in items]
    return (time.perf_counter() - start) / len(items), out


def _fmt_rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} /s"


def bench_ailedger(args: argparse.Namespace, entries: list[bytes]) -> dict[str, Any]:
    n = len(entries)
    rng = random.Random(args.seed + 1)
    res: dict[str, Any] = {"entries": n}
    res["build_cpu_s"] = []
    res["build_one_core_cpu_s"] = []
    res["build_s"], tree = _runs(
        lambda: MerkleTree.from_entries(entries, workers=args.workers),
        args.repeat,
        res["build_cpu_s"],
    )
    res["build_one_core_s"], _ = _runs(
        lambda: MerkleTree.from_entries(entries, workers=1),
        args.repeat,
        res["build_one_core_cpu_s"],
    )
    res["build_two_procs_s"], _ = _runs(
        lambda: MerkleTree.from_entries(entries, workers=2), args.repeat
    )
    hashes = merkle.leaf_hashes(entries)
    timesh, _ = _runs(
        lambda: MerkleTree.from_leaf_hashes(hashes, workers=args.workers), args.repeat
    )
    res["build_from_leaf_hashes_s"] = timesh
    timesr, head = _runs(lambda: merkle.root(entries), 1)
    res["list_root_one_core_s"] = timesr
    assert head == tree.root()
    res["root"] = tree.root().hex()

    indices = [rng.randrange(n) for _ in range(args.proofs)]
    res["proof_s"], proofs = _per_call(tree.inclusion_proof, indices)
    res["verify_s"], _ = _per_call(lambda p: p.verify(), proofs)
    res["verify_fn_s"], _ = _per_call(
        lambda p: merkle.verify_inclusion(p.leaf_hash, p.leaf_index, p.tree_size, p.hashes, p.root),
        proofs,
    )
    olds = [rng.randrange(1, n) for _ in range(args.proofs)]
    res["consistency_proof_s"], cproofs = _per_call(tree.consistency_proof, olds)
    res["consistency_verify_s"], _ = _per_call(lambda p: p.verify(), cproofs)

    appended = MerkleTree()
    k = min(n, args.appends)
    start = time.perf_counter()
    for entry in entries[:k]:
        appended.append(entry)
    res["append_s"] = (time.perf_counter() - start) / k
    assert appended.root() == merkle.root(entries[:k])
    store = tree.store
    res["store_bytes"] = getattr(store, "nbytes", None)
    return res


def bench_pymerkle(args: argparse.Namespace, entries: list[bytes]) -> dict[str, Any]:
    import pymerkle  # the peer, from the test extra

    n = len(entries)
    rng = random.Random(args.seed + 2)
    res: dict[str, Any] = {"entries": n, "version": pymerkle.__version__}
    res["build_cpu_s"] = []
    res["build_s"], tree = _runs(
        lambda: pymerkle.InmemoryTree.init_from_entries(entries, algorithm="sha256"),
        1,
        res["build_cpu_s"],
    )
    head = tree.get_root()
    res["root"] = head.hex()

    count = max(1, args.proofs // 4)
    indices = [rng.randrange(n) for _ in range(count)]
    res["proof_s"], proofs = _per_call(lambda i: tree.prove_inclusion(i + 1), indices)
    leaves = [tree.get_leaf(i + 1) for i in indices]
    pairs = list(zip(leaves, proofs, strict=True))
    res["verify_s"], _ = _per_call(lambda lp: pymerkle.verify_inclusion(lp[0], head, lp[1]), pairs)
    olds = [rng.randrange(1, n) for _ in range(count)]
    res["consistency_proof_s"], cproofs = _per_call(tree.prove_consistency, olds)
    states = [tree.get_root(old) for old in olds]
    res["consistency_verify_s"], _ = _per_call(
        lambda sp: pymerkle.verify_consistency(sp[0], head, sp[1]),
        list(zip(states, cproofs, strict=True)),
    )
    if args.pymerkle_sqlite:
        start = time.perf_counter()
        sql = pymerkle.SqliteTree(":memory:", algorithm="sha256")
        sql.append_entries(entries)
        res["sqlite_build_s"] = [time.perf_counter() - start]
        assert sql.get_root() == head
        few = indices[:20]
        res["sqlite_proof_s"], _ = _per_call(lambda i: sql.prove_inclusion(i + 1), few)
        sql.close()
    return res


def report(ours: dict[str, Any], peer: dict[str, Any] | None) -> None:
    n = ours["entries"]
    best, med = min(ours["build_s"]), statistics.median(ours["build_s"])
    best1, med1 = min(ours["build_one_core_s"]), statistics.median(ours["build_one_core_s"])
    print(f"\n== Merkle tree, {n:,} entries ==")
    print(f"ailedger build (auto workers) best {best:7.3f} s {_fmt_rate(n, best)}")
    print(f"ailedger build (auto workers) med  {med:7.3f} s {_fmt_rate(n, med)}")
    print(f"ailedger build (one core)     best {best1:7.3f} s {_fmt_rate(n, best1)}")
    print(f"ailedger build (one core)     med  {med1:7.3f} s {_fmt_rate(n, med1)}")
    best2, med2 = min(ours["build_two_procs_s"]), statistics.median(ours["build_two_procs_s"])
    print(f"ailedger build (2 processes)  best {best2:7.3f} s {_fmt_rate(n, best2)}")
    print(f"ailedger build (2 processes)  med  {med2:7.3f} s {_fmt_rate(n, med2)}")
    cpu1 = min(ours["build_one_core_cpu_s"])
    print(f"ailedger build (one core) CPU time {cpu1:7.3f} s {_fmt_rate(n, cpu1)}")
    cpu = min(ours["build_cpu_s"])
    print(f"ailedger build (auto) CPU, all procs {cpu:5.3f} s")
    bh = min(ours["build_from_leaf_hashes_s"])
    print(f"ailedger build from leaf hashes    {bh:7.3f} s {_fmt_rate(n, bh)}")
    lr = ours["list_root_one_core_s"][0]
    print(f"ailedger merkle.root() one core    {lr:7.3f} s {_fmt_rate(n, lr)}")
    print(f"ailedger append one by one         {ours['append_s'] * 1e6:7.2f} us/entry")
    print(f"ailedger inclusion proof           {ours['proof_s'] * 1e6:7.1f} us")
    print(f"ailedger inclusion verify          {ours['verify_s'] * 1e6:7.1f} us")
    print(f"ailedger consistency proof         {ours['consistency_proof_s'] * 1e6:7.1f} us")
    print(f"ailedger consistency verify        {ours['consistency_verify_s'] * 1e6:7.1f} us")
    if ours.get("store_bytes"):
        print(f"ailedger node store                {ours['store_bytes'] / 2**20:7.1f} MiB")
    for label, secs in (("auto, median", med), ("auto, best", best), ("1 core, best", best1)):
        rate = n / secs
        verdict = "met" if rate >= 1e6 else f"missed by {(1e6 - rate) / 1e6:.0%}"
        print(f"target build >= 1,000,000/s ({label}): {verdict}")
    print(f"target proof < 1 ms: {'met' if ours['proof_s'] < 1e-3 else 'missed'}")
    print(f"target verify < 50 us: {'met' if ours['verify_s'] < 50e-6 else 'missed'}")
    if peer is None:
        return
    pn = peer["entries"]
    pb = peer["build_s"][0]
    print(f"\npymerkle {peer['version']} InmemoryTree, {pn:,} entries")
    print(f"pymerkle build                     {pb:7.3f} s {_fmt_rate(pn, pb)}")
    pcpu = peer["build_cpu_s"][0]
    print(f"pymerkle build CPU time            {pcpu:7.3f} s {_fmt_rate(pn, pcpu)}")
    print(f"pymerkle inclusion proof           {peer['proof_s'] * 1e6:7.1f} us")
    print(f"pymerkle inclusion verify          {peer['verify_s'] * 1e6:7.1f} us")
    print(f"pymerkle consistency proof         {peer['consistency_proof_s'] * 1e6:7.1f} us")
    print(f"pymerkle consistency verify        {peer['consistency_verify_s'] * 1e6:7.1f} us")
    if "sqlite_build_s" in peer:
        sb = peer["sqlite_build_s"][0]
        print(f"pymerkle SqliteTree(:memory:) build {sb:6.3f} s {_fmt_rate(pn, sb)}")
        print(f"pymerkle SqliteTree inclusion proof {peer['sqlite_proof_s'] * 1e3:6.1f} ms")
    print("\nratios (ailedger is x times faster; build compares entries/s)")
    print(f"  build (median, auto)  {(n / med) / (pn / pb):8.1f}x")
    print(f"  build (median, 1 core){(n / med1) / (pn / pb):8.1f}x")
    print(f"  build (1 core, CPU)   {(n / cpu1) / (pn / pcpu):8.1f}x")
    print(f"  inclusion proof       {peer['proof_s'] / ours['proof_s']:8.1f}x")
    print(f"  inclusion verify      {peer['verify_s'] / ours['verify_s']:8.1f}x")
    print(
        f"  consistency proof     {peer['consistency_proof_s'] / ours['consistency_proof_s']:8.1f}x"
    )
    cv = peer["consistency_verify_s"] / ours["consistency_verify_s"]
    print(f"  consistency verify    {cv:8.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--entry-size", type=int, default=32, help="bytes per entry")
    parser.add_argument("--peer-entries", type=int, help="entries for pymerkle (default: same)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each ailedger build")
    parser.add_argument("--proofs", type=int, default=2000, help="proofs to time")
    parser.add_argument("--appends", type=int, default=100_000, help="one-by-one appends to time")
    parser.add_argument("--workers", type=int, help="processes for bulk builds (default: auto)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--skip-peer", action="store_true", help="do not run pymerkle")
    parser.add_argument("--pymerkle-sqlite", action="store_true", help="also time SqliteTree")
    parser.add_argument("--json", help="write the raw results to this file")
    args = parser.parse_args(argv)

    entries = _entries(args.entries, args.entry_size, args.seed)
    print(f"python {platform.python_version()} on {platform.machine()}, {args.entries:,} entries")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    ours = bench_ailedger(args, entries)
    peer = None
    if not args.skip_peer:
        peer_entries = entries[: args.peer_entries] if args.peer_entries else entries
        peer = bench_pymerkle(args, peer_entries)
        if len(peer_entries) == len(entries):
            assert peer["root"] == ours["root"], "pymerkle and ailedger roots differ"
            print("roots equal:", ours["root"])
        else:
            assert bytes.fromhex(peer["root"]) == merkle.root(peer_entries)
            print("roots equal on the peer's prefix")
    report(ours, peer)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"ailedger": ours, "pymerkle": peer, "argv": sys.argv}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

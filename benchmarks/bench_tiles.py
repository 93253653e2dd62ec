"""Tile reads from ``ailedger serve`` beside a static file server, and the tiles a verifying
client fetches to check a 1,000,000-entry log's latest checkpoint against a previous one.

Builds a log of ``--entries`` leaves fast (synthetic entries written through the log's storage
layer in transactions of 65,536: no signatures, the tiles are what is measured), signs a
checkpoint at a previous size with the log key, then starts a real ``ailedger serve`` (a child
process, stopped by its PID), which signs the latest one.

(a) ``--clients`` aiohttp clients (keep-alive, one connection each) GET ``--requests`` tile
paths, after one unmeasured warm-up pass of the same paths: full level-0 and level-1 tiles
drawn uniformly from the whole log, then partial level-0 tiles (any index, any width 1..255).
The peer serves the very same tile files, pre-written to a directory, with Starlette's
``StaticFiles`` under the same uvicorn configuration as ``ailedger serve`` (one process, h11,
asyncio, no access log): the fairest peer installed here (no nginx; ``python -m http.server``
speaks HTTP/1.0 and closes every connection). Prints req/s, p50/p99 latency and server CPU.

(b) :class:`~ailedger.service.tiles_client.TilesClient` over HTTP: the tiles fetched to verify
the latest checkpoint against previous ones (sizes ``n - 1``, ``n - 1000``, ``n / 2``, 1, and
a few random), and for one inclusion proof and its entry, beside ``log2(n)`` and the bound
``2 * ceil(log2(n) / 8)``.

    .venv/bin/python benchmarks/bench_tiles.py [--entries 1000000] [--requests 20000]
        [--profile serve.prof]     # the server under cProfile (slower), top functions printed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pstats
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from ailedger.identity.keys import Keystore
from ailedger.log import TransparencyLog, note_key_for
from ailedger.log._store import Row, Store
from ailedger.merkle import leaf_hash
from ailedger.service.tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, entry_bundle
from ailedger.service.tiles_client import TilesClient, max_proof_tiles
from ailedger.workspace import Workspace

ORIGIN = "bench.ailedger.dev/tiles"
AILEDGER = Path(sys.executable).with_name("ailedger")
CHUNK = 1 << 16

PEER = """
import socket, sys
import uvicorn
from starlette.staticfiles import StaticFiles
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(2048)
print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
app = StaticFiles(directory=sys.argv[1])
config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


#: Runs a script under cProfile timed by CPU time (wall time would count the other processes
#: of a loaded machine); writes the stats when the script ends (SIGINT: KeyboardInterrupt).
PROFILE = """
import cProfile, runpy, sys, time
out, script = sys.argv[1], sys.argv[2]
sys.argv = sys.argv[2:]
prof = cProfile.Profile(time.process_time)
prof.enable()
try:
    runpy.run_path(script, run_name="__main__")
except (SystemExit, KeyboardInterrupt):
    pass
finally:
    prof.disable()
    prof.dump_stats(out)
"""


def build_log(path: Path, n: int) -> None:
    store = Store(path, ORIGIN)
    try:
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(n, start + CHUNK)):
                data = b"entry %d" % i
                rows.append(Row(data, leaf_hash(data), 0, "text/plain", None, (), ()))
            store.append(rows)
    finally:
        store.close()


def start(cmd: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 300)
    if not ready:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        raise SystemExit(f"{cmd[0]} did not start")
    line = proc.stdout.readline().decode()
    if not line:
        proc.wait()
        raise SystemExit(f"{cmd[0]} exited with {proc.returncode}")
    return proc, str(json.loads(line)["url"]) if line.startswith("{") else line.strip()


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, paths: list[str], clients: int) -> tuple[float, list[float]]:
    queue = iter(paths)
    latencies: list[float] = []

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(url, connector=connector) as session:
            for path in queue:
                t0 = time.perf_counter()
                async with session.get("/" + path) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"GET {path}: HTTP {response.status}")
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0, latencies


def measure(url: str, pid: int, paths: list[str], clients: int) -> dict[str, float]:
    asyncio.run(load(url, paths, clients))  # warm-up: page cache, tile cache, connections
    cpu0, own0 = cpu_seconds(pid), time.process_time()
    wall, latencies = asyncio.run(load(url, paths, clients))
    q = statistics.quantiles(latencies, n=100)
    return {
        "rate": len(paths) / wall,
        "p50": q[49] * 1000,
        "p99": q[98] * 1000,
        "server_cpu": cpu_seconds(pid) - cpu0,
        "client_cpu": time.process_time() - own0,
        "wall": wall,
    }


def tile_bytes(log: TransparencyLog, ref: TileRef) -> bytes:
    first = ref.index * TILE_WIDTH
    if ref.level is None:
        return entry_bundle(log.envelopes(first, ref.width))
    return b"".join(log.hashes(TILE_HEIGHT * ref.level, first, ref.width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--profile", type=Path, help="run ailedger serve under cProfile, write its stats here"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    n = args.entries

    print(f"load average before: {os.getloadavg()[0]:.2f} (2 shared cores)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "server"
        root.mkdir()
        ws = Workspace.init(root, origin=ORIGIN, log_key="logkey")
        keystore = Keystore(ws.keys_dir)
        keystore.create("logkey", None, unsafe_plaintext=True)
        log_key = note_key_for(ORIGIN, keystore.signer("logkey", None))
        db = root / ".ailedger" / "log.sqlite"
        t0 = time.perf_counter()
        build_log(db, n)
        print(f"built a log of {n:,} entries in {time.perf_counter() - t0:.1f} s (bulk)")

        previous = sorted({n - 1, n - 1000, n // 2, 1, *(rng.randrange(1, n) for _ in range(4))})
        with TransparencyLog.open(db) as log:
            old_notes = {m: log.checkpoint(log_key, size=m).format() for m in previous}
            # the request mixes, and the same tiles as files for the peer
            full = [TileRef(0, rng.randrange(n // TILE_WIDTH)) for _ in range(args.requests)]
            full[:: max(1, args.requests // 200)] = [
                TileRef(1, rng.randrange(max(1, n // TILE_WIDTH**2)))
                for _ in range(len(full[:: max(1, args.requests // 200)]))
            ]
            partial = [
                TileRef(0, rng.randrange(n // TILE_WIDTH), rng.randrange(1, TILE_WIDTH))
                for _ in range(args.requests)
            ]
            static = Path(tmp) / "static"
            for ref in {*full, *partial}:
                file = static / ref.path()
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(tile_bytes(log, ref))

        profile = [] if args.profile is None else [sys.executable, "-c", PROFILE, str(args.profile)]
        command = [str(AILEDGER), "--workspace", str(root), "serve", "--port", "0", "--json"]
        # reads only: nobody submits
        serve, url = start([*profile, *command, "--allow", "0x" + "00" * 20])
        peer, peer_url = start([sys.executable, "-c", PEER, str(static)])
        results: dict[tuple[str, str], dict[str, float]] = {}
        try:
            for mix, refs in (("full", full), ("partial", partial)):
                paths = [r.path() for r in refs]
                results["ailedger serve", mix] = measure(url, serve.pid, paths, args.clients)
                results["StaticFiles", mix] = measure(peer_url, peer.pid, paths, args.clients)

            # (b) a verifying client over HTTP, one per previous checkpoint (empty cache)
            fetched: dict[int, int] = {}
            latest = None
            for m, note in old_notes.items():
                client = TilesClient.over_http(url, log_key)
                trusted = client.verify_note(note)
                latest = client.update(trusted, client.latest_note())
                fetched[m] = client.fetched
            assert latest is not None
            assert latest.size == n, latest
            reader = TilesClient.over_http(url, log_key)
            cp = reader.verify_note(reader.latest_note())
            reader.entry(n // 3, cp)
            entry_fetches = reader.fetched
        finally:
            # SIGINT under the profiler: uvicorn re-raises it after shutdown as a
            # KeyboardInterrupt, and the stats are written on the way out (a re-raised
            # SIGTERM would end the process first)
            stop(serve, signal.SIGTERM if args.profile is None else signal.SIGINT)
            stop(peer)

    print(f"load average after:  {os.getloadavg()[0]:.2f}")
    print()
    print(f"(a) {args.requests:,} GETs per run, {args.clients} clients, warm (after one pass)")
    print(
        f"{'server':16} {'tiles':8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU s':>9} {'cli CPU s':>9} {'vs peer':>8}"
    )
    for (server, mix), r in results.items():
        ratio = r["rate"] / results["StaticFiles", mix]["rate"]
        print(
            f"{server:16} {mix:8} {r['rate']:8,.0f} {r['p50']:7.1f} {r['p99']:7.1f} "
            f"{r['server_cpu']:9.2f} {r['client_cpu']:9.2f} {ratio:7.2f}x"
        )
    best = max(results["ailedger serve", mix]["rate"] for mix in ("full", "partial"))
    print(f"target >= 10,000 tile requests/s: {'met' if best >= 10_000 else 'MISSED'}")
    print()
    bound = max_proof_tiles(n)
    print(f"(b) verifying the checkpoint of {n:,} entries against a previous one, over HTTP")
    print(f"{'previous size':>14} {'tiles fetched':>14}")
    for m, count in fetched.items():
        print(f"{m:14,} {count:14}")
    worst = max(fetched.values())
    print(
        f"max {worst} tiles; log2(n) = {math.log2(n):.1f}; "
        f"bound 2 * ceil(log2(n) / 8) = {bound}: {'met' if worst <= bound else 'MISSED'}"
    )
    print(f"one inclusion proof and its entry bundle, empty cache: {entry_fetches} fetches")
    if args.profile is not None:
        stats = pstats.Stats(str(args.profile))
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()

"""Chain client throughput and reopen time: the embedded chain next to a real anvil.

Workload (the same on both): a fresh account, funded from the dev faucet, deploys the
test contract ``Probe`` and sends ``--tx`` state-changing ``store(i, tag, note)``
transactions one after another through :class:`ailedger.chain.Chain` (gas estimate,
local signing, send, receipt, event indexing: the full path a CLI command takes).

Reopen: an embedded chain directory with ``--blocks`` blocks (built once, kept under
benchmarks/_data/) is opened in a fresh process which then reads the head, a balance,
a contract value and its indexed events; we time that (imports excluded) and the whole
process (imports included).

    .venv/bin/python benchmarks/bench_chain.py            # defaults: --tx 500 --blocks 10000
    .venv/bin/python benchmarks/bench_chain.py --tx 100 --blocks 1000 --skip-anvil
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from eth_account import Account

from ailedger.chain import Chain, connect_rpc, open_embedded

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
ARTIFACTS = ROOT / "tests" / "chain" / "fixtures" / "artifacts"
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
TAG = b"\x42" * 32


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(chain: Chain, n: int, node_pid: int | None = None) -> tuple[float, float]:
    """(wall-clock tx/s, tx per CPU-second of client + node): the second does not
    depend on what else the machine runs."""
    me = Account.create()
    chain.fund(me.address, 10**19)
    probe = chain.deploy("Probe", 0, signer=me)
    node_cpu = _cpu_seconds(node_pid) if node_pid else 0.0
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(n):
        chain.transact(probe, "store", i, TAG, "bench", signer=me)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu + (_cpu_seconds(node_pid) - node_cpu if node_pid else 0.0)
    assert chain.call(probe, "count") == n
    return n / elapsed, n / cpu


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    for _ in range(300):
        try:
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("anvil did not start")


_REOPEN = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from ailedger.chain import open_embedded
t1 = time.perf_counter()
with open_embedded(Path(sys.argv[1]), artifacts_dir=Path(sys.argv[2])) as chain:
    head = chain.block_number()
    probe = chain.at("Probe", sys.argv[3])
    value = chain.call(probe, "value")
    balance = chain.balance(sys.argv[4])
    events = len(chain.events(probe, "Stored", from_block=head - 10))
t2 = time.perf_counter()
print(json.dumps({"head": head, "value": value, "events": events, "imports": t1 - t0,
                  "open_and_read": t2 - t1}))
"""


def build_workspace(blocks: int) -> tuple[Path, dict[str, str]]:
    directory = DATA / f"chain-{blocks}"
    meta_file = DATA / f"chain-{blocks}.json"
    if meta_file.is_file() and directory.is_dir():
        return directory, json.loads(meta_file.read_text())
    shutil.rmtree(directory, ignore_errors=True)
    DATA.mkdir(parents=True, exist_ok=True)
    me = Account.create()
    print(f"building an embedded chain with {blocks} blocks in {directory} ...", flush=True)
    with open_embedded(directory, artifacts_dir=ARTIFACTS) as chain:
        chain.fund(me.address, 10**20)
        probe = chain.deploy("Probe", 0, signer=me)
        i = 0
        while chain.block_number() < blocks:
            i += 1
            chain.transact(probe, "store", i % 1_000_000, TAG, "fill", signer=me)
    meta = {"probe": probe.address, "account": me.address}
    meta_file.write_text(json.dumps(meta))
    return directory, meta


def reopen(blocks: int, runs: int) -> dict[str, float]:
    directory, meta = build_workspace(blocks)
    opens, totals = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _REOPEN,
                str(directory),
                str(ARTIFACTS),
                meta["probe"],
                meta["account"],
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        totals.append(time.perf_counter() - t)
        result = json.loads(out)
        assert result["head"] >= blocks, result
        opens.append(result["open_and_read"])
    size = sum(f.stat().st_size for f in directory.iterdir()) / 2**20
    return {
        "open_and_read_s": statistics.median(opens),
        "process_s": statistics.median(totals),
        "size_mib": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=500, help="transactions per backend")
    parser.add_argument("--blocks", type=int, default=10_000, help="blocks in the reopen test")
    parser.add_argument("--runs", type=int, default=3, help="reopen runs (median reported)")
    parser.add_argument("--skip-anvil", action="store_true")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    with (
        tempfile.TemporaryDirectory() as tmp,
        open_embedded(Path(tmp) / "chain", artifacts_dir=ARTIFACTS) as chain,
    ):
        embedded, embedded_cpu = throughput(chain, args.tx)
    print(
        f"embedded: {embedded:7.1f} tx/s wall, {embedded_cpu:7.1f} tx per CPU-second"
        f" ({args.tx} store() transactions)"
    )
    if not args.skip_anvil and ANVIL.is_file():
        proc, url = start_anvil()
        try:
            with connect_rpc(url, artifacts_dir=ARTIFACTS) as chain:
                anvil, anvil_cpu = throughput(chain, args.tx, proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
        print(
            f"anvil:    {anvil:7.1f} tx/s wall, {anvil_cpu:7.1f} tx per CPU-second"
            f" (client + anvil; {args.tx} store() transactions)"
        )
        print(
            f"ratio embedded/anvil: {embedded / anvil:.2f} wall, {embedded_cpu / anvil_cpu:.2f} CPU"
        )
    r = reopen(args.blocks, args.runs)
    print(
        f"reopen {args.blocks} blocks ({r['size_mib']:.1f} MiB):"
        f" open+read {r['open_and_read_s']:.3f} s,"
        f" whole process incl. imports {r['process_s']:.2f} s (median of {args.runs})"
    )
    with tempfile.TemporaryDirectory() as tmp:  # the same workload on the big chain (a copy)
        shutil.copytree(DATA / f"chain-{args.blocks}", Path(tmp) / "chain")
        with open_embedded(Path(tmp) / "chain", artifacts_dir=ARTIFACTS) as chain:
            big, big_cpu = throughput(chain, args.tx)
    print(
        f"embedded after {args.blocks} blocks: {big:7.1f} tx/s wall,"
        f" {big_cpu:7.1f} tx per CPU-second"
    )


if __name__ == "__main__":
    main()

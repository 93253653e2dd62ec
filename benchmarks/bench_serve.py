"""The log service under load: 64 concurrent HTTP clients on loopback, side by side with the
in-process append rate of the same log.

Starts a real ``ailedger serve`` (a child process, stopped by its PID) over a fresh workspace,
pre-signs ``--submissions`` distinct envelopes, then ``--clients`` aiohttp clients (keep-alive,
one connection each) submit them all: every 201 is a durable entry (group commit, one fsync per
batch). Prints envelopes/s durable, p50/p99 latency, and the in-process rates of the same
envelopes into a fresh log (one ``append`` each = one fsync each; ``append_many`` in batches of
``--clients``), with the ratios. Targets (issue 13): >= 2,000 envelopes/s, p99 < 50 ms. The
machine's load average is printed before and after: other jobs share it, and so does the load
generator, whose CPU is printed beside the server's (per request: what each side costs). The
load generator freezes its own heap before the run (``gc.freeze``), so that its full garbage
collections, which would stall all its clients at once, are not counted as server latency.

``--membership chain`` has the service check on-chain membership instead of an allow-list: the
contracts are deployed on the workspace's embedded chain first (the signer joins an
organisation), and ``--membership-ttl`` sets how long an answer is cached (0: one read of the
in-process chain per submission). Compare the rates with ``--membership allow-list``.

    .venv/bin/python benchmarks/bench_serve.py [--submissions 4000] [--clients 64]
        [--membership allow-list|chain] [--membership-ttl 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from ailedger.attest.dsse import pae
from ailedger.identity.keys import Keystore, Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.workspace import Workspace

ORIGIN = "bench.ailedger.dev/served"
PTYPE = "application/vnd.in-toto+json"
AILEDGER = Path(sys.executable).with_name("ailedger")


def envelopes(n: int, signer: Secp256k1Signer) -> list[bytes]:
    out = []
    for i in range(n):
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"batch-{i}.csv", "digest": {"sha256": f"{i:064x}"}}],
            "predicateType": "https://ailedger.dev/bench/v1",
            "predicate": {"n": i},
        }
        body = json.dumps(statement, sort_keys=True).encode()
        sig = base64.b64encode(signer.sign(pae(PTYPE, body))).decode()
        doc = {
            "payload": base64.b64encode(body).decode(),
            "payloadType": PTYPE,
            "signatures": [{"keyid": signer.keyid, "sig": sig}],
        }
        out.append(json.dumps(doc).encode())
    return out


def start_server(root: Path, who: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [str(AILEDGER), "--workspace", str(root), "serve", "--port", "0", "--json"]
    proc = subprocess.Popen([*cmd, *who], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    if not ready:
        os.kill(proc.pid, signal.SIGKILL)
        raise SystemExit("ailedger serve did not start")
    return proc, str(json.loads(proc.stdout.readline())["url"])


async def load(url: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    queue = iter(bodies)
    latencies: list[float] = []

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(url, connector=connector) as session:
            for body in queue:
                t0 = time.perf_counter()
                async with session.post("/v1/entries", data=body) as response:
                    await response.read()
                    if response.status != 201:
                        raise SystemExit(f"unexpected HTTP {response.status}")
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0, latencies


def enrol_on_chain(ws: Workspace, member: Secp256k1Signer) -> None:
    """Deploy the contracts on the workspace's embedded chain; ``member`` joins an org."""
    from ailedger.chain import deploy_contracts
    from ailedger.chain.backends import open_workspace_chain
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
    from ailedger.chain.membership import Membership

    admin = Secp256k1Signer.generate()
    with open_workspace_chain(ws) as chain:
        chain.fund(admin.address, 10**19)
        dep = deploy_contracts(chain, admin)
        DeploymentBook(ws.path / DEPLOYMENTS_FILE).put(dep)
        members = Membership(chain, dep.open(chain, "Membership"))
        members.create_org("bench", admin.address, signer=admin)
        members.add_member(members.sign_join("bench", member), signer=admin)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """CPU of process ``pid`` (or of its thread ``task``), user + system."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--membership", choices=("allow-list", "chain"), default="allow-list")
    parser.add_argument("--membership-ttl", type=float, default=2.0)
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} (2 shared cores)")
    signer = Secp256k1Signer.generate()
    t0 = time.perf_counter()
    bodies = envelopes(args.submissions, signer)
    print(f"signed {len(bodies)} envelopes in {time.perf_counter() - t0:.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "server"
        root.mkdir()
        ws = Workspace.init(root, origin=ORIGIN, log_key="logkey")
        Keystore(ws.keys_dir).create("logkey", None, unsafe_plaintext=True)
        if args.membership == "chain":
            enrol_on_chain(ws, signer)
            who = ["--membership", "chain", "--membership-ttl", str(args.membership_ttl)]
        else:
            who = ["--allow", signer.address]
        proc, url = start_server(root, who)
        try:
            gc.collect()
            gc.freeze()
            cpu0, own0 = cpu_seconds(proc.pid), own_cpu_seconds()
            loop0 = cpu_seconds(proc.pid, proc.pid)  # the main thread runs the event loop
            wall, latencies = asyncio.run(load(url, bodies, args.clients))
            server_cpu = cpu_seconds(proc.pid) - cpu0
            loop_cpu = cpu_seconds(proc.pid, proc.pid) - loop0
            client_cpu = own_cpu_seconds() - own0
            gc.unfreeze()
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait()
        with TransparencyLog.open(root / ".ailedger" / "log.sqlite", read_only=True) as log:
            assert log.size() == len(bodies), log.size()
            checkpoints = len(log.checkpoints())

        http_rate = len(bodies) / wall
        q = statistics.quantiles(latencies, n=100)
        p50, p99 = q[49] * 1000, q[98] * 1000

        # in-process, the same envelopes into a fresh log
        single = TransparencyLog.open(Path(tmp) / "single.sqlite", ORIGIN)
        n_single = min(len(bodies), 500)
        t0 = time.perf_counter()
        for body in bodies[:n_single]:
            single.append(body)
        single_rate = n_single / (time.perf_counter() - t0)
        single.close()
        batch = max(1, args.clients)
        many = TransparencyLog.open(Path(tmp) / "many.sqlite", ORIGIN)
        t0 = time.perf_counter()
        for i in range(0, len(bodies), batch):
            many.append_many(bodies[i : i + batch])
        many_rate = len(bodies) / (time.perf_counter() - t0)
        many.close()

    print(f"load average after:  {os.getloadavg()[0]:.2f}")
    print()
    if args.membership == "chain":
        print(f"membership: on-chain, answers cached {args.membership_ttl:g} s")
    else:
        print("membership: allow-list")
    print(f"{'run':58} {'envelopes/s':>12} {'vs HTTP':>8}")
    print(
        f"{'HTTP, ' + str(args.clients) + ' clients, durable (group commit)':58} "
        f"{http_rate:12,.0f} {1.0:8.2f}x"
    )
    print(
        f"{'in-process append_many, batches of ' + str(batch) + ' (one fsync each)':58} "
        f"{many_rate:12,.0f} {many_rate / http_rate:8.2f}x"
    )
    print(
        f"{'in-process append, one fsync per entry (' + str(n_single) + ')':58} "
        f"{single_rate:12,.0f} {single_rate / http_rate:8.2f}x"
    )
    print()
    print(f"HTTP latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    n = len(bodies)
    print(
        f"server CPU: {server_cpu:.2f} s for {wall:.2f} s wall "
        f"({server_cpu / n * 1000:.3f} ms per envelope; event loop thread "
        f"{loop_cpu / n * 1000:.3f} ms, {loop_cpu / wall:.0%} busy); {checkpoints} checkpoints"
    )
    print(
        f"load generator CPU: {client_cpu:.2f} s ({client_cpu / n * 1000:.3f} ms per envelope); "
        f"both: {(server_cpu + client_cpu) / wall:.2f} of 2 cores"
    )
    print(
        f"targets: >= 2,000/s {'met' if http_rate >= 2000 else 'MISSED'}, "
        f"p99 < 50 ms {'met' if p99 < 50 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

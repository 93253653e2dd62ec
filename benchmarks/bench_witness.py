"""Witness round trip on loopback: add-checkpoint with a consistency proof, cosignature back.

Starts a real ``ailedger witness serve`` (a child process, stopped by its PID) over a fresh
workspace with an Ed25519 (or ``--key-type secp256k1``) witness key, then sends ``--rounds``
checkpoints of a growing log, one after the other on one keep-alive connection (the way a log
asks a witness): each request carries ``--leaves`` new entries' worth of checkpoint, the
consistency proof from the previous size, and a fresh Ed25519 log signature. Each answer's
cosignature is verified (outside the timed section). Every round trip includes the witness's
checks (log signature, consistency proof) and its durable state write (write, fsync, rename,
directory fsync). Prints p50/p99/mean; beside it, the same checks in process without HTTP
(:class:`Witness` directly), to show the HTTP share. Target (issue 13): < 10 ms on loopback.

    .venv/bin/python benchmarks/bench_witness.py [--rounds 500] [--leaves 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from ailedger.identity.keys import PBKDF2_ROUNDS_TEST_ONLY, SCRYPT_N_TEST_ONLY, Keystore
from ailedger.log import Checkpoint, Ed25519Cosigner, Ed25519NoteKey, SignedNote, parse_vkey, vkey
from ailedger.merkle import MerkleTree, leaf_hash
from ailedger.service.witness import Witness, format_add_checkpoint
from ailedger.workspace import Workspace

ORIGIN = "bench.ailedger.dev/witnessed"
AILEDGER = Path(sys.executable).with_name("ailedger")
PASSWORD = "bench-only"


def requests(rounds: int, leaves: int, key: Ed25519NoteKey) -> list[tuple[bytes, SignedNote]]:
    """The add-checkpoint bodies of a log growing by ``leaves`` entries per round."""
    tree = MerkleTree()
    out = []
    old = 0
    for r in range(rounds):
        for i in range(leaves):
            tree.append_leaf_hash(leaf_hash(f"{r}/{i}".encode()))
        size = tree.size
        note = SignedNote.sign(Checkpoint(ORIGIN, size, tree.root()).body(), [key])
        proof = tree.consistency_proof(old, size).hashes if old else ()
        out.append((format_add_checkpoint(old, proof, note), note))
        old = size
    return out


def start_witness(
    root: Path, log_key: Ed25519NoteKey
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    cmd = [str(AILEDGER), "--workspace", str(root), "witness", "serve", "--port", "0", "--json"]
    args = [
        "--key",
        "witness",
        "--state",
        str(root / "state"),
        "--log",
        f"{ORIGIN}={vkey(log_key)}",
    ]
    env = os.environ | {"AILEDGER_PASSWORD": PASSWORD}
    proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    if not ready:
        os.kill(proc.pid, signal.SIGKILL)
        raise SystemExit("ailedger witness serve did not start")
    return proc, json.loads(proc.stdout.readline())


def percentiles(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:.2f} ms, p99 {q[98]:.2f} ms, mean {statistics.fmean(ms):.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--leaves", type=int, default=8)
    parser.add_argument("--key-type", choices=["ed25519", "secp256k1"], default="ed25519")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    log_key = Ed25519NoteKey.generate(ORIGIN)
    bodies = requests(args.rounds, args.leaves, log_key)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "witness"
        root.mkdir()
        ws = Workspace.init(root, origin="bench.ailedger.dev/witness")
        store = Keystore(
            ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
        )
        store.create("witness", PASSWORD, keytype=args.key_type)
        proc, ready = start_witness(root, log_key)
        key = parse_vkey(ready["vkey"])
        parts = urlsplit(ready["url"])
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        http_ms: list[float] = []
        try:
            for body, note in bodies:
                t0 = time.perf_counter()
                conn.request("POST", "/add-checkpoint", body=body)
                response = conn.getresponse()
                answer = response.read()
                http_ms.append((time.perf_counter() - t0) * 1000)
                assert response.status == 200, answer
                SignedNote.parse(note.text + "\n" + answer.decode()).verify_one(key)
        finally:
            conn.close()
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)

        # the same requests in process: checks + durable state write, no HTTP
        cosigner = Ed25519Cosigner.generate("bench/in-process")
        local_ms: list[float] = []
        with Witness([cosigner], {ORIGIN: [log_key]}, Path(tmp) / "local") as witness:
            for body, _ in bodies:
                t0 = time.perf_counter()
                witness.add_checkpoint(body)
                local_ms.append((time.perf_counter() - t0) * 1000)

    size = bodies[-1][1].text.split("\n")[1]
    print(
        f"{args.rounds} rounds, {args.leaves} entries each (final size {size}), "
        f"{args.key_type} witness key"
    )
    print(f"HTTP round trip (loopback, keep-alive): {percentiles(http_ms)}")
    print(f"in process (Witness.add_checkpoint):    {percentiles(local_ms)}")
    p99 = statistics.quantiles(http_ms, n=100)[98]
    print(f"target p99 < 10 ms: {'met' if p99 < 10 else 'MISSED'}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

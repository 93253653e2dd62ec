"""Anchoring end to end (``ailedger.chain.anchoring``): the embedded chain next to a real anvil.

Workload, the same on both backends: a log of ``--entries`` entries gets ``--anchors``
rounds of (append ``--batch`` entries, sign a checkpoint, anchor it through
:func:`ailedger.chain.anchoring.anchor_checkpoint` with ``--witnesses`` local witness keys, with and
without the on-chain consistency proof); then :func:`verify_receipt_anchor` checks
``--verifies`` receipts against the chain. Printed: anchors/s, verifications/s, gas per
anchor, and the embedded/anvil ratios.

    .venv/bin/python benchmarks/bench_anchor.py                  # defaults below
    .venv/bin/python benchmarks/bench_anchor.py --anchors 20 --skip-anvil
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ailedger.attest.dsse import pae
from ailedger.chain import Chain, LogAnchors, connect_rpc, deploy_contracts, open_embedded
from ailedger.chain.anchoring import (
    AnchorBook,
    anchor_checkpoint,
    receipt_with_anchor,
    verify_receipt_anchor,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ORIGIN = "bench.ailedger.dev/anchor"
SIGNER = Secp256k1Signer(bytes.fromhex("12" * 32))


def _envelope(n: int) -> bytes:
    body = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"a{n}", "digest": {"sha256": f"{n:064x}"}}],
            "predicateType": "https://ailedger.dev/bench/v1",
            "predicate": {"n": n},
        }
    ).encode()
    ptype = "application/vnd.in-toto+json"
    sig = base64.b64encode(SIGNER.sign(pae(ptype, body))).decode()
    doc = {
        "payload": base64.b64encode(body).decode(),
        "payloadType": ptype,
        "signatures": [{"keyid": SIGNER.keyid, "sig": sig}],
    }
    return json.dumps(doc).encode()


def run(chain: Chain, tmp: Path, args: argparse.Namespace) -> dict[str, float]:
    log_key = Secp256k1Signer.generate()
    witnesses = [Secp256k1Signer.generate() for _ in range(args.witnesses)]
    chain.fund(log_key.address, 10**20)
    dep = deploy_contracts(chain, log_key)
    anchors = LogAnchors(chain, dep.open(chain, "LogAnchors"))
    log = TransparencyLog.open(tmp / "log.sqlite", ORIGIN)
    note_key = Secp256k1NoteKey.from_signer(ORIGIN, log_key)
    log.append_many([_envelope(i) for i in range(args.entries)])
    book = AnchorBook(tmp / "anchors.json")
    gas: dict[bool, list[int]] = {False: [], True: []}
    n = log.size()
    start = time.perf_counter()
    for i in range(args.anchors):
        log.append_many([_envelope(n + j) for j in range(args.batch)])
        n += args.batch
        log.checkpoint(note_key)
        proof = i % 2 == 1
        result = anchor_checkpoint(
            log, anchors, log_key, witness_keys=witnesses, with_consistency=proof, book=book
        )
        if i:  # the first one also registers the log
            gas[proof].append(result.gas_used)
    anchor_s = time.perf_counter() - start
    receipts = [receipt_with_anchor(log, k, note_key, book) for k in range(args.verifies)]
    start = time.perf_counter()
    for r in receipts:
        verify_receipt_anchor(r, anchors)
    verify_s = time.perf_counter() - start
    log.close()
    return {
        "anchors_per_s": args.anchors / anchor_s,
        "verifies_per_s": args.verifies / verify_s,
        "gas_anchor": statistics.mean(gas[False]),
        "gas_anchor_with_proof": statistics.mean(gas[True]),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=10_000, help="log size before anchoring")
    p.add_argument("--anchors", type=int, default=60)
    p.add_argument("--batch", type=int, default=10, help="entries appended per anchor")
    p.add_argument("--witnesses", type=int, default=2)
    p.add_argument("--verifies", type=int, default=50)
    p.add_argument("--skip-anvil", action="store_true")
    args = p.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "e").mkdir()
        with open_embedded(tmp / "e" / "chain") as chain:
            results["embedded"] = run(chain, tmp / "e", args)
        if not args.skip_anvil:
            if not ANVIL.is_file():
                sys.exit("anvil is missing: run `npm ci` (or pass --skip-anvil)")
            proc, url = _start_anvil()
            try:
                (tmp / "a").mkdir()
                with connect_rpc(url, index_path=tmp / "a" / "events.sqlite") as chain:
                    results["anvil"] = run(chain, tmp / "a", args)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait()
    print(
        f"{args.entries} entries, {args.anchors} anchors of {args.batch} entries each, "
        f"{args.witnesses} witnesses, {args.verifies} receipt verifications"
    )
    keys = ("anchors_per_s", "verifies_per_s", "gas_anchor", "gas_anchor_with_proof")
    print(
        f"{'':24}"
        + "".join(f"{k:>14}" for k in results)
        + ("   embedded/anvil" * (len(results) > 1))
    )
    for k in keys:
        row = [results[b][k] for b in results]
        ratio = f"{row[0] / row[1]:17.2f}" if len(row) > 1 else ""
        print(f"{k:24}" + "".join(f"{v:14.1f}" for v in row) + ratio)


if __name__ == "__main__":
    main()

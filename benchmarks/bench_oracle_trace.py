"""Where one oracle report's gas goes: ours vs Chainlink OCR2, traced opcode by opcode.

Starts a private anvil (npm ``@foundry-rs/anvil``) with ``--steps-tracing``, deploys
OracleFeeds (from source, as the tests do) and the OCR2 peer of bench_peers_gas.py
(benchmarks/contracts/OCR2MedianBench.sol over ``OCR2Base``), sends a later report to each at
n = 4, f = 1 and n = 7, f = 2 (f + 1 signatures, 2f + 1 observations) and sums
``debug_traceTransaction``'s gas by category: calldata, SLOAD (and how many were cold),
SSTORE, the ecrecover precompile calls, the event, KECCAK256 and every other opcode.

    .venv/bin/python benchmarks/bench_oracle_trace.py
"""

from __future__ import annotations

import collections
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from ailedger.chain.eip712 import sign_digest

REPO = Path(__file__).resolve().parents[1]
ANVIL = REPO / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
for folder in ("tests", "tests/contracts", "benchmarks"):
    sys.path.insert(0, str(REPO / folder))

import bench_peers_gas  # noqa: E402
import contract_helpers  # noqa: E402
import oracle_helpers  # noqa: E402

from _anvil import _rpc as anvil_rpc  # noqa: E402
from _anvil import free_port  # noqa: E402

CATEGORIES = ("SLOAD", "SSTORE", "STATICCALL", "KECCAK256")


def breakdown(w3: Web3, receipt: Any) -> dict[str, int]:
    """Gas of the transaction of ``receipt`` by category (from its struct logs)."""
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    options = {"disableStorage": True, "disableMemory": True, "disableStack": True}
    steps = w3.provider.make_request("debug_traceTransaction", [tx, options])  # type: ignore[arg-type]
    logs = steps["result"]["structLogs"]
    gas: collections.Counter[str] = collections.Counter()
    for i, step in enumerate(logs):
        op, cost = step["op"], int(step["gasCost"])
        if op in ("STATICCALL", "CALL") and logs[i + 1]["depth"] == step["depth"]:
            cost = int(step["gas"]) - int(logs[i + 1]["gas"])  # gasCost includes gas forwarded
        if op == "SLOAD" and cost == 2_100:
            gas["cold SLOADs"] += 1
        gas["LOG" if op.startswith("LOG") else op if op in CATEGORIES else "other"] += cost
    data = bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])
    gas["calldata"] = sum(16 if b else 4 for b in data)
    gas["total"] = int(receipt["gasUsed"])
    return dict(gas)


def ocr2_report(w3: Web3, chain: Any, n: int, f: int, values: list[int]) -> Any:
    """Deploy the OCR2 peer, send its first report, return the receipt of a later one."""
    contract = chain.deploy("OCR2MedianBench")
    keys = oracle_helpers.oracle_keys(n, base=7000)
    transmitters = chain.accounts[:n]
    chain.send(
        contract.functions.setConfig([k.address for k in keys], transmitters, f, b"", 1, b"")
    )
    digest = bytes(contract.functions.latestConfigDetails().call()[2])

    def transmit(epoch: int) -> Any:
        now = int(w3.eth.get_block("latest")["timestamp"])
        observers = bytes(range(len(values))).ljust(32, b"\0")
        report = encode(
            ["uint32", "bytes32", "int192[]", "int192"], [now, observers, values, 10**18]
        )
        context = [digest, (epoch << 8).to_bytes(32, "big"), keccak(b"extra hash")]
        signed = keccak(keccak(report) + b"".join(context))
        sigs = [sign_digest(signed, k) for k in keys[: f + 1]]
        raw_vs = bytes(s[64] - 27 for s in sigs).ljust(32, b"\0")
        call = contract.functions.transmit(
            context, report, [s[:32] for s in sigs], [s[32:64] for s in sigs], raw_vs
        )
        return chain.send(call, transmitters[0])

    transmit(1)
    return transmit(2)


def _start_anvil(port: int) -> subprocess.Popen[bytes]:
    """anvil with step tracing (debug_traceTransaction returns struct logs), once it answers."""
    args = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    proc = subprocess.Popen([*args, "--steps-tracing"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            anvil_rpc(f"http://127.0.0.1:{port}", "eth_chainId")
            return proc
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError("anvil did not start") from None
            time.sleep(0.05)


def main() -> None:
    if not ANVIL.is_file():
        sys.exit(f"error: {ANVIL} is missing: run `npm ci` in {REPO}")
    bench, _ = bench_peers_gas._compile_bench(contract_helpers)
    compiled = {**oracle_helpers.compile_all(), **bench}
    port = free_port()
    proc = _start_anvil(port)
    rows: list[tuple[str, dict[str, int]]] = []
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        for n, f in ((4, 1), (7, 2)):
            o = oracle_helpers.deploy_oracles(w3, n=n, f=f, compiled=compiled)
            values = list(range(100, 100 + 2 * f + 1))
            o.accept(1, values)  # the feed's first report: not counted
            rows.append((f"ours n={n} f={f}", breakdown(w3, o.accept(2, values))))
            ocr2 = ocr2_report(w3, o.chain, n, f, values)
            rows.append((f"OCR2 n={n} f={f}", breakdown(w3, ocr2)))
    finally:
        proc.terminate()  # the anvil started above, by its PID
        proc.wait(timeout=10)
    keys = ["total", "calldata", "SLOAD", "cold SLOADs", "SSTORE", "STATICCALL", "LOG"]
    keys += ["KECCAK256", "other"]
    print(f"{'gas of one later report':<24}" + "".join(f"{name:>16}" for name, _ in rows))
    for key in keys:
        print(f"{key:<24}" + "".join(f"{row.get(key, 0):>16,}" for _, row in rows))
    print(
        "(STATICCALL = the ecrecover precompile calls; LOG = the event; other = all other opcodes)"
    )


if __name__ == "__main__":
    main()

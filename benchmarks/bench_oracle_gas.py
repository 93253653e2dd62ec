"""Gas to accept an oracle report with 2, 4 and 8 signatures, next to the per-signature cost
of an ecrecover (the 3,000-gas precompile, the floor of any on-chain signature check).

Deploys contracts/OracleFeeds.sol (compiled from source with the pinned solc-js, like the
tests) on web3.py's in-memory py-evm chain and measures ``transmit`` from receipts:

* fixed report (one feed, n = 31 oracles, f = 1, 8 observations), varying only the number of
  signatures (2, 4, 8, 16): the marginal gas per signature;
* realistic configurations n = 3f + 1 with f + 1 signatures and 2f + 1 observations
  (f = 1, 3, 7 -> 2, 4, 8 signatures);
* the gas of one bare ecrecover precompile call made from a contract-free transaction
  (21,000 base + calldata + 3,000), for scale.

    .venv/bin/python benchmarks/bench_oracle_gas.py [--reports 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

REPO = Path(__file__).resolve().parents[1]
ECRECOVER_PRECOMPILE_GAS = 3_000


def _load(name: str) -> Any:
    """A helper module from tests/contracts/ (compile, deploy, sign)."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    spec = importlib.util.spec_from_file_location(name, tests / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=3, help="reports averaged per point")
    args = parser.parse_args()

    h = _load("oracle_helpers")
    from ailedger.chain.oracle_report import feed_label

    w3 = Web3(EthereumTesterProvider())
    o = h.deploy_oracles(w3)
    c = o.chain
    counter = iter(range(10**6))

    def new_feed(n: int, f: int) -> bytes:
        label = feed_label(f"bench/{next(counter)}")
        keys = h.oracle_keys(n, base=1000 + 100 * next(counter))
        o.keys.extend(keys)
        addresses = [k.address for k in keys]
        feed: bytes = o.create_feed(label, addresses, f, bounds=(0, 10**6))
        return feed

    def transmit(feed: bytes, epoch: int, observations: int, signatures: int) -> int:
        values = list(range(100, 100 + observations))
        report = o.report(epoch, values, feed=feed)
        sigs = o.sign(report, o.signer_keys(feed)[:signatures])
        return int(c.send(o.transmit(report, sigs))["gasUsed"])

    def measure(feed: bytes, observations: int, signatures: int) -> int:
        start = int(o.feeds.functions.latestEpoch(feed).call()) + 1
        transmit(feed, start, observations, signatures)  # the feed's first report: not counted
        gas = [transmit(feed, start + 1 + i, observations, signatures) for i in range(args.reports)]
        return sum(gas) // len(gas)

    print("Gas per accepted report (transmit), later reports of a feed, py-evm (cancun)\n")
    print("Fixed report: n = 31 oracles, f = 1, 8 observations; only the signature count varies")
    wide = new_feed(31, 1)
    rows = {k: measure(wide, 8, k) for k in (2, 4, 8, 16)}
    print(f"{'signatures':>10} {'gas':>9} {'gas/sig vs 2':>13}")
    for k, gas in rows.items():
        marginal = "" if k == 2 else f"{(gas - rows[2]) / (k - 2):,.0f}"
        print(f"{k:>10} {gas:>9,} {marginal:>13}")
    per_sig = (rows[16] - rows[2]) / 14

    print("\nRealistic configurations: n = 3f + 1, f + 1 signatures, 2f + 1 observations")
    print(f"{'f':>3} {'n':>3} {'signatures':>10} {'observations':>12} {'gas':>9}")
    for f in (1, 2, 3, 7):
        gas = measure(new_feed(3 * f + 1, f), 2 * f + 1, f + 1)
        print(f"{f:>3} {3 * f + 1:>3} {f + 1:>10} {2 * f + 1:>12} {gas:>9,}")

    # A bare ecrecover: a transaction straight to precompile 0x01 with (digest, v, r, s).
    report = o.report(int(o.feeds.functions.latestEpoch(wide).call()) + 1, [1, 2, 3], feed=wide)
    sig = o.sign(report, o.signer_keys(wide)[:1])[0]
    data = b"\x11" * 32 + sig[64:65].rjust(32, b"\0") + sig[:64]
    tx = {"from": c.accounts[0], "to": "0x" + "00" * 19 + "01", "data": data, "gas": 100_000}
    bare = int(w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction(tx))["gasUsed"])
    calldata = sum(16 if b else 4 for b in data)
    print(
        f"\nbare ecrecover tx: {bare:,} gas = 21,000 base + {calldata:,} calldata"
        f" + {bare - 21_000 - calldata:,} (precompile {ECRECOVER_PRECOMPILE_GAS:,})"
    )
    print(
        f"marginal gas per extra signature in transmit: {per_sig:,.0f}"
        f" = {per_sig / ECRECOVER_PRECOMPILE_GAS:.2f}x the ecrecover precompile"
        f" ({per_sig - ECRECOVER_PRECOMPILE_GAS:,.0f} gas of calldata, decoding,"
        " ordering and membership check)"
    )
    machine = platform.processor() or platform.machine()
    print(f"\nmachine: {machine}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()

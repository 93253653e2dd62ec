"""Gas of a federated-learning reward round (contracts/FLRewards.sol) at 8, 64 and 512 clients,
beside paying each client with a transfer.

On web3.py's in-memory py-evm chain (eth-tester), contracts compiled from source with the pinned
solc-js like the tests; gas is read from receipts (deterministic). For each number of clients N:

* ``postRound``: the aggregator's signed round record with the payout tree's root (N leaves)
  and a penalty tree's root: what the round costs on-chain, whatever N is;
* ``claim``: a client's payout with its RFC 9162 inclusion proof (ceil(log2 N) hashes), paid by
  that client, measured for 8 clients spread over the tree (first, last, between), ether pool;
* beside it, paying every client with a plain transfer: N ether transfers (21,000 each, to
  accounts that already exist) and N ERC-20 transfers (ConsortiumToken, recipients that
  already hold the token), one transaction each, measured for every client.

    .venv/bin/python benchmarks/bench_fl_gas.py [--clients 8 64 512] [--claimants 8]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "contracts"))

import fl_helpers as fh  # noqa: E402
from oracle_helpers import warp  # noqa: E402

from ailedger.markets.flrewards import Payout, PayoutTree, split_budget  # noqa: E402

_EXTRA = 8  # node accounts beyond the helpers' ten, the claimants
_BASE_ACCOUNTS = 10


def _world(claimants: int) -> fh.FL:
    state = PyEVMBackend.generate_genesis_state(num_accounts=_BASE_ACCOUNTS + claimants)
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
    fl = fh.deploy_fl(w3)
    for who in fl.chain.accounts[_BASE_ACCOUNTS:]:
        fl.sm.give(fl.sm.token, who, 10 * fh.STAKE)
        fl.sm.deposit(who, fl.sm.token, 3 * fh.STAKE)
    return fl


def _synthetic(i: int) -> str:
    return Web3.to_checksum_address(f"0x{0xF1000000 + i:040x}")


def _spread(n: int, k: int) -> list[int]:
    """``k`` leaf positions spread over ``0..n-1`` (first and last included)."""
    if k >= n:
        return list(range(n))
    return sorted({round(j * (n - 1) / (k - 1)) for j in range(k)})


def round_gas(fl: fh.FL, n: int, claimants: int) -> dict[str, Any]:
    """Post one round of ``n`` payouts and have ``claimants`` of them claim."""
    snap = fl.chain.snapshot()
    try:
        chain = fl.chain
        task = fl.start(clients=0)
        claimers = chain.accounts[_BASE_ACCOUNTS : _BASE_ACCOUNTS + claimants]
        for i, who in enumerate(claimers):
            chain.send(fl.f.join(task, fh.data_root(i)), who)
        # n clients: synthetic addresses, then the real claimants placed at spread positions
        others = [_synthetic(i) for i in range(n)]
        scores = {a: 1 + i % 7 for i, a in enumerate(others)}
        tree = PayoutTree(split_budget(scores, fh.BUDGET))
        positions = _spread(n, min(claimants, n))
        order = [p.client for p in tree.payouts]
        swap = {order[p]: claimers[j] for j, p in enumerate(positions)}
        payouts = [Payout(swap.get(p.client, p.client), p.amount) for p in tree.payouts]
        tree = PayoutTree(payouts)
        record = fl.record(task, 1, tree, penalties=fh.penalties((claimers[0], 1, 1)))
        posted = int(chain.send(fl.post_call(record), fl.bystander)["gasUsed"])
        warp(chain, fh.WINDOW + 1)
        claims = []
        for who in claimers[: len(positions)]:
            claims.append(int(chain.send(fl.claim_call(task, 1, tree, who), who)["gasUsed"]))
        return {
            "n": n,
            "post": posted,
            "claims": claims,
            "proof": math.ceil(math.log2(n)) if n > 1 else 0,
        }
    finally:
        fl.chain.revert_to(snap)


def transfer_gas(fl: fh.FL, n: int) -> tuple[int, int]:
    """Total gas of n ether transfers and of n ERC-20 transfers, one per client."""
    snap = fl.chain.snapshot()
    try:
        chain, w3 = fl.chain, fl.chain.w3
        sponsor = fl.sponsor
        recipients = [_synthetic(i) for i in range(n)]
        token = fl.sm.token.functions
        # the clients exist and hold the token already (a first payment to an empty account
        # or a zero token balance would cost more): seed each with 1 wei and 1 token unit
        funder = chain.accounts[0]
        for r in recipients:
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_transaction({"from": funder, "to": r, "value": 1})
            )
            chain.send(token.transfer(r, 1), funder)
        ether = erc20 = 0
        for r in recipients:
            tx = w3.eth.send_transaction({"from": sponsor, "to": r, "value": 10**12})
            ether += int(w3.eth.wait_for_transaction_receipt(tx)["gasUsed"])
            erc20 += int(chain.send(token.transfer(r, 10**12), sponsor)["gasUsed"])
        return ether, erc20
    finally:
        fl.chain.revert_to(snap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64, 512])
    parser.add_argument("--claimants", type=int, default=_EXTRA)
    args = parser.parse_args()
    t0 = time.perf_counter()
    fl = _world(args.claimants)
    rows = []
    for n in args.clients:
        r = round_gas(fl, n, args.claimants)
        r["ether"], r["erc20"] = transfer_gas(fl, n)
        rows.append(r)
    print("\nGas per reward round: one root of payouts, claimed by each client with a proof,")
    print("beside paying each client with one transfer (ether pool; FLRewards on py-evm)\n")
    print(
        f"{'clients':>7} {'postRound':>10} {'claim avg':>10} {'proof':>6}"
        f" {'post+all claims':>16} {'N ether transfers':>18} {'N ERC-20 transfers':>19}"
        f" {'post vs ether':>14} {'post vs ERC-20':>15}"
    )
    for r in rows:
        n, post = r["n"], r["post"]
        avg = sum(r["claims"]) / len(r["claims"])
        total = post + round(avg * n)
        print(
            f"{n:>7,} {post:>10,} {avg:>10,.0f} {r['proof']:>6} {total:>16,} {r['ether']:>18,}"
            f" {r['erc20']:>19,} {r['ether'] / post:>13.1f}x {r['erc20'] / post:>14.1f}x"
        )
    for r in rows:
        print(
            f"  N={r['n']}: claims measured {min(r['claims']):,}..{max(r['claims']):,} gas "
            f"({len(r['claims'])} clients)"
        )
    first, last = rows[0]["post"], rows[-1]["post"]
    print(
        f"\npostRound at {rows[-1]['n']} clients vs {rows[0]['n']}: {last:,} vs {first:,} gas "
        f"({(last - first) / first:+.2%}); 'post+all claims' extrapolates the measured average "
        "claim to every client"
    )
    load = os.getloadavg()
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, py-evm (eth-tester) chain; load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {time.perf_counter() - t0:.0f} s wall"
    )


if __name__ == "__main__":
    main()

"""Gas of the labeling market (contracts/LabelingMarket.sol) on web3.py's in-memory py-evm chain,
compiled from source with the pinned solc-js like the tests; gas is read from receipts.

* scoring one labeler on-chain against 20, 50 and 100 gold items of a 1,000-image batch (and the
  requester's gold reveal with its inclusion proofs), beside a plain ERC-20 transfer;
* one whole task of 1,000 images with 20 labelers (15 pass, 3 below the threshold, 2 never
  reveal) and 50 gold items: every transaction from posting to the last claim, its cost at
  20 gwei against the 0.05 ETH target, and where the gas goes.

    .venv/bin/python benchmarks/bench_labeling_gas.py [--gold 50] [--labelers 20]
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from eth_tester import EthereumTester, PyEVMBackend
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "contracts"))

import labeling_helpers as lh  # noqa: E402
from labeling_helpers import Labeling  # noqa: E402

from ailedger.markets.labeling import labels_commitment  # noqa: E402

ITEMS = 1_000
GWEI = 20
TARGET_ETH = 0.05


def _world(accounts: int) -> Labeling:
    state = PyEVMBackend.generate_genesis_state(num_accounts=accounts)
    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend(genesis_state=state))))
    lm = lh.deploy_labeling(w3)
    for who in lm.chain.accounts[9:]:
        lm.s.give(lm.s.token, who, 10**24)
    return lm


def _gas(receipt: Any) -> int:
    return int(receipt["gasUsed"])


def score_gas(lm: Labeling, gold_counts: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(gold items, revealGold gas, score gas of one labeler) per gold count."""
    rows = []
    labeler = 9
    for n in gold_counts:
        gold = lh.gold_set(ITEMS, n, seed=n)
        task = lm.post(gold, items=ITEMS)
        lm.stake_and_join(task, labeler)
        labels = lh.labels_with(gold, n, items=ITEMS)
        lm.commit(task, labeler, labels)
        lm.to_reveal()
        lm.reveal(task, labeler, labels)
        lm.to_gold()
        reveal = _gas(lm.reveal_gold(task, gold))
        rows.append((n, reveal, _gas(lm.score(task, labeler, labels, gold))))
        labeler += 1
    return rows


def full_task(lm: Labeling, labelers: int, gold_count: int) -> dict[str, int]:
    """Gas by step of one task, from posting to the last claim (staking itself apart)."""
    by: dict[str, int] = defaultdict(int)
    gold = lh.gold_set(ITEMS, gold_count, seed=99)
    who = list(range(9, 9 + labelers))
    late = set(who[-2:])
    weak = set(who[-5:-2])
    answers = {
        i: lh.labels_with(gold, gold_count // 2 if i in weak else gold_count, ITEMS, seed=i)
        for i in who
    }
    token = lm.s.token
    for i in who:  # staking is the labeler's standing deposit, not the task's cost
        lm.s.deposit(lm.who(i), token, lh.MIN_STAKE * 3)
    by["_stake deposits (approve + deposit, not per task)"] = 0
    chain = lm.chain
    approve = chain.send(token.functions.approve(lm.market.address, lh.POOL), lm.requester)
    by["approve pool"] += _gas(approve)
    before = chain.block_number()
    task = lm.post(gold, items=ITEMS)
    by["createTask"] += _receipt_gas(lm, before)
    for i in who:  # join and commit in one transaction each
        salt = bytes([i]) * 32
        lm.salts[(task, lm.who(i))] = salt
        c = labels_commitment(chain.chain_id, lm.market.address, task, lm.who(i), answers[i], salt)
        call = lm.market.functions.join(task, c)
        by["join + commit (locks stake)"] += _gas(chain.send(call, lm.who(i)))
    lm.to_reveal()
    for i in who:
        if i not in late:
            by["reveal (1,000 labels)"] += _gas(lm.reveal(task, i, answers[i]))
    lm.to_gold()
    by["revealGold (proofs)"] += _gas(lm.reveal_gold(task, gold))
    revealed = [i for i in who if i not in late]  # scored in one transaction
    call = lm.market.functions.score(
        task, [lm.who(i) for i in revealed], [answers[i] for i in revealed], gold.records()
    )
    by[f"score ({len(revealed)} labelers, one call)"] += _gas(chain.send(call))
    by["settle (unlocks, slashes, shares)"] += _gas(chain.send(lm.market.functions.settle(task)))
    for i in who:
        if lm.owed(lm.who(i)):
            call = lm.market.functions.claim(token.address, lm.who(i))
            by["claim"] += _gas(chain.send(call, lm.who(i)))
    if lm.owed(lm.requester):
        call = lm.market.functions.claim(token.address, lm.requester)
        by["claim"] += _gas(chain.send(call, lm.requester))
    del by["_stake deposits (approve + deposit, not per task)"]
    return dict(by)


def _receipt_gas(lm: Labeling, before: int) -> int:
    """Gas of the one transaction (createTask) mined after block ``before`` (post() approves
    again first: skip that block)."""
    w3 = lm.chain.w3
    total = 0
    for n in range(before + 1, lm.chain.block_number() + 1):
        block = w3.eth.get_block(n, full_transactions=True)
        for tx in block["transactions"]:
            receipt = w3.eth.get_transaction_receipt(tx["hash"])  # type: ignore[index]
            if receipt["to"] == lm.market.address:
                total += int(receipt["gasUsed"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", type=int, default=50, help="gold items of the whole task")
    parser.add_argument("--labelers", type=int, default=20)
    args = parser.parse_args()
    lm = _world(9 + args.labelers + 8)
    token = lm.s.token
    transfer = _gas(lm.chain.send(token.functions.transfer(lm.who(2), 10**18), lm.who(1)))
    print("Scoring one labeler on-chain (1,000-image batch) beside a plain ERC-20 transfer")
    print(f"{'gold items':>10} {'score':>9} {'vs transfer':>12} {'revealGold':>11} {'per item':>9}")
    for n, reveal, score in score_gas(lm, (20, 50, 100)):
        print(f"{n:>10} {score:>9,} {score / transfer:>11.2f}x {reveal:>11,} {reveal // n:>9,}")
    print(f"{'transfer':>10} {transfer:>9,}")
    by = full_task(lm, args.labelers, args.gold)
    total = sum(by.values())
    eth = total * GWEI / 1e9
    print(
        f"\nOne task: {ITEMS:,} images, {args.labelers} labelers, {args.gold} gold items "
        f"(15 pass, 3 below the threshold, 2 never reveal)"
    )
    for step, used in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"  {step:<36} {used:>11,}  {used / total:>6.1%}")
    print(f"  {'total':<36} {total:>11,}")
    verdict = "meets" if eth < TARGET_ETH else f"misses by {eth / TARGET_ETH:.2f}x"
    print(f"at {GWEI} gwei: {eth:.4f} ETH vs the {TARGET_ETH} ETH target: {verdict}")
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, py-evm (eth-tester) chain"
    )


if __name__ == "__main__":
    main()

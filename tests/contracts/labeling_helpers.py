"""Helpers for the LabelingMarket tests (and benchmarks/bench_labeling_gas.py): a StakeManager
world (``stake_helpers``) plus a LabelingMarket registered as its judge and market; post tasks,
join, commit, reveal, reveal the gold, score and settle; read the books.

Roles: ``accounts[0]`` governs the StakeManager, holds the tokens' supply and requests tasks;
``accounts[1..6]`` label; ``accounts[8]`` is the treasury.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from contract_helpers import Chain
from oracle_helpers import now, warp
from stake_helpers import GOVERNANCE, Stakes, deploy_stakes
from web3 import Web3
from web3.contract import Contract

from ailedger.markets.labeling import GoldSet, labels_commitment

ITEMS = 40
GOLD = 8
POOL = 1_000_003  # odd: shares do not divide it
MIN_STAKE = 10_000
THRESHOLD = 7_000  # 70 %
COMMIT, REVEAL, GOLD_WINDOW = 3_600, 3_600, 3_600
LABELERS = (1, 2, 3, 4, 5, 6)


@dataclass
class Labeling:
    s: Stakes
    market: Contract
    salts: dict[tuple[int, str], bytes] = field(default_factory=dict)

    @property
    def chain(self) -> Chain:
        return self.s.chain

    @property
    def requester(self) -> str:
        return self.chain.accounts[0]

    def who(self, i: int) -> str:
        return self.chain.accounts[i]

    def post(
        self,
        gold: GoldSet,
        *,
        token: Contract | None = None,
        items: int = ITEMS,
        pool: int = POOL,
        min_stake: int = MIN_STAKE,
        threshold: int = THRESHOLD,
        sender: str | None = None,
    ) -> int:
        token = token or self.s.token
        sender = sender or self.requester
        self.chain.send(token.functions.approve(self.market.address, pool), sender)
        t = now(self.chain)
        params = (
            token.address,
            b"\xba" * 32,
            items,
            gold.root(),
            len(gold.items),
            pool,
            min_stake,
            threshold,
            t + COMMIT,
            t + COMMIT + REVEAL,
            t + COMMIT + REVEAL + GOLD_WINDOW,
        )
        receipt = self.chain.send(self.market.functions.createTask(params), sender)
        (event,) = self.chain.events(self.market, "TaskCreated", receipt)
        return int(event["args"]["taskId"])

    def stake_and_join(self, task: int, i: int, token: Contract | None = None) -> Any:
        token = token or self.s.token
        self.s.deposit(self.who(i), token, MIN_STAKE * 3)
        return self.chain.send(self.market.functions.join(task, b"\x00" * 32), self.who(i))

    def commit(self, task: int, i: int, labels: bytes) -> Any:
        salt = random.Random(f"{task}/{i}").randbytes(32)
        self.salts[(task, self.who(i))] = salt
        c = labels_commitment(
            self.chain.chain_id, self.market.address, task, self.who(i), labels, salt
        )
        return self.chain.send(self.market.functions.commit(task, c), self.who(i))

    def reveal(self, task: int, i: int, labels: bytes) -> Any:
        salt = self.salts[(task, self.who(i))]
        return self.chain.send(self.market.functions.reveal(task, labels, salt), self.who(i))

    def reveal_gold(self, task: int, gold: GoldSet) -> Any:
        call = self.market.functions.revealGold(
            task, list(gold.salts), gold.records(), gold.proofs()
        )
        return self.chain.send(call, self.requester)

    def score(self, task: int, i: int, labels: bytes, gold: GoldSet) -> Any:
        call = self.market.functions.score(task, [self.who(i)], [labels], gold.records())
        return self.chain.send(call)

    def to_reveal(self) -> None:
        warp(self.chain, COMMIT + 1)

    def to_gold(self) -> None:
        warp(self.chain, REVEAL + 1)

    def past_gold(self) -> None:
        warp(self.chain, GOLD_WINDOW + 1)

    def owed(self, who: str, token: Contract | None = None) -> int:
        return int(self.market.functions.owed(who, (token or self.s.token).address).call())

    def books(self, token: Contract | None = None) -> None:
        """The market holds every open pool and every unclaimed payment, and no more."""
        token = token or self.s.token
        m = self.market.functions
        escrowed = m.escrowed(token.address).call()
        owed = m.totalOwed(token.address).call()
        assert token.functions.balanceOf(self.market.address).call() == escrowed + owed


def deploy_labeling(w3: Web3) -> Labeling:
    s = deploy_stakes(w3)
    market = s.chain.deploy("LabelingMarket", s.manager.address)
    gov = s.governor
    s.chain.send(s.manager.functions.proposeJudge(market.address, 5_000), gov)
    s.chain.send(s.manager.functions.proposeMarket(market.address), gov)
    warp(s.chain, GOVERNANCE)
    assert s.manager.functions.isMarket(market.address).call()
    for i in (4, 5, 6):
        for t in (s.token, s.fee, s.hook):
            s.give(t, s.chain.accounts[i], 10**24)
    return Labeling(s, market)


def gold_set(items: int = ITEMS, count: int = GOLD, seed: int = 0) -> GoldSet:
    rng = random.Random(seed)
    picked = sorted(rng.sample(range(items), count))
    return GoldSet.derive(
        [(i, rng.randrange(10)) for i in picked], b"gold secret " + bytes([seed]) * 8
    )


def labels_with(gold: GoldSet, correct: int, items: int = ITEMS, seed: int = 1) -> bytes:
    """Labels that get exactly ``correct`` of ``gold``'s items right."""
    rng = random.Random(seed)
    out = bytearray(rng.randrange(10) for _ in range(items))
    for k, (item, label) in enumerate(gold.items):
        out[item] = label if k < correct else (label + 1) % 10
    return bytes(out)

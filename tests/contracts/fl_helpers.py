"""Helpers for the FLRewards tests (and benchmarks/bench_fl_gas.py): a StakeManager world
(``stake_helpers``) plus FLRewards registered there as a market and a judge.

Roles: ``accounts[5]`` is the sponsor, ``accounts[2]`` the aggregator (its bond staked in the
consortium token; its round records signed by the off-chain key ``AGG_KEY``), ``accounts[1]``,
``[3]``, ``[4]`` and ``[6]`` the clients (each staked), ``accounts[9]`` a bystander who joins
nothing, ``VERIFIERS`` three off-chain keys (threshold 2). Records, trees and signatures are
the library's (:mod:`ailedger.markets.flrewards`), so the tests also check that Python and
Solidity agree byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract_helpers import Chain, key
from oracle_helpers import now, pay, warp
from stake_helpers import ETHER_ASSET, GOVERNANCE, PROVER_BPS, Stakes, deploy_stakes
from web3 import Web3
from web3.contract import Contract

from ailedger.chain.eip712 import Domain
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.flrewards import (
    Correction,
    Payout,
    PayoutTree,
    Penalty,
    PenaltyTree,
    RoundRecord,
    fl_rewards_domain,
    sign_correction,
    sign_round_record,
)

BUDGET = 10**18
ROUNDS = 3
STAKE = 10**20
BOND = 5 * 10**20
WINDOW = 3_600
DEADLINE_IN = 7 * 86_400
TOLERANCE_E6 = 1_000
HELDOUT = b"\x4e" * 32
OTHER_HELDOUT = b"\x4f" * 32
MODEL0 = b"\x10" * 32
SCORES = b"\x5c" * 32
AGG_KEY = key(400)
VERIFIERS = sorted((key(410 + i) for i in range(3)), key=lambda s: int(s.address, 16))
OPEN, ACTIVE, HALTED, FINISHED, CANCELLED = 1, 2, 3, 4, 5


def model(i: int) -> bytes:
    """The global model digest after round ``i`` (``MODEL0`` before round 1)."""
    return MODEL0 if i == 0 else bytes([0x10 + i]) * 32


@dataclass
class FL:
    sm: Stakes
    rewards: Contract
    reenterer: Contract

    @property
    def chain(self) -> Chain:
        return self.sm.chain

    @property
    def f(self) -> Any:
        return self.rewards.functions

    @property
    def sponsor(self) -> str:
        return self.chain.accounts[5]

    @property
    def aggregator(self) -> str:
        return self.chain.accounts[2]

    @property
    def clients(self) -> list[str]:
        a = self.chain.accounts
        return [a[1], a[3], a[4], a[6]]

    @property
    def bystander(self) -> str:
        return self.chain.accounts[9]

    def domain(self, chain_id: int | None = None, contract: str | None = None) -> Domain:
        return fl_rewards_domain(
            self.chain.chain_id if chain_id is None else chain_id,
            self.rewards.address if contract is None else contract,
        )

    def terms(self, asset: str | None = None, **over: Any) -> tuple[Any, ...]:
        t: dict[str, Any] = {
            "aggregator": self.aggregator,
            "asset": ETHER_ASSET if asset is None else asset,
            "stakeAsset": self.sm.token.address,
            "roundBudget": BUDGET,
            "stakePerClient": STAKE,
            "aggregatorBond": BOND,
            "heldoutRoot": HELDOUT,
            "initialModel": MODEL0,
            "deadline": now(self.chain) + DEADLINE_IN,
            "challengeWindow": WINDOW,
            "rounds": ROUNDS,
            "toleranceE6": TOLERANCE_E6,
            "threshold": 2,
        }
        t.update(over)
        return tuple(t.values())

    def create(
        self, asset: str | None = None, verifiers: list[str] | None = None, **over: Any
    ) -> bytes:
        """Create a task as the sponsor (pool sent as ether or approved); its id."""
        t = self.terms(asset, **over)
        vs = [v.address for v in VERIFIERS] if verifiers is None else verifiers
        call = self.f.createTask(t, vs)
        if t[1] == ETHER_ASSET:
            receipt = pay(self.chain, call, self.sponsor, t[3] * t[10])
            assert receipt["status"] == 1
        else:
            receipt = self.chain.send(call, self.sponsor)
        (event,) = self.chain.events(self.rewards, "TaskCreated", receipt)
        return bytes(event["args"]["taskId"])

    def start(self, asset: str | None = None, clients: int = 4, **over: Any) -> bytes:
        """A task accepted by the aggregator and joined by the first ``clients`` clients."""
        task = self.create(asset, **over)
        self.chain.send(self.f.acceptTask(task, AGG_KEY.address), self.aggregator)
        for i, c in enumerate(self.clients[:clients]):
            self.chain.send(self.f.join(task, data_root(i)), c)
        return task

    def record(
        self,
        task: bytes,
        rnd: int,
        payouts: PayoutTree,
        penalties: PenaltyTree | None = None,
        **over: Any,
    ) -> RoundRecord:
        pen = penalties or PenaltyTree([])
        fields: dict[str, Any] = {
            "task_id": task,
            "round": rnd,
            "model_before": model(rnd - 1),
            "model_after": model(rnd),
            "heldout_root": HELDOUT,
            "scores_root": SCORES,
            "payout_root": payouts.root,
            "payout_count": payouts.size,
            "payout_total": payouts.total,
            "penalty_root": pen.root,
            "penalty_count": pen.size,
        }
        fields.update(over)
        return RoundRecord(**fields)

    def post_call(
        self, record: RoundRecord, signer: Secp256k1Signer = AGG_KEY, domain: Domain | None = None
    ) -> Any:
        sig = sign_round_record(record, domain or self.domain(), signer)
        return self.f.postRound(record.as_tuple(), sig)

    def post(self, record: RoundRecord) -> Any:
        return self.chain.send(self.post_call(record), self.bystander)

    def payouts(self, amounts: list[int] | None = None) -> PayoutTree:
        amounts = [BUDGET // 4] * 4 if amounts is None else amounts
        return PayoutTree(Payout(c, a) for c, a in zip(self.clients, amounts, strict=False) if a)

    def claim_call(self, task: bytes, rnd: int, tree: PayoutTree, client: str) -> Any:
        p = tree.proof(client)
        return self.f.claim(task, rnd, p.payout.amount, p.index, list(p.hashes))

    def slash_call(self, task: bytes, rnd: int, tree: PenaltyTree, client: str) -> Any:
        p = tree.proof(client)
        return self.f.slashPenalised(task, rnd, p.penalty.as_tuple(), p.index, list(p.hashes))

    def correction(self, record: RoundRecord, payouts: PayoutTree, **over: Any) -> Correction:
        fields: dict[str, Any] = {
            "task_id": record.task_id,
            "round": record.round,
            "record_digest": record.digest(self.domain()),
            "scores_root": b"\x5d" * 32,
            "payout_root": payouts.root,
            "payout_count": payouts.size,
            "payout_total": payouts.total,
            "penalty_root": record.penalty_root,
            "penalty_count": record.penalty_count,
            "challenger": self.clients[0],
        }
        fields.update(over)
        return Correction(**fields)

    def challenge_call(
        self, correction: Correction, signers: list[Secp256k1Signer] | None = None
    ) -> Any:
        sigs = sign_correction(
            correction, self.domain(), VERIFIERS[:2] if signers is None else signers
        )
        return self.f.challenge(correction.as_tuple(), sigs)

    def task(self, task: bytes) -> dict[str, Any]:
        names = (
            "terms", "sponsor", "signer", "status", "createdBlock", "createdAt", "lastRound",
            "lastPostedAt", "clients", "model", "reserved", "paid",
        )  # fmt: skip
        return dict(zip(names, self.f.getTask(task).call(), strict=True))

    def round(self, task: bytes, rnd: int) -> dict[str, Any]:
        names = (
            "recordDigest", "modelBefore", "modelAfter", "scoresRoot", "payoutRoot",
            "penaltyRoot", "payoutTotal", "claimed", "payoutCount", "penaltyCount", "postedAt",
            "postedBlock", "corrected",
        )  # fmt: skip
        return dict(zip(names, self.f.getRound(task, rnd).call(), strict=True))

    def client(self, task: bytes, who: str) -> dict[str, Any]:
        names = ("dataRoot", "joinedBlock", "joined", "left", "paid", "slashed")
        return dict(zip(names, self.f.getClient(task, who).call(), strict=True))

    def locked(self, who: str) -> int:
        return int(
            self.sm.manager.functions.lockedBy(
                who, self.sm.token.address, self.rewards.address
            ).call()
        )


def data_root(i: int) -> bytes:
    return bytes([0xD0 + i]) * 32


def penalties(*entries: tuple[str, int, int]) -> PenaltyTree:
    return PenaltyTree(Penalty(c, a, r) for c, a, r in entries)


def deploy_fl(w3: Web3) -> FL:
    sm = deploy_stakes(w3)
    chain = sm.chain
    gov = chain.accounts[0]
    rewards = chain.deploy("FLRewards", sm.manager.address)
    m = sm.manager.functions
    chain.send(m.proposeJudge(rewards.address, PROVER_BPS), gov)
    chain.send(m.proposeMarket(rewards.address), gov)
    reenterer = chain.deploy("FLReenterer")
    warp(chain, GOVERNANCE)
    out = FL(sm, rewards, reenterer)
    sm.deposit(out.aggregator, sm.token, 2 * BOND)
    for c in out.clients:
        sm.give(sm.token, c, 10 * STAKE)
        sm.deposit(c, sm.token, 3 * STAKE)
    # the reenterer stakes too (it is a client contract)
    sm.give(sm.token, reenterer.address, 10 * STAKE)
    r = reenterer.functions
    chain.send(
        r.call(sm.token.address, _encode(sm.token, "approve", sm.manager.address, STAKE)), gov
    )
    chain.send(
        r.call(sm.manager.address, _encode(sm.manager, "deposit", sm.token.address, STAKE)), gov
    )
    for token in (sm.token, sm.fee):
        sm.give(token, out.sponsor, 10**24)
        chain.send(token.functions.approve(rewards.address, 2**255), out.sponsor)
    return out


def _encode(contract: Contract, fn: str, *args: Any) -> bytes:
    return bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:])

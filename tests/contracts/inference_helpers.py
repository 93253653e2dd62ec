"""Helpers for the InferenceMarket tests (and benchmarks/bench_gas.py): a StakeManager world
(``stake_helpers``) plus InferenceMarket registered there as a market and a judge.

Roles: ``accounts[2]`` is the provider (it staked every token; its receipt book signs with
``SIGNER``, an off-chain key), ``accounts[5]`` the consumer, ``accounts[6]`` a bystander,
``VERIFIERS`` three off-chain keys (threshold 2 by default). Receipts are the receipt layer's
(:mod:`ailedger.markets.inference.receipt`) under the contract's domain; an epoch's tree is
built here over their EIP-712 digests, as the ReceiptBook does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract_helpers import key
from oracle_helpers import pay, warp
from stake_helpers import ETHER_ASSET, GOVERNANCE, PROVER_BPS, Stakes, deploy_stakes
from vouch_helpers import mine
from web3 import Web3
from web3.contract import Contract

from ailedger import merkle
from ailedger.chain.eip712 import Domain
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference.receipt import EpochRoot, Receipt, market_domain, sign_receipt
from ailedger.markets.inference.settlement import Verification, sign_verification

MODEL = b"\x4d" * 32
OTHER_MODEL = b"\x4e" * 32
PRICE = 1_000
MAX_CALLS = 100
STAKE = 10**20
K = 8
SETTLE_WINDOW = 3_600
DEADLINE_IN = 86_400
SIGNER = key(300)
VERIFIERS = sorted((key(310 + i) for i in range(3)), key=lambda s: int(s.address, 16))
OPEN, ACTIVE, FINISHED, SLASHED, CANCELLED = 1, 2, 3, 4, 5
COMMITTED, PASSED, FAILED = 1, 2, 3


@dataclass
class Market:
    sm: Stakes
    market: Contract
    epochs: dict[tuple[bytes, int], list[Receipt]] = field(default_factory=dict)

    @property
    def chain(self) -> Any:
        return self.sm.chain

    @property
    def f(self) -> Any:
        return self.market.functions

    @property
    def provider(self) -> str:
        return str(self.chain.accounts[2])

    @property
    def consumer(self) -> str:
        return str(self.chain.accounts[5])

    @property
    def bystander(self) -> str:
        return str(self.chain.accounts[6])

    @property
    def domain(self) -> Domain:
        return market_domain(self.chain.chain_id, self.market.address)

    def terms(self, asset: str | None = None, **over: Any) -> tuple[Any, ...]:
        t: dict[str, Any] = {
            "provider": self.provider,
            "asset": self.sm.token.address if asset is None else asset,
            "stakeAsset": self.sm.token.address,
            "stake": STAKE,
            "modelDigest": MODEL,
            "price": PRICE,
            "maxCalls": MAX_CALLS,
            "deadline": now(self) + DEADLINE_IN,
            "k": K,
            "passBps": 0,
            "threshold": 2,
        }
        t.update(over)
        return tuple(t.values())

    def open(
        self, asset: str | None = None, verifiers: list[str] | None = None, **over: Any
    ) -> bytes:
        """Open a job as the consumer (escrow approved or sent as value); its id."""
        t = self.terms(asset, **over)
        vs = [v.address for v in VERIFIERS] if verifiers is None else verifiers
        call = self.f.openJob(t, vs)
        if t[1] == ETHER_ASSET:
            receipt = pay(self.chain, call, self.consumer, t[5] * t[6])
            assert receipt["status"] == 1
        else:
            receipt = self.chain.send(call, self.consumer)
        (event,) = self.chain.events(self.market, "JobOpened", receipt)
        return bytes(event["args"]["jobId"])

    def accept(self, job: bytes, signer: Secp256k1Signer = SIGNER) -> Any:
        return self.chain.send(self.f.acceptJob(job, signer.address), self.provider)

    def receipts(
        self, job: bytes, epoch: int, first: int, calls: int, model: bytes = MODEL, extra: int = 0
    ) -> list[Receipt]:
        """``calls`` receipts of ``job`` (counters from ``first``) at positions 0.. of epoch
        ``epoch``, followed by ``extra`` receipts of another job (a shared epoch)."""
        out = [
            Receipt(
                job,
                first + i,
                bytes([i % 256]) * 32,
                b"\x02" * 32,
                model,
                PRICE,
                1_000 + i,
                self.consumer,
                epoch,
                i,
            )
            for i in range(calls)
        ]
        out += [
            Receipt(
                b"\xaa" * 32,
                1 + i,
                b"\x03" * 32,
                b"\x04" * 32,
                MODEL,
                PRICE,
                5,
                self.bystander,
                epoch,
                calls + i,
            )
            for i in range(extra)
        ]
        self.epochs[(job, epoch)] = out
        return out

    def leaves(self, receipts: list[Receipt]) -> list[bytes]:
        sep = self.domain.separator()
        return [r.digest(sep) for r in receipts]

    def commit_call(
        self,
        job: bytes,
        epoch: int,
        receipts: list[Receipt],
        calls: int,
        signer: Secp256k1Signer = SIGNER,
        size: int | None = None,
    ) -> Any:
        leaves = self.leaves(receipts)
        root = EpochRoot(epoch, len(leaves) if size is None else size, merkle.root(leaves))
        sig = signer.sign_digest(root.digest(self.domain))
        return self.f.commitEpoch(job, epoch, root.size, root.root, calls, sig)

    def commit(self, job: bytes, epoch: int, first: int, calls: int, **kw: Any) -> Any:
        receipts = self.receipts(job, epoch, first, calls, **kw)
        return self.chain.send(self.commit_call(job, epoch, receipts, calls), self.provider)

    def draw(self, job: bytes, epoch: int) -> bytes:
        mine(self.chain, 2)
        self.chain.send(self.f.draw(job, epoch), self.bystander)
        return bytes(self.epoch(job, epoch)["seed"])

    def settle_call(
        self,
        job: bytes,
        epoch: int,
        passed: int,
        total: int = K,
        signers: list[Secp256k1Signer] | None = None,
        seed: bytes | None = None,
    ) -> Any:
        seed = bytes(self.epoch(job, epoch)["seed"]) if seed is None else seed
        result = Verification(job, epoch, seed, passed, total)
        sigs = sign_verification(result, self.domain, VERIFIERS[:2] if signers is None else signers)
        return self.f.settleEpoch(job, epoch, passed, total, sigs)

    def proof(
        self, job: bytes, epoch: int, position: int
    ) -> tuple[tuple[Any, ...], bytes, list[bytes]]:
        """A receipt of ``(job, epoch)`` at ``position``: its struct, signature and proof."""
        receipts = self.epochs[(job, epoch)]
        r = receipts[position]
        return (
            as_struct(r),
            sign_receipt(r, self.domain, SIGNER),
            merkle.inclusion_proof(self.leaves(receipts), position),
        )

    def job(self, job: bytes) -> dict[str, Any]:
        names = (
            "terms", "consumer", "signer", "status", "committedCalls", "paidCalls",
            "failedCalls", "lastEpoch", "anyEpoch",
        )  # fmt: skip
        return dict(zip(names, self.f.getJob(job).call(), strict=True))

    def epoch(self, job: bytes, epoch: int) -> dict[str, Any]:
        names = ("status", "size", "first", "calls", "seedBlock", "root", "seed")
        return dict(zip(names, self.f.getEpoch(job, epoch).call(), strict=True))

    def owed(self, who: str, asset: str | None = None) -> int:
        return int(self.f.owed(who, self.sm.token.address if asset is None else asset).call())


def as_struct(r: Receipt) -> tuple[Any, ...]:
    return (
        r.job, r.counter, r.request_digest, r.response_digest, r.model_digest, r.price,
        r.time_ms, r.consumer, r.epoch, r.position,
    )  # fmt: skip


def now(m: Market) -> int:
    return int(m.chain.w3.eth.get_block("latest")["timestamp"])


def deploy_market(w3: Web3) -> Market:
    sm = deploy_stakes(w3)
    chain = sm.chain
    gov = chain.accounts[0]
    market = chain.deploy("InferenceMarket", sm.manager.address, SETTLE_WINDOW)
    m = sm.manager.functions
    chain.send(m.proposeJudge(market.address, PROVER_BPS), gov)
    chain.send(m.proposeMarket(market.address), gov)
    warp(chain, GOVERNANCE)
    out = Market(sm, market)
    sm.deposit(out.provider, sm.token, 10 * STAKE)
    sm.deposit(out.provider, None, STAKE)
    for who in (out.consumer, out.bystander):
        for token in (sm.token, sm.fee, sm.hook):
            sm.give(token, who, 10**24)
            chain.send(token.functions.approve(market.address, 2**255), who)
    return out


def books(m: Market, asset: str) -> None:
    """StakeManager's books for the provider and in sum, and the market holds what it owes
    and escrows (``held``), which its balance covers."""
    sm = m.sm
    s = sm.stake(m.provider, m.sm.token.address)
    assert (
        s["deposited"] == s["free"] + s["locked"] + s["unbonding"] + s["slashed"] + s["withdrawn"]
    )
    t = sm.totals(m.sm.token.address)
    assert t["deposited"] == t["staked"] + t["slashed"] + t["withdrawn"]
    assert t["slashed"] == t["owed"] + t["claimed"]
    assert sm.balance(m.sm.token.address, sm.manager.address) == t["staked"] + t["owed"]
    assert sm.balance(asset, m.market.address) >= m.f.held(asset).call()


def finish_after_window(m: Market) -> None:
    warp(m.chain, DEADLINE_IN + SETTLE_WINDOW + 1)

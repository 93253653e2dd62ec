"""Helpers for the StakeManager tests (and benchmarks/bench_gas.py): deploy StakeManager, the
consortium token, the hostile test tokens and test judges on a ``Web3``; read a stake's books.

Roles: ``accounts[0]`` governs the StakeManager and holds every token's supply,
``accounts[1..3]`` stake, ``accounts[7]`` proves faults, ``accounts[8]`` is the treasury.
``judge`` is a registered judge that is also a registered market; ``rogue`` is a TestJudge
nobody registered. The hostile tokens (fee-on-transfer, false-returning, ERC-777-style hooks)
and the reentering staker live in ``fixtures/HostileTokens.sol``, test-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract_helpers import Chain, Compiled
from oracle_helpers import compile_all, now, pay, warp
from web3 import Web3
from web3.contract import Contract

ETHER_ASSET = "0x" + "00" * 20
UNBONDING = 86_400
GOVERNANCE = 2 * 86_400
FEE_BPS = 100  # FeeToken's 1 %
PROVER_BPS = 5_000
SUPPLY = 10**30
FAULT = b"\x0f" * 32
EVIDENCE = b"\xee" * 32


@dataclass
class Stakes:
    chain: Chain
    manager: Contract
    token: Contract
    fee: Contract
    false: Contract
    hook: Contract
    judge: Contract
    rogue: Contract

    @property
    def governor(self) -> str:
        return self.chain.accounts[0]

    @property
    def prover(self) -> str:
        return self.chain.accounts[7]

    @property
    def treasury(self) -> str:
        return self.chain.accounts[8]

    def staker(self, i: int = 1) -> str:
        return self.chain.accounts[i]

    def give(self, token: Contract, to: str, amount: int) -> None:
        self.chain.send(token.functions.transfer(to, amount), self.governor)

    def deposit(self, who: str, asset: Contract | None, amount: int) -> Any:
        """Deposit ``amount`` of ``asset`` (None: ether) for ``who`` (approving it first)."""
        if asset is None:
            call = self.manager.functions.deposit(ETHER_ASSET, amount)
            receipt = pay(self.chain, call, who, amount)
            assert receipt["status"] == 1
            return receipt
        self.chain.send(asset.functions.approve(self.manager.address, amount), who)
        return self.chain.send(self.manager.functions.deposit(asset.address, amount), who)

    def stake(self, who: str, asset: str) -> dict[str, int]:
        free, locked, unbonding, release, deposited, slashed, withdrawn = (
            self.manager.functions.stakeOf(who, asset).call()
        )
        return {
            "free": free,
            "locked": locked,
            "unbonding": unbonding,
            "release": release,
            "deposited": deposited,
            "slashed": slashed,
            "withdrawn": withdrawn,
        }

    def totals(self, asset: str) -> dict[str, int]:
        names = ("deposited", "staked", "slashed", "withdrawn", "owed", "claimed")
        return dict(zip(names, self.manager.functions.totalsOf(asset).call(), strict=True))

    def slash(
        self,
        who: str,
        asset: str,
        amount: int,
        fault: bytes = FAULT,
        prover: str | None = None,
        judge: Contract | None = None,
    ) -> Any:
        return (judge or self.judge).functions.slash(
            who, asset, amount, fault, 7, EVIDENCE, self.prover if prover is None else prover
        )

    def balance(self, asset: str, account: str) -> int:
        if asset == ETHER_ASSET:
            return int(self.chain.w3.eth.get_balance(account))  # type: ignore[arg-type]
        token = self.chain.w3.eth.contract(address=asset, abi=self.token.abi)  # type: ignore[call-overload]
        return int(token.functions.balanceOf(account).call())


def deploy_stakes(w3: Web3, compiled: dict[str, Compiled] | None = None) -> Stakes:
    chain = Chain(w3, compiled or compile_all())
    gov = chain.accounts[0]
    manager = chain.deploy("StakeManager", gov, chain.accounts[8], UNBONDING, GOVERNANCE)
    token = chain.deploy("ConsortiumToken", "Consortium", "CON", gov, SUPPLY)
    fee = chain.deploy("FeeToken", FEE_BPS, SUPPLY)
    false = chain.deploy("FalseToken", SUPPLY)
    hook = chain.deploy("HookToken", SUPPLY)
    judge = chain.deploy("TestJudge", manager.address)
    rogue = chain.deploy("TestJudge", manager.address)
    chain.send(manager.functions.proposeJudge(judge.address, PROVER_BPS), gov)
    chain.send(manager.functions.proposeMarket(judge.address), gov)
    warp(chain, GOVERNANCE)
    stakes = Stakes(chain, manager, token, fee, false, hook, judge, rogue)
    for i in (1, 2, 3):
        for t in (token, fee, false, hook):
            stakes.give(t, chain.accounts[i], 10**24)
    assert manager.functions.isJudge(judge.address).call()
    assert now(chain) > 0
    return stakes

"""Helpers for the OracleJudge tests (and benchmarks/bench_gas.py): OracleFeeds with one feed
(``oracle_helpers``), a StakeManager, an OracleJudge registered with it and one nobody
registered; oracles that stake ether from their own keys.

Roles (beside ``oracle_helpers``'): ``accounts[0]`` governs the StakeManager, ``accounts[7]``
challenges (the prover), ``accounts[8]`` is the treasury. The feed's terms: each oracle stakes
MIN_STAKE ether, SLASH is taken per fault, TOLERANCE around the median, WINDOW seconds to
challenge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract_helpers import Chain, Compiled
from oracle_helpers import Oracles, deploy_oracles, warp
from web3 import Web3
from web3.contract import Contract

from ailedger.chain.oracle_report import OracleReport, sign_observation
from ailedger.identity.keys import Secp256k1Signer

ETHER_ASSET = "0x" + "00" * 20
UNBONDING = 86_400
GOVERNANCE = 2 * 86_400
PROVER_BPS = 5_000
MIN_STAKE = 10**18
SLASH = 4 * 10**17
TOLERANCE = 100
WINDOW = 3_600
REASON_OUT_OF_TOLERANCE = 1


@dataclass
class Judged:
    """The oracle world plus StakeManager, the registered ``judge`` and an unregistered
    ``rogue`` judge over the same feeds."""

    o: Oracles
    manager: Contract
    judge: Contract
    rogue: Contract

    @property
    def chain(self) -> Chain:
        return self.o.chain

    @property
    def governor(self) -> str:
        return self.chain.accounts[0]

    @property
    def prover(self) -> str:
        return self.chain.accounts[7]

    @property
    def treasury(self) -> str:
        return self.chain.accounts[8]

    def oracle(self, i: int) -> Secp256k1Signer:
        """Oracle ``i`` of the feed's configured (ascending) set."""
        return self.o.signer_keys()[i]

    def send_as(self, key: Secp256k1Signer, call: Any, value: int = 0) -> Any:
        """Sign ``call`` with ``key`` locally and send it (gas paid by the key's account)."""
        w3 = self.chain.w3
        tx = call.build_transaction(
            {
                "from": key.address,
                "value": value,
                "gas": 500_000,
                "nonce": w3.eth.get_transaction_count(key.address),  # type: ignore[arg-type]
                "chainId": self.chain.chain_id,
            }
        )
        signed = key.to_local_account().sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        assert receipt["status"] == 1, receipt
        return receipt

    def stake(self, key: Secp256k1Signer, amount: int = MIN_STAKE) -> None:
        self.send_as(key, self.manager.functions.deposit(ETHER_ASSET, amount), amount)

    def declare(
        self,
        judge: Contract | None = None,
        *,
        feed: bytes | None = None,
        min_stake: int = MIN_STAKE,
        slash: int = SLASH,
        tolerance: int = TOLERANCE,
        window: int = WINDOW,
    ) -> Any:
        call = (judge or self.judge).functions.declareTerms(
            feed or self.o.feed, ETHER_ASSET, min_stake, slash, tolerance, window
        )
        return self.chain.send(call, self.o.creator)

    def accept(self, epoch: int, values: list[int]) -> OracleReport:
        """Transmit a report of ``values`` (oracle i observed values[i]) signed by f+1."""
        report = self.o.report(epoch, values)
        sigs = self.o.sign(report, self.o.signer_keys()[: self.o.f + 1])
        self.chain.send(self.o.transmit(report, sigs))
        return report

    def position_of(self, report: OracleReport, oracle: int) -> int:
        return list(report.observers).index(oracle)

    def observation_signature(self, report: OracleReport, oracle: int) -> bytes:
        """Oracle ``oracle``'s own signature of its value in ``report``."""
        value = report.observations[self.position_of(report, oracle)]
        return sign_observation(self.o.domain(), report, value, self.oracle(oracle))

    def challenge_call(
        self,
        report: OracleReport,
        oracle: int,
        signature: bytes | None = None,
        judge: Contract | None = None,
        position: int | None = None,
    ) -> Any:
        sig = self.observation_signature(report, oracle) if signature is None else signature
        at = self.position_of(report, oracle) if position is None else position
        return (judge or self.judge).functions.challenge(report.as_tuple(), at, sig)

    def stake_of(self, who: str) -> dict[str, int]:
        names = ("free", "locked", "unbonding", "release", "deposited", "slashed", "withdrawn")
        values = self.manager.functions.stakeOf(who, ETHER_ASSET).call()
        return dict(zip(names, values, strict=True))

    def owed(self, who: str) -> int:
        return int(self.manager.functions.owed(who, ETHER_ASSET).call())


def deploy_judged(w3: Web3, compiled: dict[str, Compiled] | None = None) -> Judged:
    o = deploy_oracles(w3, compiled=compiled)
    chain = o.chain
    gov = chain.accounts[0]
    manager = chain.deploy("StakeManager", gov, chain.accounts[8], UNBONDING, GOVERNANCE)
    judge = chain.deploy("OracleJudge", manager.address, o.feeds.address)
    rogue = chain.deploy("OracleJudge", manager.address, o.feeds.address)
    chain.send(manager.functions.proposeJudge(judge.address, PROVER_BPS), gov)
    warp(chain, GOVERNANCE)
    judged = Judged(o, manager, judge, rogue)
    for key in o.signer_keys():
        tx = w3.eth.send_transaction(
            {"from": gov, "to": key.address, "value": 5 * 10**18}  # type: ignore[typeddict-item]
        )
        w3.eth.wait_for_transaction_receipt(tx)
    assert manager.functions.isJudge(judge.address).call()
    return judged

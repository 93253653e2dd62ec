"""Helpers for the oracle and settlement contract tests (and benchmarks/bench_oracle_gas.py):
deploy OracleFeeds, ParametricEscrow and PerformanceBonus on a ``Web3``, move block time on
py-evm and anvil alike, build and sign reports.

The attacker contract ``fixtures/ReentrantHolder.sol`` is test-only: it is compiled here next
to ``contracts/`` (never by the build script into the package artifacts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract_helpers import Chain, Compiled, compile_contracts, key
from web3 import Web3
from web3.contract import Contract
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger.chain.eip712 import Domain
from ailedger.chain.oracle_report import OracleReport, config_digest, feed_id, oracle_domain
from ailedger.chain.oracle_report import sign_report as _sign_report
from ailedger.identity.keys import Secp256k1Signer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEED = feed_id("drought/farm-7")
OTHER_FEED = feed_id("drought/farm-8")
MIN_ANSWER, MAX_ANSWER = 0, 1000
MAX_AGE = 3600
INPUT_ROOT = b"\x11" * 32
MODEL_DIGEST = b"\x22" * 32
ETHER = 10**18


def compile_all() -> dict[str, Compiled]:
    extra = {"ReentrantHolder.sol": (FIXTURES / "ReentrantHolder.sol").read_text()}
    return compile_contracts(extra=extra)


def oracle_keys(n: int, base: int = 200) -> list[Secp256k1Signer]:
    """``n`` deterministic oracle keys, sorted by address (the configured order)."""
    return sorted((key(base + i) for i in range(n)), key=lambda k: int(k.address, 16))


def pay(chain: Chain, call: Any, sender: str, value: int) -> Any:
    """Send ``call`` with ``value`` wei attached; the receipt (status 0 on anvil reverts,
    an exception on eth-tester reverts)."""
    tx = call.transact({"from": sender, "value": value, "gas": chain.gas})
    return chain.w3.eth.wait_for_transaction_receipt(tx)


def now(chain: Chain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def warp(chain: Chain, seconds: int) -> int:
    """Mine a block ``seconds`` after the latest one; return its timestamp."""
    target = now(chain) + seconds
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        provider.make_request("evm_setNextBlockTimestamp", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return now(chain)


@dataclass
class Oracles:
    """OracleFeeds with feed FEED (n oracles, fault tolerance f), and the escrow and bonus
    contracts that read it."""

    chain: Chain
    feeds: Contract
    escrow: Contract
    bonus: Contract
    keys: list[Secp256k1Signer]
    f: int

    @property
    def admin(self) -> str:
        return self.chain.accounts[0]

    def domain(self, contract: Contract | None = None, chain_id: int | None = None) -> Domain:
        target = contract or self.feeds
        return oracle_domain(chain_id or self.chain.chain_id, target.address)

    def version(self, feed: bytes = FEED) -> int:
        return int(self.feeds.functions.getFeed(feed).call()[1])

    def digest(self, feed: bytes = FEED) -> bytes:
        return bytes(self.feeds.functions.getFeed(feed).call()[6])

    def signers(self, feed: bytes = FEED) -> list[str]:
        return list(self.feeds.functions.signersOf(feed).call())

    def report(
        self,
        epoch: int,
        values: Sequence[int],
        *,
        feed: bytes = FEED,
        timestamp: int | None = None,
        observers: Sequence[int] | None = None,
        digest: bytes | None = None,
    ) -> OracleReport:
        """A report of ``values`` observed by oracles ``observers`` (default 0, 1, ...)."""
        who = list(range(len(values))) if observers is None else list(observers)
        keys = self.signer_keys(feed)
        observed = {keys[i].address: v for i, v in zip(who, values, strict=True)}
        return OracleReport.build(
            feed,
            self.digest(feed) if digest is None else digest,
            epoch,
            observed,
            self.signers(feed),
            INPUT_ROOT,
            MODEL_DIGEST,
            now(self.chain) if timestamp is None else timestamp,
        )

    def signer_keys(self, feed: bytes = FEED) -> list[Secp256k1Signer]:
        by_address = {k.address: k for k in self.keys}
        return [by_address[a] for a in self.signers(feed)]

    def sign(
        self, report: OracleReport, keys: Sequence[Secp256k1Signer], domain: Domain | None = None
    ) -> list[bytes]:
        return _sign_report(domain or self.domain(), report, list(keys))

    def transmit(self, report: OracleReport, signatures: Sequence[bytes]) -> Any:
        return self.feeds.functions.transmit(report.as_tuple(), list(signatures))

    def accept(self, epoch: int, values: Sequence[int], feed: bytes = FEED) -> Any:
        """Transmit a report of ``values`` signed by f+1 oracles; return the receipt."""
        report = self.report(epoch, values, feed=feed)
        sigs = self.sign(report, self.signer_keys(feed)[: self.f + 1])
        return self.chain.send(self.transmit(report, sigs))


def deploy_oracles(
    w3: Web3, n: int = 4, f: int = 1, compiled: dict[str, Compiled] | None = None
) -> Oracles:
    chain = Chain(w3, compiled or compile_all())
    feeds = chain.deploy("OracleFeeds")
    escrow = chain.deploy("ParametricEscrow", feeds.address)
    bonus = chain.deploy("PerformanceBonus", feeds.address)
    keys = oracle_keys(n)
    addresses = [k.address for k in keys]
    chain.send(feeds.functions.createFeed(FEED, addresses, f, MIN_ANSWER, MAX_ANSWER, MAX_AGE))
    world = Oracles(chain, feeds, escrow, bonus, keys + oracle_keys(n, base=300), f)
    assert world.digest() == config_digest(chain.chain_id, feeds.address, FEED, 1, addresses)
    return world

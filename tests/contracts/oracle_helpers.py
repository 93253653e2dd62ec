"""Helpers for the oracle and settlement contract tests (and benchmarks/bench_oracle_gas.py):
deploy OracleFeeds, ParametricEscrow and PerformanceBonus on a ``Web3``, move block time on
py-evm and anvil alike, build and sign reports.

Roles: ``accounts[9]`` creates and configures the feeds (the feed operator, so its namespace
holds them), ``accounts[0]`` is the feed's transmitter and deploys (owns) the settlement
contracts; insurers, holders, payers and contractors are other accounts.

The attacker contracts in ``fixtures/`` are test-only: they are compiled here next to
``contracts/`` (never by the build script into the package artifacts).
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
from ailedger.chain.oracle_report import (
    OracleReport,
    config_digest,
    feed_id,
    feed_label,
    oracle_domain,
    sign_observation,
)
from ailedger.chain.oracle_report import sign_report as _sign_report
from ailedger.identity.keys import Secp256k1Signer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FEED_LABEL = feed_label("drought/farm-7")
OTHER_LABEL = feed_label("drought/farm-8")
#: OracleFeeds' delay between proposing a configuration and its taking effect.
CONFIG_DELAY = 2 * 3600
CREATOR_INDEX = 9
MIN_ANSWER, MAX_ANSWER = 0, 1000
MAX_AGE = 3600
INPUT_ROOT = b"\x11" * 32
MODEL_DIGEST = b"\x22" * 32
ETHER = 10**18


def compile_all() -> dict[str, Compiled]:
    extra = {p.name: p.read_text() for p in sorted(FIXTURES.glob("*.sol"))}
    return compile_contracts(extra=extra)


#: Every key ``oracle_keys`` made, by address: ``transmit`` signs each observation with its
#: observer's key by default.
KNOWN_KEYS: dict[str, Secp256k1Signer] = {}


def oracle_keys(n: int, base: int = 200) -> list[Secp256k1Signer]:
    """``n`` deterministic oracle keys, sorted by address (the configured order)."""
    keys = sorted((key(base + i) for i in range(n)), key=lambda k: int(k.address, 16))
    KNOWN_KEYS.update((k.address, k) for k in keys)
    return keys


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


def observed_by(report: OracleReport, signers: Sequence[str], domain: Domain) -> bytes:
    """Each observer's own signature of its observation (observer ``i`` is ``signers[i]``,
    its key one ``oracle_keys`` made; 65 zero bytes otherwise), concatenated in observation
    order, as ``transmit`` takes them."""
    return b"".join(
        sign_observation(domain, report, v, KNOWN_KEYS[signers[i]])
        if i < len(signers) and signers[i] in KNOWN_KEYS
        else bytes(65)
        for i, v in zip(report.observers, report.observations, strict=True)
    )


@dataclass
class Oracles:
    """OracleFeeds with feed ``feed`` (n oracles, fault tolerance f) in the namespace of
    ``creator``, and the escrow and bonus contracts that read it."""

    chain: Chain
    feeds: Contract
    escrow: Contract
    bonus: Contract
    keys: list[Secp256k1Signer]
    f: int
    feed: bytes = b""

    @property
    def admin(self) -> str:
        """The transmitter, and the owner of the settlement contracts."""
        return self.chain.accounts[0]

    @property
    def creator(self) -> str:
        """The feed operator: creates and configures the feeds."""
        return self.chain.accounts[CREATOR_INDEX]

    @property
    def other_feed(self) -> bytes:
        """The id ``create_other_feed`` gives (the creator's second feed)."""
        return feed_id(self.creator, OTHER_LABEL)

    def create_feed(
        self,
        label: bytes,
        signers: Sequence[str] | None = None,
        f: int | None = None,
        transmitters: Sequence[str] | None = None,
        creator: str | None = None,
        bounds: tuple[int, int] = (MIN_ANSWER, MAX_ANSWER),
    ) -> bytes:
        """Create feed ``label`` in ``creator``'s namespace (default: the feed operator)."""
        who = creator or self.creator
        call = self.feeds.functions.createFeed(
            label,
            list(self.signers() if signers is None else signers),
            sorted(transmitters or [self.admin], key=lambda a: int(a, 16)),
            self.f if f is None else f,
            *bounds,
            MAX_AGE,
        )
        self.chain.send(call, who)
        return feed_id(who, label)

    def set_config(
        self,
        signers: Sequence[str],
        f: int | None = None,
        transmitters: Sequence[str] | None = None,
        feed: bytes | None = None,
        sender: str | None = None,
    ) -> Any:
        """Propose a new configuration (it takes effect after CONFIG_DELAY)."""
        call = self.feeds.functions.setConfig(
            feed or self.feed,
            list(signers),
            sorted(transmitters or [self.admin], key=lambda a: int(a, 16)),
            self.f if f is None else f,
            MIN_ANSWER,
            MAX_ANSWER,
            MAX_AGE,
        )
        return self.chain.send(call, sender or self.creator)

    def domain(self, contract: Contract | None = None, chain_id: int | None = None) -> Domain:
        target = contract or self.feeds
        return oracle_domain(chain_id or self.chain.chain_id, target.address)

    def version(self, feed: bytes | None = None) -> int:
        return int(self.feeds.functions.activeConfig(feed or self.feed).call()[0])

    def digest(self, feed: bytes | None = None) -> bytes:
        return bytes(self.feeds.functions.activeConfig(feed or self.feed).call()[1][0])

    def signers(self, feed: bytes | None = None) -> list[str]:
        return list(self.feeds.functions.signersOf(feed or self.feed).call())

    def report(
        self,
        epoch: int,
        values: Sequence[int],
        *,
        feed: bytes | None = None,
        timestamp: int | None = None,
        observers: Sequence[int] | None = None,
        digest: bytes | None = None,
    ) -> OracleReport:
        """A report of ``values`` observed by oracles ``observers`` (default 0, 1, ...)."""
        feed = feed or self.feed
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

    def signer_keys(self, feed: bytes | None = None) -> list[Secp256k1Signer]:
        by_address = {k.address: k for k in self.keys}
        return [by_address[a] for a in self.signers(feed or self.feed)]

    def sign(
        self, report: OracleReport, keys: Sequence[Secp256k1Signer], domain: Domain | None = None
    ) -> list[bytes]:
        return _sign_report(domain or self.domain(), report, list(keys))

    def transmit(
        self,
        report: OracleReport,
        signatures: Sequence[bytes],
        feeds: Any | None = None,
        observation_signatures: Sequence[bytes] | None = None,
    ) -> Any:
        """The transmit call (signatures concatenated, as the contract takes them) with the
        signer set and values of the configuration in force on ``feeds``, and the observers'
        own signatures (default: each observer signs its value for ``feeds``)."""
        contract = self.feeds if feeds is None else feeds
        signers, params = contract.functions.transmitConfig(report.feed_id).call()
        observed = (
            observed_by(report, signers, self.domain(contract))
            if observation_signatures is None
            else b"".join(observation_signatures)
        )
        return contract.functions.transmit(
            report.as_tuple(), signers, params, b"".join(signatures), observed
        )

    def accept(self, epoch: int, values: Sequence[int], feed: bytes | None = None) -> Any:
        """Transmit a report of ``values`` signed by f+1 oracles; return the receipt."""
        feed = feed or self.feed
        report = self.report(epoch, values, feed=feed)
        sigs = self.sign(report, self.signer_keys(feed)[: self.f + 1])
        return self.chain.send(self.transmit(report, sigs))


def deploy_oracles(
    w3: Web3, n: int = 4, f: int = 1, compiled: dict[str, Compiled] | None = None
) -> Oracles:
    chain = Chain(w3, compiled or compile_all())
    feeds = chain.deploy("OracleFeeds", CONFIG_DELAY)
    escrow = chain.deploy("ParametricEscrow", feeds.address)
    bonus = chain.deploy("PerformanceBonus", feeds.address)
    keys = oracle_keys(n)
    addresses = [k.address for k in keys]
    world = Oracles(chain, feeds, escrow, bonus, keys + oracle_keys(n, base=300), f)
    world.feed = world.create_feed(FEED_LABEL, addresses, f)
    assert world.feed == bytes(feeds.functions.feedIdOf(world.creator, FEED_LABEL).call())
    assert world.digest() == config_digest(chain.chain_id, feeds.address, world.feed, 1, addresses)
    return world

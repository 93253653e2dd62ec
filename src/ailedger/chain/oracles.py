"""A typed client for ``contracts/OracleFeeds.sol``: feeds, oracle sets, signed reports.

A feed lives in its creator's namespace (``feed_id(creator, name)``) and has, per config
version, an oracle set of n signers with fault tolerance f (n >= 3f+1, f >= 1, n <= 31), the
transmitters allowed to send reports, observation bounds and a maximum report age. A report
(:class:`~ailedger.chain.oracle_report.OracleReport`) carries at least 2f+1 observations from
distinct oracles and is signed (EIP-712, bound to chain and contract) by at least f+1 of
them; the contract stores the median. A new configuration (:meth:`OracleFeeds.set_config`)
takes effect ``configDelay`` seconds after it is proposed; from then on reports signed for
the old set are refused, and each round keeps the version it was accepted under.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import Domain, SigningKey, recover_signer, sign_digest
from ailedger.chain.oracle_report import (
    OracleReport,
    feed_label,
    oracle_domain,
    report_digest,
)
from ailedger.errors import ChainError, InvalidInput

__all__ = ["FeedConfig", "OracleFeeds", "OracleRound"]


@dataclass(frozen=True)
class FeedConfig:
    """A feed and the configuration in force now."""

    feed_id: bytes
    creator: str
    config_version: int
    pending_version: int
    n: int
    f: int
    max_age: int
    latest_epoch: int
    config_digest: bytes
    min_answer: int
    max_answer: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed_id": "0x" + self.feed_id.hex(),
            "creator": self.creator,
            "config_version": self.config_version,
            "pending_version": self.pending_version,
            "n": self.n,
            "f": self.f,
            "max_age": self.max_age,
            "latest_epoch": self.latest_epoch,
            "config_digest": "0x" + self.config_digest.hex(),
            "min_answer": self.min_answer,
            "max_answer": self.max_answer,
        }


@dataclass(frozen=True)
class OracleRound:
    """An accepted report, as stored on-chain."""

    epoch: int
    answer: int
    observations_timestamp: int
    accepted_at: int
    config_version: int
    observations: int
    signatures: int
    input_root: bytes
    model_digest: bytes

    @classmethod
    def from_call(cls, epoch: int, raw: Sequence[Any]) -> OracleRound:
        answer, ts, accepted, version, obs, sigs, root, model = raw
        return cls(epoch, int(answer), ts, accepted, version, obs, sigs, bytes(root), bytes(model))

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "answer": self.answer,
            "observations_timestamp": self.observations_timestamp,
            "accepted_at": self.accepted_at,
            "config_version": self.config_version,
            "observations": self.observations,
            "signatures": self.signatures,
            "input_root": self.input_root.hex(),
            "model_digest": self.model_digest.hex(),
        }


class OracleFeeds(ContractWrapper):
    """The OracleFeeds contract at ``contract`` on ``chain``."""

    def domain(self) -> Domain:
        return oracle_domain(self.chain.chain_id, self.address)

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer)

    # -- configuration -----------------------------------------------------------------

    def create_feed(
        self,
        name: str | bytes,
        oracles: Sequence[str],
        f: int,
        bounds: tuple[int, int],
        max_age: int,
        *,
        transmitters: Sequence[str],
        signer: Signer | AccountSource,
    ) -> bytes:
        """Create the sender's feed ``name`` (a name or a 32-byte label) with oracle set
        ``oracles`` and ``transmitters`` (any order); returns the feed id."""
        label = feed_label(name) if isinstance(name, str) else name
        receipt = self._send(
            "createFeed",
            label,
            _sorted(oracles),
            _sorted(transmitters),
            f,
            *bounds,
            max_age,
            signer=signer,
        )
        for record in receipt.events:
            if record.event == "FeedCreated":
                value = record.args["feedId"]
                if isinstance(value, str):
                    return bytes.fromhex(value.removeprefix("0x"))
                return bytes(value)
        raise ChainError(f"transaction {receipt.tx_hash} emitted no FeedCreated event")

    def set_config(
        self,
        feed: bytes,
        oracles: Sequence[str],
        f: int,
        bounds: tuple[int, int],
        max_age: int,
        *,
        transmitters: Sequence[str],
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Propose a new configuration; it takes effect after the contract's config delay."""
        ordered = _sorted(oracles)
        return self._send(
            "setConfig", feed, ordered, _sorted(transmitters), f, *bounds, max_age, signer=signer
        )

    def config_delay(self) -> int:
        return int(self.chain.call(self.contract, "configDelay"))

    def feed(self, feed: bytes) -> FeedConfig | None:
        creator, _count, _active, pending, latest = self.chain.call(self.contract, "getFeed", feed)
        if int(creator, 16) == 0:
            return None
        version, config = self.chain.call(self.contract, "activeConfig", feed)
        digest, n, f, max_age, _at, lo, hi = config
        return FeedConfig(
            feed, creator, version, pending, n, f, max_age, latest, bytes(digest), lo, hi
        )

    def signers(self, feed: bytes) -> list[str]:
        """The oracle set in force, ascending by address (observer indices refer to it)."""
        return [str(a) for a in self.chain.call(self.contract, "signersOf", feed)]

    def transmitters(self, feed: bytes) -> list[str]:
        return [str(a) for a in self.chain.call(self.contract, "transmittersOf", feed)]

    def is_oracle(self, feed: bytes, account: str) -> bool:
        return bool(self.chain.call(self.contract, "isOracle", feed, account))

    # -- reports -----------------------------------------------------------------------

    def build_report(
        self,
        feed: bytes,
        epoch: int,
        observed: Mapping[str, int],
        input_root: bytes,
        model_digest: bytes,
        timestamp: int,
    ) -> OracleReport:
        """A report of ``observed`` (oracle address -> value) for the feed's current set."""
        config = self.feed(feed)
        if config is None:
            raise InvalidInput(f"feed 0x{feed.hex()} does not exist on {self.address}")
        return OracleReport.build(
            feed,
            config.config_digest,
            epoch,
            observed,
            self.signers(feed),
            input_root,
            model_digest,
            timestamp,
        )

    def sign(self, report: OracleReport, key: SigningKey) -> bytes:
        """One oracle's signature of ``report`` for this contract."""
        return sign_digest(report_digest(self.domain(), report), key)

    def transmit(
        self, report: OracleReport, signatures: Sequence[bytes], *, signer: Signer | AccountSource
    ) -> Receipt:
        """Submit ``report`` with ``signatures`` (any order: sorted by signer here)."""
        digest = report_digest(self.domain(), report)
        ordered = sorted(signatures, key=lambda s: int(recover_signer(digest, s), 16))
        return self._send("transmit", report.as_tuple(), ordered, signer=signer)

    def latest_epoch(self, feed: bytes) -> int:
        return int(self.chain.call(self.contract, "latestEpoch", feed))

    def round(self, feed: bytes, epoch: int) -> OracleRound | None:
        """The accepted round of ``epoch``, or None."""
        if epoch == 0 or epoch > self.latest_epoch(feed):
            return None
        raw = self.chain.call(self.contract, "getRound", feed, epoch)
        return None if raw[2] == 0 else OracleRound.from_call(epoch, raw)

    def latest(self, feed: bytes) -> OracleRound | None:
        """The latest accepted round, or None."""
        return self.round(feed, self.latest_epoch(feed))


def _sorted(oracles: Sequence[str]) -> list[str]:
    ordered = sorted(oracles, key=lambda a: int(a, 16))
    if len(set(ordered)) != len(ordered):
        raise InvalidInput("an oracle set must not name the same address twice")
    return ordered

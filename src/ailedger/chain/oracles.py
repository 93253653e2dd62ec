"""A typed client for ``contracts/OracleFeeds.sol``: feeds, oracle sets, signed reports.

A feed (``feed_id(name) = keccak256(name)``) has an oracle set of n signers with fault
tolerance f (n > 3f, n <= 31), observation bounds and a maximum report age. A report
(:class:`~ailedger.chain.oracle_report.OracleReport`) carries at least 2f+1 observations from
distinct oracles and is signed (EIP-712, bound to chain and contract) by at least f+1 of
them; the contract stores the median. Rotating the set (:meth:`OracleFeeds.set_config`)
bumps the config version and invalidates reports signed for the old set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import Domain, SigningKey, recover_signer, sign_digest
from ailedger.chain.oracle_report import OracleReport, oracle_domain, report_digest
from ailedger.errors import InvalidInput

__all__ = ["FeedConfig", "OracleFeeds", "OracleRound"]


@dataclass(frozen=True)
class FeedConfig:
    """A feed's current configuration."""

    feed_id: bytes
    admin: str
    config_version: int
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
            "admin": self.admin,
            "config_version": self.config_version,
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
        feed: bytes,
        oracles: Sequence[str],
        f: int,
        bounds: tuple[int, int],
        max_age: int,
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Create ``feed`` with oracle set ``oracles`` (any order); the sender is its admin."""
        ordered = _sorted(oracles)
        return self._send("createFeed", feed, ordered, f, *bounds, max_age, signer=signer)

    def set_config(
        self,
        feed: bytes,
        oracles: Sequence[str],
        f: int,
        bounds: tuple[int, int],
        max_age: int,
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Replace the oracle set and parameters (bumps the config version)."""
        ordered = _sorted(oracles)
        return self._send("setConfig", feed, ordered, f, *bounds, max_age, signer=signer)

    def feed(self, feed: bytes) -> FeedConfig | None:
        raw = self.chain.call(self.contract, "getFeed", feed)
        if int(raw[0], 16) == 0:
            return None
        admin, version, n, f, max_age, latest, digest, lo, hi = raw
        return FeedConfig(feed, admin, version, n, f, max_age, latest, bytes(digest), lo, hi)

    def signers(self, feed: bytes) -> list[str]:
        """The current oracle set, ascending by address (observer indices refer to it)."""
        return [str(a) for a in self.chain.call(self.contract, "signersOf", feed)]

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

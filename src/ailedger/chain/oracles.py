"""A typed client for ``contracts/OracleFeeds.sol``: feeds, oracle sets, signed reports.

A feed lives in its creator's namespace (``feed_id(creator, name)``) and has, per config
version, an oracle set of n signers with fault tolerance f (n >= 3f+1, f >= 1, n <= 31), the
transmitters allowed to send reports, observation bounds and a maximum report age. A report
(:class:`~ailedger.chain.oracle_report.OracleReport`) carries at least 2f+1 observations from
distinct oracles and is signed (EIP-712, bound to chain and contract) by at least f+1 of
them, and each observation by its own observer (``sign_observation``, checked by
``transmit``); the contract stores the median, the report's struct hash and when it was
accepted. A new configuration (:meth:`OracleFeeds.set_config`) takes effect ``configDelay``
seconds after it is proposed; from then on reports signed for the old set are refused, and
each round keeps the version it was accepted under. ``transmit`` sends the configuration's
signer set and values with each report (``transmitConfig``): the contract checks them
against one stored commitment instead of reading them from storage.

A round is stored in one slot (answer, observation time, config version); its input root and
model digest come from its ReportAccepted event, which :meth:`OracleFeeds.round` accepts only
if the feed's events replay to the rounds head the contract stores
(:func:`~ailedger.chain.oracle_report.rounds_head`): a missing, altered or invented event
fails closed with :class:`~ailedger.errors.ChainError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._events import EventRecord
from ailedger.chain._types import AccountSource, Receipt, Signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.eip712 import Domain, SigningKey, recover_signer, sign_digest
from ailedger.chain.oracle_report import (
    OracleReport,
    feed_label,
    oracle_domain,
    pack_signatures,
    report_digest,
    rounds_head,
    sign_observation,
)
from ailedger.errors import ChainError, InvalidInput
from ailedger.identity.keys import checksum_address

__all__ = ["DEFAULT_CONFIG_DELAY", "FeedConfig", "OracleFeeds", "OracleRound"]

#: Seconds before a new oracle set takes effect in the OracleFeeds ``ailedger chain deploy``
#: deploys: one day.
DEFAULT_CONFIG_DELAY = 24 * 3600


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
    #: The hash chain over the feed's accepted rounds (24 bytes; zero before the first).
    rounds_head: bytes

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
            "rounds_head": "0x" + self.rounds_head.hex(),
        }


@dataclass(frozen=True)
class OracleRound:
    """An accepted round: the answer, observation time and config version as stored
    on-chain; the input root, model digest, transmitter and transaction from its
    ReportAccepted event, checked against the feed's stored rounds head."""

    epoch: int
    answer: int
    observations_timestamp: int
    config_version: int
    input_root: bytes
    model_digest: bytes
    transmitter: str
    transaction: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "answer": self.answer,
            "observations_timestamp": self.observations_timestamp,
            "config_version": self.config_version,
            "input_root": self.input_root.hex(),
            "model_digest": self.model_digest.hex(),
            "transmitter": self.transmitter,
            "transaction": self.transaction,
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
        raw = self.chain.call(self.contract, "getFeed", feed)
        creator, _count, _active, pending, latest, head = raw
        if int(creator, 16) == 0:
            return None
        version, config = self.chain.call(self.contract, "activeConfig", feed)
        digest, n, f, max_age, _at, lo, hi = config
        return FeedConfig(
            feed,
            creator,
            version,
            pending,
            n,
            f,
            max_age,
            latest,
            bytes(digest),
            lo,
            hi,
            _bytes(head),
        )

    def signers(self, feed: bytes) -> list[str]:
        """The oracle set in force, ascending by address (observer indices refer to it)."""
        return [str(a) for a in self.chain.call(self.contract, "signersOf", feed)]

    def signers_at(self, feed: bytes, version: int) -> list[str]:
        """The oracle set of configuration ``version``, ascending by address."""
        return [str(a) for a in self.chain.call(self.contract, "signersAt", feed, version)]

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

    def sign_observation(self, report: OracleReport, value: int, key: SigningKey) -> bytes:
        """One oracle's signature of its own observation ``value`` in the round of ``report``."""
        return sign_observation(self.domain(), report, value, key)

    def transmit(
        self,
        report: OracleReport,
        signatures: Sequence[bytes],
        observation_signatures: Mapping[str, bytes],
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """Submit ``report`` with ``signatures`` (any order: sorted by signer here), each
        observer's signature of its own observation (oracle address -> signature; put in
        observation order here), and the signer set and values of the configuration in force
        (``transmitConfig``), which the contract checks against that configuration's stored
        commitment."""
        digest = report_digest(self.domain(), report)
        ordered = sorted(signatures, key=lambda s: int(recover_signer(digest, s), 16))
        signers, params = self.chain.call(self.contract, "transmitConfig", report.feed_id)
        by_oracle = {checksum_address(a): sig for a, sig in observation_signatures.items()}
        observed = []
        for index in report.observers:
            who = checksum_address(str(signers[index]))
            if who not in by_oracle:
                raise InvalidInput(f"no signature of {who} for its observation")
            observed.append(by_oracle[who])
        return self._send(
            "transmit",
            report.as_tuple(),
            list(signers),
            tuple(params),
            pack_signatures(ordered),
            pack_signatures(observed),
            signer=signer,
        )

    def accepted_report(self, feed: bytes, epoch: int) -> tuple[bytes, int]:
        """The first 24 bytes of the struct hash of the report accepted for ``epoch`` and
        the block time it was accepted (zeros if none)."""
        digest, accepted_at = self.chain.call(self.contract, "acceptedReport", feed, epoch)
        return bytes(digest), int(accepted_at)

    def latest_epoch(self, feed: bytes) -> int:
        return int(self.chain.call(self.contract, "latestEpoch", feed))

    def round(self, feed: bytes, epoch: int) -> OracleRound | None:
        """The accepted round of ``epoch``, or None. Raises :class:`ChainError` if the
        feed's ReportAccepted events (from the chain's event index) do not replay to the
        stored rounds head."""
        _creator, _count, _active, _pending, latest, head = self.chain.call(
            self.contract, "getFeed", feed
        )
        if epoch == 0 or epoch > latest:
            return None
        answer, observed, version = self.chain.call(self.contract, "roundAt", feed, epoch)
        if version == 0:
            return None
        event = self._replayed(feed, int(latest), _bytes(head)).get(epoch)
        if event is None:  # pragma: no cover - the head commits to every stored round
            raise ChainError(f"feed 0x{feed.hex()} epoch {epoch}: no ReportAccepted event")
        args = event.args
        logged = tuple(int(args[k]) for k in ("answer", "observationsTimestamp", "configVersion"))
        if logged != (int(answer), int(observed), int(version)):
            raise ChainError(
                f"feed 0x{feed.hex()} epoch {epoch}: the ReportAccepted event disagrees with "
                f"the stored round"
            )
        return OracleRound(
            epoch,
            int(answer),
            int(observed),
            int(version),
            _bytes(args["inputRoot"]),
            _bytes(args["modelDigest"]),
            str(args["transmitter"]),
            event.tx_hash,
        )

    def _replayed(self, feed: bytes, latest: int, head: bytes) -> dict[int, EventRecord]:
        """The feed's ReportAccepted events up to epoch ``latest`` by epoch, checked to
        replay to ``head`` (the stored rounds head at that epoch)."""
        records = self.chain.events(self.contract, "ReportAccepted", args={"feedId": feed})
        by_epoch: dict[int, EventRecord] = {}
        running = bytes(24)
        for record in records:
            epoch = int(record.args["epoch"])
            if epoch > latest:
                break
            if by_epoch and epoch <= max(by_epoch):
                raise ChainError(f"feed 0x{feed.hex()}: ReportAccepted epochs out of order")
            by_epoch[epoch] = record
            running = rounds_head(
                running,
                epoch,
                int(record.args["answer"]),
                int(record.args["observationsTimestamp"]),
                int(record.args["configVersion"]),
                _bytes(record.args["inputRoot"]),
                _bytes(record.args["modelDigest"]),
            )
        if running != head:
            raise ChainError(
                f"feed 0x{feed.hex()}: its {len(by_epoch)} ReportAccepted events do not replay "
                f"to the stored rounds head 0x{head.hex()} (events missing or altered; is "
                f"the contract tracked from its deployment?)"
            )
        return by_epoch

    def latest(self, feed: bytes) -> OracleRound | None:
        """The latest accepted round, or None."""
        return self.round(feed, self.latest_epoch(feed))


def _bytes(value: Any) -> bytes:
    """A bytes value from a call (bytes) or from the event index (a 0x-hex string)."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _sorted(oracles: Sequence[str]) -> list[str]:
    ordered = sorted(oracles, key=lambda a: int(a, 16))
    if len(set(ordered)) != len(ordered):
        raise InvalidInput("an oracle set must not name the same address twice")
    return ordered

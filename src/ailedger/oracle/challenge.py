"""Challenge a lying oracle from the log alone.

The round's report statement (written by :func:`ailedger.oracle.round.run_round`) holds the
report as transmitted and every observer's own EIP-712 signature of its value: all that
:class:`~ailedger.chain.oracle_judge.OracleJudge` needs (:func:`logged_challenge`); the
contract checks the rest against the stored round.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ailedger.attest import dsse
from ailedger.attest.predicates import validation_message
from ailedger.attest.statements import Statement
from ailedger.chain.oracle_report import OracleReport
from ailedger.chain.oracles import OracleFeeds
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import checksum_address
from ailedger.log import TransparencyLog
from ailedger.oracle.round import OracleReportPredicate

__all__ = ["LoggedChallenge", "logged_challenge"]


@dataclass(frozen=True)
class LoggedChallenge:
    """What a challenge of ``oracle`` in a logged round submits."""

    report: OracleReport
    position: int
    signature: bytes
    oracle: str
    value: int
    answer: int


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"the logged report's {what} is not hex") from None


def logged_challenge(
    log: TransparencyLog, index: int, feeds: OracleFeeds, oracle: str
) -> LoggedChallenge:
    """The report, position and signature of ``oracle``'s observation in the round whose
    report statement is log entry ``index`` (for the OracleFeeds contract ``feeds``)."""
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    statement = Statement.from_json(envelope.payload)
    if statement.predicate_type != OracleReportPredicate.PREDICATE_TYPE:
        raise InvalidInput(
            f"log entry {index} is not an oracle report ({statement.predicate_type})"
        )
    try:
        logged = OracleReportPredicate.model_validate(statement.predicate)
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, "oracle report")) from None
    if checksum_address(logged.contract) != checksum_address(feeds.address):
        raise InvalidInput(
            f"log entry {index} is a report for the OracleFeeds at {logged.contract}, "
            f"not {feeds.address}"
        )
    if logged.chain_id != feeds.chain.chain_id:
        raise InvalidInput(f"log entry {index} is a report on chain {logged.chain_id}")
    if len(logged.observation_signatures) != len(logged.observations):
        raise InvalidInput(f"log entry {index} carries no observation signatures")
    feed = _hex(logged.feed_id, "feed id")
    roster = [checksum_address(s) for s in feeds.signers_at(feed, logged.config_version)]
    observers = [checksum_address(o) for o in logged.observers]
    try:
        indices = bytes(roster.index(o) for o in observers)
    except ValueError:
        raise InvalidInput(f"log entry {index} names an observer outside the oracle set") from None
    report = OracleReport(
        feed,
        _hex(logged.config_digest, "config digest"),
        logged.epoch,
        tuple(logged.observations),
        indices,
        _hex(logged.input_root, "input root"),
        _hex(logged.model_digest, "model digest"),
        logged.observations_timestamp,
    )
    who = checksum_address(oracle)
    if who not in observers:
        raise NotFound(f"{who} made no observation in the round of log entry {index}")
    position = observers.index(who)
    return LoggedChallenge(
        report,
        position,
        _hex(logged.observation_signatures[position], "observation signature"),
        who,
        report.observations[position],
        logged.answer,
    )

"""One oracle round, led by whoever transmits: collect, agree, co-sign, transmit, log.

:func:`run_round` reads the feed's configuration in force from the OracleFeeds contract
(oracle set, f, bounds, config version; the transmitter must be one of its transmitters),
fingerprints the batch (its RFC 9162 root is the round's input
root), then over HTTP (:mod:`ailedger.oracle.node`):

1. fixes the round's time, asks every peer to observe (``POST /observe``, with the round:
   chain, contract, config, time) and keeps the observations whose signed statement
   verifies, names a configured oracle, this feed, epoch, input root and model, lies within
   the feed's bounds, and comes with the oracle's EIP-712 signature of its value for this
   round (anything else is a failure of that peer);
2. needs at least ``2f + 1`` of them, and builds the report (values sorted, each with its
   observer's index; the contract stores the median ``observations[len // 2]``);
3. asks the observers to co-sign (``POST /sign``, with the signed observations, so each can
   check that no value was invented or altered), keeps the signatures that recover to
   configured oracles, and needs at least ``f + 1``;
4. transmits the report with the signatures (sorted by signer address) and the observers'
   own observation signatures (OracleFeeds checks both) and, when ``log`` is given, appends
   every observation statement and a report statement (:class:`OracleReportPredicate`,
   signed by the transmitter, naming the transaction, with the observation signatures and
   the report hash the contract stored) to the log, so a payout can be traced to the inputs,
   the model and the signers, and a lying observation can be challenged from the log alone
   (:mod:`ailedger.chain.oracle_judge`).

Every failure is one :class:`~ailedger.errors.AiledgerError` with one line: peers that did
not answer (after retries) or refused, and how many were needed (:class:`QuorumNotReached`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from ailedger.attest import dsse
from ailedger.attest.predicates import PREDICATE_URI_PREFIX, Predicate
from ailedger.attest.statements import Subject, make_statement, sign_statement
from ailedger.chain import Chain, DeployedContract
from ailedger.chain.eip712 import recover_signer
from ailedger.chain.oracle_report import (
    OracleReport,
    feed_id,
    observation_digest,
    pack_signatures,
    report_digest,
    report_hash,
)
from ailedger.chain.oracle_report import oracle_domain as _domain
from ailedger.errors import AiledgerError, NodeUnavailable
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.log import TransparencyLog
from ailedger.oracle._http import request_json
from ailedger.oracle.node import verify_observation
from ailedger.oracle.observation import Observation

__all__ = [
    "MAX_BACKDATE",
    "OracleReportPredicate",
    "QuorumNotReached",
    "RoundResult",
    "report_time",
    "run_round",
]

#: The most a report is stamped before this machine's time to fit a node whose clock lags.
MAX_BACKDATE = 120

_T = TypeVar("_T")


class QuorumNotReached(NodeUnavailable):
    """Too few oracles observed or co-signed for the contract to accept a report."""

    exit_code: ClassVar[int] = 8


class OracleReportPredicate(Predicate):
    """A transmitted oracle report: what was accepted on-chain, from what, signed by whom."""

    NAME: ClassVar[str] = "oracle-report"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "oracle-report/v1"
    PURPOSE: ClassVar[str] = "an oracle report accepted on-chain (read by the oracle package)"

    feed: str
    feed_id: str
    epoch: int
    answer: int
    observations: list[int]
    observers: list[str]
    signers: list[str]
    signatures: list[str]
    input_root: str
    model_digest: str
    observations_timestamp: int
    config_digest: str
    config_version: int
    chain_id: int
    contract: str
    transaction: str
    block: int
    observation_envelopes: list[str]
    #: Each observer's EIP-712 signature of its value, in observation order (0x-hex).
    observation_signatures: list[str] = Field(default_factory=list)
    #: The report's EIP-712 struct hash (OracleFeeds stores its first 24: ``acceptedReport``).
    report_hash: str = ""


@dataclass(frozen=True)
class RoundResult:
    """An accepted round: the report, its signers, the transaction and the log entries."""

    feed: str
    epoch: int
    answer: int
    report: OracleReport
    observations: tuple[Observation, ...]
    signers: tuple[str, ...]
    tx_hash: str
    block_number: int
    log_indices: tuple[int, ...] = ()
    failures: dict[str, str] = field(default_factory=dict)
    #: Each observer's EIP-712 signature of its own value (oracle address -> signature).
    observation_signatures: dict[str, bytes] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "epoch": self.epoch,
            "answer": self.answer,
            "report": self.report.to_dict(),
            "observations": {o.oracle: o.value for o in self.observations},
            "signers": list(self.signers),
            "transaction": self.tx_hash,
            "block": self.block_number,
            "log_indices": list(self.log_indices),
            "failures": self.failures,
        }


def _fan_out(
    peers: Sequence[str], call: Callable[[str], _T]
) -> tuple[dict[str, _T], dict[str, str]]:
    done: dict[str, _T] = {}
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(len(peers), 1)) as pool:
        futures = {url: pool.submit(call, url) for url in peers}
        for url, future in futures.items():
            try:
                done[url] = future.result()
            except AiledgerError as exc:
                failed[url] = exc.message
    return done, failed


def _quorum(what: str, got: int, needed: int, f: int, failed: dict[str, str]) -> None:
    if got >= needed:
        return
    why = "; ".join(failed.values()) or "no peers"
    raise QuorumNotReached(
        f"round failed: {got} {what}, {needed} needed (f={f}): {why}",
        hint="start the missing oracles or check their models and keys",
    )


def report_time(now: int, latest_block: int, max_age: int) -> int:
    """The report's ``observationsTimestamp``: the contract refuses a report from the future
    (later than the block it lands in) or older than the feed's ``max_age``. So: never later
    than this machine's time ``now`` or the chain's latest block (a node's clock may lag ours),
    and never earlier than ``now`` minus half of ``max_age`` (capped at MAX_BACKDATE), which an
    idle chain whose latest block is old would otherwise make stale."""
    return min(now, max(latest_block, now - min(max_age // 2, MAX_BACKDATE)))


def run_round(
    chain: Chain,
    feeds: DeployedContract,
    feed: str,
    epoch: int,
    batch: Path,
    peers: Sequence[str],
    *,
    model_digest: str,
    creator: str,
    transmitter: Secp256k1Signer,
    log: TransparencyLog | None = None,
    timeout: float = 10.0,
    tries: int = 3,
) -> RoundResult:
    """Run one round for ``feed`` at ``epoch`` over ``batch`` with the oracles at ``peers``
    (base URLs) and transmit the report from ``transmitter`` (module docstring). The feed is
    ``feed`` in ``creator``'s namespace."""
    fid = feed_id(creator, feed)
    digest_hex = model_digest.removeprefix("sha256:").lower()
    if int(chain.call(feeds, "creatorOf", fid), 16) == 0:
        raise AiledgerError(f"feed {feed} of {creator} does not exist on {feeds.address}")
    version, config = chain.call(feeds, "activeConfig", fid)
    version = int(version)
    config_digest, f, max_age = bytes(config[0]), int(config[2]), int(config[3])
    lo, hi = int(config[5]), int(config[6])
    if not chain.call(feeds, "isTransmitter", fid, transmitter.address):
        raise AiledgerError(f"{transmitter.address} is not a transmitter of feed {feed}")
    roster = [checksum_address(s) for s in chain.call(feeds, "signersOf", fid)]
    fp = fingerprint_dataset(Path(batch), secret=None)
    stamp = report_time(int(time.time()), chain.block_timestamp(), max_age)
    domain = _domain(chain.chain_id, feeds.address)
    template = OracleReport(
        fid, config_digest, epoch, (), b"", fp.root, bytes.fromhex(digest_hex), stamp
    )
    body = {
        "epoch": epoch,
        "batch": str(Path(batch).resolve()),
        "input_root": fp.root.hex(),
        "round": {
            "chain_id": chain.chain_id,
            "contract": feeds.address,
            "config_version": version,
            "signers": roster,
            "observations_timestamp": stamp,
        },
    }

    def observe(url: str) -> tuple[dsse.Envelope, Observation, bytes]:
        answer = request_json(f"{url}/observe", body, timeout=timeout, tries=tries)
        envelope = dsse.Envelope.from_dict(answer.get("envelope"))
        obs = verify_observation(envelope)
        checks = (obs.feed, obs.epoch, obs.input_root, obs.model_digest)
        if checks != (feed, epoch, fp.root.hex(), digest_hex):
            raise AiledgerError(f"{url}: observed another feed, epoch, input or model")
        if checksum_address(obs.oracle) not in roster:
            raise AiledgerError(f"{url}: {obs.oracle} is not in the oracle set")
        if not lo <= obs.value <= hi:
            raise AiledgerError(f"{url}: value {obs.value} outside [{lo}, {hi}]")
        text = str(answer.get("observation_signature", "")).removeprefix("0x")
        try:
            signature = bytes.fromhex(text)
            who = recover_signer(observation_digest(domain, template, obs.value), signature)
        except (ValueError, AiledgerError):
            raise AiledgerError(f"{url}: no valid signature of its observation") from None
        if who != checksum_address(obs.oracle):
            raise AiledgerError(f"{url}: observation signed by {who}, not {obs.oracle}")
        return envelope, obs, signature

    observed, failed = _fan_out(peers, observe)
    by_oracle: dict[str, tuple[str, dsse.Envelope, Observation]] = {}
    observation_sigs: dict[str, bytes] = {}
    for url, (envelope, obs, signature) in observed.items():
        who = checksum_address(obs.oracle)
        if who not in by_oracle:
            by_oracle[who] = (url, envelope, obs)
            observation_sigs[who] = signature
    _quorum("oracles observed", len(by_oracle), 2 * f + 1, f, failed)

    report = OracleReport.build(
        fid,
        config_digest,
        epoch,
        {who: obs.value for who, (_, _, obs) in by_oracle.items()},
        roster,
        fp.root,
        bytes.fromhex(digest_hex),
        stamp,
    )
    sign_body = {
        "chain_id": chain.chain_id,
        "contract": feeds.address,
        "config_version": version,
        "signers": roster,
        "report": report.to_dict(),
        "envelopes": [env.to_dict() for _, env, _ in by_oracle.values()],
    }
    digest = report_digest(domain, report)

    def cosign(url: str) -> tuple[str, bytes]:
        answer = request_json(f"{url}/sign", sign_body, timeout=timeout, tries=tries)
        signature = bytes.fromhex(str(answer.get("signature", "")).removeprefix("0x"))
        who = recover_signer(digest, signature)
        if who not in roster:
            raise AiledgerError(f"{url}: signature by {who}, not an oracle of the feed")
        return who, signature

    signed, sign_failed = _fan_out([url for url, _, _ in by_oracle.values()], cosign)
    failed.update(sign_failed)
    signatures = dict(signed.values())
    _quorum("oracles co-signed", len(signatures), f + 1, f, failed)
    order = sorted(signatures, key=lambda a: int(a, 16))
    in_report = [observation_sigs[roster[i]] for i in report.observers]
    receipt = chain.transact(
        feeds,
        "transmit",
        report.as_tuple(),
        roster,
        (f, lo, hi, max_age),
        pack_signatures([signatures[a] for a in order]),
        pack_signatures(in_report),
        signer=transmitter.to_local_account(),
    )
    observations = tuple(obs for _, _, obs in by_oracle.values())
    indices: tuple[int, ...] = ()
    if log is not None:
        envelopes = [env for _, env, _ in by_oracle.values()]
        predicate = OracleReportPredicate(
            feed=feed,
            feed_id="0x" + fid.hex(),
            epoch=epoch,
            answer=report.median,
            observations=list(report.observations),
            observers=[roster[i] for i in report.observers],
            signers=order,
            signatures=["0x" + signatures[a].hex() for a in order],
            input_root=fp.root.hex(),
            model_digest=digest_hex,
            observations_timestamp=report.observations_timestamp,
            config_digest="0x" + report.config_digest.hex(),
            config_version=version,
            chain_id=chain.chain_id,
            contract=feeds.address,
            transaction=receipt.tx_hash,
            block=receipt.block_number,
            observation_envelopes=[
                hashlib.sha256(e.canonical_json()).hexdigest() for e in envelopes
            ],
            observation_signatures=["0x" + sig.hex() for sig in in_report],
            report_hash="0x" + report_hash(report).hex(),
        )
        subject = Subject(name=Path(batch).name, digest={"sha256": observations[0].input_sha256})
        statement = sign_statement(make_statement([subject], predicate), [transmitter])
        indices = tuple(log.append_many([e.to_json() for e in [*envelopes, statement]]))
    return RoundResult(
        feed,
        epoch,
        report.median,
        report,
        observations,
        tuple(order),
        receipt.tx_hash,
        receipt.block_number,
        indices,
        failed,
        observation_sigs,
    )

"""The oracle demos' claims, read back from the chain and the log, and checked.

Everything ``ailedger demo crop-insurance`` and ``demo safety-bonus`` print about a round, a
payout or the books is taken here from what the contracts store and emitted (through the
wrappers of :mod:`ailedger.chain.oracles` and :mod:`ailedger.chain.escrow`) and what the log
holds, and compared with an expectation the demo computed on its own, without the chain or
the oracle nodes: the batch scored in-process by the fingerprinted model, the fingerprints of
the batch and the model, the lying oracle's address and offset. A claim that does not hold
raises :class:`ClaimFailed` (exit 1, code ``demo-check-failed``), one line naming it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ailedger._codes import VerificationCode
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.chain import Chain
from ailedger.chain._events import EventRecord
from ailedger.chain.anchoring import AnchorResult
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.escrow import ParametricEscrow, PerformanceBonus, PolicyStatus, Totals
from ailedger.chain.oracle_report import feed_id
from ailedger.chain.oracles import OracleFeeds
from ailedger.errors import AiledgerError, ChainError, VerificationFailed
from ailedger.identity.keys import checksum_address
from ailedger.log import TransparencyLog
from ailedger.log._envelope import check_ethereum_signature
from ailedger.oracle.node import verify_observation
from ailedger.oracle.round import OracleReportPredicate

__all__ = [
    "ClaimFailed",
    "Claims",
    "RoundExpectation",
    "verify_anchor",
    "verify_books",
    "verify_logged_dataset",
    "verify_logged_model",
    "verify_policies",
    "verify_round",
    "verify_weeks",
]


class ClaimFailed(VerificationFailed):
    """A claim a demo prints does not hold on the chain or in the log."""

    default_code: ClassVar[VerificationCode] = "demo-check-failed"


class Claims:
    """Counts the claims checked; :meth:`check` raises :class:`ClaimFailed` on the first
    that does not hold."""

    def __init__(self) -> None:
        self.checked = 0

    def check(self, holds: bool, what: str) -> None:
        self.checked += 1
        if not holds:
            raise ClaimFailed(f"demo claim does not hold: {what}", code="demo-check-failed")


def _hex(value: Any) -> str:
    """A bytes32 event argument or stored value as lower-case hex without 0x."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value).lower().removeprefix("0x")


def _events(chain: Chain, contract: Any, event: str, **match: Any) -> list[EventRecord]:
    out = []
    for record in chain.events(contract, event):
        if all(_same(record.args.get(k), v) for k, v in match.items()):
            out.append(record)
    return out


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, bytes):
        return _hex(have) == want.hex()
    if isinstance(want, int):
        return have is not None and int(have) == want
    return str(have).lower() == str(want).lower()


def _withdrawn(chain: Chain, contract: Any) -> dict[str, list[EventRecord]]:
    """Withdrawn events by the account credited."""
    out: dict[str, list[EventRecord]] = {}
    for record in chain.events(contract, "Withdrawn"):
        out.setdefault(checksum_address(str(record.args["account"])), []).append(record)
    return out


@dataclass(frozen=True)
class RoundExpectation:
    """What a round must show, computed without the chain or the oracle nodes."""

    feed: str
    epoch: int
    #: The honest value: the batch scored in-process by the fingerprinted model.
    value: int
    input_root: bytes
    model_digest: str
    liar: str
    lie_by: int


def _log_statement(log: TransparencyLog, index: int) -> tuple[dsse.Envelope, Statement]:
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    return envelope, Statement.from_json(envelope.payload)


def verify_logged_dataset(
    claims: Claims, log: TransparencyLog, index: int, root: bytes, name: str
) -> None:
    """Log entry ``index`` is the dataset statement of batch ``name`` naming ``root``."""
    _, statement = _log_statement(log, index)
    claims.check(
        str(statement.predicate.get("root")) == root.hex(),
        f"log entry {index} states {name}'s batch root {root.hex()}",
    )


def verify_logged_model(claims: Claims, log: TransparencyLog, index: int, digest: str) -> None:
    """Log entry ``index`` is a model statement whose subject is ``digest``."""
    _, statement = _log_statement(log, index)
    named = [s.digest.get("sha256") for s in statement.subject]
    claims.check(named == [digest], f"log entry {index} states the model sha256:{digest}")


def verify_anchor(
    claims: Claims, anchors: LogAnchors, log: TransparencyLog, anchored: AnchorResult
) -> None:
    """The chain's latest anchor of the log is ``anchored``: the whole log (its size and
    root now)."""
    record = anchored.record
    latest = anchors.latest(record.log_id)
    size = log.size()
    claims.check(
        latest is not None
        and (latest.index, latest.size, latest.root) == (record.index, record.size, record.root)
        and (latest.size, latest.root) == (size, log.root(size)),
        f"the chain's latest anchor of the log is the whole log: size {size}",
    )


def verify_round(
    claims: Claims,
    chain: Chain,
    feeds: OracleFeeds,
    creator: str,
    expected: RoundExpectation,
    log: TransparencyLog,
    log_indices: Sequence[int],
) -> dict[str, Any]:
    """Read round ``expected.epoch`` of feed ``expected.feed`` (``creator``'s namespace) back
    from the contract, its ReportAccepted event and the log's observation and report
    statements (at ``log_indices``: the observations, then the report), check each against
    ``expected``, and return the round as the demo prints it."""
    where = f"{expected.feed} epoch {expected.epoch}"
    fid = feed_id(creator, expected.feed)
    # The round's answer, time and config version are stored; its batch root and model are
    # in its ReportAccepted event, which feeds.round accepts only if the feed's events replay
    # to the rounds head the contract stores.
    try:
        stored = feeds.round(fid, expected.epoch)
    except ChainError as exc:
        claims.check(False, f"{where}: the feed's ReportAccepted events replay: {exc}")
        raise  # unreachable: check raised
    claims.check(stored is not None, f"{where}: a round is stored on-chain")
    assert stored is not None
    accepted = _events(chain, feeds.contract, "ReportAccepted", feedId=fid, epoch=expected.epoch)
    claims.check(len(accepted) == 1, f"{where}: one ReportAccepted event (found {len(accepted)})")
    event = accepted[0]
    claims.check(
        int(event.args["answer"]) == stored.answer and event.tx_hash == stored.transaction,
        f"{where}: the ReportAccepted answer {event.args['answer']} is the stored {stored.answer}",
    )
    claims.check(
        stored.input_root == expected.input_root,
        f"{where}: the committed batch root {stored.input_root.hex()} is the batch's "
        f"{expected.input_root.hex()}",
    )
    claims.check(
        stored.model_digest.hex() == expected.model_digest,
        f"{where}: the committed model digest {stored.model_digest.hex()} is the model's "
        f"{expected.model_digest}",
    )
    claims.check(
        stored.answer == expected.value,
        f"{where}: the stored median {stored.answer} is the honest score {expected.value}",
    )

    # The log: the transmitter's report statement names this transaction, and every
    # observation it names is in the log, signed by its oracle.
    claims.check(len(log_indices) >= 2, f"{where}: the round's statements are in the log")
    *observation_entries, report_entry = log_indices
    envelope, statement = _log_statement(log, report_entry)
    transmitter = checksum_address(str(event.args["transmitter"]))
    claims.check(
        statement.predicate_type == OracleReportPredicate.PREDICATE_TYPE
        and len(envelope.signatures) == 1
        and envelope.signatures[0].keyid.lower() == transmitter.lower(),
        f"{where}: log entry {report_entry} is a report statement by transmitter {transmitter}",
    )
    try:
        check_ethereum_signature(transmitter, envelope.pae(), envelope.signatures[0].sig)
    except AiledgerError:
        claims.check(False, f"{where}: the report statement is signed by {transmitter}")
    report = OracleReportPredicate.model_validate(statement.predicate)
    claims.check(
        (report.transaction, report.answer, report.input_root, report.model_digest)
        == (event.tx_hash, stored.answer, stored.input_root.hex(), stored.model_digest.hex())
        and report.feed_id == "0x" + fid.hex()
        and report.epoch == expected.epoch,
        f"{where}: the log's report statement names the accepting transaction "
        f"{event.tx_hash} and the stored answer, batch root and model",
    )
    roster = {checksum_address(s) for s in feeds.signers(fid)}
    config = feeds.feed(fid)
    assert config is not None  # a round is stored
    signers = [checksum_address(s) for s in report.signers]
    claims.check(
        set(signers) <= roster and len(set(signers)) >= config.f + 1,
        f"{where}: at least f+1 = {config.f + 1} configured oracles signed the report",
    )
    values: dict[str, int] = {}
    hashes = []
    for index in observation_entries:
        obs_envelope, _ = _log_statement(log, index)
        try:
            obs = verify_observation(obs_envelope)
        except AiledgerError as exc:
            claims.check(False, f"{where}: log entry {index} is a signed observation: {exc}")
            raise  # unreachable: check raised
        claims.check(
            (obs.feed, obs.epoch, obs.input_root, obs.model_digest)
            == (expected.feed, expected.epoch, expected.input_root.hex(), expected.model_digest)
            and checksum_address(obs.oracle) in roster,
            f"{where}: log entry {index} observes this batch with this model, by an oracle",
        )
        values[checksum_address(obs.oracle)] = obs.value
        hashes.append(hashlib.sha256(obs_envelope.canonical_json()).hexdigest())
    claims.check(
        hashes == report.observation_envelopes
        and sorted(values.values()) == sorted(report.observations),
        f"{where}: the report was built from the observations in the log",
    )
    liar = checksum_address(expected.liar)
    off = sorted(who for who, v in values.items() if v != expected.value)
    claims.check(
        off == [liar],
        f"{where}: the only oracle off the honest score is the lying oracle {liar} "
        f"(off: {', '.join(off) or 'none'})",
    )
    claims.check(
        values[liar] == expected.value + expected.lie_by and values[liar] != stored.answer,
        f"{where}: the liar reported {expected.value + expected.lie_by}, and the stored median "
        f"is not its value",
    )
    honest = [v for who, v in values.items() if who != liar]
    claims.check(
        min(honest) <= stored.answer <= max(honest),
        f"{where}: the stored median {stored.answer} lies within the honest oracles' values",
    )
    return {
        "feed": expected.feed,
        "epoch": expected.epoch,
        "stored_answer": stored.answer,
        "honest": honest,
        "lying": [values[liar]],
        "median_honest": True,
        "input_root": stored.input_root.hex(),
        "model_digest": stored.model_digest.hex(),
        "signers": signers,
        "transaction": event.tx_hash,
        "log_indices": list(log_indices),
    }


def verify_books(
    claims: Claims, chain: Chain, contract: ParametricEscrow | PerformanceBonus, expected: Totals
) -> Totals:
    """The contract's books as stored, equal to ``expected``, balanced, and backed by the
    ether it actually holds."""
    totals = contract.totals()
    claims.check(
        totals == expected,
        f"the books on-chain {totals.to_dict()} are the expected {expected.to_dict()}",
    )
    claims.check(totals.balanced, "the books balance: paid + claimable + remaining == deposited")
    held = chain.balance(contract.address)
    claims.check(
        held == totals.claimable + totals.remaining,
        f"the contract holds {held} wei, claimable + remaining "
        f"{totals.claimable + totals.remaining}",
    )
    return totals


def _received(
    claims: Claims, who: str, account: str, records: Sequence[EventRecord], wei: int, left: int
) -> str | None:
    """Check that ``account`` withdrew exactly ``wei`` to itself and has nothing left to
    claim; the withdrawing transaction, if any."""
    to_self = [r for r in records if checksum_address(str(r.args["to"])) == account]
    got = sum(int(r.args["amount"]) for r in to_self)
    claims.check(
        got == wei and len(to_self) == len(records),
        f"{who} {account} withdrew {wei} wei to itself (the chain shows {got})",
    )
    claims.check(left == 0, f"{who} {account} has nothing left to claim (claimable {left})")
    return to_self[-1].tx_hash if to_self else None


def verify_policies(
    claims: Claims,
    chain: Chain,
    escrow: ParametricEscrow,
    policies: Mapping[str, int],
    holders: Mapping[str, str],
    paid_epochs: Mapping[str, int | None],
) -> dict[str, dict[str, Any]]:
    """Each policy (farm -> id) as stored and as its events say: triggered on the expected
    epoch and withdrawn by its holder, or still active and never paid."""
    triggered: dict[int, list[EventRecord]] = {}
    for record in chain.events(escrow.contract, "PolicyTriggered"):
        triggered.setdefault(int(record.args["policyId"]), []).append(record)
    withdrawn = _withdrawn(chain, escrow.contract)
    out: dict[str, dict[str, Any]] = {}
    for farm, policy_id in policies.items():
        info = escrow.policy(policy_id)
        claims.check(info is not None, f"{farm}: policy {policy_id} exists on-chain")
        assert info is not None
        holder = checksum_address(holders[farm])
        claims.check(checksum_address(info.holder) == holder, f"{farm}: the policy holder")
        epoch = paid_epochs[farm]
        events = triggered.get(policy_id, [])
        if epoch is None:
            claims.check(
                info.status == PolicyStatus.ACTIVE and not events,
                f"{farm}: not paid (policy {info.status.name.lower()}, "
                f"{len(events)} PolicyTriggered events)",
            )
        else:
            claims.check(
                info.status == PolicyStatus.TRIGGERED
                and info.settled_epoch == epoch
                and len(events) == 1
                and int(events[0].args["epoch"]) == epoch
                and int(events[0].args["payout"]) == info.payout,
                f"{farm}: paid {info.payout} wei on epoch {epoch} (policy "
                f"{info.status.name.lower()} on epoch {info.settled_epoch})",
            )
        wei = info.payout if epoch is not None else 0
        tx = _received(
            claims, farm, holder, withdrawn.get(holder, []), wei, escrow.claimable(holder)
        )
        out[farm] = {
            "policy": info.to_dict(),
            "paid_wei": wei,
            "settle_transaction": events[0].tx_hash if events else None,
            "withdraw_transaction": tx,
        }
    return out


def verify_weeks(
    claims: Claims,
    chain: Chain,
    bonus: PerformanceBonus,
    agreement: int,
    parties: Mapping[str, str],
    incidents: Mapping[int, int],
    wei_per_week: int,
) -> dict[int, dict[str, Any]]:
    """Each week (-> its expected incident count) as settled on-chain: one WeekSettled event
    with that count, paid to the contractor when it is zero and back to the payer otherwise;
    each party (``contractor``, ``payer``) withdrew what its weeks came to."""
    contractor = checksum_address(parties["contractor"])
    payer = checksum_address(parties["payer"])
    out: dict[int, dict[str, Any]] = {}
    for week, count in sorted(incidents.items()):
        settled = _events(chain, bonus.contract, "WeekSettled", agreementId=agreement, week=week)
        claims.check(
            len(settled) == 1 and bonus.week_settled(agreement, week),
            f"week {week}: settled once on-chain (found {len(settled)} WeekSettled events)",
        )
        event = settled[0]
        beneficiary = checksum_address(str(event.args["beneficiary"]))
        claims.check(
            int(event.args["incidents"]) == count,
            f"week {week}: settled on {event.args['incidents']} incidents, counted {count}",
        )
        want = contractor if count == 0 else payer
        who = "contractor" if want == contractor else "payer"
        claims.check(beneficiary == want, f"week {week}: paid to the {who} {want}")
        out[week] = {"paid_to": who, "settle_transaction": event.tx_hash}
    withdrawn = _withdrawn(chain, bonus.contract)
    for who, account in (("contractor", contractor), ("payer", payer)):
        weeks = sum(1 for w in out.values() if w["paid_to"] == who)
        _received(
            claims,
            who,
            account,
            withdrawn.get(account, []),
            weeks * wei_per_week,
            bonus.claimable(account),
        )
    return out

"""Oracle feeds for the explorer: rounds read from the log, payouts read from the chain.

A round reaches the log as the observations its oracles signed
(``oracle-observation/v1``, one entry each) followed by the report its transmitter signed
(``oracle-report/v1``: feed, epoch, the stored median, the observations and who made them,
the co-signers, the ``transmit`` transaction, and the SHA-256 of each observation's
canonical envelope); :func:`ailedger.oracle.round.run_round` appends them. A feed here is
every report naming one feed id, oldest first. Each round names its log entries (the report
and the observations whose envelope hashes it lists), which the explorer verifies in the
browser.

With a chain to read, each round is also looked up there: the OracleFeeds ``ReportAccepted``
event of the report's transaction (``on_chain``: it says the same feed, epoch and answer), and
the payouts it triggered (``PolicyTriggered`` of the ParametricEscrow contracts that read that
OracleFeeds contract, for the policies on this feed at this epoch), from the chain's own event
index. Without one, ``on_chain`` and ``payouts`` are None and ``chain`` says why.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from ailedger.chain import Chain
    from ailedger.log import Entry, TransparencyLog

__all__ = ["OBSERVATION", "REPORT", "FeedReader"]

REPORT = "https://ailedger.dev/predicates/oracle-report/v1"
OBSERVATION = "https://ailedger.dev/predicates/oracle-observation/v1"


def _predicate(entry: Entry) -> dict[str, Any] | None:
    """The predicate of an in-toto statement entry (None: not one the log could decode)."""
    try:
        payload = base64.b64decode(json.loads(entry.envelope)["payload"])
        predicate = json.loads(payload)["predicate"]
    except (ValueError, KeyError, TypeError):
        return None
    return predicate if isinstance(predicate, dict) else None


@dataclass
class _Round:
    index: int
    predicate: dict[str, Any]
    subject: str


@dataclass
class FeedReader:
    """Reads the feeds of ``log`` (and, with ``chain``, their on-chain side); ``no_chain``
    says why there is no chain to read when there is none."""

    log: TransparencyLog
    chain: Chain | None = None
    no_chain: str = "this service reads no chain"
    _escrows: dict[str, str | None] = field(default_factory=dict)

    def _reports(self, size: int) -> list[_Round]:
        out = []
        for entry in self.log.query(predicate_type=REPORT, limit=None):
            p = _predicate(entry)
            if entry.index >= size or p is None or not isinstance(p.get("feed_id"), str):
                continue
            subject = entry.subjects[0][0] if entry.subjects else ""
            out.append(_Round(entry.index, p, subject))
        return out

    def feeds(self, size: int) -> list[dict[str, Any]]:
        """Every feed with reports in the first ``size`` entries: name, id, contract, rounds."""
        by_id: dict[str, dict[str, Any]] = {}
        for r in self._reports(size):
            p = r.predicate
            feed = by_id.setdefault(
                p["feed_id"].lower(),
                {
                    "feed": p.get("feed"),
                    "feed_id": p["feed_id"].lower(),
                    "chain_id": p.get("chain_id"),
                    "contract": p.get("contract"),
                    "rounds": 0,
                },
            )
            feed["rounds"] += 1
            feed["latest_epoch"] = p.get("epoch")
            feed["latest_answer"] = p.get("answer")
            feed["latest_log_index"] = r.index
        return sorted(by_id.values(), key=lambda f: (str(f["feed"]), f["feed_id"]))

    def feed(self, feed_id: str, size: int) -> dict[str, Any] | None:
        """A feed's rounds (None: no report names ``feed_id`` in the first ``size``)."""
        rounds = [r for r in self._reports(size) if r.predicate["feed_id"].lower() == feed_id]
        if not rounds:
            return None
        first = rounds[0].predicate
        chain: dict[str, Any] = {"read": self.chain is not None, "detail": self.no_chain}
        accepted: dict[str, dict[str, Any]] = {}
        payouts: dict[int, list[dict[str, Any]]] = {}
        if self.chain is not None:
            try:
                accepted = self._accepted(feed_id)
                payouts = self._payouts(feed_id, str(first.get("contract", "")))
                chain["detail"] = (
                    f"read from chain {self.chain.chain_id} ({self.chain.backend}): "
                    "OracleFeeds ReportAccepted and ParametricEscrow PolicyTriggered events"
                )
            except AiledgerError as exc:
                chain = {"read": False, "detail": f"the chain could not be read: {exc.message}"}
        return {
            "feed": first.get("feed"),
            "feed_id": feed_id,
            "chain_id": first.get("chain_id"),
            "contract": first.get("contract"),
            "chain": chain,
            "rounds": [self._round(r, size, chain["read"], accepted, payouts) for r in rounds],
        }

    def _round(
        self,
        r: _Round,
        size: int,
        read: bool,
        accepted: dict[str, dict[str, Any]],
        payouts: dict[int, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        p = r.predicate
        wanted = {str(h).lower() for h in p.get("observation_envelopes", [])}
        observations = []
        for entry in self.log.query(subject=r.subject, predicate_type=OBSERVATION, limit=None):
            if entry.index >= size or hashlib.sha256(entry.envelope).hexdigest() not in wanted:
                continue
            obs = _predicate(entry) or {}
            observations.append(
                {"log_index": entry.index, "oracle": obs.get("oracle"), "value": obs.get("value")}
            )
        tx = str(p.get("transaction", "")).lower()
        event = accepted.get(tx)
        on_chain = None
        if read:
            on_chain = event is not None and (
                event["epoch"] == p.get("epoch") and event["answer"] == p.get("answer")
            )
        epoch = p.get("epoch")
        return {
            "epoch": epoch,
            "answer": p.get("answer"),
            "observations": p.get("observations"),
            "observers": p.get("observers"),
            "signers": p.get("signers"),
            "input_root": p.get("input_root"),
            "model_digest": p.get("model_digest"),
            "observations_timestamp": p.get("observations_timestamp"),
            "config_version": p.get("config_version"),
            "transaction": p.get("transaction"),
            "block": p.get("block"),
            "report_log_index": r.index,
            "observation_entries": observations,
            "on_chain": on_chain,
            "payouts": (payouts.get(epoch, []) if isinstance(epoch, int) else []) if read else None,
        }

    def _accepted(self, feed_id: str) -> dict[str, dict[str, Any]]:
        assert self.chain is not None
        out = {}
        for e in self.chain.events(event="ReportAccepted", args={"feedId": feed_id}):
            out[e.tx_hash.lower()] = {"epoch": e.args.get("epoch"), "answer": e.args.get("answer")}
        return out

    def _triggered(self) -> list[dict[str, Any]]:
        """Every ParametricEscrow payout on the chain: the policy's feed and holder, the
        OracleFeeds contract the escrow reads (``feeds``), the transaction."""
        assert self.chain is not None
        out = []
        for e in self.chain.events(event="PolicyTriggered"):
            feeds = self._feeds_of(e.address)
            if feeds is None:
                continue
            escrow = self.chain.at("ParametricEscrow", e.address, track=False)
            policy = self.chain.call(escrow, "getPolicy", e.args["policyId"])
            out.append(
                {
                    "escrow": e.address,
                    "feeds": feeds,
                    "feed_id": "0x" + bytes(policy[6]).hex(),
                    "epoch": e.args["epoch"],
                    "policy_id": e.args["policyId"],
                    "holder": policy[1],
                    "answer": e.args["answer"],
                    "payout_wei": str(e.args["payout"]),
                    "transaction": e.tx_hash,
                    "block": e.block_number,
                }
            )
        return out

    def _payouts(self, feed_id: str, feeds: str) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for p in self._triggered():
            if p["feeds"] == feeds.lower() and p["feed_id"] == feed_id:
                out.setdefault(int(p["epoch"]), []).append(p)
        return out

    def payouts_by_transaction(self, tx: str) -> list[dict[str, Any]]:
        """The payouts made by transaction ``tx`` (none without a chain)."""
        if self.chain is None:
            return []
        return [p for p in self._triggered() if p["transaction"].lower() == tx]

    def reports_by_transaction(self, tx: str, size: int) -> list[dict[str, Any]]:
        """The oracle reports in the first ``size`` entries that name transaction ``tx``."""
        return [
            {
                "feed": r.predicate.get("feed"),
                "feed_id": str(r.predicate["feed_id"]).lower(),
                "epoch": r.predicate.get("epoch"),
                "answer": r.predicate.get("answer"),
                "report_log_index": r.index,
            }
            for r in self._reports(size)
            if str(r.predicate.get("transaction", "")).lower() == tx
        ]

    def _feeds_of(self, escrow: str) -> str | None:
        """The OracleFeeds contract a ParametricEscrow reads (lower case; cached)."""
        assert self.chain is not None
        if escrow not in self._escrows:
            contract = self.chain.at("ParametricEscrow", escrow, track=False)
            try:
                self._escrows[escrow] = str(self.chain.call(contract, "feeds")).lower()
            except AiledgerError:
                self._escrows[escrow] = None
        return self._escrows[escrow]

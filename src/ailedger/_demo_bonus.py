"""``ailedger demo safety-bonus``: a port contractor paid per incident-free week, for real.

The same parts as :mod:`ailedger._demo_crop`, with port safety cameras: eight weekly batches
of camera events (two weeks with real incidents) are fingerprinted, stated in the log and
anchored; the incident rule (:func:`ailedger.oracle.scoring.count_incidents`, its threshold in
a fingerprinted ``rule.json``) is the oracles' model; an incident-count feed (4 oracles, f=1,
epoch = week) feeds a PerformanceBonus agreement funded by the port authority; four oracle
node processes (the last one hiding incidents: it reports 100 fewer) count each week; the
demo process leads each round and settles the week (incident-free: to the contractor,
otherwise back to the payer); both withdraw, and the report traces every week.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ailedger._demo_crop import anchor as anchor_log
from ailedger._demo_crop import (
    check_round,
    create_feeds,
    demo_world,
    log_dataset,
    log_model,
    oracle_processes,
)
from ailedger._oracle_report import feed_id
from ailedger.chain.escrow import PerformanceBonus
from ailedger.errors import InvalidInput
from ailedger.keys import Secp256k1Signer, checksum_address
from ailedger.model import fingerprint_model
from ailedger.oracle.node import OracleNode
from ailedger.oracle.round import run_round
from ailedger.oracle.scoring import ModelMismatch, count_incidents
from ailedger.oracle.sensors import write_camera_weeks

__all__ = [
    "HIDE",
    "INCIDENT_WEEKS",
    "RULE_FILE",
    "WEEKS",
    "IncidentNode",
    "run_safety_bonus",
    "write_rule",
]

WEEKS = 8
#: Batch week -> real incidents in it.
INCIDENT_WEEKS = {2: 3, 5: 1}
#: The lying oracle reports this many incidents fewer than it counts.
HIDE = 100
RULE_FILE = "rule.json"
WEEKLY = 10**17
FEED = "incidents/port-berth-7"


def write_rule(directory: Path, threshold: float = 0.8, dedupe_seconds: int = 60) -> Path:
    """The incident rule as a model directory (one ``rule.json``) to fingerprint."""
    directory.mkdir(parents=True, exist_ok=True)
    rule = {
        "rule": "ailedger.oracle.scoring.count_incidents",
        "threshold": threshold,
        "dedupe_seconds": dedupe_seconds,
    }
    (directory / RULE_FILE).write_text(json.dumps(rule, indent=2, sort_keys=True) + "\n")
    return directory


class IncidentNode(OracleNode):
    """An oracle node whose model is the incident rule in ``model_dir/rule.json``."""

    def __init__(
        self,
        feed: str,
        signer: Secp256k1Signer,
        model_dir: Path,
        model_digest: str,
        *,
        lie_by: int = 0,
        threshold: float = 0.8,
    ) -> None:
        super().__init__(feed, signer, model_dir, model_digest, lie_by=lie_by)
        self.threshold = threshold

    def _rule(self) -> dict[str, Any]:
        fp = fingerprint_model(self.model_dir, tensors=False)
        if fp.subject_digest.hex() != self.model_digest:
            raise ModelMismatch(f"{self.model_dir}: the rule is not sha256:{self.model_digest}")
        rule: dict[str, Any] = json.loads((self.model_dir / RULE_FILE).read_text())
        if rule.get("threshold") != self.threshold:
            raise InvalidInput(f"the rule's threshold is not {self.threshold}")
        return rule

    def check_model(self) -> None:
        self._rule()

    def score(self, batch: Path) -> int:
        rule = self._rule()  # fingerprint first
        return count_incidents(batch, self.threshold, dedupe_seconds=rule["dedupe_seconds"])


def run_safety_bonus(workdir: Path, rpc: str | None = None) -> dict[str, Any]:
    """The whole safety bonus example (module docstring) on the embedded chain, or on the
    development node at ``rpc``; the report as a dict."""
    roles = ["trainer", "sensors", "payer", "contractor"]
    with demo_world(workdir, "port.demo/log", roles, rpc) as world:
        keys = world.keys
        batches = write_camera_weeks(
            workdir / "cameras", WEEKS, seed=2026, incident_weeks=INCIDENT_WEEKS
        )
        dataset_index = {b.root: log_dataset(world, b, keys["sensors"]) for b in batches}
        rule_dir = write_rule(workdir / "incident-rule")
        digest = fingerprint_model(rule_dir, tensors=False).subject_digest.hex()
        model_index = log_model(world, rule_dir, [], "port-safety")
        first_anchor = anchor_log(world)

        feeds = create_feeds(world, [FEED], (-1000, 1000))
        bonus_c = world.chain.deploy("PerformanceBonus", feeds.address, signer=keys["leader"])
        bonus = PerformanceBonus(world.chain, bonus_c)
        contractor = checksum_address(keys["contractor"].address)
        agreement = bonus.create_agreement(
            contractor,
            feed_id(FEED),
            1,
            WEEKS,
            WEEKLY,
            signer=keys["payer"].to_local_account(),
        )
        args = ["--model-dir", str(rule_dir), "--digest", digest, "--incidents", "0.8"]
        weeks: list[dict[str, Any]] = []
        with oracle_processes(world, [FEED], args, -HIDE) as nodes:
            node_pids = [proc.pid for proc in nodes.procs]
            for batch in batches:
                week = batch.epoch + 1
                result = run_round(
                    world.chain,
                    feeds.contract,
                    FEED,
                    week,
                    batch.path,
                    nodes.peers(FEED),
                    model_digest=digest,
                    transmitter=keys["leader"],
                    log=world.log,
                )
                checked = check_round(world, feeds, result)
                receipt = bonus.settle_week(agreement, week, signer=keys["leader"])
                event = next(e for e in receipt.events if e.event == "WeekSettled")
                beneficiary = checksum_address(str(event.args["beneficiary"]))
                checked.update(
                    week=week,
                    real_incidents=INCIDENT_WEEKS.get(batch.epoch, 0),
                    dataset_log_index=dataset_index[batch.root],
                    paid_to="contractor" if beneficiary == contractor else "payer",
                    settle_transaction=receipt.tx_hash,
                )
                weeks.append(checked)
        for role in ("contractor", "payer"):
            if bonus.claimable(keys[role].address):
                bonus.withdraw(signer=keys[role].to_local_account())
        last_anchor = anchor_log(world)
        totals = bonus.totals()
        return {
            "demo": "safety-bonus",
            "workdir": str(workdir),
            "chain_id": world.chain.chain_id,
            "oracles": world.oracle_addresses,
            "lying_oracle": world.oracle_addresses[-1],
            "lie_by": -HIDE,
            "model_digest": digest,
            "model_log_index": model_index,
            "contracts": {"feeds": feeds.address, "bonus": bonus.address},
            "contractor": contractor,
            "payer": checksum_address(keys["payer"].address),
            "wei_per_week": WEEKLY,
            "weeks": weeks,
            "paid_weeks": [w["week"] for w in weeks if w["paid_to"] == "contractor"],
            "totals": totals.to_dict(),
            "balanced": totals.balanced,
            "anchors": [first_anchor.to_dict(), last_anchor.to_dict()],
            "log_entries": world.log.size(),
            "node_pids": node_pids,
        }

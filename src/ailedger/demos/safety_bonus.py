"""``ailedger demo safety-bonus``: a port contractor paid per incident-free week, for real.

The same parts as :mod:`ailedger.demos.crop_insurance`, with port safety cameras: eight weekly
batches
of camera events (two weeks with real incidents) are fingerprinted, stated in the log and
anchored; the incident rule (:func:`ailedger.oracle.scoring.count_incidents`, its threshold in
a fingerprinted ``rule.json``) is the oracles' model; an incident-count feed (4 oracles, f=1,
epoch = week) feeds a PerformanceBonus agreement funded by the port authority; four oracle
node processes (the last one hiding incidents: it reports 100 fewer) count each week; the
demo process leads each round and settles the week (incident-free: to the contractor,
otherwise back to the payer); both withdraw, and the report traces every week.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ailedger.chain.escrow import PerformanceBonus
from ailedger.chain.oracle_report import feed_id
from ailedger.demos.crop_insurance import anchor as anchor_log
from ailedger.demos.crop_insurance import (
    check_round,
    create_feeds,
    demo_world,
    feed_creator,
    log_dataset,
    log_model,
    oracle_processes,
)
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import checksum_address
from ailedger.oracle.incidents import write_rule
from ailedger.oracle.round import run_round
from ailedger.oracle.sensors import write_camera_weeks

__all__ = [
    "HIDE",
    "INCIDENT_WEEKS",
    "REFUND_AFTER",
    "WEEKS",
    "run_safety_bonus",
]

WEEKS = 8
#: Batch week -> real incidents in it.
INCIDENT_WEEKS = {2: 3, 5: 1}
#: The lying oracle reports this many incidents fewer than it counts.
HIDE = 100
WEEKLY = 10**17
FEED = "incidents/port-berth-7"
#: Seconds after which a week never reported under the pinned configuration goes back to the
#: payer.
REFUND_AFTER = 90 * 86400


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
        creator = feed_creator(world)
        fid = feed_id(creator, FEED)
        config = feeds.feed(fid)
        assert config is not None  # created just above
        agreement = bonus.create_agreement(
            contractor,
            fid,
            config.config_digest,
            1,
            WEEKS,
            WEEKLY,
            refund_after=world.chain.block_timestamp() + REFUND_AFTER,
            signer=keys["payer"].to_local_account(),
        )
        args = ["--model-dir", str(rule_dir), "--digest", digest, "--incidents", "0.8"]
        args += ["--feed-creator", creator]
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
                    creator=creator,
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

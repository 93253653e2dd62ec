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

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.chain.escrow import PerformanceBonus, Totals
from ailedger.chain.oracle_report import feed_id
from ailedger.demos._claims import (
    Claims,
    RoundExpectation,
    verify_books,
    verify_round,
    verify_weeks,
)
from ailedger.demos.crop_insurance import (
    ORACLES,
    create_feeds,
    demo_world,
    feed_creator,
    log_dataset,
    log_model,
    oracle_processes,
    quiet,
    verify_published,
)
from ailedger.demos.crop_insurance import anchor as anchor_log
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import checksum_address
from ailedger.oracle.incidents import RULE_FILE, write_rule
from ailedger.oracle.round import run_round
from ailedger.oracle.scoring import count_incidents
from ailedger.oracle.sensors import write_camera_weeks

__all__ = [
    "HIDE",
    "INCIDENT_WEEKS",
    "REFUND_AFTER",
    "THRESHOLD",
    "WEEKS",
    "run_safety_bonus",
]

WEEKS = 8
#: Batch week -> real incidents in it.
INCIDENT_WEEKS = {2: 3, 5: 1}
#: The lying oracle reports this many incidents fewer than it counts.
HIDE = 100
WEEKLY = 10**17
#: The incident rule's camera confidence threshold.
THRESHOLD = 0.8
FEED = "incidents/port-berth-7"
#: Seconds after which a week never reported under the pinned configuration goes back to the
#: payer.
REFUND_AFTER = 90 * 86400


def run_safety_bonus(
    workdir: Path, rpc: str | None = None, *, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The whole safety bonus example (module docstring) on the embedded chain, or on the
    development node at ``rpc``; the report as a dict, every claim in it read back from the
    chain or the log and checked (:mod:`ailedger.demos._claims`: :class:`ClaimFailed`
    otherwise). ``on_step`` gets one line per step as it happens."""
    say = on_step or quiet
    claims = Claims()
    roles = ["trainer", "sensors", "payer", "contractor"]
    with demo_world(workdir, "port.demo/log", roles, rpc) as world:
        keys = world.keys
        say(f"workspace, keys and LogAnchors ready on chain {world.chain.chain_id}")
        batches = write_camera_weeks(
            workdir / "cameras", WEEKS, seed=2026, incident_weeks=INCIDENT_WEEKS
        )
        dataset_index = {b.root: log_dataset(world, b, keys["sensors"]) for b in batches}
        say(f"{len(batches)} weekly camera batches fingerprinted and logged")
        rule_dir = write_rule(workdir / "incident-rule", threshold=THRESHOLD)
        digest = fingerprint_model(rule_dir, tensors=False).subject_digest.hex()
        model_index = log_model(world, rule_dir, [], "port-safety")
        say(f"incident rule fingerprinted: sha256:{digest[:16]}… (log entry {model_index})")
        first_anchor = anchor_log(world)
        say(f"log anchored at size {world.log.size()}")

        # The expectation, computed here without the chain or the nodes: each week counted
        # by the fingerprinted rule (and checked against the weeks' real incidents).
        rule = json.loads((rule_dir / RULE_FILE).read_text())
        counted = {
            b.epoch + 1: count_incidents(b.path, THRESHOLD, dedupe_seconds=rule["dedupe_seconds"])
            for b in batches
        }
        real = {b.epoch + 1: INCIDENT_WEEKS.get(b.epoch, 0) for b in batches}
        claims.check(
            counted == real,
            f"the incident rule counts the weeks' real incidents {real}, not {counted}",
        )

        feeds = create_feeds(world, [FEED], (-1000, 1000))
        bonus_c = world.deploy("PerformanceBonus", feeds.address, signer=keys["leader"])
        bonus = PerformanceBonus(world.chain, bonus_c)
        contractor = checksum_address(keys["contractor"].address)
        payer = checksum_address(keys["payer"].address)
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
        say(f"OracleFeeds and PerformanceBonus deployed; {WEEKS} weeks funded by the payer")
        args = ["--model-dir", str(rule_dir), "--digest", digest, "--incidents", str(THRESHOLD)]
        args += ["--feed-creator", creator]
        weeks: list[dict[str, Any]] = []
        liar = world.oracle_addresses[-1]
        with oracle_processes(world, [FEED], args, -HIDE) as nodes:
            node_pids = [proc.pid for proc in nodes.procs]
            say(f"{ORACLES} oracle node processes started (the last, {liar}, hides incidents)")
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
                expected = RoundExpectation(
                    FEED, week, counted[week], batch.root, digest, liar, -HIDE
                )
                checked = verify_round(
                    claims, world.chain, feeds, creator, expected, world.log, result.log_indices
                )
                bonus.settle_week(agreement, week, signer=keys["leader"])
                checked.update(
                    week=week,
                    real_incidents=real[week],
                    dataset_log_index=dataset_index[batch.root],
                    left_out=result.failures,
                )
                weeks.append(checked)
                say(
                    f"week {week}: stored {checked['stored_answer']} incidents (liar said "
                    f"{checked['lying'][0]}); week settled"
                )
        for role in ("contractor", "payer"):
            if bonus.claimable(keys[role].address):
                bonus.withdraw(signer=keys[role].to_local_account())
                say(f"the {role} withdrew")
        last_anchor = anchor_log(world)
        say(f"log anchored at size {world.log.size()}")
        settled = verify_weeks(
            claims,
            world.chain,
            bonus,
            agreement,
            {"contractor": contractor, "payer": payer},
            counted,
            WEEKLY,
        )
        for checked in weeks:
            checked.update(settled[checked["week"]])
        totals = verify_books(
            claims, world.chain, bonus, Totals(WEEKS * WEEKLY, WEEKS * WEEKLY, 0, 0)
        )
        verify_published(
            claims, world, batches, dataset_index, model_index, digest, last_anchor, say
        )
        return {
            "demo": "safety-bonus",
            "workdir": str(workdir),
            "chain_id": world.chain.chain_id,
            "oracles": world.oracle_addresses,
            "lying_oracle": liar,
            "lie_by": -HIDE,
            "model_digest": digest,
            "model_log_index": model_index,
            "contracts": {"feeds": feeds.address, "bonus": bonus.address},
            "contractor": contractor,
            "payer": payer,
            "wei_per_week": WEEKLY,
            "weeks": weeks,
            "paid_weeks": [w["week"] for w in weeks if w["paid_to"] == "contractor"],
            "totals": totals.to_dict(),
            "balanced": totals.balanced,
            "claims_checked": claims.checked,
            "anchors": [first_anchor.to_dict(), last_anchor.to_dict()],
            "log_entries": world.log.size(),
            "node_pids": node_pids,
        }

"""The oracle demos' read-back checks fail on a chain that disagrees with what they print.

Each test builds real on-chain state on the embedded chain with the demos' own parts
(``demo_world``, ``create_feeds``, oracle nodes served in-process, ``run_round`` through the
real OracleFeeds contract, real settlement and withdrawals) and runs the demos' verification
step (:mod:`ailedger.demos._claims`) on it: an honest round passes, a report whose median
is a liar's value (two oracles lying, a valid report the contract accepts) and a payout
withdrawn to another address and an anchor behind the log fail, naming the claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ailedger.chain.escrow import ParametricEscrow, PerformanceBonus, Trigger
from ailedger.chain.oracle_report import feed_id
from ailedger.chain.oracles import OracleFeeds
from ailedger.demos._claims import (
    ClaimFailed,
    Claims,
    RoundExpectation,
    verify_anchor,
    verify_logged_dataset,
    verify_policies,
    verify_round,
    verify_weeks,
)
from ailedger.demos.crop_insurance import (
    DemoWorld,
    anchor,
    create_feeds,
    demo_world,
    feed_creator,
    log_dataset,
)
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.oracle.incidents import RULE_FILE, IncidentNode, write_rule
from ailedger.oracle.node import serve
from ailedger.oracle.round import RoundResult, run_round
from ailedger.oracle.scoring import count_incidents
from ailedger.oracle.sensors import Batch, write_camera_weeks

FEED = "incidents/test-berth"
THRESHOLD = 0.8
HIDE = 100


@dataclass
class Setup:
    world: DemoWorld
    feeds: OracleFeeds
    rule: Path
    digest: str
    batches: list[Batch]

    @property
    def liar(self) -> str:
        return self.world.oracle_addresses[-1]

    def counted(self, batch: Batch) -> int:
        rule = json.loads((self.rule / RULE_FILE).read_text())
        return count_incidents(batch.path, THRESHOLD, dedupe_seconds=rule["dedupe_seconds"])

    def expectation(self, batch: Batch, lie_by: int) -> RoundExpectation:
        return RoundExpectation(
            FEED, batch.epoch + 1, self.counted(batch), batch.root, self.digest, self.liar, lie_by
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with demo_world(tmp_path / "ws", "claims.test/log", ["payer", "contractor"]) as world:
        rule = write_rule(tmp_path / "rule", threshold=THRESHOLD)
        digest = fingerprint_model(rule, tensors=False).subject_digest.hex()
        batches = write_camera_weeks(tmp_path / "cams", 2, seed=11, incident_weeks={1: 3})
        feeds = create_feeds(world, [FEED], (-1000, 1000))
        yield Setup(world, feeds, rule, digest, batches)


@contextmanager
def nodes(s: Setup, lies: Sequence[int]) -> Iterator[list[str]]:
    """One in-process node per oracle key; oracle i adds ``lies[i]`` to its count."""
    with ExitStack() as stack:
        urls = []
        for key, lie in zip(s.world.oracles, lies, strict=True):
            node = IncidentNode(
                FEED,
                key,
                s.rule,
                s.digest,
                creator=feed_creator(s.world),
                lie_by=lie,
                threshold=THRESHOLD,
            )
            server = serve(node)
            stack.callback(server.stop)
            urls.append(server.url)
        yield urls


def round_of(s: Setup, batch: Batch, peers: Sequence[str]) -> RoundResult:
    return run_round(
        s.world.chain,
        s.feeds.contract,
        FEED,
        batch.epoch + 1,
        batch.path,
        peers,
        model_digest=s.digest,
        creator=feed_creator(s.world),
        transmitter=s.world.keys["leader"],
        log=s.world.log,
    )


def verify(s: Setup, result: RoundResult, expected: RoundExpectation) -> dict[str, object]:
    return verify_round(
        Claims(),
        s.world.chain,
        s.feeds,
        feed_creator(s.world),
        expected,
        s.world.log,
        result.log_indices,
    )


def test_a_report_carrying_the_liars_median_fails_the_demo(setup: Setup) -> None:
    honest_week, forged_week = setup.batches
    # an honest round (one liar, as in the demo) passes
    with nodes(setup, [0, 0, 0, -HIDE]) as peers:
        result = round_of(setup, honest_week, peers)
    checked = verify(setup, result, setup.expectation(honest_week, -HIDE))
    assert checked["stored_answer"] == setup.counted(honest_week) == 0
    assert checked["lying"] == [-HIDE]
    # Two oracles inflate the count: a report the contract accepts (f+1 signatures, 2f+1
    # observations), whose stored median (the upper one) is a liar's value. Read back from
    # the chain, it fails the demo.
    with nodes(setup, [0, 0, HIDE, HIDE]) as peers:
        forged = round_of(setup, forged_week, peers)
    stored = setup.feeds.round(feed_id(feed_creator(setup.world), FEED), forged_week.epoch + 1)
    assert stored is not None
    assert stored.answer == 3 + HIDE  # the chain really holds the lie
    with pytest.raises(ClaimFailed, match=r"stored median 103 is the honest score 3") as exc:
        verify(setup, forged, setup.expectation(forged_week, HIDE))
    assert exc.value.exit_code == 1
    assert exc.value.code == "demo-check-failed"
    assert str(exc.value).startswith("demo claim does not hold: ")


def test_an_honest_median_with_a_second_liar_in_the_log_fails_the_demo(setup: Setup) -> None:
    """The stored median is honest, but the log shows a second oracle off the honest count:
    "the lying oracle is the only one off" does not hold."""
    week = setup.batches[1]
    with nodes(setup, [0, 0, -1, -HIDE]) as peers:  # -1: stays below the upper median
        result = round_of(setup, week, peers)
    with pytest.raises(ClaimFailed, match="the only oracle off the honest score"):
        verify(setup, result, setup.expectation(week, -HIDE))


def test_a_payout_withdrawn_elsewhere_fails_the_demo(setup: Setup) -> None:
    s = setup
    week = s.batches[0]  # no incidents: the contractor's week
    contractor = checksum_address(s.world.keys["contractor"].address)
    payer = checksum_address(s.world.keys["payer"].address)
    bonus = PerformanceBonus(
        s.world.chain,
        s.world.chain.deploy("PerformanceBonus", s.feeds.address, signer=s.world.keys["leader"]),
    )
    fid = feed_id(feed_creator(s.world), FEED)
    config = s.feeds.feed(fid)
    assert config is not None
    wei = 10**17
    agreement = bonus.create_agreement(
        contractor,
        fid,
        config.config_digest,
        1,
        1,
        wei,
        refund_after=s.world.chain.block_timestamp() + 86400,
        signer=s.world.keys["payer"].to_local_account(),
    )
    with nodes(s, [0, 0, 0, -HIDE]) as peers:
        round_of(s, week, peers)
    bonus.settle_week(agreement, 1, signer=s.world.keys["leader"])
    # the contractor's credit leaves for another address: what the demo prints
    # ("the contractor withdrew 0.1 ETH") does not hold on this chain
    elsewhere = checksum_address(Secp256k1Signer.generate().address)
    bonus.withdraw_to(elsewhere, signer=s.world.keys["contractor"].to_local_account())
    assert s.world.chain.balance(elsewhere) == wei
    parties = {"contractor": contractor, "payer": payer}
    with pytest.raises(ClaimFailed, match=f"contractor {contractor} withdrew {wei} wei to itself"):
        verify_weeks(Claims(), s.world.chain, bonus, agreement, parties, {1: 0}, wei)


def test_an_anchor_behind_the_log_fails_the_demo(setup: Setup) -> None:
    world = setup.world
    batch = setup.batches[0]
    index = log_dataset(world, batch, world.keys["leader"])
    anchored = anchor(world)
    verify_anchor(Claims(), world.anchors, world.log, anchored)
    verify_logged_dataset(Claims(), world.log, index, batch.root, batch.path.name)
    # one more entry after the last anchor: "anchored at size N" no longer covers the log
    log_dataset(world, setup.batches[1], world.keys["leader"])
    with pytest.raises(ClaimFailed, match="latest anchor of the log is the whole log"):
        verify_anchor(Claims(), world.anchors, world.log, anchored)


def test_a_policy_paid_on_a_lie_fails_the_demo(setup: Setup) -> None:
    """A policy on the incident feed pays above 1 incident. Week 1 had none, but two oracles
    inflate it and the contract stores their value: the escrow pays (real settlement, real
    withdrawal), and the demo's read-back of who was paid fails."""
    s = setup
    world = s.world
    insurer, holder = world.keys["payer"], world.keys["contractor"]
    escrow = ParametricEscrow(
        world.chain,
        world.chain.deploy("ParametricEscrow", s.feeds.address, signer=world.keys["leader"]),
    )
    fid = feed_id(feed_creator(world), FEED)
    config = s.feeds.feed(fid)
    assert config is not None
    payout = 10**17
    pool = escrow.create_pool(payout, signer=insurer.to_local_account())
    now = world.chain.block_timestamp()
    policy = escrow.create_policy(
        pool,
        holder.address,
        fid,
        config.config_digest,
        Trigger.ABOVE,
        1,
        payout,
        now - 3600,
        now + 86400,
        signer=insurer.to_local_account(),
    )
    week = s.batches[0]
    assert s.counted(week) == 0  # the honest expectation: never paid
    with nodes(s, [0, 0, HIDE, HIDE]) as peers:
        round_of(s, week, peers)
    escrow.settle(policy, week.epoch + 1, signer=world.keys["leader"])
    escrow.withdraw(signer=holder.to_local_account())
    farms, holders = {"berth": policy}, {"berth": holder.address}
    with pytest.raises(ClaimFailed, match=r"berth: not paid \(policy triggered, 1 PolicyTriggered"):
        verify_policies(Claims(), world.chain, escrow, farms, holders, {"berth": None})
    # what the chain does show reads back as such
    out = verify_policies(Claims(), world.chain, escrow, farms, holders, {"berth": 1})
    assert out["berth"]["paid_wei"] == payout

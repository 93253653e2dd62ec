"""The typed clients ``ailedger.chain.oracles`` and ``ailedger.chain.escrow`` on the embedded
chain and on anvil, with the shipped artifacts: a feed, a signed report, a triggered policy
paid out, a weekly bonus, and reverts surfacing as ``ContractReverted`` with the error name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from _chain_util import ETHER, Backend
from ailedger.chain import Chain, ContractReverted
from ailedger.chain.escrow import ParametricEscrow, PerformanceBonus, PolicyStatus, Trigger
from ailedger.chain.oracle_report import (
    OracleReport,
    feed_id,
    pack_signatures,
    report_digest,
    rounds_head,
)
from ailedger.chain.oracles import OracleFeeds
from ailedger.errors import ChainError, InvalidInput
from ailedger.identity.keys import Secp256k1Signer

FEED_NAME = "drought/farm-1"
ROOT, MODEL = b"\x01" * 32, b"\x02" * 32


@dataclass
class Setup:
    """``operator`` creates the feed, ``admin`` transmits and insures or pays."""

    chain: Chain
    feeds: OracleFeeds
    escrow: ParametricEscrow
    bonus: PerformanceBonus
    admin: LocalAccount
    holder: LocalAccount
    oracles: list[Secp256k1Signer]
    operator: LocalAccount
    feed: bytes

    def digest(self) -> bytes:
        config = self.feeds.feed(self.feed)
        assert config is not None
        return config.config_digest

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def report(self, epoch: int, values: list[int]) -> None:
        observed = {k.address: v for k, v in zip(self.oracles, values, strict=False)}
        report = self.feeds.build_report(self.feed, epoch, observed, ROOT, MODEL, self.now())
        sigs = [self.feeds.sign(report, k) for k in self.oracles[:2]]
        self.feeds.transmit(report, sigs, self.observed(report), signer=self.admin)

    def observed(self, report: OracleReport) -> dict[str, bytes]:
        """Each observer's signature of its own observation in ``report``."""
        signers = self.feeds.signers(self.feed)
        keys = {k.address: k for k in self.oracles}
        return {
            signers[i]: self.feeds.sign_observation(report, v, keys[signers[i]])
            for i, v in zip(report.observers, report.observations, strict=True)
        }


@pytest.fixture
def s(backend: Backend) -> Setup:
    backend.artifacts_dir = None  # the shipped contracts
    chain = backend.open()
    admin: LocalAccount = Account.create()
    holder: LocalAccount = Account.create()
    operator: LocalAccount = Account.create()
    chain.fund(admin.address, 10 * ETHER)
    chain.fund(holder.address, ETHER)
    chain.fund(operator.address, ETHER)
    feeds = OracleFeeds(chain, chain.deploy("OracleFeeds", 3600, signer=admin))
    escrow_c = chain.deploy("ParametricEscrow", feeds.address, signer=admin)
    bonus_c = chain.deploy("PerformanceBonus", feeds.address, signer=admin)
    oracles = [Secp256k1Signer(bytes([i + 1]) * 32) for i in range(4)]
    feed = feeds.create_feed(
        FEED_NAME,
        [k.address for k in oracles],
        1,
        (0, 1000),
        3600,
        transmitters=[admin.address],
        signer=operator,
    )
    assert feed == feed_id(operator.address, FEED_NAME)
    return Setup(
        chain,
        feeds,
        ParametricEscrow(chain, escrow_c),
        PerformanceBonus(chain, bonus_c),
        admin,
        holder,
        oracles,
        operator,
        feed,
    )


def test_feed_and_report(s: Setup) -> None:
    config = s.feeds.feed(s.feed)
    assert config is not None
    assert (config.n, config.f, config.config_version) == (4, 1, 1)
    assert config.creator == s.operator.address
    assert config.to_dict()["pending_version"] == 0
    assert s.feeds.signers(s.feed) == sorted(s.feeds.signers(s.feed), key=lambda a: int(a, 16))
    assert s.feeds.transmitters(s.feed) == [s.admin.address]
    assert s.feeds.config_delay() == 3600
    assert s.feeds.feed(feed_id(s.admin.address, FEED_NAME)) is None
    assert s.feeds.latest(s.feed) is None
    s.report(1, [300, 900, 500])
    latest = s.feeds.latest(s.feed)
    assert latest is not None
    assert (latest.epoch, latest.answer, latest.config_version) == (1, 500, 1)
    assert latest.input_root == ROOT
    assert latest.to_dict()["model_digest"] == MODEL.hex()
    assert s.feeds.round(s.feed, 2) is None
    assert all(s.feeds.is_oracle(s.feed, k.address) for k in s.oracles)


def test_round_read_back_checks_events_against_the_stored_rounds_head(
    s: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the answer, time and version are stored per round; the input root and model
    come from ReportAccepted events, accepted only if they replay to the stored rounds
    head: a dropped, altered or invented event fails closed."""
    s.report(1, [300, 900, 500])
    s.report(3, [10, 20, 30])
    config = s.feeds.feed(s.feed)
    assert config is not None
    rounds = [s.feeds.round(s.feed, e) for e in (1, 3)]
    assert all(r is not None and r.input_root == ROOT for r in rounds)
    head = bytes(24)
    for r in rounds:
        assert r is not None
        fields = (r.epoch, r.answer, r.observations_timestamp, r.config_version, ROOT, MODEL)
        onchain = bytes(s.chain.call(s.feeds.contract, "roundsHeadOf", head, *fields))
        head = rounds_head(head, *fields)
        assert onchain == head
    assert head == config.rounds_head

    real = s.chain.events(s.feeds.contract, "ReportAccepted")
    assert len(real) == 2
    altered = dataclasses.replace(real[0], args={**real[0].args, "inputRoot": "0x" + "ab" * 32})
    for forged in ([real[1]], [altered, real[1]], [real[0], real[0], real[1]]):
        monkeypatch.setattr(s.chain, "events", lambda *a, forged=forged, **k: list(forged))
        with pytest.raises(ChainError, match=r"rounds head|out of order"):
            s.feeds.round(s.feed, 1)
    monkeypatch.undo()
    assert s.feeds.round(s.feed, 2) is None


def test_bounds_must_fit_int192(s: Setup) -> None:
    for bounds in ((-(2**191) - 1, 0), (0, 2**191)):
        with pytest.raises(ContractReverted, match="BadBounds"):
            s.feeds.create_feed(
                "wide",
                [k.address for k in s.oracles],
                1,
                bounds,
                3600,
                transmitters=[s.admin.address],
                signer=s.operator,
            )
    s.feeds.create_feed(
        "widest",
        [k.address for k in s.oracles],
        1,
        (-(2**191), 2**191 - 1),
        3600,
        transmitters=[s.admin.address],
        signer=s.operator,
    )


def test_pack_signatures_takes_65_byte_signatures() -> None:
    assert pack_signatures([b"\1" * 65, b"\2" * 65]) == b"\1" * 65 + b"\2" * 65
    with pytest.raises(InvalidInput, match="65 bytes, not 64"):
        pack_signatures([b"\1" * 65, b"\2" * 64])


def test_digest_matches_contract(s: Setup) -> None:
    observed = {k.address: 7 for k in s.oracles[:3]}
    report = s.feeds.build_report(s.feed, 4, observed, ROOT, MODEL, 99)
    onchain = bytes(s.chain.call(s.feeds.contract, "reportDigest", report.as_tuple()))
    assert onchain == report_digest(s.feeds.domain(), report)


def test_reverts_are_named(s: Setup) -> None:
    observed = {k.address: 1 for k in s.oracles[:3]}
    report = s.feeds.build_report(s.feed, 1, observed, ROOT, MODEL, s.now())
    with pytest.raises(ContractReverted, match="TooFewSignatures"):
        s.feeds.transmit(
            report, [s.feeds.sign(report, s.oracles[0])], s.observed(report), signer=s.admin
        )
    sigs = [s.feeds.sign(report, k) for k in s.oracles[:2]]
    with pytest.raises(ContractReverted, match="NotATransmitter"):
        s.feeds.transmit(report, sigs, s.observed(report), signer=s.holder)
    with pytest.raises(InvalidInput, match="does not exist"):
        s.feeds.build_report(feed_id(s.admin.address, "nope"), 1, observed, ROOT, MODEL, 1)
    with pytest.raises(InvalidInput, match="twice"):
        s.feeds.set_config(
            s.feed,
            [s.oracles[0].address] * 4,
            1,
            (0, 1),
            60,
            transmitters=[s.admin.address],
            signer=s.operator,
        )
    with pytest.raises(ContractReverted, match="NotFeedCreator"):
        s.feeds.set_config(
            s.feed,
            [k.address for k in s.oracles],
            1,
            (0, 1),
            60,
            transmitters=[s.admin.address],
            signer=s.admin,
        )


def test_policy_pays_out(s: Setup) -> None:
    pool = s.escrow.create_pool(2 * ETHER, signer=s.admin)
    t = s.now()
    pid = s.escrow.create_policy(
        pool,
        s.holder.address,
        s.feed,
        s.digest(),
        Trigger.ABOVE,
        600,
        ETHER,
        t,
        t + 86_400,
        signer=s.admin,
    )
    assert s.escrow.pool(pool) == (s.admin.address, ETHER, ETHER)
    s.report(1, [700, 800, 900])
    s.escrow.settle(pid, 1, signer=s.holder)
    info = s.escrow.policy(pid)
    assert info is not None
    assert info.status is PolicyStatus.TRIGGERED
    assert info.settled_epoch == 1
    assert info.config_digest == s.digest()
    assert s.escrow.claimable(s.holder.address) == ETHER
    with pytest.raises(ContractReverted, match="PolicyNotActive"):
        s.escrow.settle(pid, 1, signer=s.holder)
    s.escrow.withdraw_to(s.admin.address, signer=s.holder)
    totals = s.escrow.totals()
    assert totals.balanced
    assert totals.to_dict() == {
        "deposited": 2 * ETHER,
        "paid": ETHER,
        "claimable": 0,
        "remaining": ETHER,
    }
    assert s.escrow.policy(99) is None


def test_bonus_weeks(s: Setup) -> None:
    aid = s.bonus.create_agreement(
        s.holder.address,
        s.feed,
        s.digest(),
        1,
        2,
        1000,
        refund_after=s.now() + 86_400,
        signer=s.admin,
    )
    s.report(1, [0, 0, 0])
    s.report(2, [2, 1, 3])
    s.bonus.settle_week(aid, 1, signer=s.admin)
    s.bonus.settle_week(aid, 2, signer=s.admin)
    assert s.bonus.week_settled(aid, 2)
    assert s.bonus.claimable(s.holder.address) == 1000
    assert s.bonus.claimable(s.admin.address) == 1000
    assert s.bonus.totals().balanced
    assert s.bonus.surplus() == 0
    with pytest.raises(ContractReverted, match="NoSurplus"):
        s.bonus.sweep_surplus(signer=s.admin)
    with pytest.raises(ContractReverted, match="WeekAlreadySettled"):
        s.bonus.refund_week(aid, 1, signer=s.admin)

"""OracleFeeds: configuration, accepted reports, the stored median, events and the EIP-712
encoding shared with ``ailedger.chain.oracle_report`` (checked against the contract and against
eth-account's ``encode_typed_data``)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_helpers import FEED, MAX_AGE, OTHER_FEED, Oracles, oracle_keys

from ailedger.chain.oracle_report import (
    OracleReport,
    config_digest,
    feed_id,
    oracle_domain,
    report_digest,
    report_typed_data,
)
from ailedger.errors import InvalidInput


def test_accepts_report_and_stores_median(o: Oracles) -> None:
    receipt = o.accept(1, [700, 300, 500])
    (event,) = o.chain.events(o.feeds, "ReportAccepted", receipt)
    assert event["args"]["epoch"] == 1
    assert event["args"]["answer"] == 500
    assert event["args"]["configVersion"] == 1
    assert bytes(event["args"]["inputRoot"]) == b"\x11" * 32
    epoch, rnd = o.feeds.functions.latestRound(FEED).call()
    assert epoch == 1
    assert (rnd[0], rnd[4], rnd[5]) == (500, 3, 2)  # answer, observations, signatures
    assert bytes(rnd[7]) == b"\x22" * 32  # model digest
    o.accept(5, [1, 2, 3, 4])  # even count: the upper median
    assert o.feeds.functions.getRound(FEED, 5).call()[0] == 3
    assert o.feeds.functions.latestEpoch(FEED).call() == 5


def test_missing_round_reverts(o: Oracles) -> None:
    assert o.chain.revert_reason(o.feeds.functions.getRound(FEED, 3)) == "NoReport"
    assert o.chain.revert_reason(o.feeds.functions.latestRound(OTHER_FEED)) == "NoReport"


def test_digest_matches_contract(o: Oracles) -> None:
    report = o.report(7, [10, -5, 999], timestamp=123)
    onchain = bytes(o.feeds.functions.reportDigest(report.as_tuple()).call())
    assert onchain == report_digest(o.domain(), report)
    assert bytes(o.feeds.functions.domainSeparator().call()) == o.domain().separator()


def test_config_digest_matches_contract(o: Oracles) -> None:
    signers = o.signers()
    expected = config_digest(o.chain.chain_id, o.feeds.address, FEED, 1, signers)
    assert o.digest() == expected
    assert bytes(o.feeds.functions.configDigestOf(FEED, 1, signers).call()) == expected
    assert o.version() == 1
    assert all(o.feeds.functions.isOracle(FEED, s).call() for s in signers)


@pytest.mark.parametrize(("n", "f"), [(3, 1), (0, 0), (32, 1), (6, 2)])
def test_bad_oracle_counts_rejected(o: Oracles, n: int, f: int) -> None:
    signers = [k.address for k in oracle_keys(n, base=400)]
    call = o.feeds.functions.createFeed(OTHER_FEED, signers, f, 0, 10, 60)
    assert o.chain.revert_reason(call) == "BadOracleCount"


def test_config_checks(o: Oracles) -> None:
    signers = [k.address for k in oracle_keys(4, base=400)]
    fns = o.feeds.functions
    assert o.chain.revert_reason(fns.createFeed(FEED, signers, 1, 0, 10, 60)) == "FeedExists"
    assert o.chain.revert_reason(fns.createFeed(OTHER_FEED, signers, 1, 11, 10, 60)) == (
        "BadBounds"
    )
    unsorted = list(reversed(signers))
    assert o.chain.revert_reason(fns.createFeed(OTHER_FEED, unsorted, 1, 0, 10, 60)) == (
        "SignersNotAscending"
    )
    twice = [signers[0], signers[0], signers[1], signers[2]]
    assert o.chain.revert_reason(fns.createFeed(OTHER_FEED, twice, 1, 0, 10, 60)) == (
        "SignersNotAscending"
    )
    zero = ["0x" + "00" * 20, *signers[1:]]
    assert o.chain.revert_reason(fns.createFeed(OTHER_FEED, zero, 1, 0, 10, 60)) == "ZeroAddress"
    stranger = o.chain.accounts[5]
    assert o.chain.revert_reason(fns.setConfig(FEED, signers, 1, 0, 10, 60), stranger) == (
        "NotFeedAdmin"
    )
    assert o.chain.revert_reason(fns.setConfig(OTHER_FEED, signers, 1, 0, 10, 60)) == (
        "UnknownFeed"
    )


def test_rotation_bumps_version_and_emits(o: Oracles) -> None:
    new = sorted(k.address for k in o.keys[2:7])
    receipt = o.chain.send(o.feeds.functions.setConfig(FEED, new, 1, 0, 1000, MAX_AGE))
    (event,) = o.chain.events(o.feeds, "ConfigSet", receipt)
    assert event["args"]["configVersion"] == 2
    assert o.signers() == new
    assert o.digest() == config_digest(o.chain.chain_id, o.feeds.address, FEED, 2, new)
    o.accept(1, [1, 2, 3])  # the new set reports


def test_feed_admin_transfer(o: Oracles) -> None:
    new_admin = o.chain.accounts[3]
    o.chain.send(o.feeds.functions.setFeedAdmin(FEED, new_admin))
    assert o.feeds.functions.getFeed(FEED).call()[0] == new_admin
    signers = o.signers()
    call = o.feeds.functions.setConfig(FEED, signers, 1, 0, 10, 60)
    assert o.chain.revert_reason(call) == "NotFeedAdmin"
    o.chain.send(call, new_admin)


_int256 = st.integers(min_value=-(2**255), max_value=2**255 - 1)
_b32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=50)
@given(
    feed=_b32,
    digest=_b32,
    epoch=st.integers(0, 2**64 - 1),
    values=st.lists(_int256, max_size=31),
    root=_b32,
    model=_b32,
    ts=st.integers(0, 2**64 - 1),
    chain_id=st.integers(1, 2**64),
)
def test_digest_matches_eth_account(
    feed: bytes,
    digest: bytes,
    epoch: int,
    values: list[int],
    root: bytes,
    model: bytes,
    ts: int,
    chain_id: int,
) -> None:
    domain = oracle_domain(chain_id, "0x" + "ab" * 20)
    observers = bytes(range(len(values)))
    report = OracleReport(feed, digest, epoch, tuple(values), observers, root, model, ts)
    signable = encode_typed_data(full_message=report_typed_data(domain, report))
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert report_digest(domain, report) == expected


def test_report_validation() -> None:
    good: dict[str, Any] = {
        "feed_id": b"\0" * 32,
        "config_digest": b"\0" * 32,
        "epoch": 1,
        "observations": (1, 2),
        "observers": b"\0\1",
        "input_root": b"\0" * 32,
        "model_digest": b"\0" * 32,
        "observations_timestamp": 1,
    }
    OracleReport(**good)
    for field, bad in [
        ("feed_id", b"\0" * 31),
        ("epoch", -1),
        ("epoch", 2**64),
        ("observations", (2**255, 1)),
        ("observations", (True, 1)),
        ("observers", b"\0"),
        ("observations_timestamp", 2**64),
    ]:
        with pytest.raises(InvalidInput):
            OracleReport(**{**good, field: bad})
    with pytest.raises(InvalidInput):
        feed_id("")


def test_build_sorts_and_indexes() -> None:
    keys = oracle_keys(4)
    signers = [k.address for k in keys]
    observed = {signers[3]: 9, signers[0]: 4, signers[2]: 7}
    report = OracleReport.build(FEED, b"\0" * 32, 1, observed, signers, FEED, FEED, 5)
    assert report.observations == (4, 7, 9)
    assert report.observers == bytes([0, 2, 3])
    assert report.median == 7
    with pytest.raises(InvalidInput, match="not in the oracle set"):
        OracleReport.build(
            FEED, b"\0" * 32, 1, {oracle_keys(1, 999)[0].address: 1}, signers, FEED, FEED, 5
        )

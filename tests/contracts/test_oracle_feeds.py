"""OracleFeeds: configuration (namespaced feeds, delayed config changes), accepted reports,
the stored median, events and the EIP-712 encoding shared with ``ailedger.chain.oracle_report``
(checked against the contract, its ERC-5267 domain and eth-account's ``encode_typed_data``)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from oracle_helpers import (
    CONFIG_DELAY,
    FEED_LABEL,
    OTHER_LABEL,
    Oracles,
    oracle_keys,
    warp,
)

from _profiles import examples
from ailedger.chain.oracle_report import (
    OracleReport,
    config_digest,
    feed_id,
    feed_label,
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
    assert bytes(event["args"]["modelDigest"]) == b"\x22" * 32
    epoch, rnd = o.feeds.functions.latestRound(o.feed).call()
    assert epoch == 1
    assert (rnd[0], rnd[2]) == (500, 1)  # answer, config version (one slot: no roots)
    o.accept(5, [1, 2, 3, 4])  # even count: the upper median
    assert o.feeds.functions.getRound(o.feed, 5).call()[0] == 3
    assert o.feeds.functions.latestEpoch(o.feed).call() == 5


def test_missing_round_reverts(o: Oracles) -> None:
    assert o.chain.revert_reason(o.feeds.functions.getRound(o.feed, 3)) == "NoReport"
    assert o.chain.revert_reason(o.feeds.functions.latestRound(o.other_feed)) == "NoReport"


def test_digest_matches_contract(o: Oracles) -> None:
    report = o.report(7, [10, -5, 999], timestamp=123)
    onchain = bytes(o.feeds.functions.reportDigest(report.as_tuple()).call())
    assert onchain == report_digest(o.domain(), report)
    fields, name, version, chain_id, contract, _salt, _ext = o.feeds.functions.eip712Domain().call()
    assert (name, version, chain_id, contract) == (
        "ailedger OracleFeeds",
        "1",
        o.chain.chain_id,
        o.feeds.address,
    )
    assert fields == b"\x0f"  # name, version, chainId, verifyingContract


def test_config_digest_matches_contract(o: Oracles) -> None:
    signers = o.signers()
    expected = config_digest(o.chain.chain_id, o.feeds.address, o.feed, 1, signers)
    assert o.digest() == expected
    assert bytes(o.feeds.functions.configDigestOf(o.feed, 1, signers).call()) == expected
    assert bytes(o.feeds.functions.configDigestAt(o.feed, 1).call()) == expected
    version, config = o.feeds.functions.configByDigest(o.feed, expected).call()
    assert (version, config[1], config[2]) == (1, 4, 1)
    call = o.feeds.functions.configByDigest(o.other_feed, expected)
    assert o.chain.revert_reason(call) == "UnknownConfig"
    assert o.version() == 1
    assert all(o.feeds.functions.isOracle(o.feed, s).call() for s in signers)
    assert o.feeds.functions.transmittersOf(o.feed).call() == [o.admin]


@pytest.mark.parametrize(("n", "f"), [(3, 1), (0, 0), (32, 1), (6, 2), (1, 0), (4, 0)])
def test_bad_oracle_counts_rejected(o: Oracles, n: int, f: int) -> None:
    """n >= 3f+1 with f >= 1 (a feed that pays money needs fault tolerance), n <= 31."""
    signers = [k.address for k in oracle_keys(n, base=400)]
    call = o.feeds.functions.createFeed(OTHER_LABEL, signers, [o.admin], f, 0, 10, 60)
    assert o.chain.revert_reason(call, o.creator) == "BadOracleCount"


def test_config_checks(o: Oracles) -> None:
    signers = [k.address for k in oracle_keys(4, base=400)]
    fns = o.feeds.functions
    tx = [o.admin]

    def reason(call: Any, sender: str | None = None) -> str:
        return o.chain.revert_reason(call, sender or o.creator)

    assert reason(fns.createFeed(FEED_LABEL, signers, tx, 1, 0, 10, 60)) == "FeedExists"
    assert reason(fns.createFeed(OTHER_LABEL, signers, tx, 1, 11, 10, 60)) == "BadBounds"
    unsorted = list(reversed(signers))
    assert reason(fns.createFeed(OTHER_LABEL, unsorted, tx, 1, 0, 10, 60)) == (
        "SignersNotAscending"
    )
    twice = [signers[0], signers[0], signers[1], signers[2]]
    assert reason(fns.createFeed(OTHER_LABEL, twice, tx, 1, 0, 10, 60)) == "SignersNotAscending"
    zero = ["0x" + "00" * 20, *signers[1:]]
    assert reason(fns.createFeed(OTHER_LABEL, zero, tx, 1, 0, 10, 60)) == "ZeroAddress"
    assert reason(fns.createFeed(OTHER_LABEL, signers, [], 1, 0, 10, 60)) == ("BadTransmitterCount")
    assert reason(fns.createFeed(OTHER_LABEL, signers, tx + tx, 1, 0, 10, 60)) == (
        "TransmittersNotAscending"
    )
    stranger = o.chain.accounts[5]
    assert reason(fns.setConfig(o.feed, signers, tx, 1, 0, 10, 60), stranger) == ("NotFeedCreator")
    assert reason(fns.setConfig(o.other_feed, signers, tx, 1, 0, 10, 60)) == "UnknownFeed"


def test_rotation_takes_effect_after_the_delay(o: Oracles) -> None:
    new = sorted(k.address for k in o.keys[2:7])
    receipt = o.set_config(new)
    (event,) = o.chain.events(o.feeds, "ConfigProposed", receipt)
    assert event["args"]["configVersion"] == 2
    proposed_at = int(o.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    assert event["args"]["activatesAt"] == proposed_at + CONFIG_DELAY
    assert o.feeds.functions.getFeed(o.feed).call()[1:4] == (2, 1, 2)  # count, active, pending
    assert o.version() == 1  # still the old set until the delay has passed
    o.accept(1, [1, 2, 3])
    warp(o.chain, CONFIG_DELAY)
    assert o.version() == 2
    assert o.signers() == new
    assert o.digest() == config_digest(o.chain.chain_id, o.feeds.address, o.feed, 2, new)
    receipt = o.accept(2, [1, 2, 3])  # the new set reports; the proposal is promoted
    (activated,) = o.chain.events(o.feeds, "ConfigActivated", receipt)
    assert activated["args"]["configVersion"] == 2
    assert o.feeds.functions.getFeed(o.feed).call()[1:4] == (2, 2, 0)
    assert o.feeds.functions.getRound(o.feed, 1).call()[2] == 1  # rounds keep their version
    assert o.feeds.functions.getRound(o.feed, 2).call()[2] == 2


def test_feed_ids_are_namespaced_by_creator(o: Oracles) -> None:
    stranger = o.chain.accounts[5]
    mine = o.create_feed(FEED_LABEL, creator=stranger)  # the same label, another namespace
    assert mine != o.feed
    assert mine == feed_id(stranger, "drought/farm-7")
    assert o.feeds.functions.creatorOf(mine).call() == stranger
    assert o.feeds.functions.creatorOf(o.feed).call() == o.creator
    assert feed_label("drought/farm-7") == FEED_LABEL


_int256 = st.integers(min_value=-(2**255), max_value=2**255 - 1)
_b32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=examples(50), deadline=None)
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
        feed_label("")
    with pytest.raises(InvalidInput):
        feed_id("0x" + "00" * 20, "")


def test_build_sorts_and_indexes() -> None:
    keys = oracle_keys(4)
    signers = [k.address for k in keys]
    observed = {signers[3]: 9, signers[0]: 4, signers[2]: 7}
    report = OracleReport.build(
        FEED_LABEL, b"\0" * 32, 1, observed, signers, FEED_LABEL, FEED_LABEL, 5
    )
    assert report.observations == (4, 7, 9)
    assert report.observers == bytes([0, 2, 3])
    assert report.median == 7
    with pytest.raises(InvalidInput, match="not in the oracle set"):
        OracleReport.build(
            FEED_LABEL,
            b"\0" * 32,
            1,
            {oracle_keys(1, 999)[0].address: 1},
            signers,
            FEED_LABEL,
            FEED_LABEL,
            5,
        )

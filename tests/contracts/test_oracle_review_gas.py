"""Adversarial review of OracleFeeds' gas change (issue 10): ``transmit`` takes the signer set
and values in calldata and checks them against a per-transmitter config commitment, walks the
calldata signer list, packs epoch and rounds head in one slot and casts the median to int192
without SafeCast. Each test runs one attack as a transmitter, oracle, feed creator, outsider,
policy holder or payer, and sees it fail (or, for the legitimate edge cases, pass exactly)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from oracle_helpers import (
    CONFIG_DELAY,
    ETHER,
    MAX_AGE,
    OTHER_LABEL,
    Oracles,
    now,
    observed_by,
    pay,
    warp,
)

from ailedger.chain.oracle_report import OracleReport, feed_label, rounds_head

I192_MIN, I192_MAX = -(2**191), 2**191 - 1
BAD_SIGNER = ("NotAnOracle", "SignersNotAscending", "ECDSAInvalidSignature")
EDGE_LABEL = feed_label("review/int192-edges")


def _signed(o: Oracles, report: OracleReport, feed: bytes | None = None) -> list[bytes]:
    return o.sign(report, o.signer_keys(feed)[: o.f + 1])


def _transmit(
    o: Oracles, report: OracleReport, sigs: list[bytes], signers: Any, params: Any
) -> Any:
    observed = observed_by(report, list(signers), o.domain())
    return o.feeds.functions.transmit(
        report.as_tuple(), list(signers), params, b"".join(sigs), observed
    )


def _config(o: Oracles, feed: bytes | None = None) -> tuple[list[str], Any]:
    signers, params = o.feeds.functions.transmitConfig(feed or o.feed).call()
    return list(signers), params


# --- stale commitments after setConfig --------------------------------------------------------


def test_removed_transmitter_with_stale_commitment_cannot_transmit(o: Oracles) -> None:
    """A transmitter dropped by setConfig keeps its old slot (per version), but transmit reads
    only the version in force: once the new config is active, neither the old commitment
    (old digest, old params) nor the new configuration admits it."""
    dropped, kept = o.admin, o.chain.accounts[3]
    old_signers, old_params = _config(o)
    old_digest = o.digest()
    o.set_config(old_signers, transmitters=[kept])
    # Within the delay the old configuration (and its transmitters) is still in force.
    o.chain.send(o.transmit(o.report(1, [1, 2, 3]), _signed(o, o.report(1, [1, 2, 3]))))
    warp(o.chain, CONFIG_DELAY)
    assert not o.feeds.functions.isTransmitter(o.feed, dropped).call()
    stale = o.report(2, [1, 2, 3], digest=old_digest)
    call = _transmit(o, stale, _signed(o, stale), old_signers, old_params)
    assert o.chain.revert_reason(call, dropped) == "ConfigDigestMismatch"
    fresh = o.report(2, [1, 2, 3])
    signers, params = _config(o)
    assert signers == old_signers
    assert tuple(params) == tuple(old_params)
    call = _transmit(o, fresh, _signed(o, fresh), signers, params)
    assert o.chain.revert_reason(call, dropped) == "NotATransmitter"
    o.chain.send(call, kept)
    assert o.feeds.functions.latestEpoch(o.feed).call() == 2


def test_replaced_proposal_transmitter_never_transmits(o: Oracles) -> None:
    """A proposal replaced before it took effect never comes into force: its transmitters'
    commitments are never read."""
    signers, _ = _config(o)
    ghost, kept = o.chain.accounts[4], o.chain.accounts[3]
    o.set_config(signers, transmitters=[ghost])  # version 2
    ghost_digest = bytes(o.feeds.functions.configDigestAt(o.feed, 2).call())
    o.set_config(signers, transmitters=[kept])  # version 3 replaces it
    warp(o.chain, CONFIG_DELAY)
    assert o.version() == 3
    for digest in (ghost_digest, o.digest()):
        report = o.report(1, [1, 2, 3], digest=digest)
        _, params = _config(o)
        call = _transmit(o, report, _signed(o, report), signers, params)
        assert o.chain.revert_reason(call, ghost) in ("ConfigDigestMismatch", "NotATransmitter")
    assert not o.feeds.functions.isTransmitter(o.feed, ghost).call()


# --- the commitment's preimage -----------------------------------------------------------------


@pytest.mark.parametrize("shape", ["appended_zero", "dropped_last", "duplicate", "unsorted"])
def test_commitment_preimage_with_reshaped_signer_list_fails(o: Oracles, shape: str) -> None:
    """The preimage is five fixed words then the signers (abi.encodePacked pads each to a
    word): a list one word longer or shorter, or reordered, hashes elsewhere."""
    report = o.report(1, [1, 2, 3])
    signers, params = _config(o)
    forged = {
        "appended_zero": [*signers, "0x" + "00" * 20],
        "dropped_last": signers[:-1],
        "duplicate": [signers[0], *signers],
        "unsorted": [signers[1], signers[0], *signers[2:]],
    }[shape]
    call = _transmit(o, report, _signed(o, report), forged, params)
    assert o.chain.revert_reason(call) == "ConfigMismatch"


def test_huge_signer_array_reverts_at_the_senders_cost(o: Oracles) -> None:
    """Gas griefing: the only loop over calldata signers runs after the commitment matched
    (n <= 31); a huge array is hashed once and refused, paid by its sender."""
    report = o.report(1, [1, 2, 3])
    signers, params = _config(o)
    huge = signers * 500
    call = _transmit(o, report, _signed(o, report), huge, params)
    assert o.chain.revert_reason(call) == "ConfigMismatch"
    outsider = o.chain.accounts[5]
    assert o.chain.revert_reason(call, outsider) == "NotATransmitter"


# --- signatures -------------------------------------------------------------------------------


def test_signatures_beyond_f_plus_one_and_all_n_are_accepted(o: Oracles) -> None:
    """Any f+1 (or more, up to n) distinct configured signers pass, not just the first f+1:
    the merged walk over the calldata list finds signers at any index."""
    keys = o.signer_keys()
    report = o.report(1, [1, 2, 3])
    o.chain.send(o.transmit(report, o.sign(report, keys[-2:])))
    report = o.report(2, [1, 2, 3])
    o.chain.send(o.transmit(report, o.sign(report, keys)))
    report = o.report(3, [1, 2, 3])
    o.chain.send(o.transmit(report, o.sign(report, [keys[0], keys[-1]])))
    assert o.feeds.functions.latestEpoch(o.feed).call() == 3


def test_more_than_n_signatures_fail(o: Oracles) -> None:
    keys = o.signer_keys()
    report = o.report(1, [1, 2, 3])
    sigs = o.sign(report, keys)
    assert o.chain.revert_reason(o.transmit(report, [*sigs, sigs[-1]])) == "SignersNotAscending"
    assert o.chain.revert_reason(o.transmit(report, sigs * 8)) == "TooManySignatures"


@pytest.mark.parametrize("v_change", ["minus_27", "plus_2", "flipped", "zero_r"])
def test_odd_v_values_and_invalid_signatures_fail(o: Oracles, v_change: str) -> None:
    report = o.report(1, [1, 2, 3])
    a, b = _signed(o, report)
    v = b[64]
    forged = {
        "minus_27": b[:64] + bytes([v - 27]),
        "plus_2": b[:64] + bytes([v + 2]),
        "flipped": b[:64] + bytes([55 - v]),
        "zero_r": bytes(32) + b[32:],
    }[v_change]
    assert o.chain.revert_reason(o.transmit(report, [a, forged])) in BAD_SIGNER
    o.chain.send(o.transmit(report, [a, b]))


# --- int192 edges without SafeCast ------------------------------------------------------------


def test_int192_edge_bounds_and_answers(o: Oracles) -> None:
    """Bounds at type(int192).min/max are accepted; every observation stays inside them, so the
    unchecked int192 cast of the median is exact (and the rounds head replays)."""
    for bounds in ((I192_MIN - 1, 0), (0, I192_MAX + 1), (-(2**255), 2**255 - 1)):
        call = o.feeds.functions.createFeed(
            EDGE_LABEL, o.signers(), [o.admin], o.f, *bounds, MAX_AGE
        )
        assert o.chain.revert_reason(call, o.creator) == "BadBounds"
    feed = o.create_feed(EDGE_LABEL, bounds=(I192_MIN, I192_MAX))
    _, params = _config(o, feed)
    assert tuple(params) == (o.f, I192_MIN, I192_MAX, MAX_AGE)
    head = bytes(24)
    version = int(o.feeds.functions.activeConfig(feed).call()[0])
    for epoch, values in enumerate(
        [[I192_MIN] * 3, [I192_MIN, 0, I192_MAX], [I192_MAX] * 3, [I192_MIN, I192_MIN, I192_MAX]],
        start=1,
    ):
        report = o.report(epoch, values, feed=feed)
        o.chain.send(o.transmit(report, _signed(o, report, feed)))
        answer, observed, got_version = o.feeds.functions.roundAt(feed, epoch).call()
        assert (answer, observed, got_version) == (report.median, report.observations_timestamp, 1)
        head = rounds_head(
            head, epoch, answer, observed, version, report.input_root, report.model_digest
        )
    assert bytes(o.feeds.functions.getFeed(feed).call()[5]) == head
    for value in (I192_MIN - 1, I192_MAX + 1, -(2**255), 2**255 - 1):
        report = o.report(9, sorted([0, 1, value]), feed=feed)
        call = o.transmit(report, _signed(o, report, feed))
        assert o.chain.revert_reason(call) == "ObservationOutOfBounds"


def test_int192_extreme_answers_reach_the_consumers(o: Oracles) -> None:
    """Escrow and bonus read the right round through the interface's int192: a policy holder
    settles on the extreme low round, not on a later one; the bonus counts it as an incident."""
    feed = o.create_feed(EDGE_LABEL, bounds=(I192_MIN, I192_MAX))
    digest = o.digest(feed)
    insurer, holder, payer, contractor = o.chain.accounts[1:5]
    assert pay(o.chain, o.escrow.functions.createPool(), insurer, ETHER)["status"] == 1
    pool_id = int(o.escrow.functions.poolCount().call())
    t = now(o.chain)
    below = 1
    call = o.escrow.functions.createPolicy(
        pool_id, holder, feed, digest, below, I192_MIN + 1, ETHER // 2, t, t + 86_400
    )
    o.chain.send(call, insurer)
    policy_id = int(o.escrow.functions.policyCount().call())
    call = o.bonus.functions.createAgreement(contractor, feed, digest, 1, 2, t + 86_400, 1000)
    assert pay(o.chain, call, payer, 2000)["status"] == 1
    agreement = int(o.bonus.functions.agreementCount().call())
    for epoch, values in ((1, [I192_MIN] * 3), (2, [0, 0, I192_MAX])):
        report = o.report(epoch, values, feed=feed)
        o.chain.send(o.transmit(report, _signed(o, report, feed)))
    settle = o.escrow.functions.settle(policy_id, 2)
    assert o.chain.revert_reason(settle, holder) == "TriggerNotMet"
    receipt = o.chain.send(o.escrow.functions.settle(policy_id, 1), holder)
    (event,) = o.chain.events(o.escrow, "PolicyTriggered", receipt)
    assert event["args"]["answer"] == I192_MIN
    receipts = [o.chain.send(o.bonus.functions.settleWeek(agreement, w), payer) for w in (1, 2)]
    events = [o.chain.events(o.bonus, "WeekSettled", r)[0]["args"] for r in receipts]
    assert [(e["incidents"], e["beneficiary"]) for e in events] == [
        (I192_MIN, payer),
        (0, contractor),
    ]


# --- feeds, transmitters and commitments of other feeds -----------------------------------------


def test_transmitter_of_feed_b_with_its_commitment_on_feed_a_fails(o: Oracles) -> None:
    """A transmitter of feed B (only) passes B's configuration with a report for A; and a
    transmitter of both passes B's wider bounds with A's report: the slot read is A's, and
    A's commitment binds A's digest and values."""
    only_b = o.chain.accounts[4]
    feed_b = o.create_feed(OTHER_LABEL, transmitters=[only_b, o.admin], bounds=(-(10**6), 10**6))
    b_signers, b_params = _config(o, feed_b)
    a_signers, _ = _config(o)
    assert b_signers == a_signers  # the same oracles: only the digest and values differ
    report = o.report(1, [1, 2, 3])
    call = _transmit(o, report, _signed(o, report), b_signers, b_params)
    assert o.chain.revert_reason(call, only_b) == "NotATransmitter"
    assert o.chain.revert_reason(call, o.admin) == "ConfigMismatch"
    relabelled = replace(report, config_digest=o.digest(feed_b))
    call = _transmit(o, relabelled, _signed(o, relabelled), b_signers, b_params)
    assert o.chain.revert_reason(call, o.admin) == "ConfigDigestMismatch"
    wide = o.report(1, [-5, 2, 3])  # inside B's bounds, outside A's
    call = _transmit(o, wide, _signed(o, wide), b_signers, b_params)
    assert o.chain.revert_reason(call, o.admin) == "ConfigMismatch"
    assert o.feeds.functions.latestEpoch(o.feed).call() == 0


# --- epochs and the packed (epoch, rounds head) slot ------------------------------------------


def test_epoch_step_bounds(o: Oracles) -> None:
    step = int(o.feeds.functions.MAX_EPOCH_STEP().call())
    for epoch in (step + 1, 2**64 - 1):
        report = o.report(epoch, [1, 2, 3])
        assert o.chain.revert_reason(o.transmit(report, _signed(o, report))) == (
            "EpochStepTooLarge"
        )
    o.accept(step, [1, 2, 3])
    o.accept(2 * step, [1, 2, 3])
    report = o.report(3 * step + 1, [1, 2, 3])
    assert o.chain.revert_reason(o.transmit(report, _signed(o, report))) == "EpochStepTooLarge"
    assert o.feeds.functions.latestEpoch(o.feed).call() == 2 * step


def _feed_slot(o: Oracles, feed: bytes) -> int:
    """The storage slot of ``_feeds[feed]`` (found by its creator in the low 20 bytes)."""
    for position in range(16):
        base = int.from_bytes(keccak(abi_encode(["bytes32", "uint256"], [feed, position])), "big")
        word = bytes(o.chain.w3.eth.get_storage_at(o.feeds.address, base))
        if word[-20:] == bytes.fromhex(o.creator[2:]):
            return base
    raise AssertionError("feed slot not found")


def test_packed_epoch_and_rounds_head_slot_does_not_overflow(o: Oracles) -> None:
    """The one SSTORE writes latestEpoch (low 8 bytes) and roundsHead (high 24 bytes) of the
    feed's second slot; the first slot (creator, versions) is untouched."""
    base = _feed_slot(o, o.feed)
    first = bytes(o.chain.w3.eth.get_storage_at(o.feeds.address, base))
    for epoch in (1000, 2000):
        o.accept(epoch, [1, 2, 3])
        word = bytes(o.chain.w3.eth.get_storage_at(o.feeds.address, base + 1))
        feed = o.feeds.functions.getFeed(o.feed).call()
        assert int.from_bytes(word[24:], "big") == epoch == feed[4]
        assert word[:24] == bytes(feed[5]) != bytes(24)
        assert bytes(o.chain.w3.eth.get_storage_at(o.feeds.address, base)) == first

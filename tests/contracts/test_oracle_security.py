"""Attacks on OracleFeeds, each of which must fail: replays across epochs, feeds, chains and
contracts; too few, repeated, outside or rotated-out signers; malleable signatures; forged
observer lists; out-of-bounds, stale and future observations. And the point of the median:
up to f lying oracles cannot move the answer outside the range of the honest ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from contract_helpers import _revert_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_helpers import (
    CONFIG_DELAY,
    FEED_LABEL,
    MAX_AGE,
    MAX_ANSWER,
    MIN_ANSWER,
    OTHER_LABEL,
    Oracles,
    deploy_oracles,
    observed_by,
    oracle_keys,
    warp,
)
from web3 import Web3

from _profiles import examples
from ailedger.chain.oracle_report import (
    OracleReport,
    config_commitment,
    config_digest,
    oracle_domain,
)
from ailedger.identity.keys import SECP256K1_N

BAD_SIGNER = ("NotAnOracle", "SignersNotAscending")


def _signed(o: Oracles, report: OracleReport, count: int | None = None) -> list[bytes]:
    return o.sign(report, o.signer_keys()[: (o.f + 1) if count is None else count])


def _signed_by(o: Oracles, report: OracleReport, keys: list[Any]) -> list[bytes]:
    return o.sign(report, keys[: o.f + 1])


# --- replay -----------------------------------------------------------------------------------


def test_replayed_report_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    sigs = _signed(o, report)
    o.chain.send(o.transmit(report, sigs))
    assert o.chain.revert_reason(o.transmit(report, sigs)) == "EpochNotIncreasing"
    older = o.report(1, [4, 5, 6])
    assert o.chain.revert_reason(o.transmit(older, _signed(o, older))) == "EpochNotIncreasing"


def test_report_for_another_feed_fails(o: Oracles) -> None:
    other = o.create_feed(OTHER_LABEL)
    report = o.report(1, [1, 2, 3])
    sigs = _signed(o, report)
    moved = replace(report, feed_id=other)
    assert o.chain.revert_reason(o.transmit(moved, sigs)) == "ConfigDigestMismatch"
    forged = replace(moved, config_digest=o.digest(other))
    assert o.chain.revert_reason(o.transmit(forged, sigs)) in BAD_SIGNER


def test_report_for_another_chain_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    other_chain = oracle_domain(o.chain.chain_id + 1, o.feeds.address)
    sigs = o.sign(report, o.signer_keys()[:2], domain=other_chain)
    assert o.chain.revert_reason(o.transmit(report, sigs)) in BAD_SIGNER
    foreign = config_digest(o.chain.chain_id + 1, o.feeds.address, o.feed, 1, o.signers())
    bad = replace(report, config_digest=foreign)
    assert o.chain.revert_reason(o.transmit(bad, _signed(o, bad))) == "ConfigDigestMismatch"


def test_report_for_another_contract_fails(o: Oracles) -> None:
    twin = o.chain.deploy("OracleFeeds", CONFIG_DELAY)
    call = twin.functions.createFeed(FEED_LABEL, o.signers(), [o.admin], 1, 0, 1000, MAX_AGE)
    o.chain.send(call, o.creator)  # the same creator and label: the same feed id
    report = o.report(1, [1, 2, 3])  # made for o.feeds
    sigs = _signed(o, report)
    call = o.transmit(report, sigs, twin)
    assert o.chain.revert_reason(call) == "ConfigDigestMismatch"
    twin_digest = bytes(twin.functions.activeConfig(o.feed).call()[1][0])
    retarget = replace(report, config_digest=twin_digest)
    call = o.transmit(retarget, o.sign(retarget, o.signer_keys()[:2]), twin)
    assert o.chain.revert_reason(call) in BAD_SIGNER  # signed in o.feeds' domain
    ok = o.sign(retarget, o.signer_keys()[:2], domain=o.domain(twin))
    o.chain.send(o.transmit(retarget, ok, twin))


# --- signatures ----------------------------------------------------------------------------


def test_f_signatures_fail(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    assert o.chain.revert_reason(o.transmit(report, _signed(o, report, o.f))) == (
        "TooFewSignatures"
    )
    assert o.chain.revert_reason(o.transmit(report, [])) == "TooFewSignatures"


def test_same_oracle_twice_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    (sig,) = o.sign(report, o.signer_keys()[:1])
    assert o.chain.revert_reason(o.transmit(report, [sig, sig])) == "SignersNotAscending"
    a, b = _signed(o, report)
    assert o.chain.revert_reason(o.transmit(report, [b, a])) == "SignersNotAscending"


def test_signer_outside_set_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    outsider = oracle_keys(1, base=900)[0]
    sigs = o.sign(report, [o.signer_keys()[0], outsider])
    assert o.chain.revert_reason(o.transmit(report, sigs)) == "NotAnOracle"


def test_rotated_out_oracle_fails(o: Oracles) -> None:
    old_keys = o.signer_keys()
    stale = o.report(1, [1, 2, 3])
    stale_sigs = _signed(o, stale)
    new = sorted(k.address for k in o.keys[2:6])  # drops oracles 0 and 1 of the sorted keys
    o.set_config(new)
    warp(o.chain, CONFIG_DELAY)
    stale = replace(stale, observations_timestamp=warp(o.chain, 1))
    stale_sigs = _signed_by(o, stale, old_keys)
    assert o.chain.revert_reason(o.transmit(stale, stale_sigs)) == "ConfigDigestMismatch"
    dropped = [k for k in old_keys if k.address not in new]
    assert dropped
    fresh = o.report(1, [1, 2, 3])  # observed by members of the new set
    sigs = o.sign(fresh, [dropped[0], o.signer_keys()[0]])
    assert o.chain.revert_reason(o.transmit(fresh, sigs)) == "NotAnOracle"
    assert not o.feeds.functions.isOracle(o.feed, dropped[0].address).call()
    o.chain.send(o.transmit(fresh, _signed(o, fresh)))


def test_malleable_signature_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    a, b = _signed(o, report)
    s = int.from_bytes(b[32:64], "big")
    twin = b[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - b[64]])
    assert o.chain.revert_reason(o.transmit(report, [a, twin])) == "ECDSAInvalidSignatureS"
    assert o.chain.revert_reason(o.transmit(report, [a, b[:64]])) == ("ECDSAInvalidSignatureLength")


# --- the configuration a transmitter passes with a report -------------------------------------
# transmit takes the signer set and values (f, bounds, max age) in calldata and checks them
# against the configuration's commitment, stored for each of its transmitters: a transmitter
# cannot pass another set, a smaller f, wider bounds or a longer max age.


def _with_config(
    o: Oracles, report: OracleReport, sigs: list[bytes], signers: Any, params: Any
) -> Any:
    observed = observed_by(report, list(signers), o.domain())
    return o.feeds.functions.transmit(
        report.as_tuple(), list(signers), params, b"".join(sigs), observed
    )


def test_forged_signer_set_in_calldata_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    signers, params = o.feeds.functions.transmitConfig(o.feed).call()
    mine = oracle_keys(4, base=900)  # the transmitter's own keys, passed as the signer set
    forged = _with_config(o, report, o.sign(report, mine[:2]), [k.address for k in mine], params)
    assert o.chain.revert_reason(forged) == "ConfigMismatch"
    # one honest signer swapped for the transmitter's key (the set kept ascending)
    swapped = sorted([*signers[1:], mine[0].address], key=lambda a: int(a, 16))
    keys = [k for k in [*o.signer_keys()[1:], mine[0]] if k.address in swapped[:2]]
    call = _with_config(o, report, o.sign(report, keys), swapped, params)
    assert o.chain.revert_reason(call) == "ConfigMismatch"
    # the real signers, fewer of them (a subset the signatures would satisfy)
    call = _with_config(o, report, _signed(o, report), signers[:3], params)
    assert o.chain.revert_reason(call) == "ConfigMismatch"
    o.chain.send(_with_config(o, report, _signed(o, report), signers, params))  # the real one


@pytest.mark.parametrize(
    "change",
    [
        {"f": 0},  # one signature would do
        {"lo": MIN_ANSWER - 1},  # wider bounds
        {"hi": MAX_ANSWER + 1},
        {"age": MAX_AGE * 10},  # older reports
    ],
)
def test_forged_values_in_calldata_fail(o: Oracles, change: dict[str, int]) -> None:
    report = o.report(1, [1, 2, 3])
    signers, (f, lo, hi, age) = o.feeds.functions.transmitConfig(o.feed).call()
    assert (f, lo, hi, age) == (o.f, MIN_ANSWER, MAX_ANSWER, MAX_AGE)
    values = {"f": f, "lo": lo, "hi": hi, "age": age} | change
    params = (values["f"], values["lo"], values["hi"], values["age"])
    call = _with_config(o, report, _signed(o, report, 1), signers, params)
    assert o.chain.revert_reason(call) == "ConfigMismatch"


def test_outsider_with_any_configuration_fails(o: Oracles) -> None:
    report = o.report(1, [1, 2, 3])
    signers, params = o.feeds.functions.transmitConfig(o.feed).call()
    outsider = o.chain.accounts[5]
    for config in ((signers, params), (signers[:1], (0, *params[1:]))):
        call = _with_config(o, report, _signed(o, report), *config)
        assert o.chain.revert_reason(call, outsider) == "NotATransmitter"


def test_dirty_calldata_words_fail(o: Oracles) -> None:
    """Words that are not clean ABI values (high bits in an address or in f) hash to another
    commitment: refused, though the values they decode to are the real ones."""
    report = o.report(1, [1, 2, 3])
    signers, params = o.feeds.functions.transmitConfig(o.feed).call()
    data = bytes.fromhex(
        _with_config(o, report, _signed(o, report), signers, params)._encode_transaction_data()[2:]
    )
    word = bytes(12) + bytes.fromhex(signers[0][2:])
    at = data.index(word)
    f_word = params[0].to_bytes(32, "big")
    f_at = data.index(f_word + params[1].to_bytes(32, "big", signed=True))
    for dirty in (
        data[:at] + b"\x01" + data[at + 1 :],
        data[:f_at] + b"\x01" + data[f_at + 1 :],
    ):
        tx = {"from": o.admin, "to": o.feeds.address, "data": "0x" + dirty.hex()}
        try:
            o.chain.w3.eth.call(tx)  # type: ignore[arg-type]
        except Exception as exc:  # backends differ (eth-tester, RPC errors)
            reason = o.chain._decode(_revert_data(exc))
        else:
            raise AssertionError("a call with a dirty word did not revert")
        assert reason == "ConfigMismatch"
    assert o.feeds.functions.latestEpoch(o.feed).call() == 0
    o.chain.send(_with_config(o, report, _signed(o, report), signers, params))


def test_negative_bounds_are_committed_as_int256(o: Oracles) -> None:
    """Bounds are stored as int192 and committed as int256 words: a negative bound must
    commit (sign-extended) to the word the transmitter sends, or no report would pass."""
    feed = o.create_feed(OTHER_LABEL, bounds=(-1000, 1000))
    signers, params = o.feeds.functions.transmitConfig(feed).call()
    assert tuple(params) == (o.f, -1000, 1000, MAX_AGE)
    expected = config_commitment(o.digest(feed), o.f, (-1000, 1000), MAX_AGE, signers)
    assert bytes(o.feeds.functions.configCommitmentOf(o.digest(feed), params, signers).call()) == (
        expected
    )
    report = o.report(1, [-5, -1, 7], feed=feed)
    o.chain.send(o.transmit(report, o.sign(report, o.signer_keys(feed)[: o.f + 1])))
    assert o.feeds.functions.roundAt(feed, 1).call()[0] == -1
    below = o.report(2, [-1001, 0, 1], feed=feed)
    sigs = o.sign(below, o.signer_keys(feed)[: o.f + 1])
    assert o.chain.revert_reason(o.transmit(below, sigs)) == "ObservationOutOfBounds"


def test_config_commitment_matches_contract(o: Oracles) -> None:
    signers, params = o.feeds.functions.transmitConfig(o.feed).call()
    digest = o.digest()
    expected = config_commitment(digest, params[0], (params[1], params[2]), params[3], signers)
    assert bytes(o.feeds.functions.configCommitmentOf(digest, params, signers).call()) == expected
    other = config_commitment(digest, params[0], (params[1], params[2] + 1), params[3], signers)
    assert other != expected


# --- observations ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [MIN_ANSWER - 1, MAX_ANSWER + 1, -(2**255), 2**255 - 1])
def test_out_of_bounds_observation_fails(o: Oracles, value: int) -> None:
    report = o.report(1, [500, 501, value])
    assert o.chain.revert_reason(o.transmit(report, _signed(o, report))) == (
        "ObservationOutOfBounds"
    )


def test_stale_and_future_reports_fail(o: Oracles) -> None:
    observed = warp(o.chain, 10)
    old = o.report(1, [1, 2, 3], timestamp=observed)
    sigs = _signed(o, old)
    warp(o.chain, MAX_AGE + 5)
    assert o.chain.revert_reason(o.transmit(old, sigs)) == "StaleReport"
    future = o.report(1, [1, 2, 3], timestamp=observed + 10 * MAX_AGE)
    assert o.chain.revert_reason(o.transmit(future, _signed(o, future))) == "ReportFromFuture"


def test_forged_observer_lists_fail(o: Oracles) -> None:
    def reason(report: OracleReport) -> str:
        return o.chain.revert_reason(o.transmit(report, _signed(o, report)))

    good = o.report(1, [1, 2, 3])
    assert reason(replace(good, observers=bytes([0, 0, 1]))) == "ObserverRepeated"
    assert reason(replace(good, observers=bytes([0, 1, 4]))) == "ObserverUnknown"
    raw = list(good.as_tuple())
    raw[4] = bytes([0, 1])  # the Python encoder refuses this, the contract must too
    signers, params = o.feeds.functions.transmitConfig(o.feed).call()
    observed = observed_by(good, signers, o.domain())
    call = o.feeds.functions.transmit(
        tuple(raw), signers, params, b"".join(_signed(o, good)), observed
    )
    assert o.chain.revert_reason(call) == "ObserverCount"
    assert reason(o.report(1, [1, 2])) == "TooFewObservations"  # 2f, one liar could pick
    assert reason(replace(good, observations=(3, 2, 1))) == "ObservationsNotSorted"


# --- lying oracles --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wide(w3: Web3) -> Oracles:
    return deploy_oracles(w3, n=7, f=2)


@settings(
    max_examples=examples(25),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.data(),
    honest=st.lists(st.integers(MIN_ANSWER, MAX_ANSWER), min_size=3, max_size=7),
)
def test_liars_within_f_stay_inside_honest_range(
    wide: Oracles, data: st.DataObject, honest: list[int]
) -> None:
    """With at least 2f+1 observations of which at most f lie (any value the bounds allow),
    the stored median lies between the smallest and the largest honest observation."""
    o = wide
    liars = data.draw(st.integers(0, min(o.f, 7 - len(honest))))
    lies = data.draw(
        st.lists(st.sampled_from([MIN_ANSWER, MAX_ANSWER]), min_size=liars, max_size=liars)
    )
    values = honest + lies
    if len(values) < 2 * o.f + 1:
        values += [honest[0]] * (2 * o.f + 1 - len(values))
        honest = honest + [honest[0]] * (len(values) - len(honest) - len(lies))
    who = data.draw(st.permutations(range(7)))[: len(values)]
    snap = o.chain.snapshot()
    try:
        report = o.report(o.feeds.functions.latestEpoch(o.feed).call() + 1, values, observers=who)
        signers = data.draw(st.integers(o.f + 1, 7))
        o.chain.send(o.transmit(report, o.sign(report, o.signer_keys()[:signers])))
        answer = o.feeds.functions.latestRound(o.feed).call()[1][0]
        assert min(honest) <= answer <= max(honest)
    finally:
        o.chain.revert_to(snap)

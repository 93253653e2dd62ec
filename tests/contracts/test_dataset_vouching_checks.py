"""The record checks evaluated on-chain (DatasetVouching.evaluate) agree with the Python
mirror (ailedger.markets._checks.evaluate_record) on generated records: CSV rows as JSON
arrays near the declared format, labels with signs, leading zeros, 18+ digits, missing
prefixes and suffixes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vouch_helpers import CHECKS, Vouching

from _profiles import examples
from ailedger.markets._checks import REASON_LABEL, REASON_LENGTH, REASON_PREFIX, evaluate_record

pieces = st.sampled_from([b'["', b'"]', b',"', b'"', b",", b"5.1", b"-", b"0", b"2", b"3",
                          b"007", b"9" * 19, b"1" * 17, b"x", b"]", b"["])  # fmt: skip
records = st.one_of(
    st.lists(pieces, max_size=12).map(b"".join),
    st.binary(max_size=48),
    st.tuples(st.text("0123456789-+ ", max_size=21)).map(
        lambda t: b'["5.1","3.5","1.4","0.2","' + t[0].encode() + b'"]'
    ),
)


@pytest.fixture(scope="module")
def views(_vouching: Vouching) -> Vouching:
    """The module's deployment, read only (no snapshot needed)."""
    return _vouching


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records)
def test_on_chain_checks_match_the_python_mirror(views: Vouching, record: bytes) -> None:
    dataset = views.ids["good"]
    assert views.f.evaluate(dataset, record).call() == evaluate_record(record, CHECKS)


def test_each_check_has_its_reason(views: Vouching) -> None:
    dataset = views.ids["good"]
    cases = {
        b'["5.1","3.5","1.4","0.2","1"]': 0,
        b'["5.1","3.5","1.4","0.2","2"]': 0,
        b'["5.1","3.5","1.4","0.2","002"]': 0,
        b'["5.1","3.5","1.4","0.2","3"]': REASON_LABEL,
        b'["5.1","3.5","1.4","0.2","-1"]': REASON_LABEL,
        b'["5.1","3.5","1.4","0.2",""]': REASON_LABEL,
        b'["5.1","3.5","1.4","0.2",1]': REASON_LABEL,
        b'{"5.1","3.5","1.4","0.2","1"]': REASON_PREFIX,
        b'["1"]': REASON_LENGTH,
        b'["5.1","3.5","1.4","0.2","1"]' + b" " * 20: REASON_LENGTH,
    }
    for record, reason in cases.items():
        assert evaluate_record(record, CHECKS) == reason, record
        assert views.f.evaluate(dataset, record).call() == reason, record

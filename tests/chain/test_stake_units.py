"""Amounts in token units (``ailedger.chain.stake.parse_units`` / ``format_units``): exact for
every uint256 and every decimals, never rounded, and hostile text refused with one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.chain.stake import format_units, parse_units
from ailedger.errors import InvalidInput

UINT256 = st.integers(1, 2**256 - 1)


@given(amount=UINT256, decimals=st.integers(0, 30))
def test_format_then_parse_is_exact(amount: int, decimals: int) -> None:
    assert parse_units(format_units(amount, decimals), decimals) == amount


@given(whole=st.integers(0, 10**40), fraction=st.integers(0, 10**18 - 1))
def test_parse_is_exact_arithmetic(whole: int, fraction: int) -> None:
    """Regression: Decimal's 28-digit context rounded '10000000000.123456789012345678' to
    ...345680 (29 significant digits) and it was sent as the amount."""
    if whole == 0 and fraction == 0:
        return
    text = f"{whole}.{fraction:018d}"
    assert parse_units(text, 18) == whole * 10**18 + fraction


@pytest.mark.parametrize(
    "bad",
    ["1e400", "1E2", "-1", "+1", " ", "", ".5", "1.", "1.2.3", "nan", "inf", "0x10", "1_000",
     "\u0661", "0", "0.000", "9" * 79, str(2**256)],
)  # fmt: skip
def test_hostile_amounts_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_units(bad, 18)


def test_too_many_decimals_are_refused_not_rounded() -> None:
    with pytest.raises(InvalidInput, match="more than 6 decimals"):
        parse_units("1.0000001", 6)
    assert parse_units("1.000000000", 6) == 10**6  # trailing zeros are not precision

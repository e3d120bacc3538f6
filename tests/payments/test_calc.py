"""Pure calculators and currencies: rounding against `decimal`, fees, FX in the provider's favour,
exact minor-unit conversion."""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    localcontext,
)
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhijin.payments import calc, currency, limits

ROUNDINGS = [ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP]


@given(
    numerator=st.integers(-(10**40), 10**40),
    denominator=st.integers(1, 10**30),
    rounding=st.sampled_from(ROUNDINGS),
)
def test_divide_rounded_equals_decimal_with_unlimited_precision(
    numerator: int, denominator: int, rounding: str
) -> None:
    with localcontext() as context:
        context.prec = 200  # far beyond any quotient here: the division is exact enough
        expected = (Decimal(numerator) / Decimal(denominator)).to_integral_value(rounding=rounding)
    assert calc.divide_rounded(numerator, denominator, rounding) == int(expected)


@pytest.mark.parametrize(
    ("numerator", "rounding", "expected"),
    [
        (5, ROUND_HALF_EVEN, 2),
        (7, ROUND_HALF_EVEN, 4),
        (-5, ROUND_HALF_EVEN, -2),
        (5, ROUND_HALF_UP, 3),
        (-5, ROUND_HALF_UP, -3),
        (-5, ROUND_FLOOR, -3),
        (-5, ROUND_CEILING, -2),
        (-5, ROUND_DOWN, -2),
        (-5, ROUND_UP, -3),
    ],
)
def test_divide_rounded_halves(numerator: int, rounding: str, expected: int) -> None:
    assert calc.divide_rounded(numerator, 2, rounding) == expected


def test_divide_rounded_refuses_unnamed_modes_and_bad_denominators() -> None:
    with pytest.raises(ValueError):
        calc.divide_rounded(1, 0, ROUND_FLOOR)
    with pytest.raises(ValueError):
        calc.divide_rounded(1, 3, "ROUND_05UP")


@pytest.mark.parametrize(
    ("text", "ratio"),
    [("7.1234", (35617, 5000)), ("1", (1, 1)), ("0.000000000001", (1, 10**12))],
)
def test_parse_rate(text: str, ratio: tuple[int, int]) -> None:
    assert calc.parse_rate(text) == ratio


@pytest.mark.parametrize(
    "text",
    ["0", "0.0", "-1", "+1", "1e2", "01", "1.", ".5", "", " 1", "1 ", "1.0000000000001", "1" * 13],
)
def test_parse_rate_refuses(text: str) -> None:
    assert calc.parse_rate(text) is None


def test_fee_amount() -> None:
    fee: dict[str, Any] = {
        "fixed_amount": 100,
        "rate_bps": 25,
        "min_amount": 150,
        "max_amount": 5_000,
    }
    assert calc.fee_amount(amount=100_000, **fee) == 350
    assert calc.fee_amount(amount=1, **fee) == 150
    assert calc.fee_amount(amount=10**12, **fee) == 5_000
    assert calc.fee_amount(amount=10**12, **{**fee, "max_amount": None}) == 100 + 25 * 10**8


rates = st.builds(
    lambda whole, fraction: f"{whole}.{fraction:06d}",
    st.integers(0, 10_000),
    st.integers(1, 999_999),
)
exponents = st.sampled_from([0, 2, 3])


@given(
    source_amount=st.integers(1, 10**15),
    rate=rates,
    spread_bps=st.integers(0, limits.SPREAD_BPS_MAX),
    source_exponent=exponents,
    target_exponent=exponents,
)
def test_fx_from_source_never_favours_the_payer(
    source_amount: int, rate: str, spread_bps: int, source_exponent: int, target_exponent: int
) -> None:
    ratio = calc.parse_rate(rate)
    assert ratio is not None
    amounts = calc.fx_from_source(
        source_amount=source_amount,
        rate=ratio,
        spread_bps=spread_bps,
        source_exponent=source_exponent,
        target_exponent=target_exponent,
    )
    exact_rate = Fraction(*ratio) * Fraction(10) ** (target_exponent - source_exponent)
    assert amounts.source_amount == source_amount
    assert amounts.principal_amount >= 0 and amounts.spread_amount >= 0
    # The spread is at least spread_bps of the principal; rounding the principal down adds at
    # most one unit (and its own spread) to it.
    exact_spread = Fraction(amounts.principal_amount * spread_bps, limits.BPS_PER_UNIT)
    assert exact_spread <= amounts.spread_amount
    assert amounts.spread_amount <= exact_spread + 1 + Fraction(spread_bps, limits.BPS_PER_UNIT)
    # The beneficiary gets the exact conversion rounded down: never more.
    exact_target = amounts.principal_amount * exact_rate
    assert exact_target - 1 < amounts.target_amount <= exact_target


@given(
    target_amount=st.integers(1, 10**15),
    rate=rates,
    spread_bps=st.integers(0, limits.SPREAD_BPS_MAX),
    source_exponent=exponents,
    target_exponent=exponents,
)
def test_fx_from_target_never_favours_the_payer(
    target_amount: int, rate: str, spread_bps: int, source_exponent: int, target_exponent: int
) -> None:
    ratio = calc.parse_rate(rate)
    assert ratio is not None
    amounts = calc.fx_from_target(
        target_amount=target_amount,
        rate=ratio,
        spread_bps=spread_bps,
        source_exponent=source_exponent,
        target_exponent=target_exponent,
    )
    exact_rate = Fraction(*ratio) * Fraction(10) ** (target_exponent - source_exponent)
    assert amounts.target_amount == target_amount
    # The principal buys at least the target, and no whole unit less would.
    assert amounts.principal_amount * exact_rate >= target_amount
    assert (amounts.principal_amount - 1) * exact_rate < target_amount
    exact_spread = Fraction(amounts.principal_amount * spread_bps, limits.BPS_PER_UNIT)
    assert exact_spread <= amounts.spread_amount < exact_spread + 1


# -- currencies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "digits"),
    [("CNY", 2), ("USD", 2), ("HKD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3)],
)
def test_exponents_come_from_babel(code: str, digits: int) -> None:
    assert currency.exponent(code) == digits


@pytest.mark.parametrize("code", ["XYZ", "cny", "DEM", "XAU", "XTS", "XXX", "", None, 156, "CNYX"])
def test_codes_not_in_use_are_refused(code: object) -> None:
    assert not currency.is_valid(code)
    with pytest.raises(currency.CurrencyError) as error:
        currency.validate(code)
    assert error.value.code == "currency_invalid"


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [("10.5", "CNY", 1_050), ("10.50", "CNY", 1_050), ("100", "JPY", 100), ("1.234", "KWD", 1_234)],
)
def test_to_minor_is_exact(text: str, code: str, minor: int) -> None:
    assert currency.to_minor(text, code) == minor


@pytest.mark.parametrize(
    ("text", "code", "error"),
    [
        ("1.234", "CNY", "amount_precision"),
        ("100.00", "JPY", "amount_precision"),
        ("0.1", "JPY", "amount_precision"),
        ("abc", "CNY", "amount_invalid"),
        ("Infinity", "CNY", "amount_invalid"),
        ("1", "XYZ", "currency_invalid"),
    ],
)
def test_to_minor_refuses_instead_of_rounding(text: str, code: str, error: str) -> None:
    with pytest.raises(currency.CurrencyError) as raised:
        currency.to_minor(text, code)
    assert raised.value.code == error


@given(minor=st.integers(-(10**18), 10**18), code=st.sampled_from(["CNY", "JPY", "KWD"]))
def test_format_and_parse_round_trip(minor: int, code: str) -> None:
    assert currency.to_minor(currency.format_minor(minor, code), code) == minor

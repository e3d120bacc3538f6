"""Schedules exact to the cent, cross-checked against numpy-financial (property-based)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhijin.chain.errors import InvariantViolation
from zhijin.lending.schedule import (
    DayCount,
    Method,
    add_months,
    build_schedule,
    day_of,
    day_start_ms,
    due_dates,
    instalment_amount,
    interest_for_days,
    plan_over,
)

START = date(2026, 1, 31)
principals = st.integers(min_value=100_00, max_value=50_000_000_00)  # 100 yuan .. 50 M yuan
rates = st.integers(min_value=1, max_value=3_600)  # 0.01 % .. 36 % a year
terms = st.integers(min_value=1, max_value=360)


def _plan(principal: int, rate: int, term: int, method: Method, dc: DayCount = DayCount.THIRTY_360):
    return build_schedule(
        principal_minor=principal,
        rate_bps=rate,
        term_months=term,
        method=method,
        day_count=dc,
        start_day=START,
    )


def _half_up(value: float) -> int:
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=300, deadline=None)
@given(principals, rates, terms)
def test_equal_instalments_match_numpy_financial(principal: int, rate: int, term: int) -> None:
    r = rate / 10_000 / 12
    payment = instalment_amount(principal, rate, term)
    reference = float(npf.pmt(r, term, -principal))
    # The float reference may sit a hair on either side of a half cent.
    assert abs(payment - _half_up(reference)) <= 1
    plan = _plan(principal, rate, term, Method.EQUAL_INSTALMENT)
    assert [i.number for i in plan] == list(range(1, term + 1))
    assert sum(i.principal_minor for i in plan) == principal
    # Every instalment but the last pays A, unless half a cent rounded up a month on a tiny
    # loan repaid it early: then what follows is nothing at all.
    early = [i for i in plan[:-1] if i.total_minor != payment]
    assert all(i.total_minor == 0 for i in early[1:])
    # Balances follow numpy-financial's ppmt path; the cents rounded each month drift by at
    # most half a cent of payment and half a cent of interest a month, compounded.
    periods = list(range(1, term + 1))
    reference_principal = npf.ppmt(r, periods, term, -principal)
    reference_interest = npf.ipmt(r, periods, term, -principal)
    balance = principal
    reference_balance = float(principal)
    for k, item in enumerate(plan, start=1):
        bound = k * (1 + r) ** k + 1
        assert abs(item.interest_minor - float(reference_interest[k - 1])) <= bound
        balance -= item.principal_minor
        reference_balance -= float(reference_principal[k - 1])
        assert abs(balance - reference_balance) <= bound
    assert balance == 0
    total_interest = sum(i.interest_minor for i in plan)
    assert abs(total_interest - (reference * term - principal)) <= term * (1 + r) ** term + term


@settings(max_examples=300, deadline=None)
@given(principals, rates, terms)
def test_equal_principal_slices_and_falling_interest(principal: int, rate: int, term: int) -> None:
    plan = _plan(principal, rate, term, Method.EQUAL_PRINCIPAL)
    slice_minor = principal // term
    assert [i.principal_minor for i in plan[:-1]] == [slice_minor] * (term - 1)
    assert plan[-1].principal_minor == principal - slice_minor * (term - 1)
    assert sum(i.principal_minor for i in plan) == principal
    r = Decimal(rate) / 10_000 / 12
    balance = principal
    for item in plan:
        expected = (balance * r).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        assert item.interest_minor == int(expected)
        balance -= item.principal_minor
    # numpy-financial's ipmt of a one-period loan is the month's interest on its balance.
    first = float(-npf.ipmt(float(r), 1, 1, principal))
    assert abs(plan[0].interest_minor - first) <= 1
    interests = [i.interest_minor for i in plan]
    assert interests == sorted(interests, reverse=True)


@settings(max_examples=200, deadline=None)
@given(principals, rates, terms)
def test_interest_only_with_a_balloon(principal: int, rate: int, term: int) -> None:
    plan = _plan(principal, rate, term, Method.INTEREST_ONLY)
    monthly = float(npf.pmt(rate / 10_000 / 12, term, -principal, principal))
    assert all(abs(i.interest_minor - monthly) <= 1 for i in plan)
    assert [i.principal_minor for i in plan] == [0] * (term - 1) + [principal]


@settings(max_examples=100, deadline=None)
@given(principals, rates, st.integers(min_value=2, max_value=120))
def test_actual_day_counts_repay_exactly(principal: int, rate: int, term: int) -> None:
    for day_count in (DayCount.ACT_365, DayCount.ACT_360):
        for method in Method:
            plan = _plan(principal, rate, term, method, day_count)
            assert sum(i.principal_minor for i in plan) == principal
    # February (28 days in 2026) costs less interest than March (31) under act_365.
    plan = _plan(principal, rate, term, Method.INTEREST_ONLY, DayCount.ACT_365)
    assert plan[0].interest_minor == interest_for_days(principal, rate, 28, DayCount.ACT_365)
    assert plan[1].interest_minor == interest_for_days(principal, rate, 31, DayCount.ACT_365)


def test_a_known_plan_to_the_cent() -> None:
    # 100,000.00 yuan at 4.9 % over 12 months, 等额本息: npf.pmt gives 8556.1662 a month.
    plan = _plan(10_000_000, 490, 12, Method.EQUAL_INSTALMENT)
    assert plan[0].total_minor == 855_617
    assert plan[0].interest_minor == 40_833  # 100,000 x 4.9 % / 12 = 408.333...
    assert sum(i.principal_minor for i in plan) == 10_000_000
    # The last pays what is left: 5 fen less than 8556.17 after a year of rounding half up.
    assert plan[-1].total_minor == 855_612
    assert sum(i.interest_minor for i in plan) == 267_399


def test_zero_rate_splits_the_principal() -> None:
    plan = _plan(1_000, 0, 3, Method.EQUAL_INSTALMENT)
    assert [i.principal_minor for i in plan] == [333, 333, 334]
    assert all(i.interest_minor == 0 for i in plan)


def test_due_days_clamp_to_the_month_end_and_keep_the_anchor() -> None:
    plan = _plan(300_00, 1_000, 3, Method.EQUAL_PRINCIPAL)
    assert [day_of(i.due_ms) for i in plan] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert day_of(day_start_ms(date(2026, 5, 1))) == date(2026, 5, 1)


def test_shortening_keeps_the_instalment_and_ends_sooner() -> None:
    full = _plan(1_200_000, 600, 24, Method.EQUAL_INSTALMENT)
    payment = full[0].total_minor
    short = plan_over(
        principal_minor=600_000,
        rate_bps=600,
        method=Method.EQUAL_INSTALMENT,
        day_count=DayCount.THIRTY_360,
        start_day=START,
        due_days=due_dates(START, 24),
        first_number=1,
        payment_minor=payment,
    )
    assert len(short) < 24
    assert all(i.total_minor == payment for i in short[:-1])
    assert short[-1].total_minor <= payment
    assert sum(i.principal_minor for i in short) == 600_000


@pytest.mark.parametrize(
    ("principal", "rate", "term"), [(0, 100, 12), (-5, 100, 12), (100, -1, 12), (100, 100, 0)]
)
def test_absurd_inputs_are_an_invariant_violation(principal: int, rate: int, term: int) -> None:
    with pytest.raises(InvariantViolation):
        _plan(principal, rate, term, Method.EQUAL_INSTALMENT)

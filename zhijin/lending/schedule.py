"""Repayment schedules exact to the cent: pure calculators, integers in, integers out.

Amounts are integer minor units of the loan's currency; rates are integer basis points a year.
Every conversion from a `Decimal` to minor units names its rounding: `INTEREST_ROUNDING`
(ROUND_HALF_UP, 四舍五入, the rounding Chinese banks print on a repayment plan) for interest and
the equal instalment, `PRINCIPAL_ROUNDING` (ROUND_DOWN) for an equal-principal slice.  The last
instalment absorbs what rounding left over, so Σ principal is the loan amount exactly.

Three methods:

- 等额本息 `equal_instalment`: one payment A = P·r·(1+r)^n / ((1+r)^n − 1) every month (r the
  monthly rate, rate/12), interest on the opening balance, principal = A − interest; the last
  pays the balance left.
- 等额本金 `equal_principal`: principal ⌊P/n⌋ a month (the last takes the remainder), interest on
  the opening balance: payments fall month by month.
- `interest_only`: interest on the whole principal each month, the principal in a balloon with
  the last instalment.

Day count (per product): `30_360` charges a month's interest as rate/12 whatever the month's
length (the convention numpy-financial's pmt/ipmt/ppmt use); `act_365` and `act_360` charge
the actual days of the period over 365 or 360.  The equal instalment A is always computed from
rate/12 (how the plan is quoted); under an actual day count the interest of each period follows
its days and the principal part is A − interest, the last absorbing the difference.

Due dates are calendar months after the disbursement day in Beijing time (UTC+8, fixed: China
has no daylight saving), clamped to the month's last day (a loan of 31 January falls due on 28
or 29 February, then 31 March), each at 00:00 Beijing time of that day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum
from typing import Any

from zhijin.chain.errors import invariant

__all__ = [
    "BEIJING",
    "DAY_MS",
    "INTEREST_ROUNDING",
    "PRINCIPAL_ROUNDING",
    "DayCount",
    "Instalment",
    "Method",
    "add_months",
    "build_schedule",
    "day_of",
    "day_start_ms",
    "days_between",
    "due_dates",
    "instalment_amount",
    "interest_for_days",
    "period_interest",
    "plan_over",
]

INTEREST_ROUNDING = ROUND_HALF_UP
PRINCIPAL_ROUNDING = ROUND_DOWN
BEIJING = timezone(timedelta(hours=8))
DAY_MS = 24 * 3600 * 1000
BPS = Decimal(10_000)
MONTHS_A_YEAR = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Enough digits that (1+r)^n for n up to 480 months keeps every cent (P < 10^13 minor units).
_PRECISION = 60


class Method(StrEnum):
    EQUAL_INSTALMENT = "equal_instalment"  # 等额本息
    EQUAL_PRINCIPAL = "equal_principal"  # 等额本金
    INTEREST_ONLY = "interest_only"  # 先息后本, balloon at the end


class DayCount(StrEnum):
    THIRTY_360 = "30_360"
    ACT_365 = "act_365"
    ACT_360 = "act_360"


def basis_days(day_count: DayCount) -> int:
    return 365 if day_count is DayCount.ACT_365 else 360


@dataclass(frozen=True, slots=True)
class Instalment:
    number: int  # 1-based
    due_ms: int  # 00:00 Beijing time of the due day
    principal_minor: int
    interest_minor: int

    @property
    def total_minor(self) -> int:
        return self.principal_minor + self.interest_minor

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "due_ms": self.due_ms,
            "principal_minor": self.principal_minor,
            "interest_minor": self.interest_minor,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Instalment:
        return cls(
            number=data["number"],
            due_ms=data["due_ms"],
            principal_minor=data["principal_minor"],
            interest_minor=data["interest_minor"],
        )


# -- calendar ------------------------------------------------------------------------------------


def day_of(time_ms: int) -> date:
    """The Beijing calendar day of a block time."""
    return (_EPOCH + timedelta(milliseconds=time_ms)).astimezone(BEIJING).date()


def day_start_ms(day: date) -> int:
    start = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    return (start - _EPOCH) // timedelta(milliseconds=1)


def add_months(day: date, months: int, *, anchor_day: int | None = None) -> date:
    """`day` plus whole months, the day of month clamped to the month's length."""
    wanted = day.day if anchor_day is None else anchor_day
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))


def due_dates(start_day: date, count: int, *, first: int = 1) -> list[date]:
    """The due days of instalments first..first+count-1, months after `start_day`."""
    return [add_months(start_day, k, anchor_day=start_day.day) for k in range(first, first + count)]


def days_between(earlier_ms: int, later_ms: int) -> int:
    """Whole Beijing calendar days from one time's day to another's (0 on the same day)."""
    return (day_of(later_ms) - day_of(earlier_ms)).days


# -- rates -----------------------------------------------------------------------------------------


def _to_minor(value: Decimal, rounding: str) -> int:
    return int(value.quantize(Decimal(1), rounding=rounding))


def monthly_rate(rate_bps: int) -> Decimal:
    return Decimal(rate_bps) / BPS / MONTHS_A_YEAR


def instalment_amount(principal_minor: int, rate_bps: int, term_months: int) -> int:
    """等额本息's monthly payment, rounded half up to the minor unit."""
    invariant(principal_minor > 0 and term_months > 0 and rate_bps >= 0, "schedule inputs")
    if rate_bps == 0:
        return _to_minor(Decimal(principal_minor) / term_months, INTEREST_ROUNDING)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        r = monthly_rate(rate_bps)
        growth = (1 + r) ** term_months
        return _to_minor(principal_minor * r * growth / (growth - 1), INTEREST_ROUNDING)


def interest_for_days(balance_minor: int, rate_bps: int, days: int, day_count: DayCount) -> int:
    """Simple interest on a balance for whole days, rounded half up (broken periods, 罚息)."""
    if balance_minor <= 0 or days <= 0 or rate_bps == 0:
        return 0
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = Decimal(balance_minor) * rate_bps * days / (BPS * basis_days(day_count))
        return _to_minor(value, INTEREST_ROUNDING)


def period_interest(
    balance_minor: int, rate_bps: int, day_count: DayCount, start: date, end: date
) -> int:
    """One schedule period's interest on its opening balance."""
    if day_count is DayCount.THIRTY_360:
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            return _to_minor(balance_minor * monthly_rate(rate_bps), INTEREST_ROUNDING)
    return interest_for_days(balance_minor, rate_bps, (end - start).days, day_count)


# -- schedules -------------------------------------------------------------------------------------


def build_schedule(
    *,
    principal_minor: int,
    rate_bps: int,
    term_months: int,
    method: Method,
    day_count: DayCount,
    start_day: date,
) -> tuple[Instalment, ...]:
    """The plan for `principal_minor` over `term_months` from `start_day` (the disbursement
    day): due days are whole months after it."""
    invariant(principal_minor > 0 and term_months > 0 and rate_bps >= 0, "schedule inputs")
    return plan_over(
        principal_minor=principal_minor,
        rate_bps=rate_bps,
        method=method,
        day_count=day_count,
        start_day=start_day,
        due_days=due_dates(start_day, term_months),
        first_number=1,
    )


def plan_over(
    *,
    principal_minor: int,
    rate_bps: int,
    method: Method,
    day_count: DayCount,
    start_day: date,
    due_days: list[date],
    first_number: int,
    broken_first: bool = False,
    payment_minor: int | None = None,
) -> tuple[Instalment, ...]:
    """A plan for `principal_minor` over the given due days, interest running from `start_day`.

    `broken_first`: the first period starts between two due days (after an early repayment
    paid the interest up to `start_day`), so its interest is for its actual days even under
    30/360.  `payment_minor`: keep this instalment (or, for equal principal, this principal
    slice) instead of re-amortising, and end as soon as the balance is repaid (shortening).
    """
    term = len(due_days)
    invariant(principal_minor > 0 and term > 0 and rate_bps >= 0, "schedule inputs")
    keep = payment_minor is not None
    if method is Method.EQUAL_INSTALMENT:
        payment = payment_minor if keep else instalment_amount(principal_minor, rate_bps, term)
    else:
        payment = 0
    if method is Method.EQUAL_PRINCIPAL:
        slice_minor = (
            payment_minor
            if keep
            else _to_minor(Decimal(principal_minor) / term, PRINCIPAL_ROUNDING)
        )
    else:
        slice_minor = 0
    assert payment is not None and slice_minor is not None
    balance = principal_minor
    plan: list[Instalment] = []
    previous = start_day
    for k, due in enumerate(due_days, start=1):
        if k == 1 and broken_first:
            basis = DayCount.ACT_360 if day_count is DayCount.THIRTY_360 else day_count
            interest = interest_for_days(balance, rate_bps, (due - previous).days, basis)
        else:
            interest = period_interest(balance, rate_bps, day_count, previous, due)
        if method is Method.EQUAL_INSTALMENT:
            principal = max(payment - interest, 0)
        elif method is Method.EQUAL_PRINCIPAL:
            principal = slice_minor
        else:
            principal = 0
        if k == term or principal >= balance:
            principal = balance  # the last absorbs every rounding remainder
        balance -= principal
        plan.append(Instalment(first_number + k - 1, day_start_ms(due), principal, interest))
        previous = due
        if balance == 0 and (keep or k == term):
            break
        if balance == 0:
            # Rounding repaid a tiny loan early: the remaining due days owe nothing.
            plan.extend(
                Instalment(first_number + j - 1, day_start_ms(later), 0, 0)
                for j, later in enumerate(due_days[k:], start=k + 1)
            )
            break
    invariant(balance == 0, "a schedule repays its principal exactly")
    return tuple(plan)

"""Pure calculators over a loan: what is due, how a payment is allocated, daily penalty accrual,
days past due and the delinquency bucket, the payoff of an early repayment.  No state, no I/O:
integers in minor units, every rounding named (`schedule.INTEREST_ROUNDING`, half up).

Allocation (Fineract's standard, the order itself product data): the loan-level penalty and
fee buckets, then each due instalment's interest and principal, oldest instalment first within
a component, components in the product's order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from zhijin.chain.errors import invariant
from zhijin.lending.records import Loan, Product
from zhijin.lending.schedule import DayCount, day_of, interest_for_days

__all__ = [
    "COMPONENTS",
    "Allocation",
    "Due",
    "accrue",
    "allocate",
    "apply_allocation",
    "bucket_for",
    "days_past_due",
    "dues",
    "future_principal",
    "last_due_day",
    "total_due",
]

COMPONENTS = ("penalty", "fee", "interest", "principal")


@dataclass(frozen=True, slots=True)
class Due:
    component: str
    instalment: int  # 0 for the loan-level penalty and fee
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Allocation:
    penalty_minor: int = 0
    fee_minor: int = 0
    interest_minor: int = 0
    principal_minor: int = 0
    # (instalment number, interest, principal) taken from each instalment
    per_instalment: tuple[tuple[int, int, int], ...] = ()

    @property
    def total_minor(self) -> int:
        return self.penalty_minor + self.fee_minor + self.interest_minor + self.principal_minor


def dues(
    loan: Loan, order: tuple[str, ...], *, now_ms: int, through: int | None = None
) -> list[Due]:
    """Everything owed now, in allocation order: instalments due by `now_ms` (and numbered at
    most `through`, when a collection names its instalment)."""
    by_component: dict[str, list[Due]] = {name: [] for name in COMPONENTS}
    if loan.penalty_due_minor:
        by_component["penalty"].append(Due("penalty", 0, loan.penalty_due_minor))
    if loan.fee_due_minor:
        by_component["fee"].append(Due("fee", 0, loan.fee_due_minor))
    for index, item in enumerate(loan.schedule):
        if item.due_ms > now_ms or (through is not None and item.number > through):
            break
        interest = item.interest_minor - loan.interest_paid[index]
        principal = item.principal_minor - loan.principal_paid[index]
        if interest:
            by_component["interest"].append(Due("interest", item.number, interest))
        if principal:
            by_component["principal"].append(Due("principal", item.number, principal))
    return [due for name in order for due in by_component[name]]


def total_due(items: list[Due]) -> int:
    return sum(item.amount_minor for item in items)


def allocate(amount_minor: int, items: list[Due]) -> Allocation:
    """Spend `amount_minor` over `items` in their order; what is left over stays unspent."""
    invariant(amount_minor >= 0, "an allocation spends a non-negative amount")
    left = amount_minor
    totals = dict.fromkeys(COMPONENTS, 0)
    per: dict[int, list[int]] = {}
    for item in items:
        if left == 0:
            break
        take = min(left, item.amount_minor)
        left -= take
        totals[item.component] += take
        if item.instalment:
            slot = per.setdefault(item.instalment, [0, 0])
            slot[0 if item.component == "interest" else 1] += take
    return Allocation(
        penalty_minor=totals["penalty"],
        fee_minor=totals["fee"],
        interest_minor=totals["interest"],
        principal_minor=totals["principal"],
        per_instalment=tuple((number, i, p) for number, (i, p) in sorted(per.items())),
    )


def apply_allocation(loan: Loan, allocation: Allocation) -> Loan:
    """The loan with an allocation's amounts paid (counters only; the money moved in payments)."""
    interest_paid = list(loan.interest_paid)
    principal_paid = list(loan.principal_paid)
    first = loan.schedule[0].number if loan.schedule else 1
    for number, interest, principal in allocation.per_instalment:
        index = number - first
        interest_paid[index] += interest
        principal_paid[index] += principal
        item = loan.schedule[index]
        invariant(interest_paid[index] <= item.interest_minor, "interest paid twice")
        invariant(principal_paid[index] <= item.principal_minor, "principal paid twice")
    invariant(allocation.penalty_minor <= loan.penalty_due_minor, "penalty paid twice")
    invariant(allocation.fee_minor <= loan.fee_due_minor, "fee paid twice")
    return replace(
        loan,
        interest_paid=tuple(interest_paid),
        principal_paid=tuple(principal_paid),
        penalty_due_minor=loan.penalty_due_minor - allocation.penalty_minor,
        fee_due_minor=loan.fee_due_minor - allocation.fee_minor,
        principal_repaid_minor=loan.principal_repaid_minor + allocation.principal_minor,
        interest_collected_minor=loan.interest_collected_minor + allocation.interest_minor,
        penalty_collected_minor=loan.penalty_collected_minor + allocation.penalty_minor,
        fee_collected_minor=loan.fee_collected_minor + allocation.fee_minor,
        payments=loan.payments + 1,
    )


def _unpaid(loan: Loan, index: int) -> tuple[int, int]:
    item = loan.schedule[index]
    return (
        item.principal_minor - loan.principal_paid[index],
        item.interest_minor - loan.interest_paid[index],
    )


def days_past_due(loan: Loan, today: date) -> int:
    """Days since the oldest instalment still unpaid fell due (0 when none is)."""
    for index, item in enumerate(loan.schedule):
        due = day_of(item.due_ms)
        if due >= today:
            return 0
        principal, interest = _unpaid(loan, index)
        if principal or interest:
            return (today - due).days
    return 0


def bucket_for(product: Product, dpd: int) -> str | None:
    """The delinquency bucket (M1, M2, M3+ ... as product data) of `dpd` days past due."""
    found = None
    for name, start in product.buckets:
        if dpd >= start:
            found = name
    return found


def accrue(loan: Loan, product: Product, today: date) -> Loan:
    """Charge penalties and late fees day by day through `today`, then set days past due.

    An instalment unpaid past its grace days is charged the late fee once and 罚息 at the
    penalty rate on its overdue principal from its due day (the grace days included, the
    practice of Chinese banks once grace is exceeded); with 复利 also on its overdue interest.
    """
    invariant(loan.penalty_rate_bps is not None and loan.accrued_through_day is not None, "live")
    assert loan.penalty_rate_bps is not None and loan.accrued_through_day is not None
    start = date.fromisoformat(loan.accrued_through_day)
    basis = DayCount(product.day_count)
    basis = DayCount.ACT_360 if basis is DayCount.THIRTY_360 else basis
    penalty = loan.penalty_due_minor
    fee = loan.fee_due_minor
    charged = set(loan.late_fee_charged)
    day = start
    while day < today:
        day += timedelta(days=1)
        for index, item in enumerate(loan.schedule):
            due = day_of(item.due_ms)
            if due >= day:
                break
            principal, interest = _unpaid(loan, index)
            if not (principal or interest):
                continue
            late = (day - due).days
            if late <= product.grace_days:
                continue
            days = late if late == product.grace_days + 1 else 1
            base = principal + (interest if product.compound_overdue_interest else 0)
            penalty += interest_for_days(base, loan.penalty_rate_bps, days, basis)
            if item.number not in charged and product.late_fee_minor:
                charged.add(item.number)
                fee += product.late_fee_minor
    dpd = days_past_due(loan, today)
    return replace(
        loan,
        penalty_due_minor=penalty,
        fee_due_minor=fee,
        late_fee_charged=tuple(sorted(charged)),
        accrued_through_day=max(today, start).isoformat(),
        days_past_due=dpd,
        bucket=bucket_for(product, dpd),
    )


def future_principal(loan: Loan, now_ms: int) -> int:
    """Principal of the instalments not yet due."""
    return sum(
        item.principal_minor - loan.principal_paid[index]
        for index, item in enumerate(loan.schedule)
        if item.due_ms > now_ms
    )


def last_due_day(loan: Loan, now_ms: int) -> date:
    """The day the current period's interest runs from: the last due day passed, or the day
    of disbursement or of the last early repayment if later."""
    assert loan.interest_from_day is not None
    last = date.fromisoformat(loan.interest_from_day)
    for item in loan.schedule:
        if item.due_ms > now_ms:
            break
        last = max(last, day_of(item.due_ms))
    return last

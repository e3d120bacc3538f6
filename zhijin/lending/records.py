"""The lending contract's stored records and its state key layout (every key under `lending/`).

On chain: the LPR quotes (1Y and 5Y+), the loan products (data, approved by a second officer),
the loans (the state machine's current state, the schedule, what was paid of each instalment,
penalties and fees, the transitions it went through), each payment's allocation, and the marks
that make a collection happen once per instalment and day.  Money itself never sits here: a
loan's outstanding principal is the balance of its payments account `lnp-<loan id>`.  Personal
data stays off chain: a loan names its borrower by DID and its credit decision by id and digest.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from zhijin.chain.codec import canonical
from zhijin.lending.schedule import Instalment

__all__ = [
    "COLLATERAL_ACCOUNT_PREFIX",
    "LOAN_ACCOUNT_PREFIX",
    "Loan",
    "LprQuote",
    "PaymentRecord",
    "Product",
    "collateral_account",
    "keys",
    "loan_account",
]

# A loan's own accounts in payments, owned by `contract:lending`.
LOAN_ACCOUNT_PREFIX = "lnp-"  # debit-normal: its negated balance is the outstanding principal
COLLATERAL_ACCOUNT_PREFIX = "lnc-"  # escrow: where a liquidated collateral hold is posted


class keys:  # lower case: a namespace of key builders, read as `keys.loan(id)`
    LPR = "lending/lpr/"
    PRODUCT = "lending/product/"
    LOAN = "lending/loan/"
    PAYMENT = "lending/payment/"
    COLLECTED = "lending/collected/"
    REMINDED = "lending/reminded/"

    @staticmethod
    def lpr(tenor: str) -> str:
        return keys.LPR + tenor

    @staticmethod
    def product(product_id: str) -> str:
        return keys.PRODUCT + product_id

    @staticmethod
    def loan(loan_id: str) -> str:
        return keys.LOAN + loan_id

    @staticmethod
    def payment(loan_id: str, payment_id: str) -> str:
        return f"{keys.PAYMENT}{loan_id}/{payment_id}"

    @staticmethod
    def collected(loan_id: str, instalment: int, day: str) -> str:
        return f"{keys.COLLECTED}{loan_id}/{instalment:03d}/{day}"

    @staticmethod
    def reminded(loan_id: str, instalment: int) -> str:
        return f"{keys.REMINDED}{loan_id}/{instalment:03d}"


def loan_account(loan_id: str) -> str:
    return LOAN_ACCOUNT_PREFIX + loan_id


def collateral_account(loan_id: str) -> str:
    return COLLATERAL_ACCOUNT_PREFIX + loan_id


class _Json:
    """to_json / from_json / canonical over the dataclass fields; tuples travel as lists."""

    _TUPLES: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        values = {
            name: _frozen(value) if name in cls._TUPLES else value for name, value in data.items()
        }
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Instalment):
        return value.to_json()
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


@dataclass(frozen=True, slots=True)
class LprQuote(_Json):
    tenor: str  # "1y" or "5y" (5 years and more)
    rate_bps: int
    effective_day: str  # ISO date, Beijing
    member: str  # who published it
    height: int
    previous_bps: int | None


@dataclass(frozen=True, slots=True)
class Product(_Json):
    _TUPLES: ClassVar[frozenset[str]] = frozenset({"allocation_order", "buckets"})

    product_id: str
    member: str  # the lender: only its officers approve it, only it lends under it
    created_by: str  # the officer (staff user id) who made it
    approved_by: str | None  # a second officer (maker-checker)
    status: str  # "pending_approval" | "approved"
    currency: str
    lpr_tenor: str
    spread_bps: int
    term_months: int
    method: str
    day_count: str
    grace_days: int
    penalty_uplift_bps: int  # 罚息 = contract rate x (1 + uplift); 5000 = +50 %
    compound_overdue_interest: bool  # 复利: penalty rate on overdue interest too
    late_fee_minor: int  # charged once per instalment that passes its grace days
    allocation_order: tuple[str, ...]  # e.g. ("penalty", "fee", "interest", "principal")
    min_amount_minor: int
    max_amount_minor: int
    auto_min_score: int
    auto_max_dti_bps: int
    auto_max_amount_minor: int
    auto_min_kyc_level: int
    collateral_ratio_bps: int  # 0: unsecured
    buckets: tuple[tuple[str, int], ...]  # (name, from days past due), rising
    default_after_days: int
    income_account_id: str  # the lender's account for interest, fees and write-offs
    created_height: int
    approved_height: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        values["allocation_order"] = tuple(data["allocation_order"])
        values["buckets"] = tuple((name, start) for name, start in data["buckets"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Loan(_Json):
    loan_id: str
    product_id: str
    member: str
    borrower: str  # DID
    currency: str
    amount_minor: int
    term_months: int
    status: str
    # The credit decision it was applied with, and the facts the product's conditions test.
    decision_id: str
    decision_sha256: str
    score: int
    dti_bps: int
    kyc_level: int
    approval: str | None  # "auto", or the officer who approved it in review
    reasons: tuple[str, ...]  # the auto-approval conditions that failed (the queue's why)
    applied_by: str  # the user who keyed the application (customer or staff user id)
    review_reason: str | None
    repayment_account_id: str
    collateral_account_id: str | None
    collateral_minor: int
    # Fixed at disbursement.
    lpr_bps: int | None
    rate_bps: int | None
    penalty_rate_bps: int | None
    disbursed_day: str | None
    interest_from_day: str | None  # the current period's interest runs from this day
    schedule: tuple[Instalment, ...]
    principal_paid: tuple[int, ...]  # per instalment of `schedule`
    interest_paid: tuple[int, ...]
    late_fee_charged: tuple[int, ...]  # instalment numbers already charged the late fee
    penalty_due_minor: int
    fee_due_minor: int
    principal_repaid_minor: int  # all ways: instalments, early, collateral, write-off
    prepaid_principal_minor: int  # repaid early, outside the schedule
    interest_collected_minor: int
    penalty_collected_minor: int
    fee_collected_minor: int
    accrued_through_day: str | None
    days_past_due: int
    bucket: str | None
    collateral_taken_minor: int
    written_off_minor: int
    recovered_minor: int
    closed_day: str | None
    payments: int  # how many payments were allocated
    history: tuple[tuple[str, int, int, str], ...]  # (status, height, time_ms, why)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        values["schedule"] = tuple(Instalment.from_json(item) for item in data["schedule"])
        for name in ("reasons", "principal_paid", "interest_paid", "late_fee_charged"):
            values[name] = tuple(data[name])
        values["history"] = tuple(tuple(item) for item in data["history"])
        return cls(**values)

    @property
    def outstanding_principal_minor(self) -> int:
        return self.amount_minor - self.principal_repaid_minor


@dataclass(frozen=True, slots=True)
class PaymentRecord(_Json):
    """One payment into a loan and where each minor unit of it went (never allocated twice)."""

    _TUPLES: ClassVar[frozenset[str]] = frozenset({"transfer_ids"})

    loan_id: str
    payment_id: str
    kind: str  # collection | repayment | liquidation | write_off | recovery
    amount_minor: int
    penalty_minor: int
    fee_minor: int
    interest_minor: int
    principal_minor: int
    day: str
    height: int
    tx_hash: str
    transfer_ids: tuple[str, ...]

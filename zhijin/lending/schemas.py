"""What the lending API takes (strict input models) and returns (output models, the OpenAPI's
response schemas).  Bounds come from `limits`, as the contract's do; the contract checks every
field again (a tx may come from any member's SDK)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhijin.lending import limits

__all__ = [
    "ApplicationIn",
    "BookOut",
    "HistoryOut",
    "LoanListOut",
    "LoanOut",
    "LprIn",
    "LprOut",
    "ProductIn",
    "ProductListOut",
    "ProductOut",
    "RepaymentIn",
    "RepaymentPreviewOut",
    "ReviewIn",
    "ScheduleOut",
]

Id = Field(pattern=limits.ID_PATTERN, description="client id: a retry with the same body is safe")
Amount = Field(ge=1, le=limits.AMOUNT_MINOR_MAX, description="minor units (fen)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LprIn(_Strict):
    tenor: Literal["1y", "5y"]
    rate_bps: int = Field(ge=0, le=limits.LPR_BPS_MAX)
    effective_day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class AutoApprovalIn(_Strict):
    min_score: int = Field(ge=0, le=limits.SCORE_MAX)
    max_dti_bps: int = Field(ge=0, le=limits.DTI_BPS_MAX)
    max_amount_minor: int = Field(ge=0, le=limits.AMOUNT_MINOR_MAX)
    min_kyc_level: int = Field(ge=0, le=limits.KYC_LEVEL_MAX)


class BucketIn(_Strict):
    name: str = Field(pattern=limits.BUCKET_NAME_PATTERN)
    from_days: int = Field(ge=1, le=limits.DEFAULT_AFTER_DAYS_MAX)


class ProductIn(_Strict):
    product_id: str = Id
    currency: str = Field(pattern=limits.CURRENCY_PATTERN)
    lpr_tenor: Literal["1y", "5y"]
    spread_bps: int = Field(ge=limits.SPREAD_BPS_MIN, le=limits.SPREAD_BPS_MAX)
    term_months: int = Field(ge=1, le=limits.TERM_MONTHS_MAX)
    method: Literal["equal_instalment", "equal_principal", "interest_only"]
    day_count: Literal["30_360", "act_365", "act_360"]
    grace_days: int = Field(ge=0, le=limits.GRACE_DAYS_MAX)
    # Checked by the contract so that a negative uplift gets its own code
    # (penalty_below_contract_rate) rather than a generic validation error.
    penalty_uplift_bps: int = Field(le=limits.PENALTY_UPLIFT_BPS_MAX)
    compound_overdue_interest: bool
    late_fee_minor: int = Field(ge=0, le=limits.LATE_FEE_MINOR_MAX)
    allocation_order: list[str] = Field(min_length=4, max_length=4)
    min_amount_minor: int = Amount
    max_amount_minor: int = Amount
    auto_approval: AutoApprovalIn
    collateral_ratio_bps: int = Field(ge=0, le=limits.COLLATERAL_RATIO_BPS_MAX)
    buckets: list[BucketIn] = Field(min_length=1, max_length=limits.BUCKETS_MAX)
    default_after_days: int = Field(
        ge=limits.DEFAULT_AFTER_DAYS_MIN, le=limits.DEFAULT_AFTER_DAYS_MAX
    )
    income_account_id: str = Field(pattern=limits.ACCOUNT_ID_PATTERN)


class ApplicationIn(_Strict):
    loan_id: str = Id
    product_id: str = Field(pattern=limits.ID_PATTERN)
    borrower: str | None = Field(
        default=None,
        max_length=limits.DID_CHARS_MAX,
        description="the borrower's DID (staff only; a customer applies for themselves)",
    )
    amount_minor: int = Amount
    decision_id: str = Field(pattern=limits.ID_PATTERN, description="credit's decision")
    monthly_income_minor: int = Amount
    monthly_debt_minor: int = Field(ge=0, le=limits.AMOUNT_MINOR_MAX)
    repayment_account_id: str = Field(pattern=limits.ACCOUNT_ID_PATTERN)
    collateral_account_id: str | None = Field(default=None, pattern=limits.ACCOUNT_ID_PATTERN)
    collateral_minor: int = Field(default=0, ge=0, le=limits.AMOUNT_MINOR_MAX)


class ReviewIn(_Strict):
    approve: bool
    reason: str = Field(min_length=1, max_length=limits.REASON_CHARS_MAX)


class RepaymentIn(_Strict):
    payment_id: str = Id
    mode: Literal["full", "partial"]
    amount_minor: int | None = Field(default=None, ge=1, le=limits.AMOUNT_MINOR_MAX)
    then: Literal["reamortise", "shorten"] | None = None


class _Written(BaseModel):
    exists: bool | None = None
    height: int | None = None
    tx_hash: str | None = None


class LprOut(_Written):
    lpr: dict[str, Any]


class ProductOut(_Written):
    product: dict[str, Any]


class ProductListOut(BaseModel):
    products: list[dict[str, Any]]
    next_after: str | None


class LoanOut(_Written):
    loan: dict[str, Any] = Field(description="the loan record as the contract left it")
    payment: dict[str, Any] | None = None
    decision_reasons: list[dict[str, str]] | None = Field(
        default=None, description="the credit decision's reasons (zh-CN and English)"
    )


class RepaymentPreviewOut(BaseModel):
    loan: dict[str, Any] = Field(description="the loan as the repayment would leave it")
    payment: dict[str, Any] | None = Field(description="the allocation it would make")
    exists: bool | None = None
    time_ms: int = Field(description="the block time the preview was computed for")


class LoanListOut(BaseModel):
    loans: list[dict[str, Any]]
    next_after: str | None


class InstalmentView(BaseModel):
    number: int
    due_ms: int
    principal_minor: int
    interest_minor: int
    principal_paid_minor: int
    interest_paid_minor: int


class ScheduleOut(BaseModel):
    loan_id: str
    currency: str
    rate_bps: int | None
    method: str
    rounding: str = Field(description="how each instalment's cents were rounded")
    instalments: list[InstalmentView]


class TransitionView(BaseModel):
    status: str
    height: int
    time_ms: int
    why: str


class HistoryOut(BaseModel):
    loan_id: str
    transitions: list[TransitionView]
    payments: list[dict[str, Any]]


class BookRow(BaseModel):
    member: str
    status: str
    bucket: str | None
    loans: int
    outstanding_minor: int


class BookOut(BaseModel):
    rows: list[BookRow]
    every_member: bool = Field(
        default=False, description="every member's book (the regulator), not one member's"
    )

"""What the payments API returns: one output model per answer, so the OpenAPI is a contract.

The routes still build plain dicts (from the projection and the contract's return values); these
models describe them field for field.  Routes whose answer has keys that are present only in
some cases (a hold's `hold`, a fee's `fee_amount`) serialise with `response_model_exclude_unset`,
so a key absent from the dict stays absent from the body rather than becoming `null`.
(`schemas/` next to this module holds the ISO 20022 XSDs, hence not `schemas.py`.)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from zhijin.platform.projections_api import ProjectionReportOut

__all__ = [
    "AccountIbanOut",
    "AccountListOut",
    "AccountOpenedOut",
    "AccountStatusOut",
    "AccountView",
    "FeeScheduleSetOut",
    "FxPaymentOut",
    "FxQuoteCreatedOut",
    "FxQuoteView",
    "IbanRegisteredOut",
    "IbanRemovedOut",
    "Pain001ImportOut",
    "StatementOut",
    "TransferBatchOut",
    "TransferCreatedOut",
    "TransferView",
    "TrialBalanceOut",
]


class AccountView(BaseModel):
    """An account as the projection holds it, with its derived balances."""

    id: str
    owner: str = Field(description="DID, role:<r> or contract:<n>")
    custodian: str | None = Field(description="the member that opened it")
    currency: str
    exponent: int = Field(description="ISO 4217 minor-unit exponent")
    kind: str
    flags: list[str]
    credit_limit: int
    reference: str | None
    status: str
    created_at_ms: int
    created_height: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    entries: int
    updated_height: int
    balance_posted: int = Field(description="minor units, signed by the account's normal side")
    available: int | None = Field(description="what may be spent now; None when unbounded")


class AccountOpenedOut(BaseModel):
    account: AccountView


class AccountListOut(BaseModel):
    accounts: list[AccountView]
    next_after_id: str | None = Field(description="the next page's `after_id`; None at the end")


class StatementEntryView(BaseModel):
    account_id: str
    entry_no: int
    transfer_id: str
    direction: str = Field(description="debit or credit")
    amount: int
    balance: int = Field(description="the running balance after this entry")
    counterparty_id: str
    currency: str
    kind: str
    reference: str | None
    height: int
    time_ms: int
    tx_hash: str


class StatementOut(BaseModel):
    account: AccountView
    entries: list[StatementEntryView]
    next_after_entry: int | None = Field(description="the next page's `after_entry`")


class AccountStatusOut(BaseModel):
    account_id: str
    status: str
    previous_status: str
    changed: bool


class IbanRegisteredOut(BaseModel):
    account_id: str
    iban: str = Field(description="masked")
    registered: bool = Field(description="false when it was already registered")


class IbanRemovedOut(BaseModel):
    account_id: str
    removed: bool


class AccountIbanOut(BaseModel):
    account_id: str
    iban: str | None = Field(description="masked; None when none is registered")


class FxDetailsView(BaseModel):
    quote_id: str
    requested_side: str
    requested_amount: int
    credit_account_id: str
    source_currency: str
    target_currency: str
    rate: str
    spread_bps: int
    source_amount: int
    spread_amount: int
    target_amount: int
    rounding: str
    spread_transfer_id: str | None
    target_transfer_id: str


class HoldView(BaseModel):
    hold_status: str = Field(description="pending, posted, voided or expired")
    resolved_by: str | None
    resolved_at_ms: int | None


class TransferView(BaseModel):
    """A transfer as committed; `hold` only for a pending transfer (a hold)."""

    amount: int
    created_at_ms: int
    created_height: int
    credit_account_id: str
    currency: str
    debit_account_id: str
    fee_amount: int
    flags: list[str]
    fx: FxDetailsView | None
    id: str
    kind: str
    parent_id: str | None
    pending_id: str | None
    product: str | None
    reference: str | None
    timeout_ms: int
    tx_hash: str
    hold: HoldView | None = None


class RiskVerdictView(BaseModel):
    """Why a customer's payment went through as asked or as a hold (`tier` allow | hold)."""

    decision_id: str
    tier: str
    score_bps: int
    reasons: list[str]
    versions: dict[str, str]
    degraded: list[str]
    notice: dict[str, str] = Field(
        default_factory=dict, description="what the customer is told, per locale (zh_CN, en)"
    )


class TransferCreatedOut(BaseModel):
    id: str
    result: str = Field(description="`ok`")
    fee_amount: int | None = Field(default=None, description="only when a fee was booked")
    fee_transfer_id: str | None = Field(default=None, description="only when a fee was booked")
    transfer: TransferView
    risk: RiskVerdictView | None = Field(
        default=None, description="the fraud screen's verdict, when a customer's payment met it"
    )


class TransferResultView(BaseModel):
    """One item's answer: `ok` (with `exists`) or a refusal code (with `message`), such as
    `payment_refused_by_risk` for an item the fraud screen refused (nothing of it moved)."""

    id: str
    result: str
    exists: bool | None = None
    message: str | None = None
    fee_amount: int | None = None
    fee_transfer_id: str | None = None
    risk: RiskVerdictView | None = Field(
        default=None, description="the fraud screen's verdict, when a customer's item met it"
    )
    held: bool | None = Field(
        default=None,
        description="the item went in as a hold, under review (its chain's verdict held it)",
    )
    detail: str | None = Field(
        default=None,
        description="an item the fraud screen refused: why, in the request's language",
    )


class TransferBatchOut(BaseModel):
    results: list[TransferResultView]
    ok: int
    failed: int
    height: int | None = Field(
        description="the block of the batch's tx; null when the screen refused every item"
    )


class FxQuoteView(BaseModel):
    created_at_ms: int
    created_height: int
    expires_at_ms: int
    id: str
    max_target_amount: int | None
    provider: str
    rate: str
    source_currency: str
    source_liquidity_account_id: str
    spread_account_id: str | None
    spread_bps: int
    target_currency: str
    target_liquidity_account_id: str
    used_target_amount: int
    expired: bool


class FxQuoteCreatedOut(BaseModel):
    id: str
    result: str
    quote: FxQuoteView


class FxPaymentOut(BaseModel):
    id: str
    result: str
    quote_id: str
    source_currency: str
    target_currency: str
    source_amount: int
    spread_amount: int
    target_amount: int
    rate: str
    rounding: str
    transfer_ids: list[str]
    risk: RiskVerdictView | None = Field(
        default=None, description="the fraud screen's verdict, when a customer's payment met it"
    )


class FeeScheduleSetOut(BaseModel):
    product: str
    currency: str
    version: int


class CurrencyTotalsView(BaseModel):
    currency: str
    accounts: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    balanced: bool


class TrialBalanceOut(BaseModel):
    source: str
    height: int | None
    balanced: bool
    currencies: list[CurrencyTotalsView]
    projections: ProjectionReportOut
    ok: bool


class Pain001BookedView(BaseModel):
    index: int
    payment_information_id: str
    end_to_end_id: str
    transfer_id: str
    exists: bool


class Pain001RejectedView(BaseModel):
    index: int
    payment_information_id: str
    end_to_end_id: str
    code: str
    message: str


class Pain001ImportOut(BaseModel):
    message_id: str
    linked: bool
    booked: list[Pain001BookedView]
    rejected: list[Pain001RejectedView]
    resumed_from_part: int

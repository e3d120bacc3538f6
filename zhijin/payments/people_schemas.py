"""Input and output models of the people and merchant routes (`api_people.py`).

Inputs are strict (`extra="forbid", strict=True`): an amount is a JSON integer of minor units,
never a float or a string; bounds come from `limits`.  Every answer has its output model, so
the OpenAPI document is a contract the web pages and SDKs can be generated from.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zhijin.payments import limits
from zhijin.payments.api_models import TransferView
from zhijin.payments.types import AmountMinor, ClientId

__all__ = [
    "CounterpartyView",
    "DailyTotalsOut",
    "IncomingOut",
    "MobileIn",
    "MobileOut",
    "MobileRegisteredOut",
    "MobileRemovedOut",
    "PayRequestIn",
    "PayeeConfirmIn",
    "PayeeConfirmationOut",
    "PayerRequestView",
    "PaymentRequestIn",
    "PaymentRequestPageOut",
    "PaymentRequestView",
    "PeopleStatementOut",
    "RecentPayeesOut",
    "RefundIn",
    "RefundOut",
]

Id = Annotated[ClientId, Field(description="client id, 1-64 characters")]
Amount = Annotated[AmountMinor, Field(description="integer minor units")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- confirmation of payee ------------------------------------------------------------------------


class PayeeConfirmIn(_Strict):
    """Name the payee in exactly one way; optionally the name the payer expects."""

    account_id: Id | None = None
    iban: str | None = Field(
        default=None,
        min_length=limits.IBAN_INPUT_CHARS_MIN,
        max_length=limits.IBAN_INPUT_CHARS_MAX,
        description="ISO 13616, spaces allowed",
    )
    mobile: str | None = Field(
        default=None,
        min_length=11,
        max_length=limits.MOBILE_INPUT_CHARS_MAX,
        description="a mainland China mobile number the payee registered for an account",
    )
    expected_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.PAYEE_NAME_CHARS_MAX,
        description="the name the payer expects: the answer's `match` compares it",
    )

    @model_validator(mode="after")
    def _one_way(self) -> PayeeConfirmIn:
        given = [v for v in (self.account_id, self.iban, self.mobile) if v is not None]
        if len(given) != 1:
            raise ValueError("name the payee by exactly one of account_id, iban, mobile")
        return self


class PayeeConfirmationOut(BaseModel):
    account_id: str = Field(description="the account to pay")
    by: str = Field(description="account_id, iban or mobile: how the payee was named")
    currency: str
    kind: str = Field(description="customer or merchant")
    name: str | None = Field(description="the owner's masked name (张*丰); null if none on record")
    name_kind: str | None = Field(description="person, business or institution")
    match: str | None = Field(
        description="match, close_match or no_match against expected_name; null without it"
    )


class CounterpartyView(BaseModel):
    account_id: str
    kind: str | None = Field(description="the account's kind (customer, merchant, settlement...)")
    name: str | None = Field(description="masked; an institution's in full; null if unknown")
    name_kind: str | None = Field(description="person, business or institution")


class RecentPayeeView(CounterpartyView):
    currency: str | None
    status: str | None = Field(description="open, frozen or closed: pay only an open one")
    last_paid_ms: int
    payments: int = Field(description="how many payments to this payee")


class RecentPayeesOut(BaseModel):
    payees: list[RecentPayeeView]
    next_after: str | None = Field(description="pass as `after` for the next page")


class MobileIn(_Strict):
    mobile: str = Field(min_length=11, max_length=limits.MOBILE_INPUT_CHARS_MAX)


class MobileRegisteredOut(BaseModel):
    account_id: str
    mobile: str = Field(description="masked: 138****8000")
    registered: bool = Field(description="false when it already named this account")


class MobileRemovedOut(BaseModel):
    account_id: str
    removed: bool


class MobileOut(BaseModel):
    account_id: str
    mobile: str | None = Field(description="masked, or null")


# -- statements -----------------------------------------------------------------------------------


class StatementLineView(BaseModel):
    entry_no: int
    transfer_id: str
    time_ms: int
    local_time: str = Field(description="ISO 8601 in the requested time zone")
    direction: str = Field(description="credit (in) or debit (out)")
    amount_minor: int
    amount: str = Field(description="exact signed decimal: -12.50 for money out")
    balance_minor: int
    balance: str
    currency: str
    memo: str | None = Field(description="the transfer's reference")
    counterparty: CounterpartyView


class PeopleStatementOut(BaseModel):
    account_id: str
    currency: str
    exponent: int
    from_ms: int
    to_ms: int
    time_zone: str
    entries: list[StatementLineView] = Field(description="newest first")
    next_before_entry: int | None = Field(description="pass as `before_entry` for more")


# -- payment requests -----------------------------------------------------------------------------


class PaymentRequestIn(_Strict):
    account_id: Id = Field(description="your own open customer or merchant account")
    amount: Amount | None = Field(default=None, description="fixed amount; null: payer enters it")
    memo: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.PAYMENT_REQUEST_MEMO_CHARS_MAX,
        pattern=limits.PAYMENT_REQUEST_MEMO_PATTERN,
        description="shown to the payer; kept off chain",
    )
    expires_in_ms: int = Field(
        default=limits.PAYMENT_REQUEST_TTL_MS_DEFAULT,
        ge=limits.PAYMENT_REQUEST_TTL_MS_MIN,
        le=limits.PAYMENT_REQUEST_TTL_MS_MAX,
    )
    single_use: bool = True
    show_name_public: bool = Field(
        default=False, description="show your masked name to someone not signed in"
    )


class PaymentRequestView(BaseModel):
    id: str
    account_id: str
    currency: str
    exponent: int
    amount_minor: int | None
    amount: str | None
    memo: str | None
    single_use: bool
    show_name_public: bool
    created_at_ms: int
    expires_at_ms: int
    status: str = Field(description="open, paid, expired or cancelled")
    paid_by_transfer_id: str | None
    link: str = Field(description="the payment link; its QR code is at .../qr.svg")


class PaymentRequestPageOut(BaseModel):
    requests: list[PaymentRequestView]
    next_before: str | None


class PayerRequestView(BaseModel):
    payee_name: str | None = Field(description="masked; null when hidden or unknown")
    payee_name_kind: str | None
    payee_account_id: str | None = Field(description="only for a signed-in payer")
    currency: str
    exponent: int
    amount_minor: int | None
    amount: str | None
    memo: str | None
    single_use: bool
    expires_at_ms: int
    status: str


class PayRequestIn(_Strict):
    debit_account_id: Id
    amount: Amount | None = Field(default=None, description="only when the request has none")
    id: Id | None = Field(
        default=None,
        description="a reusable request's payment id (random, reused on retry); a single-use "
        "request is paid by `pr.<request id>`",
    )


# -- merchant -------------------------------------------------------------------------------------


class IncomingPaymentView(BaseModel):
    entry_no: int
    transfer_id: str
    time_ms: int
    local_time: str
    amount_minor: int
    amount: str
    refunded_minor: int
    refundable_minor: int
    currency: str
    reference: str | None = Field(description="a payment request's id when it paid one")
    payer: CounterpartyView


class IncomingOut(BaseModel):
    account_id: str
    currency: str
    exponent: int
    time_zone: str
    payments: list[IncomingPaymentView]
    next_before_entry: int | None


class DayTotalsView(BaseModel):
    date: str = Field(description="the local calendar day")
    currency: str
    payments: int
    received_minor: int
    received: str
    refunds: int
    refunded_minor: int
    refunded: str
    net_minor: int
    net: str
    other_out_minor: int = Field(description="other money out that day (not refunds)")


class DailyTotalsOut(BaseModel):
    account_id: str
    currency: str
    time_zone: str
    days: list[DayTotalsView]


class RefundIn(_Strict):
    id: Id = Field(description="the refund's own transfer id (random; reused on retry)")
    original_transfer_id: str = Field(
        min_length=1, max_length=limits.TRANSFER_ID_CHARS_MAX, pattern=limits.TRANSFER_ID_PATTERN
    )
    amount: Amount | None = Field(default=None, description="default: all that is refundable")


class RefundOut(BaseModel):
    id: str
    original_transfer_id: str
    amount_minor: int
    refunded_minor: int = Field(description="refunded of the original so far, this included")
    original_amount_minor: int
    transfer: TransferView = Field(description="the refund transfer as committed")


class FxPreviewView(BaseModel):
    """What `pay_fx` would book under the quote for the amount asked (the contract's
    arithmetic and named rounding); `refusal` is the code it would answer now, if any."""

    quote_id: str
    side: str
    requested_amount: int
    source_amount: int
    principal_amount: int
    spread_amount: int
    target_amount: int
    rate: str
    rounding: str
    source_exponent: int
    target_exponent: int
    expires_at_ms: int
    refusal: str | None


class LiveQuoteView(BaseModel):
    id: str
    provider: str
    source_currency: str
    target_currency: str
    rate: str = Field(description="target major units per source major unit, a decimal string")
    spread_bps: int
    spread_percent: str = Field(description="the spread as a decimal percentage")
    expires_at_ms: int
    expires_in_ms: int
    max_target_amount: int | None
    used_target_amount: int
    remaining_target_amount: int | None = Field(description="capacity left; null: no cap")
    preview: FxPreviewView | None = None


class LiveQuotesOut(BaseModel):
    source_currency: str
    target_currency: str
    as_of_ms: int = Field(description="the block time the quotes are live at")
    quotes: list[LiveQuoteView]
    best_quote_id: str | None = Field(description="with an amount: the quote that serves best")
    complete: bool = Field(description="false: the scan of quotes stopped at its bound")

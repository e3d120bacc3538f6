"""Input and output models of the account-request API (opening_api.py)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from zhijin.chain.errors import invariant
from zhijin.payments import limits
from zhijin.payments.api_models import AccountView
from zhijin.payments.opening_store import AccountRequest, RequestStatus

__all__ = [
    "AccountRequestIn",
    "AccountRequestPageOut",
    "AccountRequestView",
    "DecisionOut",
    "RejectIn",
    "request_json",
]

Purpose = Literal["daily", "savings", "salary", "business", "other"]
invariant(get_args(Purpose) == limits.ACCOUNT_REQUEST_PURPOSES, "the purposes are those of limits")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AccountRequestIn(_Strict):
    id: Annotated[
        str | None,
        Field(
            default=None,
            pattern=limits.ID_PATTERN,
            description="the client's id for the request (a retry with it is idempotent);"
            " default `<kind>-<currency>`, one request per account kind and currency",
        ),
    ] = None
    currency: str = Field(max_length=8, description="ISO 4217, e.g. CNY", examples=["CNY"])
    kind: Literal["customer", "merchant"] = Field(
        default="customer", description="merchant: for SME owners"
    )
    purpose: Purpose = Field(default="daily", description="what the account is for")


class RejectIn(_Strict):
    reason: str = Field(
        min_length=1,
        max_length=limits.ACCOUNT_REQUEST_REASON_CHARS_MAX,
        description="shown to the customer",
    )


class AccountRequestView(BaseModel):
    user_id: str
    id: str = Field(description="the request id (unique per user)")
    currency: str
    kind: str
    purpose: str
    status: RequestStatus = Field(description="pending, approved (opening), opened or rejected")
    account_id: str | None = Field(description="the account, once opened")
    created_ms: int
    decided_by: Literal["officer", "policy"] | None = Field(
        description="who decided (the officer's id is in the audit log)"
    )
    decided_ms: int | None
    reason: str | None = Field(description="why it was rejected")
    opened_ms: int | None
    cursor: str = Field(description="pass as `after` for the next page")


class AccountRequestPageOut(BaseModel):
    items: list[AccountRequestView]
    next: str | None = Field(description="the `after` of the next page, null on the last")


class DecisionOut(BaseModel):
    request: AccountRequestView
    account: AccountView | None = Field(
        default=None, description="the opened account with its balances (after an approval)"
    )


def request_json(request: AccountRequest) -> dict[str, object]:
    decided_by = None
    if request.decided_by is not None:
        decided_by = "policy" if request.decided_by == "policy" else "officer"
    return {
        "user_id": request.user_id,
        "id": request.request_id,
        "currency": request.currency,
        "kind": request.kind,
        "purpose": request.purpose,
        "status": request.status,
        "account_id": request.account_id if request.status is RequestStatus.OPENED else None,
        "created_ms": request.created_ms,
        "decided_by": decided_by,
        "decided_ms": request.decided_ms,
        "reason": request.reason,
        "opened_ms": request.opened_ms,
        "cursor": request.cursor,
    }

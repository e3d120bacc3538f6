"""Risk's API input and output models (strict input; every route says what it returns)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhijin.risk import limits
from zhijin.risk.rules import RuleBody

__all__ = [
    "CaseListOut",
    "CaseOut",
    "CaseResolveIn",
    "DecisionListOut",
    "DecisionOut",
    "ExpressionCheckIn",
    "ExpressionCheckOut",
    "MyDecisionListOut",
    "RuleBody",
    "RuleDecisionIn",
    "RuleListOut",
    "RuleVersionOut",
    "StatusOut",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Reason = Field(min_length=limits.REASON_CHARS_MIN, max_length=limits.REASON_CHARS_MAX)


class RuleDecisionIn(_Strict):
    approve: bool
    reason: str = Reason


class CaseResolveIn(_Strict):
    verdict: Literal["cleared", "confirmed_fraud"]
    reason: str = Reason


class ExpressionCheckIn(_Strict):
    expression: str = Field(min_length=1, max_length=limits.EXPRESSION_CHARS_MAX)


class ExpressionCheckOut(BaseModel):
    features: list[str]


class DecisionOut(BaseModel):
    decision_id: str
    transfer_id: str
    member: str
    payer: str
    user_id: str | None
    debit_account_id: str
    credit_account_id: str
    currency: str
    amount_minor: int
    tier: str
    score_bps: int
    reasons: list[str]
    reasons_by_locale: dict[str, list[str]]
    versions: dict[str, str]
    degraded: list[str]
    features: dict[str, Any]
    hold_timeout_ms: int
    outcome: str | None
    at_ms: int


class DecisionListOut(BaseModel):
    decisions: list[DecisionOut]
    next_before_ms: int | None


class MyDecisionOut(BaseModel):
    """A customer's own held or refused payment, in their language."""

    decision_id: str
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    currency: str
    amount_minor: int
    tier: str
    status: str  # 审核中 / under review, 已拒绝 / refused
    reasons: list[str]
    at_ms: int


class MyDecisionListOut(BaseModel):
    decisions: list[MyDecisionOut]


class RuleVersionOut(BaseModel):
    rule_id: str
    version: int
    body: dict[str, Any]
    body_sha256: str
    status: str
    member: str
    created_by: str
    created_ms: int
    decided_by: str | None
    decided_ms: int | None
    decision_reason: str | None
    anchor_height: int | None


class RuleListOut(BaseModel):
    rules: list[RuleVersionOut]
    in_force: str


class CaseOut(BaseModel):
    case_id: str
    decision_id: str
    transfer_id: str
    member: str
    payer: str
    status: str
    opened_ms: int
    resolved_by: str | None
    resolved_ms: int | None
    reason: str | None
    resolution_transfer_id: str | None


class CaseListOut(BaseModel):
    cases: list[CaseOut]
    next_before_ms: int | None


class StatusOut(BaseModel):
    started: bool
    policy: str
    rules: str
    rule_versions: str
    features: dict[str, int]
    degraded: list[str]
    models: dict[str, Any]

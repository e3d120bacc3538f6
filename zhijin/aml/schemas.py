"""The AML API's models: strict inputs (bounds from `limits`) and one output model per answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from zhijin.aml import limits

__all__ = [
    "AlertListOut",
    "AlertOut",
    "AlertViewOut",
    "CaseListOut",
    "CaseOut",
    "CaseSummaryOut",
    "FileCaseIn",
    "FileLargeValueIn",
    "LargeValueFilingOut",
    "LargeValueListOut",
    "MovementListOut",
    "MovementOut",
    "OpenCaseIn",
    "StepIn",
]

_Reason = Field(min_length=limits.REASON_CHARS_MIN, max_length=limits.REASON_CHARS_MAX)
_Day = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OpenCaseIn(_In):
    case_id: str = Field(pattern=limits.ID_PATTERN, max_length=limits.ID_CHARS_MAX)
    customer: str = Field(min_length=1, max_length=limits.PARTY_CHARS_MAX)
    reason: str = _Reason


class StepIn(_In):
    to: Literal["investigating", "escalated", "dismissed"]
    reason: str = _Reason


class FileCaseIn(_In):
    reason: str = _Reason


class RulesProposeIn(_In):
    """A new version of the member's rules: the whole rule set (as `GET /rules` shows it)."""

    version: str = Field(pattern=limits.RULES_VERSION_PATTERN)
    rules: dict[str, Any]
    reason: str = _Reason


class RulesDecisionIn(_In):
    approve: bool
    reason: str = _Reason


class FileLargeValueIn(_In):
    day_from: str = _Day
    day_to: str = _Day


class AlertOut(BaseModel):
    alert_id: str
    member: str
    customer: str
    typology: str
    rule_id: str
    direction: str
    currency: str
    amount_minor: int
    amount: str
    transfer_ids: list[str]
    transfer_count: int
    first_seq: int
    last_seq: int
    first_time_ms: int
    last_time_ms: int
    day: str
    due_day: str
    due_known: bool
    rules_version: str


class AlertListOut(BaseModel):
    alerts: list[AlertOut]
    next_after: str | None


class MovementOut(BaseModel):
    transfer_id: str
    seq: int
    time_ms: int
    day: str
    payer: str
    payee: str
    payer_account: str
    payee_account: str
    payer_party: str
    payee_party: str
    payer_member: str
    payee_member: str
    amount_minor: int
    amount: str
    currency: str
    channel: str
    scope: str


class MovementListOut(BaseModel):
    movements: list[MovementOut]
    next_after_seq: int | None


class AlertViewOut(BaseModel):
    alert: AlertOut
    movements: list[MovementOut]


class LargeValueOut(BaseModel):
    alert: AlertOut
    filed: bool
    overdue: bool


class LargeValueListOut(BaseModel):
    reports: list[LargeValueOut]


class LargeValueFilingOut(BaseModel):
    filed: int
    report_sha256: str | None
    anchor_height: int | None


class StepOut(BaseModel):
    seq: int
    from_status: str | None
    to_status: str
    actor: str
    role: str
    reason: str
    at_ms: int


class CaseSummaryOut(BaseModel):
    case_id: str
    member: str
    customer: str
    status: str
    opened_by: str
    opened_at_ms: int
    updated_at_ms: int
    filing_sha256: str | None
    filing_height: int | None


class CaseOut(CaseSummaryOut):
    steps: list[StepOut]
    alerts: list[AlertOut]
    exists: bool = False


class CaseListOut(BaseModel):
    cases: list[CaseSummaryOut]
    next_after: str | None


class RuleVersionOut(BaseModel):
    """One version of a member's rules as the chain holds it (contract.py)."""

    member: str
    version: str
    sha256: str
    rules: dict[str, Any]
    status: Literal["proposed", "approved", "rejected"]
    proposer: str
    reason: str
    decider: str | None
    decision_reason: str | None
    proposed_height: int
    proposed_ms: int
    decided_height: int | None
    decided_ms: int | None
    from_height: int | None  # approved: the member's customers are judged by it from here
    tx_hash: str


class RulesInForceOut(BaseModel):
    version: str
    sha256: str
    from_height: int | None  # None: the default rules file
    rules: dict[str, Any]


class RulesOut(BaseModel):
    member: str
    in_force: RulesInForceOut
    versions: list[RuleVersionOut]


class RuleSetWrittenOut(BaseModel):
    rule_set: dict[str, Any]  # the contract's record as it now stands
    exists: bool
    height: int
    tx_hash: str

"""What the credit API takes (strict input models) and returns (output models, the OpenAPI's
response schemas).  Bounds come from `limits`, as the contract's do.  The applicant's fields
are checked by `applicant.parse_applicant` (every wrong field named, zh-CN and English), so the
input model only bounds their shape here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from zhijin.credit import limits

__all__ = [
    "AnchorView",
    "BehaviourHistoryOut",
    "BehaviourOut",
    "ContributionView",
    "DecideIn",
    "DecisionListOut",
    "DecisionOut",
    "DecisionRecordView",
    "ModelListOut",
    "ModelOut",
    "ModelView",
    "OfficerIn",
    "PolicyIn",
    "PolicyOut",
    "PolicyView",
    "ReasonView",
    "RepaymentIn",
    "ReplayOut",
]

Sha256 = Field(pattern=limits.SHA256_PATTERN, description="SHA-256, lowercase hex")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DecideIn(_Strict):
    decision_id: str = Field(pattern=limits.ID_PATTERN, description="client id: a retry is safe")
    policy_id: str = Field(pattern=limits.ID_PATTERN)
    subject: str | None = Field(
        default=None,
        max_length=limits.MEMBER_CHARS_MAX,
        description="the applicant's DID when a platform customer (staff only; a customer "
        "deciding for themselves is the subject)",
    )
    model_sha256: str | None = Field(
        default=None, pattern=limits.SHA256_PATTERN, description="default: the latest approved"
    )
    applicant: dict[str, Any] = Field(
        description="the applicant's raw fields (see GET /api/v1/credit/fields); money in fen"
    )


class PolicyIn(_Strict):
    version: int = Field(ge=1, le=limits.POLICY_VERSION_MAX)
    rules: dict[str, Any] = Field(description="the policy (docs/credit.md, Policies)")


class OfficerIn(_Strict):
    """No fields: the officer is the signed-in staff user."""


class RepaymentIn(_Strict):
    id: str = Field(pattern=limits.ID_PATTERN)
    subject: str = Field(min_length=5, max_length=limits.MEMBER_CHARS_MAX)
    due_at_ms: int = Field(ge=0)
    paid_at_ms: int | None = Field(default=None, ge=0)


class ModelView(BaseModel):
    sha256: str
    name: str
    version: str
    card_sha256: str
    member: str
    trainer: str = Field(description="the staff user id of the officer who trained it")
    status: str = Field(description="registered | approved | retired")
    approver: str | None
    registered_height: int
    registered_ms: int
    approved_height: int | None
    approved_ms: int | None
    retired_height: int | None
    retired_ms: int | None
    tx_hash: str


class ModelOut(BaseModel):
    model: ModelView
    exists: bool = Field(default=False, description="true for a retry of an earlier request")
    card: dict[str, Any] | None = Field(
        default=None, description="the model card (data, features, metrics, fairness)"
    )
    file_problem: str | None = Field(
        default=None, description="model_hash_mismatch when this node's file was changed"
    )


class ModelListOut(BaseModel):
    models: list[ModelView]
    next_after_sha256: str | None


class PolicyView(BaseModel):
    policy_id: str
    version: int
    member: str
    officer: str
    rules: dict[str, Any]
    saved_height: int
    saved_ms: int
    tx_hash: str


class PolicyOut(BaseModel):
    policy: PolicyView
    exists: bool = False


class ReasonView(BaseModel):
    code: str = Field(description="stable, e.g. checking_balance_low")
    feature: str
    text_zh: str
    text_en: str


class DecisionRecordView(BaseModel):
    decision_id: str
    member: str
    subject: str | None
    input_sha256: str = Field(description="SHA-256 of the applicant's canonical fields")
    model_sha256: str
    policy_id: str
    policy_version: int
    points: int
    pd_ppm: int = Field(description="probability of default, parts per million")
    outcome: str = Field(description="approve | refer | decline")
    rule: str = Field(description="which policy rule decided")
    limit_minor: int = Field(description="suggested credit limit, minor units")
    currency: str
    price_tier: str | None
    rate_bps: int | None
    reasons: list[ReasonView] = Field(description="at most four, most adverse first")
    thin_file: bool = Field(description="信用白户: no credit history")
    behaviour_score: int | None
    other_members_data: str = Field(
        description="none | used (consented on chain) | not_used_no_consent"
    )
    decided_at_ms: int


class AnchorView(BaseModel):
    height: int | None = Field(description="the block holding the anchor; None until it is")
    tx_hash: str | None


class DecisionOut(BaseModel):
    decision: DecisionRecordView
    record_sha256: str = Field(description="SHA-256 of the record's canonical JSON: on chain")
    requested_by: str
    anchor: AnchorView
    exists: bool = False


class DecisionListOut(BaseModel):
    decisions: list[DecisionOut]
    next_before: str | None = Field(
        description="the `before` of the next page (`<decided_at_ms>:<decision_id>`); none: the last"
    )


class DifferenceView(BaseModel):
    field: str
    recorded: Any
    replayed: Any


class ReplayOut(BaseModel):
    decision_id: str
    same: bool = Field(description="false when anything differs: reported, never hidden")
    differences: list[DifferenceView]
    record_sha256: str
    recomputed_sha256: str
    replayed_sha256: str
    anchored_sha256: str | None
    anchor: dict[str, Any] | None


class ContributionView(BaseModel):
    code: str
    points: int
    text_zh: str
    text_en: str


class BehaviourOut(BaseModel):
    subject: str
    seq: int
    at_ms: int
    score: int
    previous_score: int | None
    contributions: list[ContributionView]
    changes: list[ContributionView] = Field(description="why the score changed since the last")
    other_members_data: str
    thin_file: bool


class BehaviourHistoryOut(BaseModel):
    history: list[BehaviourOut]
    next_before_seq: int | None


class FieldView(BaseModel):
    name: str
    kind: str
    required: bool
    label_zh: str
    label_en: str
    unit: str
    minimum: int | None
    maximum: int | None
    categories: list[dict[str, str]]


class FieldsOut(BaseModel):
    fields: list[FieldView]


class RepaymentView(BaseModel):
    id: str
    subject: str
    member: str
    due_at_ms: int
    paid_at_ms: int | None
    height: int
    tx_hash: str


class RepaymentOut(BaseModel):
    repayment: RepaymentView
    exists: bool

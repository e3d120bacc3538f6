"""HTTP API of credit: the model registry, policies, decisions and replays, and a customer's
own score, its history and their decisions.

Routes are thin: they check the request's shape (strict models; the applicant's fields by
`parse_applicant`), decide who asks (`Caller`) and what they may do (RBAC with the
permissions the manifest declares; maker-checker for model approval), and call `service`.
Refusals are problem+json with a stable code: the contract's (`codes.http_status_for`), the
applicant's `invalid_applicant` (every wrong field, zh-CN and English) or RBAC's
(`permission_denied`, `out_of_scope`, `sod_self_approval`, 403).

Who may call (identity's request guard, `CallerDep` / `GuardDep`): the node operator (its bearer
token), acting as this node's member (officer "operator"); staff of this node's member, within
their roles (their user id is the officer the chain records); a customer, for their own score,
history and decisions, and to apply for themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from zhijin.credit import limits, permissions, service
from zhijin.credit.applicant import FIELDS
from zhijin.credit.expected import CreditHost, CreditHostDep
from zhijin.credit.permissions import permission
from zhijin.credit.policy import Outcome
from zhijin.credit.schemas import (
    BehaviourHistoryOut,
    BehaviourOut,
    DecideIn,
    DecisionListOut,
    DecisionOut,
    FieldsOut,
    ModelListOut,
    ModelOut,
    PolicyIn,
    PolicyOut,
    RepaymentIn,
    RepaymentOut,
    ReplayOut,
)
from zhijin.identity import Caller, CallerDep, Guard, GuardDep, Resource
from zhijin.platform.deps import GatewayDep, OperatorDep
from zhijin.platform.errors import Forbidden
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Cursor
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = [
    "DecisionCursorQuery",
    "member_filter",
    "model_resource",
    "my_subject",
    "readable_decision",
    "router",
]

router = APIRouter(prefix="/api/v1/credit", tags=["credit"], route_class=EdgeRoute)

ShaPath = Annotated[str, Path(pattern=limits.SHA256_PATTERN)]
IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
DecisionCursorQuery = Annotated[
    str | None,
    Query(
        pattern=limits.DECISION_CURSOR_PATTERN,
        max_length=limits.DECISION_CURSOR_CHARS_MAX,
        description="the previous page's next_before (`<decided_at_ms>:<decision_id>`)",
    ),
]
OPERATOR = "operator"
OUTCOME_PATTERN = "^(" + "|".join(Outcome.ALL) + ")$"
DID_PATTERN = r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$"
Subject = Annotated[str, Path(min_length=5, max_length=limits.MEMBER_CHARS_MAX,
                              pattern=DID_PATTERN)]  # fmt: skip
_MODEL_READ = permission(permissions.MODEL_READ)
_MODEL_REGISTER = permission(permissions.MODEL_REGISTER)
_MODEL_APPROVE = permission(permissions.MODEL_APPROVE)
_POLICY_UPDATE = permission(permissions.POLICY_UPDATE)
_DECIDE = permission(permissions.DECIDE)
_REPORT_READ = permission(permissions.REPORT_READ)
_APPLY = permission(permissions.APPLY)


def _officer(caller: Caller) -> str:
    """The officer the chain records: the staff user's id, or "operator"."""
    return OPERATOR if caller.principal is None else caller.principal.user_id


def member_filter(guard: Guard, caller: Caller, permission: str) -> str | None:
    """The member whose rows a listing shows (None: every member's, for `all` grants)."""
    return guard.list_scope(caller, permission=permission).member_did


def _before_lookup(guard: Guard, caller: Caller, permission: str, target: str) -> None:
    """The role-only check, before any lookup whose outcome would otherwise reach the caller."""
    if caller.principal is not None:
        guard.identity.authorize_permission(
            principal=caller.principal, permission=permission, target=target
        )


# -- reference ----------------------------------------------------------------------------------
@router.get("/fields", summary="The applicant's fields: types, ranges, categories, labels",
            response_model=FieldsOut)  # fmt: skip
def fields() -> dict[str, Any]:
    return {
        "fields": [
            {
                "name": field.name,
                "kind": field.kind,
                "required": field.required,
                "label_zh": field.label_zh,
                "label_en": field.label_en,
                "unit": field.unit,
                "minimum": field.minimum,
                "maximum": field.maximum,
                "categories": [
                    {"code": c.code, "label_zh": c.label_zh, "label_en": c.label_en}
                    for c in field.categories
                ],
            }
            for field in FIELDS
        ]
    }


# -- models -------------------------------------------------------------------------------------
@router.get("/models", summary="Registered models (a regulator sees every member's)",
            response_model=ModelListOut)  # fmt: skip
def list_models(
    platform: CreditHostDep,
    caller: CallerDep,
    guard: GuardDep,
    status: Annotated[str | None, Query(pattern="^(registered|approved|retired)$")] = None,
    after_sha256: Annotated[str | None, Query(pattern=limits.SHA256_PATTERN)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = member_filter(guard, caller, _MODEL_READ)
    return service.list_models(
        platform, member=member, status=status, after_sha256=after_sha256, limit=limit
    )


def model_resource(platform: CreditHost, sha256_hex: str) -> tuple[dict[str, Any], Resource]:
    model = service.get_model(platform, sha256_hex=sha256_hex)
    resource = Resource(
        kind="credit_model", id=sha256_hex, member_did=model["member"], created_by=model["trainer"]
    )
    return model, resource


@router.get("/models/{sha256}", summary="One model, with its card", response_model=ModelOut)
def get_model(
    sha256: ShaPath, platform: CreditHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _before_lookup(guard, caller, _MODEL_READ, sha256)
    model, resource = model_resource(platform, sha256)
    guard.authorize(caller, permission=_MODEL_READ, resource=resource)
    card, problem = model.pop("card"), model.pop("file_problem", None)
    return {"model": model, "card": card, "file_problem": problem}


@router.post(
    "/models",
    summary="Register a model file (body: the model artifact's bytes)",
    response_model=ModelOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
    openapi_extra={
        **body_limit(limits.MODEL_UPLOAD_BYTES_MAX),
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
    },
)
async def register_model(
    request: Request,
    platform: CreditHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """The trainer is the signed-in officer; a second officer approves it before it decides."""
    guard.require_member_side(caller)
    guard.authorize(caller, permission=_MODEL_REGISTER)
    content = await request.body()
    return await run_in_threadpool(
        lambda: service.register_model(platform, gateway, trainer=_officer(caller), content=content)
    )


@router.post(
    "/models/{sha256}/approve",
    summary="Approve a registered model (a second officer: never its trainer)",
    response_model=ModelOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def approve_model(
    sha256: ShaPath,
    platform: CreditHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    guard.require_member_side(caller)
    _before_lookup(guard, caller, _MODEL_APPROVE, sha256)
    _, resource = model_resource(platform, sha256)
    # The trainer is the resource's creator: RBAC refuses them (sod_self_approval), and the
    # contract refuses the same officer again on chain (self_approval).
    guard.authorize(caller, permission=_MODEL_APPROVE, resource=resource)
    return service.approve_model(platform, gateway, sha256_hex=sha256, approver=_officer(caller))


@router.post(
    "/models/{sha256}/retire",
    summary="Retire a model: it decides no more; its decisions stay provable",
    response_model=ModelOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def retire_model(
    sha256: ShaPath,
    platform: CreditHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    guard.require_member_side(caller)
    guard.authorize(caller, permission=_MODEL_APPROVE)
    return service.retire_model(platform, gateway, sha256_hex=sha256, officer=_officer(caller))


# -- policies -----------------------------------------------------------------------------------
@router.get("/policies/{policy_id}", summary="A policy version (default: the latest)",
            response_model=PolicyOut)  # fmt: skip
def get_policy(
    policy_id: IdPath,
    platform: CreditHostDep,
    caller: CallerDep,
    guard: GuardDep,
    version: Annotated[int | None, Query(ge=1, le=limits.POLICY_VERSION_MAX)] = None,
) -> dict[str, Any]:
    guard.authorize(caller, permission=_MODEL_READ)
    return {"policy": service.get_policy(platform, policy_id=policy_id, version=version)}


@router.post(
    "/policies/{policy_id}",
    summary="Save a policy version (a contradictory one is refused, saying why)",
    response_model=PolicyOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
    openapi_extra=body_limit(limits.POLICY_BODY_BYTES_MAX),
)
def save_policy(
    policy_id: IdPath,
    body: PolicyIn,
    platform: CreditHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    guard.require_member_side(caller)
    guard.authorize(caller, permission=_POLICY_UPDATE)
    answer = service.save_policy(
        platform,
        gateway,
        policy_id=policy_id,
        version=body.version,
        rules=body.rules,
        officer=_officer(caller),
    )
    return {"policy": answer["policy"], "exists": answer["exists"]}


# -- decisions ----------------------------------------------------------------------------------
@router.post(
    "/decisions",
    summary="Decide on an applicant: score, policy, reasons; recorded and anchored",
    response_model=DecisionOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
    openapi_extra=body_limit(limits.DECIDE_BODY_BYTES_MAX),
)
def decide(
    body: DecideIn,
    platform: CreditHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """A customer may ask for a decision on themselves (they are the subject); staff and the
    operator decide for anyone.  A retry with the same decision_id and body is safe."""
    subject = body.subject
    if caller.is_end_user and caller.sender is not None:
        if subject not in (None, caller.sender):
            raise Forbidden("out_of_scope", "a customer applies for themselves")
        subject = caller.sender
        guard.authorize_owned(
            caller,
            permission=_APPLY,
            kind="credit_decision",
            id=body.decision_id,
            owner=subject,
            member_did=platform.node.key.did,
        )
    else:
        guard.authorize(caller, permission=_DECIDE)
    return service.decide_for(
        platform,
        gateway,
        decision_id=body.decision_id,
        policy_id=body.policy_id,
        applicant=body.applicant,
        subject=subject,
        requested_by=_officer(caller),
        model_sha256=body.model_sha256,
    )


@router.get("/decisions", summary="This member's decisions, newest first (paginated)",
            response_model=DecisionListOut)  # fmt: skip
def list_decisions(
    platform: CreditHostDep,
    caller: CallerDep,
    guard: GuardDep,
    before: DecisionCursorQuery = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
    outcome: Annotated[str | None, Query(pattern=OUTCOME_PATTERN)] = None,
    subject: Annotated[
        str | None, Query(min_length=5, max_length=limits.MEMBER_CHARS_MAX, pattern=DID_PATTERN)
    ] = None,
) -> dict[str, Any]:
    guard.require_member_side(caller)
    member = member_filter(guard, caller, _REPORT_READ)
    return service.list_decisions(
        platform,
        member=member,
        subject=subject,
        before=before,
        limit=limit,
        outcome=outcome,
    )


def readable_decision(
    platform: CreditHost, guard: Guard, caller: Caller, decision_id: str
) -> dict[str, Any]:
    _before_lookup(guard, caller, _REPORT_READ, decision_id)
    decision = service.get_decision(platform, decision_id=decision_id)
    record = decision["decision"]
    guard.authorize_owned(
        caller,
        permission=_REPORT_READ,
        kind="credit_decision",
        id=decision_id,
        owner=record["subject"] or "",
        member_did=record["member"],
    )
    return decision


@router.get("/decisions/{decision_id}", summary="One decision with its reasons and anchor",
            response_model=DecisionOut)  # fmt: skip
def get_decision(
    decision_id: IdPath, platform: CreditHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    return readable_decision(platform, guard, caller, decision_id)


@router.post(
    "/decisions/{decision_id}/replay",
    summary="Re-score a decision and compare with its record and anchor",
    response_model=ReplayOut,
)
def replay(
    decision_id: IdPath, platform: CreditHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    guard.require_member_side(caller)
    readable_decision(platform, guard, caller, decision_id)
    return service.replay(platform, decision_id=decision_id)


# -- the customer's own -------------------------------------------------------------------------
def my_subject(guard: Guard, caller: Caller) -> str:
    if not caller.is_end_user or caller.sender is None or caller.principal is None:
        raise Forbidden("permission_denied", "only a customer has a score of their own")
    guard.authorize(
        caller,
        permission=_REPORT_READ,
        resource=Resource("credit_score", owner_id=caller.principal.user_id),
    )
    return caller.sender


@router.get("/scores/{subject}", summary="A customer's behavioural score (this member's staff)",
            response_model=BehaviourOut)  # fmt: skip
def subject_score(
    subject: Subject, platform: CreditHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    """What the member's credit staff (or the operator) see of a customer's score: the same
    facts the member's decisions read (another member's only with the customer's consent)."""
    guard.require_member_side(caller)
    guard.authorize(caller, permission=_REPORT_READ)
    return service.behaviour(platform, subject=subject)


@router.get("/me/score", summary="My behavioural score and why it is what it is",
            response_model=BehaviourOut)  # fmt: skip
def my_score(platform: CreditHostDep, caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
    return service.behaviour(platform, subject=my_subject(guard, caller))


@router.get("/me/score/history", summary="How my score changed, and why (newest first)",
            response_model=BehaviourHistoryOut)  # fmt: skip
def my_score_history(
    platform: CreditHostDep,
    caller: CallerDep,
    guard: GuardDep,
    before_seq: Annotated[Cursor | None, Query(description="the last row's seq")] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    subject = my_subject(guard, caller)
    return service.behaviour_history(platform, subject=subject, before_seq=before_seq, limit=limit)


@router.get("/me/decisions", summary="Decisions about me, newest first",
            response_model=DecisionListOut)  # fmt: skip
def my_decisions(
    platform: CreditHostDep,
    caller: CallerDep,
    guard: GuardDep,
    before: DecisionCursorQuery = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    subject = my_subject(guard, caller)
    return service.list_decisions(
        platform, member=None, subject=subject, before=before, limit=limit
    )


# -- repayment facts (the lending domain will record these through the contract) ----------------
@router.post(
    "/repayments",
    summary="Record an instalment's due and paid times (member-signed)",
    response_model=RepaymentOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def record_repayment(
    body: RepaymentIn, platform: CreditHostDep, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    answer = service.record_repayment(
        platform,
        gateway,
        repayment_id=body.id,
        subject=body.subject,
        due_at_ms=body.due_at_ms,
        paid_at_ms=body.paid_at_ms,
    )
    return {"repayment": answer["repayment"], "exists": answer["exists"]}

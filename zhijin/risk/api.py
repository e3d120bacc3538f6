"""HTTP API of risk (`/api/v1/risk`): decisions, rules under maker-checker, review cases of
held payments, the supervised model, the engine's state, and a customer's own decisions.

Routes are thin: strict input (schemas), who asks (identity's guard: RBAC with scope from the
manifest's permissions; the rule approval is an approval permission, never one's own draft),
then the service.  Staff see their member's rows; the regulator and the auditor every member's,
each such read a grant in the access audit log.  The operator acts as this node's member.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from zhijin.identity import Caller, CallerDep, Guard, GuardDep, Resource
from zhijin.platform.deps import get_platform
from zhijin.platform.errors import Forbidden
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.i18n import gettext, request_locale
from zhijin.platform.params import TimeMs
from zhijin.risk import limits, permissions
from zhijin.risk.expressions import check
from zhijin.risk.rules import RuleBody
from zhijin.risk.schemas import (
    CaseListOut,
    CaseOut,
    CaseResolveIn,
    DecisionListOut,
    DecisionOut,
    ExpressionCheckIn,
    ExpressionCheckOut,
    MyDecisionListOut,
    RuleDecisionIn,
    RuleListOut,
    RuleVersionOut,
    StatusOut,
)
from zhijin.risk.service import RiskService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/risk", tags=["risk"], route_class=EdgeRoute)

OPERATOR = "operator"
IdPath = Annotated[str, Path(pattern=r"^[a-z]{2}-[0-9a-f]{1,40}$")]
RuleIdPath = Annotated[str, Path(pattern=limits.RULE_ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Before = Annotated[TimeMs | None, Query()]


def _service(request: Request) -> RiskService:
    host: Any = get_platform(request)
    risk: RiskService = host.risk
    return risk


RiskDep = Annotated[RiskService, Depends(_service)]


def _actor(caller: Caller) -> str:
    return OPERATOR if caller.principal is None else f"user:{caller.principal.user_id}"


def _member_filter(guard: Guard, caller: Caller, permission: str) -> str | None:
    scope = guard.list_scope(caller, permission=permission)
    if caller.principal is None:
        return guard.member_did
    return scope.member_did


def _next_before(rows: list[dict[str, Any]], key: str, limit: int) -> int | None:
    return rows[-1][key] if len(rows) == limit else None


# -- decisions --------------------------------------------------------------------------------
@router.get("/decisions", summary="Fraud decisions (a member's; the regulator every member's)",
            response_model=DecisionListOut)  # fmt: skip
def list_decisions(
    risk: RiskDep,
    caller: CallerDep,
    guard: GuardDep,
    tier: Annotated[str | None, Query(pattern=r"^(allow|hold|refuse|step_up)$")] = None,
    transfer_id: Annotated[str | None, Query(max_length=limits.ID_CHARS_MAX)] = None,
    before_ms: Before = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    rows = risk.list_decisions(
        member=member, tier=tier, transfer_id=transfer_id, before_ms=before_ms, limit=limit
    )
    return {"decisions": rows, "next_before_ms": _next_before(rows, "at_ms", limit)}


@router.get("/decisions/{decision_id}", summary="One decision: score, reasons, versions, features",
            response_model=DecisionOut)  # fmt: skip
def get_decision(
    decision_id: IdPath, risk: RiskDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    decision = risk.get_decision(decision_id)
    guard.authorize(
        caller,
        permission=permissions.ALERT_READ,
        resource=Resource(kind="risk_decision", id=decision_id, member_did=decision["member"]),
    )
    return decision


@router.get("/my/decisions", summary="My held and refused payments, and why",
            response_model=MyDecisionListOut)  # fmt: skip
def my_decisions(
    request: Request,
    risk: RiskDep,
    caller: CallerDep,
    guard: GuardDep,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    principal = caller.principal
    if principal is None or caller.sender is None or not caller.is_end_user:
        raise Forbidden("permission_denied", "this lists a customer's own payments")
    guard.authorize(
        caller,
        permission=permissions.DECISION_READ_OWN,
        resource=Resource(kind="risk_decision", owner_id=principal.user_id),
    )
    locale = request_locale(request)
    status_text = {
        "hold": gettext(locale, "risk.status.held"),
        "refuse": gettext(locale, "risk.status.refused"),
        "step_up": gettext(locale, "risk.status.step_up"),
    }
    rows = [
        row
        for row in risk.list_decisions(payer=caller.sender, limit=limit)
        if row["tier"] in status_text
    ]
    return {
        "decisions": [
            {
                "decision_id": row["decision_id"],
                "transfer_id": row["transfer_id"],
                "debit_account_id": row["debit_account_id"],
                "credit_account_id": row["credit_account_id"],
                "currency": row["currency"],
                "amount_minor": row["amount_minor"],
                "tier": row["tier"],
                "status": status_text[_status_of(row)],
                "reasons": row["reasons_by_locale"].get(locale, []),
                "at_ms": row["at_ms"],
            }
            for row in rows
        ]
    }


def _status_of(row: dict[str, Any]) -> str:
    """What the customer is told of a decision: a hold that payments could not submit as a
    hold (an FX payment: `payment_needs_review`) did not move and waits for no review."""
    if row["tier"] == "hold" and row.get("outcome") == "refused":
        return "refuse"
    return str(row["tier"])


# -- rules --------------------------------------------------------------------------------------
@router.get("/rules", summary="Every rule version, and the set in force",
            response_model=RuleListOut)  # fmt: skip
def list_rules(
    risk: RiskDep,
    caller: CallerDep,
    guard: GuardDep,
    status: Annotated[str | None, Query(pattern=r"^(draft|approved|rejected)$")] = None,
) -> dict[str, Any]:
    _member_filter(guard, caller, permissions.ALERT_READ)
    return {"rules": risk.list_rules(status=status), "in_force": risk.engine.ruleset.versions()}


@router.post("/rules/check", summary="Check an expression against the feature names (dry run)",
             response_model=ExpressionCheckOut)  # fmt: skip
def check_expression(body: ExpressionCheckIn, caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
    guard.authorize(caller, permission=permissions.RULE_EDIT)
    return {"features": sorted(check(body.expression))}


@router.post("/rules", summary="Save a rule version as a draft (checked now)", status_code=201,
             response_model=RuleVersionOut)  # fmt: skip
def propose_rule(
    body: RuleBody, risk: RiskDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    guard.authorize(
        caller,
        permission=permissions.RULE_EDIT,
        resource=Resource(kind="risk_rule", id=body.id, member_did=risk.ports.member_did),
    )
    return risk.propose_rule(body=body, actor=_actor(caller))


@router.post("/rules/{rule_id}/versions/{version}/decision",
             summary="Approve or reject a draft (never one's own)",
             response_model=RuleVersionOut)  # fmt: skip
def decide_rule(
    rule_id: RuleIdPath,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    body: RuleDecisionIn,
    risk: RiskDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    rule = risk.get_rule_version(rule_id, version)
    created_by = rule["created_by"].removeprefix("user:")
    guard.authorize(
        caller,
        permission=permissions.RULE_APPROVE,
        resource=Resource(
            kind="risk_rule",
            id=f"{rule_id}@{version}",
            member_did=rule["member"],
            created_by=created_by,
        ),
    )
    return risk.decide_rule(
        rule_id=rule_id,
        version=version,
        actor=_actor(caller),
        approve=body.approve,
        reason=body.reason,
    )


# -- cases --------------------------------------------------------------------------------------
@router.get("/cases", summary="Review cases of held payments", response_model=CaseListOut)
def list_cases(
    risk: RiskDep,
    caller: CallerDep,
    guard: GuardDep,
    status: Annotated[str | None, Query(pattern=r"^(open|cleared|confirmed_fraud)$")] = None,
    before_ms: Before = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    rows = risk.list_cases(member=member, status=status, before_ms=before_ms, limit=limit)
    return {"cases": rows, "next_before_ms": _next_before(rows, "opened_ms", limit)}


@router.post("/cases/{case_id}/resolution",
             summary="Clear (post the hold) or confirm fraud (void it)",
             response_model=CaseOut)  # fmt: skip
def resolve_case(
    case_id: IdPath, body: CaseResolveIn, risk: RiskDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    case = risk.get_case(case_id)
    guard.authorize(
        caller,
        permission=permissions.CASE_MANAGE,
        resource=Resource(kind="risk_case", id=case_id, member_did=case["member"]),
    )
    return risk.resolve_case(
        case_id=case_id, verdict=body.verdict, actor=_actor(caller), reason=body.reason
    )


# -- the engine and its models --------------------------------------------------------------------
@router.get("/status", summary="The engine: rules and policy in force, models, degraded state",
            response_model=StatusOut)  # fmt: skip
def status(risk: RiskDep, caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
    _member_filter(guard, caller, permissions.ALERT_READ)
    return risk.status()


@router.post("/models/train", summary="Train and register the supervised model on case verdicts",
             response_model=StatusOut)  # fmt: skip
def train_model(risk: RiskDep, caller: CallerDep, guard: GuardDep) -> dict[str, Any]:
    guard.authorize(caller, permission=permissions.MODEL_MANAGE)
    risk.train_model(actor=_actor(caller))
    return risk.status()

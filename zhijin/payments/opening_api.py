"""HTTP API of account requests (opening.py): the customer asks, the officer decides.

    POST /api/v1/account-requests                         a customer asks (idempotent by id)
    GET  /api/v1/account-requests                         own / the member's queue / all
    GET  /api/v1/account-requests/{user_id}/{id}          one request
    POST /api/v1/account-requests/{user_id}/{id}/approve  opens the account (idempotent)
    POST /api/v1/account-requests/{user_id}/{id}/reject   with a reason for the customer

Signed-in users only (a session or API token): every decision is a person's, authorised by
RBAC and audited.  A replayed request or decision answers `Idempotent-Replayed: true`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from zhijin.identity.web import CurrentUser
from zhijin.payments import limits, service
from zhijin.payments.api import REPLAYED_HEADER
from zhijin.payments.expected import PaymentsHostDep
from zhijin.payments.opening import AccountOpening, Decision
from zhijin.payments.opening_models import (
    AccountRequestIn,
    AccountRequestPageOut,
    AccountRequestView,
    DecisionOut,
    RejectIn,
    request_json,
)
from zhijin.payments.opening_store import RequestStatus
from zhijin.platform.deps import GatewayDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/account-requests", tags=["payments"], route_class=EdgeRoute)

UserIdPath = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
RequestIdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]


def _opening(platform: PaymentsHostDep, gateway: GatewayDep) -> AccountOpening:
    return AccountOpening(platform, gateway)


def _decided(response: Response, decision: Decision) -> dict[str, Any]:
    response.headers[REPLAYED_HEADER] = "true" if decision.replayed else "false"
    return {"request": request_json(decision.request)}


@router.post(
    "",
    summary="Ask the bank for an account (idempotent by id)",
    response_model=AccountRequestView,
)
def create_request(
    body: AccountRequestIn,
    response: Response,
    user: CurrentUser,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
) -> dict[str, Any]:
    """Needs a KYC case (pending or approved: `kyc_required`).  The same id with the same body
    answers the stored request; with another body, 409 naming the fields."""
    decision = _opening(platform, gateway).request(
        principal=user,
        request_id=body.id,
        currency_code=body.currency,
        kind=body.kind,
        purpose=body.purpose,
    )
    response.headers[REPLAYED_HEADER] = "true" if decision.replayed else "false"
    return request_json(decision.request)


@router.get(
    "",
    summary="Account requests: own, the member's queue, or all (paginated)",
    response_model=AccountRequestPageOut,
)
def list_requests(
    user: CurrentUser,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    status: RequestStatus | None = None,
    after: Annotated[str | None, Query(max_length=limits.ACCOUNT_REQUEST_CURSOR_CHARS_MAX)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """A customer sees their own; bank staff their member's (the officer's queue:
    `status=pending`); auditors and the regulator all.  Oldest first."""
    items = _opening(platform, gateway).page(
        principal=user, user_id=user_id, status=status, after=after, limit=limit
    )
    views = [request_json(item) for item in items]
    return {"items": views, "next": items[-1].cursor if len(items) == limit else None}


@router.get(
    "/{user_id}/{request_id}",
    summary="One account request",
    response_model=AccountRequestView,
)
def get_request(
    user_id: UserIdPath,
    request_id: RequestIdPath,
    user: CurrentUser,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
) -> dict[str, Any]:
    request = _opening(platform, gateway).get(
        principal=user, user_id=user_id, request_id=request_id
    )
    return request_json(request)


@router.post(
    "/{user_id}/{request_id}/approve",
    summary="Approve: open the account on chain (idempotent)",
    response_model=DecisionOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def approve_request(
    user_id: UserIdPath,
    request_id: RequestIdPath,
    response: Response,
    user: CurrentUser,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
) -> dict[str, Any]:
    """`account.open`, for an approved KYC (`kyc_not_approved`), by an officer who did not
    approve that KYC (`sod_self_approval`)."""
    decision = _opening(platform, gateway).approve(
        principal=user, user_id=user_id, request_id=request_id
    )
    answer = _decided(response, decision)
    answer["account"] = service.get_account(platform, account_id=decision.request.account_id)
    return answer


@router.post(
    "/{user_id}/{request_id}/reject",
    summary="Reject, with a reason the customer reads",
    response_model=DecisionOut,
    response_model_exclude_unset=True,
)
def reject_request(
    user_id: UserIdPath,
    request_id: RequestIdPath,
    body: RejectIn,
    response: Response,
    user: CurrentUser,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
) -> dict[str, Any]:
    decision = _opening(platform, gateway).reject(
        principal=user, user_id=user_id, request_id=request_id, reason=body.reason
    )
    return _decided(response, decision)

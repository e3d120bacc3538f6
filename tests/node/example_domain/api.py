"""HTTP API of the guestbook: thin routes that check the shape (the strict input model), ask
identity's request guard who is calling and whether they may (`CallerDep`, `GuardDep`), call
`service`, and say what they return (`response_model`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tests.node.example_domain import limits, service
from tests.node.example_domain.schemas import EntryListOut, EntryOut, SignIn
from zhijin.identity import CallerDep, GuardDep, Permission
from zhijin.platform.deps import GatewayDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Height
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/guestbook", tags=["guestbook"], route_class=EdgeRoute)


@router.post(
    "/entries",
    summary="Sign the guestbook: the operator as this node's member, a customer as themselves",
    response_model=EntryOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
    openapi_extra=body_limit(limits.SIGN_BODY_BYTES_MAX),
)
def sign(
    request: SignIn, platform: PlatformDep, gateway: GatewayDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    # Signing writes under one's own name: a customer's own `profile.update` (their DID, which
    # the member vouches for, is the entry's author).  Staff sign nothing in the member's name
    # (the owner is then the member, outside their own scope); the operator is the member.
    guard.authorize_owned(
        caller,
        permission=Permission.PROFILE_UPDATE,
        kind="guestbook_entry",
        id=request.id,
        owner=caller.sender or guard.member_did,
        member_did=guard.member_did,
    )
    return service.sign(
        gateway,
        platform.projections,
        entry_id=request.id,
        message=request.message,
        sender=caller.sender,
    )


@router.get("/entries", summary="Entries, newest first (paginated)", response_model=EntryListOut)
def list_entries(
    platform: PlatformDep,
    before_height: Annotated[Height | None, Query(description="the last row's height")] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return service.list_entries(platform.platform_engine, before_height=before_height, limit=limit)

"""HTTP API of the guestbook: thin routes that check the shape (the strict input model), call
`service`, and say what they return (`response_model`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from tests.node.example_domain import limits, service
from tests.node.example_domain.schemas import EntryListOut, EntryOut, SignIn
from zhijin.platform.deps import GatewayDep, OperatorDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Height
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/guestbook", tags=["guestbook"], route_class=EdgeRoute)


@router.post(
    "/entries",
    summary="Sign the guestbook, as this node's member",
    response_model=EntryOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
    openapi_extra=body_limit(limits.SIGN_BODY_BYTES_MAX),
)
async def sign(
    request: SignIn, platform: PlatformDep, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: service.sign(
            gateway, platform.projections, entry_id=request.id, message=request.message
        )
    )


@router.get("/entries", summary="Entries, newest first (paginated)", response_model=EntryListOut)
def list_entries(
    platform: PlatformDep,
    before_height: Annotated[Height | None, Query(description="the last row's height")] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    return service.list_entries(platform.platform_engine, before_height=before_height, limit=limit)

"""HTTP API of the projections check: `GET /api/v1/projections/verify` for the operator.

The same check as `zhijin projections verify`: every query-table row of every domain recomputed
from the chain's state at its projection's height, each mismatch named.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from zhijin.platform.deps import OperatorDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.projection_verify import verify_projections

__all__ = ["MismatchOut", "ProjectionReportOut", "router"]

router = APIRouter(prefix="/api/v1/projections", tags=["projections"], route_class=EdgeRoute)


class MismatchOut(BaseModel):
    domain: str
    table: str
    key: str
    field: str
    expected: Any  # null with field "row": the row should not exist
    found: Any  # null with field "row": the row is missing


class ProjectionReportOut(BaseModel):
    ok: bool
    heights: dict[str, int]  # projection -> the height it was checked at
    mismatches_total: int
    mismatches: list[MismatchOut]  # the first MISMATCHES_MAX


@router.get(
    "/verify",
    summary="Every projected row checked against the chain's state",
    response_model=ProjectionReportOut,
)
async def verify(request: Request, platform: PlatformDep, _operator: OperatorDep) -> dict[str, Any]:
    # The composition root put every module's verifiers on the app's state.
    report = await run_in_threadpool(
        verify_projections,
        platform.store,
        platform.platform_engine,
        request.app.state.projection_verifiers,
    )
    return report.to_json()

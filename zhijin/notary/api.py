"""HTTP API of the notary: anchor (operator), look up, fetch a receipt, verify a receipt."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from zhijin.chain.errors import Unavailable
from zhijin.chain.limits import PAGE_SIZE_MAX
from zhijin.notary import limits, projection, service
from zhijin.notary.receipt import build_receipt, verify_receipt
from zhijin.platform.deps import GatewayDep, OperatorDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.params import Height

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/notary", tags=["notary"], route_class=EdgeRoute)

SHA256_PATTERN = r"^[0-9a-f]{64}$"
NOT_FINAL_RETRY_AFTER_MS = 1_000  # a vote round trip is tens of milliseconds
HashPath = Annotated[str, Path(pattern=SHA256_PATTERN, description="SHA-256, lowercase hex")]


class AnchorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    hash: str = Field(pattern=SHA256_PATTERN, description="SHA-256 of the document, lowercase hex")
    title: str = Field(default="", max_length=limits.TITLE_CHARS_MAX)
    expires_at: int | None = Field(default=None, ge=0, description="block time in ms")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: dict[str, Any]
    document_sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)


@router.post("/anchors", summary="Anchor a document hash, signed by this node's member")
async def create_anchor(
    request: AnchorRequest, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: service.anchor(
            gateway, document_hash=request.hash, title=request.title, expires_at=request.expires_at
        )
    )


@router.get("/anchors", summary="Anchored documents, newest first (paginated)")
def list_anchors(
    platform: PlatformDep,
    owner: Annotated[str | None, Query(max_length=256, description="only this owner's")] = None,
    before_height: Annotated[
        Height | None, Query(description="next page: the last row's height")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = 50,
) -> dict[str, Any]:
    with platform.platform_engine.connect() as conn:
        rows = projection.list_anchors(conn, owner=owner, before_height=before_height, limit=limit)
    next_before = rows[-1]["height"] if len(rows) == limit else None
    return {"anchors": rows, "next_before_height": next_before}


@router.get("/anchors/{document_hash}", summary="Look up an anchored document by its hash")
def get_anchor(document_hash: HashPath, platform: PlatformDep) -> dict[str, Any]:
    return service.lookup(platform.store, document_hash, now_ms=platform.node.clock())


@router.get("/anchors/{document_hash}/receipt", summary="An offline-verifiable receipt")
def get_receipt(document_hash: HashPath, platform: PlatformDep) -> dict[str, Any]:
    """Only for a final block: before a quorum signed it (cluster mode), a receipt could not be
    verified offline, so the client is told to come back (503 with Retry-After)."""
    receipt = build_receipt(platform.store, document_hash)
    height = receipt["block"]["header"]["height"]
    final_height = platform.final_height()
    if height > final_height:
        raise Unavailable(
            "not_final",
            f"block {height} is not final yet (final height {final_height}); retry",
            retry_after_ms=NOT_FINAL_RETRY_AFTER_MS,
        )
    return receipt


@router.post("/verify", summary="Check a receipt against this chain's genesis")
def verify(request: VerifyRequest, platform: PlatformDep) -> dict[str, Any]:
    report = verify_receipt(request.receipt, platform.genesis)
    result = report.to_json()
    if request.document_sha256 is not None:
        matches = _anchored_hash(request.receipt) == request.document_sha256
        result["checks"].append({"name": "document hash matches", "ok": matches, "detail": ""})
        result["ok"] = result["ok"] and matches
    return result


def _anchored_hash(receipt: dict[str, Any]) -> Any:
    """The hash the receipt's tx anchored, or None: the receipt is the caller's JSON, so any
    level may be missing or not an object (its checks then say it is malformed)."""
    value: Any = receipt
    for key in ("tx", "envelope", "body", "args", "hash"):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value

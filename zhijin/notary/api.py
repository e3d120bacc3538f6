"""HTTP API of the notary: anchor (operator), look up, fetch a receipt, verify a receipt.

Reads follow the chain's read policy (zhijin/platform/chain_read.py): anyone may learn where
and when a hash was anchored and verify a receipt they hold; the title, the owner and the
receipt (which carries the anchoring transaction) are for the owner and members.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from zhijin.chain.errors import Unavailable
from zhijin.notary import limits, projection, service
from zhijin.notary.receipt import build_receipt, verify_receipt
from zhijin.platform.chain_read import ChainReader, ChainReaderDep
from zhijin.platform.deps import GatewayDep, OperatorDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.params import Height
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["SHA256_PATTERN", "anchor_view", "router"]

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


# -- what the routes return -----------------------------------------------------------------------


class AnchorRecordView(BaseModel):
    """An anchor as the contract recorded it."""

    hash: str
    title: str
    owner: str
    anchored_at: int = Field(description="block time in ms")
    height: int
    tx_hash: str
    expires_at: int | None = Field(description="block time in ms; null: never")


class AnchorCreatedOut(BaseModel):
    created: bool = Field(description="false when the hash was already anchored")
    record: AnchorRecordView


class AnchorView(BaseModel):
    """The caller's view of an anchor: `title` and `owner` only when `visibility` is full;
    `status` only on a lookup by hash (a list row carries none)."""

    # The public fields first, in PUBLIC_ANCHOR_FIELDS' order.
    hash: str
    height: int
    anchored_at: int
    tx_hash: str
    expires_at: int | None
    title: str | None = None
    owner: str | None = None
    status: Literal["valid", "expired"] | None = None
    visibility: Literal["full", "redacted"]


class AnchorListOut(BaseModel):
    anchors: list[AnchorView]
    next_before_height: int | None = Field(description="the next page's `before_height`")


class ReceiptProofView(BaseModel):
    leaf_index: int
    tree_size: int
    proof: list[str] = Field(description="RFC 6962 audit path, lowercase hex")


class ReceiptOut(BaseModel):
    """A receipt: every part a verifier needs, offline.  The record, the transaction, the block
    and the membership history are kept as the chain stored them (a receipt is a document its
    holder keeps, so its bytes do not depend on this model); `POST /verify` checks them."""

    version: int
    chain_id: str
    membership: list[dict[str, Any]] = Field(description="governance changes below the block")
    record: dict[str, Any] = Field(description="the anchor record (AnchorRecordView), as stored")
    tx: dict[str, Any] = Field(description="hash, envelope, batch_hash, result")
    block: dict[str, Any] = Field(description="header and member signatures")
    tx_proof: ReceiptProofView
    result_proof: ReceiptProofView
    log_proof: ReceiptProofView
    tree_head: dict[str, Any] = Field(description="the signed tree head the log proof is for")


@router.post(
    "/anchors",
    summary="Anchor a document hash, signed by this node's member",
    response_model=AnchorCreatedOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
async def create_anchor(
    request: AnchorRequest, platform: PlatformDep, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: service.anchor(
            gateway,
            document_hash=request.hash,
            title=request.title,
            expires_at=request.expires_at,
            projections=platform.projections,  # the anchor list reads the notary table
        )
    )


# What anyone may see of an anchor: where and when a hash was anchored, and until when.
# The title and the owner are what its transaction said: members', or the owner's.
PUBLIC_ANCHOR_FIELDS = ("hash", "height", "anchored_at", "tx_hash", "expires_at", "status")


def anchor_view(
    record: dict[str, Any], reader: ChainReader, *, audited: str | None
) -> dict[str, Any]:
    """The caller's view of an anchor record, by the chain's read policy."""
    if reader.may_read_sent_by(record["owner"], kind="notary_anchor", id=audited):
        return {**record, "visibility": "full"}
    public = {name: record[name] for name in PUBLIC_ANCHOR_FIELDS if name in record}
    return {**public, "visibility": "redacted"}


@router.get(
    "/anchors",
    summary="Anchored documents, newest first (paginated)",
    response_model=AnchorListOut,
    response_model_exclude_unset=True,
)
def list_anchors(
    platform: PlatformDep,
    reader: ChainReaderDep,
    owner: Annotated[
        str | None, Query(max_length=limits.OWNER_CHARS_MAX, description="only this owner's")
    ] = None,
    before_height: Annotated[
        Height | None, Query(description="next page: the last row's height")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)] = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """Members see every row whole; anyone else sees where and when each hash was anchored,
    and the title and owner of their own.  Who anchored what is a member's to know, so only
    members filter by another owner."""
    reader.record_staff_read("notary_anchors", owner or "*")  # one entry per page, not per row
    if owner is not None:
        reader.require_sent_by(owner, kind="notary_anchors", id=None)
    with platform.platform_engine.connect() as conn:
        rows = projection.list_anchors(conn, owner=owner, before_height=before_height, limit=limit)
    next_before = rows[-1]["height"] if len(rows) == limit else None
    return {
        "anchors": [anchor_view(r, reader, audited=None) for r in rows],
        "next_before_height": next_before,
    }


@router.get(
    "/anchors/{document_hash}",
    summary="Look up an anchored document by its hash",
    response_model=AnchorView,
    response_model_exclude_unset=True,
)
def get_anchor(
    document_hash: HashPath, platform: PlatformDep, reader: ChainReaderDep
) -> dict[str, Any]:
    record = service.lookup(platform.store, document_hash, now_ms=platform.node.clock())
    return anchor_view(record, reader, audited=document_hash)


@router.get(
    "/anchors/{document_hash}/receipt",
    summary="An offline-verifiable receipt",
    response_model=ReceiptOut,
)
def get_receipt(
    document_hash: HashPath, platform: PlatformDep, reader: ChainReaderDep
) -> dict[str, Any]:
    """For the anchor's owner and members only: a receipt carries the anchoring transaction
    whole (403 `chain_body_restricted` for anyone else); verifying one needs nothing of the
    node.  Only for a final block: before a quorum signed it (cluster mode), a receipt could
    not be verified offline, so the client is told to come back (503 with Retry-After)."""
    record = service.lookup(platform.store, document_hash, now_ms=platform.node.clock())
    reader.require_sent_by(record["owner"], kind="notary_receipt", id=document_hash)
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


class CheckAnswer(BaseModel):
    name: str
    ok: bool
    detail: str
    code: str = Field(description="stable: what a failure of this check means")
    fields: list[str] = Field(description="receipt paths this check judges (dotted)")


class VerifyAnswer(BaseModel):
    ok: bool
    checks: list[CheckAnswer]
    failure: CheckAnswer | None = Field(
        description="the first failed check: it names the part of the receipt that was changed"
    )
    record: dict[str, Any] | None = Field(
        description="the anchored record as the proofs show it; null unless every check passed"
    )


@router.post(
    "/verify", summary="Check a receipt against this chain's genesis", response_model=VerifyAnswer
)
def verify(request: VerifyRequest, platform: PlatformDep) -> dict[str, Any]:
    report = verify_receipt(
        request.receipt, platform.genesis, document_sha256=request.document_sha256
    )
    return report.to_json()

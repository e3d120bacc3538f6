"""HTTP API of the chain: submit envelopes, read blocks and transactions, get proofs.

Blocks (header, signatures, tx hashes, tree head), the head and proofs are public; a tx's body
and result only for those the read policy lets see them (zhijin/platform/chain_read.py).

The chain package is the core and imports nothing above it, so its routes live here.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from zhijin.chain.codec import decode
from zhijin.chain.errors import EncodingError, NotFound, ZhijinError
from zhijin.chain.merkle import LogTree, consistency_to_json, inclusion_to_json, leaf_hash
from zhijin.chain.node import Admission
from zhijin.chain.store import StoredTx
from zhijin.platform.chain_read import REDACTED_DETAIL, ChainReader, ChainReaderDep, Visibility
from zhijin.platform.deps import PlatformDep
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.http_limits import ENVELOPE_BYTES_MAX, ENVELOPES_PER_REQUEST_MAX
from zhijin.platform.params import Height, Size
from zhijin.platform.problems import localized_problem

__all__ = ["BlockView", "TxView", "router", "tx_view"]

router = APIRouter(prefix="/api/v1/chain", tags=["chain"], route_class=EdgeRoute)


class BadRequest(ZhijinError):
    code = "bad_request"


def _hash_param(value: str) -> bytes:
    if len(value) != 64:
        raise BadRequest("bad_hash", "a hash is 64 lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise BadRequest("bad_hash", "a hash is 64 lowercase hex digits") from exc


async def _answer(admission: Admission, *, wait: bool, timeout_s: float) -> dict[str, Any]:
    if not admission.accepted:
        return {
            "tx_hash": admission.tx_hash,
            "status": "rejected",
            "code": admission.code,
            "message": admission.message,
        }
    if not wait or admission.future is None:
        return {"tx_hash": admission.tx_hash, "status": "accepted"}
    try:
        result = await asyncio.wait_for(asyncio.wrap_future(admission.future), timeout_s)
    except TimeoutError:
        return {"tx_hash": admission.tx_hash, "status": "pending", "message": "not committed yet"}
    except ZhijinError as exc:
        return {"tx_hash": admission.tx_hash, "status": "not_committed", "code": exc.code}
    status = "committed" if result["status"] == "ok" else "failed"
    return {"tx_hash": admission.tx_hash, **result, "status": status}


class TxAnswerView(BaseModel):
    """What became of one submitted envelope: `accepted` (not waited for), `pending` (not
    committed within the wait), `committed` or `failed` (with the tx's result: `height`,
    `return` or `code`/`message`, `events`), `rejected` or `not_committed` (with `code`)."""

    model_config = ConfigDict(extra="allow")  # a committed tx adds its result's own fields

    tx_hash: str
    status: Literal["accepted", "pending", "committed", "failed", "rejected", "not_committed"]
    code: str | None = None
    message: str | None = None


class TxBatchAnswerOut(BaseModel):
    txs: list[TxAnswerView] = Field(description="one answer per body of the member batch")


@router.post(
    "/txs",
    summary="Submit a signed envelope (single or member batch)",
    response_model=TxAnswerView | TxBatchAnswerOut,
    responses={202: {"model": TxAnswerView | TxBatchAnswerOut, "description": "not waited for"}},
    openapi_extra=body_limit(ENVELOPE_BYTES_MAX),
)
async def submit_tx(
    request: Request,
    platform: PlatformDep,
    wait: Annotated[bool, Query(description="answer once committed or failed")] = False,
) -> JSONResponse:
    raw = await request.body()  # at most ENVELOPE_BYTES_MAX: the edge refuses more (413)
    admissions = await run_in_threadpool(platform.node.submit, raw)
    timeout_s = platform.settings.wait_timeout_s
    answers = [await _answer(a, wait=wait, timeout_s=timeout_s) for a in admissions]
    if len(answers) == 1 and answers[0]["status"] == "rejected" and not admissions[0].batch:
        first = answers[0]
        return localized_problem(
            request, 400, first["code"], first["message"] or first["code"], tx_hash=first["tx_hash"]
        )
    if all(a["status"] == "rejected" for a in answers):
        return JSONResponse({"txs": answers}, status_code=400)
    status_code = 200 if wait else 202
    is_batch = any(a.batch for a in admissions)
    body: Any = {"txs": answers} if is_batch else answers[0]
    return JSONResponse(body, status_code=status_code)


class ManyEnvelopesIn(BaseModel):
    """The request of `POST /txs/many` (documented here; the route reads the raw bytes)."""

    envelopes: list[dict[str, Any]] = Field(
        description=f"1 to {ENVELOPES_PER_REQUEST_MAX} single or member batch envelopes",
        min_length=1,
        max_length=ENVELOPES_PER_REQUEST_MAX,
    )


class ManyEnvelopesOut(BaseModel):
    results: list[TxAnswerView | TxBatchAnswerOut] = Field(
        description="one per envelope, in order: a single envelope's answer, or a member "
        "batch's `txs`"
    )


@router.post(
    "/txs/many",
    summary="Submit many signed envelopes in one request, each answered on its own",
    response_model=ManyEnvelopesOut,
    responses={202: {"model": ManyEnvelopesOut, "description": "not waited for"}},
    openapi_extra={
        **body_limit(ENVELOPE_BYTES_MAX),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ManyEnvelopesIn.model_json_schema()}},
        },
    },
)
async def submit_many(
    request: Request,
    platform: PlatformDep,
    wait: Annotated[bool, Query(description="answer once each tx is committed or failed")] = False,
) -> JSONResponse:
    """`{"envelopes": [...]}`: each envelope is admitted or refused alone (a member batch
    still as a whole), with one nonce query and the signatures verified on the node's
    verifier threads.  The request is decoded once, as canonical-domain JSON (docs/chain.md)."""
    raw = await request.body()  # at most ENVELOPE_BYTES_MAX: the edge refuses more (413)
    try:
        value = decode(raw)
    except EncodingError as exc:
        return localized_problem(request, 400, exc.code, exc.message)
    envelopes = value.get("envelopes") if isinstance(value, dict) and len(value) == 1 else None
    if not isinstance(envelopes, list) or not 0 < len(envelopes) <= ENVELOPES_PER_REQUEST_MAX:
        return localized_problem(
            request,
            400,
            "bad_envelope",
            f'the body is {{"envelopes": [...]}} with 1 to {ENVELOPES_PER_REQUEST_MAX} envelopes',
        )
    groups = await run_in_threadpool(platform.node.submit_envelopes, envelopes, decoded=True)
    timeout_s = platform.settings.wait_timeout_s
    answers = await asyncio.gather(
        *(_answer(a, wait=wait, timeout_s=timeout_s) for group in groups for a in group)
    )
    results: list[Any] = []
    position = 0
    for group in groups:
        mine = list(answers[position : position + len(group)])
        position += len(group)
        results.append({"txs": mine} if any(a.batch for a in group) else mine[0])
    return JSONResponse({"results": results}, status_code=200 if wait else 202)


class TxView(BaseModel):
    """A committed tx.  `visibility` says whether the caller may see its body and result
    (docs/chain.md, "Who reads what"); a redacted view keeps only where the tx is."""

    tx_hash: str
    height: int
    position: int
    batch_hash: str | None
    visibility: Visibility
    envelope: dict[str, Any] | None = Field(description="null when redacted")
    result: dict[str, Any] | None = Field(description="null when redacted")
    redacted_detail: str | None = Field(default=None, description="why, when redacted")


def tx_view(platform: PlatformDep, reader: ChainReader, stored: StoredTx) -> TxView:
    """The caller's view of a committed tx, by the read policy."""
    full = reader.may_read(platform.store, stored)
    return TxView(
        tx_hash=stored.tx_hash.hex(),
        height=stored.height,
        position=stored.position,
        batch_hash=None if stored.batch_hash is None else stored.batch_hash.hex(),
        visibility="full" if full else "redacted",
        envelope=stored.envelope() if full else None,
        result=decode(stored.result) if full else None,
        redacted_detail=None if full else REDACTED_DETAIL,
    )


@router.get(
    "/txs/{tx_hash}",
    summary="A committed transaction: its body and result for those who may read them",
    response_model=TxView,
)
def get_tx(tx_hash: str, platform: PlatformDep, reader: ChainReaderDep) -> TxView:
    stored = platform.store.get_tx(_hash_param(tx_hash))
    if stored is None:
        raise NotFound("tx_not_found", f"no committed tx {tx_hash}")
    return tx_view(platform, reader, stored)


class BlockView(BaseModel):
    """A block as anyone may read it: header, member signatures, tx hashes, tree head (no tx
    body: those are behind `GET /txs/{hash}` and its read policy)."""

    height: int
    hash: str
    header: dict[str, Any]
    signatures: list[dict[str, Any]]
    txs: list[str] = Field(description="the block's tx hashes, in order")
    tree_head: dict[str, Any] | None


@router.get(
    "/blocks/{height}",
    summary="A block header, its signatures and its tx hashes",
    response_model=BlockView,
)
def get_block(height: Height, platform: PlatformDep) -> BlockView:
    block = platform.store.get_block(height) if height >= 0 else None
    if block is None:
        raise NotFound("block_not_found", f"no block at height {height}")
    return BlockView(
        height=height,
        hash=block.block_hash.hex(),
        header=block.header_json(),
        signatures=block.signatures,
        txs=[t.tx_hash.hex() for t in platform.store.txs_at(height)],
        tree_head=platform.store.tree_head(height),
    )


class SignatureView(BaseModel):
    signer: str = Field(description="did:key of the member")
    signature: str = Field(description="Ed25519, lowercase hex")


class TreeHeadView(BaseModel):
    """A signed tree head (docs/chain.md, wire format)."""

    tree_size: int
    root: str
    height: int
    block_hash: str
    signatures: list[SignatureView]


class HeadOut(BaseModel):
    chain_id: str
    height: int
    block_hash: str
    state_root: str
    time_ms: int
    log_size: int
    mempool: int = Field(description="txs waiting to be ordered")
    member: str = Field(description="this node's member DID")
    ordering: str
    tree_head: TreeHeadView | None


class InclusionProofOut(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProofOut(BaseModel):
    size1: int
    size2: int
    root1: str
    root2: str
    proof: list[str]


@router.get("/head", summary="The latest block and signed tree head", response_model=HeadOut)
def get_head(platform: PlatformDep) -> dict[str, Any]:
    return {**platform.status(), "tree_head": platform.store.tree_head()}


def _log_index(platform: PlatformDep, tx_hash: bytes) -> int:
    stored = platform.store.get_tx(tx_hash)
    if stored is None:
        raise NotFound("tx_not_found", f"no committed tx {tx_hash.hex()}")
    block = platform.store.get_block(stored.height)
    assert block is not None
    header = block.header_json()
    return int(header["log_size"]) - int(header["tx_count"]) + stored.position


@router.get(
    "/proofs/inclusion/{tx_hash}",
    summary="RFC 6962 inclusion proof in the log tree",
    response_model=InclusionProofOut,
)
def inclusion_proof(
    tx_hash: str,
    platform: PlatformDep,
    size: Annotated[Size | None, Query(description="tree size; default the latest")] = None,
) -> dict[str, Any]:
    digest = _hash_param(tx_hash)
    index = _log_index(platform, digest)
    current = platform.node.head.log_size
    tree_size = current if size is None else size
    if not index < tree_size <= current:
        raise BadRequest("bad_size", f"size must be in {index + 1}..{current} for this tx")
    tree = LogTree(platform.store, current)
    proof = tree.inclusion_proof(index, tree_size)
    return inclusion_to_json(
        leaf_index=index,
        tree_size=tree_size,
        leaf_hash=leaf_hash(digest),
        root=tree.root(tree_size),
        proof=proof,
    )


@router.get(
    "/proofs/consistency",
    summary="RFC 6962 consistency proof between two tree sizes",
    response_model=ConsistencyProofOut,
)
def consistency_proof(
    platform: PlatformDep,
    size_from: Annotated[Size, Query(alias="from")],
    size_to: Annotated[Size, Query(alias="to")],
) -> dict[str, Any]:
    current = platform.node.head.log_size
    if not size_from <= size_to <= current:
        raise BadRequest("bad_size", f"need 1 <= from <= to <= {current}")
    tree = LogTree(platform.store, current)
    return consistency_to_json(
        size1=size_from,
        size2=size_to,
        root1=tree.root(size_from),
        root2=tree.root(size_to),
        proof=tree.consistency_proof(size_from, size_to),
    )

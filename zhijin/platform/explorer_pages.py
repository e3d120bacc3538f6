"""The chain explorer's pages: the head and the signed tree head, the latest blocks, a block
with its transactions, a transaction (its body only for those the read policy lets see it:
`chain_api.tx_view`), and a search by height or hash.  Anyone may open them."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import NotFound
from zhijin.platform.chain_api import tx_view
from zhijin.platform.chain_read import ChainReaderDep
from zhijin.platform.deps import PlatformDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.params import Height
from zhijin.platform.shell import ShellViewer, page_access, render, web_msgid
from zhijin.platform.web import EXPLORER

__all__ = ["router"]

BLOCKS_SHOWN = 10
BLOCK_TXS_SHOWN_MAX = 50
_HASH = re.compile(r"^[0-9a-f]{64}$")
_HEIGHT = re.compile(r"^\d{1,18}$")

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(EXPLORER)]


def _block_row(platform: Any, height: int) -> dict[str, Any] | None:
    block = platform.store.get_block(height)
    if block is None:
        return None
    header = block.header_json()
    return {"height": height, "hash": block.block_hash.hex(), "header": header}


@router.get("/explorer", response_class=HTMLResponse)
def explorer(request: Request, _viewer: Viewer, platform: PlatformDep) -> HTMLResponse:
    status = platform.status()
    height = int(status["height"])
    blocks = [
        row
        for h in range(height, max(-1, height - BLOCKS_SHOWN), -1)
        if (row := _block_row(platform, h)) is not None
    ]
    return render(
        request,
        "explorer/index.html",
        title=EXPLORER.label,
        head=status,
        tree_head=platform.store.tree_head(),
        blocks=blocks,
    )


@router.get("/explorer/search")
def search(
    request: Request,
    _viewer: Viewer,
    platform: PlatformDep,
    q: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    """A height goes to its block, a hash to its transaction (or the block it names)."""
    term = q.strip().lower()
    target = None
    if _HEIGHT.match(term) and platform.store.get_block(int(term)) is not None:
        target = f"/explorer/blocks/{int(term)}"
    elif _HASH.match(term) and platform.store.get_tx(bytes.fromhex(term)) is not None:
        target = f"/explorer/txs/{term}"
    if target is not None:
        return Response(status_code=303, headers={"Location": target})
    return render(request, "explorer/not_found.html", title=EXPLORER.label, term=q, status_code=404)


@router.get("/explorer/blocks/{height}", response_class=HTMLResponse)
def block(request: Request, _viewer: Viewer, platform: PlatformDep, height: Height) -> HTMLResponse:
    row = _block_row(platform, height)
    if row is None:
        raise NotFound("block_not_found", f"no block at height {height}")
    txs = platform.store.txs_at(height)
    return render(
        request,
        "explorer/block.html",
        title=web_msgid("page.block"),
        block=row,
        txs=[t.tx_hash.hex() for t in txs[:BLOCK_TXS_SHOWN_MAX]],
        more=max(0, len(txs) - BLOCK_TXS_SHOWN_MAX),
        tree_head=platform.store.tree_head(height),
    )


@router.get("/explorer/txs/{tx_hash}", response_class=HTMLResponse)
def tx(
    request: Request,
    _viewer: Viewer,
    platform: PlatformDep,
    reader: ChainReaderDep,
    tx_hash: str,
) -> HTMLResponse:
    if not _HASH.match(tx_hash):
        raise NotFound("tx_not_found", "no such transaction")
    stored = platform.store.get_tx(bytes.fromhex(tx_hash))
    if stored is None:
        raise NotFound("tx_not_found", f"no committed tx {tx_hash}")
    view = tx_view(platform, reader, stored)
    body = view.envelope["body"] if view.envelope else None
    return render(request, "explorer/tx.html", title=web_msgid("page.tx"), tx=view, body=body)

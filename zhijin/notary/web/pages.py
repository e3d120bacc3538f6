"""The notary's page: check a document (hashed in the browser, only the hash is sent), notarise
one's own file (hashed in the browser; the hash anchored in the user's name, vouched for by
this member, the receipt offered at once), and verify a receipt against this chain's genesis
(the receipt file uploaded, the document, if given, hashed in the browser).  Reads follow the
chain's read policy, as the API's do."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.notary import limits, service
from zhijin.notary.api import SHA256_PATTERN, anchor_view
from zhijin.notary.expected import NotaryHost
from zhijin.notary.module import ANCHOR_PERMISSION, DOCUMENTS, NOTARISE
from zhijin.notary.receipt import verify_receipt
from zhijin.platform import i18n
from zhijin.platform.chain_read import ChainReaderDep
from zhijin.platform.deps import GatewayDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.shell import (
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["RECEIPT_BYTES_MAX", "router"]

RECEIPT_BYTES_MAX = 256 * 1024  # a receipt is a few kilobytes: one tx, one block, three proofs
UPLOAD_OVERHEAD_BYTES = 4096  # the multipart framing and the document's hash around it

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)


@router.get("/documents", response_class=HTMLResponse)
def documents(
    request: Request, _viewer: Annotated[ShellViewer, page_access(DOCUMENTS)]
) -> HTMLResponse:
    return render(request, "notary/documents.html", title=DOCUMENTS.label)


@router.get("/documents/check", response_class=HTMLResponse)
def check(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(DOCUMENTS)],
    platform: PlatformDep,
    reader: ChainReaderDep,
    hash: Annotated[str, Query(pattern=SHA256_PATTERN)],
) -> HTMLResponse:
    try:
        record = service.lookup(platform.store, hash, now_ms=platform.node.clock())
    except ZhijinError:
        return render(request, "notary/_check.html", title=DOCUMENTS.label, hash=hash, anchor=None)
    return render(
        request,
        "notary/_check.html",
        title=DOCUMENTS.label,
        hash=hash,
        anchor=anchor_view(record, reader, audited=hash),
    )


@router.post("/documents/anchor", response_class=HTMLResponse)
def notarise(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(NOTARISE)],
    platform: PlatformDep,
    gateway: GatewayDep,
    hash: Annotated[str, Form(pattern=f"^$|{SHA256_PATTERN}")] = "",
    title: Annotated[str, Form(max_length=limits.TITLE_CHARS_MAX)] = "",
) -> HTMLResponse:
    """Anchor the signed-in user's file hash in their own name.  `page_access` admitted only
    holders of `document.anchor` (end users, on their own files: the sender is always the
    viewer's DID, so there is no one else's to name); the attempt is audited either way."""
    same_origin(request)
    locale = i18n.request_locale(request)
    host = cast(NotaryHost, platform)  # the root's hosts carry the audit log
    if not hash or viewer.did is None:
        missing = web_text(locale, "documents.choose_file")
        return render(request, "notary/_anchored.html", title=NOTARISE.label, error=missing)
    outcome: str = "ok"
    error: str | None = None
    answer: dict[str, Any] | None = None
    try:
        answer = service.anchor(
            gateway,
            document_hash=hash,
            title=title.strip(),
            sender=viewer.did,
            projections=platform.projections,
        )
    except ZhijinError as exc:
        outcome, error = exc.code, problem_text(locale, exc)
    record = None if answer is None else answer["record"]
    mine = record is not None and record["owner"] == viewer.did
    if answer is not None and not answer["created"]:
        outcome = "exists" if mine else "anchored_by_another"
    host.audit.append(
        actor=f"user:{viewer.user_id}",
        action=ANCHOR_PERMISSION,
        target=f"notary_anchor:{hash}",
        outcome=outcome,
        at_ms=platform.node.clock(),
        details={"height": None if record is None else record["height"]},
    )
    return render(
        request,
        "notary/_anchored.html",
        title=NOTARISE.label,
        error=error,
        record=record,
        created=bool(answer and answer["created"]),
        mine=mine,
    )


@router.post(
    "/documents/verify",
    response_class=HTMLResponse,
    openapi_extra=body_limit(RECEIPT_BYTES_MAX + UPLOAD_OVERHEAD_BYTES),
)
async def verify(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(DOCUMENTS)],
    platform: PlatformDep,
    receipt: Annotated[UploadFile, File()],
    document_sha256: Annotated[str, Form(pattern=f"^$|{SHA256_PATTERN}")] = "",
) -> HTMLResponse:
    same_origin(request)
    locale = i18n.request_locale(request)
    raw = await receipt.read(RECEIPT_BYTES_MAX + 1)
    report: dict[str, Any] | None = None
    error = None
    if len(raw) > RECEIPT_BYTES_MAX:
        error = web_text(locale, "documents.receipt_too_large")
    else:
        try:
            parsed = json.loads(raw)
            report = verify_receipt(
                parsed, platform.genesis, document_sha256=document_sha256 or None
            ).to_json()
        except ValueError:
            error = web_text(locale, "documents.receipt_not_json")
        except ZhijinError as exc:
            error = problem_text(locale, exc)
    return render(
        request, "notary/_verified.html", title=DOCUMENTS.label, report=report, error=error
    )

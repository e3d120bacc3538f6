"""The onboarding journey of an end user with no account: personal data (name, resident ID
checked with python-stdnum's cn.ric, mobile), the KYC submission (an ID document; an SME
owner also the company's name, its unified social credit code and its business licence), the
account request (currency), and the status of each request (pending review by the bank,
opened automatically by the opening policy or by an officer, refused with the reason).

One page, `/onboarding`, shows the step the user is at (derived from what is stored, so a
reload or a second device never loses the place).  Each form is an htmx post: a refusal
re-renders the form with each field's error beside it in the user's language; a success
reloads the page at the next step.  Everything goes through the same services as the API
(`PUT /personal-data`, `POST /kyc`, `POST /account-requests`): RBAC, vault, audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity import limits
from zhijin.identity.expected import AccountOpenings
from zhijin.identity.kyc import KycDocument
from zhijin.identity.module import ONBOARDING
from zhijin.identity.personal import PersonalDataService
from zhijin.identity.rbac import Principal, Role
from zhijin.platform import i18n
from zhijin.platform import limits as platform_limits
from zhijin.platform.errors import InvalidInput
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.shell import (
    ShellViewer,
    htmx_redirect,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["DOCUMENT_TYPES", "needs_onboarding", "router"]

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(ONBOARDING)]
FieldText = Annotated[str, Form(max_length=limits.PERSON_NAME_CHARS_MAX * 4)]
ShortText = Annotated[str, Form(max_length=64)]
Upload = Annotated[UploadFile | None, File()]

# What a document may be, by its first bytes (a declared type alone is the browser's guess).
DOCUMENT_TYPES: Mapping[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
DOCUMENT_BYTES_MAX = platform_limits.VAULT_DOCUMENT_BYTES_MAX
# Two documents and the multipart framing around them.
KYC_FORM_BYTES_MAX = 2 * DOCUMENT_BYTES_MAX + 64 * 1024
ACCOUNT_KINDS = {"individual": ("customer",), "sme_owner": ("customer", "merchant")}
PURPOSES = ("daily", "savings", "salary", "business", "other")
STEPS = ("person", "kyc", "account", "status")


def _principal(viewer: ShellViewer) -> Principal:
    principal = viewer.principal
    assert isinstance(principal, Principal)
    return principal


def _personal(request: Request) -> PersonalDataService:
    personal: PersonalDataService = request.app.state.platform.personal
    return personal


def _openings(request: Request) -> AccountOpenings:
    openings: AccountOpenings = request.app.state.platform.account_openings
    return openings


def _sme(principal: Principal) -> bool:
    return Role.SME_OWNER in principal.roles


def _field_errors(locale: str, exc: ZhijinError) -> dict[str, str]:
    """Each wrong field's message in the user's language (InvalidInput's `errors`), or the
    refusal as a whole under "" when it names no field."""
    listed = exc.details.get("errors")
    if not isinstance(listed, list) or not listed:
        return {"": problem_text(locale, exc)}
    return {
        str(e["field"]): problem_text(locale, InvalidInput(str(e["code"]), str(e["message"])))
        for e in listed
        if isinstance(e, dict)
    }


def needs_onboarding(request: Request, principal: Principal) -> bool:
    """An end user with no account and nothing submitted yet: sign-in leads them here."""
    if principal.member_did is not None:
        return False
    identity = request.app.state.identity
    did = identity.user_did(principal=principal)
    return not _openings(request).holds_accounts(did)


def _state(request: Request, principal: Principal) -> dict[str, Any]:
    kyc = _personal(request).kyc_status(principal=principal)
    requests = list(_openings(request).mine(principal=principal))
    live = [r for r in requests if r["status"] != "rejected"]
    if not kyc.get("personal_data_saved"):
        step = "person"
    elif kyc["status"] in ("none", "rejected"):
        step = "kyc"
    elif not live:
        step = "account"
    else:
        step = "status"
    return {"kyc": kyc, "requests": requests, "step": step}


def _page(
    request: Request,
    viewer: ShellViewer,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    template: str = "identity/onboarding.html",
) -> HTMLResponse:
    principal = _principal(viewer)
    state = _state(request, principal)
    user_kind = "sme_owner" if _sme(principal) else "individual"
    return render(
        request,
        template,
        title=ONBOARDING.label,
        steps=STEPS,
        errors=errors or {},
        values=values or {},
        sme=_sme(principal),
        currencies=_openings(request).currencies(),
        kinds=ACCOUNT_KINDS[user_kind],
        purposes=PURPOSES,
        document_types=", ".join(DOCUMENT_TYPES),
        **state,
    )


@router.get("/onboarding", response_class=HTMLResponse)
def onboarding(request: Request, viewer: Viewer) -> HTMLResponse:
    return _page(request, viewer)


# -- step 1: personal data --------------------------------------------------------------------


@router.post("/onboarding/person", response_class=HTMLResponse)
def save_person(
    request: Request,
    viewer: Viewer,
    name: FieldText = "",
    resident_id: ShortText = "",
    mobile: ShortText = "",
) -> Response:
    same_origin(request)
    try:
        _personal(request).save_person(
            principal=_principal(viewer), name=name, resident_id=resident_id, mobile=mobile
        )
    except ZhijinError as exc:
        return _page(
            request,
            viewer,
            errors=_field_errors(i18n.request_locale(request), exc),
            values={"name": name, "resident_id": resident_id, "mobile": mobile},
            template="identity/_onboarding_person.html",
        )
    return htmx_redirect(request, "/onboarding")


# -- step 2: KYC ------------------------------------------------------------------------------


async def _document(
    locale: str, upload: UploadFile | None, *, field: str, kind: str, errors: dict[str, str]
) -> KycDocument | None:
    """The uploaded file as a KYC document, or None with its field's error recorded."""
    if upload is None or not upload.filename:
        errors[field] = web_text(locale, "onboarding.document_required")
        return None
    content = await upload.read(DOCUMENT_BYTES_MAX + 1)
    if len(content) > DOCUMENT_BYTES_MAX:
        errors[field] = web_text(
            locale, "onboarding.document_too_large", size_mb=DOCUMENT_BYTES_MAX // (1 << 20)
        )
        return None
    media_type = (upload.content_type or "").split(";")[0].strip().lower()
    magics = DOCUMENT_TYPES.get(media_type, ())
    if not content or not any(content.startswith(magic) for magic in magics):
        errors[field] = web_text(locale, "onboarding.document_type")
        return None
    return KycDocument(kind, media_type, content)


@router.post(
    "/onboarding/kyc",
    response_class=HTMLResponse,
    openapi_extra=body_limit(KYC_FORM_BYTES_MAX),
)
async def submit_kyc(
    request: Request,
    viewer: Viewer,
    id_document: Upload = None,
    licence: Upload = None,
    company_name: Annotated[str, Form(max_length=limits.COMPANY_NAME_CHARS_MAX * 2)] = "",
    uscc: ShortText = "",
) -> Response:
    same_origin(request)
    locale = i18n.request_locale(request)
    principal = _principal(viewer)
    personal = _personal(request)
    errors: dict[str, str] = {}
    documents = [
        await _document(locale, id_document, field="id_document", kind="id_card", errors=errors)
    ]
    if _sme(principal):
        documents.append(
            await _document(
                locale, licence, field="licence", kind="business_licence", errors=errors
            )
        )
    values = {"company_name": company_name, "uscc": uscc}
    try:
        if _sme(principal):
            # Checked with the documents, so every wrong field shows at once.
            personal.save_business(principal=principal, company_name=company_name, uscc=uscc)
        if not errors:
            personal.submit_kyc(
                principal=principal,
                member_did=request.app.state.platform.node.key.did,
                documents=[d for d in documents if d is not None],
            )
    except ZhijinError as exc:
        errors = {**_field_errors(locale, exc), **errors}
    if errors:
        return _page(
            request,
            viewer,
            errors=errors,
            values=values,
            template="identity/_onboarding_kyc.html",
        )
    return htmx_redirect(request, "/onboarding")


# -- step 3: the account request --------------------------------------------------------------


@router.post("/onboarding/account", response_class=HTMLResponse)
def request_account(
    request: Request,
    viewer: Viewer,
    currency: Annotated[str, Form(max_length=8)] = "",
    kind: Annotated[str, Form(max_length=16)] = "customer",
    purpose: Annotated[str, Form(max_length=16)] = "daily",
) -> Response:
    same_origin(request)
    try:
        _openings(request).request(
            principal=_principal(viewer),
            currency=currency.strip().upper(),
            kind=kind,
            purpose=purpose,
        )
    except ZhijinError as exc:
        return _page(
            request,
            viewer,
            errors=_field_errors(i18n.request_locale(request), exc),
            values={"currency": currency, "kind": kind, "purpose": purpose},
            template="identity/_onboarding_account.html",
        )
    return htmx_redirect(request, "/onboarding")


# -- step 4: where each request is ------------------------------------------------------------


@router.get("/onboarding/status", response_class=HTMLResponse)
def status_part(request: Request, viewer: Viewer) -> HTMLResponse:
    """The status part alone (its refresh button re-reads it)."""
    return _page(request, viewer, template="identity/_onboarding_status.html")


@router.get("/onboarding/requests/{user_id}/{request_id}", response_class=HTMLResponse)
def one_request(
    request: Request,
    viewer: Viewer,
    user_id: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")],
    request_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
) -> HTMLResponse:
    """One request's own page (a link a customer keeps): payments refuses another's."""
    principal = _principal(viewer)
    found = _openings(request).one(principal=principal, user_id=user_id, request_id=request_id)
    kyc = _personal(request).kyc_status(principal=principal)
    return render(
        request, "identity/onboarding_request.html", title=ONBOARDING.label, r=found, kyc=kyc
    )

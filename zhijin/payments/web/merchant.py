"""The SME owner's merchant view: a collection QR code for one of their accounts, the payments
received with the payers' masked names, daily totals, refunds linked to the payment they give
back (never more than remains of it) and the settlement report to download.

    GET  /merchant?account&from_date&to_date    the view (local days; the last 30 by default)
    POST /merchant/requests                     a collection QR code / payment link (htmx)
    POST /merchant/refunds                      refund one payment, in part or in full (htmx)

Each reads or writes through the API's own functions (`api_people`): the QR is the API's
(segno), a refund is `api_people.refund` (its claim against the original's remainder in one
conditional UPDATE, then the normal transfer path with its step-up policy).
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.identity.errors import StepUpRequired
from zhijin.identity.web.stepup import step_up_reasons
from zhijin.payments import api_people, collect, limits, service
from zhijin.payments import people_schemas as schemas
from zhijin.payments.expected import PaymentsHost, PaymentsHostDep
from zhijin.payments.module import MERCHANT
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.payments.web.common import (
    caller_of,
    my_accounts,
    parse_amount,
    parse_day,
)
from zhijin.platform import i18n
from zhijin.platform.deps import GatewayDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    HTML_LANG,
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["EXPIRY_CHOICES_MS", "router"]

INCOMING_PAGE = 25
# The lifetimes a collection QR code may be given on the page (all within the API's limits):
# a checkout's quarter of an hour, a day, and a month for a QR printed at the counter.
EXPIRY_CHOICES_MS = (15 * 60 * 1000, 24 * 3600 * 1000, 30 * 24 * 3600 * 1000)
router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(MERCHANT)]
DayText = Annotated[str, Query(max_length=10)]


def collection_accounts(platform: PaymentsHost, viewer: ShellViewer) -> list[dict[str, Any]]:
    """The viewer's open accounts that can be paid (merchant accounts first)."""
    accounts = [
        a
        for a in my_accounts(platform, viewer)
        if a["kind"] in collect.PAYABLE_KINDS and a["status"] == "open"
    ]
    return sorted(accounts, key=lambda a: (a["kind"] != "merchant", a["id"]))


def _chosen(accounts: list[dict[str, Any]], account_id: str) -> dict[str, Any] | None:
    if not account_id:
        return accounts[0] if accounts else None
    found = next((a for a in accounts if a["id"] == account_id), None)
    if found is None:
        raise NotFound("account_not_found", "choose one of your collection accounts")
    return found


@router.get("/merchant", response_class=HTMLResponse)
def merchant_page(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    account: Annotated[str, Query(max_length=limits.ID_CHARS_MAX)] = "",
    from_date: DayText = "",
    to_date: DayText = "",
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    accounts = collection_accounts(platform, viewer)
    chosen = _chosen(accounts, account.strip())
    period = {"from_date": from_date.strip(), "to_date": to_date.strip()}
    context: dict[str, Any] = {"payments": [], "older": None, "days": [], "error": None}
    if chosen is not None:
        context.update(_views(request, platform, chosen, period, before))
    query = {k: v for k, v in period.items() if v}
    if chosen is not None:
        query["account_id"] = chosen["id"]
    locale = i18n.request_locale(request)
    settlement = "/api/v1/merchant/settlement.csv?" + urlencode(
        {**query, "lang": HTML_LANG[locale]}
    )
    template = "payments/_incoming_rows.html" if before is not None else "payments/merchant.html"
    return render(
        request,
        template,
        title=MERCHANT.label,
        accounts=accounts,
        account=chosen,
        period=period,
        older_query=urlencode({"account": chosen["id"], **period} if chosen else period),
        settlement_url=settlement,
        expiry_choices=EXPIRY_CHOICES_MS,
        refund_id=lambda: "rf-" + secrets.token_hex(12),
        **context,
    )


def _views(
    request: Request,
    platform: PaymentsHost,
    account: dict[str, Any],
    period: dict[str, str],
    before: int | None,
) -> dict[str, Any]:
    """Incoming payments (a page) and the daily totals of the period, or what was wrong with
    the period."""
    guard, caller = caller_of(request)
    try:
        first, last = parse_day(period["from_date"]), parse_day(period["to_date"])
        incoming = api_people.merchant_incoming(
            account["id"],
            platform,
            caller,
            guard,
            from_date=first,
            to_date=last,
            before_entry=before,
            limit=INCOMING_PAGE,
        )
        daily = api_people.merchant_daily(
            account["id"], platform, caller, guard, from_date=first, to_date=last
        )
    except ZhijinError as exc:
        return {"error": problem_text(i18n.request_locale(request), exc)}
    return {
        "payments": incoming["payments"],
        "older": incoming["next_before_entry"],
        "days": sorted(daily["days"], key=lambda day: day["date"], reverse=True),
    }


# -- a collection QR code ----------------------------------------------------------------------


@router.post("/merchant/requests", response_class=HTMLResponse)
def create_request(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    account_id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)],
    amount: Annotated[str, Form(max_length=48)] = "",
    memo: Annotated[str, Form(max_length=limits.PAYMENT_REQUEST_MEMO_CHARS_MAX * 2)] = "",
    expires_in_ms: Annotated[int, Form()] = EXPIRY_CHOICES_MS[0],
    reusable: Annotated[str, Form(max_length=2)] = "",
) -> HTMLResponse:
    """A payment request for one of the viewer's accounts, shown as its QR code (the API's
    segno SVG, as an image) and its link."""
    same_origin(request)
    locale = i18n.request_locale(request)
    guard, caller = caller_of(request)
    try:
        account = _chosen(collection_accounts(platform, viewer), account_id.strip())
        if account is None or expires_in_ms not in EXPIRY_CHOICES_MS:
            raise NotFound("account_not_found", "choose one of your collection accounts")
        fixed = parse_amount(amount, int(account["exponent"])) if amount.strip() else None
        body = schemas.PaymentRequestIn(
            account_id=account["id"],
            amount=fixed,
            memo=memo.strip() or None,
            expires_in_ms=expires_in_ms,
            single_use=reusable != "1",
        )
        created = api_people.create_payment_request(request, body, platform, caller, guard)
    except (ZhijinError, ValidationError) as exc:
        error = (
            problem_text(locale, exc)
            if isinstance(exc, ZhijinError)
            else web_text(locale, "merchant.request_invalid")
        )
        return render(request, "payments/_merchant_qr.html", title=MERCHANT.label, error=error)
    svg = collect.qr_svg(created["link"])
    return render(
        request,
        "payments/_merchant_qr.html",
        title=MERCHANT.label,
        error=None,
        created=created,
        qr="data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii"),
    )


# -- refunds -----------------------------------------------------------------------------------


@router.post("/merchant/refunds", response_class=HTMLResponse)
def refund(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)],
    original: Annotated[str, Form(max_length=limits.TRANSFER_ID_CHARS_MAX)],
    amount: Annotated[str, Form(max_length=48)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
) -> HTMLResponse:
    """Refund a payment received: the amount typed, or (empty) all that remains of it.  The
    cap holds in `api_people.refund` (a refund never exceeds what remains of the original)."""
    same_origin(request)
    locale = i18n.request_locale(request)
    form = {"id": id, "original": original, "amount": amount.strip()}
    guard, caller = caller_of(request)
    try:
        transfer = _original(platform, original)
        minor = None
        if form["amount"]:
            minor = parse_amount(form["amount"], _exponent(platform, transfer))
        if code.strip():
            assert caller.principal is not None
            guard.identity.step_up(principal=caller.principal, totp_code=code.strip())
            guard, caller = caller_of(request)
        body = schemas.RefundIn(id=id, original_transfer_id=original, amount=minor)
        result = api_people.refund(body, Response(), platform, gateway, caller, guard)
    except StepUpRequired as exc:
        return render(
            request,
            "payments/_refund_form.html",
            title=MERCHANT.label,
            form=form,
            error=None,
            step_up=step_up_reasons(locale, exc),
            enrol=exc.code == "mfa_enrolment_required"
            or exc.details.get("has_authenticator") is False,
        )
    except (ZhijinError, ValidationError) as exc:
        error = (
            problem_text(locale, exc)
            if isinstance(exc, ZhijinError)
            else web_text(locale, "merchant.refund_invalid")
        )
        return render(
            request,
            "payments/_refund_form.html",
            title=MERCHANT.label,
            form=form,
            error=error,
            step_up=None,
            enrol=False,
        )
    return render(request, "payments/_refunded.html", title=MERCHANT.label, result=result)


def _original(platform: PaymentsHost, transfer_id: str) -> dict[str, Any]:
    try:
        return service.get_transfer(platform, transfer_id=transfer_id)
    except NotFound:
        raise refused(PeopleCode.REFUND_ORIGINAL_NOT_FOUND) from None


def _exponent(platform: PaymentsHost, transfer: dict[str, Any]) -> int:
    account = service.get_account(platform, account_id=transfer["credit_account_id"])
    return int(account["exponent"])

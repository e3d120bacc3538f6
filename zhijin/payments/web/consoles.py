"""Payments' staff consoles: the officer's account requests (opened only by an officer other
than the one who approved the customer's KYC: four eyes) and the member's accounts (freeze,
unfreeze, the IBAN); the auditor's trial balance per currency (and its CSV), checked against
the chain as a job; and the step-up policy's preview against recent payments.

Every action goes through the same calls as the API (`AccountOpening`, the account routes'
`authorized_account`), so RBAC with scope, separation of duties and the audit log apply as
they do there.  A page offers an action only to whom it would admit: a request the viewer may
not open shows why instead of a button (`AccountOpening.approval_blocker`).
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity.guard import Caller, Guard, get_guard
from zhijin.identity.module import STEP_UP_POLICY
from zhijin.identity.rbac import Permission, Principal
from zhijin.identity.stepup import parse_policy
from zhijin.identity.web.consoles import POLICY_CHARS_MAX, policy_json
from zhijin.payments import limits, service
from zhijin.payments.api import authorized_account
from zhijin.payments.expected import PaymentsHost, PaymentsHostDep
from zhijin.payments.module import ACCOUNT_REQUESTS, LEDGER, MEMBER_ACCOUNTS
from zhijin.payments.opening import AccountOpening
from zhijin.payments.opening_store import AccountRequest, RequestStatus
from zhijin.payments.policy_preview import PREVIEW_PAYMENTS_MAX, PastPayment, preview
from zhijin.platform import i18n, jobs
from zhijin.platform.deps import GatewayDep
from zhijin.platform.errors import Forbidden
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["router"]

log = logging.getLogger("zhijin.payments.web")

ROWS_SHOWN = 25
REQUEST_STATUSES = tuple(status.value for status in RequestStatus)

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
UserId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
RequestId = Annotated[str, Path(pattern=limits.ID_PATTERN)]
AccountId = Annotated[str, Path(pattern=limits.ID_PATTERN)]


def _principal(viewer: ShellViewer) -> Principal:
    principal = viewer.principal
    assert isinstance(principal, Principal)
    return principal


def _error(request: Request, exc: ZhijinError) -> str:
    return problem_text(i18n.request_locale(request), exc)


def _caller(request: Request) -> tuple[Guard, Caller]:
    guard = get_guard(request)
    return guard, guard.caller(request)


# -- the officer's account requests --------------------------------------------------------------


def _request_row(
    opening: AccountOpening, principal: Principal, request: AccountRequest
) -> dict[str, Any]:
    blocker = None
    if request.status in (RequestStatus.PENDING, RequestStatus.APPROVED):
        blocker = opening.approval_blocker(principal=principal, request=request)
    return {
        "user_id": request.user_id,
        "id": request.request_id,
        "currency": request.currency,
        "kind": request.kind,
        "purpose": request.purpose,
        "status": str(request.status),
        "created_ms": request.created_ms,
        "account_id": request.account_id if request.status is RequestStatus.OPENED else None,
        "reason": request.reason,
        "blocker": blocker,
    }


@router.get("/staff/account-requests", response_class=HTMLResponse)
def account_requests(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(ACCOUNT_REQUESTS)],
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    status: Annotated[str, Query(max_length=16)] = "pending",
    after: Annotated[str | None, Query(max_length=limits.ACCOUNT_REQUEST_CURSOR_CHARS_MAX)] = None,
) -> HTMLResponse:
    opening = AccountOpening(platform, gateway)
    principal = _principal(viewer)
    error = None
    items: list[AccountRequest] = []
    if status not in REQUEST_STATUSES:
        error = web_text(i18n.request_locale(request), "console.bad_status")
        status = "pending"
    try:
        items = opening.page(
            principal=principal,
            user_id=None,
            status=RequestStatus(status),
            after=after,
            limit=ROWS_SHOWN,
        )
    except ZhijinError as exc:
        error = _error(request, exc)
    return render(
        request,
        "payments/account_requests.html",
        title=ACCOUNT_REQUESTS.label,
        rows=[_request_row(opening, principal, item) for item in items],
        status=status,
        statuses=REQUEST_STATUSES,
        next=items[-1].cursor if len(items) == ROWS_SHOWN else None,
        error=error,
        limits=limits,
        status_code=422 if error else 200,
    )


def _decision_row(
    request: Request,
    opening: AccountOpening,
    principal: Principal,
    user_id: str,
    request_id: str,
    *,
    error: str | None,
    done: str | None,
) -> HTMLResponse:
    row = opening.store.get(user_id, request_id)
    return render(
        request,
        "payments/_request_row.html",
        title=ACCOUNT_REQUESTS.label,
        row=None if row is None else _request_row(opening, principal, row),
        error=error,
        done=done,
        limits=limits,
    )


@router.post("/staff/account-requests/{user_id}/{request_id}/approve", response_class=HTMLResponse)
def approve_request(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(ACCOUNT_REQUESTS)],
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    user_id: UserId,
    request_id: RequestId,
) -> HTMLResponse:
    same_origin(request)
    opening = AccountOpening(platform, gateway)
    principal = _principal(viewer)
    try:
        opening.approve(principal=principal, user_id=user_id, request_id=request_id)
    except ZhijinError as exc:
        return _decision_row(
            request,
            opening,
            principal,
            user_id,
            request_id,
            error=_error(request, exc),
            done=None,
        )
    return _decision_row(
        request, opening, principal, user_id, request_id, error=None, done="opened"
    )


@router.post("/staff/account-requests/{user_id}/{request_id}/reject", response_class=HTMLResponse)
def reject_request(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(ACCOUNT_REQUESTS)],
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    user_id: UserId,
    request_id: RequestId,
    reason: Annotated[str, Form(max_length=limits.ACCOUNT_REQUEST_REASON_CHARS_MAX * 2)] = "",
) -> HTMLResponse:
    same_origin(request)
    opening = AccountOpening(platform, gateway)
    principal = _principal(viewer)
    try:
        opening.reject(principal=principal, user_id=user_id, request_id=request_id, reason=reason)
    except ZhijinError as exc:
        return _decision_row(
            request, opening, principal, user_id, request_id, error=_error(request, exc), done=None
        )
    return _decision_row(
        request, opening, principal, user_id, request_id, error=None, done="rejected"
    )


# -- the member's accounts -----------------------------------------------------------------------


def _account_row(platform: PaymentsHost, account: dict[str, Any]) -> dict[str, Any]:
    iban = service.account_iban(platform, account_id=account["id"])["iban"]
    return {**account, "iban": iban}


@router.get("/staff/accounts", response_class=HTMLResponse)
def member_accounts(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(MEMBER_ACCOUNTS)],
    platform: PaymentsHostDep,
    after: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    scope = guard.list_scope(caller, permission=Permission.ACCOUNT_READ)
    page = service.list_accounts(
        platform,
        owner=scope.owner,
        custodian=scope.member_did,
        after_id=after,
        limit=ROWS_SHOWN,
    )
    return render(
        request,
        "payments/member_accounts.html",
        title=MEMBER_ACCOUNTS.label,
        accounts=[_account_row(platform, a) for a in page["accounts"]],
        next=page["next_after_id"],
        can_set_status=Permission.ACCOUNT_STATUS in viewer.permissions,
    )


@router.post("/staff/accounts/{account_id}/status", response_class=HTMLResponse)
def set_status(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(MEMBER_ACCOUNTS)],
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    account_id: AccountId,
    status: Annotated[str, Form(pattern="^(open|frozen)$")],
) -> HTMLResponse:
    """Freeze or unfreeze (closing is not offered here: it is final, and has its own API)."""
    same_origin(request)
    error = None
    try:
        guard, caller = _caller(request)
        authorized_account(guard, caller, platform, account_id, Permission.ACCOUNT_STATUS)
        _set_status(platform, gateway, account_id, status)
    except ZhijinError as exc:
        error = _error(request, exc)
    account = service.get_account(platform, account_id=account_id)
    return render(
        request,
        "payments/_account_row.html",
        title=MEMBER_ACCOUNTS.label,
        account=_account_row(platform, account),
        error=error,
        can_set_status=Permission.ACCOUNT_STATUS in viewer.permissions,
    )


def _set_status(
    platform: PaymentsHost, gateway: MemberGateway, account_id: str, status: str
) -> None:
    result = service.set_account_status(platform, gateway, account_id=account_id, status=status)
    log.info(
        "account status set from the console",
        extra={"account": account_id, "status": status, "exists": bool(result.get("exists"))},
    )


# -- the auditor's trial balance -----------------------------------------------------------------


def _auditor_scope(request: Request) -> None:
    """The trial balance is the whole ledger's: only an `all` grant of account.read."""
    guard, caller = _caller(request)
    scope = guard.list_scope(caller, permission=Permission.ACCOUNT_READ)
    if scope.member_did is not None or scope.owner is not None:
        raise Forbidden("out_of_scope", "the trial balance is for the whole ledger's readers")


@router.get("/staff/ledger", response_class=HTMLResponse)
def ledger(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(LEDGER)],
    platform: PaymentsHostDep,
) -> HTMLResponse:
    _auditor_scope(request)
    balance = service.trial_balance(platform, source="projection")
    return render(
        request,
        "payments/ledger.html",
        title=LEDGER.label,
        balance=balance,
        read_only=True,
    )


COUNTERS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@router.get("/staff/ledger.csv")
def ledger_csv(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(LEDGER)],
    platform: PaymentsHostDep,
) -> Response:
    """The trial balance per currency: counters in minor units (exact integers) and as the
    decimal amounts they are, and whether debits equal credits."""
    _auditor_scope(request)
    balance = service.trial_balance(platform, source="projection")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("currency", "accounts", *COUNTERS, "balanced", "height"))
    for line in balance["currencies"]:
        writer.writerow(
            (
                line["currency"],
                line["accounts"],
                *(line[name] for name in COUNTERS),
                "true" if line["balanced"] else "false",
                balance.get("height"),
            )
        )
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="trial-balance.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/staff/ledger/verify", response_class=HTMLResponse)
def ledger_verify(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(LEDGER)],
    platform: PaymentsHostDep,
) -> HTMLResponse:
    """The trial balance from committed chain state (every account), as a job: the auditor's
    check that the query tables tell the truth."""
    same_origin(request)
    _auditor_scope(request)

    def work(progress: jobs.Progress) -> dict[str, Any]:
        progress(0, None)
        result = service.trial_balance(platform, source="chain")
        progress(1, 1)
        return result

    job = jobs.registry_of(request.app.state).start(
        kind="trial_balance_chain",
        owner=str(viewer.user_id),
        template="payments/_ledger_verified.html",
        work=work,
    )
    return render(request, "shell/_job.html", title=LEDGER.label, job=job)


# -- the step-up policy's preview ----------------------------------------------------------------


@router.post("/staff/policy/preview", response_class=HTMLResponse)
def policy_preview(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STEP_UP_POLICY)],
    platform: PaymentsHostDep,
    policy: Annotated[str, Form(max_length=POLICY_CHARS_MAX)],
) -> HTMLResponse:
    """How the draft in the editor and the policy in force would have answered the latest
    payments (payments/policy_preview.py says what is assumed)."""
    same_origin(request)
    locale = i18n.request_locale(request)
    identity = get_guard(request).identity
    current = identity.current_policy()
    identity.policy_body(principal=_principal(viewer))  # policy.read, as the page needs
    try:
        draft = parse_policy(policy_json(locale, policy))
    except ZhijinError as exc:
        message = exc.message if exc.code == "policy_not_json" else _error(request, exc)
        return render(
            request, "payments/_policy_preview.html", title=STEP_UP_POLICY.label, error=message
        )
    rows = service.recent_customer_payments(platform, limit=PREVIEW_PAYMENTS_MAX)
    payments = [
        PastPayment(
            debit_account_id=row["debit_account_id"],
            credit_account_id=row["credit_account_id"],
            amount_minor=int(row["amount"]),
            currency=row["currency"],
            exponent=int(row["exponent"]),
            time_ms=int(row["time_ms"]),
        )
        for row in rows
    ]
    now, then = preview(current, payments), preview(draft, payments)
    return render(
        request,
        "payments/_policy_preview.html",
        title=STEP_UP_POLICY.label,
        error=None,
        current=now,
        draft=then,
        current_version=current.version,
        draft_version=draft.version,
    )

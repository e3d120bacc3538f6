"""Identity's staff consoles: the KYC review queue, personal-data reads with a justification,
the audit log (filters, pages, CSV, its verification), the staff and their roles, and the
step-up policy.

Each page admits whom its `NavEntry` names (identity/module.py) and then acts through the same
service calls as the API, so RBAC with scope, separation of duties and the audit log apply
exactly as they do there.  A page offers only what the viewer may do: an action their roles do
not grant is not shown (the role a policy forbids is not in the grant list, one's own row has
no role buttons), and a refusal that still comes (a race, a stale page) is shown in the form,
translated.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity import limits
from zhijin.identity.anchoring import anchored_heads, audit_verify_json, confirmed_heads
from zhijin.identity.contracts import PURPOSES
from zhijin.identity.expected import IdentityHost
from zhijin.identity.module import AUDIT_LOG, KYC_QUEUE, PERSONAL_DATA, STAFF_ADMIN, STEP_UP_POLICY
from zhijin.identity.personal import FIELD_CATEGORIES, PersonalDataService
from zhijin.identity.rbac import STAFF_ROLES, Permission, Principal, Resource, Role
from zhijin.identity.service import IdentityService
from zhijin.identity.web import get_identity
from zhijin.platform import i18n, jobs
from zhijin.platform.audit import AuditEntry
from zhijin.platform.catalogs import problem_msgid
from zhijin.platform.errors import InvalidInput
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_msgid,
    web_text,
)

__all__ = ["audit_filters", "mask", "router"]

log = logging.getLogger("zhijin.identity.web")

ROWS_SHOWN = 25
_ZONE = ZoneInfo(i18n.DISPLAY_ZONE)
KYC_STATUSES = ("pending", "approved", "rejected")

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
UserId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Cursor = Annotated[str | None, Query(max_length=limits.CURSOR_CHARS_MAX)]
Reason = Annotated[str, Form(max_length=limits.KYC_REVIEW_REASON_CHARS_MAX * 2)]


def _principal(viewer: ShellViewer) -> Principal:
    principal = viewer.principal
    assert isinstance(principal, Principal)
    return principal


def _personal(request: Request) -> PersonalDataService:
    personal: PersonalDataService = request.app.state.platform.personal
    return personal


def _locale(request: Request) -> str:
    return i18n.request_locale(request)


def _error(request: Request, exc: ZhijinError) -> str:
    return problem_text(_locale(request), exc)


def mask(value: str) -> str:
    """A value as a masked preview: its first and last character, the rest hidden (one
    character or two: all hidden but the first)."""
    if len(value) <= 2:
        return value[:1] + "*" * (len(value) - 1)
    return value[0] + "*" * (len(value) - 2) + value[-1]


# -- the KYC review queue ------------------------------------------------------------------------


@router.get("/staff/kyc", response_class=HTMLResponse)
def kyc_queue(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(KYC_QUEUE)],
    status: Annotated[str, Query(max_length=16)] = "pending",
    after: Cursor = None,
) -> HTMLResponse:
    error = None
    cases: list[dict[str, Any]] = []
    if status not in KYC_STATUSES:
        error = web_text(_locale(request), "console.bad_status")
        status = "pending"
    try:
        cases = _personal(request).kyc_queue(
            principal=_principal(viewer), status=status, after=after, limit=ROWS_SHOWN
        )
    except ZhijinError as exc:
        error = _error(request, exc)
    return render(
        request,
        "identity/kyc_queue.html",
        title=KYC_QUEUE.label,
        cases=cases,
        status=status,
        statuses=KYC_STATUSES,
        next=cases[-1]["cursor"] if len(cases) == ROWS_SHOWN else None,
        error=error,
        status_code=422 if error else 200,
    )


@router.post("/staff/kyc/{user_id}/review", response_class=HTMLResponse)
def kyc_review(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(KYC_QUEUE)],
    user_id: UserId,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Reason = "",
) -> HTMLResponse:
    same_origin(request)
    personal = _personal(request)
    case = personal.identity.store.kyc_case(user_id)
    try:
        status = personal.review_kyc(
            principal=_principal(viewer),
            subject_user_id=user_id,
            approve=decision == "approve",
            reason=reason,
        )
    except ZhijinError as exc:
        return _kyc_row(request, case, user_id, reason=reason, error=_error(request, exc))
    log.info("kyc reviewed from the console", extra={"subject": user_id, "status": status})
    reviewed = personal.identity.store.kyc_case(user_id)
    return _kyc_row(request, reviewed, user_id, reason=reason, decided=status)


def _kyc_row(
    request: Request,
    case: dict[str, Any] | None,
    user_id: str,
    *,
    reason: str,
    error: str | None = None,
    decided: str | None = None,
) -> HTMLResponse:
    """The queue's row for one case, after a review (`decided`) or its refusal (`error`)."""
    return render(
        request,
        "identity/_kyc_row.html",
        title=KYC_QUEUE.label,
        case=_case_row(case, user_id),
        error=error,
        reason=reason,
        decided=decided,
    )


def _case_row(case: dict[str, Any] | None, user_id: str) -> dict[str, Any]:
    if case is None:
        return {"user_id": user_id, "status": "none", "submitted_ms": None}
    return {
        "user_id": user_id,
        "status": case["status"],
        "submitted_ms": case["submitted_ms"],
        "commitment": case["commitment"],
    }


# -- personal data -------------------------------------------------------------------------------

READABLE_FIELDS = tuple(name for name in FIELD_CATEGORIES)
FIELD_LABELS = {
    "name": web_msgid("person.name"),
    "resident_id": web_msgid("person.resident_id"),
    "birth_date": web_msgid("person.birth_date"),
    "mobile": web_msgid("person.mobile"),
    "kyc_level": web_msgid("person.kyc_level"),
}


@router.get("/staff/personal-data", response_class=HTMLResponse)
def personal_data_page(
    request: Request, viewer: Annotated[ShellViewer, page_access(PERSONAL_DATA)]
) -> HTMLResponse:
    return _personal_form(
        request,
        "identity/personal_data.html",
        form={"user_id": "", "purpose": "", "justification": "", "fields": ()},
    )


def _personal_form(
    request: Request,
    template: str,
    *,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    error: str | None = None,
    revealed: dict[str, str] | None = None,
) -> HTMLResponse:
    """The read form (the page, or its part after a read), with what was revealed: each
    value beside its masked preview."""
    return render(
        request,
        template,
        title=PERSONAL_DATA.label,
        fields=READABLE_FIELDS,
        labels=FIELD_LABELS,
        purposes=sorted(PURPOSES),
        form=form,
        errors=errors or {},
        error=error,
        revealed=None
        if revealed is None
        else [(name, mask(value), value) for name, value in revealed.items()],
        limits=limits,
        status_code=422 if errors else 200,
    )


@router.post("/staff/personal-data/read", response_class=HTMLResponse)
def personal_data_read(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(PERSONAL_DATA)],
    user_id: Annotated[str, Form(max_length=80)],
    purpose: Annotated[str, Form(max_length=limits.CONSENT_NAME_CHARS_MAX * 2)],
    justification: Annotated[str, Form(max_length=limits.JUSTIFICATION_CHARS_MAX * 2)],
    fields: Annotated[list[str] | None, Form(max_length=len(FIELD_CATEGORIES))] = None,
) -> HTMLResponse:
    """Read with a justification (always asked here, whatever the role: the reason is what a
    later review of the audit log reads); the read is audited by the service."""
    same_origin(request)
    locale = _locale(request)
    chosen = tuple(f for f in (fields or ()) if f in FIELD_CATEGORIES)
    form: dict[str, Any] = {
        "user_id": user_id.strip(),
        "purpose": purpose.strip(),
        "justification": justification.strip(),
        "fields": chosen,
    }
    errors = _personal_form_errors(locale, form)
    revealed: dict[str, str] | None = None
    error = None
    if not errors:
        try:
            revealed = _personal(request).read_person(
                principal=_principal(viewer),
                subject_user_id=form["user_id"],
                fields=list(chosen),
                purpose=form["purpose"],
                justification=form["justification"],
            )
        except ZhijinError as exc:
            error = _error(request, exc)
    return _personal_form(
        request,
        "identity/_personal_form.html",
        form=form,
        errors=errors,
        error=error,
        revealed=revealed,
    )


def _personal_form_errors(locale: str, form: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not form["user_id"] or len(form["user_id"]) > 40 or not form["user_id"].isascii():
        errors["user_id"] = web_text(locale, "personal.user_id_invalid")
    if not form["fields"]:
        errors["fields"] = web_text(locale, "personal.fields_required")
    if form["purpose"] not in PURPOSES:
        errors["purpose"] = web_text(locale, "personal.purpose_invalid")
    if not (
        limits.JUSTIFICATION_CHARS_MIN
        <= len(form["justification"])
        <= limits.JUSTIFICATION_CHARS_MAX
    ):
        errors["justification"] = web_text(
            locale,
            "personal.justification_invalid",
            min=limits.JUSTIFICATION_CHARS_MIN,
            max=limits.JUSTIFICATION_CHARS_MAX,
        )
    return errors


# -- the audit log -------------------------------------------------------------------------------


def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=_ZONE).timestamp() * 1000)


def audit_filters(
    locale: str, *, actor: str, action: str, from_day: str, to_day: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The audit page's filters as the search takes them, and a translated error per field a
    person typed wrong (a date that is not YYYY-MM-DD, a range that ends before it starts)."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {
        "actor": actor.strip() or None,
        "action": action.strip() or None,
        "from_ms": None,
        "to_ms": None,
    }
    for name, value in (("actor", parsed["actor"]), ("action", parsed["action"])):
        if value is not None and (len(value) > 200 or not value.isprintable()):
            errors[name] = web_text(locale, "audit.filter_invalid")
    days: dict[str, date] = {}
    for name, text in (("from", from_day.strip()), ("to", to_day.strip())):
        if not text:
            continue
        try:
            days[name] = date.fromisoformat(text)
        except ValueError:
            errors[name] = web_text(locale, "audit.date_invalid")
            continue
        if len(text) != 10:
            errors[name] = web_text(locale, "audit.date_invalid")
    if "from" in days and "to" in days and days["to"] < days["from"]:
        errors["to"] = web_text(locale, "audit.range_invalid")
    if "from" in days and "from" not in errors:
        parsed["from_ms"] = _day_start_ms(days["from"])
    if "to" in days and "to" not in errors and days["to"] < date.max:
        parsed["to_ms"] = _day_start_ms(days["to"] + timedelta(days=1))  # the day included
    return parsed, errors


def _member(request: Request) -> str:
    host: IdentityHost = request.app.state.platform
    return host.node.key.did


AuditText = Annotated[str, Query(max_length=400)]
AuditDay = Annotated[str, Query(alias="from", max_length=32)]
AuditTo = Annotated[str, Query(alias="to", max_length=32)]


# An entry's outcome as people read it: the words the services record ("ok", a KYC decision, a
# risk tier, a case verdict) each have a label; any other outcome is a refusal's stable code,
# shown as "refused" beside the code when the problem catalog knows it.  The code itself stays
# on the page (and in the CSV) for the auditor who searches by it.
AUDIT_OUTCOMES = {
    "ok": web_msgid("audit.outcome_ok"),
    "granted": web_msgid("audit.outcome_granted"),
    "refused": web_msgid("audit.outcome_refused"),
    "denied_by_policy": web_msgid("audit.outcome_denied_by_policy"),
    "held": web_msgid("audit.outcome_held"),
    "failed": web_msgid("audit.outcome_failed"),
    "locked": web_msgid("audit.outcome_locked"),
    "no_consent": web_msgid("audit.outcome_no_consent"),
    "bad_code": web_msgid("audit.outcome_bad_code"),
    "ledger_refused": web_msgid("audit.outcome_ledger_refused"),
    "approved": web_msgid("audit.outcome_approved"),
    "rejected": web_msgid("audit.outcome_rejected"),
    "pending": web_msgid("audit.outcome_pending"),
    "exists": web_msgid("audit.outcome_exists"),
    "anchored_by_another": web_msgid("audit.outcome_anchored_by_another"),
    "allow": web_msgid("audit.outcome_allow"),
    "hold": web_msgid("audit.outcome_hold"),
    "refuse": web_msgid("audit.outcome_refuse"),
    "step_up": web_msgid("audit.outcome_step_up"),
    "cleared": web_msgid("audit.outcome_cleared"),
    "confirmed_fraud": web_msgid("audit.outcome_confirmed_fraud"),
}
OUTCOME_REFUSED_CODE = web_msgid("audit.outcome_refused_code")


def outcome_label(locale: str, outcome: str) -> str | None:
    """The label msgid of an audit outcome, or None when the outcome is neither a recorded
    word nor a code the problem catalog knows (then the code alone is shown)."""
    if outcome in AUDIT_OUTCOMES:
        return AUDIT_OUTCOMES[outcome]
    if i18n.has_message(locale, problem_msgid(outcome)):
        return OUTCOME_REFUSED_CODE
    return None


@router.get("/staff/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(AUDIT_LOG)],
    actor: AuditText = "",
    action: AuditText = "",
    from_day: AuditDay = "",
    to_day: AuditTo = "",
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> HTMLResponse:
    identity = get_identity(request)
    identity.authorize(
        principal=_principal(viewer),
        permission=Permission.AUDIT_LOG_READ,
        resource=Resource("audit_log", member_did=_member(request)),
    )
    filters, errors = audit_filters(
        _locale(request), actor=actor, action=action, from_day=from_day, to_day=to_day
    )
    entries = [] if errors else identity.audit.search(after_seq=after, limit=ROWS_SHOWN, **filters)
    query = {"actor": actor, "action": action, "from": from_day, "to": to_day}
    locale = _locale(request)
    return render(
        request,
        "identity/audit.html",
        title=AUDIT_LOG.label,
        entries=entries,
        outcome_labels={entry.seq: outcome_label(locale, entry.outcome) for entry in entries},
        query=query,
        errors=errors,
        next=entries[-1].seq if len(entries) == ROWS_SHOWN else None,
        can_verify=Permission.AUDIT_LOG_VERIFY in viewer.permissions,
        read_only=Role.AUDITOR in viewer.roles,
        status_code=422 if errors else 200,
    )


CSV_COLUMNS = ("seq", "at", "actor", "action", "target", "outcome", "reason", "details", "hash")


def _csv_row(entry: AuditEntry) -> tuple[object, ...]:
    return (
        entry.seq,
        i18n.format_datetime(entry.at_ms, "en"),
        entry.actor,
        entry.action,
        entry.target,
        entry.outcome,
        entry.reason or "",
        json.dumps(dict(entry.details), ensure_ascii=False, sort_keys=True),
        entry.entry_hash,
    )


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@router.get("/staff/audit.csv")
def audit_csv(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(AUDIT_LOG)],
    actor: AuditText = "",
    action: AuditText = "",
    from_day: AuditDay = "",
    to_day: AuditTo = "",
) -> Response:
    """Every entry the filters match, streamed page by page (a long log never waits in
    memory, and the browser shows the download's progress); the export itself is audited."""
    filters, errors = audit_filters(
        _locale(request), actor=actor, action=action, from_day=from_day, to_day=to_day
    )
    if errors:
        raise InvalidInput(
            "invalid_filter", "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        )
    pages = get_identity(request).export_audit_log(
        principal=_principal(viewer), member_did=_member(request), **filters
    )

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        yield _drained(buffer)
        for page in pages:
            writer.writerows(_csv_row(entry) for entry in page)
            yield _drained(buffer)

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="audit-log.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/staff/audit/verify", response_class=HTMLResponse)
def audit_verify(
    request: Request, viewer: Annotated[ShellViewer, page_access(AUDIT_LOG)]
) -> HTMLResponse:
    """Start the audit log's verification (`audit_log.verify`) as a job the page polls."""
    same_origin(request)
    identity = get_identity(request)
    principal = _principal(viewer)
    identity.authorize(principal=principal, permission=Permission.AUDIT_LOG_VERIFY)
    host: IdentityHost = request.app.state.platform
    member = host.node.key.did

    def work(progress: jobs.Progress) -> dict[str, Any]:
        notary = host.notary_anchors
        anchors, unconfirmed = confirmed_heads(
            notary, anchored_heads(notary, owner=member), owner=member
        )
        report = identity.audit.verify(anchors=anchors, progress=progress)
        return audit_verify_json(report, anchors, unconfirmed)

    job = jobs.registry_of(request.app.state).start(
        kind="audit_verify",
        owner=str(viewer.user_id),
        template="identity/_audit_verified.html",
        work=work,
    )
    return render(request, "shell/_job.html", title=AUDIT_LOG.label, job=job)


# -- staff and roles -----------------------------------------------------------------------------


def _staff_rows(
    identity: IdentityService, principal: Principal, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    listed = identity.list_staff(principal=principal, after_login=after, limit=ROWS_SHOWN)
    rows: list[dict[str, Any]] = [
        {
            "id": user.id,
            "login": user.login,
            "status": user.status,
            "totp": user.totp_enabled,
            "roles": sorted(str(r) for r in roles),
            "grantable": [str(r) for r in identity.grantable_roles(roles=roles)],
            "self": user.id == principal.user_id,
        }
        for user, roles in listed
    ]
    return rows, rows[-1]["login"] if len(rows) == ROWS_SHOWN else None


def _staff_part(
    request: Request,
    viewer: ShellViewer,
    *,
    template: str,
    after: str | None = None,
    error: str | None = None,
    done: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    identity = get_identity(request)
    rows, next_login = _staff_rows(identity, _principal(viewer), after)
    return render(
        request,
        template,
        title=STAFF_ADMIN.label,
        staff=rows,
        next=next_login,
        error=error,
        done=done,
        staff_roles=sorted(str(r) for r in STAFF_ROLES),
        can_assign=Permission.ROLE_ASSIGN in viewer.permissions,
        status_code=status_code,
        **extra,
    )


@router.get("/staff/people", response_class=HTMLResponse)
def staff_page(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STAFF_ADMIN)],
    after: Annotated[str | None, Query(max_length=limits.LOGIN_CHARS_MAX * 2)] = None,
) -> HTMLResponse:
    return _staff_part(
        request, viewer, template="identity/staff.html", after=after, form={"login": ""}
    )


def _staff_console(
    request: Request,
    viewer: ShellViewer,
    *,
    error: str | None = None,
    done: str | None = None,
    login: str = "",
) -> HTMLResponse:
    """The staff console after an action: what was done, or the refusal (the new-staff form
    keeps the login a refused creation typed)."""
    return _staff_part(
        request,
        viewer,
        template="identity/_staff_console.html",
        error=error,
        done=done,
        form={"login": login},
    )


@router.post("/staff/people", response_class=HTMLResponse)
def staff_create(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STAFF_ADMIN)],
    login: Annotated[str, Form(max_length=limits.LOGIN_CHARS_MAX * 2)],
    password: Annotated[str, Form(max_length=limits.PASSWORD_CHARS_MAX * 4)],
    roles: Annotated[list[Role] | None, Form(max_length=len(Role))] = None,
) -> HTMLResponse:
    same_origin(request)
    identity = get_identity(request)
    locale = _locale(request)
    try:
        if not roles:
            raise InvalidInput("roles_required", web_text(locale, "staff.roles_required"))
        created = identity.create_staff(
            principal=_principal(viewer),
            login=login,
            password=password,
            roles=frozenset(roles),
            member_did=_member(request),
        )
    except ZhijinError as exc:
        message = exc.message if exc.code == "roles_required" else _error(request, exc)
        return _staff_console(request, viewer, error=message, login=login)
    return _staff_console(
        request, viewer, done=web_text(locale, "staff.created", login=created.login)
    )


def _role_change(
    request: Request,
    viewer: ShellViewer,
    change: Callable[[IdentityService, Principal], object],
    *,
    done_msgid: str,
) -> HTMLResponse:
    """A grant or a revocation from the console (the service authorises it against the
    separation-of-duties policy and audits it), then the console again."""
    same_origin(request)
    try:
        change(get_identity(request), _principal(viewer))
    except ZhijinError as exc:
        return _staff_console(request, viewer, error=_error(request, exc))
    return _staff_console(request, viewer, done=web_text(_locale(request), done_msgid))


@router.post("/staff/people/{user_id}/roles", response_class=HTMLResponse)
def staff_grant(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STAFF_ADMIN)],
    user_id: UserId,
    role: Annotated[Role, Form()],
) -> HTMLResponse:
    return _role_change(
        request,
        viewer,
        lambda identity, principal: identity.grant_role(
            principal=principal, user_id=user_id, role=role
        ),
        done_msgid=web_msgid("staff.granted"),
    )


@router.post("/staff/people/{user_id}/roles/{role}/revoke", response_class=HTMLResponse)
def staff_revoke(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STAFF_ADMIN)],
    user_id: UserId,
    role: Role,
) -> HTMLResponse:
    return _role_change(
        request,
        viewer,
        lambda identity, principal: identity.revoke_role(
            principal=principal, user_id=user_id, role=role
        ),
        done_msgid=web_msgid("staff.revoked"),
    )


# -- the step-up policy --------------------------------------------------------------------------

POLICY_CHARS_MAX = 64_000


@router.get("/staff/policy", response_class=HTMLResponse)
def policy_page(
    request: Request, viewer: Annotated[ShellViewer, page_access(STEP_UP_POLICY)]
) -> HTMLResponse:
    identity = get_identity(request)
    body = identity.policy_body(principal=_principal(viewer))
    text = json.dumps(body, ensure_ascii=False, indent=2)
    return _policy_form(request, viewer, "identity/policy.html", text=text, policy=body)


def _policy_form(
    request: Request,
    viewer: ShellViewer,
    template: str,
    *,
    text: str,
    error: str | None = None,
    saved: str | None = None,
    **extra: Any,
) -> HTMLResponse:
    return render(
        request,
        template,
        title=STEP_UP_POLICY.label,
        text=text,
        can_update=Permission.POLICY_UPDATE in viewer.permissions,
        error=error,
        saved=saved,
        limit=POLICY_CHARS_MAX,
        **extra,
    )


def policy_json(locale: str, text: str) -> dict[str, Any]:
    """The editor's text as a policy body, or an `InvalidInput` a person can act on."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "policy_not_json",
            web_text(locale, "policy.not_json", line=exc.lineno, column=exc.colno),
        ) from exc
    if not isinstance(body, dict):
        raise InvalidInput("policy_not_json", web_text(locale, "policy.not_object"))
    return body


@router.post("/staff/policy", response_class=HTMLResponse)
def policy_save(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(STEP_UP_POLICY)],
    policy: Annotated[str, Form(max_length=POLICY_CHARS_MAX)],
) -> HTMLResponse:
    same_origin(request)
    identity = get_identity(request)
    locale = _locale(request)
    error, saved = None, None
    try:
        body = policy_json(locale, policy)
        saved = identity.set_policy(principal=_principal(viewer), body=body).version
    except ZhijinError as exc:
        error = exc.message if exc.code == "policy_not_json" else _error(request, exc)
    return _policy_form(
        request, viewer, "identity/_policy_form.html", text=policy, error=error, saved=saved
    )

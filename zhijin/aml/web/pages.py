"""AML's pages: the analyst's console (the alert queue, oldest due first; cases and one case
with its workflow, separation of duties, the payment graph around the customer, its report
and the filing's anchor; the rules in force with a dry run of an edited set over last week's
payments) and the regulator's (the live feed of committed transactions and alerts, the flows
per member and currency, report downloads).

Each page reads and acts through AML's service and authorises exactly as the API does (the
same helpers of `aml.api`): a page never shows more than the API would give the same viewer,
and every read of the regulator, the auditor and staff is a grant in the access audit log.
Charts, the graph and the live feed are drawn by this domain's own scripts (`static/`),
served from this origin under a content digest: the CSP allows no inline script.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import secrets
from decimal import Decimal
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from zhijin.aml import limits, permissions, rule_sets, service
from zhijin.aml.api import _actor, _case_resource, _member_filter, _own_member, _role
from zhijin.aml.detect import Typology
from zhijin.aml.expected import AmlHostDep
from zhijin.aml.module import CASES, FEED, FLOWS, QUEUE, RULES
from zhijin.aml.rules import RuleSet
from zhijin.aml.schemas import RulesProposeIn
from zhijin.aml.workdays import BEIJING
from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.identity.guard import Caller, Guard, get_guard
from zhijin.identity.rbac import Resource
from zhijin.platform import i18n
from zhijin.platform.deps import GatewayDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    htmx_redirect,
    is_htmx,
    page_access,
    problem_text,
    render,
    same_origin,
    web_msgid,
    web_text,
)

__all__ = ["aml_url", "flow_charts", "graph_spec", "router"]

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)

QUEUE_PAGE = 25
CASES_PAGE = 25
FEED_ROWS_SHOWN = 30
FLOW_DAYS_DEFAULT = 14
STATIC_FILES = ("aml-graph.js", "aml-feed.js", "aml-charts.js", "aml.css")
STATUSES = tuple(s.value for s in service.CaseStatus)
TYPOLOGIES = tuple(t.value for t in Typology)
# The steps a page offers, by the status a case is in; `reported` is the filing's form.
STEP_TARGETS = {
    "open": ("investigating", "dismissed"),
    "investigating": ("escalated", "dismissed"),
    "escalated": ("dismissed",),
}
# The suspicion parameters the rule editor offers (counts, shares, windows in hours, days).
EDITABLE_COUNTS = (
    "structuring_count_min",
    "fan_counterparties_min",
    "cycle_hops_max",
    "scatter_intermediaries_min",
)
EDITABLE_BPS = ("structuring_band_bps", "cycle_amount_ratio_min_bps", "pass_through_share_min_bps")
EDITABLE_HOURS = (
    "structuring_window_ms",
    "fan_window_ms",
    "cycle_window_ms",
    "pass_through_window_ms",
    "scatter_window_ms",
)
HOUR_MS = 3600 * 1000
FEED_CURRENCIES = ("CNY", "USD", "EUR", "HKD", "GBP", "JPY")

IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
Reason = Annotated[str, Form(max_length=limits.REASON_CHARS_MAX * 2)]
DayQuery = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]


# -- our own scripts ----------------------------------------------------------------------------
@functools.cache
def _static_bytes(name: str) -> bytes:
    return resources.files("zhijin.aml.web").joinpath(f"static/{name}").read_bytes()


@functools.cache
def _static_digest(name: str) -> str:
    return hashlib.sha256(_static_bytes(name)).hexdigest()[:12]


def aml_url(name: str) -> str:
    """The URL of one of AML's scripts: its content digest in the path, so it is cached for a
    year and never stale (as the shell's own files)."""
    if name not in STATIC_FILES:
        raise KeyError(name)
    return f"/static/aml/{_static_digest(name)}/{name}"


@router.api_route("/static/aml/{digest}/{name}", methods=["GET", "HEAD"])
def static_file(digest: str, name: str) -> Response:
    if name not in STATIC_FILES or digest != _static_digest(name):
        raise NotFound("not_found", f"no web asset {name}")
    css = name.endswith(".css")
    return Response(
        _static_bytes(name),
        media_type="text/css; charset=utf-8" if css else "text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


# -- helpers ------------------------------------------------------------------------------------
def _caller(request: Request) -> tuple[Guard, Caller]:
    guard = get_guard(request)
    return guard, guard.caller(request)


def short(party: str) -> str:
    """A DID as people can tell one from another without reading 56 characters."""
    return party if len(party) <= 20 else f"{party[:8]}…{party[-6:]}"


def _today() -> dt.date:
    return dt.datetime.now(BEIJING).date()


def _amount_text(amount_minor: int, currency: str, locale: str) -> str:
    return i18n.format_money(int(amount_minor), currency, locale)


def _words(locale: str) -> dict[str, dict[str, str]]:
    """The words the scripts show (the live feed), from the catalog: no English status or
    typology word reaches a zh-CN page."""
    say = functools.partial(web_text, locale)
    return {
        "typology": {t: say(TYPOLOGY_LABELS[t]) for t in TYPOLOGIES},
        "direction": {d: say(label) for d, label in DIRECTION_LABELS.items()},
        "channel": {c: say(label) for c, label in CHANNEL_LABELS.items()},
        "party": {p: say(label) for p, label in PARTY_LABELS.items()},
        # How the locale writes an amount of each currency the rules know ("¥0.00"): the
        # script puts the event's exact decimal string in place of the zero.
        "money": {c: i18n.format_money(0, c, locale) for c in FEED_CURRENCIES},
    }


TYPOLOGY_LABELS = {
    "large_value": web_msgid("aml.typology.large_value"),
    "structuring": web_msgid("aml.typology.structuring"),
    "fan_in": web_msgid("aml.typology.fan_in"),
    "fan_out": web_msgid("aml.typology.fan_out"),
    "cycle": web_msgid("aml.typology.cycle"),
    "pass_through": web_msgid("aml.typology.pass_through"),
    "dormant": web_msgid("aml.typology.dormant"),
    "scatter_gather": web_msgid("aml.typology.scatter_gather"),
}
DIRECTION_LABELS = {
    "in": web_msgid("aml.direction.in"),
    "out": web_msgid("aml.direction.out"),
    "both": web_msgid("aml.direction.both"),
}
CHANNEL_LABELS = {
    "cash": web_msgid("aml.channel.cash"),
    "transfer": web_msgid("aml.channel.transfer"),
}
PARTY_LABELS = {
    "individual": web_msgid("aml.party.individual"),
    "entity": web_msgid("aml.party.entity"),
    "platform": web_msgid("aml.party.platform"),
    "customer": web_msgid("aml.party.customer"),
}


def _read_only(viewer: ShellViewer) -> bool:
    """The regulator and the auditor read and never act: their pages say so."""
    return permissions.CASE_MANAGE not in viewer.permissions


def _common(request: Request) -> dict[str, Any]:
    return {"short": short, "aml_url": aml_url}


# -- the alert queue ----------------------------------------------------------------------------
@router.get("/aml/alerts", response_class=HTMLResponse)
def queue(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(QUEUE)],
    platform: AmlHostDep,
    typology: Annotated[str | None, Query(pattern=r"^[a-z_]{0,24}$")] = None,
    customer: Annotated[str | None, Query(max_length=limits.PARTY_CHARS_MAX)] = None,
    unassigned: Annotated[str | None, Query(pattern="^(1|0)?$")] = None,
    after: Annotated[str | None, Query(pattern=service.QUEUE_CURSOR_PATTERN)] = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    typology = typology or None
    if typology is not None and typology not in TYPOLOGIES:
        typology = None
    page = service.alert_queue(
        platform, member=member, typology=typology, customer=customer or None,
        unassigned=unassigned == "1", after=after, limit=QUEUE_PAGE,
    )  # fmt: skip
    filters = {"typology": typology or "", "customer": customer or "",
               "unassigned": "1" if unassigned == "1" else ""}  # fmt: skip
    part = after is not None and is_htmx(request)
    may_open = permissions.CASE_MANAGE in viewer.permissions
    return render(
        request,
        "aml/_queue_rows.html" if part else "aml/queue.html",
        title=QUEUE.label,
        items=page["items"],
        next_after=page["next_after"],
        filters=filters,
        typologies=TYPOLOGIES,
        today=_today().isoformat(),
        may_open=may_open,
        new_case_id=f"case-{secrets.token_hex(6)}",
        **_common(request),
    )


@router.post("/aml/cases", response_class=HTMLResponse)
def open_case(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(QUEUE)],
    platform: AmlHostDep,
    case_id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)],
    customer: Annotated[str, Form(max_length=limits.PARTY_CHARS_MAX)],
    reason: Reason,
) -> Response:
    """Open a case on the customer's alerts (as `POST /api/v1/aml/cases`); the form's case id
    was drawn when the queue was shown, so a resent form answers the same case."""
    same_origin(request)
    guard, caller = _caller(request)
    member = _own_member(guard, caller)
    try:
        grant = guard.authorize(
            caller,
            permission=permissions.CASE_MANAGE,
            resource=service_resource(case_id, member),
        )
        service.open_case(
            platform, case_id=case_id, member=member, customer=customer,
            actor=_actor(caller), role=_role(grant), reason=reason,
        )  # fmt: skip
    except ZhijinError as exc:
        return render(
            request, "aml/_open_form.html", title=QUEUE.label, error=_problem(request, exc),
            customer=customer, new_case_id=case_id, reason=reason, **_common(request),
        )  # fmt: skip
    return htmx_redirect(request, f"/aml/cases/{case_id}")


def service_resource(case_id: str, member: str) -> Any:
    from zhijin.identity import Resource

    return Resource(kind="aml_case", id=case_id, member_did=member)


def _problem(request: Request, exc: ZhijinError) -> str:
    return problem_text(i18n.request_locale(request), exc)


# -- cases --------------------------------------------------------------------------------------
@router.get("/aml/cases", response_class=HTMLResponse)
def cases(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(CASES)],
    platform: AmlHostDep,
    status: Annotated[
        str | None, Query(pattern="^(open|investigating|escalated|reported|dismissed)?$")
    ] = None,
    after: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    rows = service.list_cases(
        platform, member=member, status=status or None, after_id=after, limit=CASES_PAGE
    )
    return render(
        request,
        "aml/cases.html",
        title=CASES.label,
        cases=rows,
        status=status or "",
        statuses=STATUSES,
        next_after=rows[-1]["case_id"] if len(rows) == CASES_PAGE else None,
        **_common(request),
    )


def _case_context(
    request: Request, viewer: ShellViewer, platform: Any, case_id: str
) -> dict[str, Any]:
    guard, caller = _caller(request)
    _member_filter(guard, caller, permissions.ALERT_READ)
    owner = service.case_owner(platform, case_id=case_id)
    guard.authorize(caller, permission=permissions.ALERT_READ, resource=_case_resource(owner))
    view = service.get_case(platform, case_id=case_id)
    locale = i18n.request_locale(request)
    graph = service.payment_graph(platform, member=view["member"], customer=view["customer"])
    grouped: dict[str, list[Any]] = {}
    for alert in view["alerts"]:
        grouped.setdefault(alert.typology, []).append(alert)
    opened_by_me = viewer.user_id is not None and view["opened_by"] == viewer.user_id
    perms = viewer.permissions
    targets = [
        t for t in STEP_TARGETS.get(view["status"], ())
        if (permissions.CASE_DISMISS if t == "dismissed" else permissions.CASE_MANAGE) in perms
        and not (t == "dismissed" and opened_by_me)
    ]  # fmt: skip
    return {
        "case": view,
        "grouped": grouped,
        "graph_json": json.dumps(graph_spec(graph, locale), ensure_ascii=False),
        "graph": graph,
        "targets": targets,
        "sod_blocked": opened_by_me
        and view["status"] in STEP_TARGETS
        and permissions.CASE_DISMISS in perms,
        "may_file": view["status"] == "escalated" and permissions.SAR_FILE in perms,
        "may_export": permissions.REPORT_READ in perms,
        **_common(request),
    }


def graph_spec(graph: dict[str, Any], locale: str) -> dict[str, Any]:
    """The payment graph as the script draws it: nodes (the customer apart), edges with what a
    person reads (count and total, formatted by the server), flagged edges marked."""
    say = functools.partial(web_text, locale)
    nodes = [
        {"id": n["party"], "name": short(n["party"]),
         "kind": say(PARTY_LABELS.get(n["kind"], PARTY_LABELS["platform"])),
         "center": n["party"] == graph["customer"]}
        for n in graph["nodes"]
    ]  # fmt: skip
    edges = [
        {"source": e["payer"], "target": e["payee"], "flagged": e["flagged"],
         "label": web_text(locale, "aml.graph.edge", count=e["count"],
                      amount=_amount_text(e["amount_minor"], e["currency"], locale))}
        for e in graph["edges"]
    ]  # fmt: skip
    description = web_text(locale, "aml.graph.description", nodes=len(nodes), edges=len(edges))
    return {"nodes": nodes, "edges": edges, "description": description}


@router.get("/aml/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(CASES)],
    platform: AmlHostDep,
) -> HTMLResponse:
    context = _case_context(request, viewer, platform, case_id)
    return render(request, "aml/case.html", title=web_msgid("page.aml_case"), **context)


@router.post("/aml/cases/{case_id}/steps", response_class=HTMLResponse)
def step(
    request: Request,
    case_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(CASES)],
    platform: AmlHostDep,
    to: Annotated[str, Form(pattern="^(investigating|escalated|dismissed)$")],
    reason: Reason,
) -> Response:
    """One step of the workflow (as `POST /api/v1/aml/cases/{id}/steps`): the dismissal is an
    approval, so identity refuses it to whoever opened the case, and the service refuses it
    to the operator who did; a refusal is shown in the form, translated."""
    same_origin(request)
    guard, caller = _caller(request)
    permission = permissions.CASE_DISMISS if to == "dismissed" else permissions.CASE_MANAGE
    try:
        _member_filter(guard, caller, permission)
        owner = service.case_owner(platform, case_id=case_id)
        grant = guard.authorize(caller, permission=permission, resource=_case_resource(owner))
        service.step_case(
            platform, case_id=case_id, to=to, actor=_actor(caller), role=_role(grant),
            reason=reason,
        )  # fmt: skip
    except ZhijinError as exc:
        return _step_refused(request, viewer, platform, case_id, exc, reason)
    return htmx_redirect(request, f"/aml/cases/{case_id}")


@router.post("/aml/cases/{case_id}/filing", response_class=HTMLResponse)
def file(
    request: Request,
    case_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(CASES)],
    platform: AmlHostDep,
    reason: Reason,
) -> Response:
    """File the suspicious-transaction report (as `POST /api/v1/aml/cases/{id}/filing`):
    the XML anchored on chain through the notary, the case reported."""
    same_origin(request)
    guard, caller = _caller(request)
    try:
        _member_filter(guard, caller, permissions.SAR_FILE)
        owner = service.case_owner(platform, case_id=case_id)
        grant = guard.authorize(
            caller, permission=permissions.SAR_FILE, resource=_case_resource(owner)
        )
        service.file_case(
            platform, case_id=case_id, actor=_actor(caller), role=_role(grant), reason=reason
        )
    except ZhijinError as exc:
        return _step_refused(request, viewer, platform, case_id, exc, reason)
    return htmx_redirect(request, f"/aml/cases/{case_id}")


def _step_refused(
    request: Request, viewer: ShellViewer, platform: Any, case_id: str, exc: ZhijinError,
    reason: str,
) -> HTMLResponse:  # fmt: skip
    context = _case_context(request, viewer, platform, case_id)
    return render(
        request, "aml/_workflow.html", title=web_msgid("page.aml_case"),
        error=_problem(request, exc), reason=reason, **context,
    )  # fmt: skip


# -- rules --------------------------------------------------------------------------------------
def _yuan(amount_minor: int) -> str:
    return str(Decimal(int(amount_minor)).scaleb(-2))


def _rule_form(rules: RuleSet) -> dict[str, str]:
    form = {f"threshold_{r.id}": _yuan(r.threshold_minor) for r in rules.large_value}
    policy = rules.suspicion
    for name in EDITABLE_COUNTS + EDITABLE_BPS:
        form[name] = str(getattr(policy, name))
    for name in EDITABLE_HOURS:
        form[name] = str(getattr(policy, name) // HOUR_MS)
    form["dormant_days"] = str(policy.dormant_ms // (24 * HOUR_MS))
    return form


class DraftInvalid(ZhijinError):
    code = "aml_rules_draft_invalid"
    http_status = 422


def draft_rules(base: RuleSet, form: dict[str, str]) -> RuleSet:
    """The rules in force with the form's edits, validated as a rules file is (DraftInvalid
    names the fields that are wrong)."""
    data = base.model_dump(mode="python")
    bad: list[str] = []

    def number(name: str, scale: int = 1) -> int | None:
        text = (form.get(name) or "").strip()
        try:
            value = Decimal(text)
        except ArithmeticError:
            bad.append(name)
            return None
        scaled = value * scale
        if not value.is_finite() or scaled != scaled.to_integral_value():
            bad.append(name)
            return None
        return int(scaled)

    for rule in data["large_value"]:
        value = number(f"threshold_{rule['id']}", 100)
        if value is not None:
            rule["threshold_minor"] = value
    for name in EDITABLE_COUNTS + EDITABLE_BPS:
        value = number(name)
        if value is not None:
            data["suspicion"][name] = value
    for name in EDITABLE_HOURS:
        value = number(name, HOUR_MS)
        if value is not None:
            data["suspicion"][name] = value
    dormant = number("dormant_days", 24 * HOUR_MS)
    if dormant is not None:
        data["suspicion"]["dormant_ms"] = dormant
    data["version"] = f"{base.version}+draft"
    # Validated even when a figure did not parse (that one keeps its value in force), so one
    # answer names every wrong field.
    try:
        drafted = RuleSet.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            if loc[:1] == ["large_value"] and len(loc) > 1:
                bad.append(f"threshold_{data['large_value'][int(loc[1])]['id']}")
            elif loc[:1] == ["suspicion"] and len(loc) > 1:
                bad.append("dormant_days" if loc[1] == "dormant_ms" else loc[1])
            else:
                bad.append(".".join(loc))
    if not bad:
        return drafted
    raise DraftInvalid(
        message="the draft rules are invalid: " + ", ".join(sorted(set(bad))),
        fields=sorted(set(bad)),
    )


def _rules_context(rules: RuleSet) -> dict[str, Any]:
    return {
        "rules": rules,
        "form": _rule_form(rules),
        "counts": EDITABLE_COUNTS,
        "bps": EDITABLE_BPS,
        "hours": EDITABLE_HOURS,
        "yuan": _yuan,
    }


def _in_force(request: Request, platform: Any) -> tuple[str, RuleSet, dict[str, Any] | None]:
    """The viewer's member, the rules its customers are judged by and their version's row."""
    guard, caller = _caller(request)
    _member_filter(guard, caller, permissions.ALERT_READ)
    member = _own_member(guard, caller)
    rules, version = rule_sets.in_force(platform, member=member)
    return member, rules, version


@router.get("/aml/rules", response_class=HTMLResponse)
def rules_page(
    request: Request, viewer: Annotated[ShellViewer, page_access(RULES)], platform: AmlHostDep
) -> HTMLResponse:
    """The rules in force (the member's latest approved version, else the default file), the
    editor with its dry run and proposal, and every version with its maker and checker."""
    member, rules, version = _in_force(request, platform)
    return render(
        request, "aml/rules.html", title=RULES.label, **_rules_context(rules),
        in_force=version, versions=rule_sets.list_versions(platform, member=member),
        may_approve=permissions.RULES_APPROVE in viewer.permissions,
        viewer_id=viewer.user_id, **_common(request),
    )  # fmt: skip


def _rules_refused(request: Request, exc: ZhijinError, target: str) -> HTMLResponse:
    return render(
        request, "aml/_rules_refused.html", title=RULES.label, error=_problem(request, exc),
        target=target, **_common(request),
    )  # fmt: skip


@router.post("/aml/rules/propose", response_class=HTMLResponse)
async def propose_rules(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(RULES)],
    platform: AmlHostDep,
    gateway: GatewayDep,
) -> Response:
    """The dry-run draft proposed as a new version (as `POST /api/v1/aml/rules`): a second
    officer approves it below, and it judges the member's customers from the next block."""
    from fastapi.concurrency import run_in_threadpool

    same_origin(request)
    raw = await request.form()
    form = {str(k): str(v)[:600] for k, v in raw.items() if isinstance(v, str)}
    return await run_in_threadpool(_propose, request, platform, gateway, form)


def _propose(request: Request, platform: Any, gateway: Any, form: dict[str, str]) -> Response:
    guard, caller = _caller(request)
    try:
        member, rules, _ = _in_force(request, platform)
        guard.authorize(
            caller,
            permission=permissions.RULES_PROPOSE,
            resource=Resource("aml_rules", form.get("version"), member_did=member),
        )
        version = RulesProposeIn.model_validate(
            {"version": form.get("version", ""), "rules": {}, "reason": form.get("reason", "")}
        )
        draft = draft_rules(rules, form)
        rule_sets.propose(
            platform, gateway, version=version.version, rules=draft, officer=_actor(caller),
            reason=version.reason,
        )  # fmt: skip
    except ValidationError as exc:
        invalid = DraftInvalid(
            message="the version or the reason is invalid",
            fields=sorted({str(e["loc"][0]) for e in exc.errors()}),
        )
        return _rules_refused(request, invalid, "propose")
    except ZhijinError as exc:
        return _rules_refused(request, exc, "propose")
    return htmx_redirect(request, "/aml/rules#rule-versions")


@router.post("/aml/rules/{version}/decision", response_class=HTMLResponse)
def decide_rules(
    request: Request,
    version: Annotated[str, Path(pattern=limits.RULES_VERSION_PATTERN)],
    viewer: Annotated[ShellViewer, page_access(RULES)],
    platform: AmlHostDep,
    gateway: GatewayDep,
    approve: Annotated[str, Form(pattern="^(1|0)$")],
    reason: Reason,
) -> Response:
    """Approve or reject a proposed version (as `POST /api/v1/aml/rules/{version}/decision`):
    never one's own, which identity refuses (audited) and the contract refuses again."""
    same_origin(request)
    guard, caller = _caller(request)
    try:
        member, _, _ = _in_force(request, platform)
        proposed = rule_sets.get_version(platform, member=member, version=version)
        guard.authorize(
            caller,
            permission=permissions.RULES_APPROVE,
            resource=Resource(
                "aml_rules", version, member_did=member, created_by=proposed["proposer"]
            ),
        )
        rule_sets.decide(
            platform, gateway, version=version, officer=_actor(caller), approve=approve == "1",
            reason=reason,
        )  # fmt: skip
    except ZhijinError as exc:
        return _rules_refused(request, exc, f"decide-{version}")
    return htmx_redirect(request, "/aml/rules#rule-versions")


@router.post("/aml/rules/dry-run", response_class=HTMLResponse)
async def dry_run(
    request: Request, viewer: Annotated[ShellViewer, page_access(RULES)], platform: AmlHostDep
) -> HTMLResponse:
    """What the edited rules would raise over the last 7 days of the member's payments, beside
    the rules in force: nothing is saved."""
    same_origin(request)
    raw = await request.form()
    form = {str(k): str(v)[:40] for k, v in raw.items() if isinstance(v, str)}
    return await _dry_run_part(request, platform, form, viewer)


async def _dry_run_part(
    request: Request, platform: Any, form: dict[str, str], viewer: ShellViewer
) -> HTMLResponse:
    from fastapi.concurrency import run_in_threadpool

    guard, caller = await run_in_threadpool(_caller, request)
    member = await run_in_threadpool(_member_filter, guard, caller, permissions.ALERT_READ)
    _, in_force, _ = await run_in_threadpool(_in_force, request, platform)
    try:
        draft = draft_rules(in_force, form)
    except DraftInvalid as exc:
        return render(
            request, "aml/_dry_run.html", title=RULES.label, error=_problem(request, exc),
            bad_fields=exc.details.get("fields", []), result=None, **_common(request),
        )  # fmt: skip
    result = await run_in_threadpool(
        service.dry_run, platform, member=member, rules=draft, in_force=in_force
    )
    may_propose = permissions.RULES_PROPOSE in viewer.permissions
    return render(
        request, "aml/_dry_run.html", title=RULES.label, error=None, result=result,
        draft_form=form, may_propose=may_propose, **_common(request),
    )  # fmt: skip


# -- the regulator ------------------------------------------------------------------------------
@router.get("/aml/feed", response_class=HTMLResponse)
def feed_page(
    request: Request, viewer: Annotated[ShellViewer, page_access(FEED)], platform: AmlHostDep
) -> HTMLResponse:
    """The latest committed transactions and alerts, then the live feed (`GET
    /api/v1/aml/feed?after=<the height shown>`, read by aml-feed.js): nothing is missed
    between the page and the stream."""
    guard, caller = _caller(request)
    member = _member_filter(guard, caller, permissions.FEED_READ)
    height = platform.projections.heights.get("aml", -1)
    today = _today()
    moves = service.recent_movements(platform, member=member, limit=FEED_ROWS_SHOWN)
    alerts = service.recent_alerts(platform, member=member, limit=FEED_ROWS_SHOWN)
    locale = i18n.request_locale(request)
    return render(
        request,
        "aml/feed.html",
        title=FEED.label,
        height=height,
        moves=moves,
        alerts=alerts,
        every_member=member is None,
        words_json=json.dumps(_words(locale), ensure_ascii=False),
        read_only=_read_only(viewer),
        today=today.isoformat(),
        **_common(request),
    )


def flow_charts(data: dict[str, Any], days: list[str], locale: str) -> list[dict[str, Any]]:
    """One chart per (currency, measure): a series per member, a point per day.  Totals are
    exact decimal strings (geometry only); what a person reads is formatted here."""
    charts: list[dict[str, Any]] = []
    by_currency: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    for row in data["flows"]:
        by_currency.setdefault(row["currency"], {}).setdefault(row["member"], {})[row["day"]] = row
    for currency, members in sorted(by_currency.items()):
        titles = (
            ("amount_minor", web_text(locale, "aml.flows.volume", currency=currency)),
            ("count", web_text(locale, "aml.flows.count", currency=currency)),
        )
        for measure, title in titles:
            series = []
            for member, per_day in sorted(members.items()):
                values = [int(per_day.get(day, {}).get(measure, 0)) for day in days]
                series.append({
                    "name": short(member),
                    "y": [_yuan(v) if measure == "amount_minor" else str(v) for v in values],
                    "labels": [_amount_text(v, currency, locale) if measure == "amount_minor"
                               else str(v) for v in values],
                })  # fmt: skip
            charts.append({"title": title, "x": days, "series": series, "description": title})
    alert_members: dict[str, dict[str, int]] = {}
    for row in data["alerts"]:
        alert_members.setdefault(row["member"], {})[row["day"]] = row["count"]
    if alert_members:
        series = [
            {"name": short(member), "y": [str(per.get(day, 0)) for day in days],
             "labels": [str(per.get(day, 0)) for day in days]}
            for member, per in sorted(alert_members.items())
        ]  # fmt: skip
        charts.append({"title": web_text(locale, "aml.flows.alerts"), "x": days, "series": series,
                       "description": web_text(locale, "aml.flows.alerts")})  # fmt: skip
    return charts


def _totals(data: dict[str, Any], locale: str) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str], list[int]] = {}
    for row in data["flows"]:
        entry = totals.setdefault((row["member"], row["currency"]), [0, 0])
        entry[0] += row["amount_minor"]
        entry[1] += row["count"]
    alerts: dict[str, int] = {}
    for row in data["alerts"]:
        alerts[row["member"]] = alerts.get(row["member"], 0) + row["count"]
    return [
        {"member": member, "currency": currency, "amount": _amount_text(v[0], currency, locale),
         "count": v[1], "alerts": alerts.get(member, 0)}
        for (member, currency), v in sorted(totals.items())
    ]  # fmt: skip


@router.get("/aml/flows", response_class=HTMLResponse)
def flows(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(FLOWS)],
    platform: AmlHostDep,
    day_from: DayQuery = None,
    day_to: DayQuery = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    member = _member_filter(guard, caller, permissions.FEED_READ)
    end = dt.date.fromisoformat(day_to) if day_to else _today()
    start = (
        dt.date.fromisoformat(day_from)
        if day_from
        else end - dt.timedelta(days=FLOW_DAYS_DEFAULT - 1)
    )
    locale = i18n.request_locale(request)
    error = None
    charts: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    try:
        data = service.daily_flows(
            platform, member=member, day_from=start.isoformat(), day_to=end.isoformat()
        )
        days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
        charts = flow_charts(data, days, locale)
        totals = _totals(data, locale)
    except ZhijinError as exc:
        error = _problem(request, exc)
    may_download = permissions.REPORT_READ in viewer.permissions
    reported: list[dict[str, Any]] = []
    if may_download:
        report_member = _member_filter(guard, caller, permissions.REPORT_READ)
        reported = service.list_cases(
            platform, member=report_member, status="reported", limit=CASES_PAGE
        )
    return render(
        request,
        "aml/flows.html",
        title=FLOWS.label,
        day_from=start.isoformat(),
        day_to=end.isoformat(),
        error=error,
        charts=[json.dumps(c, ensure_ascii=False) for c in charts],
        chart_titles=[c["title"] for c in charts],
        totals=totals,
        every_member=member is None,
        may_download=may_download,
        reported=reported,
        read_only=_read_only(viewer),
        **_common(request),
    )

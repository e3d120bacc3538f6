"""HTTP API of AML: alerts, large-value reports and their filing, cases and their steps, the
suspicious-transaction filing, exports (CSV, XML), transaction queries and the live feed.

Routes are thin: the input's shape (strict models, `limits`), who asks (identity's guard: RBAC
with scope from the manifest's permissions, separation of duties on dismissals), then
`service`.  Staff see their own member's rows; the regulator (and the auditor) every member's,
and each of their reads is a privileged grant, recorded in identity's access audit log.  The
operator acts as this node's member.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from zhijin.aml import limits, permissions, rule_sets, service
from zhijin.aml.codes import AmlError, Code
from zhijin.aml.expected import AmlHost, AmlHostDep
from zhijin.aml.rules import parse_rules
from zhijin.aml.schemas import (
    AlertListOut,
    AlertViewOut,
    CaseListOut,
    CaseOut,
    FileCaseIn,
    FileLargeValueIn,
    LargeValueFilingOut,
    LargeValueListOut,
    MovementListOut,
    OpenCaseIn,
    RulesDecisionIn,
    RuleSetWrittenOut,
    RulesOut,
    RulesProposeIn,
    StepIn,
)
from zhijin.identity import Caller, CallerDep, Guard, GuardDep, Resource
from zhijin.platform.deps import GatewayDep
from zhijin.platform.http_edge import EdgeRoute

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/aml", tags=["aml"], route_class=EdgeRoute)

OPERATOR = "operator"
IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
AlertIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Day = Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Format = Annotated[Literal["csv", "xml"], Query()]
_MEDIA = {"csv": "text/csv; charset=utf-8", "xml": "application/xml"}
_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "application/xml": {}}}
}


def _actor(caller: Caller) -> str:
    return OPERATOR if caller.principal is None else caller.principal.user_id


def _role(grant: Any) -> str:
    return OPERATOR if grant is None else str(grant.role)


def _member_filter(guard: Guard, caller: Caller, permission: str) -> str | None:
    """The member whose rows the caller may list (None: every member's)."""
    scope = guard.list_scope(caller, permission=permission)
    if caller.principal is None:
        return guard.member_did  # the operator acts as this node's member
    return scope.member_did


def _own_member(guard: Guard, caller: Caller) -> str:
    if caller.principal is not None and caller.principal.member_did is not None:
        return caller.principal.member_did
    return guard.member_did


def _file(content: bytes, fmt: str, name: str) -> Response:
    return Response(
        content,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )


# -- alerts and reports -------------------------------------------------------------------------
@router.get("/alerts", summary="AML alerts (a member's; the regulator sees every member's)",
            response_model=AlertListOut)  # fmt: skip
def list_alerts(
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    customer: Annotated[str | None, Query(max_length=limits.PARTY_CHARS_MAX)] = None,
    typology: Annotated[str | None, Query(pattern=r"^[a-z_]{1,24}$")] = None,
    after: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    alerts = service.list_alerts(
        platform, member=member, customer=customer, typology=typology, after_id=after, limit=limit
    )
    return {
        "alerts": [service.alert_json(a) for a in alerts],
        "next_after": alerts[-1].alert_id if len(alerts) == limit else None,
    }


@router.get("/alerts/{alert_id}", summary="One alert with its transactions",
            response_model=AlertViewOut)  # fmt: skip
def get_alert(
    alert_id: AlertIdPath, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    alert, moves = service.get_alert(platform, alert_id=alert_id, member=member)
    guard.authorize(
        caller,
        permission=permissions.ALERT_READ,
        resource=Resource(kind="aml_alert", id=alert_id, member_did=alert.member),
    )
    return {
        "alert": service.alert_json(alert),
        "movements": [service.movement_json(m) for m in moves],
    }


@router.get("/large-value", summary="Large-value reports of a range, with due dates",
            response_model=LargeValueListOut)  # fmt: skip
def large_value(
    platform: AmlHostDep, caller: CallerDep, guard: GuardDep, day_from: Day, day_to: Day
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.REPORT_READ)
    rows = service.large_value_reports(platform, member=member, day_from=day_from, day_to=day_to)
    return {"reports": [{**row, "alert": service.alert_json(row["alert"])} for row in rows]}


@router.get("/large-value/export", summary="Large-value reports as CSV or XML",
            response_class=Response, responses=_FILE_RESPONSES)  # fmt: skip
def export_large_value(
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    day_from: Day,
    day_to: Day,
    format: Format = "xml",
) -> Response:
    member = _member_filter(guard, caller, permissions.REPORT_READ)
    content = service.export_large_value(
        platform, member=member, day_from=day_from, day_to=day_to, fmt=format
    )
    return _file(content, format, f"large-value-{day_from}-{day_to}")


@router.post("/large-value/filings", summary="File this member's unfiled large-value reports",
             response_model=LargeValueFilingOut)  # fmt: skip
def file_large_value(
    body: FileLargeValueIn, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    member = _own_member(guard, caller)
    guard.authorize(
        caller,
        permission=permissions.LARGE_VALUE_FILE,
        resource=Resource(kind="aml_large_value", id=body.day_from, member_did=member),
    )
    return service.file_large_value(
        platform, member=member, day_from=body.day_from, day_to=body.day_to, actor=_actor(caller)
    )


@router.get("/transactions", summary="Committed transactions of a range (the regulator: all members')",
            response_model=MovementListOut)  # fmt: skip
def transactions(
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    day_from: Day,
    day_to: Day,
    customer: Annotated[str | None, Query(max_length=limits.PARTY_CHARS_MAX)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.FEED_READ)
    moves = service.transactions(
        platform, member=member, customer=customer, day_from=day_from, day_to=day_to,
        after_seq=after_seq, limit=limit,
    )  # fmt: skip
    return {
        "movements": [service.movement_json(m) for m in moves],
        "next_after_seq": moves[-1].seq if len(moves) == limit else None,
    }


# -- the live feed -------------------------------------------------------------------------------
@router.get(
    "/feed",
    summary="Live committed transactions and alerts (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def feed(
    request: Request,
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    after: Annotated[
        int | None, Query(ge=-1, le=2**62, description="resume after this height")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(max_length=20, description="sent by EventSource on reconnect; wins over after"),
    ] = None,
) -> StreamingResponse:
    # The grant is checked (and, for staff, audited) once, when the stream opens.
    member = await run_in_threadpool(_member_filter, guard, caller, permissions.FEED_READ)
    # A browser reconnecting repeats the URL it opened (with its first `after`) and says in
    # Last-Event-ID the last event it received ("<height>:<index in that block>"): resume
    # there, or it would see again everything since the page opened.
    resumed = _event_position(last_event_id)
    skip = 0
    if resumed is not None:
        after, skip = resumed
    start = platform.projections.heights.get("aml", -1) if after is None else after
    return StreamingResponse(
        _stream(request, platform, member, start, skip),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event_position(last_event_id: str | None) -> tuple[int, int] | None:
    """(resume after this height, events of the next block already received) from a
    Last-Event-ID of ours, "<height>:<index>"; None when it names none."""
    height, sep, index = (last_event_id or "").strip().partition(":")
    if not sep or not (
        height.isascii() and height.isdigit() and index.isascii() and index.isdigit()
    ):
        return None
    if int(height) > 2**62 or int(index) > 2 * limits.FEED_ROWS_PER_POLL_MAX:
        return None
    return int(height) - 1, int(index) + 1


def _block_events(batch: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """The batch's events block by block (a block's transactions, then its alerts): a stream
    that stops anywhere resumes at the next event."""
    events: list[tuple[int, int, Any, str, dict[str, Any]]] = [
        (height, 0, m.seq, "transaction", service.movement_json(m))
        for m, height in zip(batch["movements"], batch["movement_heights"], strict=True)
    ]
    events += [
        (height, 1, a.alert_id, "alert", service.alert_json(a))
        for a, height in zip(batch["alerts"], batch["alert_heights"], strict=True)
    ]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return [(height, kind, data) for height, _, _, kind, data in events]


async def _stream(
    request: Request, host: AmlHost, member: str | None, height: int, skip: int = 0
) -> AsyncIterator[str]:
    yield "retry: 3000\n\n"
    idle_s = 0.0
    while not await request.is_disconnected():
        batch = await run_in_threadpool(
            service.feed_since, host, member=member, after_height=height
        )
        index, current = 0, None
        for event_height, kind, data in _block_events(batch):
            index = index + 1 if event_height == current else 0
            current = event_height
            if event_height == height + 1 and index < skip:
                continue  # received before the reconnect
            yield _event(kind, f"{event_height}:{index}", data)
        skip = 0
        if batch["height"] == height:
            await asyncio.sleep(limits.FEED_POLL_S)
            idle_s += limits.FEED_POLL_S
            if idle_s >= limits.FEED_HEARTBEAT_S:
                idle_s = 0.0
                yield ": keep-alive\n\n"
        height = batch["height"]


def _event(kind: str, event_id: str, data: dict[str, Any]) -> str:
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event_id}\nevent: {kind}\ndata: {text}\n\n"


# -- cases ---------------------------------------------------------------------------------------
def _case_resource(case: dict[str, Any]) -> Resource:
    return Resource(
        kind="aml_case", id=case["case_id"], member_did=case["member"], created_by=case["opened_by"]
    )


def _case_out(view: dict[str, Any], exists: bool = False) -> dict[str, Any]:
    return {**view, "alerts": [service.alert_json(a) for a in view["alerts"]], "exists": exists}


@router.get("/cases", summary="Cases (a member's; the regulator sees every member's)",
            response_model=CaseListOut)  # fmt: skip
def list_cases(
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    status: Annotated[
        str | None, Query(pattern="^(open|investigating|escalated|reported|dismissed)$")
    ] = None,
    after: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    member = _member_filter(guard, caller, permissions.ALERT_READ)
    cases = service.list_cases(platform, member=member, status=status, after_id=after, limit=limit)
    return {"cases": cases, "next_after": cases[-1]["case_id"] if len(cases) == limit else None}


@router.post("/cases", summary="Open a case on a customer's alerts (idempotent by id)",
             response_model=CaseOut)  # fmt: skip
def open_case(
    body: OpenCaseIn, response: Response, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    member = _own_member(guard, caller)
    grant = guard.authorize(
        caller,
        permission=permissions.CASE_MANAGE,
        resource=Resource(kind="aml_case", id=body.case_id, member_did=member),
    )
    view, exists = service.open_case(
        platform, case_id=body.case_id, member=member, customer=body.customer,
        actor=_actor(caller), role=_role(grant), reason=body.reason,
    )  # fmt: skip
    response.status_code = 200 if exists else 201
    return _case_out(view, exists)


@router.get("/cases/{case_id}", summary="A case: its steps and alerts", response_model=CaseOut)
def get_case(
    case_id: IdPath, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _member_filter(guard, caller, permissions.ALERT_READ)  # the role check before the lookup
    case = service.case_owner(platform, case_id=case_id)
    guard.authorize(caller, permission=permissions.ALERT_READ, resource=_case_resource(case))
    return _case_out(service.get_case(platform, case_id=case_id))


@router.post("/cases/{case_id}/steps", summary="Move a case one step, with a reason",
             response_model=CaseOut)  # fmt: skip
def step_case(
    case_id: IdPath, body: StepIn, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    permission = permissions.CASE_DISMISS if body.to == "dismissed" else permissions.CASE_MANAGE
    _member_filter(guard, caller, permission)
    case = service.case_owner(platform, case_id=case_id)
    grant = guard.authorize(caller, permission=permission, resource=_case_resource(case))
    view = service.step_case(
        platform, case_id=case_id, to=body.to, actor=_actor(caller), role=_role(grant),
        reason=body.reason,
    )  # fmt: skip
    return _case_out(view)


@router.post("/cases/{case_id}/filing", summary="File the case's suspicious-transaction report",
             response_model=CaseOut)  # fmt: skip
def file_case(
    case_id: IdPath, body: FileCaseIn, platform: AmlHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _member_filter(guard, caller, permissions.SAR_FILE)
    case = service.case_owner(platform, case_id=case_id)
    grant = guard.authorize(caller, permission=permissions.SAR_FILE, resource=_case_resource(case))
    view = service.file_case(
        platform, case_id=case_id, actor=_actor(caller), role=_role(grant), reason=body.reason
    )
    return _case_out(view)


@router.get("/cases/{case_id}/report", summary="The case's suspicious-transaction report",
            response_class=Response, responses=_FILE_RESPONSES)  # fmt: skip
def case_report(
    case_id: IdPath,
    platform: AmlHostDep,
    caller: CallerDep,
    guard: GuardDep,
    format: Format = "xml",
) -> Response:
    _member_filter(guard, caller, permissions.REPORT_READ)
    case = service.case_owner(platform, case_id=case_id)
    guard.authorize(caller, permission=permissions.REPORT_READ, resource=_case_resource(case))
    return _file(
        service.export_case(platform, case_id=case_id, fmt=format), format, f"str-{case_id}"
    )


# -- the member's rules ---------------------------------------------------------------------------

RuleVersionPath = Annotated[str, Path(pattern=limits.RULES_VERSION_PATTERN)]


def _rules_answer(platform: AmlHost, member: str) -> dict[str, Any]:
    rules, version = rule_sets.in_force(platform, member=member)
    return {
        "member": member,
        "in_force": {
            "version": rules.version,
            "sha256": rules.sha256(),
            "from_height": None if version is None else version["from_height"],
            "rules": rules.model_dump(mode="json"),
        },
        "versions": rule_sets.list_versions(platform, member=member),
    }


@router.get("/rules", summary="The member's monitoring rules in force and every version of them",
            response_model=RulesOut)  # fmt: skip
def list_rules(
    platform: AmlHostDep, caller: CallerDep, guard: GuardDep, member: str | None = None
) -> dict[str, Any]:
    """A member's rules (the regulator and the auditor name any member with `member`)."""
    scope = _member_filter(guard, caller, permissions.ALERT_READ)
    wanted = member or _own_member(guard, caller)
    if scope is not None and wanted != scope:
        wanted = scope  # staff read their own member's only
    return _rules_answer(platform, wanted)


@router.post("/rules", summary="Propose a new version of the member's rules (maker-checker)",
             status_code=201, response_model=RuleSetWrittenOut)  # fmt: skip
def propose_rules(
    body: RulesProposeIn,
    platform: AmlHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    """Validated as a rules file is; a second officer approves it (`POST
    /rules/{version}/decision`), and it judges the member's customers from the next block."""
    guard.require_member_side(caller)
    member = _own_member(guard, caller)
    guard.authorize(
        caller,
        permission=permissions.RULES_PROPOSE,
        resource=Resource("aml_rules", body.version, member_did=member),
    )
    try:
        rules = parse_rules({**body.rules, "version": body.version})
    except ValueError as exc:
        raise AmlError(Code.RULES_INVALID, str(exc)[:500]) from exc
    return rule_sets.propose(
        platform, gateway, version=body.version, rules=rules, officer=_actor(caller),
        reason=body.reason,
    )  # fmt: skip


@router.post("/rules/{version}/decision", response_model=RuleSetWrittenOut,
             summary="Approve or reject a proposed version (never one's own)")  # fmt: skip
def decide_rules(
    version: RuleVersionPath,
    body: RulesDecisionIn,
    platform: AmlHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    guard.require_member_side(caller)
    member = _own_member(guard, caller)
    proposed = rule_sets.get_version(platform, member=member, version=version)
    # The proposer is the resource's creator: identity refuses them the approval (audited),
    # and the contract refuses it again on chain.
    guard.authorize(
        caller,
        permission=permissions.RULES_APPROVE,
        resource=Resource("aml_rules", version, member_did=member, created_by=proposed["proposer"]),
    )
    return rule_sets.decide(
        platform, gateway, version=version, officer=_actor(caller), approve=body.approve,
        reason=body.reason,
    )  # fmt: skip

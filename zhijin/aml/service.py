"""AML's off-chain logic, shared by the API and the CLI: reads of the monitor's tables (alerts,
large-value reports and their due dates, transactions, the live feed), the case workflow, and
the filings, anchored on chain through the notary.

Who may call is the routes' to say (identity's guard); the service gets the member a caller may
see (`member`, None for every member's) and the actor and role that act.  Every function is
keyword-only past the host.

The case workflow (open -> investigating -> escalated -> reported, or dismissed from any open
state) is a table of allowed steps (`STEPS`); each step records its actor, role and reason.
Separation of duties: whoever opened a case may not dismiss it (the `aml_case.dismiss`
permission is an approval, identity refuses it to the creator; the service refuses it to the
operator who opened it too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy import case as sql_case

from zhijin.aml import limits, reports
from zhijin.aml.alerts import Alert
from zhijin.aml.codes import AmlError, Code
from zhijin.aml.detect import Typology
from zhijin.aml.expected import AmlHost
from zhijin.aml.facts import Movement
from zhijin.aml.monitor import alert_from_row, alerts_table, movement_from_row, movements_table
from zhijin.aml.tables import (
    case_alerts_table,
    case_steps_table,
    cases_table,
    ensure_tables,
    large_value_filings_table,
)
from zhijin.aml.workdays import BEIJING
from zhijin.chain.errors import ContractError
from zhijin.platform import i18n
from zhijin.platform.i18n import N_

__all__ = [
    "STEPS",
    "CaseStatus",
    "alert_queue",
    "daily_flows",
    "dry_run",
    "export_case",
    "export_large_value",
    "feed_since",
    "file_case",
    "file_large_value",
    "get_alert",
    "get_case",
    "large_value_reports",
    "list_alerts",
    "list_cases",
    "open_case",
    "payment_graph",
    "recent_alerts",
    "recent_movements",
    "step_case",
    "transactions",
]

log = logging.getLogger("zhijin.aml")
ANCHOR_TIMEOUT_S = 30.0
_ID = re.compile(limits.ID_PATTERN)


class CaseStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    ESCALATED = "escalated"
    REPORTED = "reported"
    DISMISSED = "dismissed"


S = CaseStatus
# Allowed steps by the route's kind of step; `reported` only through `file_case`.
STEPS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.OPEN: frozenset({S.INVESTIGATING, S.DISMISSED}),
    S.INVESTIGATING: frozenset({S.ESCALATED, S.DISMISSED}),
    S.ESCALATED: frozenset({S.REPORTED, S.DISMISSED}),
    S.REPORTED: frozenset(),
    S.DISMISSED: frozenset(),
}
FINAL = frozenset({S.REPORTED, S.DISMISSED})
# A status in words, for the refusals that name one (the "messages" catalog): a zh-CN sentence
# never carries the English status word.
STATUS_WORDS = {
    S.OPEN: N_("aml.case_status.open"),
    S.INVESTIGATING: N_("aml.case_status.investigating"),
    S.ESCALATED: N_("aml.case_status.escalated"),
    S.REPORTED: N_("aml.case_status.reported"),
    S.DISMISSED: N_("aml.case_status.dismissed"),
}


def status_words(**statuses: str) -> dict[str, dict[str, str]]:
    """`words_by_locale` for a refusal: each named status in words, per locale."""
    return {
        locale: {
            name: i18n.gettext(locale, STATUS_WORDS[CaseStatus(value)])
            for name, value in statuses.items()
        }
        for locale in i18n.LOCALES
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_reason(reason: str) -> str:
    text = reason.strip()
    if not limits.REASON_CHARS_MIN <= len(text) <= limits.REASON_CHARS_MAX:
        raise AmlError(
            Code.REASON_INVALID,
            f"a reason is {limits.REASON_CHARS_MIN}-{limits.REASON_CHARS_MAX} characters",
            length_min=limits.REASON_CHARS_MIN,
            length_max=limits.REASON_CHARS_MAX,
        )
    return text


# -- reads of the monitor ---------------------------------------------------------------------
def _alerts(conn: Connection, *conditions: Any, limit: int) -> list[Alert]:
    t = alerts_table
    query = select(t).where(*conditions).order_by(t.c.alert_id).limit(limit)
    return [alert_from_row(row) for row in conn.execute(query)]


def list_alerts(
    host: AmlHost,
    *,
    member: str | None,
    customer: str | None = None,
    typology: str | None = None,
    after_id: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> list[Alert]:
    t = alerts_table
    conditions = []
    if member is not None:
        conditions.append(t.c.member == member)
    if customer is not None:
        conditions.append(t.c.customer == customer)
    if typology is not None:
        conditions.append(t.c.typology == typology)
    if after_id is not None:
        conditions.append(t.c.alert_id > after_id)
    with host.platform_engine.connect() as conn:
        return _alerts(conn, *conditions, limit=limit)


def get_alert(host: AmlHost, *, alert_id: str, member: str | None) -> tuple[Alert, list[Movement]]:
    t = alerts_table
    with host.platform_engine.connect() as conn:
        found = _alerts(conn, t.c.alert_id == alert_id, limit=1)
        if not found or (member is not None and found[0].member != member):
            raise AmlError(Code.ALERT_NOT_FOUND, f"no alert {alert_id}", alert_id=alert_id)
        alert = found[0]
        return alert, list(_movements(conn, alert.transfer_ids).values())


def _movements(conn: Connection, ids: Sequence[str]) -> dict[str, Movement]:
    t = movements_table
    found: dict[str, Movement] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        for row in conn.execute(select(t).where(t.c.transfer_id.in_(chunk)).order_by(t.c.seq)):
            found[row.transfer_id] = movement_from_row(row)
    return found


def _check_range(day_from: str, day_to: str) -> None:
    start: dt.date | None
    end: dt.date | None
    try:
        start, end = dt.date.fromisoformat(day_from), dt.date.fromisoformat(day_to)
    except ValueError:
        start = end = None
    if start is None or end is None or end < start or (end - start).days >= limits.REPORT_DAYS_MAX:
        raise AmlError(
            Code.REPORT_RANGE_INVALID,
            f"a report covers 1-{limits.REPORT_DAYS_MAX} days, day_from <= day_to",
            days_max=limits.REPORT_DAYS_MAX,
        )


def _filed(conn: Connection, ids: Sequence[str]) -> set[str]:
    t = large_value_filings_table
    filed: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        filed.update(conn.execute(select(t.c.alert_id).where(t.c.alert_id.in_(chunk))).scalars())
    return filed


def _large_value(conn: Connection, member: str | None, day_from: str, day_to: str) -> list[Alert]:
    t = alerts_table
    conditions = [t.c.typology == Typology.LARGE_VALUE, t.c.day >= day_from, t.c.day <= day_to]
    if member is not None:
        conditions.append(t.c.member == member)
    count = conn.execute(select(func.count()).select_from(t).where(*conditions)).scalar_one()
    if count > limits.EXPORT_ROWS_MAX:
        raise AmlError(
            Code.REPORT_TOO_LARGE,
            f"{count} reports in the range; at most {limits.EXPORT_ROWS_MAX}: split the range",
            rows_max=limits.EXPORT_ROWS_MAX,
        )
    return _alerts(conn, *conditions, limit=limits.EXPORT_ROWS_MAX)


def large_value_reports(
    host: AmlHost, *, member: str | None, day_from: str, day_to: str, today: str | None = None
) -> list[dict[str, Any]]:
    """The large-value reports of a range, each with its due date and whether it is filed or
    overdue (today, Beijing, after the due date and not filed)."""
    _check_range(day_from, day_to)
    ensure_tables(host.platform_engine)
    today = today or dt.datetime.now(BEIJING).date().isoformat()
    with host.platform_engine.connect() as conn:
        alerts = _large_value(conn, member, day_from, day_to)
        filed = _filed(conn, [a.alert_id for a in alerts])
    return [
        {
            "alert": a,
            "filed": a.alert_id in filed,
            "overdue": a.alert_id not in filed and today > a.due_day,
        }
        for a in alerts
    ]


def export_large_value(
    host: AmlHost, *, member: str | None, day_from: str, day_to: str, fmt: str
) -> bytes:
    _check_range(day_from, day_to)
    ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        alerts = _large_value(conn, member, day_from, day_to)
        filed = _filed(conn, [a.alert_id for a in alerts])
        if fmt == "csv":
            return reports.large_value_csv(alerts, filed)
        moves = _movements(conn, [t for a in alerts for t in a.transfer_ids])
    return reports.large_value_xml(alerts, moves, filed, member=member, generated_at_ms=_now_ms())


def transactions(
    host: AmlHost,
    *,
    member: str | None,
    customer: str | None,
    day_from: str,
    day_to: str,
    after_seq: int | None,
    limit: int,
) -> list[Movement]:
    """Committed movements of a range (Beijing days), in stream order: every member's for the
    regulator, a member's own (either side held there) for its staff."""
    _check_range(day_from, day_to)
    t = movements_table
    conditions: list[Any] = [t.c.day >= day_from, t.c.day <= day_to]
    if member is not None:
        conditions.append((t.c.payer_member == member) | (t.c.payee_member == member))
    if customer is not None:
        conditions.append((t.c.payer == customer) | (t.c.payee == customer))
    if after_seq is not None:
        conditions.append(t.c.seq > after_seq)
    with host.platform_engine.connect() as conn:
        rows = conn.execute(select(t).where(*conditions).order_by(t.c.seq).limit(limit))
        return [movement_from_row(row) for row in rows]


def feed_since(host: AmlHost, *, member: str | None, after_height: int) -> dict[str, Any]:
    """What the monitor applied after `after_height`, up to its cursor: movements and alerts
    (new or grown), bounded per poll; `height` is where the next poll resumes."""
    applied = host.projections.heights.get("aml", -1)
    if applied <= after_height:
        return {"height": after_height, "movements": [], "alerts": [],
                "movement_heights": [], "alert_heights": []}  # fmt: skip
    m, a = movements_table, alerts_table
    rows_max = limits.FEED_ROWS_PER_POLL_MAX
    move_conditions: list[Any] = [m.c.height > after_height, m.c.height <= applied]
    alert_conditions: list[Any] = [a.c.updated_height > after_height, a.c.updated_height <= applied]
    if member is not None:
        move_conditions.append((m.c.payer_member == member) | (m.c.payee_member == member))
        alert_conditions.append(a.c.member == member)
    with host.platform_engine.connect() as conn:
        moves = conn.execute(
            select(m).where(*move_conditions).order_by(m.c.seq).limit(rows_max)
        ).all()
        alerts = conn.execute(
            select(a)
            .where(*alert_conditions)
            .order_by(a.c.updated_height, a.c.alert_id)
            .limit(rows_max)
        ).all()
    height = applied
    if len(moves) == rows_max or len(alerts) == rows_max:
        # More than a poll holds: resume after the last complete block both lists reached.
        last = [rows[-1].height for rows in (moves,) if rows] + [
            rows[-1].updated_height for rows in (alerts,) if rows
        ]
        height = max(after_height, min(last) - 1)
        moves = [row for row in moves if row.height <= height]
        alerts = [row for row in alerts if row.updated_height <= height]
    return {
        "height": height,
        "movements": [movement_from_row(row) for row in moves],
        "alerts": [alert_from_row(row) for row in alerts],
        # The block of each (the feed's event ids name the block and the place in it).
        "movement_heights": [int(row.height) for row in moves],
        "alert_heights": [int(row.updated_height) for row in alerts],
    }


# -- cases ------------------------------------------------------------------------------------
def _case_row(conn: Connection, case_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(cases_table).where(cases_table.c.case_id == case_id)).first()
    return None if row is None else dict(row._mapping)


def _attach_new_alerts(conn: Connection, case: dict[str, Any], now_ms: int) -> None:
    """Gather the customer's alerts at the member that no case holds yet into this one."""
    if case["status"] in FINAL:
        return
    a, ca = alerts_table, case_alerts_table
    held = select(ca.c.alert_id)
    query = (
        select(a.c.alert_id)
        .where(a.c.member == case["member"], a.c.customer == case["customer"])
        .where(a.c.alert_id.not_in(held))
        .order_by(a.c.alert_id)
        .limit(limits.CASE_ALERTS_MAX)
    )
    fresh = list(conn.execute(query).scalars())
    if fresh:
        conn.execute(
            insert(ca),
            [{"case_id": case["case_id"], "alert_id": x, "attached_at_ms": now_ms} for x in fresh],
        )


def _steps(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    t = case_steps_table
    rows = conn.execute(select(t).where(t.c.case_id == case_id).order_by(t.c.seq))
    return [dict(row._mapping) for row in rows]


def _case_alerts(conn: Connection, case_id: str) -> list[Alert]:
    a, ca = alerts_table, case_alerts_table
    query = (
        select(a)
        .join(ca, and_(ca.c.alert_id == a.c.alert_id, ca.c.case_id == case_id))
        .order_by(a.c.first_seq)
        .limit(limits.CASE_ALERTS_MAX)
    )
    return [alert_from_row(row) for row in conn.execute(query)]


def _view(conn: Connection, case: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in case.items() if k != "filing_xml"}
    view["steps"] = _steps(conn, case["case_id"])
    view["alerts"] = _case_alerts(conn, case["case_id"])
    return view


def _add_step(
    conn: Connection, case: dict[str, Any], *, to: CaseStatus, actor: str, role: str, reason: str,
    now_ms: int,
) -> None:  # fmt: skip
    seq = conn.execute(
        select(func.count())
        .select_from(case_steps_table)
        .where(case_steps_table.c.case_id == case["case_id"])
    ).scalar_one()
    conn.execute(
        insert(case_steps_table).values(
            case_id=case["case_id"],
            seq=seq + 1,
            from_status=case["status"] if seq else None,
            to_status=to.value,
            actor=actor,
            role=role,
            reason=reason,
            at_ms=now_ms,
        )
    )
    if seq:
        conn.execute(
            update(cases_table)
            .where(cases_table.c.case_id == case["case_id"])
            .values(status=to.value, updated_at_ms=now_ms)
        )
    log.info("aml case %s: %s by %s (%s)", case["case_id"], to.value, actor, role)


def get_case(host: AmlHost, *, case_id: str) -> dict[str, Any]:
    """The case with its steps and alerts (the customer's new alerts gathered in first)."""
    ensure_tables(host.platform_engine)
    with host.platform_engine.begin() as conn:
        case = _case_row(conn, case_id)
        if case is None:
            raise AmlError(Code.CASE_NOT_FOUND, f"no case {case_id}", case_id=case_id)
        _attach_new_alerts(conn, case, _now_ms())
        return _view(conn, case)


def list_cases(
    host: AmlHost,
    *,
    member: str | None,
    status: str | None = None,
    after_id: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> list[dict[str, Any]]:
    ensure_tables(host.platform_engine)
    t = cases_table
    conditions = []
    if member is not None:
        conditions.append(t.c.member == member)
    if status is not None:
        conditions.append(t.c.status == status)
    if after_id is not None:
        conditions.append(t.c.case_id > after_id)
    query = select(t).where(*conditions).order_by(t.c.case_id).limit(limit)
    with host.platform_engine.connect() as conn:
        return [
            {k: v for k, v in row._mapping.items() if k != "filing_xml"}
            for row in conn.execute(query)
        ]


def open_case(
    host: AmlHost, *, case_id: str, member: str, customer: str, actor: str, role: str, reason: str
) -> tuple[dict[str, Any], bool]:
    """Open a case on a customer's alerts at the member: (the case, whether it existed).  A
    retry with the same id and customer answers the case as it stands."""
    if not _ID.match(case_id):
        raise AmlError(Code.CASE_ID_INVALID, "a case id is 1-64 of A-Z a-z 0-9 . _ : -")
    reason = _check_reason(reason)
    ensure_tables(host.platform_engine)
    now = _now_ms()
    with host.platform_engine.begin() as conn:
        existing = _case_row(conn, case_id)
        if existing is not None:
            if (existing["member"], existing["customer"]) != (member, customer):
                raise AmlError(
                    Code.CASE_EXISTS_WITH_DIFFERENT_FIELDS,
                    f"case {case_id} exists for another customer",
                    case_id=case_id,
                )
            return _view(conn, existing), True
        a = alerts_table
        has_alerts = conn.execute(
            select(a.c.alert_id).where(a.c.member == member, a.c.customer == customer).limit(1)
        ).first()
        if has_alerts is None:
            raise AmlError(Code.CUSTOMER_HAS_NO_ALERTS, "the customer has no alerts at this member")
        t = cases_table
        live = conn.execute(
            select(t.c.case_id).where(
                t.c.member == member, t.c.customer == customer, t.c.status.not_in(list(FINAL))
            )
        ).first()
        if live is not None:
            raise AmlError(
                Code.CASE_ALREADY_OPEN,
                f"case {live.case_id} is open for this customer",
                case_id=live.case_id,
            )
        case = {
            "case_id": case_id, "member": member, "customer": customer,
            "status": S.OPEN.value, "opened_by": actor, "opened_at_ms": now, "updated_at_ms": now,
            "filing_sha256": None, "filing_height": None, "filing_xml": None,
        }  # fmt: skip
        conn.execute(insert(t).values(**case))
        _add_step(conn, case, to=S.OPEN, actor=actor, role=role, reason=reason, now_ms=now)
        _attach_new_alerts(conn, case, now)
        return _view(conn, case), False


def _case_for_step(conn: Connection, case_id: str) -> dict[str, Any]:
    case = _case_row(conn, case_id)
    if case is None:
        raise AmlError(Code.CASE_NOT_FOUND, f"no case {case_id}", case_id=case_id)
    return case


def case_owner(host: AmlHost, *, case_id: str) -> dict[str, Any]:
    """The case's member and opener, for the route's authorisation before any step."""
    ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        return _case_for_step(conn, case_id)


def step_case(
    host: AmlHost, *, case_id: str, to: str, actor: str, role: str, reason: str
) -> dict[str, Any]:
    """Move a case one step (investigating, escalated or dismissed) with a reason."""
    reason = _check_reason(reason)
    target = CaseStatus(to)
    now = _now_ms()
    with host.platform_engine.begin() as conn:
        case = _case_for_step(conn, case_id)
        if target == S.REPORTED or target not in STEPS[CaseStatus(case["status"])]:
            raise AmlError(
                Code.CASE_STEP_NOT_ALLOWED,
                f"a case {case['status']} cannot become {target.value}",
                case_status=case["status"],
                to=target.value,
                words_by_locale=status_words(case_status=case["status"], to=target.value),
            )
        if target == S.DISMISSED and actor == case["opened_by"]:
            raise AmlError(Code.CASE_STEP_SAME_ACTOR, "whoever opened a case may not dismiss it")
        _attach_new_alerts(conn, case, now)
        _add_step(conn, case, to=target, actor=actor, role=role, reason=reason, now_ms=now)
        return _view(conn, {**case, "status": target.value, "updated_at_ms": now})


def _str_xml(conn: Connection, case: dict[str, Any], now_ms: int) -> bytes:
    alerts = _case_alerts(conn, case["case_id"])
    moves = _movements(conn, [t for a in alerts for t in a.transfer_ids])
    return reports.suspicious_xml(
        case, _steps(conn, case["case_id"]), alerts, moves, generated_at_ms=now_ms
    )


def file_case(host: AmlHost, *, case_id: str, actor: str, role: str, reason: str) -> dict[str, Any]:
    """File an escalated case's suspicious-transaction report: the XML built, its SHA-256
    anchored on chain through the notary, the case reported.  A retry of a reported case
    answers its filing as it stands."""
    reason = _check_reason(reason)
    ensure_tables(host.platform_engine)
    now = _now_ms()
    with host.platform_engine.begin() as conn:
        case = _case_for_step(conn, case_id)
        if case["status"] == S.REPORTED:
            return _view(conn, case)
        if case["status"] != S.ESCALATED:
            raise AmlError(
                Code.CASE_NOT_ESCALATED,
                "only an escalated case is filed",
                case_status=case["status"],
                words_by_locale=status_words(case_status=case["status"]),
            )
        _add_step(conn, case, to=S.REPORTED, actor=actor, role=role, reason=reason, now_ms=now)
        document = _str_xml(conn, {**case, "status": S.REPORTED.value}, now)
        digest = hashlib.sha256(document).hexdigest()
        height = _anchor(host, digest, f"aml-str:{case_id}")
        conn.execute(
            update(cases_table)
            .where(cases_table.c.case_id == case_id)
            .values(filing_sha256=digest, filing_height=height, filing_xml=document.decode())
        )
        reported = _case_row(conn, case_id)
        assert reported is not None
        return _view(conn, reported)


def _anchor(host: AmlHost, digest: str, title: str) -> int:
    """Anchor a filing's hash; the database transaction around it commits only if it holds."""
    try:
        return host.notary_anchors.anchor(
            document_hash=digest, title=title, timeout_s=ANCHOR_TIMEOUT_S
        )
    except (ContractError, TimeoutError) as exc:
        if getattr(exc, "code", "") in ("exists", "already_anchored"):
            record = host.notary_anchors.anchor_record(digest)
            if record is not None:
                return int(record.get("height", 0))
        log.warning("aml filing %s: anchoring failed: %s", title, exc)
        raise AmlError(
            Code.FILING_ANCHOR_FAILED, f"the filing could not be anchored: {exc}"
        ) from exc


def filing_xml(host: AmlHost, *, case_id: str) -> bytes | None:
    with host.platform_engine.connect() as conn:
        case = _case_for_step(conn, case_id)
    text = case["filing_xml"]
    return None if text is None else str(text).encode()


def export_case(host: AmlHost, *, case_id: str, fmt: str) -> bytes:
    """The case's report as CSV or XML: the filed document itself once reported."""
    ensure_tables(host.platform_engine)
    with host.platform_engine.connect() as conn:
        case = _case_for_step(conn, case_id)
        if fmt == "xml":
            if case["filing_xml"] is not None:
                return str(case["filing_xml"]).encode()
            return _str_xml(conn, case, _now_ms())
        return reports.suspicious_csv(case, _case_alerts(conn, case_id))


def file_large_value(
    host: AmlHost, *, member: str, day_from: str, day_to: str, actor: str
) -> dict[str, Any]:
    """File the member's unfiled large-value reports of a range: one XML, anchored; each
    report marked filed with the document's hash (a retry files only what is still unfiled)."""
    _check_range(day_from, day_to)
    ensure_tables(host.platform_engine)
    now = _now_ms()
    with host.platform_engine.begin() as conn:
        alerts = _large_value(conn, member, day_from, day_to)
        filed = _filed(conn, [a.alert_id for a in alerts])
        pending = [a for a in alerts if a.alert_id not in filed]
        if not pending:
            return {"filed": 0, "report_sha256": None, "anchor_height": None}
        moves = _movements(conn, [t for a in pending for t in a.transfer_ids])
        document = reports.large_value_xml(
            pending, moves, set(), member=member, generated_at_ms=now
        )
        digest = hashlib.sha256(document).hexdigest()
        height = _anchor(host, digest, f"aml-lvr:{member[-16:]}:{day_from}:{day_to}")
        conn.execute(
            insert(large_value_filings_table),
            [
                {
                    "alert_id": a.alert_id,
                    "member": member,
                    "filed_by": actor,
                    "filed_at_ms": now,
                    "report_sha256": digest,
                    "anchor_height": height,
                }
                for a in pending
            ],
        )
        log.info(
            "aml: %d large-value reports filed by %s, anchored at %d", len(pending), actor, height
        )
        return {"filed": len(pending), "report_sha256": digest, "anchor_height": height}


def alert_json(alert: Alert) -> dict[str, Any]:
    data = {name: getattr(alert, name) for name in Alert.__dataclass_fields__}
    data["transfer_ids"] = list(alert.transfer_ids)
    data["amount"] = reports.decimal_amount(alert.amount_minor, alert.currency)
    return data


def movement_json(move: Movement) -> dict[str, Any]:
    data = {name: getattr(move, name) for name in Movement.__dataclass_fields__}
    data["day"] = move.day
    data["amount"] = reports.decimal_amount(move.amount_minor, move.currency)
    return data


# -- the analyst's and the regulator's pages ---------------------------------------------------
# Sort key of the alert queue: a large-value report's due day, else the day its episode began,
# so that what falls due first comes first; the cursor is "<key>|<alert id>".
QUEUE_CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}\|[0-9a-f]{32}$"


def _queue_key() -> Any:
    a = alerts_table
    return sql_case((a.c.due_day != "", a.c.due_day), else_=a.c.day)


def alert_queue(
    host: AmlHost,
    *,
    member: str | None,
    typology: str | None = None,
    customer: str | None = None,
    unassigned: bool = False,
    after: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """The alerts to work, oldest due first (keyset pages), each with the case holding it (or
    None); `unassigned` keeps only alerts no case holds yet."""
    ensure_tables(host.platform_engine)
    a, ca, c = alerts_table, case_alerts_table, cases_table
    key = _queue_key()
    conditions: list[Any] = []
    if member is not None:
        conditions.append(a.c.member == member)
    if typology is not None:
        conditions.append(a.c.typology == typology)
    if customer is not None:
        conditions.append(a.c.customer == customer)
    if unassigned:
        conditions.append(ca.c.case_id.is_(None))
    if after is not None:
        after_key, _, after_id = after.partition("|")
        conditions.append(or_(key > after_key, and_(key == after_key, a.c.alert_id > after_id)))
    query = (
        select(a, ca.c.case_id.label("case_id"), c.c.status.label("case_status"))
        .select_from(
            a.outerjoin(ca, ca.c.alert_id == a.c.alert_id).outerjoin(c, c.c.case_id == ca.c.case_id)
        )
        .where(*conditions)
        .order_by(key, a.c.alert_id)
        .limit(limit)
    )
    with host.platform_engine.connect() as conn:
        rows = conn.execute(query).all()
    items = [
        {"alert": alert_from_row(row), "case_id": row.case_id, "case_status": row.case_status}
        for row in rows
    ]
    last = items[-1]["alert"] if len(items) == limit else None
    return {
        "items": items,
        "next_after": None if last is None else f"{last.due_day or last.day}|{last.alert_id}",
    }


GRAPH_EDGES_MAX = 300  # movements read around one customer for the case's graph


def payment_graph(host: AmlHost, *, member: str, customer: str) -> dict[str, Any]:
    """The payments around a customer at a member (the latest `GRAPH_EDGES_MAX` movements with
    the customer on either side), as nodes (the customer and each counterparty, with its kind
    of party) and edges (payer -> payee per currency: count and total), the edges an alert of
    the customer names marked."""
    m, a = movements_table, alerts_table
    side = or_(
        and_(m.c.payer == customer, m.c.payer_member == member),
        and_(m.c.payee == customer, m.c.payee_member == member),
    )
    with host.platform_engine.connect() as conn:
        moves = [
            movement_from_row(row)
            for row in conn.execute(
                select(m).where(side).order_by(m.c.seq.desc()).limit(GRAPH_EDGES_MAX)
            )
        ]
        flagged: set[str] = set()
        for row in conn.execute(
            select(a.c.transfer_ids).where(a.c.member == member, a.c.customer == customer)
        ):
            flagged.update(json.loads(row.transfer_ids))
    nodes: dict[str, str] = {customer: "customer"}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for move in moves:
        nodes.setdefault(move.payer, move.payer_party)
        nodes.setdefault(move.payee, move.payee_party)
        edge = edges.setdefault(
            (move.payer, move.payee, move.currency),
            {"payer": move.payer, "payee": move.payee, "currency": move.currency,
             "count": 0, "amount_minor": 0, "flagged": False},
        )  # fmt: skip
        edge["count"] += 1
        edge["amount_minor"] += move.amount_minor
        edge["flagged"] = edge["flagged"] or move.transfer_id in flagged
    return {
        "customer": customer,
        "nodes": [{"party": p, "kind": k} for p, k in nodes.items()],
        "edges": list(edges.values()),
        "movements": len(moves),
        "truncated": len(moves) == GRAPH_EDGES_MAX,
    }


FLOW_DAYS_MAX = limits.REPORT_DAYS_MAX


def daily_flows(host: AmlHost, *, member: str | None, day_from: str, day_to: str) -> dict[str, Any]:
    """Flows per member (the payer's custodian), currency and Beijing day: the total in minor
    units and the count of movements; and alerts per member and day.  Every member's for the
    regulator, a member's own (as payer's custodian) for its staff."""
    _check_range(day_from, day_to)
    m, a = movements_table, alerts_table
    move_conditions: list[Any] = [m.c.day >= day_from, m.c.day <= day_to]
    alert_conditions: list[Any] = [a.c.day >= day_from, a.c.day <= day_to]
    if member is not None:
        move_conditions.append(m.c.payer_member == member)
        alert_conditions.append(a.c.member == member)
    flows = (
        select(
            m.c.payer_member, m.c.currency, m.c.day,
            func.sum(m.c.amount_minor).label("amount_minor"), func.count().label("n"),
        )
        .where(*move_conditions)
        .group_by(m.c.payer_member, m.c.currency, m.c.day)
        .order_by(m.c.payer_member, m.c.currency, m.c.day)
    )  # fmt: skip
    alerts = (
        select(a.c.member, a.c.day, func.count().label("n"))
        .where(*alert_conditions)
        .group_by(a.c.member, a.c.day)
        .order_by(a.c.member, a.c.day)
    )
    with host.platform_engine.connect() as conn:
        flow_rows = [
            {"member": r.payer_member, "currency": r.currency, "day": r.day,
             "amount_minor": int(r.amount_minor), "count": int(r.n)}
            for r in conn.execute(flows)
        ]  # fmt: skip
        alert_rows = [
            {"member": r.member, "day": r.day, "count": int(r.n)} for r in conn.execute(alerts)
        ]
    return {"flows": flow_rows, "alerts": alert_rows}


DRY_RUN_DAYS = 7
DRY_RUN_MOVEMENTS_MAX = 50_000  # a week of a member's payments; beyond, the newest are kept
DRY_RUN_CUSTOMERS_SHOWN = 50


def dry_run(
    host: AmlHost,
    *,
    member: str | None,
    rules: Any,
    in_force: Any = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """What `rules` (a RuleSet) would raise over the last `DRY_RUN_DAYS` days of committed
    movements, beside `in_force` (the member's rules in force; default: the rules file) over
    the same movements: alerts per typology, and the
    customers each set alerts on.  Run over memory (memory.py), the monitor's own detectors:
    nothing is written.  The window starts cold, so a pattern begun before it is seen only in
    part, by both sets alike."""
    from zhijin.aml.memory import MemoryMonitor
    from zhijin.aml.rules import default_rules

    now_ms = _now_ms() if now_ms is None else now_ms
    since_ms = now_ms - DRY_RUN_DAYS * 24 * 3600 * 1000
    m = movements_table
    conditions: list[Any] = [m.c.time_ms >= since_ms]
    if member is not None:
        conditions.append((m.c.payer_member == member) | (m.c.payee_member == member))
    with host.platform_engine.connect() as conn:
        rows = conn.execute(
            select(m).where(*conditions).order_by(m.c.seq.desc()).limit(DRY_RUN_MOVEMENTS_MAX)
        ).all()
    moves = [movement_from_row(row) for row in reversed(rows)]
    heights = [int(row.height) for row in reversed(rows)]
    out: dict[str, Any] = {"movements": len(moves), "since_ms": since_ms,
                           "truncated": len(moves) == DRY_RUN_MOVEMENTS_MAX}  # fmt: skip
    for name, ruleset in (("draft", rules), ("in_force", in_force or default_rules())):
        monitor = MemoryMonitor(rules=ruleset)
        start = 0
        for index in range(1, len(moves) + 1):
            if index == len(moves) or heights[index] != heights[start]:
                monitor.apply(moves[start:index])  # one block's movements, as the projection
                start = index
        alerts = [x for x in monitor.alerts.values() if member is None or x.member == member]
        by_typology: dict[str, int] = {}
        by_customer: dict[str, int] = {}
        for alert in alerts:
            by_typology[alert.typology] = by_typology.get(alert.typology, 0) + 1
            by_customer[alert.customer] = by_customer.get(alert.customer, 0) + 1
        out[name] = {
            "alerts": len(alerts),
            "by_typology": dict(sorted(by_typology.items())),
            "customers": sorted(by_customer.items(), key=lambda kv: (-kv[1], kv[0]))[
                :DRY_RUN_CUSTOMERS_SHOWN
            ],
            "customer_count": len(by_customer),
        }
    draft_customers = {c for c, _ in out["draft"]["customers"]}
    force_customers = {c for c, _ in out["in_force"]["customers"]}
    out["only_draft"] = sorted(draft_customers - force_customers)
    out["only_in_force"] = sorted(force_customers - draft_customers)
    return out


def recent_movements(host: AmlHost, *, member: str | None, limit: int) -> list[Movement]:
    """The latest committed movements (newest first): what the live feed page opens with."""
    m = movements_table
    query = select(m).order_by(m.c.seq.desc()).limit(limit)
    if member is not None:
        query = query.where((m.c.payer_member == member) | (m.c.payee_member == member))
    with host.platform_engine.connect() as conn:
        return [movement_from_row(row) for row in conn.execute(query)]


def recent_alerts(host: AmlHost, *, member: str | None, limit: int) -> list[Alert]:
    """The latest alerts written or grown (newest first)."""
    a = alerts_table
    query = select(a).order_by(a.c.updated_height.desc(), a.c.alert_id).limit(limit)
    if member is not None:
        query = query.where(a.c.member == member)
    with host.platform_engine.connect() as conn:
        return [alert_from_row(row) for row in conn.execute(query)]

"""Payments' pages: the customer's home (accounts, balances, recent entries with the
counterparties' names, the balance chart) and an account's statement (names, search, a date
range, CSV and camt.053 downloads, older pages by htmx).  Paying is `paying.py`, the SME
owner's merchant view `merchant.py`; this module's router carries theirs too.

They are the end user's: a staff member holds `account.read` for the member's accounts, but
those are customers' money, not theirs, so these pages admit the end-user roles only and a
staff member's home is identity's staff page.  Paying goes through `api.submit_transfer`, the
same path as `POST /api/v1/transfers`; the statement reads `api_people.people_statement`, the
same function as `GET /api/v1/accounts/{id}/entries` (its RBAC, its audit of names shown).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity.rbac import Permission
from zhijin.payments import api_people, limits, service
from zhijin.payments.api import authorized_account
from zhijin.payments.expected import PaymentsHostDep
from zhijin.payments.module import MONEY
from zhijin.payments.web import abroad, merchant, paying
from zhijin.payments.web.common import INT64_MAX, caller_of, my_accounts, parse_day, signed
from zhijin.platform import i18n
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    HTML_LANG,
    ShellViewer,
    page_access,
    problem_text,
    render,
    web_msgid,
)

__all__ = ["balance_chart", "router"]


RECENT_ENTRIES = 10
STATEMENT_PAGE = 25
CHART_DAYS = 30
DAY_MS = 86_400_000

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
router.include_router(paying.router)
router.include_router(merchant.router)
router.include_router(abroad.router)


def _day(moment_ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=moment_ms)
    return moment.astimezone(ZoneInfo(i18n.DISPLAY_ZONE)).date().isoformat()


def balance_chart(
    opening: int,
    entries: Sequence[dict[str, Any]],
    *,
    days: Sequence[str],
    account: dict[str, Any],
    locale: str,
) -> dict[str, Any]:
    """The closing balance of each day in `days` (the last entry of a day wins; a day without
    entries keeps the day before's), as ECharts data: y as exact decimal strings, labels as
    the locale formats them."""
    closing: dict[str, int] = {}
    for entry in entries:
        closing[_day(int(entry["time_ms"]))] = int(entry["balance"])
    balance = opening
    values: list[int] = []
    for day in days:
        balance = closing.get(day, balance)
        values.append(balance)
    exponent = int(account["exponent"])
    return {
        "kind": "line",
        "name": account["id"],
        "x": [day[5:] for day in days],
        "y": [str(Decimal(value).scaleb(-exponent)) for value in values],
        "labels": [i18n.format_money(value, account["currency"], locale) for value in values],
    }


def _chart_days(now_ms: int) -> list[str]:
    return [_day(now_ms - (CHART_DAYS - 1 - n) * DAY_MS) for n in range(CHART_DAYS)]


# -- home --------------------------------------------------------------------------------------


@router.get("/money", response_class=HTMLResponse)
def money(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(MONEY)],
    platform: PaymentsHostDep,
) -> HTMLResponse:
    accounts = my_accounts(platform, viewer)
    recent: list[dict[str, Any]] = []
    chart = None
    first = accounts[0] if accounts else None
    if first is not None:
        guard, caller = caller_of(request)
        recent = api_people.people_statement(
            first["id"], platform, caller, guard, limit=RECENT_ENTRIES
        )["entries"]
        now_ms = platform.node.clock()
        days = _chart_days(now_ms)
        start_ms = now_ms - CHART_DAYS * DAY_MS
        opening, entries = service.balance_history(
            platform, account_id=first["id"], from_ms=start_ms, to_ms=now_ms + 1
        )
        chart = balance_chart(
            opening, entries, days=days, account=first, locale=i18n.request_locale(request)
        )
    return render(
        request,
        "payments/home.html",
        title=MONEY.label,
        accounts=accounts,
        first=first,
        recent=recent,
        signed=signed,
        chart_json=None if chart is None else json.dumps(chart, ensure_ascii=False),
    )


# -- statement ---------------------------------------------------------------------------------

SearchText = Annotated[str, Query(max_length=limits.STATEMENT_QUERY_CHARS_MAX)]
DayText = Annotated[str, Query(max_length=10)]


def _downloads(account_id: str, search: dict[str, str], locale: str) -> dict[str, str]:
    """The statement's download links (the API's routes, which read the same session): CSV
    with the same filters and headings in the viewer's language, camt.053 for the days."""
    days = {k: v for k, v in search.items() if k in ("from_date", "to_date") and v}
    csv_query = {**{k: v for k, v in search.items() if v}, "lang": HTML_LANG[locale]}
    base = f"/api/v1/accounts/{account_id}"
    return {
        "csv": f"{base}/statement.csv?{urlencode(csv_query)}",
        "camt053": f"{base}/statement.camt053" + (f"?{urlencode(days)}" if days else ""),
    }


@router.get("/money/accounts/{account_id}", response_class=HTMLResponse)
def account_page(
    request: Request,
    account_id: Annotated[str, Path(pattern=limits.ID_PATTERN)],
    viewer: Annotated[ShellViewer, page_access(MONEY)],
    platform: PaymentsHostDep,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    q: SearchText = "",
    from_date: DayText = "",
    to_date: DayText = "",
) -> HTMLResponse:
    """The statement of one of the viewer's accounts: counterparties by name, a search and a
    date range (local days; the last 30 by default), downloads, and older pages by htmx."""
    guard, caller = caller_of(request)
    account = authorized_account(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    search = {"q": q.strip(), "from_date": from_date.strip(), "to_date": to_date.strip()}
    locale = i18n.request_locale(request)
    error = None
    page: dict[str, Any] = {"entries": [], "next_before_entry": None}
    try:
        page = api_people.people_statement(
            account_id,
            platform,
            caller,
            guard,
            from_date=parse_day(search["from_date"]),
            to_date=parse_day(search["to_date"]),
            q=search["q"] or None,
            before_entry=before,
            limit=STATEMENT_PAGE,
        )
    except ZhijinError as exc:  # a bad date or period: said beside the search form
        error = problem_text(locale, exc)
    template = "payments/_entries.html" if before is not None else "payments/account.html"
    return render(
        request,
        template,
        title=web_msgid("page.statement"),
        account=account,
        entries=page["entries"],
        older=page["next_before_entry"],
        older_query=urlencode({k: v for k, v in search.items() if v}),
        search=search,
        searching=any(search.values()),
        downloads=_downloads(account_id, search, locale),
        error=error,
        signed=signed,
    )

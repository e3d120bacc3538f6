"""Credit's pages: the customer's own score, why it is what it is and how it changed, and their
decisions with the reasons in their language; the member's credit staff's decisions console (a
page of decisions filtered by outcome, one decision with its digests, model, policy version
and anchor, and the replay that re-scores it); the model registry with each model's card
(metrics, fairness table, hash, trainer and approver), every member's for the regulator.

Each page reads through credit's service and authorises as the API does (the same helpers of
`credit.api`): a page never shows more than the API would give the same viewer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from zhijin.credit import limits, permissions, service
from zhijin.credit.api import (
    OUTCOME_PATTERN,
    DecisionCursorQuery,
    member_filter,
    model_resource,
    my_subject,
    readable_decision,
)
from zhijin.credit.expected import CreditHostDep
from zhijin.credit.fairness import ATTRIBUTE_TITLES, group_labels
from zhijin.credit.module import DECISIONS, MODELS, MY_CREDIT
from zhijin.credit.policy import Outcome
from zhijin.identity.guard import Caller, Guard, get_guard
from zhijin.platform import i18n
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import ShellViewer, is_htmx, page_access, render, same_origin, web_msgid

__all__ = ["percent_of_ppm", "router", "score_chart"]

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)

HISTORY_SHOWN = 30  # score snapshots in the chart and the "why it changed" list
MY_DECISIONS_SHOWN = 20
DECISIONS_PAGE = 25
MODELS_PAGE = 50
PPM_PER_PERCENT = 10_000
MODEL_STATUS_PATTERN = "^(registered|approved|retired)$"
# The card's metric rows, in the order the evaluation table of docs/credit.md shows them.
METRIC_ROWS = (
    ("scorecard", web_msgid("credit.metric.scorecard")),
    ("gbdt", web_msgid("credit.metric.gbdt")),
    ("baseline_logistic_raw_features", web_msgid("credit.metric.baseline_logistic")),
    ("baseline_single_feature_checking_status", web_msgid("credit.metric.baseline_checking")),
)

ShaPath = Annotated[str, Path(pattern=limits.SHA256_PATTERN)]
IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]


def _caller(request: Request) -> tuple[Guard, Caller]:
    guard = get_guard(request)
    return guard, guard.caller(request)


def percent_of_ppm(ppm: int) -> str:
    """A probability in parts per million as a percentage with one decimal (half-even)."""
    value = (Decimal(int(ppm)) / PPM_PER_PERCENT).quantize(Decimal("0.1"), ROUND_HALF_EVEN)
    return f"{value}%"


def _in_locale(locale: str) -> Any:
    """The viewer's half of an item that carries both texts (`text_zh`, `text_en`)."""
    key = "text_zh" if locale == "zh_CN" else "text_en"

    def say(item: Mapping[str, Any]) -> str:
        return str(item.get(key) or "")

    return say


def score_chart(history: Sequence[Mapping[str, Any]], *, locale: str) -> dict[str, Any] | None:
    """The score over time (oldest first) as the shell's chart data, or None without history:
    x the day of each snapshot, y the score, the label what a person reads."""
    points = sorted(history, key=lambda row: int(row["seq"]))
    if not points:
        return None
    return {
        "kind": "line",
        "name": "score",
        "x": [i18n.format_datetime(int(row["at_ms"]), locale) for row in points],
        "y": [str(int(row["score"])) for row in points],
        "labels": [str(int(row["score"])) for row in points],
    }


# -- the customer's own -------------------------------------------------------------------------
@router.get("/credit", response_class=HTMLResponse)
def my_credit(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(MY_CREDIT)],
    platform: CreditHostDep,
) -> HTMLResponse:
    guard, caller = _caller(request)
    subject = my_subject(guard, caller)
    locale = i18n.request_locale(request)
    score = service.behaviour(platform, subject=subject)
    history = service.behaviour_history(
        platform, subject=subject, before_seq=None, limit=HISTORY_SHOWN
    )["history"]
    decisions = service.list_decisions(
        platform, member=None, subject=subject, limit=MY_DECISIONS_SHOWN
    )["decisions"]
    chart = score_chart(history, locale=locale)
    return render(
        request,
        "credit/my_credit.html",
        title=MY_CREDIT.label,
        score=score,
        history=history,
        decisions=decisions,
        say=_in_locale(locale),
        percent=percent_of_ppm,
        chart_json=None if chart is None else json.dumps(chart, ensure_ascii=False),
    )


# -- the member's decisions ---------------------------------------------------------------------
@router.get("/credit/decisions", response_class=HTMLResponse)
def decisions(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(DECISIONS)],
    platform: CreditHostDep,
    outcome: Annotated[str | None, Query(pattern=OUTCOME_PATTERN)] = None,
    before: DecisionCursorQuery = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    guard.require_member_side(caller)
    member = member_filter(guard, caller, permissions.REPORT_READ)
    page = service.list_decisions(
        platform,
        member=member,
        subject=None,
        before=before,
        limit=DECISIONS_PAGE,
        outcome=outcome,
    )
    part = before is not None and is_htmx(request)
    return render(
        request,
        "credit/_decision_rows.html" if part else "credit/decisions.html",
        title=DECISIONS.label,
        decisions=page["decisions"],
        older=page["next_before"],
        outcome=outcome,
        outcomes=Outcome.ALL,
        percent=percent_of_ppm,
    )


@router.get("/credit/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(
    request: Request,
    decision_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(DECISIONS)],
    platform: CreditHostDep,
) -> HTMLResponse:
    guard, caller = _caller(request)
    guard.require_member_side(caller)
    decision = readable_decision(platform, guard, caller, decision_id)
    return render(
        request,
        "credit/decision.html",
        title=web_msgid("page.credit_decision"),
        decision=decision,
        record=decision["decision"],
        say=_in_locale(i18n.request_locale(request)),
        percent=percent_of_ppm,
    )


@router.post("/credit/decisions/{decision_id}/replay", response_class=HTMLResponse)
def replay(
    request: Request,
    decision_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(DECISIONS)],
    platform: CreditHostDep,
) -> HTMLResponse:
    """Re-score the decision (as `POST /api/v1/credit/decisions/{id}/replay`) and show
    whether it matches its record and anchor; a difference is shown field by field."""
    same_origin(request)
    guard, caller = _caller(request)
    guard.require_member_side(caller)
    readable_decision(platform, guard, caller, decision_id)
    report = service.replay(platform, decision_id=decision_id)
    return render(
        request, "credit/_replay.html", title=web_msgid("page.credit_decision"), report=report
    )


# -- the model registry -------------------------------------------------------------------------
@router.get("/credit/models", response_class=HTMLResponse)
def models(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(MODELS)],
    platform: CreditHostDep,
    status: Annotated[str | None, Query(pattern=MODEL_STATUS_PATTERN)] = None,
    after: Annotated[str | None, Query(pattern=limits.SHA256_PATTERN)] = None,
) -> HTMLResponse:
    guard, caller = _caller(request)
    member = member_filter(guard, caller, permissions.MODEL_READ)
    page = service.list_models(
        platform, member=member, status=status, after_sha256=after, limit=MODELS_PAGE
    )
    return render(
        request,
        "credit/models.html",
        title=MODELS.label,
        models=page["models"],
        next_after=page["next_after_sha256"],
        status=status,
        every_member=member is None,
    )


def _fairness_rows(card: Mapping[str, Any] | None, locale: str) -> list[dict[str, Any]]:
    fairness = (card or {}).get("fairness") or {}
    rows = []
    for group in fairness.get("groups", []):
        title_zh, title_en = ATTRIBUTE_TITLES.get(group["attribute"], (group["attribute"],) * 2)
        label_zh, label_en = group_labels(group["attribute"], group["group"])
        zh = locale == "zh_CN"
        rows.append(
            {**group, "attribute_label": title_zh if zh else title_en,
             "group_label": label_zh if zh else label_en}
        )  # fmt: skip
    return rows


@router.get("/credit/models/{sha256}", response_class=HTMLResponse)
def model_page(
    request: Request,
    sha256: ShaPath,
    viewer: Annotated[ShellViewer, page_access(MODELS)],
    platform: CreditHostDep,
) -> HTMLResponse:
    guard, caller = _caller(request)
    model, resource = model_resource(platform, sha256)
    guard.authorize(caller, permission=permissions.MODEL_READ, resource=resource)
    card = model.pop("card")
    locale = i18n.request_locale(request)
    metrics = (card or {}).get("metrics") or {}
    return render(
        request,
        "credit/model.html",
        title=web_msgid("page.credit_model"),
        model=model,
        card=card,
        file_problem=model.pop("file_problem", None),
        metric_rows=[(label, metrics[key]) for key, label in METRIC_ROWS if key in metrics],
        fairness=(card or {}).get("fairness"),
        fairness_rows=_fairness_rows(card, locale),
        feature_label="label_zh" if locale == "zh_CN" else "label_en",
    )

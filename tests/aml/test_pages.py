"""AML's pages over TestClient: the analyst's queue (filters, oldest due first, pages), a case
worked from open to reported through the page forms (each step's reason kept, separation of
duties shown and enforced, refusals translated with the status in words), the payment graph,
the report links and the filing's anchor; the rules page and its dry run (counts, customers,
a bad draft refused by field); the regulator's feed and flows pages, read-only and audited;
and who is refused which page.  The browser journeys are in tests/e2e/test_aml.py."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, me
from zhijin.aml import service
from zhijin.identity.rbac import Role
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings

YUAN = 100
ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-GB"}
ALICE, BOB = "did:key:z6MkAlicePages", "did:key:z6MkBobPages"
# English words of the machine's values that must not show on a zh-CN page.
RAW_WORDS = ("investigating", "escalated", "dismissed", "large_value", "individual_domestic")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, TestClient]]:
    data = tmp_path_factory.mktemp("aml-pages")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", projector="thread",
        audit_anchor_interval_s=0,
    )  # fmt: skip
    init_data_dir(settings, members=1)
    token = (data / "operator-token").read_text().strip()
    with (
        Platform(settings) as platform,
        TestClient(create_app(platform=platform), base_url="https://testserver") as client,
    ):
        operator = {"Authorization": f"Bearer {token}"}
        member = platform.node.key.did
        for account_id, owner, kind in (
            ("pg-settle", member, "settlement"),
            ("pg-alice", ALICE, "customer"),
            ("pg-bob", BOB, "customer"),
        ):
            body = {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}
            answer = client.post("/api/v1/accounts", json=body, headers=operator)
            assert answer.status_code in (200, 201), answer.text
        for transfer_id, debit, credit, amount in (
            ("pg-fund", "pg-settle", "pg-alice", 600_000),
            ("pg-big", "pg-alice", "pg-bob", 500_000),
            ("pg-small", "pg-bob", "pg-alice", 150_000),
        ):
            body = {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
                    "amount": amount * YUAN, "currency": "CNY"}  # fmt: skip
            answer = client.post("/api/v1/transfers", json=body, headers=operator)
            assert answer.status_code in (200, 201), answer.text
        platform.projections.wait_for(platform.store.head_height() or 0, projection=["aml"])
        yield platform, client


@pytest.fixture(scope="module")
def staff(node: tuple[Platform, TestClient]) -> dict[str, dict[str, str]]:
    _, client = node
    return {
        "analyst": create_staff(client, roles={Role.RISK_ANALYST}),
        "analyst2": create_staff(client, roles={Role.RISK_ANALYST}),
        "compliance": create_staff(client, roles={Role.COMPLIANCE_OFFICER}),
        "officer": create_staff(client, roles={Role.BANK_OFFICER}),
        "regulator": create_staff(client, roles={Role.REGULATOR}),
    }


def _get(client: TestClient, path: str, headers: dict[str, str], lang: dict[str, str] = ZH) -> Any:
    return client.get(path, headers={**headers, **lang}, follow_redirects=False)


def _post(
    client: TestClient, path: str, data: dict[str, str], headers: dict[str, str],
    lang: dict[str, str] = ZH,
) -> Any:  # fmt: skip
    return client.post(path, data=data, headers={**headers, **lang}, follow_redirects=False)


def _text(page: str) -> str:
    """What a person reads: the page without tags, attributes or scripts' data."""
    body = page.split("<main", 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_pages_are_for_their_roles(node: Any, staff: Any) -> None:
    _, client = node
    signed_out = client.get("/aml/alerts", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/signin")
    for path in ("/aml/alerts", "/aml/cases", "/aml/rules", "/aml/feed", "/aml/flows"):
        assert _get(client, path, staff["officer"]).status_code == 403, path
    for path in ("/aml/alerts", "/aml/cases", "/aml/rules"):
        assert _get(client, path, staff["regulator"]).status_code == 403, path
    for path in ("/aml/feed", "/aml/flows"):
        assert _get(client, path, staff["analyst"]).status_code == 403, path
        assert _get(client, path, staff["regulator"]).status_code == 200, path
    nav = _get(client, "/aml/alerts", staff["analyst"]).text
    assert 'href="/aml/rules"' in nav and 'href="/aml/feed"' not in nav


def test_the_queue_shows_the_alerts_oldest_due_first_in_words(node: Any, staff: Any) -> None:
    _, client = node
    page = _get(client, "/aml/alerts", staff["analyst"])
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "大额交易" in text and "现金收付（人民币）" in text and "个人境内转账（人民币）" in text
    assert not [w for w in RAW_WORDS if w in text]
    dues = re.findall(r'data-alert="([0-9a-f]{32})"', page.text)
    assert len(dues) >= 3
    platform, _ = node
    queue = service.alert_queue(platform, member=platform.node.key.did, limit=100)["items"]
    keys = [i["alert"].due_day or i["alert"].day for i in queue]
    assert keys == sorted(keys)
    assert dues == [i["alert"].alert_id for i in queue][: len(dues)]
    english = _text(_get(client, "/aml/alerts", staff["analyst"], EN).text)
    assert "Large-value transaction" in english and "大额" not in english
    # Filters: a typology, a customer.
    only = _get(client, "/aml/alerts?typology=large_value&customer=" + BOB, staff["analyst"])
    rows = re.findall(r'data-typology="([a-z_]+)"', only.text.split('id="queue"', 1)[-1])
    assert rows and set(rows) == {"large_value"}
    assert _get(client, "/aml/alerts?typology=BAD!", staff["analyst"]).status_code == 422


def test_the_queue_pages_on(node: Any, staff: Any) -> None:
    platform, _ = node
    member = platform.node.key.did
    first = service.alert_queue(platform, member=member, limit=1)
    assert first["next_after"] is not None
    second = service.alert_queue(platform, member=member, limit=1, after=first["next_after"])
    everything = service.alert_queue(platform, member=member, limit=100)["items"]
    assert [i["alert"].alert_id for i in first["items"] + second["items"]] == [
        i["alert"].alert_id for i in everything[:2]
    ]


def _case_page(client: TestClient, case_id: str, headers: dict[str, str]) -> str:
    page = _get(client, f"/aml/cases/{case_id}", headers)
    assert page.status_code == 200, page.text
    return str(page.text)


def _error(page: str) -> str:
    found = re.search(r'id="step-error"[^>]*>([^<]+)<', page)
    assert found, page
    return html.unescape(found.group(1))


def test_a_case_is_worked_from_open_to_reported_through_the_pages(node: Any, staff: Any) -> None:
    platform, client = node
    opened = _post(client, "/aml/cases",
                   {"case_id": "pg-case", "customer": ALICE, "reason": "大额转入后立即转出"},
                   staff["analyst"])  # fmt: skip
    assert opened.status_code == 303 and opened.headers["location"] == "/aml/cases/pg-case"
    # The same form again (a resend) answers the same case.
    again = _post(client, "/aml/cases",
                  {"case_id": "pg-case", "customer": ALICE, "reason": "大额转入后立即转出"},
                  staff["analyst"])  # fmt: skip
    assert again.status_code == 303
    page = _case_page(client, "pg-case", staff["analyst"])
    assert 'data-status="open"' in page and "已立案" in _text(page)
    # Separation of duties, shown: the opener is told, and offered no dismissal.
    assert 'id="sod-notice"' in page and 'id="step-dismissed"' not in page
    assert 'id="step-investigating"' in page
    assert 'id="step-dismissed"' in _case_page(client, "pg-case", staff["analyst2"])
    # ... and enforced: a forced dismissal by the opener is refused, in words.
    forced = _post(client, "/aml/cases/pg-case/steps", {"to": "dismissed", "reason": "自己排除"},
                   staff["analyst"])  # fmt: skip
    assert forced.status_code == 200 and 'id="step-error"' in forced.text
    assert "dismiss" not in _error(forced.text)
    # The graph around Alice: both payments, the flagged ones marked.
    spec = json.loads(html.unescape(re.search(r'data-graph="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
    assert {n["id"] for n in spec["nodes"]} >= {ALICE, BOB}
    assert any(e["flagged"] for e in spec["edges"])
    assert all("¥" in e["label"] for e in spec["edges"])
    # Alerts grouped by typology.
    assert 'data-typology="large_value"' in page
    # open -> investigating -> escalated, each with its reason.
    for to, reason in (
        ("investigating", "调取交易明细"),
        ("escalated", "资金快进快出，疑似过渡账户"),
    ):
        moved = _post(client, "/aml/cases/pg-case/steps", {"to": to, "reason": reason},
                      staff["analyst"])  # fmt: skip
        assert moved.status_code == 303, moved.text
    page = _case_page(client, "pg-case", staff["analyst"])
    assert "资金快进快出，疑似过渡账户" in page and 'data-to="escalated"' in page
    # A step the workflow does not allow: refused with both statuses in words.
    back = _post(client, "/aml/cases/pg-case/steps", {"to": "investigating", "reason": "再查一次"},
                 staff["analyst"])  # fmt: skip
    message = _error(back.text)
    assert "已升级" in message and "调查中" in message
    assert not [w for w in RAW_WORDS if w in message]
    english = _post(client, "/aml/cases/pg-case/steps", {"to": "investigating", "reason": "again"},
                    staff["analyst"], EN)  # fmt: skip
    assert "Escalated" in _error(english.text) or "escalated" in _error(english.text)
    # The analyst is offered no filing; the compliance officer files.
    assert 'id="file-report"' not in page
    compliance_page = _case_page(client, "pg-case", staff["compliance"])
    assert 'id="file-report"' in compliance_page and 'id="export-xml"' in compliance_page
    filed = _post(client, "/aml/cases/pg-case/filing", {"reason": "报送可疑交易报告"},
                  staff["compliance"])  # fmt: skip
    assert filed.status_code == 303, filed.text
    page = _case_page(client, "pg-case", staff["compliance"])
    assert 'data-status="reported"' in page and "已报送" in _text(page)
    digest = re.search(r'id="filing-hash">([0-9a-f]{64})<', page)
    assert digest is not None
    assert platform.notary_anchors.anchor_record(digest.group(1)) is not None
    assert re.search(r'id="filing-anchor" href="/blocks/\d+"', page)
    report = client.get("/api/v1/aml/cases/pg-case/report?format=xml", headers=staff["compliance"])
    assert report.status_code == 200 and digest.group(1) in _sha(report.content)


def _sha(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


def test_the_api_says_a_status_in_words_too(node: Any, staff: Any) -> None:
    _, client = node
    body = {"case_id": "pg-api", "customer": BOB, "reason": "收到大额转账"}
    assert client.post("/api/v1/aml/cases", json=body, headers=staff["analyst"]).status_code == 201
    wrong = client.post("/api/v1/aml/cases/pg-api/steps", json={"to": "escalated", "reason": "直接升级"},
                        headers={**staff["analyst"], **ZH})  # fmt: skip
    assert wrong.status_code == 409
    problem = wrong.json()
    assert problem["case_status"] == "open" and problem["to"] == "escalated"  # for machines
    assert "已立案" in problem["detail"] and "已升级" in problem["detail"]
    assert "open" not in problem["detail"] and "escalated" not in problem["detail"]


def test_the_rules_dry_run_counts_alerts_and_names_customers(node: Any, staff: Any) -> None:
    _, client = node
    page = _get(client, "/aml/rules", staff["analyst"])
    assert page.status_code == 200
    assert 'name="threshold_individual_domestic_cny" value="500000.00"' in page.text
    form = dict(re.findall(r'<input id="[a-z_]+" name="([a-z_]+)" value="([^"]*)"', page.text))
    assert len(form) >= 20
    same = _post(client, "/aml/rules/dry-run", form, staff["analyst"])
    assert same.status_code == 200, same.text
    counts = re.search(r"修改后的规则产生 (\d+) 条预警.*现行规则产生 (\d+) 条", _text(same.text))
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) >= 3
    # A lower individual domestic threshold also catches Bob's ¥150,000 to Alice.
    lower = {**form, "threshold_individual_domestic_cny": "100000"}
    more = _post(client, "/aml/rules/dry-run", lower, staff["analyst"])
    counts = re.search(r"修改后的规则产生 (\d+) 条预警.*现行规则产生 (\d+) 条", _text(more.text))
    assert counts and int(counts.group(1)) > int(counts.group(2))
    assert BOB in more.text and 'id="dry-run-customers"' in more.text
    bad = _post(client, "/aml/rules/dry-run",
                {**form, "threshold_cash_cny": "abc", "fan_counterparties_min": "0"},
                staff["analyst"])  # fmt: skip
    assert re.findall(r'data-field="([a-z_]+)"', bad.text) == [
        "fan_counterparties_min",
        "threshold_cash_cny",
    ]
    message = _text(bad.text)
    assert "修改后的规则有误" in message and "现金收付（人民币）" in message
    assert "分散转入/转出的最少对手人数" in message
    cross_site = client.post("/aml/rules/dry-run", data=form,
                             headers={**staff["analyst"], "Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert cross_site.status_code == 403


def test_the_regulator_sees_the_feed_and_flows_read_only_and_audited(node: Any, staff: Any) -> None:
    platform, client = node
    feed = _get(client, "/aml/feed", staff["regulator"])
    assert feed.status_code == 200
    assert re.search(r'id="feed" data-after="\d+"', feed.text)
    assert 'data-transfer="pg-big"' in feed.text and "所有成员机构" in feed.text
    words = json.loads(html.unescape(re.search(r'data-words="([^"]+)"', feed.text).group(1)))  # type: ignore[union-attr]
    assert words["typology"]["large_value"] == "大额交易"
    assert re.search(r'src="/static/aml/[0-9a-f]{12}/aml-feed\.js"', feed.text)
    script = re.search(r'src="(/static/aml/[0-9a-f]{12}/aml-feed\.js)"', feed.text).group(1)  # type: ignore[union-attr]
    served = client.get(script)
    assert served.status_code == 200 and "EventSource" in served.text
    assert client.get("/static/aml/000000000000/aml-feed.js").status_code == 404
    flows = _get(client, "/aml/flows", staff["regulator"])
    assert flows.status_code == 200
    charts = [
        json.loads(html.unescape(c)) for c in re.findall(r'data-series-chart="([^"]+)"', flows.text)
    ]
    assert charts and any("CNY" in c["title"] for c in charts)
    volume = next(c for c in charts if "金额" in c["title"])
    assert sum(int(v.split(".")[0]) for s in volume["series"] for v in s["y"]) == 1_250_000
    assert 'id="lvr-xml"' in flows.text and "pg-case" in flows.text
    assert (
        _get(
            client, "/aml/flows?day_from=2026-01-01&day_to=2026-12-31", staff["regulator"]
        ).status_code
        == 200
    )
    regulator = me(client, staff["regulator"])["user_id"]
    reads = [e for e in platform.audit.entries(limit=2000)
             if e.actor == f"user:{regulator}" and e.action == "aml_feed.read"]  # fmt: skip
    assert reads and reads[-1].outcome == "granted"

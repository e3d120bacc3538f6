"""Credit's pages over TestClient: what each role is shown (the customer's score, reasons and
decisions in their language; the staff console's decisions, filter, detail and replay; the
registry with the card's figures, every member's for the regulator) and what each is refused
(signed out, another role's page, another customer's decision, a forged cross-site replay, bad
query values).  The browser journeys are in tests/e2e/test_credit.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.credit.conftest import Node
from tests.credit.helpers import APPLICANT, POLICY
from tests.platform.users import create_staff, me, register_and_login
from zhijin.chain.codec import canonical
from zhijin.credit.tables import decisions_table
from zhijin.identity.rbac import Role

API = "/api/v1/credit"
ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-GB"}


@pytest.fixture(scope="module")
def world(node: Node, model_file: Path) -> dict[str, Any]:
    """A registered, approved model and a policy; a customer with two decisions about them
    (one declined), made by an officer."""
    staff = {
        "maker": create_staff(node.client, roles={Role.RISK_ANALYST}),
        "checker": create_staff(node.client, roles={Role.RISK_ANALYST}),
        "officer": create_staff(node.client, roles={Role.BANK_OFFICER}),
        "regulator": create_staff(node.client, roles={Role.REGULATOR}),
        "auditor": create_staff(node.client, roles={Role.AUDITOR}),
    }
    registered = node.client.post(
        f"{API}/models", content=model_file.read_bytes(), headers=staff["maker"]
    )
    assert registered.status_code == 200, registered.text
    sha = registered.json()["model"]["sha256"]
    assert node.post(f"{API}/models/{sha}/approve", headers=staff["checker"]).status_code == 200
    saved = node.post(f"{API}/policies/retail", {"version": 1, "rules": POLICY},
                      headers=staff["maker"])  # fmt: skip
    assert saved.status_code == 200, saved.text
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    risky = {"checking_status": "overdrawn", "duration_months": 60, "age_years": 20,
             "amount_minor": 2_000_000, "savings": "below_100", "credit_history": "delayed_in_past"}  # fmt: skip
    decided = {}
    for decision_id, changes in (("w-good", {}), ("w-risky", risky)):
        body = {"decision_id": decision_id, "policy_id": "retail", "subject": did,
                "applicant": {**APPLICANT, **changes}}  # fmt: skip
        answer = node.post(f"{API}/decisions", body, headers=staff["officer"])
        assert answer.status_code == 200, answer.text
        decided[decision_id] = answer.json()["decision"]
    return {"staff": staff, "customer": customer, "did": did, "sha": sha, "decided": decided}


def _page(node: Node, path: str, headers: dict[str, str], lang: dict[str, str] = ZH) -> Any:
    return node.client.get(path, headers={**headers, **lang}, follow_redirects=False)


def test_the_customer_sees_their_score_its_reasons_and_their_decisions_in_their_language(
    node: Node, world: dict[str, Any]
) -> None:
    decided = world["decided"]["w-risky"]
    assert decided["reasons"], "a risky applicant has adverse reasons"
    reason = decided["reasons"][0]
    for lang, text, other in ((ZH, "text_zh", "text_en"), (EN, "text_en", "text_zh")):
        page = _page(node, "/credit", world["customer"], lang)
        assert page.status_code == 200, page.text
        html = page.text
        assert re.search(r'id="my-score">\d+<', html)
        assert 'data-code="months_on_platform"' in html  # every rule's contribution
        assert 'data-decision="w-good"' in html and 'data-decision="w-risky"' in html
        assert f'data-code="{reason["code"]}"' in html
        assert _escaped(reason[text]) in html and _escaped(reason[other]) not in html
    assert "拒绝" in _page(node, "/credit", world["customer"], ZH).text or (
        decided["outcome"] != "decline"
    )


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "'", "&#39;").replace('"', "&#34;")  # fmt: skip


def test_an_inflow_moves_the_score_and_the_page_says_why(node: Node, world: dict[str, Any]) -> None:
    before = _score(_page(node, "/credit", world["customer"]).text)
    paid = {"id": "w-repay-1", "subject": world["did"], "due_at_ms": 1_000, "paid_at_ms": 2_000}
    assert node.post(f"{API}/repayments", paid).status_code == 200
    html = _page(node, "/credit", world["customer"], EN).text
    assert _score(html) == before + 10
    assert f"from {before} to {before + 10}" in html
    assert "1 instalments paid on time" in html


def _score(html: str) -> int:
    found = re.search(r'id="my-score">(\d+)<', html)
    assert found is not None, html
    return int(found.group(1))


def test_the_officer_pages_the_decisions_filters_by_outcome_and_opens_one(
    node: Node, world: dict[str, Any]
) -> None:
    officer = world["staff"]["officer"]
    listing = _page(node, "/credit/decisions", officer)
    assert listing.status_code == 200, listing.text
    assert 'data-decision="w-good"' in listing.text and 'data-decision="w-risky"' in listing.text
    outcome = world["decided"]["w-risky"]["outcome"]
    filtered = _page(node, f"/credit/decisions?outcome={outcome}", officer).text
    rows = re.findall(r'data-outcome="(\w+)"', filtered)
    assert rows and set(rows) == {outcome}
    record = world["decided"]["w-good"]
    detail = _page(node, "/credit/decisions/w-good", officer, EN)
    assert detail.status_code == 200
    for value in (record["input_sha256"], record["model_sha256"], "retail, version 1"):
        assert value in detail.text
    assert 'id="anchor"><a href="/txs/' in detail.text


def test_decisions_come_one_page_at_a_time(node: Node, world: dict[str, Any]) -> None:
    officer = world["staff"]["officer"]
    risky_ms = world["decided"]["w-risky"]["decided_at_ms"]
    good_ms = world["decided"]["w-good"]["decided_at_ms"]
    cursor = f"{risky_ms}:w-risky"  # what the older link after w-risky's row carries
    older = _page(node, f"/credit/decisions?before={cursor}", {**officer, "HX-Request": "true"})
    assert older.status_code == 200
    assert "<html" not in older.text  # the rows alone, for htmx to append
    assert 'data-decision="w-risky"' not in older.text
    # Newest first, one millisecond's by id: w-good follows w-risky unless it is newer or
    # of the same millisecond (its id sorts first).
    assert ('data-decision="w-good"' in older.text) == (good_ms < risky_ms)


def test_replay_shows_a_match_then_a_mismatch_once_the_record_is_tampered(
    node: Node, world: dict[str, Any]
) -> None:
    officer = world["staff"]["officer"]
    same = node.client.post("/credit/decisions/w-good/replay", headers={**officer, **EN})
    assert same.status_code == 200, same.text
    assert 'data-same="true"' in same.text and "Match" in same.text
    record = dict(world["decided"]["w-good"])
    forged = {**record, "points": record["points"] + 1}
    with node.platform.platform_engine.begin() as conn:
        conn.execute(
            update(decisions_table)
            .where(decisions_table.c.decision_id == "w-good")
            .values(record=canonical(forged).decode())
        )
    try:
        differs = node.client.post("/credit/decisions/w-good/replay", headers={**officer, **ZH})
        assert 'data-same="false"' in differs.text and "不一致" in differs.text
        assert 'id="replay-differences"' in differs.text
    finally:
        with node.platform.platform_engine.begin() as conn:
            conn.execute(
                update(decisions_table)
                .where(decisions_table.c.decision_id == "w-good")
                .values(record=canonical(record).decode())
            )


def test_a_replay_sent_from_another_site_is_refused(node: Node, world: dict[str, Any]) -> None:
    officer = world["staff"]["officer"]
    forged = node.client.post(
        "/credit/decisions/w-good/replay", headers={**officer, "Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403
    assert "data-same" not in forged.text


def test_the_model_card_shows_hash_trainer_approver_and_the_regulator_sees_every_member(
    node: Node, world: dict[str, Any]
) -> None:
    sha, staff = world["sha"], world["staff"]
    card = _page(node, f"/credit/models/{sha}", staff["officer"], EN)
    assert card.status_code == 200, card.text
    assert sha in card.text
    assert me(node.client, staff["maker"])["user_id"] in card.text
    assert me(node.client, staff["checker"])["user_id"] in card.text
    assert "approved: decides" in card.text
    regulator = _page(node, "/credit/models", staff["regulator"], EN)
    assert regulator.status_code == 200
    assert "Every member&#39;s registered models" in regulator.text
    assert f'data-model="{sha}"' in regulator.text
    assert _page(node, "/credit/models", staff["auditor"]).status_code == 200


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("customer", "/credit/decisions"),
        ("customer", "/credit/models"),
        ("customer", "/credit/decisions/w-good"),
        ("officer", "/credit"),
        ("regulator", "/credit/decisions"),
        ("regulator", "/credit/decisions/w-good"),
        ("regulator", "/credit"),
        ("auditor", "/credit/decisions"),
    ],
)
def test_each_role_is_refused_the_others_pages(
    node: Node, world: dict[str, Any], who: str, path: str
) -> None:
    headers = world["customer"] if who == "customer" else world["staff"][who]
    refused = _page(node, path, headers)
    assert refused.status_code == 403, (who, path, refused.status_code)
    assert "w-good" not in refused.text or path.endswith("w-good")


def test_another_customer_never_sees_my_decisions_and_signed_out_is_sent_to_sign_in(
    node: Node, world: dict[str, Any]
) -> None:
    stranger = register_and_login(node.client)
    page = _page(node, "/credit", stranger)
    assert page.status_code == 200
    assert "w-good" not in page.text and 'id="no-decisions"' in page.text
    for path in ("/credit", "/credit/decisions", "/credit/models"):
        anonymous = node.client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/signin?next=")


@pytest.mark.parametrize(
    "path",
    [
        "/credit/decisions?outcome=maybe",
        "/credit/decisions?before=-1",
        "/credit/decisions?before=abc",
        "/credit/decisions?before=1700000000000",  # a time alone: no longer a cursor
        "/credit/decisions?before=1700000000000:",
        "/credit/models?status=burnt",
        "/credit/models/not-a-hash",
        "/credit/decisions/" + "x" * 300,
    ],
)
def test_bad_query_values_are_refused(node: Node, world: dict[str, Any], path: str) -> None:
    answer = _page(node, path, world["staff"]["officer"])
    assert answer.status_code in (404, 422), (path, answer.status_code)


def test_an_unknown_model_or_decision_is_not_found(node: Node, world: dict[str, Any]) -> None:
    officer = world["staff"]["officer"]
    assert _page(node, "/credit/models/" + "0" * 64, officer).status_code == 404
    assert _page(node, "/credit/decisions/no-such", officer).status_code == 404


def test_member_staff_read_a_customers_score_and_a_customer_is_refused(
    node: Node, world: dict[str, Any]
) -> None:
    path = f"{API}/scores/{world['did']}"
    officer = node.get(path, headers=world["staff"]["officer"])
    assert officer.status_code == 200 and officer.json()["subject"] == world["did"]
    assert node.get(path).status_code == 200  # the operator, as the member
    refused = node.get(path, headers=world["customer"])
    assert refused.status_code == 403
    assert node.get(f"{API}/scores/not-a-did", headers=world["staff"]["officer"]).status_code == 422

"""AML through a real node: payments committed through the payments API, the monitor's alerts
over them, the case workflow with its separation of duties and role refusals, the filing
anchored on chain, the exports well-formed, and the regulator's reads audited."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, me
from zhijin.identity.rbac import Role
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings

API = "/api/v1/aml"
YUAN = 100


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Platform, TestClient, dict[str, str]]]:
    data = tmp_path_factory.mktemp("aml-node")
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
        yield platform, client, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def paid(node: tuple[Platform, TestClient, dict[str, str]]) -> str:
    """Alice pays Bob exactly the individual domestic threshold: a large-value report each."""
    platform, client, operator = node
    member = platform.node.key.did
    for account_id, owner, kind in (
        ("aml-settle", member, "settlement"),
        ("aml-alice", "did:key:z6MkAliceAml", "customer"),
        ("aml-bob", "did:key:z6MkBobAml", "customer"),
    ):
        body = {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}
        assert client.post("/api/v1/accounts", json=body, headers=operator).status_code in (
            200,
            201,
        )
    for transfer_id, debit, credit, amount in (
        ("aml-fund", "aml-settle", "aml-alice", 600_000 * YUAN),
        ("aml-big", "aml-alice", "aml-bob", 500_000 * YUAN),
    ):
        body = {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
                "amount": amount, "currency": "CNY"}  # fmt: skip
        answer = client.post("/api/v1/transfers", json=body, headers=operator)
        assert answer.status_code in (200, 201), answer.text
    platform.projections.wait_for(platform.store.head_height() or 0, projection=["aml"])
    return "did:key:z6MkAliceAml"


@pytest.fixture(scope="module")
def staff(node: tuple[Platform, TestClient, dict[str, str]]) -> dict[str, dict[str, str]]:
    _, client, _ = node
    return {
        "analyst": create_staff(client, roles={Role.RISK_ANALYST}),
        "analyst2": create_staff(client, roles={Role.RISK_ANALYST}),
        "compliance": create_staff(client, roles={Role.COMPLIANCE_OFFICER}),
        "officer": create_staff(client, roles={Role.BANK_OFFICER}),
        "regulator": create_staff(client, roles={Role.REGULATOR}),
    }


def test_committed_payments_raise_large_value_reports(node: Any, paid: str, staff: Any) -> None:
    _, client, _ = node
    answer = client.get(f"{API}/alerts", params={"customer": paid}, headers=staff["analyst"])
    assert answer.status_code == 200, answer.text
    alerts = answer.json()["alerts"]
    large = [a for a in alerts if a["typology"] == "large_value"]
    # The funding from the settlement account is a cash deposit; the payment a domestic one.
    assert sorted((a["rule_id"], a["direction"], a["amount"]) for a in large) == [
        ("cash_cny", "in", "600000.00"),
        ("individual_domestic_cny", "out", "500000.00"),
    ]
    assert large[0]["due_day"] > large[0]["day"]


def test_a_bank_officer_is_refused_and_the_regulator_reads_everything_audited(
    node: Any, paid: str, staff: Any
) -> None:
    platform, client, _ = node
    refused = client.get(f"{API}/alerts", headers=staff["officer"])
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    seen = client.get(f"{API}/alerts", headers=staff["regulator"])
    assert seen.status_code == 200 and seen.json()["alerts"]
    regulator = me(client, staff["regulator"])["user_id"]
    entries = platform.audit.entries(limit=1000)
    reads = [e for e in entries if e.actor == f"user:{regulator}" and e.action == "aml_alert.read"]
    assert reads and reads[-1].outcome == "granted" and reads[-1].details["role"] == "regulator"
    # The regulator reads, never writes.
    opened = client.post(
        f"{API}/cases", json={"case_id": "c-reg", "customer": paid, "reason": "regulator tries"},
        headers=staff["regulator"],
    )  # fmt: skip
    assert opened.status_code == 403


def test_the_case_workflow_with_separation_of_duties_and_a_filing_on_chain(
    node: Any, paid: str, staff: Any
) -> None:
    platform, client, _ = node
    body = {"case_id": "c-alice", "customer": paid, "reason": "large transfer after funding"}
    opened = client.post(f"{API}/cases", json=body, headers=staff["analyst"])
    assert opened.status_code == 201, opened.text
    assert opened.json()["status"] == "open" and opened.json()["alerts"]
    again = client.post(f"{API}/cases", json=body, headers=staff["analyst"])
    assert (again.status_code, again.json()["exists"]) == (200, True)
    short = client.post(f"{API}/cases/c-alice/steps", json={"to": "investigating", "reason": "x"},
                        headers=staff["analyst"])  # fmt: skip
    assert short.status_code == 422
    own = client.post(f"{API}/cases/c-alice/steps", json={"to": "dismissed", "reason": "looks fine to me"},
                      headers=staff["analyst"])  # fmt: skip
    assert (own.status_code, own.json()["code"]) == (403, "sod_self_approval")
    skip = client.post(f"{API}/cases/c-alice/filing", json={"reason": "file it now"},
                       headers=staff["compliance"])  # fmt: skip
    assert (skip.status_code, skip.json()["code"]) == (409, "case_not_escalated")
    for to, who in (("investigating", "analyst2"), ("escalated", "analyst2")):
        step = client.post(f"{API}/cases/c-alice/steps", json={"to": to, "reason": f"step to {to}"},
                           headers=staff[who])  # fmt: skip
        assert step.status_code == 200, step.text
    analyst_files = client.post(f"{API}/cases/c-alice/filing", json={"reason": "file it"},
                                headers=staff["analyst"])  # fmt: skip
    assert analyst_files.status_code == 403
    filed = client.post(f"{API}/cases/c-alice/filing", json={"reason": "suspicious: filed"},
                        headers=staff["compliance"])  # fmt: skip
    assert filed.status_code == 200, filed.text
    case = filed.json()
    assert case["status"] == "reported" and case["filing_height"] is not None
    assert [s["to_status"] for s in case["steps"]] == [
        "open",
        "investigating",
        "escalated",
        "reported",
    ]
    assert case["steps"][1]["role"] == "risk_analyst"
    anchor = platform.notary_anchors.anchor_record(case["filing_sha256"])
    assert anchor is not None
    report = client.get(
        f"{API}/cases/c-alice/report", params={"format": "xml"}, headers=staff["compliance"]
    )
    root = ET.fromstring(report.content)
    assert root.tag.endswith("SuspiciousTransactionReport") and root.get("case_id") == "c-alice"
    import hashlib

    assert hashlib.sha256(report.content).hexdigest() == case["filing_sha256"]
    after = client.post(f"{API}/cases/c-alice/steps", json={"to": "dismissed", "reason": "too late now"},
                        headers=staff["analyst2"])  # fmt: skip
    assert (after.status_code, after.json()["code"]) == (409, "case_step_not_allowed")


def test_large_value_exports_are_well_formed_and_filing_marks_them(
    node: Any, paid: str, staff: Any
) -> None:
    _, client, _ = node
    alerts = client.get(
        f"{API}/alerts", params={"typology": "large_value"}, headers=staff["compliance"]
    ).json()
    day = alerts["alerts"][0]["day"]
    params = {"day_from": day, "day_to": day}
    xml = client.get(
        f"{API}/large-value/export", params={**params, "format": "xml"}, headers=staff["compliance"]
    )
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(xml.content)
    assert {r.get("rule_id") for r in root} >= {"individual_domestic_cny"}
    assert all(r.find("{urn:zhijin:aml:lvr:1}Transactions") is not None for r in root)
    csv = client.get(
        f"{API}/large-value/export", params={**params, "format": "csv"}, headers=staff["compliance"]
    )
    assert csv.content.decode("utf-8-sig").splitlines()[0].startswith("alert_id,member,customer")
    filed = client.post(f"{API}/large-value/filings", json=params, headers=staff["compliance"])
    assert filed.status_code == 200 and filed.json()["filed"] >= 1
    assert (
        client.post(f"{API}/large-value/filings", json=params, headers=staff["compliance"]).json()[
            "filed"
        ]
        == 0
    )
    listed = client.get(f"{API}/large-value", params=params, headers=staff["analyst"]).json()[
        "reports"
    ]
    assert listed and all(r["filed"] for r in listed)
    wide = client.get(f"{API}/large-value", params={"day_from": "2026-01-01", "day_to": "2026-12-31"},
                      headers=staff["analyst"])  # fmt: skip
    assert (wide.status_code, wide.json()["code"]) == (422, "report_range_invalid")


def test_the_regulator_queries_transactions_of_every_member(
    node: Any, paid: str, staff: Any
) -> None:
    _, client, _ = node
    alerts = client.get(f"{API}/alerts", headers=staff["regulator"]).json()["alerts"]
    day = alerts[0]["day"]
    moves = client.get(
        f"{API}/transactions", params={"day_from": day, "day_to": day}, headers=staff["regulator"]
    )
    assert moves.status_code == 200
    assert {m["transfer_id"] for m in moves.json()["movements"]} >= {"aml-fund", "aml-big"}
    refused = client.get(
        f"{API}/transactions", params={"day_from": day, "day_to": day}, headers=staff["analyst"]
    )
    assert refused.status_code == 403

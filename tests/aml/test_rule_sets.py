"""A member's monitoring rules saved on chain under maker-checker: an analyst proposes a version,
a compliance officer (never the proposer) approves it, and the monitor judges the member's
customers by it from the next block; a reindex derives the same alerts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.platform.users import create_staff, me
from zhijin.aml.monitor import alerts_table
from zhijin.aml.rules import default_rules
from zhijin.identity.rbac import Role
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.gateway import MemberGateway

API = "/api/v1/aml"
YUAN = 100


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, TestClient, Any]]:
    data = tmp_path_factory.mktemp("aml-rules")
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
            ("r-settle", member, "settlement"),
            ("r-alice", "did:key:z6MkAliceRules", "customer"),
            ("r-bob", "did:key:z6MkBobRules", "customer"),
        ):
            body = {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}
            assert client.post("/api/v1/accounts", json=body, headers=operator).status_code in (
                200,
                201,
            )
        yield platform, client, operator


@pytest.fixture(scope="module")
def staff(node: Any) -> dict[str, dict[str, str]]:
    _, client, _ = node
    return {
        "analyst": create_staff(client, roles={Role.RISK_ANALYST}),
        "compliance": create_staff(client, roles={Role.COMPLIANCE_OFFICER}),
        "compliance2": create_staff(client, roles={Role.COMPLIANCE_OFFICER}),
        "regulator": create_staff(client, roles={Role.REGULATOR}),
    }


def _pay(node: Any, transfer_id: str, debit: str, credit: str, yuan: int) -> None:
    platform, client, operator = node
    body = {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
            "amount": yuan * YUAN, "currency": "CNY"}  # fmt: skip
    answer = client.post("/api/v1/transfers", json=body, headers=operator)
    assert answer.status_code in (200, 201), answer.text
    platform.projections.wait_for(platform.store.head_height() or 0, projection=["aml"])


def _large_value_alerts(platform: Platform, transfer_id: str) -> list[tuple[str, str]]:
    t = alerts_table
    with platform.platform_engine.connect() as conn:
        rows = conn.execute(select(t.c.rule_id, t.c.rules_version, t.c.transfer_ids)).all()
    return [(rule, version) for rule, version, ids in rows if transfer_id in ids]


def _lowered(threshold_yuan: int) -> dict[str, Any]:
    """The default rules with the individual domestic CNY threshold lowered."""
    body = default_rules().model_dump(mode="json")
    for rule in body["large_value"]:
        if rule["id"] == "individual_domestic_cny":
            rule["threshold_minor"] = threshold_yuan * YUAN
    return body


def test_a_proposed_version_waits_and_the_proposer_may_not_approve_it(
    node: Any, staff: Any
) -> None:
    _, client, _ = node
    body = {
        "version": "bank-2026-12",
        "rules": _lowered(100_000),
        "reason": "本行客户更严 stricter",
    }
    proposed = client.post(f"{API}/rules", json=body, headers=staff["compliance"])
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["rule_set"]["status"] == "proposed"
    again = client.post(f"{API}/rules", json=body, headers=staff["compliance"])
    assert again.status_code == 201 and again.json()["exists"] is True  # a retry answers the same
    other = client.post(f"{API}/rules", json={**body, "reason": "another"},
                        headers=staff["compliance"])  # fmt: skip
    assert (other.status_code, other.json()["code"]) == (
        409,
        "aml_rule_set_exists_with_different_fields",
    )
    own = client.post(f"{API}/rules/bank-2026-12/decision", json={"approve": True,
                      "reason": "本人复核同意"}, headers=staff["compliance"])  # fmt: skip
    assert own.status_code == 403, own.text
    listed = client.get(f"{API}/rules", headers=staff["analyst"]).json()
    assert listed["in_force"]["version"] == default_rules().version  # nothing approved yet
    assert [(v["version"], v["status"]) for v in listed["versions"]] == [
        ("bank-2026-12", "proposed")
    ]


def test_bad_rules_and_the_wrong_roles_are_refused(node: Any, staff: Any) -> None:
    _, client, _ = node
    bad = _lowered(100_000)
    bad["large_value"][0]["threshold_minor"] = 1.5  # a float amount: the edge refuses any float
    answer = client.post(f"{API}/rules", json={"version": "bad-1", "rules": bad,
                         "reason": "测试原因 test"}, headers=staff["analyst"])  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (400, "float_not_allowed")
    bad["large_value"][0]["threshold_minor"] = -5
    answer = client.post(f"{API}/rules", json={"version": "bad-1", "rules": bad,
                         "reason": "测试原因 test"}, headers=staff["analyst"])  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (422, "aml_rules_invalid")
    unknown = {**_lowered(100_000), "surprise": True}
    answer = client.post(f"{API}/rules", json={"version": "bad-2", "rules": unknown,
                         "reason": "测试原因 test"}, headers=staff["analyst"])  # fmt: skip
    assert answer.json()["code"] == "aml_rules_invalid"
    answer = client.post(f"{API}/rules", json={"version": "bad-3", "rules": _lowered(1),
                         "reason": "测试原因 test"}, headers=staff["regulator"])  # fmt: skip
    assert answer.status_code == 403  # the regulator reads, never writes
    answer = client.post(f"{API}/rules/nope/decision", json={"approve": True, "reason": "测试原因 test"},
                         headers=staff["compliance2"])  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (404, "aml_rule_set_not_found")


def test_the_contract_refuses_the_proposer_on_chain_too(node: Any) -> None:
    platform, _, _ = node
    gateway = MemberGateway(platform.node)
    body = {**_lowered(90_000), "version": "chain-1"}
    args = {
        "version": "chain-1",
        "rules": body,
        "officer": "officer-a",
        "reason": "链上测试 on chain",
    }
    assert gateway.submit("aml", "propose_rules", args)["status"] == "ok"
    decision = {
        "version": "chain-1",
        "officer": "officer-a",
        "approve": True,
        "reason": "链上测试 on chain",
    }
    refused = gateway.submit("aml", "decide_rules", decision)
    assert (refused["status"], refused["code"]) == ("failed", "aml_rules_self_approval")
    vouched = gateway.submit("aml", "propose_rules", {**args, "version": "chain-2"},
                             sender="did:key:z6MkAliceRules")  # fmt: skip
    assert vouched["code"] in ("not_member", "aml_rules_invalid")


def test_an_approved_version_judges_the_members_customers_from_the_next_block(
    node: Any, staff: Any
) -> None:
    platform, client, _ = node
    _pay(node, "r-fund", "r-settle", "r-alice", 2_000_000)
    _pay(node, "r-before", "r-alice", "r-bob", 200_000)  # under the default 500,000 threshold
    assert ("individual_domestic_cny", default_rules().version) not in _large_value_alerts(
        platform, "r-before"
    )
    approved = client.post(f"{API}/rules/bank-2026-12/decision", json={"approve": True,
                           "reason": "复核通过，同意"}, headers=staff["compliance2"])  # fmt: skip
    assert approved.status_code == 200, approved.text
    record = approved.json()["rule_set"]
    assert (
        record["status"] == "approved"
        and record["decider"] == me(client, staff["compliance2"])["user_id"]
    )
    listed = client.get(f"{API}/rules", headers=staff["analyst"]).json()
    assert listed["in_force"]["version"] == "bank-2026-12"
    assert listed["in_force"]["from_height"] == record["decided_height"] + 1
    _pay(node, "r-after", "r-alice", "r-bob", 200_000)  # over the lowered 100,000 threshold
    assert ("individual_domestic_cny", "bank-2026-12") in _large_value_alerts(platform, "r-after")
    # The regulator reads the member's rules, and the read is audited.
    member = platform.node.key.did
    read = client.get(f"{API}/rules", params={"member": member}, headers=staff["regulator"])
    assert read.status_code == 200 and read.json()["in_force"]["version"] == "bank-2026-12"
    decided_again = client.post(f"{API}/rules/bank-2026-12/decision", json={"approve": False,
                                "reason": "不同意此版本"}, headers=staff["compliance2"])  # fmt: skip
    assert (decided_again.status_code, decided_again.json()["code"]) == (
        409,
        "aml_rule_set_decided",
    )


def test_a_reindex_derives_the_same_alerts_under_the_same_versions(node: Any) -> None:
    platform, _, _ = node
    t = alerts_table
    with platform.platform_engine.connect() as conn:
        before = sorted(conn.execute(select(t.c.alert_id, t.c.rules_version)).all())
    from zhijin.aml.monitor import AmlProjection

    fresh = AmlProjection()
    with platform.platform_engine.begin() as conn:
        for table in reversed(fresh.metadata.sorted_tables):
            conn.execute(table.delete())
        from zhijin.platform.projections import load_block

        for height in range(1, (platform.store.head_height() or 0) + 1):
            block = load_block(platform.store, height)
            assert block is not None
            fresh.apply(conn, block)
        after = sorted(conn.execute(select(t.c.alert_id, t.c.rules_version)).all())
    assert after == before and any(version == "bank-2026-12" for _, version in after)


def test_the_rules_page_proposes_a_dry_run_draft_and_a_second_officer_approves_it(
    node: Any, staff: Any
) -> None:
    _, client, _ = node
    zh = {"Accept-Language": "zh-CN"}
    page = client.get("/aml/rules", headers={**staff["analyst"], **zh})
    assert page.status_code == 200 and 'id="rule-versions"' in page.text
    assert 'id="rules-version">bank-2026-12<' in page.text  # the member's version in force
    form = dict(re.findall(r'<input id="[a-z_]+" name="([a-z_]+)" value="([^"]*)"', page.text))
    form["threshold_individual_domestic_cny"] = "80000"
    dry = client.post("/aml/rules/dry-run", data=form, headers={**staff["analyst"], **zh})
    assert dry.status_code == 200 and 'id="propose-form"' in dry.text
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', dry.text))
    assert hidden["threshold_individual_domestic_cny"] == "80000"
    sent = client.post(
        "/aml/rules/propose", data={**hidden, "version": "page-1", "reason": "页面提交的草案"},
        headers={**staff["analyst"], **zh}, follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303, sent.text
    mine = client.get("/aml/rules", headers={**staff["analyst"], **zh}).text
    assert 'data-version="page-1" data-status="proposed"' in mine and "待审批" in mine
    assert 'id="decide-page-1"' not in mine  # an analyst proposes, never approves
    checker = client.get("/aml/rules", headers={**staff["compliance"], **zh}).text
    assert 'id="decide-page-1"' in checker
    approved = client.post(
        "/aml/rules/page-1/decision", data={"approve": "1", "reason": "复核同意，上线"},
        headers={**staff["compliance"], **zh}, follow_redirects=False,
    )  # fmt: skip
    assert approved.status_code == 303, approved.text
    after = client.get("/aml/rules", headers={**staff["analyst"], **zh}).text
    assert 'id="rules-version">page-1<' in after and "自第" in after
    assert 'name="threshold_individual_domestic_cny" value="80000.00"' in after
    # The proposer's own version: the page says so, and a forced decision is refused in words.
    sent = client.post(
        "/aml/rules/propose", data={**hidden, "version": "page-2", "reason": "合规官自己的草案"},
        headers={**staff["compliance"], **zh}, follow_redirects=False,
    )  # fmt: skip
    assert sent.status_code == 303
    own = client.get("/aml/rules", headers={**staff["compliance"], **zh}).text
    assert "这是您提交的版本" in own and 'id="decide-page-2"' not in own
    forced = client.post(
        "/aml/rules/page-2/decision", data={"approve": "1", "reason": "自己批准自己"},
        headers={**staff["compliance"], **zh}, follow_redirects=False,
    )  # fmt: skip
    assert 'id="decide-page-2-error"' in forced.text
    bad = client.post(
        "/aml/rules/propose", data={**hidden, "version": "Bad Version", "reason": "格式错误的版本"},
        headers={**staff["analyst"], **zh}, follow_redirects=False,
    )  # fmt: skip
    assert 'id="propose-error"' in bad.text

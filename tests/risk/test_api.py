"""The fraud screen through a real node and the payments API: a customer's payments allowed,
a burst held (a pending transfer and a case, the customer told 审核中) and cleared by an
analyst (the hold posted), a flood refused (nothing moved, the reasons in the customer's
language) and the next attempt asked for a step-up; rules under maker-checker over HTTP; who
may read what."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.payments.test_api import BOB, Api, account, books, move
from tests.payments.test_stepup_cumulative import daytime_clock
from tests.platform.users import create_staff, identity_of, login_with_token, new_password
from zhijin.identity.rbac import Role
from zhijin.identity.service import RequestSource
from zhijin.identity.store import hash_token
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

API = "/api/v1/risk"
FUNDS = 10_000_000


@dataclass
class World:
    api: Api
    customer: dict[str, str]
    analyst: dict[str, str]
    analyst2: dict[str, str]
    regulator: dict[str, str]

    def pay(self, transfer_id: str, amount: int = 100, **headers: str) -> Any:
        body = move(transfer_id, "r-alice", "r-bob", amount)
        return self.api.client.post(
            "/api/v1/transfers", json=body, headers={**self.customer, **headers}
        )

    def get(self, path: str, who: dict[str, str]) -> Any:
        return self.api.client.get(path, headers=who)

    def post(self, path: str, body: dict[str, Any], who: dict[str, str]) -> Any:
        return self.api.client.post(path, json=body, headers=who)

    def fresh_code(self) -> None:
        identity = identity_of(self.api.client)
        token = self.customer["Authorization"].removeprefix("Bearer ")
        identity.store.mark_session(hash_token(token), mfa_at_ms=identity.clock())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("risk-node")
    settings = Settings(data=data, block_interval_ms=5, password_hashing="test", risk_screen="on")
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        client.app.state.platform.node.clock = daytime_clock  # type: ignore[attr-defined]
        client.app.state.guard.clock = daytime_clock  # type: ignore[attr-defined]
        identity_of(client).clock = daytime_clock
        api = Api(client, (data / "operator-token").read_text().strip())
        books(api)
        password = new_password()
        user = identity_of(client).register(
            login="risk.payer", password=password, kind="individual", source=RequestSource(ip="t")
        )
        assert user.did is not None
        api.ok("/api/v1/accounts", account("r-alice", user.did))
        api.ok("/api/v1/accounts", account("r-bob", BOB))
        api.ok("/api/v1/transfers", move("r-dep", "settle-cny", "r-alice", FUNDS))
        api.ok("/api/v1/transfers", move("r-known", "r-alice", "r-bob", 1))
        time.sleep(0.01)  # sign-in strictly after that block: Bob is a known payee
        yield World(
            api=api,
            customer=login_with_token(client, "risk.payer", password),
            analyst=create_staff(client, roles={Role.RISK_ANALYST}),
            analyst2=create_staff(client, roles={Role.RISK_ANALYST}),
            regulator=create_staff(client, roles={Role.REGULATOR}),
        )


def test_tiers_end_to_end_through_the_payments_api(world: World) -> None:
    for n in range(5):
        allowed = world.pay(f"r-pay-{n}")
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["risk"]["tier"] == "allow"
    # The sixth within a minute: held for review, the customer told so.
    held = world.pay("r-pay-5")
    assert held.status_code == 200, held.text
    risk = held.json()["risk"]
    assert risk["tier"] == "hold" and "burst_1m" in risk["reasons"][0]
    assert "审核中" in risk["notice"]["zh_CN"] and "under review" in risk["notice"]["en"]
    transfer = world.get("/api/v1/transfers/r-pay-5", world.customer).json()
    assert "pending" in transfer["flags"] and transfer["hold"]["hold_status"] == "pending"
    # A retry of the held request answers the same (the ledger finds the same hold).
    retry = world.pay("r-pay-5")
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["risk"]["decision_id"] == risk["decision_id"]
    # The analyst's queue has its case; clearing it posts the hold.
    cases = world.get(f"{API}/cases?status=open", world.analyst).json()["cases"]
    (case,) = [c for c in cases if c["transfer_id"] == "r-pay-5"]
    bad = world.post(f"{API}/cases/{case['case_id']}/resolution",
                     {"verdict": "cleared", "reason": "x"}, world.analyst)  # fmt: skip
    assert bad.status_code == 422
    cleared = world.post(
        f"{API}/cases/{case['case_id']}/resolution",
        {"verdict": "cleared", "reason": "the customer confirmed by phone"},
        world.analyst,
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["status"] == "cleared"
    posted = world.get("/api/v1/transfers/r-pay-5", world.customer).json()
    assert posted["hold"]["hold_status"] == "posted"
    # Keep going: the tenth within the minute is a flood, refused, nothing moved.
    for n in range(6, 10):
        assert world.pay(f"r-pay-{n}").json()["risk"]["tier"] == "hold"
    refused = world.pay("r-pay-10")
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["code"] == "payment_refused_by_risk"
    assert "暂停" in problem["detail"]  # the rule's own reason, in zh-CN by default
    assert world.get("/api/v1/transfers/r-pay-10", world.customer).status_code == 404
    # The next attempt needs a fresh second factor; with one it is held for review instead.
    step_up = world.pay("r-pay-11")
    assert step_up.status_code == 401 and step_up.json()["code"] == "step_up_required"
    world.fresh_code()
    after = world.pay("r-pay-12")
    assert after.status_code == 200 and after.json()["risk"]["tier"] == "hold", after.text
    # The customer sees their own held and refused payments, with the reason.
    mine = world.get(f"{API}/my/decisions", world.customer).json()["decisions"]
    statuses = {row["transfer_id"]: row["status"] for row in mine}
    assert statuses["r-pay-10"] == "已拒绝" and statuses["r-pay-6"] == "审核中"
    english = world.api.client.get(
        f"{API}/my/decisions", headers={**world.customer, "Accept-Language": "en"}
    ).json()["decisions"]
    (flood,) = [row for row in english if row["transfer_id"] == "r-pay-10"]
    assert flood["status"] == "refused" and any("flood" in r for r in flood["reasons"])
    # The regulator sees why, with the versions that decided.
    seen = world.get(f"{API}/decisions?transfer_id=r-pay-10", world.regulator).json()
    (decision,) = seen["decisions"][:1]
    assert decision["tier"] == "refuse" and decision["versions"]["rules"].startswith("rs-")
    assert decision["features"]["payments_1m"] >= 10
    # The operator's own transfers are not screened (no `risk` in the answer).
    operator = world.api.client.post(
        "/api/v1/transfers",
        json=move("r-op", "settle-cny", "r-alice", 5),
        headers=world.api.headers,
    )
    assert operator.status_code == 200 and "risk" not in operator.json()


def test_rules_under_maker_checker_over_http(world: World) -> None:
    rule = {
        "id": "huge_payment",
        "expression": "or_default(amount_ref_minor, 0) >= 100000000",
        "score_bps": 8000,
        "reason_zh": "单笔金额过大",
        "reason_en": "a very large payment",
        "rationale": "payments of a million CNY or more are reviewed",
        "tests": [{"features": {"amount_ref_minor": 100000000}, "expect": True}],
    }
    bad = world.post(f"{API}/rules", {**rule, "expression": "amount_ref_minor >= 1"},
                     world.analyst)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["code"] == "rule_expression_invalid"
    assert world.post(f"{API}/rules", rule, world.customer).status_code == 403
    draft = world.post(f"{API}/rules", rule, world.analyst)
    assert draft.status_code == 201, draft.text
    path = f"{API}/rules/huge_payment/versions/1/decision"
    own = world.post(path, {"approve": True, "reason": "my own rule"}, world.analyst)
    assert own.status_code == 403, own.text
    approved = world.post(path, {"approve": True, "reason": "cases checked"}, world.analyst2)
    assert approved.status_code == 200, approved.text
    assert approved.json()["anchor_height"] > 0  # the version's hash is anchored on chain
    in_force = world.get(f"{API}/rules", world.analyst).json()["in_force"]
    assert "huge_payment@1" in in_force
    status = world.get(f"{API}/status", world.regulator).json()
    assert status["started"] and "huge_payment@1" in status["rule_versions"]


def test_customers_read_only_their_own(world: World) -> None:
    assert world.get(f"{API}/decisions", world.customer).status_code == 403
    assert world.get(f"{API}/cases", world.customer).status_code == 403
    assert world.get(f"{API}/my/decisions", world.analyst).status_code == 403

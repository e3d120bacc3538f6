"""The lending API tests' node: one node per test module with the manifest plugged in by the
root, credit's decisions port injected (tests inject the port, not a patch), staff, and a world
with an approved product, the LPR and a funded customer with an anchored decision; more funded
borrowers (`new_borrower`, with an authenticator) and a fresh second factor (`fresh_mfa`) for
the step-up policy an early repayment meets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.lending.helpers import PRODUCT
from tests.platform.users import (
    create_staff,
    enrol_totp,
    fresh_login,
    identity_of,
    me,
    new_password,
    register_and_login,
)
from zhijin.chain.codec import canonical, sha256
from zhijin.identity.rbac import Role
from zhijin.identity.service import RequestSource
from zhijin.identity.store import hash_token
from zhijin.lending.expected import DecisionFacts
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.gateway import MemberGateway

API = "/api/v1/lending"


@dataclass
class _Decisions:
    """Credit's decision records as the port gives them (tests inject the port, not a patch)."""

    facts: dict[str, DecisionFacts]

    def decision(self, decision_id: str) -> DecisionFacts | None:
        return self.facts.get(decision_id)

    def decisions_of(self, subject: str, *, limit: int) -> list[DecisionFacts]:
        return [facts for facts in self.facts.values() if facts.subject == subject][:limit]


@dataclass(frozen=True)
class Node:
    platform: Platform
    client: TestClient
    operator: dict[str, str]
    decisions: _Decisions

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers=headers or self.operator)

    def get(self, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=headers or self.operator, **kwargs)

    def chain(self, contract: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        result = MemberGateway(self.platform.node).submit(contract, method, args)
        assert result["status"] == "ok", result
        return result


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("lending-node")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", projector="thread",
        audit_anchor_interval_s=0, lending_keeper_interval_s=0,
    )  # fmt: skip
    genesis = init_data_dir(settings, members=1)
    assert genesis.contracts["lending"] == "1"  # in force from genesis on a new chain
    token = (data / "operator-token").read_text().strip()
    with (
        Platform(settings) as platform,
        TestClient(create_app(platform=platform), base_url="https://testserver") as client,
    ):
        decisions = _Decisions({})
        platform.lending_ports = replace(platform.lending_ports, decisions=decisions)
        yield Node(platform, client, {"Authorization": f"Bearer {token}"}, decisions)


@pytest.fixture(scope="module")
def staff(node: Node) -> dict[str, dict[str, str]]:
    return {
        "maker": create_staff(node.client, roles={Role.BANK_OFFICER}),
        "checker": create_staff(node.client, roles={Role.BANK_OFFICER}),
        "auditor": create_staff(node.client, roles={Role.AUDITOR}),
    }


@pytest.fixture(scope="module")
def world(node: Node, staff: dict[str, dict[str, str]]) -> dict[str, Any]:
    """An approved product, the LPR, a customer with a funded account at this member and an
    anchored credit decision about them."""
    member = node.platform.node.key.did
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    node.chain("payments", "create_accounts", {"accounts": [
        {"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"},
        {"id": "cust", "owner": did, "currency": "CNY", "kind": "customer"},
    ]})  # fmt: skip
    node.chain("payments", "create_transfers", {"transfers": [
        {"id": "fund", "debit_account_id": "settle", "credit_account_id": "cust",
         "amount": 5_000_000, "currency": "CNY"},
    ]})  # fmt: skip
    node.chain("credit", "register_model", {"sha256": "a" * 64, "name": "m", "version": "1",
                                            "card_sha256": "c" * 64, "trainer": "u-t"})  # fmt: skip
    node.chain("credit", "approve_model", {"sha256": "a" * 64, "approver": "u-a"})
    from tests.credit.helpers import POLICY

    node.chain("credit", "set_policy", {"policy_id": "retail", "version": 1, "rules": POLICY,
                                        "officer": "u-p"})  # fmt: skip
    _decide(node, "dec-1", did)
    lpr = node.post(f"{API}/lpr", {"tenor": "1y", "rate_bps": 310, "effective_day": "2024-01-22"})
    assert lpr.status_code == 200, lpr.text
    terms = {k: v for k, v in PRODUCT.items() if k != "officer"}
    terms = {**terms, "income_account_id": "settle",
             "auto_approval": {**PRODUCT["auto_approval"], "min_kyc_level": 0}}  # fmt: skip
    made = node.post(f"{API}/products", terms, headers=staff["maker"])
    assert made.status_code == 200, made.text
    assert made.json()["product"]["status"] == "pending_approval"
    own = node.post(f"{API}/products/{PRODUCT['product_id']}/approve", headers=staff["maker"])
    assert (own.status_code, own.json()["code"]) == (403, "sod_self_approval")
    ok = node.post(f"{API}/products/{PRODUCT['product_id']}/approve", headers=staff["checker"])
    assert ok.status_code == 200, ok.text
    return {"customer": customer, "did": did}


def _decide(node: Node, decision_id: str, did: str) -> None:
    """An approving credit decision about `did`, anchored on chain and given by the port."""
    member = node.platform.node.key.did
    record = {"decision_id": decision_id, "subject": did, "member": member, "points": 720}
    digest = sha256(canonical(record)).hex()
    anchor = {"decision_id": decision_id, "record_sha256": digest, "model_sha256": "a" * 64,
              "policy_id": "retail", "policy_version": 1}  # fmt: skip
    node.chain("credit", "anchor_decision", anchor)
    node.decisions.facts[decision_id] = DecisionFacts(
        decision_id=decision_id, record_sha256=digest, member=member, subject=did,
        outcome="approve", points=720, limit_minor=5_000_000, currency="CNY",
        reasons=({"code": "income", "feature": "income", "text_zh": "收入稳定",
                  "text_en": "steady income"},),
    )  # fmt: skip


@dataclass(frozen=True)
class Borrower:
    """A customer of this member with a funded account `account`, an approving decision
    `decision_id`, an authenticator (unless made without) and an API token whose session has
    no fresh second factor (it was created before the authenticator was set up)."""

    headers: dict[str, str]
    did: str
    account: str
    decision_id: str
    authenticator: pyotp.TOTP | None


def new_borrower(
    node: Node, name: str, *, funds_minor: int = 5_000_000, authenticator: bool = True
) -> Borrower:
    """A new borrower (run after the `world` fixture: its model, policy and product)."""
    identity = identity_of(node.client)
    login, password = fresh_login(name), new_password()
    source = RequestSource(ip=f"tests-{login}")
    identity.register(login=login, password=password, kind="individual", source=source)
    issued = identity.login(login=login, password=password, source=source)
    token = identity.create_api_token(principal=issued.principal, name="tests")
    totp = enrol_totp(identity, issued) if authenticator else None
    headers = {"Authorization": f"Bearer {token.token}"}
    did = me(node.client, headers)["did"]
    account = f"{name}-acc"
    node.chain("payments", "create_accounts", {"accounts": [
        {"id": account, "owner": did, "currency": "CNY", "kind": "customer"},
    ]})  # fmt: skip
    node.chain("payments", "create_transfers", {"transfers": [
        {"id": f"{name}-fund", "debit_account_id": "settle", "credit_account_id": account,
         "amount": funds_minor, "currency": "CNY"},
    ]})  # fmt: skip
    _decide(node, f"{name}-dec", did)
    return Borrower(headers, did, account, f"{name}-dec", totp)


def fresh_mfa(node: Node, headers: dict[str, str]) -> None:
    """As after POST /identity/step-up: the token's session has a fresh second factor now
    (for tests about something else than step-up, which early repayments meet)."""
    identity = identity_of(node.client)
    token = headers["Authorization"].removeprefix("Bearer ")
    identity.store.mark_session(hash_token(token), mfa_at_ms=identity.clock())


def application(loan_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "loan_id": loan_id,
        "product_id": PRODUCT["product_id"],
        "amount_minor": 1_200_000,
        "decision_id": "dec-1",
        "monthly_income_minor": 2_000_000,
        "monthly_debt_minor": 0,
        "repayment_account_id": "cust",
        **changes,
    }

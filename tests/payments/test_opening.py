"""Account requests over a real node: register -> KYC -> request -> open -> first balance,
the opening policy, the officer's decisions (RBAC, separation of duties, audit), idempotent
replays and two officers racing, and bad input."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, me, register_and_login
from zhijin.identity.rbac import Role
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments import limits
from zhijin.payments.opening import (
    AccountOpening,
    AutoOpenRule,
    PolicyInvalid,
    account_id_for,
    parse_policy,
)
from zhijin.payments.opening_store import RequestStatus
from zhijin.platform.gateway import MemberGateway

ID = "/api/v1/identity"
REQUESTS = "/api/v1/account-requests"
RESIDENT_ID = "11010119950307123X"
DOCUMENT = {
    "kind": "id_card_front",
    "media_type": "image/png",
    "content_base64": base64.b64encode(b"\x89PNG demo").decode(),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("opening")
    settings = Settings(
        data=data,
        block_interval_ms=5,
        password_hashing="test",
        audit_anchor_interval_s=0,
        account_auto_open="individual:CNY, sme_owner:CNY:merchant",
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def staff(client: TestClient) -> dict[str, dict[str, str]]:
    return {
        "compliance": create_staff(client, roles={Role.COMPLIANCE_OFFICER}),
        "officer": create_staff(client, roles={Role.BANK_OFFICER}),
        "officer2": create_staff(client, roles={Role.BANK_OFFICER}),
        "auditor": create_staff(client, roles={Role.AUDITOR}),
    }


def _kyc(client: TestClient, headers: dict[str, str]) -> None:
    person = {"name": "何欣", "resident_id": RESIDENT_ID, "mobile": "13800138000"}
    assert client.put(f"{ID}/personal-data", json=person, headers=headers).status_code == 204
    submitted = client.post(f"{ID}/kyc", json={"documents": [DOCUMENT]}, headers=headers)
    assert submitted.status_code == 201, submitted.text


def _approve_kyc(client: TestClient, reviewer: dict[str, str], user_id: str) -> None:
    answer = client.post(f"{ID}/kyc/{user_id}/review", json={"approve": True}, headers=reviewer)
    assert answer.json() == {"status": "approved"}, answer.text


def _ask(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        REQUESTS, json={"currency": "USD", "purpose": "savings", **body}, headers=headers
    )


def _mine(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    page = client.get(REQUESTS, headers=headers).json()
    return {item["id"]: item for item in page["items"]}


def _accounts(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/accounts", headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["accounts"]
    return items


def _audit(client: TestClient, auditor: dict[str, str], action: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(f"{ID}/audit", params={"after_seq": after, "limit": 100}, headers=auditor)
        entries += [e for e in page.json()["items"] if e["action"] == action]
        if page.json()["next"] is None:
            return entries
        after = page.json()["next"]


def test_the_journey_ends_in_open_accounts_with_a_first_balance(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    customer = register_and_login(client)
    user = me(client, customer)
    refused = _ask(client, customer)
    assert refused.status_code == 422 and refused.json()["code"] == "kyc_required"
    _kyc(client, customer)
    # A customer may ask while the KYC is pending; the request waits for it.
    asked = _ask(client, customer)
    assert asked.status_code == 200, asked.text
    assert asked.headers["Idempotent-Replayed"] == "false"
    request = asked.json()
    assert (request["id"], request["status"], request["account_id"]) == (
        "customer-usd",
        "pending",
        None,
    )
    again = _ask(client, customer)
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == request
    other = _ask(client, customer, purpose="salary")
    assert other.status_code == 409
    assert other.json()["code"] == "account_request_exists_with_different_fields"
    assert other.json()["fields"] == ["purpose"]
    path = f"{REQUESTS}/{user['user_id']}/customer-usd"
    early = client.post(f"{path}/approve", headers=staff["officer"])
    assert early.status_code == 422 and early.json()["code"] == "kyc_not_approved"
    assert _accounts(client, customer) == []
    # KYC approved: the policy opens one CNY account at once, with no officer.
    _approve_kyc(client, staff["compliance"], user["user_id"])
    mine = _mine(client, customer)
    assert mine["customer-cny"]["status"] == "opened"
    assert mine["customer-cny"]["decided_by"] == "policy"
    assert mine["customer-usd"]["status"] == "pending"
    (cny,) = _accounts(client, customer)
    assert (cny["id"], cny["currency"], cny["owner"], cny["kind"]) == (
        mine["customer-cny"]["account_id"],
        "CNY",
        user["did"],
        "customer",
    )
    assert cny["balance_posted"] == 0 and cny["custodian"] == client.app.state.platform.node.key.did  # type: ignore[attr-defined]
    # The officer's queue holds the USD request; approving it opens the account.
    queue = client.get(
        REQUESTS, params={"status": "pending", "user_id": user["user_id"]}, headers=staff["officer"]
    ).json()
    assert [item["id"] for item in queue["items"]] == ["customer-usd"]
    approved = client.post(f"{path}/approve", headers=staff["officer"])
    assert approved.status_code == 200, approved.text
    assert approved.headers["Idempotent-Replayed"] == "false"
    body = approved.json()
    assert body["request"]["status"] == "opened" and body["request"]["decided_by"] == "officer"
    assert body["account"]["id"] == account_id_for(user["user_id"], "customer-usd")
    assert (body["account"]["owner"], body["account"]["balance_posted"]) == (user["did"], 0)
    replay = client.post(f"{path}/approve", headers=staff["officer2"])
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["account"]["id"] == body["account"]["id"]
    # First balance: both accounts, visible to their owner with their balances.
    balances = {a["currency"]: a["balance_posted"] for a in _accounts(client, customer)}
    assert balances == {"CNY": 0, "USD": 0}
    assert client.get(path, headers=customer).json()["status"] == "opened"
    # Audited: who opened what, and the replay as a replay.
    outcomes = [
        e["outcome"]
        for e in _audit(client, staff["auditor"], "account.open_request")
        if e["target"].startswith(f"account_request:{user['user_id']}/")
    ]
    assert outcomes == ["opened", "opened", "replayed"]


def test_the_kyc_reviewer_may_not_open_the_account(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    both = create_staff(client, roles={Role.COMPLIANCE_OFFICER, Role.BANK_OFFICER})
    customer = register_and_login(client)
    user_id = me(client, customer)["user_id"]
    _kyc(client, customer)
    assert _ask(client, customer, currency="HKD").status_code == 200
    _approve_kyc(client, both, user_id)
    path = f"{REQUESTS}/{user_id}/customer-hkd"
    refused = client.post(f"{path}/approve", headers=both)
    assert refused.status_code == 403 and refused.json()["code"] == "sod_self_approval"
    assert client.get(path, headers=customer).json()["status"] == "pending"
    assert client.post(f"{path}/approve", headers=staff["officer"]).status_code == 200
    refusals = _audit(client, staff["auditor"], "account.open")
    assert any(e["outcome"] == "sod_self_approval" for e in refusals)


def test_two_officers_racing_open_one_account(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    customer = register_and_login(client)
    user_id = me(client, customer)["user_id"]
    _kyc(client, customer)
    _approve_kyc(client, staff["compliance"], user_id)
    assert _ask(client, customer, currency="EUR", id="eur-1").status_code == 200
    path = f"{REQUESTS}/{user_id}/eur-1/approve"
    start = threading.Barrier(2)
    answers: list[Any] = []

    def approve(headers: dict[str, str]) -> None:
        start.wait()
        answers.append(client.post(path, headers=headers))

    threads = [threading.Thread(target=approve, args=(staff[n],)) for n in ("officer", "officer2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(a.headers["Idempotent-Replayed"] for a in answers) == ["false", "true"]
    assert {a.json()["account"]["id"] for a in answers} == {account_id_for(user_id, "eur-1")}
    eur = [a for a in _accounts(client, customer) if a["currency"] == "EUR"]
    assert len(eur) == 1


def test_rejection_carries_a_reason_and_decided_requests_stay_decided(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    customer = register_and_login(client)
    user_id = me(client, customer)["user_id"]
    _kyc(client, customer)
    _approve_kyc(client, staff["compliance"], user_id)
    assert _ask(client, customer, currency="JPY").status_code == 200
    path = f"{REQUESTS}/{user_id}/customer-jpy"
    reason = {"reason": "JPY accounts need a residence abroad / 日元账户需境外居住证明"}
    rejected = client.post(f"{path}/reject", json=reason, headers=staff["officer"])
    assert rejected.status_code == 200, rejected.text
    assert rejected.headers["Idempotent-Replayed"] == "false"
    seen = client.get(path, headers=customer).json()
    assert (seen["status"], seen["reason"], seen["account_id"]) == (
        "rejected",
        reason["reason"],
        None,
    )
    assert (
        client.post(f"{path}/reject", json=reason, headers=staff["officer2"]).headers[
            "Idempotent-Replayed"
        ]
        == "true"
    )
    for method, headers, body in (
        ("approve", staff["officer"], None),
        ("reject", staff["officer"], {"reason": "another reason"}),
    ):
        answer = client.post(f"{path}/{method}", json=body, headers=headers)
        assert answer.status_code == 409 and answer.json()["code"] == "account_request_decided"
    # An opened request cannot be rejected afterwards.
    opened = f"{REQUESTS}/{user_id}/customer-cny"
    late = client.post(f"{opened}/reject", json={"reason": "too late"}, headers=staff["officer"])
    assert late.status_code == 409 and late.json()["code"] == "account_request_decided"
    assert [e["outcome"] for e in _audit(client, staff["auditor"], "account.reject_request") if
            e["target"] == f"account_request:{user_id}/customer-jpy"] == ["rejected"]  # fmt: skip


def test_the_queue_pages_and_each_role_sees_its_own(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    customers = [register_and_login(client) for _ in range(3)]
    ids = []
    for headers in customers:
        _kyc(client, headers)
        assert _ask(client, headers, currency="HKD", purpose="daily").status_code == 200
        ids.append(me(client, headers)["user_id"])
    seen: list[tuple[str, str]] = []
    after = None
    for _ in range(100):
        params: dict[str, Any] = {
            "status": "pending",
            "limit": 2,
            **({"after": after} if after else {}),
        }
        page = client.get(REQUESTS, params=params, headers=staff["officer"]).json()
        seen += [(item["user_id"], item["id"]) for item in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert [s for s in seen if s[0] in ids] == [(uid, "customer-hkd") for uid in ids]
    assert len(seen) == len(set(seen))
    # A customer sees only their own; asking for another's is refused; the auditor sees all.
    own = client.get(REQUESTS, headers=customers[0]).json()["items"]
    assert {item["user_id"] for item in own} == {ids[0]}
    other = client.get(REQUESTS, params={"user_id": ids[1]}, headers=customers[0])
    assert other.status_code == 403 and other.json()["code"] == "out_of_scope"
    one = client.get(f"{REQUESTS}/{ids[1]}/customer-hkd", headers=customers[0])
    assert one.status_code == 403 and one.json()["code"] == "out_of_scope"
    audited = client.get(REQUESTS, params={"user_id": ids[2]}, headers=staff["auditor"]).json()
    assert [item["id"] for item in audited["items"]] == ["customer-hkd"]
    # The auditor reads but decides nothing; a customer decides nothing either.
    for headers in (staff["auditor"], customers[0], staff["compliance"]):
        denied = client.post(f"{REQUESTS}/{ids[0]}/customer-hkd/approve", headers=headers)
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    missing = client.post(f"{REQUESTS}/{ids[0]}/nothing-here/approve", headers=staff["officer"])
    assert missing.status_code == 404 and missing.json()["code"] == "account_request_not_found"
    assert (
        client.get(REQUESTS, params={"after": "x:y"}, headers=staff["officer"]).json()["code"]
        == "invalid_cursor"
    )


def test_bad_requests_are_refused_with_a_code_per_field(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    customer = register_and_login(client)
    _kyc(client, customer)
    wrong = _ask(client, customer, currency="ABC", kind="merchant")
    assert wrong.status_code == 422
    assert [(e["field"], e["code"]) for e in wrong.json()["errors"]] == [
        ("currency", "currency_invalid"),
        ("kind", "account_kind_not_allowed"),
    ]
    for body in (
        {"currency": "CNY", "purpose": "gambling"},
        {"currency": "CNY", "purpose": "daily", "owner": "did:key:z6MkSomeoneElse"},
        {"currency": 156, "purpose": "daily"},
        {"purpose": "daily"},
        {"currency": "CNY", "id": "bad id with spaces"},
        {"currency": "CNY", "id": "x" * 65},
    ):
        answer = client.post(REQUESTS, json=body, headers=customer)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request", body
    user_id = me(client, customer)["user_id"]
    assert _ask(client, customer, currency="CNY").status_code == 200
    empty = client.post(
        f"{REQUESTS}/{user_id}/customer-cny/reject", json={"reason": ""}, headers=staff["officer"]
    )
    assert empty.json()["code"] == "invalid_request"
    # Staff hold no DID of their own and ask for no accounts.
    refused = _ask(client, staff["officer"], currency="CNY")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    # Each user has a bounded number of requests.
    for index in range(limits.ACCOUNT_REQUESTS_PER_USER_MAX - 1):
        assert _ask(client, customer, currency="CNY", id=f"many-{index}").status_code == 200
    too_many = _ask(client, customer, currency="CNY", id="one-more")
    assert too_many.status_code == 422 and too_many.json()["code"] == "too_many_account_requests"


def test_an_sme_owner_gets_the_merchant_account_the_policy_names(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    owner = register_and_login(client, kind="sme_owner")
    user = me(client, owner)
    _kyc(client, owner)
    _approve_kyc(client, staff["compliance"], user["user_id"])
    (account,) = _accounts(client, owner)
    assert (account["kind"], account["currency"]) == ("merchant", "CNY")
    assert _mine(client, owner)["merchant-cny"]["decided_by"] == "policy"


def test_the_opening_policy_is_data_checked_at_start() -> None:
    assert parse_policy("") == ()
    assert parse_policy(" individual:CNY , sme_owner:HKD:merchant ") == (
        AutoOpenRule("individual", "CNY"),
        AutoOpenRule("sme_owner", "HKD", "merchant"),
    )
    for bad in (
        "individual",
        "individual:ABC",
        "individual:CNY:merchant",
        "staff:CNY",
        "individual:CNY:customer:extra",
        ",".join(["individual:CNY"] * (limits.ACCOUNT_AUTO_OPEN_RULES_MAX + 1)),
    ):
        with pytest.raises(PolicyInvalid):
            parse_policy(bad)


def test_a_lost_claim_and_a_crash_after_the_claim_each_open_one_account(
    client: TestClient, staff: dict[str, dict[str, str]]
) -> None:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    opening = AccountOpening(platform, MemberGateway(platform.node))
    customer = register_and_login(client)
    user_id = me(client, customer)["user_id"]
    _kyc(client, customer)
    _approve_kyc(client, staff["compliance"], user_id)
    for currency_code in ("GBP", "SGD"):
        assert _ask(client, customer, currency=currency_code).status_code == 200
    # A decider that read the request as pending, then lost the claim to an officer.
    stale = opening.store.get(user_id, "customer-gbp")
    assert stale is not None and stale.status is RequestStatus.PENDING
    won = client.post(f"{REQUESTS}/{user_id}/customer-gbp/approve", headers=staff["officer"])
    assert won.headers["Idempotent-Replayed"] == "false"
    late = opening._open(stale, actor="user:late-officer")
    assert late.replayed and late.request.account_id == won.json()["account"]["id"]
    # A decision claimed, then the node stopped before the chain was asked: the next approval
    # carries it on and opens the account, once.
    assert opening.store.claim(user_id, "customer-sgd", decided_by="user:gone", now_ms=1)
    resumed = client.post(f"{REQUESTS}/{user_id}/customer-sgd/approve", headers=staff["officer"])
    assert resumed.status_code == 200 and resumed.json()["request"]["status"] == "opened"
    currencies = sorted(a["currency"] for a in _accounts(client, customer))
    assert currencies == ["CNY", "GBP", "SGD"]

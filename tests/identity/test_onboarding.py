"""Onboarding on the identity side, over a real node: staff sign-in with a second factor (a
session that may only enrol until then), KYC per-field errors, the customer's KYC status and
the reviewers' queue."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.platform.users import (
    CSRF_HEADER,
    _session_cookie,
    create_staff,
    fresh_login,
    identity_of,
    me,
    new_password,
    register_and_login,
)
from zhijin.identity.rbac import Principal, Role
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

API = "/api/v1/identity"
RESIDENT_ID = "11010119950307123X"
DOCUMENT = {
    "kind": "id_card_front",
    "media_type": "image/png",
    "content_base64": base64.b64encode(b"\x89PNG demo").decode(),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("onboarding")
    settings = Settings(
        data=data, block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        yield test_client


def _new_staff(client: TestClient, role: Role) -> tuple[str, str]:
    """A staff account as an administrator creates it: no authenticator yet."""
    identity = identity_of(client)
    member = client.app.state.platform.node.key.did  # type: ignore[attr-defined]
    admin = identity.bootstrap_admin(
        login=fresh_login("admin"), password=new_password(), member_did=member
    )
    login, password = fresh_login("staff"), new_password()
    identity.create_staff(
        principal=Principal(admin.id, frozenset({Role.ADMIN}), member),
        login=login,
        password=password,
        roles=frozenset({role}),
        member_did=member,
    )
    return login, password


def _login(client: TestClient, login: str, password: str, **extra: Any) -> Any:
    return client.post(f"{API}/login", json={"login": login, "password": password, **extra})


def _session(answer: Any) -> dict[str, str]:
    return {CSRF_HEADER: answer.json()["csrf_token"], "Cookie": _session_cookie(answer)}


@pytest.mark.parametrize(
    "role",
    [
        Role.BANK_OFFICER,
        Role.RISK_ANALYST,
        Role.COMPLIANCE_OFFICER,
        Role.REGULATOR,
        Role.AUDITOR,
        Role.ADMIN,
    ],
)
def test_staff_without_totp_get_a_session_that_may_only_enrol(
    client: TestClient, role: Role
) -> None:
    if role is Role.ADMIN:
        identity = identity_of(client)
        login, password = fresh_login("admin"), new_password()
        member = client.app.state.platform.node.key.did  # type: ignore[attr-defined]
        identity.bootstrap_admin(login=login, password=password, member_did=member)
    else:
        login, password = _new_staff(client, role)
    answer = _login(client, login, password)
    client.cookies.clear()
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["enrolment_required"] is True
    session = _session(answer)
    assert client.get(f"{API}/me", headers=session).json()["enrolment_required"] is True
    # Everything else is refused until an authenticator is enrolled, reads and writes alike.
    for method, path, body in (
        ("GET", f"{API}/policy", None),
        ("GET", "/api/v1/accounts", None),
        ("POST", f"{API}/tokens", {"name": "sneaky"}),
        ("POST", f"{API}/totp/recovery-codes", None),
    ):
        refused = client.request(method, path, json=body, headers=session)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "staff_mfa_enrolment_required"
    enrolment = client.post(f"{API}/totp/enrol", headers=session)
    assert enrolment.status_code == 200, enrolment.text
    secret = enrolment.json()["secret"]
    assert f"secret={secret}" in enrolment.json()["uri"]  # the text beside the QR is the same
    authenticator = pyotp.TOTP(secret)
    wrong = "000000" if authenticator.now() != "000000" else "111111"
    assert (
        client.post(f"{API}/totp/confirm", json={"code": wrong}, headers=session).json()["code"]
        == "invalid_code"
    )
    confirmed = client.post(
        f"{API}/totp/confirm", json={"code": authenticator.now()}, headers=session
    )
    assert confirmed.status_code == 200 and len(confirmed.json()["recovery_codes"]) == 10
    # The same session now has its second factor and reaches the staff routes.
    assert client.get(f"{API}/me", headers=session).json()["enrolment_required"] is False
    assert client.get(f"{API}/policy", headers=session).status_code == 200
    # From now on the password alone is not enough at sign-in.
    assert _login(client, login, password).json()["code"] == "mfa_required"
    again = _login(client, login, password, totp_code=authenticator.at(int(time.time()) + 30))
    client.cookies.clear()
    assert again.status_code == 200 and again.json()["user"]["enrolment_required"] is False


def test_an_enrolment_only_session_signs_out_and_its_old_tokens_are_refused(
    client: TestClient,
) -> None:
    login, password = _new_staff(client, Role.BANK_OFFICER)
    identity = identity_of(client)
    # A token made before the rule (directly, as an older release could): no second factor.
    issued = identity.login(login=login, password=password, source=_source())
    legacy = identity.create_api_token(principal=issued.principal, name="legacy")
    refused = client.get(f"{API}/policy", headers={"Authorization": f"Bearer {legacy.token}"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "staff_mfa_enrolment_required"
    answer = _login(client, login, password)
    client.cookies.clear()
    assert client.post(f"{API}/logout", headers=_session(answer)).status_code == 204
    assert client.get(f"{API}/me", headers=_session(answer)).json()["code"] == "session_invalid"


def test_customers_sign_in_without_totp_unrestricted(client: TestClient) -> None:
    headers = register_and_login(client)
    assert me(client, headers)["enrolment_required"] is False
    assert client.get(f"{API}/kyc", headers=headers).json() == {
        "status": "none",
        "personal_data_saved": False,
    }


def _source() -> Any:
    from zhijin.identity.service import RequestSource

    return RequestSource(ip="tests-onboarding")


# -- KYC ----------------------------------------------------------------------------------------


def test_personal_data_reports_every_wrong_field_at_once(client: TestClient) -> None:
    headers = register_and_login(client)
    answer = client.put(
        f"{API}/personal-data",
        json={"name": "1", "resident_id": "110101199503071230", "mobile": "12345"},
        headers=headers,
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_name"  # the first wrong field's code
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("name", "invalid_name"),
        ("resident_id", "invalid_resident_id"),
        ("mobile", "invalid_mobile"),
    ]
    one = client.put(
        f"{API}/personal-data",
        json={"name": "张三", "resident_id": "110101209903071234", "mobile": "13800138000"},
        headers=headers,
    )
    assert one.json()["code"] == "invalid_resident_id"  # 2099: checksum or future birth date
    assert [e["field"] for e in one.json()["errors"]] == ["resident_id"]
    # Wrong types and missing fields are the schema's refusal.
    for bad in ({"name": "张三", "resident_id": 110101, "mobile": "13800138000"}, {"name": "张三"}):
        assert client.put(f"{API}/personal-data", json=bad, headers=headers).json()["code"] == (
            "invalid_request"
        )
    assert client.get(f"{API}/kyc", headers=headers).json()["personal_data_saved"] is False


def test_sme_business_fields_are_checked_together(client: TestClient) -> None:
    headers = register_and_login(client, kind="sme_owner")
    saved = client.put(
        f"{API}/personal-data",
        json={"name": "赵六", "resident_id": RESIDENT_ID, "mobile": "+86 138 0013 8000"},
        headers=headers,
    )
    assert saved.status_code == 204, saved.text
    answer = client.post(
        f"{API}/kyc",
        json={"documents": [DOCUMENT], "business": {"company_name": " ", "uscc": "123"}},
        headers=headers,
    )
    assert answer.status_code == 422
    assert [e["code"] for e in answer.json()["errors"]] == ["invalid_company_name", "invalid_uscc"]
    good = client.post(
        f"{API}/kyc",
        json={
            "documents": [DOCUMENT],
            "business": {"company_name": "赵氏汽配", "uscc": "91110000600037341L"},
        },
        headers=headers,
    )
    assert good.status_code == 201, good.text
    assert good.json()["uscc"] == "91110000600037341L"


def test_kyc_status_and_the_reviewers_queue(client: TestClient) -> None:
    compliance = create_staff(client, roles={Role.COMPLIANCE_OFFICER})
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    customers = [register_and_login(client) for _ in range(3)]
    for headers in customers:
        saved = client.put(
            f"{API}/personal-data",
            json={"name": "王小明", "resident_id": RESIDENT_ID, "mobile": "13800138000"},
            headers=headers,
        )
        assert saved.status_code == 204, saved.text
        assert client.get(f"{API}/kyc", headers=headers).json() == {
            "status": "none",
            "personal_data_saved": True,
        }
        assert client.post(f"{API}/kyc", json={"documents": [DOCUMENT]}, headers=headers).is_success
    ids = [me(client, headers)["user_id"] for headers in customers]
    status = client.get(f"{API}/kyc", headers=customers[0]).json()
    assert status["status"] == "pending" and status["user_id"] == ids[0]
    # The queue pages oldest first; every one of these three is in it, in order.
    seen: list[str] = []
    after = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = client.get(f"{API}/kyc/cases", params=params, headers=compliance).json()
        seen += [item["user_id"] for item in page["items"]]
        assert all(item["status"] == "pending" for item in page["items"])
        after = page["next"]
        if after is None:
            break
    assert [uid for uid in seen if uid in ids] == ids
    decided = client.post(f"{API}/kyc/{ids[0]}/review", json={"approve": True}, headers=compliance)
    assert decided.json() == {"status": "approved"}
    approved = client.get(f"{API}/kyc/cases", params={"status": "approved"}, headers=compliance)
    assert ids[0] in [item["user_id"] for item in approved.json()["items"]]
    assert client.get(f"{API}/kyc", headers=customers[0]).json()["status"] == "approved"
    # Only reviewers see the queue; a bad filter or cursor is a clear 422.
    for headers in (customers[1], officer):
        refused = client.get(f"{API}/kyc/cases", headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert (
        client.get(f"{API}/kyc/cases", params={"status": "open"}, headers=compliance).json()["code"]
        == "invalid_request"
    )
    assert (
        client.get(f"{API}/kyc/cases", params={"after": "yesterday"}, headers=compliance).json()[
            "code"
        ]
        == "invalid_cursor"
    )

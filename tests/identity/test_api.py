"""The identity HTTP API on a real platform (chain, projections, platform database)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.identity.helpers import Clock
from tests.platform.users import (
    CSRF_HEADER,
    create_staff,
    fresh_login,
    identity_of,
    login_session,
    me,
    new_password,
    register_and_login,
)
from zhijin.identity import totp
from zhijin.identity.did import Resolver
from zhijin.identity.errors import GENERIC_LOGIN_FAILURE
from zhijin.identity.rbac import Role
from zhijin.identity.setup import ChainReader
from zhijin.identity.vc import add_proof, format_datetime, verify_proof
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.i18n import gettext

API = "/api/v1/identity"
RESIDENT_ID = "11010519491231002X"


def _settings(data: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data": data,
        "block_interval_ms": 5,
        "password_hashing": "test",
        "audit_anchor_interval_s": 0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=3)
    with TestClient(create_app(settings), base_url="https://testserver") as test_client:
        # These tests read English problem details (the product's default is zh-CN).
        test_client.headers["Accept-Language"] = "en"
        yield test_client


def _platform(client: TestClient) -> Platform:
    return client.app.state.platform  # type: ignore[attr-defined]


def _clock(client: TestClient) -> Clock:
    """Give the identity service a clock the test moves (starting at the wall clock)."""
    clock = Clock(time.time_ns() // 1_000_000)
    identity_of(client).clock = clock
    return clock


def _register(client: TestClient, kind: str = "individual") -> tuple[str, str]:
    login, password = fresh_login(), new_password()
    answer = client.post(
        f"{API}/register", json={"login": login, "password": password, "kind": kind}
    )
    assert answer.status_code == 201, answer.text
    return login, password


def _audit_outcomes(client: TestClient, action: str) -> list[str]:
    entries = identity_of(client).audit.entries(after_seq=0, limit=1000)
    return [e.outcome for e in entries if e.action == action]


# -- registration, DIDs, login ---------------------------------------------------------------
def test_register_gives_a_did_key_and_bearer_works_without_csrf(client: TestClient) -> None:
    headers = register_and_login(client)
    user = me(client, headers)
    assert user["roles"] == ["customer"] and user["did"].startswith("did:key:z6Mk")
    assert user["via"] == "token"
    # A bearer token on an unsafe method needs no CSRF token.
    revoked = client.post(f"{API}/sessions/revoke-others", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"] >= 1
    # The custodial key behind the DID is in the vault, sealed.
    identity = identity_of(client)
    keys = identity.user_keys(user_id=user["user_id"])
    assert keys.did_key.did == user["did"]
    record = identity.vault_store.get("user_key", user["user_id"])
    assert record is not None and keys.did_key.seed.hex() not in str(record.body())


def test_session_cookie_attributes(client: TestClient) -> None:
    login, password = _register(client)
    answer = client.post(f"{API}/login", json={"login": login, "password": password})
    assert answer.status_code == 200
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("__Host-zhijin_session="))
    attributes = {part.strip().lower() for part in session.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= attributes
    csrf = next(c for c in cookies if c.startswith("__Host-zhijin_csrf="))
    assert "httponly" not in csrf.lower()
    assert answer.json()["csrf_token"].startswith("zjc_")


def test_wrong_password_locks_out_and_unknown_logins_look_the_same(client: TestClient) -> None:
    login, password = _register(client)
    unknown = fresh_login("nobody")
    answers = {}
    for name in (login, unknown):
        for _ in range(5):
            answer = client.post(f"{API}/login", json={"login": name, "password": "wrong-" * 3})
            assert answer.status_code == 401
            assert answer.json()["code"] == "invalid_credentials"
            assert answer.json()["detail"] == gettext("en", "problem.invalid_credentials")
            assert answer.json()["diagnostic"] == GENERIC_LOGIN_FAILURE
        answers[name] = client.post(f"{API}/login", json={"login": name, "password": password})
    for answer in answers.values():
        assert answer.status_code == 429 and answer.json()["code"] == "temporarily_locked"
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert int(answer.headers["Retry-After"]) > 0
    # Same body for the real and the unknown login name, apart from the wait.
    bodies = [
        {k: v for k, v in a.json().items() if k != "retry_after_ms"} for a in answers.values()
    ]
    assert bodies[0] == bodies[1]
    assert _audit_outcomes(client, "auth.login").count("locked") == 2


def test_registration_is_rate_limited_with_retry_after(client: TestClient) -> None:
    codes = []
    for _ in range(6):
        answer = client.post(
            f"{API}/register",
            json={"login": fresh_login(), "password": new_password(), "kind": "individual"},
        )
        codes.append(answer.status_code)
    assert codes[:5] == [201] * 5 and codes[5] == 429
    assert answer.json()["code"] == "rate_limited" and int(answer.headers["Retry-After"]) >= 1


def _totp_secret(uri: str) -> bytes:
    encoded = parse_qs(urlparse(uri).query)["secret"][0]
    return base64.b32decode(encoded + "=" * (-len(encoded) % 8))


def _code(secret: bytes, clock: Clock) -> str:
    return totp.code_for_step(secret, totp.step_at(clock.now_ms // 1000))


def _enrol_totp(client: TestClient, clock: Clock) -> tuple[bytes, list[str]]:
    enrol = client.post(f"{API}/totp/enrol", headers=_csrf(client))
    assert enrol.status_code == 200, enrol.text
    assert enrol.json()["qr_svg"].startswith("data:image/svg+xml")
    assert enrol.json()["qr_png"].startswith("data:image/png;base64,")
    secret = _totp_secret(enrol.json()["uri"])
    confirm = client.post(
        f"{API}/totp/confirm", json={"code": _code(secret, clock)}, headers=_csrf(client)
    )
    assert confirm.status_code == 200, confirm.text
    return secret, confirm.json()["recovery_codes"]


def _csrf(client: TestClient) -> dict[str, str]:
    return {CSRF_HEADER: client.cookies.get("__Host-zhijin_csrf") or ""}


def test_totp_login_replay_and_recovery_code(client: TestClient) -> None:
    clock = _clock(client)
    login, password = _register(client)
    login_session(client, login, password)
    secret, recovery = _enrol_totp(client, clock)
    assert len(recovery) == 10
    client.cookies.clear()

    no_code = client.post(f"{API}/login", json={"login": login, "password": password})
    assert no_code.status_code == 401 and no_code.json()["code"] == "mfa_required"
    clock.advance(31_000)
    bad = client.post(
        f"{API}/login", json={"login": login, "password": password, "totp_code": "000000"}
    )
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_credentials"
    code = _code(secret, clock)
    good = client.post(
        f"{API}/login", json={"login": login, "password": password, "totp_code": code}
    )
    assert good.status_code == 200 and good.json()["user"]["mfa_at_ms"] == clock.now_ms
    replay = client.post(
        f"{API}/login", json={"login": login, "password": password, "totp_code": code}
    )
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_credentials"
    with_recovery = {"login": login, "password": password, "recovery_code": recovery[0]}
    assert client.post(f"{API}/login", json=with_recovery).status_code == 200
    assert client.post(f"{API}/login", json=with_recovery).status_code == 401


def test_totp_failures_lock_out(client: TestClient) -> None:
    clock = _clock(client)
    login, password = _register(client)
    login_session(client, login, password)
    _enrol_totp(client, clock)
    client.cookies.clear()
    for _ in range(5):
        clock.advance(31_000)
        answer = client.post(
            f"{API}/login", json={"login": login, "password": password, "totp_code": "123456"}
        )
        assert answer.status_code == 401
    locked = client.post(
        f"{API}/login", json={"login": login, "password": password, "totp_code": "123456"}
    )
    assert locked.status_code == 429 and locked.json()["code"] == "temporarily_locked"


# -- sessions, CSRF, tokens ----------------------------------------------------------------------
def test_csrf_is_required_for_cookie_sessions(client: TestClient) -> None:
    login, password = _register(client)
    session = login_session(client, login, password)
    assert client.get(f"{API}/me").status_code == 200  # safe method: no CSRF needed
    missing = client.post(f"{API}/sessions/revoke-others")
    assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
    wrong = client.post(f"{API}/sessions/revoke-others", headers={CSRF_HEADER: "zjc_" + "x" * 43})
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    right = client.post(
        f"{API}/sessions/revoke-others", headers={CSRF_HEADER: session["csrf_token"]}
    )
    assert right.status_code == 200
    assert _audit_outcomes(client, "auth.csrf").count("refused") == 2


def test_logout_revokes_the_session(client: TestClient) -> None:
    login, password = _register(client)
    session = login_session(client, login, password)
    cookie = client.cookies.get("__Host-zhijin_session")
    assert cookie is not None
    answer = client.post(f"{API}/logout", headers={CSRF_HEADER: session["csrf_token"]})
    assert answer.status_code == 204
    client.cookies.set("__Host-zhijin_session", cookie)  # a stolen copy of the cookie
    stale = client.get(f"{API}/me")
    assert stale.status_code == 401 and stale.json()["code"] == "session_invalid"


def test_expired_and_forged_sessions_and_tokens(client: TestClient) -> None:
    clock = _clock(client)
    login, password = _register(client)
    login_session(client, login, password)
    assert client.get(f"{API}/me").status_code == 200
    clock.advance(31 * 60 * 1000)  # past the 30 min idle limit
    expired = client.get(f"{API}/me")
    assert expired.status_code == 401 and expired.json()["code"] == "session_invalid"
    client.cookies.clear()
    for forged in ("zjs_" + "A" * 43, "zjt_" + "A" * 43, "not-a-token", "zjt_" + "A" * 500):
        answer = client.get(f"{API}/me", headers={"Authorization": f"Bearer {forged}"})
        assert answer.status_code == 401 and answer.json()["code"] == "session_invalid"
    assert client.get(f"{API}/me").status_code == 401  # nothing at all


def test_api_tokens_list_and_revoke(client: TestClient) -> None:
    headers = register_and_login(client)
    listed = client.get(f"{API}/tokens", headers=headers, params={"limit": 10}).json()
    assert [t["name"] for t in listed["items"]] == ["tests"] and listed["items"][0]["live"]
    token_id = listed["items"][0]["id"]
    other = register_and_login(client)
    assert client.delete(f"{API}/tokens/{token_id}", headers=other).status_code == 404
    assert client.delete(f"{API}/tokens/{token_id}", headers=headers).status_code == 204
    revoked = client.get(f"{API}/me", headers=headers)
    assert revoked.status_code == 401 and revoked.json()["code"] == "session_invalid"


def test_token_creation_needs_recent_authentication(client: TestClient) -> None:
    clock = _clock(client)
    login, password = _register(client)
    session = login_session(client, login, password)
    csrf = {CSRF_HEADER: session["csrf_token"]}
    clock.advance(6 * 60 * 1000)
    stale = client.post(f"{API}/tokens", json={"name": "ci"}, headers=csrf)
    assert stale.status_code == 401 and stale.json()["code"] == "reauthentication_required"
    wrong = client.post(f"{API}/reauthenticate", json={"password": "nope" * 4}, headers=csrf)
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    fresh = client.post(f"{API}/reauthenticate", json={"password": password}, headers=csrf)
    assert fresh.status_code == 200
    assert client.post(f"{API}/tokens", json={"name": "ci"}, headers=csrf).status_code == 201


# -- authorisation ----------------------------------------------------------------------------
def test_privilege_escalation_is_refused_and_audited(client: TestClient) -> None:
    customer = register_and_login(client)
    customer_id = me(client, customer)["user_id"]
    staff = {"login": fresh_login(), "password": new_password(), "roles": ["admin"]}
    answer = client.post(f"{API}/staff", json=staff, headers=customer)
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    grant = client.post(
        f"{API}/users/{customer_id}/roles", json={"role": "bank_officer"}, headers=customer
    )
    assert grant.status_code == 403 and grant.json()["code"] == "permission_denied"
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    officer_id = me(client, officer)["user_id"]
    self_grant = client.post(
        f"{API}/users/{officer_id}/roles", json={"role": "admin"}, headers=officer
    )
    assert self_grant.status_code == 403
    assert client.get(f"{API}/audit", headers=customer).status_code == 403
    assert client.get(f"{API}/audit", headers=officer).status_code == 403

    admin = create_staff(client, roles={Role.ADMIN})
    admin_id = me(client, admin)["user_id"]
    own = client.post(f"{API}/users/{admin_id}/roles", json={"role": "auditor"}, headers=admin)
    assert own.status_code == 403 and own.json()["code"] == "sod_self_grant"
    mixed = client.post(
        f"{API}/users/{customer_id}/roles", json={"role": "bank_officer"}, headers=admin
    )
    assert mixed.status_code == 403 and mixed.json()["code"] == "sod_role_conflict"
    conflict = client.post(f"{API}/users/{officer_id}/roles", json={"role": "admin"}, headers=admin)
    assert conflict.status_code == 403 and conflict.json()["code"] == "sod_role_conflict"
    created = client.post(
        f"{API}/staff",
        json={"login": fresh_login(), "password": new_password(), "roles": ["risk_analyst"]},
        headers=admin,
    )
    assert created.status_code == 201

    auditor = create_staff(client, roles={Role.AUDITOR})
    log = client.get(f"{API}/audit", headers=auditor, params={"limit": 100})
    assert log.status_code == 200
    refusals = {(e["action"], e["outcome"]) for e in log.json()["items"]}
    assert ("user.manage", "permission_denied") in refusals
    assert ("role.assign", "sod_self_grant") in refusals
    assert ("role.assign", "sod_role_conflict") in refusals
    assert ("audit_log.read", "permission_denied") in refusals
    page = client.get(f"{API}/audit", headers=auditor, params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"] == page["items"][-1]["seq"]
    after = client.get(f"{API}/audit", headers=auditor, params={"after_seq": page["next"]})
    assert after.json()["items"][0]["seq"] == page["next"] + 1


def test_revoking_a_role_ends_the_users_sessions(client: TestClient) -> None:
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    officer_id = me(client, officer)["user_id"]
    admin = create_staff(client, roles={Role.ADMIN})
    answer = client.delete(f"{API}/users/{officer_id}/roles/bank_officer", headers=admin)
    assert answer.status_code == 204
    assert client.get(f"{API}/me", headers=officer).status_code == 401


def test_step_up_policy_is_versioned(client: TestClient) -> None:
    customer = register_and_login(client)
    assert client.get(f"{API}/policy", headers=customer).status_code == 403
    compliance = create_staff(client, roles={Role.COMPLIANCE_OFFICER})
    current = client.get(f"{API}/policy", headers=compliance).json()
    new = {**current, "version": current["version"] + ".next", "fresh_mfa_ms": 60_000}
    answer = client.put(f"{API}/policy", json=new, headers=compliance)
    assert answer.status_code == 200 and answer.json()["version"] == new["version"]
    assert client.get(f"{API}/policy", headers=compliance).json()["fresh_mfa_ms"] == 60_000
    again = client.put(f"{API}/policy", json=new, headers=compliance)
    assert again.status_code == 409 and again.json()["code"] == "policy_version_exists"
    bad = client.put(f"{API}/policy", json={"version": "x"}, headers=compliance)
    assert bad.status_code == 422


# -- personal data, consent, KYC, credentials -----------------------------------------------
def _save_person(client: TestClient, headers: dict[str, str]) -> None:
    person = {"name": "王小明", "resident_id": RESIDENT_ID, "mobile": "13800138000"}
    answer = client.put(f"{API}/personal-data", json=person, headers=headers)
    assert answer.status_code == 204, answer.text


def test_personal_data_needs_consent_for_member_staff(client: TestClient) -> None:
    customer = register_and_login(client)
    customer_id = me(client, customer)["user_id"]
    _save_person(client, customer)
    own = client.get(
        f"{API}/users/{customer_id}/personal-data",
        params={"fields": ["name", "mobile"], "purpose": "account_opening"},
        headers=customer,
    )
    assert own.status_code == 200 and own.json() == {"name": "王小明", "mobile": "+8613800138000"}

    officer = create_staff(client, roles={Role.BANK_OFFICER})
    query = {"fields": ["mobile"], "purpose": "account_opening"}
    url = f"{API}/users/{customer_id}/personal-data"
    refused = client.get(url, params=query, headers=officer)
    assert refused.status_code == 403 and refused.json()["code"] == "no_consent"

    member = _platform(client).node.key.did
    consent = {"grantee": member, "category": "contact", "purpose": "account_opening"}
    granted = client.post(f"{API}/consents", json=consent, headers=customer)
    assert granted.status_code == 201, granted.text
    listed = client.get(f"{API}/consents", headers=customer).json()["items"]
    assert [c["grantee"] for c in listed] == [member]
    assert client.get(url, params=query, headers=officer).json() == {"mobile": "+8613800138000"}
    revoked = client.post(f"{API}/consents/revoke", json=consent, headers=customer)
    assert revoked.status_code == 200
    assert client.get(url, params=query, headers=officer).status_code == 403

    regulator = create_staff(client, roles={Role.REGULATOR})
    unjustified = client.get(url, params=query, headers=regulator)
    assert unjustified.status_code == 403 and unjustified.json()["code"] == "justification_required"
    reason = "inspection case 2026-17 on account opening"
    justified = client.post(
        f"{url}/read", json={**query, "justification": reason}, headers=regulator
    )
    assert justified.status_code == 200, justified.text
    assert reason not in str(justified.request.url)
    reads = [
        e
        for e in identity_of(client).audit.entries(after_seq=0, limit=1000)
        if e.action == "personal_data.read" and e.outcome == "ok"
    ]
    assert len(reads) == 3 and reads[-1].reason is not None  # own, consented, justified


def test_tampered_ciphertext_is_refused(client: TestClient) -> None:
    customer = register_and_login(client)
    customer_id = me(client, customer)["user_id"]
    _save_person(client, customer)
    engine = _platform(client).platform_engine
    with engine.begin() as conn:
        body = conn.execute(
            text("SELECT body FROM identity_vault_records WHERE schema='person' AND record_id=:r"),
            {"r": customer_id},
        ).scalar_one()
        # Flip one character inside the name's ciphertext.
        start = body.index('"name":"v1.') + len('"name":"v1.') + 20
        flipped = body[:start] + ("A" if body[start] != "A" else "B") + body[start + 1 :]
        conn.execute(
            text(
                "UPDATE identity_vault_records SET body=:b WHERE record_id=:r AND schema='person'"
            ),
            {"b": flipped, "r": customer_id},
        )
    answer = client.get(
        f"{API}/users/{customer_id}/personal-data",
        params={"fields": ["name"], "purpose": "account_opening"},
        headers=customer,
    )
    assert answer.status_code == 500 and answer.json()["code"] == "decryption_failed"
    assert "王小明" not in answer.text


def test_kyc_credential_issue_verify_revoke(client: TestClient) -> None:
    customer = register_and_login(client, kind="sme_owner")
    customer_id = me(client, customer)["user_id"]
    _save_person(client, customer)
    document = {
        "kind": "id_card_front",
        "media_type": "image/png",
        "content_base64": base64.b64encode(b"\x89PNG front").decode(),
    }
    bad_code = {"company_name": "江苏零部件有限公司", "uscc": "91350100M000100Y44"}
    refused = client.post(
        f"{API}/kyc", json={"documents": [document], "business": bad_code}, headers=customer
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_uscc"
    business = {"company_name": "江苏零部件有限公司", "uscc": "91350100M000100Y43"}
    submitted = client.post(
        f"{API}/kyc", json={"documents": [document], "business": business}, headers=customer
    )
    assert submitted.status_code == 201, submitted.text
    commitment = submitted.json()["commitment"]
    assert client.get(f"/api/v1/notary/anchors/{commitment}").status_code == 200

    officer = create_staff(client, roles={Role.BANK_OFFICER})
    compliance = create_staff(client, roles={Role.COMPLIANCE_OFFICER})
    early = client.post(
        f"{API}/credentials", json={"subject_user_id": customer_id}, headers=officer
    )
    assert early.status_code == 422 and early.json()["code"] == "case_not_approved"
    by_officer = client.post(
        f"{API}/kyc/{customer_id}/review", json={"approve": True}, headers=officer
    )
    assert by_officer.status_code == 403
    review = client.post(
        f"{API}/kyc/{customer_id}/review", json={"approve": True}, headers=compliance
    )
    assert review.status_code == 200 and review.json()["status"] == "approved"
    issued = client.post(
        f"{API}/credentials", json={"subject_user_id": customer_id}, headers=officer
    )
    assert issued.status_code == 201, issued.text
    credential = issued.json()
    assert credential["credentialSubject"]["id"] == me(client, customer)["did"]
    assert RESIDENT_ID not in issued.text

    verified = client.post(f"{API}/credentials/verify", json={"credential": credential})
    assert verified.status_code == 200 and verified.json()["valid"] is True
    forged = {**credential, "validUntil": "2099-01-01T00:00:00Z"}
    bad = client.post(f"{API}/credentials/verify", json={"credential": forged})
    assert bad.status_code == 422 and bad.json()["code"] == "bad_signature"

    revoke = client.post(
        f"{API}/credentials/{credential['id']}/revoke",
        json={"reason": "document found forged"},
        headers=officer,
    )
    assert revoke.status_code == 204, revoke.text
    after = client.post(f"{API}/credentials/verify", json={"credential": credential})
    assert after.status_code == 422 and after.json()["code"] == "revoked"


def test_rotated_did_key_keeps_old_signatures_verifiable(client: TestClient) -> None:
    customer = register_and_login(client)
    user = me(client, customer)
    registered = client.post(f"{API}/did/register", headers=customer)
    assert registered.status_code == 200, registered.text
    did = registered.json()["did"]
    assert did == "did:zhijin:" + user["did"].removeprefix("did:key:")
    state = ChainReader(_platform(client).node)
    key_1 = identity_of(client).user_keys(user_id=user["user_id"]).did_key
    valid_from = client.get(f"{API}/did", headers=customer).json()["registered"]["keys"][0][
        "valid_from_ms"
    ]
    signed_at = -(-valid_from // 1000) * 1000  # proofs carry whole seconds
    statement = {"@context": ["https://www.w3.org/ns/credentials/v2"], "claim": "x"}
    old = add_proof(
        statement, key_1, verification_method=f"{did}#key-1", created=format_datetime(signed_at)
    )
    while _platform(client).node.clock() <= signed_at + 1:
        time.sleep(0.05)  # rotate strictly after the signature's time

    rotated = client.post(f"{API}/did/rotate", json={}, headers=customer)
    assert rotated.status_code == 200 and rotated.json()["key_id"] == "key-2"
    assert verify_proof(old, resolver=Resolver(state)).verification_method == f"{did}#key-1"
    late = add_proof(
        statement,
        key_1,
        verification_method=f"{did}#key-1",
        created=format_datetime(_platform(client).node.clock() + 2000),
    )
    with pytest.raises(Exception, match="key"):
        verify_proof(late, resolver=Resolver(state))
    key_2 = identity_of(client).user_keys(user_id=user["user_id"]).registered_key
    assert key_2 is not None and key_2.did != key_1.did
    deactivated = client.post(f"{API}/did/deactivate", headers=customer)
    assert deactivated.status_code == 200 and deactivated.json()["did"] == did
    again = client.post(f"{API}/did/rotate", json={}, headers=customer)
    assert again.status_code == 422 and again.json()["code"] == "did_deactivated"


def test_key_export_needs_a_session_and_a_fresh_code_and_is_audited(client: TestClient) -> None:
    from zhijin.chain.crypto import KeyPair
    from zhijin.identity.did import seed_from_private_multikey

    clock = _clock(client)
    login, password = _register(client)
    login_session(client, login, password)
    user = client.get(f"{API}/me").json()
    export = f"{API}/keys/export"
    no_mfa = client.post(export, headers=_csrf(client))
    assert no_mfa.status_code == 401 and no_mfa.json()["code"] == "mfa_enrolment_required"
    secret, _ = _enrol_totp(client, clock)
    clock.advance(3 * 60 * 1000)  # the enrolment's code is no longer fresh
    stale = client.post(export, headers=_csrf(client))
    assert stale.status_code == 401 and stale.json()["code"] == "step_up_required", stale.text
    assert "seed" not in stale.text and "secretKey" not in stale.text
    assert client.post(export).status_code == 403  # a cookie session still needs CSRF
    stepped = client.post(
        f"{API}/step-up", json={"totp_code": _code(secret, clock)}, headers=_csrf(client)
    )
    assert stepped.status_code == 200, stepped.text

    exported = client.post(export, headers=_csrf(client))
    assert exported.status_code == 200, exported.text
    assert exported.headers["cache-control"] == "no-store"
    body = exported.json()
    assert body["did"] == user["did"] and len(body["keys"]) == 1
    entry = body["keys"][0]
    seed = seed_from_private_multikey(entry["secretKeyMultibase"])
    assert KeyPair.from_seed(seed).did == user["did"]
    jwk = entry["privateKeyJwk"]
    assert base64.urlsafe_b64decode(jwk["d"] + "=") == seed
    assert entry["id"] == f"{user['did']}#{user['did'].removeprefix('did:key:')}"
    assert _audit_outcomes(client, "identity.key.export") == [
        "mfa_enrolment_required",
        "step_up_required",
        "ok",
    ]
    logged = [
        e
        for e in identity_of(client).audit.entries(after_seq=0, limit=1000)
        if e.action == "identity.key.export"
    ]
    assert entry["secretKeyMultibase"] not in repr(logged) and jwk["d"] not in repr(logged)

    # After registering a did:zhijin, its current key comes too.
    assert client.post(f"{API}/did/register", headers=_csrf(client)).status_code == 200
    both = client.post(export, headers=_csrf(client)).json()["keys"]
    assert [k["id"].split("#")[1] for k in both][1] == "key-1"
    assert both[1]["controller"].startswith("did:zhijin:")

    clock.advance(3 * 60 * 1000)
    assert client.post(export, headers=_csrf(client)).json()["code"] == "step_up_required"


def test_key_export_is_refused_to_api_tokens_and_staff(client: TestClient) -> None:
    token = register_and_login(client)  # a bearer API token
    refused = client.post(f"{API}/keys/export", headers=token)
    assert refused.status_code == 403 and refused.json()["code"] == "session_required"
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    assert client.post(f"{API}/keys/export", headers=officer).status_code == 403


def test_staff_have_no_user_did(client: TestClient) -> None:
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    answer = client.post(f"{API}/did/register", headers=officer)
    assert answer.status_code == 403


# -- PostgreSQL -------------------------------------------------------------------------------
def test_login_lockout_csrf_and_audit_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    settings = _settings(tmp_path, platform_database_url=pg_url)
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as pg_client:
        login, password = _register(pg_client)
        session = login_session(pg_client, login, password)
        assert pg_client.post(f"{API}/sessions/revoke-others").status_code == 403
        ok = pg_client.post(
            f"{API}/sessions/revoke-others", headers={CSRF_HEADER: session["csrf_token"]}
        )
        assert ok.status_code == 200
        pg_client.cookies.clear()
        for _ in range(5):
            answer = pg_client.post(f"{API}/login", json={"login": login, "password": "x" * 12})
            assert answer.status_code == 401
        locked = pg_client.post(f"{API}/login", json={"login": login, "password": password})
        assert locked.status_code == 429
        identity = identity_of(pg_client)
        assert identity.audit.verify().ok
        engine = _platform(pg_client).platform_engine
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE identity_audit_log SET outcome='ok' WHERE seq=1"))


# -- authorisation before lookup, strict schemas, justifications in the body ------------------
def _submit_kyc(client: TestClient, headers: dict[str, str]) -> None:
    _save_person(client, headers)
    document = {
        "kind": "id_card_front",
        "media_type": "image/png",
        "content_base64": base64.b64encode(b"\x89PNG front").decode(),
    }
    answer = client.post(f"{API}/kyc", json={"documents": [document]}, headers=headers)
    assert answer.status_code == 201, answer.text


def test_a_customer_is_refused_before_any_case_is_looked_up(client: TestClient) -> None:
    subject = register_and_login(client)
    subject_id = me(client, subject)["user_id"]
    _submit_kyc(client, subject)
    other = register_and_login(client)
    answers = [
        client.post(f"{API}/kyc/{user_id}/review", json={"approve": True}, headers=other)
        for user_id in (subject_id, "u_no_such_user")
    ]
    assert [a.status_code for a in answers] == [403, 403]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["code"] == "permission_denied"
    # The same for issuing, revoking and role changes: the refusal does not depend on the target.
    for path, body in (
        ("/credentials", {"subject_user_id": subject_id}),
        ("/credentials", {"subject_user_id": "u_no_such_user"}),
        ("/credentials/urn:uuid:none/revoke", {"reason": "forged"}),
        (f"/users/{subject_id}/roles", {"role": "customer"}),
        ("/users/u_no_such_user/roles", {"role": "customer"}),
    ):
        refused = client.post(f"{API}{path}", json=body, headers=other)
        assert refused.status_code == 403 and refused.json()["code"] == "permission_denied", path
    officer = create_staff(client, roles={Role.COMPLIANCE_OFFICER})
    missing = client.post(
        f"{API}/kyc/u_no_such_user/review", json={"approve": True}, headers=officer
    )
    assert missing.status_code == 422 and missing.json()["code"] == "no_pending_case"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/register", {"login": "someone.new", "password": "pw-long-enough-1", "admin": True}),
        ("/login", {"login": "someone", "password": "pw", "totp": "123456"}),
    ],
)
def test_unknown_fields_are_refused(client: TestClient, path: str, body: dict[str, Any]) -> None:
    answer = client.post(f"{API}{path}", json=body)
    assert answer.status_code == 422
    assert identity_of(client).store.user_by_login("someone.new") is None


def test_a_justification_travels_in_the_body_never_in_the_url(client: TestClient) -> None:
    customer = register_and_login(client)
    customer_id = me(client, customer)["user_id"]
    _save_person(client, customer)
    regulator = create_staff(client, roles={Role.REGULATOR})
    reason = "inspection case 2026-18 on account opening"
    url = f"{API}/users/{customer_id}/personal-data"
    query = {"fields": ["name"], "purpose": "supervision", "justification": reason}
    in_query = client.get(url, params=query, headers=regulator)
    assert in_query.status_code == 422 and in_query.json()["code"] == "justification_in_query"
    entries = identity_of(client).audit.entries(after_seq=0, limit=1000)
    assert not any(e.action == "personal_data.read" and e.outcome == "ok" for e in entries)
    in_body = client.post(f"{url}/read", json=query, headers=regulator)
    assert in_body.status_code == 200 and in_body.json() == {"name": "王小明"}
    reads = [
        e
        for e in identity_of(client).audit.entries(after_seq=0, limit=1000)
        if e.action == "personal_data.read" and e.outcome == "ok"
    ]
    assert [e.reason for e in reads] == [reason]
    extra = client.post(f"{url}/read", json={**query, "urgent": True}, headers=regulator)
    assert extra.status_code == 422


def test_a_look_alike_login_gets_409_login_confusable(client: TestClient) -> None:
    password = new_password()
    first = client.post(f"{API}/register", json={"login": "wang.xiaoming", "password": password})
    assert first.status_code == 201, first.text
    look_alike = {"login": "wang.xiaom\u0456ng", "password": new_password()}  # Cyrillic і
    refused = client.post(f"{API}/register", json=look_alike)
    assert refused.status_code == 409 and refused.json()["code"] == "login_confusable"


def test_audit_routes_name_an_unreadable_entry(client: TestClient) -> None:
    auditor = create_staff(client, roles={Role.AUDITOR})
    clean = client.get(f"{API}/audit/verify", headers=auditor)
    assert clean.status_code == 200 and clean.json()["ok"] is True
    assert clean.json()["unanchored_entries"] == clean.json()["entries_checked"]  # none anchored
    assert clean.json()["anchors_not_on_chain"] == []
    with identity_of(client).audit.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER identity_audit_no_update"))
        conn.execute(text("UPDATE identity_audit_log SET details='oops' WHERE seq=1"))
    listed = client.get(f"{API}/audit", headers=auditor)
    assert listed.status_code == 500 and listed.json()["code"] == "audit_entry_malformed"
    checked = client.get(f"{API}/audit/verify", headers=auditor)
    assert checked.status_code == 200
    assert checked.json()["ok"] is False and checked.json()["first_bad_seq"] == 1
    assert checked.json()["problem"] == "entry 1 cannot be read: details is not JSON"

"""The security page's self-service without a browser: change the password (the current one
checked, a weak or repeated one refused, the other sessions signed out), the sessions listed
and one signed out (never another user's), and new recovery codes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.platform.users import identity_of
from zhijin.identity.service import RequestSource
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "purple elephant juggling 42"
HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def app() -> Iterator[object]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as data:
        settings = Settings(
            data=Path(data), block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
        )
        init_data_dir(settings, members=1)
        application = create_app(settings)
        with TestClient(application, base_url="https://testserver"):
            yield application


def _client(app: object) -> TestClient:
    return TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]


def _user(client: TestClient) -> str:
    login = f"sec-{secrets.token_hex(4)}@example.com"
    ip = f"10.8.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    identity_of(client).register(
        login=login, password=PASSWORD, kind="individual", source=RequestSource(ip=ip)
    )
    return login


def _sign_in(client: TestClient, login: str, password: str = PASSWORD) -> None:
    answer = client.post("/signin", data={"login": login, "password": password}, headers=HX)
    assert answer.status_code == 204, answer.text


def _post(client: TestClient, path: str, lang: str = "en", **kwargs: object) -> object:
    csrf = next(v for k, v in client.cookies.items() if k.endswith("zhijin_csrf"))
    headers = {**HX, "X-CSRF-Token": csrf, "Accept-Language": lang}
    return client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]


def test_change_password_checks_the_current_one_and_signs_out_the_others(app: object) -> None:
    first, second = _client(app), _client(app)
    login = _user(first)
    _sign_in(first, login)
    _sign_in(second, login)
    wrong = _post(
        first,
        "/security/password",
        "zh-CN",
        data={"current": "not my password 1", "new": NEW_PASSWORD, "again": NEW_PASSWORD},
    )
    assert 'id="password-error"' in wrong.text  # type: ignore[attr-defined]
    differ = _post(
        first,
        "/security/password",
        data={"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD + "x"},
    )
    assert "The two new passwords differ" in differ.text  # type: ignore[attr-defined]
    weak = _post(
        first,
        "/security/password",
        data={"current": PASSWORD, "new": "password1234", "again": "password1234"},
    )
    assert 'id="password-error"' in weak.text  # type: ignore[attr-defined]
    assert "weak_password" not in weak.text  # type: ignore[attr-defined]
    same = _post(
        first, "/security/password", data={"current": PASSWORD, "new": PASSWORD, "again": PASSWORD}
    )
    assert "must differ from the current one" in same.text  # type: ignore[attr-defined]
    missing = _post(first, "/security/password", data={})
    assert "Enter the current password" in missing.text  # type: ignore[attr-defined]
    changed = _post(
        first,
        "/security/password",
        data={"current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
    )
    assert 'id="password-changed"' in changed.text  # type: ignore[attr-defined]
    # The other browser is signed out; this one goes on; the new password signs in.
    assert second.get("/security", follow_redirects=False).status_code == 303
    assert first.get("/security").status_code == 200
    third = _client(app)
    assert (
        third.post("/signin", data={"login": login, "password": PASSWORD}, headers=HX).status_code
        == 200
    )  # the old password: the form again, with the refusal
    _sign_in(third, login, NEW_PASSWORD)


def test_sessions_are_listed_and_one_is_signed_out_but_never_anothers(app: object) -> None:
    mine, other_device, stranger = _client(app), _client(app), _client(app)
    login = _user(mine)
    _sign_in(mine, login)
    _sign_in(other_device, login)
    _sign_in(stranger, _user(stranger))
    page = mine.get("/security", headers={"Accept-Language": "zh-CN"}).text
    assert page.count("session-revoke") == 1 and "当前设备" in page
    identity = identity_of(mine)
    user = identity.store.user_by_login(login)
    assert user is not None
    sessions = identity.store.user_sessions(user.id, limit=10)
    assert len(sessions) == 2
    # The stranger names one of them: nothing happens to it.
    theirs = _post(stranger, f"/security/sessions/{sessions[0].id}/revoke")
    assert 'id="sessions-error"' in theirs.text  # type: ignore[attr-defined]
    assert len(identity.store.user_sessions(user.id, limit=10)) == 2
    # Signing out the other device from here.
    current = _current_session_id(mine, identity, user.id)
    other_id = next(s.id for s in sessions if s.id != current)
    done = _post(mine, f"/security/sessions/{other_id}/revoke")
    assert 'id="session-signed-out"' in done.text  # type: ignore[attr-defined]
    assert other_device.get("/security", follow_redirects=False).status_code == 303
    assert mine.get("/security").status_code == 200
    again = _post(mine, f"/security/sessions/{other_id}/revoke")
    assert "No such live session" in again.text  # type: ignore[attr-defined]


def _current_session_id(client: TestClient, identity: object, user_id: str) -> str:
    token = next(v for k, v in client.cookies.items() if k.endswith("zhijin_session"))
    principal = identity.authenticate(  # type: ignore[attr-defined]
        token=token, csrf_token=None, unsafe_method=False, enrolment_only_ok=False
    )
    assert principal.user_id == user_id
    session_id: str = principal.session_id
    return session_id


def test_new_recovery_codes_replace_the_old_ones(app: object) -> None:
    client = _client(app)
    login = _user(client)
    _sign_in(client, login)
    identity = identity_of(client)
    user = identity.store.user_by_login(login)
    assert user is not None
    begun = _post(client, "/security/totp/begin")
    secret = begun.text.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")  # type: ignore[attr-defined]
    authenticator = pyotp.TOTP(secret)
    previous = identity.clock() // 1000 - 30
    confirmed = _post(client, "/security/totp/confirm", data={"code": authenticator.at(previous)})
    first_codes = (
        confirmed.text.split('id="recovery-codes" class="mono">')[1].split("</pre>")[0].split()
    )  # type: ignore[attr-defined]
    assert len(first_codes) >= 8
    assert 'id="recovery-new"' in client.get("/security").text
    fresh = _post(client, "/security/recovery-codes", "zh-CN")
    text = fresh.text  # type: ignore[attr-defined]
    assert "新的恢复码已生成" in text and 'download="zhijin-recovery-codes.txt"' in text
    new_codes = text.split('id="recovery-codes" class="mono">')[1].split("</pre>")[0].split()
    assert set(new_codes).isdisjoint(first_codes)
    assert identity.store.recovery_codes_left(user.id) == len(new_codes)


def test_api_tokens_are_made_listed_and_revoked_only_by_their_owner(app: object) -> None:
    mine, stranger = _client(app), _client(app)
    _sign_in(mine, _user(mine))
    _sign_in(stranger, _user(stranger))
    made = _post(mine, "/security/tokens", data={"name": "ledger export"}).text  # type: ignore[attr-defined]
    token = made.split('id="token-new" class="mono">')[1].split("<")[0]
    assert token.startswith("zjt_") and "ledger export" in made
    token_id = made.split('hx-post="/security/tokens/')[1].split("/revoke")[0]
    # Another user naming it: refused in the tokens part of the page, the token still live.
    theirs = _post(stranger, f"/security/tokens/{token_id}/revoke", "zh-CN").text  # type: ignore[attr-defined]
    assert 'id="tokens-error"' in theirs and "unknown_token" not in theirs
    assert "ledger export" in mine.get("/security").text
    revoked = _post(mine, f"/security/tokens/{token_id}/revoke").text  # type: ignore[attr-defined]
    assert 'id="tokens-error"' not in revoked and "ledger export" not in revoked
    assert 'id="token-new"' not in revoked
    again = _post(mine, f"/security/tokens/{token_id}/revoke").text  # type: ignore[attr-defined]
    assert 'id="tokens-error"' in again


def test_keys_need_a_right_fresh_code_before_the_file(app: object) -> None:
    client = _client(app)
    _sign_in(client, _user(client))
    refused = _post(client, "/security/keys", data={"code": "000000"}).text  # type: ignore[attr-defined]
    assert 'id="keys-error"' in refused and 'id="keys-download"' not in refused

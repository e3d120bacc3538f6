"""Users for API tests: a fresh customer's bearer headers, or staff with roles.

    headers = register_and_login(client)                      # a new customer
    officer = create_staff(client, roles={Role.BANK_OFFICER})  # staff of this node's member
    client.get("/api/v1/identity/me", headers=headers)

Staff sign in with a second factor: `create_staff` enrols the new account's authenticator as
a person would (sign in, enrol, confirm with a code pyotp computes from the secret), so the
token it returns carries the second factor every staff session needs.

The platform should run with `password_hashing="test"` (cheap Argon2) to keep tests fast;
production parameters work too, at about 0.1 s per hash.
"""

from __future__ import annotations

import secrets
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from zhijin.identity import totp
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import IdentityService, IssuedSession, RequestSource

__all__ = [
    "CSRF_HEADER",
    "create_staff",
    "enrol_totp",
    "fresh_login",
    "identity_of",
    "login_session",
    "login_with_token",
    "me",
    "new_password",
    "register_and_login",
]

CSRF_HEADER = "X-CSRF-Token"
API = "/api/v1/identity"


def identity_of(client: TestClient) -> IdentityService:
    identity: IdentityService = client.app.state.identity  # type: ignore[attr-defined]
    return identity


def new_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


def fresh_login(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def login_session(client: TestClient, login: str, password: str, **extra: Any) -> dict[str, Any]:
    """Log in with the browser flow; the cookies stay in the client.  Returns the JSON body."""
    response = client.post(f"{API}/login", json={"login": login, "password": password, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _session_cookie(response: Any) -> str:
    """`name=value` of the session cookie a login set (read from Set-Cookie, so it works on
    http:// test clients too, where a cookie jar would hold back a Secure cookie)."""
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        if pair.split("=", 1)[0] in ("__Host-zhijin_session", "zhijin_session"):
            return pair
    raise AssertionError("login set no session cookie")


def register_and_login(
    client: TestClient,
    login: str | None = None,
    password: str | None = None,
    *,
    kind: str = "individual",
) -> dict[str, str]:
    """Register a customer (or SME owner), log in, create an API token; returns the bearer
    headers.  All three go through the service with the user's own source address, so many
    users per module do not drain the per-address registration and authentication limits
    (the HTTP routes and their limits are tested in tests/identity/test_api.py; an HTTP log-in
    is `login_with_token`).  No cookies are left in `client`."""
    login = login or fresh_login("customer")
    password = password or new_password()
    identity = identity_of(client)
    source = RequestSource(ip=f"tests-{login}")
    identity.register(login=login, password=password, kind=kind, source=source)
    issued = identity.login(login=login, password=password, source=source)
    token = identity.create_api_token(principal=issued.principal, name="tests")
    return {"Authorization": f"Bearer {token.token}"}


def login_with_token(client: TestClient, login: str, password: str) -> dict[str, str]:
    """Log in and create an API token; returns its bearer headers.  No cookies are left."""
    answer = client.post(f"{API}/login", json={"login": login, "password": password})
    assert answer.status_code == 200, answer.text
    token = client.post(
        f"{API}/tokens",
        json={"name": "tests"},
        headers={CSRF_HEADER: answer.json()["csrf_token"], "Cookie": _session_cookie(answer)},
    )
    assert token.status_code == 201, token.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {token.json()['token']}"}


def me(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """The caller's `/me`: user_id, roles, did, ..."""
    response = client.get(f"{API}/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _admin(identity: IdentityService, member_did: str) -> Principal:
    admin = identity.bootstrap_admin(
        login=fresh_login("admin"), password=new_password(), member_did=member_did
    )
    return Principal(user_id=admin.id, roles=frozenset({Role.ADMIN}), member_did=member_did)


def create_staff(
    client: TestClient,
    *,
    roles: set[Role] | frozenset[Role],
    login: str | None = None,
    password: str | None = None,
    member_did: str | None = None,
) -> dict[str, str]:
    """A staff account of this node's member (or `member_did`) with `roles`, created through
    the service by a fresh administrator; returns its bearer headers (`me(client, headers)`
    gives its user id)."""
    identity = identity_of(client)
    member = member_did or client.app.state.platform.node.key.did  # type: ignore[attr-defined]
    login = login or fresh_login("staff")
    password = password or new_password()
    if Role.ADMIN in roles:
        identity.bootstrap_admin(login=login, password=password, member_did=member)
        extra = frozenset(roles) - {Role.ADMIN}
        if extra:
            user = identity.store.user_by_login(login)
            assert user is not None
            for role in sorted(extra):
                identity.grant_role(principal=_admin(identity, member), user_id=user.id, role=role)
    else:
        identity.create_staff(
            principal=_admin(identity, member),
            login=login,
            password=password,
            roles=frozenset(roles),
            member_did=member,
        )
    issued = identity.login(
        login=login, password=password, source=RequestSource(ip=f"tests-{login}")
    )
    assert issued.principal.mfa_at_ms is None  # staff without an authenticator: enrol first
    enrol_totp(identity, issued)
    enrolled = identity.authenticate(token=issued.token)  # the same session, now with MFA
    token = identity.create_api_token(principal=enrolled, name="tests")
    return {"Authorization": f"Bearer {token.token}"}


def enrol_totp(identity: IdentityService, issued: IssuedSession) -> pyotp.TOTP:
    """Enrol an authenticator for the session's user (begin, confirm with the current code);
    the authenticator, for later codes."""
    enrolment = identity.begin_totp_enrolment(principal=issued.principal)
    authenticator = pyotp.TOTP(totp.secret_text(enrolment.secret))
    # The code at the service's clock (a test may run it on a daytime clock, not the wall's).
    code = authenticator.at(identity.clock() // 1000)
    identity.confirm_totp_enrolment(principal=issued.principal, code=code)
    return authenticator

"""FastAPI dependencies of the identity domain: who is calling, and from where.

Two ways in, checked by `IdentityService.authenticate`:

- browsers: the session cookie (`__Host-zhijin_session`: Secure, HttpOnly, SameSite=Strict,
  Path=/).  Unsafe methods (anything but GET, HEAD, OPTIONS) must echo the session's CSRF
  token in `X-CSRF-Token`.  The token is bound to the session (only its hash is stored) and is
  also set in the readable cookie `__Host-zhijin_csrf` so the page's script can copy it into
  the header (double submit): a cross-site form can send the cookie but never the header.
- API clients: `Authorization: Bearer zjt_...` (an API token).  Browsers never attach that
  header by themselves, so no CSRF token is needed.

Identity's own routes use the aliases (`CurrentUser`, `IdentityDep`); other domains ask the
request guard, which builds on them (guard.py: `CallerDep`, `GuardDep`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from zhijin.identity.errors import SessionInvalid
from zhijin.identity.rbac import Principal
from zhijin.identity.service import SAFE_METHODS, IdentityService, IssuedSession, RequestSource

__all__ = [
    "CSRF_HEADER",
    "CurrentUser",
    "EnrollingUser",
    "IdentityDep",
    "RequestSourceDep",
    "clear_session_cookies",
    "cookie_names",
    "current_user",
    "enrolling_user",
    "get_identity",
    "request_source",
    "set_session_cookies",
    "user_did",
]

CSRF_HEADER = "X-CSRF-Token"
_SESSION = "zhijin_session"
_CSRF = "zhijin_csrf"
_DEVICE = "zhijin_device"
_HOST_PREFIX = "__Host-"
DEVICE_COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie


def get_identity(request: Request) -> IdentityService:
    identity: IdentityService = request.app.state.identity
    return identity


IdentityDep = Annotated[IdentityService, Depends(get_identity)]


def _cookie_secure(request: Request) -> bool:
    platform = getattr(request.app.state, "platform", None)
    return bool(getattr(getattr(platform, "settings", None), "cookie_secure", True))


def cookie_names(secure: bool) -> tuple[str, str, str]:
    """(session, csrf, device) cookie names.  `__Host-` needs Secure, so plain-http local
    development (cookie_secure = false) drops the prefix."""
    prefix = _HOST_PREFIX if secure else ""
    return prefix + _SESSION, prefix + _CSRF, prefix + _DEVICE


def request_source(request: Request) -> RequestSource:
    """The client address as the server saw it, where it is (with a GeoIP database), and the
    device cookie if the browser has one.

    Behind a reverse proxy, run uvicorn with `--proxy-headers --forwarded-allow-ips=<proxy>`
    so `request.client` is the real client and not the proxy.
    """
    _session, _csrf, device = cookie_names(_cookie_secure(request))
    host = request.client.host if request.client is not None else "unknown"
    identity = getattr(request.app.state, "identity", None)
    locator = getattr(identity, "locator", None)
    location = None if locator is None else locator.locate(host)
    return RequestSource(ip=host, device_id=request.cookies.get(device), location=location)


RequestSourceDep = Annotated[RequestSource, Depends(request_source)]


def current_user(request: Request, identity: IdentityDep) -> Principal:
    """The authenticated principal, or 401 `session_invalid` / 403 `csrf_failed` (and 403
    `staff_mfa_enrolment_required` for staff who have no authenticator yet)."""
    return _authenticated(request, identity, enrolment_only_ok=False)


def enrolling_user(request: Request, identity: IdentityDep) -> Principal:
    """`current_user`, also for a staff session that may only enrol its authenticator: for
    the enrolment routes, /me and sign-out, which such a session must reach."""
    return _authenticated(request, identity, enrolment_only_ok=True)


def _authenticated(
    request: Request, identity: IdentityService, *, enrolment_only_ok: bool
) -> Principal:
    unsafe = request.method.upper() not in SAFE_METHODS
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        # Sent by the client's code, never by a browser on its own: CSRF cannot ride on it.
        # (A session token pasted here is still a session: authenticate asks for its CSRF.)
        return identity.authenticate(
            token=credentials.strip(),
            csrf_token=request.headers.get(CSRF_HEADER),
            unsafe_method=unsafe,
            enrolment_only_ok=enrolment_only_ok,
        )
    session_cookie, _csrf, _device = cookie_names(_cookie_secure(request))
    token = request.cookies.get(session_cookie)
    if not token:
        raise SessionInvalid(message="sign in first")
    return identity.authenticate(
        token=token,
        csrf_token=request.headers.get(CSRF_HEADER),
        unsafe_method=unsafe,
        enrolment_only_ok=enrolment_only_ok,
    )


CurrentUser = Annotated[Principal, Depends(current_user)]
EnrollingUser = Annotated[Principal, Depends(enrolling_user)]


def optional_user(request: Request, identity: IdentityService) -> Principal | None:
    """The caller when credentials are given (refused if they are bad); None when none are
    (routes that also serve anyone, such as the live event stream)."""
    session_cookie, _csrf, _device = cookie_names(_cookie_secure(request))
    if request.headers.get("authorization") or request.cookies.get(session_cookie):
        return current_user(request, identity)
    return None


def user_did(identity: IdentityService, principal: Principal) -> str:
    """The did:key owning this end user's accounts (the sender the member vouches for)."""
    return identity.user_did(principal=principal)


def set_session_cookies(
    request: Request, response: Response, issued: IssuedSession, *, device_id: str | None = None
) -> None:
    """Session cookie (HttpOnly), CSRF cookie (readable by the page), device cookie."""
    secure = _cookie_secure(request)
    session, csrf, device = cookie_names(secure)
    max_age_s = max(0, (issued.expires_ms - issued.principal.auth_at_ms) // 1000)
    response.set_cookie(
        session,
        issued.token,
        max_age=max_age_s,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    if issued.csrf_token is not None:
        response.set_cookie(
            csrf,
            issued.csrf_token,
            max_age=max_age_s,
            path="/",
            secure=secure,
            httponly=False,
            samesite="strict",
        )
    if device_id is not None:
        response.set_cookie(
            device,
            device_id,
            max_age=DEVICE_COOKIE_MAX_AGE_S,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )


def clear_session_cookies(request: Request, response: Response) -> None:
    secure = _cookie_secure(request)
    session, csrf, _device = cookie_names(secure)
    for name in (session, csrf):
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")

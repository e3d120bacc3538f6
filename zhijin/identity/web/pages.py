"""Identity's pages: sign in (password, then the authenticator code when the user has one),
register, sign out, the staff home and the security page; and who the viewer of any page is
(`page_viewer`, which the composition root gives the shell).

Forms are sent by htmx (zhijin/platform/shell.py): a refusal re-renders the form's part with
the translated reason; a success goes on with `HX-Redirect`, a full page load, so the page is
rendered again for the new session (its CSRF token, its navigation).
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity import limits
from zhijin.identity.errors import MfaRequired, SessionInvalid
from zhijin.identity.module import ONBOARDING, REGISTER, SIGN_IN, STAFF_HOME, STAFF_ROLES
from zhijin.identity.rbac import Role, permissions_of
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.web import (
    clear_session_cookies,
    cookie_names,
    current_user,
    get_identity,
    optional_user,
    request_source,
    set_session_cookies,
)
from zhijin.identity.web.onboarding import needs_onboarding
from zhijin.platform import i18n
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ANONYMOUS,
    ShellViewer,
    htmx_redirect,
    local_path,
    page_access,
    problem_text,
    render,
    same_origin,
    shell_of,
    web_msgid,
)

__all__ = ["page_viewer", "router"]

# The consoles of each staff role, as later pages bring them: (role, msgid of its name).
CONSOLE_NAMES = {
    Role.BANK_OFFICER: web_msgid("staff.console_bank_officer"),
    Role.RISK_ANALYST: web_msgid("staff.console_risk_analyst"),
    Role.COMPLIANCE_OFFICER: web_msgid("staff.console_compliance"),
    Role.REGULATOR: web_msgid("staff.console_regulator"),
    Role.AUDITOR: web_msgid("staff.console_auditor"),
    Role.ADMIN: web_msgid("staff.console_admin"),
}

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)

Text = Annotated[str, Form(max_length=limits.PASSWORD_CHARS_MAX * 4)]
OptionalText = Annotated[str | None, Form(max_length=limits.LOGIN_CHARS_MAX * 2)]


def page_viewer(request: Request) -> ShellViewer:
    """The shell's viewer of a request: the signed-in user, or anyone.  A stale or revoked
    session reads as anyone (the page offers sign-in); a bad CSRF token on a form still
    refuses, as it does on the API."""
    identity = get_identity(request)
    try:
        principal = optional_user(request, identity)
    except SessionInvalid:
        return ANONYMOUS
    if principal is None:
        return ANONYMOUS
    user = identity.store.user_by_id(principal.user_id)
    if user is None:
        return ANONYMOUS
    _session, csrf, _device = cookie_names(bool(_secure(request)))
    return ShellViewer(
        user_id=user.id,
        login=user.login,
        roles=frozenset(str(role) for role in principal.roles),
        permissions=frozenset(str(p) for p in permissions_of(principal.roles)),
        did=user.did,
        totp_enabled=user.totp_enabled,
        staff=principal.member_did is not None,
        csrf_token=request.cookies.get(csrf),
        principal=principal,
    )


def _secure(request: Request) -> bool:
    platform = getattr(request.app.state, "platform", None)
    return bool(getattr(getattr(platform, "settings", None), "cookie_secure", True))


def _identity(request: Request) -> IdentityService:
    return get_identity(request)


def _error(request: Request, exc: ZhijinError) -> str:
    return problem_text(i18n.request_locale(request), exc)


# -- sign in ----------------------------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def signin_page(
    request: Request,
    _viewer: Annotated[ShellViewer, page_access(SIGN_IN)],
    next: str | None = None,
) -> HTMLResponse:
    return render(request, "identity/signin.html", title=SIGN_IN.label, next=local_path(next))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    login: Annotated[str, Form(max_length=limits.LOGIN_CHARS_MAX * 2)],
    password: Text,
    code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    same_origin(request)
    identity = _identity(request)
    source = request_source(request)
    device_id = source.device_id or secrets.token_urlsafe(24)
    entered = code.strip()
    totp_code = entered if entered.isdigit() and len(entered) <= 8 else None
    recovery_code = entered if entered and totp_code is None else None
    try:
        issued = identity.login(
            login=login,
            password=password,
            totp_code=totp_code,
            recovery_code=recovery_code,
            source=RequestSource(ip=source.ip, device_id=device_id, location=source.location),
        )
    except MfaRequired:
        return _signin_form(request, login=login, next=next, needs_code=True, error=None)
    except ZhijinError as exc:
        return _signin_form(
            request, login=login, next=next, needs_code=bool(entered), error=_error(request, exc)
        )
    target = local_path(next)
    if target == "/" and needs_onboarding(request, issued.principal):
        target = ONBOARDING.path  # no account yet: led through opening one, not left at "/"
    response = htmx_redirect(request, target)
    set_session_cookies(
        request, response, issued, device_id=None if source.device_id else device_id
    )
    return response


def _signin_form(
    request: Request, *, login: str, next: str, needs_code: bool, error: str | None
) -> HTMLResponse:
    return render(
        request,
        "identity/_signin_form.html",
        title=SIGN_IN.label,
        login=login,
        next=local_path(next),
        needs_code=needs_code,
        error=error,
    )


# -- register ---------------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
def register_page(
    request: Request, _viewer: Annotated[ShellViewer, page_access(REGISTER)]
) -> HTMLResponse:
    return render(request, "identity/register.html", title=REGISTER.label, error=None, login="")


@router.post("/register", response_class=HTMLResponse)
def register(
    request: Request,
    login: Annotated[str, Form(max_length=limits.LOGIN_CHARS_MAX * 2)],
    password: Text,
    kind: Annotated[str, Form(pattern="^(individual|sme_owner)$")] = "individual",
) -> HTMLResponse:
    same_origin(request)
    try:
        user = _identity(request).register(
            login=login, password=password, kind=kind, source=request_source(request)
        )
    except ZhijinError as exc:
        return render(
            request,
            "identity/_register_form.html",
            title=REGISTER.label,
            error=_error(request, exc),
            login=login,
        )
    return render(request, "identity/_registered.html", title=REGISTER.label, login=user.login)


# -- sign out ---------------------------------------------------------------------------------


@router.post("/signout")
def signout(request: Request) -> Response:
    same_origin(request)
    identity = _identity(request)
    response = htmx_redirect(request, "/signin")
    with contextlib.suppress(SessionInvalid):  # already gone: the cookies go all the same
        identity.logout(principal=current_user(request, identity))
    clear_session_cookies(request, response)
    return response


# -- the staff home ---------------------------------------------------------------------------


@router.get("/staff", response_class=HTMLResponse)
def staff_home(
    request: Request, viewer: Annotated[ShellViewer, page_access(STAFF_HOME)]
) -> HTMLResponse:
    consoles = [CONSOLE_NAMES[role] for role in STAFF_ROLES if str(role) in viewer.roles]
    # The viewer's console pages are the navigation's entries under /staff/ (their audiences
    # already chose them); the home links them with the console's name.
    console_paths = [
        item["path"]
        for item in shell_of(request).nav(viewer, "")
        if item["path"].startswith("/staff/")
    ]
    return render(
        request,
        "identity/staff_home.html",
        title=STAFF_HOME.label,
        consoles=consoles,
        console_paths=console_paths,
    )

"""The security page: change the password, set up an authenticator (its QR code, and its
secret as text for a phone that cannot scan), recovery codes (shown once, with a download;
new ones on demand), export one's keys behind a fresh code, API tokens, and the sessions
(each signed out on its own, or every other at once).

Each form is an htmx request; identity checks the session's CSRF token on it (shell.js sends
it) and the freshness each action needs, exactly as the API routes do."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Form, Path, Request, Response
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import ZhijinError
from zhijin.identity import limits
from zhijin.identity.module import SECURITY
from zhijin.identity.rbac import Principal
from zhijin.identity.service import IdentityService
from zhijin.identity.totp import Enrolment
from zhijin.identity.web import get_identity
from zhijin.platform import i18n
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["router"]

TOKENS_SHOWN_MAX = 50
router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(SECURITY)]
Code = Annotated[str, Form(max_length=16)]
T = TypeVar("T")


def _session(request: Request, viewer: ShellViewer) -> tuple[IdentityService, Principal]:
    principal = viewer.principal
    assert isinstance(principal, Principal)
    return get_identity(request), principal


def _part(request: Request, template: str, **context: Any) -> HTMLResponse:
    return render(request, template, title=SECURITY.label, **context)


def _act(
    request: Request,
    viewer: ShellViewer,
    *,
    part: str,
    act: Callable[[IdentityService, Principal], T],
    show: Callable[[IdentityService, Principal, T], HTMLResponse],
) -> HTMLResponse:
    """One of the page's forms: a same-origin request acting on the viewer's own session
    through the service call `act` (authorised and audited there, as for the API). A refusal
    is shown, translated, in the form's `part` of the page; what it did, by `show`."""
    same_origin(request)
    identity, principal = _session(request, viewer)
    try:
        done = act(identity, principal)
    except ZhijinError as exc:
        return _part(
            request,
            "identity/_security_error.html",
            part=part,
            error=problem_text(i18n.request_locale(request), exc),
        )
    return show(identity, principal, done)


def _tokens(identity: IdentityService, principal: Principal) -> list[dict[str, object]]:
    now = identity.clock()
    rows = identity.list_api_tokens(principal=principal, limit=TOKENS_SHOWN_MAX)
    return [
        {"id": r.id, "name": r.name, "created_ms": r.created_ms, "expires_ms": r.expires_ms}
        for r in rows
        if r.live(now)
    ]


def _tokens_part(
    request: Request, identity: IdentityService, principal: Principal, *, new_token: str | None
) -> HTMLResponse:
    tokens = _tokens(identity, principal)
    return _part(request, "identity/_tokens.html", tokens=tokens, new_token=new_token)


def _sessions(identity: IdentityService, principal: Principal) -> list[dict[str, object]]:
    return [
        {
            "id": row.id,
            "created_ms": row.created_ms,
            "last_seen_ms": row.last_seen_ms,
            "current": row.id == principal.session_id,
        }
        for row in identity.list_sessions(principal=principal)
    ]


def _recovery_codes_part(
    request: Request, codes: Sequence[str], *, regenerated: bool
) -> HTMLResponse:
    """Recovery codes, shown once, with their download (a data: link, so they are never
    fetched again from the server)."""
    return _part(
        request,
        "identity/_recovery_codes.html",
        codes=codes,
        download="data:text/plain;charset=utf-8," + "%0A".join(codes),
        regenerated=regenerated,
    )


@router.get("/security", response_class=HTMLResponse)
def security(request: Request, viewer: Viewer) -> HTMLResponse:
    identity, principal = _session(request, viewer)
    return _part(
        request,
        "identity/security.html",
        tokens=_tokens(identity, principal),
        sessions=_sessions(identity, principal),
        end_user=principal.member_did is None,
    )


@router.post("/security/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    viewer: Viewer,
    current: Annotated[str, Form(max_length=limits.PASSWORD_CHARS_MAX * 4)] = "",
    new: Annotated[str, Form(max_length=limits.PASSWORD_CHARS_MAX * 4)] = "",
    again: Annotated[str, Form(max_length=limits.PASSWORD_CHARS_MAX * 4)] = "",
) -> HTMLResponse:
    same_origin(request)
    identity, principal = _session(request, viewer)
    locale = i18n.request_locale(request)
    error: str | None = None
    count: int | None = None
    if not current or not new:
        error = web_text(locale, "security.password_missing")
    elif new != again:
        error = web_text(locale, "security.password_mismatch")
    if error is None:
        try:
            count = identity.change_password(
                principal=principal, current_password=current, new_password=new
            )
        except ZhijinError as exc:
            error = problem_text(locale, exc)
    return _part(request, "identity/_password.html", error=error, count=count)


@router.post("/security/sessions/{session_id}/revoke", response_class=HTMLResponse)
def session_revoke(
    request: Request, viewer: Viewer, session_id: Annotated[str, Path(max_length=64)]
) -> HTMLResponse:
    return _act(
        request,
        viewer,
        part="sessions",
        act=lambda identity, principal: identity.revoke_session(
            principal=principal, session_id=session_id
        ),
        show=lambda identity, principal, _: _part(
            request,
            "identity/_sessions.html",
            sessions=_sessions(identity, principal),
            signed_out=True,
        ),
    )


@router.post("/security/recovery-codes", response_class=HTMLResponse)
def recovery_codes(request: Request, viewer: Viewer) -> HTMLResponse:
    """New recovery codes (the old ones stop working), shown once with a download."""
    return _act(
        request,
        viewer,
        part="recovery",
        act=lambda identity, principal: identity.regenerate_recovery_codes(principal=principal),
        show=lambda _identity, _principal, codes: _recovery_codes_part(
            request, codes, regenerated=True
        ),
    )


@router.post("/security/totp/begin", response_class=HTMLResponse)
def totp_begin(request: Request, viewer: Viewer) -> HTMLResponse:
    def show(
        _identity: IdentityService, _principal: Principal, enrolment: Enrolment
    ) -> HTMLResponse:
        secret = parse_qs(urlsplit(enrolment.uri).query).get("secret", [""])[0]
        return _part(
            request,
            "identity/_totp_enrol.html",
            qr=enrolment.qr_svg_data_uri,
            secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            error=None,
        )

    return _act(
        request,
        viewer,
        part="totp",
        act=lambda identity, principal: identity.begin_totp_enrolment(principal=principal),
        show=show,
    )


@router.post("/security/totp/confirm", response_class=HTMLResponse)
def totp_confirm(request: Request, viewer: Viewer, code: Code) -> HTMLResponse:
    return _act(
        request,
        viewer,
        part="totp",
        act=lambda identity, principal: identity.confirm_totp_enrolment(
            principal=principal, code=code.strip()
        ),
        show=lambda _identity, _principal, codes: _recovery_codes_part(
            request, codes, regenerated=False
        ),
    )


@router.post("/security/keys", response_class=HTMLResponse)
def keys_step_up(request: Request, viewer: Viewer, code: Code) -> HTMLResponse:
    """A fresh code first; the keys themselves come as a file (`/security/keys.json`), never
    written into the page."""
    return _act(
        request,
        viewer,
        part="keys",
        act=lambda identity, principal: identity.step_up(
            principal=principal, totp_code=code.strip()
        ),
        show=lambda _identity, _principal, _: _part(request, "identity/_keys_ready.html"),
    )


@router.get("/security/keys.json")
def keys_file(request: Request, viewer: Viewer) -> Response:
    identity, principal = _session(request, viewer)
    exported = identity.export_user_keys(principal=principal)  # fresh code checked, audited
    return Response(
        json.dumps(exported, indent=2),
        media_type="application/json",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="zhijin-keys.json"',
        },
    )


@router.post("/security/tokens", response_class=HTMLResponse)
def token_create(
    request: Request,
    viewer: Viewer,
    name: Annotated[str, Form(min_length=1, max_length=limits.API_TOKEN_NAME_CHARS_MAX)],
) -> HTMLResponse:
    return _act(
        request,
        viewer,
        part="tokens",
        act=lambda identity, principal: identity.create_api_token(
            principal=principal, name=name.strip()
        ),
        show=lambda identity, principal, issued: _tokens_part(
            request, identity, principal, new_token=issued.token
        ),
    )


@router.post("/security/tokens/{token_id}/revoke", response_class=HTMLResponse)
def token_revoke(
    request: Request, viewer: Viewer, token_id: Annotated[str, Path(max_length=64)]
) -> HTMLResponse:
    return _act(
        request,
        viewer,
        part="tokens",
        act=lambda identity, principal: identity.revoke_api_token(
            principal=principal, token_id=token_id
        ),
        show=lambda identity, principal, _: _tokens_part(
            request, identity, principal, new_token=None
        ),
    )


@router.post("/security/sessions/revoke-others", response_class=HTMLResponse)
def revoke_others(request: Request, viewer: Viewer) -> HTMLResponse:
    same_origin(request)
    identity, principal = _session(request, viewer)
    count = identity.revoke_other_sessions(principal=principal)
    return _part(request, "identity/_revoked.html", count=count)

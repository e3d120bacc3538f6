"""The step-up prompt and an authenticator set up in place, for any form that moves money
(`/pay` and `/fx`): the prompt said from the policy's structured causes, a fresh code checked
before the payment is sent again, and, for a user with no authenticator, its enrolment without
leaving the form (the password first if the session is old, then the QR code and the secret as
text, then the first code, which switches it on, counts as the fresh second factor and shows
the recovery codes once) after which the payment goes on.

A flow is named by its `base` path: the prompt posts back to `base` (with `code`), the
enrolment to `base + "/enrol"` and `base + "/enrol/confirm"`; the form's fields travel as
hidden inputs, so each flow keeps its own fields and its own way to pay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from zhijin.chain.errors import ZhijinError
from zhijin.identity.errors import ReauthenticationRequired, StepUpRequired
from zhijin.identity.rbac import Principal
from zhijin.payments.web.common import caller_of, step_up_reasons
from zhijin.platform import i18n
from zhijin.platform.shell import problem_text, render

__all__ = [
    "check_code",
    "confirm_enrolment",
    "prompt",
    "review_or_pay",
    "start_enrolment",
    "trimmed",
]

SECRET_GROUP_CHARS = 4  # the secret as text, in groups a person can copy by eye


def trimmed(**fields: str) -> dict[str, str]:
    """A form's fields as the hidden inputs carry them on: stripped."""
    return {name: value.strip() for name, value in fields.items()}


def prompt(
    request: Request,
    form: Mapping[str, str],
    *,
    base: str,
    title: str,
    amount_shown: str,
    exc: StepUpRequired | None = None,
    reasons: list[str] | None = None,
) -> HTMLResponse:
    """The step-up prompt: why (one sentence per cause), then a code field, or for a user
    without an authenticator the button that sets one up here."""
    enrol = exc is not None and (
        exc.code == "mfa_enrolment_required" or exc.details.get("has_authenticator") is False
    )
    if reasons is None:
        assert exc is not None
        reasons = step_up_reasons(i18n.request_locale(request), exc)
    return render(
        request,
        "payments/_stepup.html",
        title=title,
        base=base,
        form=dict(form),
        amount_shown=amount_shown,
        enrol=enrol,
        reasons=reasons,
    )


def check_code(
    request: Request,
    code: str,
    *,
    form: Mapping[str, str],
    base: str,
    title: str,
    amount_shown: str,
) -> HTMLResponse | None:
    """A step-up code sent with the form: None when it was right (the payment goes on),
    otherwise the prompt again, saying why."""
    guard, caller = caller_of(request)
    try:
        assert caller.principal is not None
        guard.identity.step_up(principal=caller.principal, totp_code=code.strip())
    except StepUpRequired as exc:
        return prompt(request, form, base=base, title=title, amount_shown=amount_shown, exc=exc)
    except ZhijinError as exc:  # a wrong code: the prompt again, saying so
        message = problem_text(i18n.request_locale(request), exc)
        return prompt(
            request, form, base=base, title=title, amount_shown=amount_shown, reasons=[message]
        )
    return None


def review_or_pay(
    request: Request,
    form: Mapping[str, str],
    *,
    confirmed: bool,
    code: str,
    base: str,
    title: str,
    review: Callable[[], HTMLResponse],
    refused: Callable[[Exception], HTMLResponse],
    pay: Callable[[], HTMLResponse],
) -> HTMLResponse:
    """One send of a money form: before `confirmed`, the review (a refusal said in the form);
    then the step-up code if one came with it, then `pay()` (which prompts again if needed)."""
    if not confirmed:
        try:
            return review()
        except (ZhijinError, ValidationError) as exc:
            return refused(exc)
    if code.strip():
        again = check_code(
            request, code, form=form, base=base, title=title, amount_shown=form["amount"]
        )
        if again is not None:
            return again
    return pay()


def _principal(request: Request) -> tuple[Any, Principal]:
    guard, caller = caller_of(request)
    assert isinstance(caller.principal, Principal)  # a page viewer is signed in
    return guard.identity, caller.principal


def _enrol_part(
    request: Request,
    form: Mapping[str, str],
    *,
    base: str,
    title: str,
    need_password: bool = False,
    qr: str | None = None,
    secret: str = "",
    error: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "payments/_pay_enrol.html",
        title=title,
        base=base,
        form=dict(form),
        need_password=need_password,
        qr=qr,
        secret=secret,
        error=error,
    )


def start_enrolment(
    request: Request, form: Mapping[str, str], *, base: str, title: str, password: str
) -> HTMLResponse:
    """The QR code and the secret as text; a session older than identity's
    re-authentication window asks for the password first, on the same form."""
    identity, principal = _principal(request)
    try:
        if password:
            principal = identity.reauthenticate(principal=principal, password=password)
        enrolment = identity.begin_totp_enrolment(principal=principal)
    except ReauthenticationRequired:
        return _enrol_part(request, form, base=base, title=title, need_password=True)
    except ZhijinError as exc:
        error = problem_text(i18n.request_locale(request), exc)
        return _enrol_part(
            request, form, base=base, title=title, need_password=bool(password), error=error
        )
    secret = parse_qs(urlsplit(enrolment.uri).query).get("secret", [""])[0]
    grouped = " ".join(
        secret[i : i + SECRET_GROUP_CHARS] for i in range(0, len(secret), SECRET_GROUP_CHARS)
    )
    return _enrol_part(
        request, form, base=base, title=title, qr=enrolment.qr_svg_data_uri, secret=grouped
    )


def confirm_enrolment(
    request: Request, code: str, *, title: str, pay: Callable[[], HTMLResponse]
) -> HTMLResponse:
    """The first code switches the authenticator on and is the fresh second factor the
    payment needed: `pay()` runs, and the recovery codes are shown (once, out of band into
    `#pay-recovery`); a wrong code is said beside the field, the QR code staying where it is
    (`HX-Retarget`)."""
    identity, principal = _principal(request)
    try:
        codes = identity.confirm_totp_enrolment(principal=principal, code=code.strip())
    except ZhijinError as exc:
        return render(
            request,
            "payments/_enrol_error.html",
            title=title,
            error=problem_text(i18n.request_locale(request), exc),
            headers={"HX-Retarget": "#enrol-error", "HX-Reswap": "innerHTML"},
        )
    outcome = pay()
    recovery = render(request, "payments/_pay_recovery.html", title=title, codes=codes)
    return HTMLResponse(
        bytes(outcome.body) + bytes(recovery.body),
        status_code=outcome.status_code,
        headers={"Cache-Control": "no-store"},
    )

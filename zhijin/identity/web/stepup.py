"""The step-up prompt and an authenticator set up in place, for any form that moves money
(payments' `/pay` and `/fx`, lending's early repayment on `/loans/<id>`): the prompt said from
the policy's structured causes, a fresh code checked before the request is sent again, and, for
a user with no authenticator, its enrolment without leaving the form (the password first if the
session is old, then the QR code and the secret as text, then the first code, which switches it
on, counts as the fresh second factor and shows the recovery codes once) after which the
request goes on.

It lives in identity because step-up is identity's (the policy, the second factor, the
enrolment) and every domain whose customers move money may import identity (the layers in
pyproject.toml: lending > payments > identity), whereas lending may not reach into payments'
pages.  A domain brings only its words (`Look`: what the prompt calls the action) and its own
way to send the request.

A flow is named by its `base` path: the prompt posts back to `base` (with `code`), the
enrolment to `base + "/enrol"` and `base + "/enrol/confirm"`; the form's fields travel as
hidden inputs, so each flow keeps its own fields and its own way to pay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from zhijin.chain.errors import ZhijinError
from zhijin.identity.errors import ReauthenticationRequired, StepUpRequired
from zhijin.identity.guard import Caller, Guard, get_guard
from zhijin.identity.rbac import Principal
from zhijin.platform import i18n
from zhijin.platform.shell import problem_text, render, web_msgid, web_text

__all__ = [
    "PAYMENT",
    "Look",
    "caller_of",
    "check_code",
    "confirm_enrolment",
    "prompt",
    "review_or_pay",
    "start_enrolment",
    "step_up_reasons",
    "trimmed",
]

SECRET_GROUP_CHARS = 4  # the secret as text, in groups a person can copy by eye


@dataclass(frozen=True, slots=True)
class Look:
    """What a flow's prompt and enrolment say and where they sit on its page: the "web" msgids
    of its sentences (each may use `{amount}`, the prompt's also `{payee}`), the id of the
    element the prompt replaces and of the one the recovery codes fill (out of band)."""

    why: str  # above the reasons
    text: str  # above the code field ({amount}, {payee})
    enrol_here: str  # for a user without an authenticator ({amount})
    confirm: str  # the prompt's button
    enrol_then: str  # after the QR code: what the first code does
    enrol_confirm: str  # the enrolment's button
    form_id: str = "pay-form"
    recovery_id: str = "pay-recovery"


PAYMENT = Look(
    why=web_msgid("pay.stepup_why"),
    text=web_msgid("pay.stepup_text"),
    enrol_here=web_msgid("pay.stepup_enrol_here"),
    confirm=web_msgid("pay.stepup_confirm"),
    enrol_then=web_msgid("pay.enrol_then"),
    enrol_confirm=web_msgid("pay.enrol_confirm"),
)


def caller_of(request: Request) -> tuple[Guard, Caller]:
    """The node's request guard and who is calling (as the API routes resolve them)."""
    guard = get_guard(request)
    return guard, guard.caller(request)


# The step-up policy's rules a page can state in words, with the threshold as money.  A rule
# this list does not know is said with the policy's own sentence in the viewer's language.
_CAUSES = {
    "new_payee": web_msgid("stepup.cause.new_payee"),
    "large_transfer": web_msgid("stepup.cause.large_transfer"),
    "night_transfer": web_msgid("stepup.cause.night_transfer"),
}


def _cause_text(locale: str, cause: dict[str, Any]) -> str | None:
    msgid = _CAUSES.get(str(cause.get("code")))
    params = cause.get("params") or {}
    threshold, currency = params.get("threshold_minor"), params.get("currency")
    if msgid is None or type(threshold) is not int or not isinstance(currency, str):
        return None
    try:
        amount = i18n.format_money(threshold, currency, locale)
    except ValueError:
        return None
    return web_text(locale, msgid, amount=amount)


def step_up_reasons(locale: str, exc: ZhijinError) -> list[str]:
    """Why the policy asks for a fresh code, one sentence per rule that matched: from the
    structured causes ("新收款人且超过 ¥1,000.00"), else the policy's sentence, else the
    problem's text."""
    causes: Sequence[Any] = exc.details.get("reason_codes") or ()
    by_locale = exc.details.get("reasons_by_locale") or {}
    sentences: Sequence[str] = by_locale.get(locale) or ()
    reasons: list[str] = []
    for index, cause in enumerate(causes):
        text = _cause_text(locale, cause) if isinstance(cause, dict) else None
        if text is None and index < len(sentences):
            text = sentences[index]
        if text:
            reasons.append(text)
    return reasons or [problem_text(locale, exc)]


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
    look: Look = PAYMENT,
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
        "identity/_stepup.html",
        title=title,
        base=base,
        form=dict(form),
        amount_shown=amount_shown,
        enrol=enrol,
        reasons=reasons,
        look=look,
    )


def check_code(
    request: Request,
    code: str,
    *,
    form: Mapping[str, str],
    base: str,
    title: str,
    amount_shown: str,
    look: Look = PAYMENT,
) -> HTMLResponse | None:
    """A step-up code sent with the form: None when it was right (the request goes on),
    otherwise the prompt again, saying why."""
    guard, caller = caller_of(request)
    again = partial(prompt, request, form, base=base, title=title, amount_shown=amount_shown)
    try:
        assert caller.principal is not None
        guard.identity.step_up(principal=caller.principal, totp_code=code.strip())
    except StepUpRequired as exc:
        return again(exc=exc, look=look)
    except ZhijinError as exc:  # a wrong code: the prompt again, saying so
        message = problem_text(i18n.request_locale(request), exc)
        return again(reasons=[message], look=look)
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
    amount_shown: str | None = None,
    look: Look = PAYMENT,
) -> HTMLResponse:
    """One send of a money form: before `confirmed`, the review (a refusal said in the form);
    then the step-up code if one came with it, then `pay()` (which prompts again if needed).
    `amount_shown`: the amount the prompt says (default: the form's `amount` as typed)."""
    if not confirmed:
        try:
            return review()
        except (ZhijinError, ValidationError) as exc:
            return refused(exc)
    if code.strip():
        shown = form["amount"] if amount_shown is None else amount_shown
        again = check_code(
            request, code, form=form, base=base, title=title, amount_shown=shown, look=look
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
    look: Look,
    need_password: bool = False,
    qr: str | None = None,
    secret: str = "",
    error: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "identity/_stepup_enrol.html",
        title=title,
        base=base,
        form=dict(form),
        look=look,
        need_password=need_password,
        qr=qr,
        secret=secret,
        error=error,
    )


def start_enrolment(
    request: Request,
    form: Mapping[str, str],
    *,
    base: str,
    title: str,
    password: str,
    look: Look = PAYMENT,
) -> HTMLResponse:
    """The QR code and the secret as text; a session older than identity's
    re-authentication window asks for the password first, on the same form."""
    identity, principal = _principal(request)
    part = partial(_enrol_part, request, form, base=base, title=title, look=look)
    try:
        if password:
            principal = identity.reauthenticate(principal=principal, password=password)
        enrolment = identity.begin_totp_enrolment(principal=principal)
    except ReauthenticationRequired:
        return part(need_password=True)
    except ZhijinError as exc:
        error = problem_text(i18n.request_locale(request), exc)
        return part(need_password=bool(password), error=error)
    secret = parse_qs(urlsplit(enrolment.uri).query).get("secret", [""])[0]
    grouped = " ".join(
        secret[i : i + SECRET_GROUP_CHARS] for i in range(0, len(secret), SECRET_GROUP_CHARS)
    )
    return part(qr=enrolment.qr_svg_data_uri, secret=grouped)


def confirm_enrolment(
    request: Request,
    code: str,
    *,
    title: str,
    pay: Callable[[], Response],
    look: Look = PAYMENT,
) -> HTMLResponse:
    """The first code switches the authenticator on and is the fresh second factor the
    request needed: `pay()` runs (its `HX-*` headers kept), and the recovery codes are shown
    (once, out of band into `#<look.recovery_id>`); a wrong code is said beside the field, the QR code staying where
    it is (`HX-Retarget`)."""
    identity, principal = _principal(request)
    try:
        codes = identity.confirm_totp_enrolment(principal=principal, code=code.strip())
    except ZhijinError as exc:
        return render(
            request,
            "identity/_stepup_enrol_error.html",
            title=title,
            error=problem_text(i18n.request_locale(request), exc),
            headers={"HX-Retarget": "#enrol-error", "HX-Reswap": "innerHTML"},
        )
    outcome = pay()
    recovery = render(
        request, "identity/_stepup_recovery.html", title=title, codes=codes, look=look
    )
    # The outcome's htmx instructions (an `HX-Push-Url`, say) go along; its other headers
    # (the length above all) are of its body alone.
    headers = {k: v for k, v in outcome.headers.items() if k.lower().startswith("hx-")}
    return HTMLResponse(
        bytes(outcome.body) + bytes(recovery.body),
        status_code=outcome.status_code,
        headers={**headers, "Cache-Control": "no-store"},
    )

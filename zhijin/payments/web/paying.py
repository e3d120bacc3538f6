"""Pay, safely: the payee named by account id, IBAN or mobile number and shown by their masked
name before anything is sent, a confirmation step, recent payees to pick from, a payment link
(or a scanned collection QR, which is the same link) opening a pay form filled in with what the
payee asked for, the step-up prompt said from its structured causes and, for a user with no
authenticator yet, its enrolment in place after which the payment goes on.

    GET  /pay?to=<account>          the form (recent payees link here with `to`)
    POST /pay/payee                 htmx: the payee's masked name as the field is left
    POST /pay                       review (payee named, amount said as money), then with
                                    confirmed=1 pay; with code, the step-up code first
    POST /pay/enrol                 step-up for a user without an authenticator: its QR code
                                    and secret as text (the password first if the session is old)
    POST /pay/enrol/confirm         the first code switches it on (a fresh second factor), the
                                    recovery codes are shown once, and the payment is made
    GET  /pay/<token>               a payment link: the request's payee, amount and memo

Every lookup and payment goes through the API's own functions (`people.confirm_payee`,
`api.submit_transfer`, `api_people.pay_payment_link`), so the rate limit, the audit, RBAC, the
step-up policy and the contract's checks are exactly those of the API.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.identity.errors import StepUpRequired
from zhijin.identity.web import stepup
from zhijin.payments import api_people, collect, limits, people
from zhijin.payments import people_schemas as schemas
from zhijin.payments.api import TransferIn, submit_transfer
from zhijin.payments.expected import PaymentsHost, PaymentsHostDep
from zhijin.payments.module import PAY
from zhijin.payments.web.common import (
    AmountField,
    CodeField,
    ConfirmedField,
    IdField,
    PasswordField,
    PayeeField,
    ReferenceField,
    caller_of,
    my_accounts,
    parse_amount,
)
from zhijin.platform import i18n
from zhijin.platform.deps import GatewayDep
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    page_access,
    problem_text,
    render,
    same_origin,
    web_text,
)

__all__ = ["payee_ways", "router"]

RECENT_PAYEES = 8
router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(PAY)]
TokenField = Annotated[str, Form(max_length=64)]
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_MOBILE_SHAPE = re.compile(r"^(\+?86)?1[3-9][0-9]{9}$")


def payee_ways(text: str) -> dict[str, str]:
    """How a person named the payee in the one field: a mainland mobile number (spaces and
    dashes allowed), an IBAN (spaces allowed, any case), else an account id.  An account id
    never has the shape of either (ids are the client's, but 11 digits starting 13-19 or a
    country code with check digits would be a strange one to choose)."""
    text = text.strip()
    squeezed = re.sub(r"[\s-]", "", text)
    if _MOBILE_SHAPE.match(squeezed):
        return {"mobile": squeezed}
    if _IBAN_SHAPE.match(squeezed.upper()):
        return {"iban": text}
    return {"account_id": text}


def _open_accounts(platform: PaymentsHost, viewer: ShellViewer) -> list[dict[str, Any]]:
    return [a for a in my_accounts(platform, viewer) if a["status"] == "open"]


def _recent(request: Request, platform: PaymentsHost) -> list[dict[str, Any]]:
    guard, caller = caller_of(request)
    if caller.sender is None:
        return []
    page = api_people.recent_payees(platform, caller, guard, limit=RECENT_PAYEES)
    return [p for p in page["payees"] if p["status"] == "open"]


def _form(
    accounts: Sequence[dict[str, Any]],
    *,
    credit: str = "",
    amount: str = "",
    reference: str = "",
    token: str = "",
) -> dict[str, str]:
    return {
        "id": "web-" + secrets.token_hex(12),
        "debit": accounts[0]["id"] if accounts else "",
        "credit": credit,
        "amount": amount,
        "reference": reference,
        "token": token,
    }


def _link_view(platform: PaymentsHost, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payment request behind a link: (its row, what a signed-in payer sees of it)."""
    row = collect.request_by_token(platform, token=token)
    return row, collect.view_for_payer(platform, row, signed_in=True)


def _render_form(
    request: Request,
    platform: PaymentsHost,
    viewer: ShellViewer,
    form: dict[str, str],
    *,
    error: str | None = None,
    template: str = "payments/_pay_form.html",
) -> HTMLResponse:
    link = _link_view(platform, form["token"])[1] if form["token"] else None
    return render(
        request,
        template,
        title=PAY.label,
        limits=limits,
        accounts=_open_accounts(platform, viewer),
        recent=_recent(request, platform) if template == "payments/pay.html" else [],
        form=form,
        link=link,
        error=error,
    )


@router.get("/pay", response_class=HTMLResponse)
def pay_page(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    to: Annotated[str, Query(max_length=limits.ID_CHARS_MAX)] = "",
) -> HTMLResponse:
    form = _form(_open_accounts(platform, viewer), credit=to.strip())
    return _render_form(request, platform, viewer, form, template="payments/pay.html")


@router.get("/pay/{token}", response_class=HTMLResponse)
def pay_link_page(
    request: Request,
    token: Annotated[str, Path(pattern=limits.PAYMENT_REQUEST_TOKEN_PATTERN)],
    viewer: Viewer,
    platform: PaymentsHostDep,
) -> HTMLResponse:
    """A payment link or a scanned collection QR: the form filled in with the request's payee
    and amount (a fixed amount cannot be changed); a paid, expired or cancelled one says so."""
    row, view = _link_view(platform, token)
    amount = "" if view["amount"] is None else view["amount"]
    form = _form(_open_accounts(platform, viewer), credit=row["account_id"], amount=amount)
    form["token"] = token
    return _render_form(request, platform, viewer, form, template="payments/pay.html")


@router.post("/pay/payee", response_class=HTMLResponse)
def check_payee(
    request: Request, viewer: Viewer, platform: PaymentsHostDep, credit: PayeeField
) -> HTMLResponse:
    """The masked name behind what the payer typed, shown beside the field (htmx)."""
    same_origin(request)
    locale = i18n.request_locale(request)
    payee, error = None, None
    if credit.strip():
        try:
            payee = _confirm(request, platform, credit)
        except ZhijinError as exc:
            error = problem_text(locale, exc)
    return render(request, "payments/_payee.html", title=PAY.label, payee=payee, error=error)


def _confirm(request: Request, platform: PaymentsHost, credit: str) -> dict[str, Any]:
    """Confirmation of payee for the viewer (their lookup budget, audited)."""
    _, caller = caller_of(request)
    return people.confirm_payee(platform, requester=caller.actor, **payee_ways(credit))


class _Attempt:
    """One send of the pay form: what was typed, the account paid from, the amount in minor
    units once it parsed (for the prompts to say it as money)."""

    def __init__(self, request: Request, platform: PaymentsHost, viewer: ShellViewer) -> None:
        self.request = request
        self.platform = platform
        self.viewer = viewer
        self.locale = i18n.request_locale(request)
        self.accounts = _open_accounts(platform, viewer)
        self.account: dict[str, Any] | None = None
        self.minor = 0

    def debit_account(self, form: dict[str, str]) -> dict[str, Any]:
        account = next((a for a in self.accounts if a["id"] == form["debit"]), None)
        if account is None:
            raise NotFound("account_not_found", "choose one of your accounts to pay from")
        self.account = account
        return account

    def amount_shown(self, form: dict[str, str]) -> str:
        if self.account is None or self.minor == 0:
            return form["amount"]
        return i18n.format_money(self.minor, self.account["currency"], self.locale)


def _link_amount(row: dict[str, Any], form: dict[str, str], attempt: _Attempt) -> int:
    """The amount of a link payment: the request's own when it fixed one."""
    if row["amount_minor"] is not None:
        form["amount"] = ""  # a fixed amount comes from the request, never from the form
        return int(row["amount_minor"])
    assert attempt.account is not None
    return parse_amount(form["amount"], int(attempt.account["exponent"]))


def _review(attempt: _Attempt, form: dict[str, str]) -> HTMLResponse:
    """The confirmation step: who will be paid (masked name), how much, from where."""
    account = attempt.debit_account(form)
    row = None
    if form["token"]:
        row, _ = _link_view(attempt.platform, form["token"])
        collect.check_payable(attempt.platform, row)
        attempt.minor = _link_amount(row, form, attempt)
        form["credit"] = row["account_id"]
    else:
        attempt.minor = parse_amount(form["amount"], int(account["exponent"]))
    payee = _confirm(attempt.request, attempt.platform, form["credit"])
    form["credit"] = payee["account_id"]  # an IBAN or a number pays the account it names
    return render(
        attempt.request,
        "payments/_pay_confirm.html",
        title=PAY.label,
        form=form,
        payee=payee,
        account=account,
        amount_shown=attempt.amount_shown(form),
        memo=None if row is None else row["memo"],
    )


def _send(attempt: _Attempt, form: dict[str, str], gateway: Any) -> dict[str, Any]:
    """Pay what the payer confirmed: a link through its own route, anything else as a transfer."""
    guard, caller = caller_of(attempt.request)
    account = attempt.debit_account(form)
    if form["token"]:
        row, _ = _link_view(attempt.platform, form["token"])
        attempt.minor = _link_amount(row, form, attempt)
        body = schemas.PayRequestIn(
            debit_account_id=account["id"],
            amount=None if row["amount_minor"] is not None else attempt.minor,
            id=None if row["single_use"] else form["id"],
        )
        return api_people.pay_payment_link(
            form["token"], body, Response(), attempt.platform, gateway, caller, guard
        )
    attempt.minor = parse_amount(form["amount"], int(account["exponent"]))
    transfer = TransferIn(
        id=form["id"],
        debit_account_id=account["id"],
        credit_account_id=form["credit"],
        amount=attempt.minor,
        currency=account["currency"],
        reference=form["reference"] or None,
    )
    return submit_transfer(guard, caller, attempt.platform, gateway, transfer)


def _paid(attempt: _Attempt, form: dict[str, str], result: dict[str, Any]) -> HTMLResponse:
    """Paid, or (the fraud screen held it) submitted as a hold and under review: said so."""
    risk = result.get("risk") or {}
    return render(
        attempt.request,
        "payments/_paid.html",
        title=PAY.label,
        paid=attempt.minor,
        account=attempt.account,
        credit=form["credit"],
        transfer_id=result.get("id", form["id"]),
        held=risk.get("tier") == "hold",
    )


def _step_up(attempt: _Attempt, form: dict[str, str], exc: StepUpRequired) -> HTMLResponse:
    return stepup.prompt(
        attempt.request,
        form,
        base=PAY.path,
        title=PAY.label,
        amount_shown=attempt.amount_shown(form),
        exc=exc,
    )


def _refused(attempt: _Attempt, form: dict[str, str], exc: Exception) -> HTMLResponse:
    message = (
        problem_text(attempt.locale, exc)
        if isinstance(exc, ZhijinError)
        else web_text(attempt.locale, "pay.invalid_fields")
    )
    form.pop("confirmed", None)
    return _render_form(attempt.request, attempt.platform, attempt.viewer, form, error=message)


def _pay_or_prompt(attempt: _Attempt, form: dict[str, str], gateway: Any) -> HTMLResponse:
    try:
        result = _send(attempt, form, gateway)
    except StepUpRequired as exc:
        return _step_up(attempt, form, exc)
    except (ZhijinError, ValidationError) as exc:
        return _refused(attempt, form, exc)
    return _paid(attempt, form, result)


def _pay_form(
    id: IdField,
    debit: IdField,
    credit: PayeeField = "",
    amount: AmountField = "",
    reference: ReferenceField = "",
    token: TokenField = "",
) -> dict[str, str]:
    """The pay form's fields, as the form, the step-up prompt and the enrolment carry them."""
    return stepup.trimmed(
        id=id, debit=debit, credit=credit, amount=amount, reference=reference, token=token
    )


PayForm = Annotated[dict[str, str], Depends(_pay_form)]


@router.post("/pay", response_class=HTMLResponse)
def pay(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    form: PayForm,
    confirmed: ConfirmedField = "",
    code: CodeField = "",
) -> Response:
    """The pay form: first the review (the payee's masked name, the amount as money); the
    review's confirm button sends `confirmed=1`, which pays; the step-up prompt adds `code`."""
    same_origin(request)
    attempt = _Attempt(request, platform, viewer)
    return stepup.review_or_pay(
        request,
        form,
        confirmed=confirmed == "1",
        code=code,
        base=PAY.path,
        title=PAY.label,
        review=lambda: _review(attempt, form),
        refused=lambda exc: _refused(attempt, form, exc),
        pay=lambda: _pay_or_prompt(attempt, form, gateway),
    )


# -- an authenticator, set up in place (stepup.py) ---------------------------------------------


@router.post("/pay/enrol", response_class=HTMLResponse)
def enrol(
    request: Request,
    viewer: Viewer,
    form: PayForm,
    password: PasswordField = "",
) -> HTMLResponse:
    """Start setting up an authenticator without leaving the payment."""
    same_origin(request)
    return stepup.start_enrolment(request, form, base=PAY.path, title=PAY.label, password=password)


@router.post("/pay/enrol/confirm", response_class=HTMLResponse)
def enrol_confirm(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    form: PayForm,
    code: CodeField,
) -> HTMLResponse:
    """The authenticator's first code switches it on, and the payment is made."""
    same_origin(request)
    return stepup.confirm_enrolment(
        request,
        code,
        title=PAY.label,
        pay=lambda: _pay_or_prompt(_Attempt(request, platform, viewer), form, gateway),
    )

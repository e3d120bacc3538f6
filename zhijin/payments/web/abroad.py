"""Pay abroad (跨境汇款): a payment into an account in another currency under a member's firm FX
quote, with the quote shown before anything is sent.

    GET  /fx                   the form: the account paid from, the currency the payee gets,
                               the amount in either currency, the payee
    GET  /fx/quotes            htmx: the live quotes of the pair (rate, spread, expiry, capacity
                               left), fetched again every 30 s so the time left stays true
    POST /fx                   review: the payee's masked name (confirmation of payee), the best
                               live quote for the amount, what leaves the account, the spread
                               (the fee), what the payee receives and the rounding that decides
                               it; with confirmed=1 pay under that quote; with code, the
                               step-up code first
    POST /fx/enrol[/confirm]   an authenticator set up in place (stepup.py), then the payment
    GET  /fx/payments/{id}     the payment's status: its three legs as the ledger booked them

The figures come from `api_people.fx_quotes_for` (the contract's own arithmetic, fx_offers.py)
and the payment goes through `api.pay_fx`, the route function of `POST /api/v1/fx/payments`,
so RBAC, the step-up policy (a payment sized by what the payee gets is always stepped up: its
source amount is not known to the policy beforehand) and the contract judge it exactly as the
API does.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.identity.errors import StepUpRequired
from zhijin.identity.web import stepup
from zhijin.payments import api, api_people, currency, fx_offers, limits, people
from zhijin.payments.api import FxPaymentIn
from zhijin.payments.expected import PaymentsHost, PaymentsHostDep
from zhijin.payments.module import FX
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.payments.requests import SOURCE_SIDE, TARGET_SIDE
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
from zhijin.payments.web.paying import payee_ways
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

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)
Viewer = Annotated[ShellViewer, page_access(FX)]
CurrencyField = Annotated[str, Form(max_length=3)]
SideField = Annotated[str, Form(max_length=6)]
QUOTES_REFRESH_S = 30


def _open_accounts(platform: PaymentsHost, viewer: ShellViewer) -> list[dict[str, Any]]:
    return [a for a in my_accounts(platform, viewer) if a["status"] == "open"]


def _targets(platform: PaymentsHost, account: dict[str, Any] | None) -> list[str]:
    if account is None:
        return []
    return fx_offers.quote_pairs(platform, source_currency=account["currency"])


def _fx_form(
    id: IdField,
    debit: IdField,
    target: CurrencyField = "",
    side: SideField = SOURCE_SIDE,
    amount: AmountField = "",
    credit: PayeeField = "",
    reference: ReferenceField = "",
    quote: IdField = "",
) -> dict[str, str]:
    """The pay-abroad form's fields, as the form, the review, the step-up prompt and the
    enrolment carry them."""
    return stepup.trimmed(
        id=id,
        debit=debit,
        target=target.upper(),
        side=side,
        amount=amount,
        credit=credit,
        reference=reference,
        quote=quote,
    )


FxForm = Annotated[dict[str, str], Depends(_fx_form)]


class _Attempt:
    """One send of the form: the account paid from, the side and amount in minor units."""

    def __init__(self, request: Request, platform: PaymentsHost, viewer: ShellViewer) -> None:
        self.request = request
        self.platform = platform
        self.viewer = viewer
        self.locale = i18n.request_locale(request)
        self.accounts = _open_accounts(platform, viewer)
        self.account: dict[str, Any] | None = None
        self.minor = 0

    def parse(self, form: dict[str, str]) -> tuple[dict[str, Any], int]:
        """The account paid from (the viewer's own), and the amount in the side's minor units."""
        account = next((a for a in self.accounts if a["id"] == form["debit"]), None)
        if account is None:
            raise NotFound("account_not_found", "choose one of your accounts to pay from")
        self.account = account
        target = form["target"]
        if not currency.is_valid(target) or target == account["currency"]:
            raise refused(PeopleCode.FX_CURRENCY_PAIR_INVALID)
        if form["side"] not in fx_offers.SIDES:
            form["side"] = SOURCE_SIDE
        exponent = (
            int(account["exponent"]) if form["side"] == SOURCE_SIDE else currency.exponent(target)
        )
        self.minor = parse_amount(form["amount"], exponent)
        return account, self.minor

    def amount_shown(self, form: dict[str, str]) -> str:
        if self.account is None or self.minor == 0:
            return form["amount"]
        code = self.account["currency"] if form["side"] == SOURCE_SIDE else form["target"]
        return i18n.format_money(self.minor, code, self.locale)

    def quotes(self, form: dict[str, str]) -> dict[str, Any]:
        assert self.account is not None
        guard, caller = caller_of(self.request)
        sized = {f"{form['side']}_amount": self.minor}
        return api_people.fx_quotes_for(
            self.platform,
            caller,
            guard,
            source_currency=self.account["currency"],
            target_currency=form["target"],
            **sized,
        )


def _render_form(
    attempt: _Attempt, form: dict[str, str], *, error: str | None = None, page: bool = False
) -> HTMLResponse:
    account = next((a for a in attempt.accounts if a["id"] == form["debit"]), None)
    if account is None and attempt.accounts:
        account = attempt.accounts[0]
    return render(
        attempt.request,
        "payments/fx.html" if page else "payments/_fx_form.html",
        title=FX.label,
        limits=limits,
        accounts=attempt.accounts,
        targets=_targets(attempt.platform, account),
        form=form,
        error=error,
        refresh_s=QUOTES_REFRESH_S,
    )


@router.get("/fx", response_class=HTMLResponse)
def fx_page(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    debit: Annotated[str, Query(max_length=limits.ID_CHARS_MAX)] = "",
    target: Annotated[str, Query(max_length=3)] = "",
) -> HTMLResponse:
    attempt = _Attempt(request, platform, viewer)
    chosen = debit or (attempt.accounts[0]["id"] if attempt.accounts else "")
    form = _fx_form(id="fx-" + secrets.token_hex(12), debit=chosen, target=target)
    if not form["target"]:
        targets = _targets(platform, next((a for a in attempt.accounts if a["id"] == chosen), None))
        form["target"] = targets[0] if targets else ""
    return _render_form(attempt, form, page=True)


@router.get("/fx/quotes", response_class=HTMLResponse)
def fx_quotes_part(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    debit: Annotated[str, Query(max_length=limits.ID_CHARS_MAX)] = "",
    target: Annotated[str, Query(max_length=3)] = "",
) -> HTMLResponse:
    """The live quotes of the pair the form names (htmx; polled while the page is open)."""
    attempt = _Attempt(request, platform, viewer)
    account = next((a for a in attempt.accounts if a["id"] == debit), None)
    listing = None
    target = target.upper()
    if account is not None and currency.is_valid(target) and target != account["currency"]:
        guard, caller = caller_of(request)
        listing = api_people.fx_quotes_for(
            platform,
            caller,
            guard,
            source_currency=account["currency"],
            target_currency=target,
        )
    return render(
        request,
        "payments/_fx_quotes.html",
        title=FX.label,
        listing=listing,
        debit=debit,
        target=target,
        refresh_s=QUOTES_REFRESH_S,
    )


def _payee(attempt: _Attempt, form: dict[str, str]) -> dict[str, Any]:
    """Confirmation of payee (the viewer's lookup budget, audited), in the target currency."""
    _, caller = caller_of(attempt.request)
    payee = people.confirm_payee(
        attempt.platform, requester=caller.actor, **payee_ways(form["credit"])
    )
    if payee["currency"] != form["target"]:
        raise refused(PeopleCode.FX_PAYEE_CURRENCY_MISMATCH)
    return payee


def _review(attempt: _Attempt, form: dict[str, str]) -> HTMLResponse:
    """Who will be paid (masked name), under which quote, what leaves and what arrives."""
    account, _ = attempt.parse(form)
    listing = attempt.quotes(form)  # before the payee lookup, which spends the viewer's budget
    chosen = next((q for q in listing["quotes"] if q["id"] == listing["best_quote_id"]), None)
    if chosen is None:
        raise refused(PeopleCode.FX_QUOTE_UNAVAILABLE)
    payee = _payee(attempt, form)
    form["credit"] = payee["account_id"]  # an IBAN or a number pays the account it names
    form["quote"] = chosen["id"]
    return render(
        attempt.request,
        "payments/_fx_confirm.html",
        title=FX.label,
        form=form,
        payee=payee,
        account=account,
        quote=chosen,
        preview=chosen["preview"],
        others=[q for q in listing["quotes"] if q["id"] != chosen["id"]],
        amount_shown=attempt.amount_shown(form),
    )


def _send(attempt: _Attempt, form: dict[str, str], gateway: Any) -> dict[str, Any]:
    """Pay what the payer confirmed, under the quote the review chose."""
    account, minor = attempt.parse(form)
    guard, caller = caller_of(attempt.request)
    body = FxPaymentIn(
        id=form["id"],
        quote_id=form["quote"],
        debit_account_id=account["id"],
        credit_account_id=form["credit"],
        source_amount=minor if form["side"] == SOURCE_SIDE else None,
        target_amount=minor if form["side"] == TARGET_SIDE else None,
        reference=form["reference"] or None,
    )
    return api.pay_fx(body, Response(), attempt.platform, gateway, caller, guard)


def _refused(attempt: _Attempt, form: dict[str, str], exc: Exception) -> HTMLResponse:
    message = (
        problem_text(attempt.locale, exc)
        if isinstance(exc, ZhijinError)
        else web_text(attempt.locale, "pay.invalid_fields")
    )
    form["quote"] = ""  # a new review chooses the quote again
    return _render_form(attempt, form, error=message)


def _pay_or_prompt(attempt: _Attempt, form: dict[str, str], gateway: Any) -> HTMLResponse:
    try:
        result = _send(attempt, form, gateway)
    except StepUpRequired as exc:
        return stepup.prompt(
            attempt.request,
            form,
            base=FX.path,
            title=FX.label,
            amount_shown=attempt.amount_shown(form),
            exc=exc,
        )
    except (ZhijinError, ValidationError) as exc:
        return _refused(attempt, form, exc)
    return render(
        attempt.request,
        "payments/_fx_paid.html",
        title=FX.label,
        result=result,
        account=attempt.account,
    )


@router.post("/fx", response_class=HTMLResponse)
def pay_abroad(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    form: FxForm,
    confirmed: ConfirmedField = "",
    code: CodeField = "",
) -> Response:
    """First the review, then (`confirmed=1`) the payment; the step-up prompt adds `code`."""
    same_origin(request)
    attempt = _Attempt(request, platform, viewer)
    return stepup.review_or_pay(
        request,
        form,
        confirmed=confirmed == "1" and bool(form["quote"]),
        code=code,
        base=FX.path,
        title=FX.label,
        review=lambda: _review(attempt, form),
        refused=lambda exc: _refused(attempt, form, exc),
        pay=lambda: _pay_or_prompt(attempt, form, gateway),
    )


@router.post("/fx/enrol", response_class=HTMLResponse)
def enrol(
    request: Request,
    viewer: Viewer,
    form: FxForm,
    password: PasswordField = "",
) -> HTMLResponse:
    same_origin(request)
    return stepup.start_enrolment(request, form, base=FX.path, title=FX.label, password=password)


@router.post("/fx/enrol/confirm", response_class=HTMLResponse)
def enrol_confirm(
    request: Request,
    viewer: Viewer,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    form: FxForm,
    code: CodeField,
) -> HTMLResponse:
    same_origin(request)
    return stepup.confirm_enrolment(
        request,
        code,
        title=FX.label,
        pay=lambda: _pay_or_prompt(_Attempt(request, platform, viewer), form, gateway),
    )


@router.get("/fx/payments/{transfer_id}", response_class=HTMLResponse)
def fx_payment(
    request: Request,
    transfer_id: Annotated[str, Path(pattern=limits.ID_PATTERN)],
    viewer: Viewer,
    platform: PaymentsHostDep,
) -> HTMLResponse:
    """An FX payment's status, for whoever may read it (the rule of GET /transfers/{id})."""
    guard, caller = caller_of(request)
    record = api.get_transfer(transfer_id, platform, caller, guard)
    if record.get("fx") is None:
        raise NotFound("transfer_not_found", f"no FX payment {transfer_id}")
    return render(request, "payments/fx_payment.html", title=FX.label, record=record)

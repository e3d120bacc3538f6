"""Lending's pages.

The borrower's (customer, SME owner): `/loans`, their loans with the status in words, the
outstanding principal, the next due date and amount, and the keeper's reminders; `/loans/{id}`,
one loan with its full schedule (paid / due / overdue per instalment), its payments and their
allocation (penalty → fee → interest → principal, as the product orders it), its history, an
early repayment (full or partial, re-amortised or shortened: the new schedule is shown before
anything is sent; when the step-up policy asks, identity's prompt for a fresh code, or for a
borrower without an authenticator its enrolment in place, after which the repayment goes on, as
on the pay page: zhijin/identity/web/stepup.py) and the withdrawal of an application not yet
disbursed; `/loans/apply`, an application from a product with one of the applicant's credit
decisions, and the result explained at once.

The bank's (officer, risk analyst): `/staff/loans`, the member's loan book by status and
delinquency bucket and its loans; `/staff/loans/queue`, the review queue (approve or reject
with a reason, never one's own); `/staff/loans/products`, the products (one officer creates,
another approves: maker-checker); `/staff/loans/lpr`, the LPR table.

Every page goes through `Acting` (lending/acting.py), as the API does: it never shows or allows
more than the API would the same viewer.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any

import babel.dates
import babel.numbers
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from zhijin.chain.errors import ZhijinError
from zhijin.identity.errors import StepUpRequired
from zhijin.identity.web import stepup
from zhijin.lending import limits, service
from zhijin.lending.acting import Acting
from zhijin.lending.lifecycle import Status
from zhijin.lending.module import (
    APPLY,
    LOAN,
    LOAN_BOOK,
    LOAN_LPR,
    LOAN_PRODUCTS,
    LOAN_QUEUE,
    MY_LOANS,
)
from zhijin.lending.projection import outstanding_minor, reminders_of
from zhijin.lending.schedule import day_of
from zhijin.lending.schemas import ApplicationIn, ProductIn, RepaymentIn
from zhijin.platform import i18n
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.shell import (
    ShellViewer,
    htmx_redirect,
    page_access,
    problem_text,
    render,
    same_origin,
    web_msgid,
    web_text,
)

__all__ = ["instalment_rows", "minor_of", "router"]

router = APIRouter(include_in_schema=False, route_class=EdgeRoute)

IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
After = Annotated[str | None, Query(pattern=limits.ID_PATTERN)]
PAGE = 25
MY_LOANS_SHOWN = limits.PAGE_SIZE_DEFAULT
REMINDERS_SHOWN = 10
DECISIONS_OFFERED = 20
ACCOUNTS_OFFERED = 20
CURRENCY = "CNY"  # the application form's currency (a product's own is checked by the contract)
APPROVED_REASON = "approved in review"  # on chain: never personal data
STATUS_PATTERN = "^[a-z_]{1,24}$"
AMOUNT_CHARS_MAX = 20
ACCOUNT_ID_CHARS_MAX = 64  # limits.ACCOUNT_ID_PATTERN's length; the schema checks the pattern
ALLOCATION = ("penalty", "fee", "interest", "principal")  # Fineract's standard order
UNFINISHED = frozenset({Status.REVIEW, Status.APPROVED})
REPAYABLE = frozenset({Status.CURRENT, Status.OVERDUE})


# The step-up prompt and the enrolment in place, said of a repayment; the prompt takes the
# place of the repayment's review (`#repay`), the recovery codes fill `#repay-recovery`.
REPAYMENT = stepup.Look(
    why=web_msgid("repay.stepup_why"),
    text=web_msgid("repay.stepup_text"),
    enrol_here=web_msgid("repay.stepup_enrol_here"),
    confirm=web_msgid("repay.confirm"),
    enrol_then=web_msgid("repay.enrol_then"),
    enrol_confirm=web_msgid("repay.enrol_confirm"),
    form_id="repay",
    recovery_id="repay-recovery",
)


class AmountInvalid(ZhijinError):
    """An amount typed on a page that is not a positive sum with at most the currency's
    decimals (say ¥1,234.56 as 1234.56)."""

    code = "amount_invalid"
    http_status = 422


class ReasonMissing(ZhijinError):
    """A review without its reason (the contract needs one; the page says so first)."""

    code = "reason_required"
    http_status = 422


class FormValues(dict[str, str]):
    """A form's values as templates read them (`form.amount`): a field not filled in is ""."""

    def __missing__(self, key: str) -> str:
        return ""


# -- small pure helpers (tested alone) -------------------------------------------------------
def minor_of(text: str, currency: str) -> int:
    """A typed amount ("1,234.56", "¥1234.5") as minor units of `currency`, exactly; more
    decimals than the currency has, a sign, or anything that is not a number is refused."""
    cleaned = text.strip().replace(",", "").replace("，", "").lstrip("¥￥").strip()
    if not cleaned or len(cleaned) > AMOUNT_CHARS_MAX:
        raise AmountInvalid(message="an amount is required")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountInvalid(message=f"{text!r} is not an amount") from None
    exponent = babel.numbers.get_currency_precision(currency)
    scaled = value.scaleb(exponent)
    if not value.is_finite() or value <= 0 or scaled != scaled.to_integral_value():
        raise AmountInvalid(message=f"{text!r} is not an amount in {currency}")
    return int(scaled.quantize(Decimal(1), ROUND_HALF_EVEN))


def _day_formatter(locale: str) -> Callable[[int | str | None], str]:
    """A block time (or an ISO day the chain wrote) as its Beijing calendar day, written as
    the locale writes dates: 2026年12月20日, Dec 20, 2026."""

    def day(moment: int | str | None) -> str:
        if moment is None:
            return "—"
        if isinstance(moment, str):
            return babel.dates.format_date(date.fromisoformat(moment), "medium", locale=locale)
        return babel.dates.format_date(day_of(int(moment)), format="medium", locale=locale)

    return day


def instalment_rows(loan: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
    """Each instalment with what was paid of it and its state: paid, overdue (due and not
    fully paid), due (the next one not paid) or upcoming."""
    rows = []
    next_seen = False
    for index, item in enumerate(loan["schedule"]):
        paid_principal = loan["principal_paid"][index]
        paid_interest = loan["interest_paid"][index]
        owed = item["principal_minor"] + item["interest_minor"]
        paid = paid_principal + paid_interest
        if paid >= owed:
            state = "paid"
        elif item["due_ms"] <= now_ms:
            state = "overdue"
        elif not next_seen:
            state, next_seen = "due", True
        else:
            state = "upcoming"
        rows.append({
            **item, "total_minor": owed, "paid_minor": paid, "left_minor": owed - paid,
            "principal_paid_minor": paid_principal, "interest_paid_minor": paid_interest,
            "state": state,
        })  # fmt: skip
    return rows


def _next_due(loan: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first instalment not fully paid, with what is left of it."""
    if loan["status"] not in REPAYABLE and loan["status"] != Status.DEFAULTED:
        return None
    for row in instalment_rows(loan, now_ms=0):
        if row["left_minor"] > 0:
            return row
    return None


def _outstanding(loan: Mapping[str, Any]) -> int:
    return outstanding_minor(loan)


def _context(request: Request) -> dict[str, Any]:
    locale = i18n.request_locale(request)
    return {
        "day": _day_formatter(locale), "limits": limits, "outstanding": _outstanding,
        "approved_reason": APPROVED_REASON,
    }  # fmt: skip


def _error(request: Request, exc: ZhijinError) -> str:
    return problem_text(i18n.request_locale(request), exc)


def _invalid(request: Request, exc: ValidationError) -> str:
    fields = ", ".join(str(error["loc"][-1]) for error in exc.errors() if error["loc"])
    return web_text(i18n.request_locale(request), "lending.form_invalid", fields=fields)


# -- the borrower's ------------------------------------------------------------------------------
@router.get("/loans", response_class=HTMLResponse)
def my_loans(
    request: Request, viewer: Annotated[ShellViewer, page_access(MY_LOANS)]
) -> HTMLResponse:
    acting = Acting.of(request)
    loans = acting.list_loans(status=None, borrower=None, after=None, limit=MY_LOANS_SHOWN)
    now = acting.platform.node.clock()
    reminders: list[dict[str, Any]] = []
    if acting.caller.sender is not None:
        with acting.platform.platform_engine.connect() as conn:
            reminders = reminders_of(
                conn, borrower=acting.caller.sender, due_from_ms=now, limit=REMINDERS_SHOWN
            )
    by_id = {loan["loan_id"]: loan for loan in loans["loans"]}
    reminders = [  # still owed: an instalment paid since its reminder is not nagged about
        item for item in reminders
        if (nxt := _next_due(by_id.get(item["loan_id"]) or {"status": ""})) is not None
        and nxt["number"] <= item["instalment"]
    ]  # fmt: skip
    rows = [{"loan": loan, "next": _next_due(loan)} for loan in loans["loans"]]
    return render(
        request, "lending/loans.html", title=MY_LOANS.label, rows=rows, reminders=reminders,
        **_context(request),
    )  # fmt: skip


def _apply_form(request: Request, acting: Acting, **extra: Any) -> dict[str, Any]:
    products = acting.list_products(status="approved", after=None, limit=PAGE)["products"]
    ports = acting.platform.lending_ports
    decisions = []
    accounts = []
    if acting.caller.sender is not None:
        decisions = [
            facts
            for facts in ports.decisions.decisions_of(acting.caller.sender, limit=DECISIONS_OFFERED)
            if facts.member == acting.member
        ]
        if ports.accounts is not None:
            accounts = ports.accounts.accounts_of(
                acting.caller.sender, currency=CURRENCY, limit=ACCOUNTS_OFFERED
            )
    return {
        "products": products, "decisions": decisions, "accounts": accounts,
        "form": FormValues(), "error": None, "new_loan_id": f"ln-{secrets.token_hex(6)}",
        **_context(request), **extra,
    }  # fmt: skip


@router.get("/loans/apply", response_class=HTMLResponse)
def apply_page(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(APPLY)],
    product: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
) -> HTMLResponse:
    acting = Acting.of(request)
    context = _apply_form(request, acting, form=FormValues(product_id=product or ""))
    return render(request, "lending/apply.html", title=APPLY.label, **context)


@router.post("/loans/apply", response_class=HTMLResponse)
def apply(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(APPLY)],
    loan_id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)],
    product_id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)],
    decision_id: Annotated[str, Form(max_length=limits.ID_CHARS_MAX)] = "",
    amount: Annotated[str, Form(max_length=AMOUNT_CHARS_MAX)] = "",
    monthly_income: Annotated[str, Form(max_length=AMOUNT_CHARS_MAX)] = "",
    monthly_debt: Annotated[str, Form(max_length=AMOUNT_CHARS_MAX)] = "0",
    repayment_account_id: Annotated[str, Form(max_length=ACCOUNT_ID_CHARS_MAX)] = "",
) -> HTMLResponse:
    """Apply: the answer is the contract's at once: approved (and paid out by the bank), or in
    the officer's queue with the conditions that did not hold; and the decision's reasons."""
    same_origin(request)
    acting = Acting.of(request)
    form = FormValues({
        "loan_id": loan_id, "product_id": product_id, "decision_id": decision_id,
        "amount": amount, "monthly_income": monthly_income, "monthly_debt": monthly_debt,
        "repayment_account_id": repayment_account_id,
    })  # fmt: skip
    try:
        body = ApplicationIn.model_validate(
            {
                "loan_id": loan_id, "product_id": product_id, "decision_id": decision_id,
                "amount_minor": minor_of(amount, CURRENCY),
                "monthly_income_minor": minor_of(monthly_income, CURRENCY),
                "monthly_debt_minor": 0 if monthly_debt.strip() in ("", "0")
                else minor_of(monthly_debt, CURRENCY),
                "repayment_account_id": repayment_account_id,
            }
        )  # fmt: skip
        answer = acting.apply(body)
    except ValidationError as exc:
        context = _apply_form(request, acting, form=form, error=_invalid(request, exc))
        return render(request, "lending/_apply_form.html", title=APPLY.label, **context)
    except ZhijinError as exc:
        context = _apply_form(request, acting, form=form, error=_error(request, exc))
        return render(request, "lending/_apply_form.html", title=APPLY.label, **context)
    locale = i18n.request_locale(request)
    reasons_key = "text_zh" if locale == "zh_CN" else "text_en"
    return render(
        request, "lending/_applied.html", title=APPLY.label, loan=answer["loan"],
        reasons=[
            {"code": item.get("code", ""), "text": item.get(reasons_key, "")}
            for item in answer.get("decision_reasons") or []
        ],
        **_context(request),
    )  # fmt: skip


def _loan_context(request: Request, acting: Acting, loan_id: str) -> dict[str, Any]:
    loan = acting.read_loan(loan_id)
    history = acting.history(loan_id)
    product = service.get_product(acting.platform, product_id=loan["product_id"])
    now = acting.platform.node.clock()
    mine = acting.caller.sender is not None and acting.caller.sender == loan["borrower"]
    return {
        "loan": loan,
        "product": product,
        "instalments": instalment_rows(loan, now),
        "payments": history["payments"],
        "transitions": history["transitions"],
        "order": tuple(product.get("allocation_order") or ALLOCATION),
        "mine": mine,
        "may_repay": mine and loan["status"] in REPAYABLE,
        "may_withdraw": mine and loan["status"] in UNFINISHED,
        "may_disburse": (not acting.caller.is_end_user) and loan["status"] == Status.APPROVED,
        # The client's id of this repayment (ids are per loan): a retry of the same form is
        # answered `exists`, never paid twice.
        "payment_id": f"rp-{secrets.token_hex(8)}",
        "form": FormValues(),
        "error": None,
        "next": _next_due(loan),
        **_context(request),
    }


@router.get("/loans/{loan_id}", response_class=HTMLResponse)
def loan_page(
    request: Request, loan_id: IdPath, viewer: Annotated[ShellViewer, page_access(LOAN)]
) -> HTMLResponse:
    acting = Acting.of(request)
    context = _loan_context(request, acting, loan_id)
    return render(request, "lending/loan.html", title=LOAN.label, **context)


def _repayment(payment_id: str, mode: str, amount: str, then: str, currency: str) -> RepaymentIn:
    return RepaymentIn.model_validate(
        {
            "payment_id": payment_id,
            "mode": mode,
            "amount_minor": None if mode == "full" else minor_of(amount, currency),
            "then": None if mode == "full" else then,
        }
    )


RepayForm = Annotated[str, Form(max_length=limits.ID_CHARS_MAX)]


def _repay_form_again(
    request: Request, loan: dict[str, Any], form: FormValues, exc: ZhijinError | ValidationError
) -> HTMLResponse:
    """The repayment form as it was sent, with why it was refused."""
    error = _error(request, exc) if isinstance(exc, ZhijinError) else _invalid(request, exc)
    return render(
        request, "lending/_repay_form.html", title=LOAN.label, loan=loan, form=form,
        error=error, payment_id=form["payment_id"], **_context(request),
    )  # fmt: skip


@router.post("/loans/{loan_id}/repay/preview", response_class=HTMLResponse)
def repay_preview(
    request: Request,
    loan_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(LOAN)],
    payment_id: RepayForm,
    mode: Annotated[str, Form(pattern="^(full|partial)$")],
    amount: Annotated[str, Form(max_length=AMOUNT_CHARS_MAX)] = "",
    then: Annotated[str, Form(pattern="^(reamortise|shorten)$")] = "reamortise",
) -> HTMLResponse:
    """The contract's answer to this repayment now, written nowhere: the allocation and the
    schedule it would leave, beside a button that sends exactly this."""
    same_origin(request)
    acting = Acting.of(request)
    loan = acting.read_loan(loan_id)
    form = FormValues(payment_id=payment_id, mode=mode, amount=amount, then=then)
    try:
        body = _repayment(payment_id, mode, amount, then, loan["currency"])
        preview = acting.preview_repayment(loan_id, body)
    except (ZhijinError, ValidationError) as exc:
        return _repay_form_again(request, loan, form, exc)
    after = preview["loan"]
    return render(
        request, "lending/_repay_preview.html", title=LOAN.label, loan=loan, after=after,
        payment=preview.get("payment"), form=form,
        instalments=instalment_rows(after, preview["time_ms"]),
        order=tuple(service.get_product(acting.platform, product_id=loan["product_id"])
                    .get("allocation_order") or ALLOCATION),
        **_context(request),
    )  # fmt: skip


def _repay_fields(
    payment_id: RepayForm,
    mode: Annotated[str, Form(pattern="^(full|partial)$")],
    amount: Annotated[str, Form(max_length=AMOUNT_CHARS_MAX)] = "",
    then: Annotated[str, Form(pattern="^(reamortise|shorten)$")] = "reamortise",
) -> FormValues:
    """The repayment's fields, as the review, the step-up prompt and the enrolment carry them."""
    return FormValues(stepup.trimmed(payment_id=payment_id, mode=mode, amount=amount, then=then))


RepayFields = Annotated[FormValues, Depends(_repay_fields)]
CodeField = Annotated[str, Form(max_length=16)]  # a step-up code (identity's TOTP)
PasswordField = Annotated[str, Form(max_length=1024)]  # re-authentication before enrolment


def _repay_base(loan_id: str) -> str:
    return f"/loans/{loan_id}/repay"


def _amount_shown(request: Request, acting: Acting, loan: dict[str, Any], form: FormValues) -> str:
    """What the repayment would debit, as money (a full one: today's payoff), for the prompt;
    the amount as typed when the contract's preview cannot say it."""
    try:
        body = _repayment(form["payment_id"], form["mode"], form["amount"], form["then"],
                          loan["currency"])  # fmt: skip
        outflow = acting.repayment_outflow(loan, body)
    except (ZhijinError, ValidationError):
        outflow = None
    if outflow is None or outflow.amount_minor is None:
        return form["amount"]
    return i18n.format_money(outflow.amount_minor, outflow.currency, i18n.request_locale(request))


def _repay_or_prompt(
    request: Request,
    loan_id: str,
    form: FormValues,
    done: Callable[[], Response] | None = None,
) -> Response:
    """Send the repayment: done (to the loan page, or `done()`), the step-up prompt when the
    policy asks for a fresh code, or the form again saying why it was refused."""
    acting = Acting.of(request)
    loan = acting.read_loan(loan_id)
    try:
        body = _repayment(form["payment_id"], form["mode"], form["amount"], form["then"],
                          loan["currency"])  # fmt: skip
        acting.repay(loan_id, body)
    except StepUpRequired as exc:
        return stepup.prompt(
            request, form, base=_repay_base(loan_id), title=LOAN.label,
            amount_shown=_amount_shown(request, acting, loan, form), exc=exc, look=REPAYMENT,
        )  # fmt: skip
    except (ZhijinError, ValidationError) as exc:
        return _repay_form_again(request, loan, form, exc)
    if done is not None:
        return done()
    return htmx_redirect(request, f"/loans/{loan_id}?repaid={form['payment_id']}")


@router.get("/loans/{loan_id}/repay")
def repay_cancelled(loan_id: IdPath, viewer: Annotated[ShellViewer, page_access(LOAN)]) -> Response:
    """The step-up prompt's cancel link: back to the loan."""
    return Response(status_code=303, headers={"Location": f"/loans/{loan_id}"})


@router.post("/loans/{loan_id}/repay", response_class=HTMLResponse)
def repay(
    request: Request,
    loan_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(LOAN)],
    form: RepayFields,
    code: CodeField = "",
) -> Response:
    """The review's confirm button: the repayment is sent; the step-up prompt adds `code`,
    checked first (a wrong one: the prompt again, nothing sent)."""
    same_origin(request)
    if code.strip():
        acting = Acting.of(request)
        loan = acting.read_loan(loan_id)
        again = stepup.check_code(
            request, code, form=form, base=_repay_base(loan_id), title=LOAN.label,
            amount_shown=_amount_shown(request, acting, loan, form), look=REPAYMENT,
        )  # fmt: skip
        if again is not None:
            return again
    return _repay_or_prompt(request, loan_id, form)


@router.post("/loans/{loan_id}/repay/enrol", response_class=HTMLResponse)
def repay_enrol(
    request: Request,
    loan_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(LOAN)],
    form: RepayFields,
    password: PasswordField = "",
) -> HTMLResponse:
    """Set up an authenticator without leaving the repayment."""
    same_origin(request)
    Acting.of(request).read_loan(loan_id)  # the borrower's own loan (or their staff's)
    return stepup.start_enrolment(
        request, form, base=_repay_base(loan_id), title=LOAN.label, password=password,
        look=REPAYMENT,
    )  # fmt: skip


@router.post("/loans/{loan_id}/repay/enrol/confirm", response_class=HTMLResponse)
def repay_enrol_confirm(
    request: Request,
    loan_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(LOAN)],
    form: RepayFields,
    code: CodeField,
) -> HTMLResponse:
    """The authenticator's first code switches it on, and the repayment is made; it is said in
    place (not a redirect), so the recovery codes shown beside it are not lost, and the address
    becomes the repaid loan's (`HX-Push-Url`), which the live refresh the repayment's event
    brings then reads."""
    same_origin(request)

    def repaid() -> Response:
        address = f"/loans/{loan_id}?repaid={form['payment_id']}"
        return render(
            request, "lending/_repaid.html", title=LOAN.label, loan_id=loan_id,
            payment_id=form["payment_id"], headers={"HX-Push-Url": address},
        )  # fmt: skip

    return stepup.confirm_enrolment(
        request, code, title=LOAN.label,
        pay=lambda: _repay_or_prompt(request, loan_id, form, done=repaid), look=REPAYMENT,
    )  # fmt: skip


def _loan_step(request: Request, loan_id: str, step: Callable[[str], Any]) -> Response:
    """A button on the loan page (withdraw, disburse): done, the page again; refused, why."""
    same_origin(request)
    try:
        step(loan_id)
    except ZhijinError as exc:
        return render(
            request, "lending/_action_error.html", title=LOAN.label, error=_error(request, exc)
        )
    return htmx_redirect(request, f"/loans/{loan_id}")


@router.post("/loans/{loan_id}/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request, loan_id: IdPath, viewer: Annotated[ShellViewer, page_access(LOAN)]
) -> Response:
    return _loan_step(request, loan_id, Acting.of(request).withdraw)


@router.post("/loans/{loan_id}/disburse", response_class=HTMLResponse)
def disburse(
    request: Request, loan_id: IdPath, viewer: Annotated[ShellViewer, page_access(LOAN)]
) -> Response:
    return _loan_step(request, loan_id, Acting.of(request).disburse)


# -- the bank's ----------------------------------------------------------------------------------
BOOK_ORDER = (
    Status.CURRENT, Status.OVERDUE, Status.DEFAULTED, Status.COLLATERAL_LIQUIDATED,
    Status.WRITTEN_OFF, Status.RECOVERED, Status.CLOSED, Status.REVIEW, Status.APPROVED,
    Status.REJECTED, Status.WITHDRAWN,
)  # fmt: skip


@router.get("/staff/loans", response_class=HTMLResponse)
def loan_book(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(LOAN_BOOK)],
    status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
    after: After = None,
) -> HTMLResponse:
    acting = Acting.of(request)
    answer = acting.book()
    book = answer["rows"]
    order = {name: index for index, name in enumerate(BOOK_ORDER)}
    book.sort(key=lambda row: (row["member"], order.get(row["status"], 99), row["bucket"] or ""))
    page = acting.list_loans(status=status, borrower=None, after=after, limit=PAGE)
    # The regulator reads each member by its name in the consortium, its DID beside it.
    members = acting.platform.node.membership.latest().members
    return render(
        request, "lending/book.html", title=LOAN_BOOK.label, book=book,
        member_names={did: member.name for did, member in members.items()},
        loans=page["loans"], next_after=page["next_after"], status=status,
        statuses=BOOK_ORDER, every_member=answer["every_member"],
        **_context(request),
    )  # fmt: skip


def _queue_row(acting: Acting, loan: dict[str, Any], **extra: Any) -> dict[str, Any]:
    row = {"loan": loan, "blocker": acting.review_blocker(loan), "error": None, "done": None}
    return {**row, **extra}


@router.get("/staff/loans/queue", response_class=HTMLResponse)
def review_queue(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(LOAN_QUEUE)],
    after: After = None,
) -> HTMLResponse:
    acting = Acting.of(request)
    page = acting.queue(after=after, limit=PAGE)
    return render(
        request, "lending/queue.html", title=LOAN_QUEUE.label,
        rows=[_queue_row(acting, loan) for loan in page["loans"]],
        next_after=page["next_after"], **_context(request),
    )  # fmt: skip


@router.post("/staff/loans/{loan_id}/review", response_class=HTMLResponse)
def review(
    request: Request,
    loan_id: IdPath,
    viewer: Annotated[ShellViewer, page_access(LOAN_QUEUE)],
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Annotated[str, Form(max_length=limits.REASON_CHARS_MAX * 2)] = "",
) -> HTMLResponse:
    same_origin(request)
    acting = Acting.of(request)
    loan = service.get_loan(acting.platform, loan_id=loan_id)
    # A rejection says why (the customer reads it); an approval may leave it to the record.
    reason = reason.strip() or ("" if decision == "reject" else APPROVED_REASON)
    try:
        if not reason:
            raise ReasonMissing(message="a rejection gives its reason")
        loan = acting.review(loan_id, approve=decision == "approve", reason=reason)["loan"]
    except ZhijinError as exc:
        row = _queue_row(acting, loan, error=_error(request, exc))
        return render(request, "lending/_queue_row.html", title=LOAN_QUEUE.label, row=row,
                      **_context(request))  # fmt: skip
    row = _queue_row(acting, loan, done=loan["status"])
    return render(
        request, "lending/_queue_row.html", title=LOAN_QUEUE.label, row=row, **_context(request)
    )


def _product_rows(acting: Acting, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"product": product, "may_approve": product["status"] == "pending_approval"
         and acting.may_approve_product(product), "error": None, "done": None}
        for product in products
    ]  # fmt: skip


def _products_context(request: Request, acting: Acting, **extra: Any) -> dict[str, Any]:
    page = acting.list_products(status=None, after=None, limit=limits.PAGE_SIZE_DEFAULT)
    return {
        "rows": _product_rows(acting, page["products"]), "form": FormValues(), "error": None,
        "created": None, **_context(request), **extra,
    }  # fmt: skip


@router.get("/staff/loans/products", response_class=HTMLResponse)
def products(
    request: Request, viewer: Annotated[ShellViewer, page_access(LOAN_PRODUCTS)]
) -> HTMLResponse:
    acting = Acting.of(request)
    context = _products_context(request, acting)
    return render(request, "lending/products.html", title=LOAN_PRODUCTS.label, **context)


def _product_terms(form: Mapping[str, str], income_account_id: str) -> dict[str, Any]:
    """The create form's fields as the API's product terms (percentages in basis points,
    amounts in minor units); buckets M1/M2/M3+ and the standard allocation order."""

    def bps(name: str) -> int:
        try:
            value = Decimal(form.get(name, "").strip() or "x")
        except InvalidOperation:
            raise AmountInvalid(message=f"{name} is not a percentage") from None
        scaled = value * 100
        if not value.is_finite() or scaled != scaled.to_integral_value():
            raise AmountInvalid(message=f"{name} has more than two decimals")
        return int(scaled)

    def whole(name: str) -> int:
        text = form.get(name, "").strip()
        if not text.isdigit():
            raise AmountInvalid(message=f"{name} is not a whole number")
        return int(text)

    return {
        "product_id": form.get("product_id", "").strip(),
        "currency": CURRENCY,
        "lpr_tenor": form.get("lpr_tenor", "1y"),
        "spread_bps": bps("spread_percent"),
        "term_months": whole("term_months"),
        "method": form.get("method", "equal_instalment"),
        "day_count": form.get("day_count", "30_360"),
        "grace_days": whole("grace_days"),
        "penalty_uplift_bps": bps("penalty_uplift_percent"),
        "compound_overdue_interest": form.get("compound") == "on",
        "late_fee_minor": minor_of(form.get("late_fee", "0") or "0", CURRENCY)
        if (form.get("late_fee", "0") or "0").strip() not in ("0", "0.00") else 0,
        "allocation_order": list(ALLOCATION),
        "min_amount_minor": minor_of(form.get("min_amount", ""), CURRENCY),
        "max_amount_minor": minor_of(form.get("max_amount", ""), CURRENCY),
        "auto_approval": {
            "min_score": whole("auto_min_score"),
            "max_dti_bps": bps("auto_max_dti_percent"),
            "max_amount_minor": minor_of(form.get("auto_max_amount", ""), CURRENCY),
            "min_kyc_level": whole("auto_min_kyc_level"),
        },
        "collateral_ratio_bps": 0,
        "buckets": [
            {"name": "M1", "from_days": 1},
            {"name": "M2", "from_days": 31},
            {"name": "M3+", "from_days": 61},
        ],
        "default_after_days": whole("default_after_days"),
        "income_account_id": income_account_id,
    }  # fmt: skip


PRODUCT_FIELDS = (
    "product_id", "lpr_tenor", "spread_percent", "term_months", "method", "day_count",
    "grace_days", "penalty_uplift_percent", "compound", "late_fee", "min_amount", "max_amount",
    "auto_min_score", "auto_max_dti_percent", "auto_max_amount", "auto_min_kyc_level",
    "default_after_days", "income_account_id",
)  # fmt: skip


@router.post("/staff/loans/products", response_class=HTMLResponse)
async def create_product(
    request: Request, viewer: Annotated[ShellViewer, page_access(LOAN_PRODUCTS)]
) -> Response:
    same_origin(request)
    raw = await request.form()
    form = FormValues(
        {name: str(raw.get(name, ""))[: limits.ID_CHARS_MAX * 2] for name in PRODUCT_FIELDS}
    )
    return _create_product(request, form)


def _create_product(request: Request, form: FormValues) -> Response:
    acting = Acting.of(request)
    try:
        terms = ProductIn.model_validate(
            _product_terms(form, form.get("income_account_id", "").strip())
        ).model_dump(mode="json")
        created = acting.create_product(terms)["product"]
    except ValidationError as exc:
        context = _products_context(request, acting, form=form, error=_invalid(request, exc))
        return render(request, "lending/_product_form.html", title=LOAN_PRODUCTS.label, **context)
    except ZhijinError as exc:
        context = _products_context(request, acting, form=form, error=_error(request, exc))
        return render(request, "lending/_product_form.html", title=LOAN_PRODUCTS.label, **context)
    return htmx_redirect(request, f"/staff/loans/products?created={created['product_id']}")


@router.post("/staff/loans/products/{product_id}/approve", response_class=HTMLResponse)
def approve_product(
    request: Request, product_id: IdPath, viewer: Annotated[ShellViewer, page_access(LOAN_PRODUCTS)]
) -> HTMLResponse:
    same_origin(request)
    acting = Acting.of(request)
    product = service.get_product(acting.platform, product_id=product_id)
    (row,) = _product_rows(acting, [product])
    try:
        row["product"] = acting.approve_product(product_id)["product"]
        row["may_approve"], row["done"] = False, "approved"
    except ZhijinError as exc:
        row["error"] = _error(request, exc)
    return render(
        request, "lending/_product_row.html", title=LOAN_PRODUCTS.label, row=row,
        **_context(request),
    )  # fmt: skip


@router.get("/staff/loans/lpr", response_class=HTMLResponse)
def lpr_page(
    request: Request, viewer: Annotated[ShellViewer, page_access(LOAN_LPR)]
) -> HTMLResponse:
    acting = Acting.of(request)
    return render(
        request, "lending/lpr.html", title=LOAN_LPR.label, quotes=service.lpr_table(acting.platform),
        error=None, form=FormValues(), today=service.today(acting.platform).isoformat(), **_context(request),
    )  # fmt: skip


@router.post("/staff/loans/lpr", response_class=HTMLResponse)
def publish_lpr(
    request: Request,
    viewer: Annotated[ShellViewer, page_access(LOAN_LPR)],
    tenor: Annotated[str, Form(pattern="^(1y|5y)$")],
    rate_percent: Annotated[str, Form(max_length=8)],
    effective_day: Annotated[str, Form(max_length=10)],
) -> Response:
    same_origin(request)
    acting = Acting.of(request)
    form = FormValues(tenor=tenor, rate_percent=rate_percent, effective_day=effective_day)
    try:
        date.fromisoformat(effective_day)
        value = Decimal(rate_percent.strip()) * 100
        if not value.is_finite() or value != value.to_integral_value() or value < 0:
            raise ValueError(rate_percent)
        acting.set_lpr(tenor=tenor, rate_bps=int(value), effective_day=effective_day)
    except (ValueError, InvalidOperation):
        error = web_text(i18n.request_locale(request), "lending.lpr_invalid")
    except ZhijinError as exc:
        error = _error(request, exc)
    else:
        return htmx_redirect(request, "/staff/loans/lpr")
    return render(
        request, "lending/_lpr_form.html", title=LOAN_LPR.label, error=error, form=form,
        today=service.today(acting.platform).isoformat(), **_context(request),
    )  # fmt: skip

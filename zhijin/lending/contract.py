"""The lending contract: LPR quotes, loan products with maker-checker, and the loan's lifecycle.

| method | args | returns |
|---|---|---|
| set_lpr | {tenor: 1y/5y, rate_bps, effective_day} | {"lpr", "exists"} |
| create_product | the product's terms (requests.parse_product) and its officer | {"product", "exists"} |
| approve_product | {product_id, officer} | {"product", "exists"} |
| apply | {loan_id, product_id, borrower, applied_by, amount_minor, decision: {...}, repayment_account_id, collateral_account_id?, collateral_minor?} | {"loan", "exists"} |
| review | {loan_id, officer, approve, reason} | {"loan"} |
| withdraw | {loan_id} | {"loan"} |
| disburse | {loan_id} | {"loan"} |
| accrue | {loan_id} | {"loan", "exists"} |
| collect | {loan_id, instalment} | {"loan", "payment"} |
| repay | {loan_id, payment_id, mode: full/partial, amount_minor?, then?: reamortise/shorten} | {"loan", "payment", "exists"} |
| default | {loan_id} | {"loan"} |
| liquidate | {loan_id} | {"loan", "payment"} |
| write_off | {loan_id, officer} | {"loan", "payment"} |
| recover | {loan_id, payment_id, amount_minor} | {"loan", "payment", "exists"} |
| remind | {loan_id, instalment} | {"reminded", "exists"} |

Who signs: the lender (the product's member) in its own name for everything but `repay`,
`recover` and `withdraw`, which the borrower may also send (signed by a member vouching for
them, the platform having authenticated them with session, MFA and step-up).

Money moves only in payments, inside the same tx: this contract calls
`ctx.call("payments", ...)` (the runtime's cross-contract call, "as this tx's sender"), so a
loan's state and its money change together or not at all, and lending never writes a payments
key.  Each loan has its own payments accounts owned by `contract:lending`: `lnp-<id>` (kind
loan, debit-normal: disbursement debits it, every principal repayment credits it, so the
outstanding principal IS its balance) and, when secured, `lnc-<id>` (escrow), into which the
collateral hold escrowed at disbursement is posted on liquidation.  Interest, penalty and fees
go to the product's income account (the lender's); a write-off debits that account for the
principal left, so the loan account returns to zero.

Ids come from the client: a retry with the same body answers `exists: true`; the same id with
another body is refused (`exists_with_different_fields`).  A collection is keyed by loan,
instalment and Beijing day: a second one the same day is refused (`already_collected`), so a
restarted keeper, or two keepers, never collect twice.  Deterministic: block time only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from zhijin.chain.contract import Context, Contract, TxInfo
from zhijin.chain.errors import invariant
from zhijin.lending import calc, limits
from zhijin.lending.codes import Code, refuse
from zhijin.lending.lifecycle import Status, check_transition
from zhijin.lending.records import (
    Loan,
    LprQuote,
    PaymentRecord,
    Product,
    collateral_account,
    keys,
    loan_account,
)
from zhijin.lending.requests import (
    parse_apply,
    parse_loan_action,
    parse_lpr,
    parse_product,
    parse_product_approval,
    parse_repay,
    parse_review,
)
from zhijin.lending.schedule import (
    DayCount,
    Method,
    build_schedule,
    day_of,
    interest_for_days,
    plan_over,
)

__all__ = [
    "CONTRACT_NAME",
    "EVENT_LOAN",
    "EVENT_PAYMENT",
    "EVENT_PRODUCT",
    "EVENT_REMINDER",
    "LENDING_CONTRACT",
]

CONTRACT_NAME = "lending"
CONTRACT_VERSION = "1"
OWNER = f"contract:{CONTRACT_NAME}"
EVENT_LPR = "lpr"
EVENT_PRODUCT = "product"  # created or approved: the record as it now stands
EVENT_LOAN = "loan"  # every transition: the loan record as it now stands
EVENT_PAYMENT = "payment"  # one payment's allocation
EVENT_REMINDER = "reminder"  # an instalment falls due soon

# The auto-approval conditions a product tests, as the reasons a queued application shows.
REASON_OUTCOME = "decision_not_approve"
REASON_SCORE = "score_below_minimum"
REASON_DTI = "dti_above_maximum"
REASON_AMOUNT = "amount_above_auto_limit"
REASON_KYC = "kyc_level_too_low"


# -- who signs -------------------------------------------------------------------------------------


def _member(ctx: Context) -> str:
    if ctx.tx.vouched or ctx.member(ctx.tx.sender) is None:
        refuse(Code.NOT_MEMBER)
    return ctx.tx.sender


def _lender(ctx: Context, loan: Loan) -> None:
    if _member(ctx) != loan.member:
        refuse(Code.NOT_AUTHORIZED)


def _lender_or_borrower(ctx: Context, loan: Loan) -> None:
    """The lender in its own name, or the borrower (vouched for by the lender or signing)."""
    tx = ctx.tx
    if not tx.vouched and tx.sender == loan.member:
        return
    if tx.sender != loan.borrower:
        refuse(Code.NOT_AUTHORIZED)
    if tx.vouched and ctx.member(tx.signer) is None:
        refuse(Code.NOT_AUTHORIZED)


def _loan(ctx: Context, loan_id: str) -> Loan:
    loan = ctx.get_record(keys.loan(loan_id), Loan)
    if loan is None:
        refuse(Code.LOAN_NOT_FOUND)
    return loan


def _product(ctx: Context, product_id: str) -> Product:
    product = ctx.get_record(keys.product(product_id), Product)
    if product is None:
        refuse(Code.PRODUCT_NOT_FOUND)
    return product


def _today(ctx: Context) -> date:
    return day_of(ctx.block.time_ms)


def _moved(ctx: Context, loan: Loan, status: str, why: str) -> Loan:
    history = (*loan.history, (status, ctx.block.height, ctx.block.time_ms, why))
    return replace(loan, status=status, history=history[-limits.HISTORY_MAX :])


def _save(ctx: Context, loan: Loan) -> dict[str, Any]:
    ctx.put_record(keys.loan(loan.loan_id), loan, event=EVENT_LOAN)
    return loan.to_json()


# -- LPR and products ------------------------------------------------------------------------------


def set_lpr(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    tenor, rate, day = parse_lpr(args)
    member = _member(ctx)
    current = ctx.get_record(keys.lpr(tenor), LprQuote)
    if current is not None and current.effective_day == day:
        if current.rate_bps != rate:
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"lpr": current.to_json(), "exists": True}
    if current is not None and day < current.effective_day:
        refuse(Code.LPR_OUT_OF_ORDER, f"the current quote took effect on {current.effective_day}")
    quote = LprQuote(
        tenor=tenor,
        rate_bps=rate,
        effective_day=day,
        member=member,
        height=ctx.block.height,
        previous_bps=None if current is None else current.rate_bps,
    )
    ctx.put_record(keys.lpr(tenor), quote, event=EVENT_LPR)
    return {"lpr": quote.to_json(), "exists": False}


def create_product(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_product(args)
    member = _member(ctx)
    existing = ctx.get_record(keys.product(request.product_id), Product)
    if existing is not None:
        stored = {name: getattr(existing, name) for name in request.terms}
        if (stored, existing.member, existing.created_by) != (
            request.terms,
            member,
            request.officer,
        ):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"product": existing.to_json(), "exists": True}
    product = Product(
        product_id=request.product_id,
        member=member,
        created_by=request.officer,
        approved_by=None,
        status="pending_approval",
        created_height=ctx.block.height,
        approved_height=None,
        **request.terms,
    )
    ctx.put_record(keys.product(product.product_id), product, event=EVENT_PRODUCT)
    return {"product": product.to_json(), "exists": False}


def approve_product(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    product_id, officer = parse_product_approval(args)
    member = _member(ctx)
    product = _product(ctx, product_id)
    if product.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if officer == product.created_by:
        refuse(Code.SELF_APPROVAL)
    if product.status == "approved":
        if product.approved_by != officer:
            refuse(Code.PRODUCT_ALREADY_APPROVED)
        return {"product": product.to_json(), "exists": True}
    approved = replace(
        product, status="approved", approved_by=officer, approved_height=ctx.block.height
    )
    ctx.put_record(keys.product(product_id), approved, event=EVENT_PRODUCT)
    return {"product": approved.to_json(), "exists": False}


# -- applications ----------------------------------------------------------------------------------


def _account(ctx: Context, account_id: str) -> dict[str, Any]:
    account: dict[str, Any] = ctx.call("payments", "get_account", {"account_id": account_id})
    return account


def _available(account: dict[str, Any]) -> int:
    return int(
        account["credits_posted"]
        + account["credit_limit"]
        - account["debits_posted"]
        - account["debits_pending"]
    )


def _conditions(product: Product, request: Any) -> tuple[str, ...]:
    failed = []
    if request.outcome != "approve":
        failed.append(REASON_OUTCOME)
    if request.score < product.auto_min_score:
        failed.append(REASON_SCORE)
    if request.dti_bps > product.auto_max_dti_bps:
        failed.append(REASON_DTI)
    if request.amount_minor > product.auto_max_amount_minor:
        failed.append(REASON_AMOUNT)
    if request.kyc_level < product.auto_min_kyc_level:
        failed.append(REASON_KYC)
    return tuple(failed)


def _same_application(loan: Loan, request: Any, member: str) -> bool:
    return (
        loan.member,
        loan.product_id,
        loan.borrower,
        loan.amount_minor,
        loan.decision_id,
        loan.decision_sha256,
        loan.repayment_account_id,
        loan.collateral_account_id,
        loan.collateral_minor,
    ) == (
        member,
        request.product_id,
        request.borrower,
        request.amount_minor,
        request.decision_id,
        request.decision_sha256,
        request.repayment_account_id,
        request.collateral_account_id,
        request.collateral_minor,
    )


def apply(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """An application with its credit decision: approved at once when the product's
    conditions hold, otherwise queued for an officer with the conditions that failed."""
    request = parse_apply(args)
    tx = ctx.tx
    signer = tx.signer if tx.vouched else tx.sender
    if ctx.member(signer) is None or (tx.vouched and tx.sender != request.borrower):
        refuse(Code.NOT_MEMBER)
    member = signer
    existing = ctx.get_record(keys.loan(request.loan_id), Loan)
    if existing is not None:
        if not _same_application(existing, request, member):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"loan": existing.to_json(), "exists": True}
    product = _product(ctx, request.product_id)
    if product.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if product.status != "approved":
        refuse(Code.PRODUCT_NOT_APPROVED)
    _check_accounts(ctx, product, request, member)
    if not product.min_amount_minor <= request.amount_minor <= product.max_amount_minor:
        refuse(
            Code.AMOUNT_OUT_OF_RANGE,
            f"the product lends {product.min_amount_minor}-{product.max_amount_minor}",
        )
    anchor = ctx.call("credit", "get_anchor", {"decision_id": request.decision_id})
    if anchor is None:
        refuse(Code.DECISION_NOT_FOUND)
    if anchor["record_sha256"] != request.decision_sha256 or anchor["member"] != member:
        refuse(Code.DECISION_MISMATCH)
    needed = request.amount_minor * product.collateral_ratio_bps // 10_000
    if product.collateral_ratio_bps and request.collateral_minor < needed:
        refuse(Code.COLLATERAL_REQUIRED, f"the product needs collateral of {needed}")
    failed = _conditions(product, request)
    loan = _new_loan(request, product, member, failed)
    status, why = (Status.REVIEW, ",".join(failed)) if failed else (Status.APPROVED, "auto")
    loan = _moved(ctx, loan, status, why)
    return {"loan": _save(ctx, loan), "exists": False}


def _check_accounts(ctx: Context, product: Product, request: Any, member: str) -> None:
    wanted = [request.repayment_account_id]
    if request.collateral_account_id is not None:
        wanted.append(request.collateral_account_id)
    for account_id in wanted:
        account = _account(ctx, account_id)
        if account["currency"] != product.currency:
            refuse(Code.CURRENCY_MISMATCH)
        # The lender collects from it on due dates as its custodian (payments' rule 4).
        if account["owner"] != request.borrower or account["custodian"] != member:
            refuse(Code.NOT_AUTHORIZED, f"{account_id} is not the borrower's account held here")


def _new_loan(request: Any, product: Product, member: str, failed: tuple[str, ...]) -> Loan:
    return Loan(
        loan_id=request.loan_id,
        product_id=product.product_id,
        member=member,
        borrower=request.borrower,
        currency=product.currency,
        amount_minor=request.amount_minor,
        term_months=product.term_months,
        status=Status.REVIEW,
        decision_id=request.decision_id,
        decision_sha256=request.decision_sha256,
        score=request.score,
        dti_bps=request.dti_bps,
        kyc_level=request.kyc_level,
        approval=None if failed else "auto",
        reasons=failed,
        applied_by=request.applied_by,
        review_reason=None,
        repayment_account_id=request.repayment_account_id,
        collateral_account_id=request.collateral_account_id,
        collateral_minor=request.collateral_minor,
        lpr_bps=None,
        rate_bps=None,
        penalty_rate_bps=None,
        disbursed_day=None,
        interest_from_day=None,
        schedule=(),
        principal_paid=(),
        interest_paid=(),
        late_fee_charged=(),
        penalty_due_minor=0,
        fee_due_minor=0,
        principal_repaid_minor=0,
        prepaid_principal_minor=0,
        interest_collected_minor=0,
        penalty_collected_minor=0,
        fee_collected_minor=0,
        accrued_through_day=None,
        days_past_due=0,
        bucket=None,
        collateral_taken_minor=0,
        written_off_minor=0,
        recovered_minor=0,
        closed_day=None,
        payments=0,
        history=(),
    )


def review(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    loan_id, officer, approve, reason = parse_review(args)
    member = _member(ctx)
    loan = _loan(ctx, loan_id)
    if loan.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if officer == loan.applied_by:
        refuse(Code.SELF_APPROVAL)
    check_transition(loan.status, "review")
    status = Status.APPROVED if approve else Status.REJECTED
    decided = replace(loan, approval=officer if approve else None, review_reason=reason)
    decided = _moved(ctx, decided, status, f"{officer}: {reason}")
    if not approve:
        decided = replace(decided, closed_day=_today(ctx).isoformat())
    return {"loan": _save(ctx, decided)}


def withdraw(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    loan_id = parse_loan_action(args)["loan_id"]
    loan = _loan(ctx, loan_id)
    _lender_or_borrower(ctx, loan)
    check_transition(loan.status, "withdraw")
    loan = replace(
        _moved(ctx, loan, Status.WITHDRAWN, "withdrawn"), closed_day=_today(ctx).isoformat()
    )
    return {"loan": _save(ctx, loan)}


# -- disbursement ----------------------------------------------------------------------------------


def _transfer(
    ctx: Context,
    transfer_id: str,
    debit: str,
    credit: str,
    amount: int,
    currency: str,
    **extra: Any,
) -> str:
    ctx.call(
        "payments",
        "transfer",
        {
            "id": transfer_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": currency,
            **extra,
        },
    )
    return transfer_id


def _hold_id(loan_id: str) -> str:
    return f"ln:{loan_id}:collateral"


def disburse(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Fix the rate (LPR + spread), write the schedule, open the loan's accounts, pay the
    principal into the borrower's account and escrow the collateral as a hold."""
    loan_id = parse_loan_action(args)["loan_id"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    check_transition(loan.status, "disburse")
    product = _product(ctx, loan.product_id)
    lpr = ctx.get_record(keys.lpr(product.lpr_tenor), LprQuote)
    if lpr is None:
        refuse(Code.LPR_NOT_SET)
    rate = lpr.rate_bps + product.spread_bps
    if not 0 <= rate <= limits.RATE_BPS_MAX:
        refuse(
            Code.RATE_ABOVE_CAP, f"LPR {lpr.rate_bps} + spread {product.spread_bps} = {rate} bps"
        )
    penalty_rate = rate + (rate * product.penalty_uplift_bps + 5_000) // 10_000  # half up
    today = _today(ctx)
    schedule = build_schedule(
        principal_minor=loan.amount_minor,
        rate_bps=rate,
        term_months=loan.term_months,
        method=Method(product.method),
        day_count=DayCount(product.day_count),
        start_day=today,
    )
    accounts = [
        {"id": loan_account(loan_id), "owner": OWNER, "currency": loan.currency, "kind": "loan"}
    ]
    if loan.collateral_minor:
        accounts.append(
            {
                "id": collateral_account(loan_id),
                "owner": OWNER,
                "currency": loan.currency,
                "kind": "escrow",
            }
        )
    opened = ctx.call("payments", "create_accounts", {"accounts": accounts})
    invariant(opened["failed"] == 0, f"a loan's own accounts open: {opened['results']}")
    _transfer(
        ctx, f"ln:{loan_id}:disbursement", loan_account(loan_id), loan.repayment_account_id,
        loan.amount_minor, loan.currency,
    )  # fmt: skip
    if loan.collateral_minor:
        assert loan.collateral_account_id is not None
        _transfer(
            ctx, _hold_id(loan_id), loan.collateral_account_id, collateral_account(loan_id),
            loan.collateral_minor, loan.currency, flags=["pending"],
        )  # fmt: skip
    live = replace(
        loan,
        lpr_bps=lpr.rate_bps,
        rate_bps=rate,
        penalty_rate_bps=penalty_rate,
        disbursed_day=today.isoformat(),
        interest_from_day=today.isoformat(),
        accrued_through_day=today.isoformat(),
        schedule=schedule,
        principal_paid=(0,) * len(schedule),
        interest_paid=(0,) * len(schedule),
    )
    live = _moved(
        ctx, live, Status.CURRENT, f"rate {rate} bps = LPR {lpr.rate_bps} + {product.spread_bps}"
    )
    return {"loan": _save(ctx, live)}


# -- paying in -------------------------------------------------------------------------------------


def _book_payment(
    ctx: Context,
    loan: Loan,
    product: Product,
    *,
    payment_id: str,
    kind: str,
    source: str,
    allocation: calc.Allocation,
    extra_principal: int = 0,
) -> tuple[Loan, PaymentRecord]:
    """Move an allocated payment from `source` into the loan account (principal) and the
    lender's income account (the rest), and record where each minor unit went."""
    principal = allocation.principal_minor + extra_principal
    rest = allocation.penalty_minor + allocation.fee_minor + allocation.interest_minor
    transfer_ids = []
    if principal:
        transfer_ids.append(
            _transfer(
                ctx,
                f"ln:{loan.loan_id}:{payment_id}:p",
                source,
                loan_account(loan.loan_id),
                principal,
                loan.currency,
            )
        )
    if rest:
        transfer_ids.append(
            _transfer(
                ctx,
                f"ln:{loan.loan_id}:{payment_id}:i",
                source,
                product.income_account_id,
                rest,
                loan.currency,
            )
        )
    record = PaymentRecord(
        loan_id=loan.loan_id,
        payment_id=payment_id,
        kind=kind,
        amount_minor=principal + rest,
        penalty_minor=allocation.penalty_minor,
        fee_minor=allocation.fee_minor,
        interest_minor=allocation.interest_minor,
        principal_minor=principal,
        day=_today(ctx).isoformat(),
        height=ctx.block.height,
        tx_hash=ctx.tx.tx_hash,
        transfer_ids=tuple(transfer_ids),
    )
    ctx.put_record(keys.payment(loan.loan_id, payment_id), record, event=EVENT_PAYMENT)
    paid = calc.apply_allocation(loan, allocation)
    if extra_principal:
        paid = replace(
            paid,
            principal_repaid_minor=paid.principal_repaid_minor + extra_principal,
            prepaid_principal_minor=paid.prepaid_principal_minor + extra_principal,
        )
    return paid, record


def _settle_status(ctx: Context, loan: Loan, product: Product) -> Loan:
    """After money came in: closed when nothing is owed, current when nothing is overdue."""
    today = _today(ctx)
    if (
        loan.outstanding_principal_minor == 0
        and not (loan.penalty_due_minor or loan.fee_due_minor)
        and (sum(i.interest_minor for i in loan.schedule) == sum(loan.interest_paid))
    ):
        if loan.collateral_minor and loan.collateral_taken_minor == 0:
            ctx.call(
                "payments",
                "transfer",
                {
                    "id": f"{_hold_id(loan.loan_id)}:void",
                    "pending_id": _hold_id(loan.loan_id),
                    "flags": ["void_pending_transfer"],
                },
            )
        closed = replace(loan, closed_day=today.isoformat(), days_past_due=0, bucket=None)
        return _moved(ctx, closed, Status.CLOSED, "repaid")
    dpd = calc.days_past_due(loan, today)
    loan = replace(loan, days_past_due=dpd, bucket=calc.bucket_for(product, dpd))
    if loan.status == Status.OVERDUE and dpd == 0:
        return _moved(ctx, loan, Status.CURRENT, "paid up")
    return loan


def _accrued(ctx: Context, loan: Loan, product: Product) -> Loan:
    """The loan with penalties accrued through today and overdue marked."""
    loan = calc.accrue(loan, product, _today(ctx))
    if loan.status == Status.CURRENT and loan.days_past_due > product.grace_days:
        loan = _moved(ctx, loan, Status.OVERDUE, f"{loan.days_past_due} days past due")
    return loan


def accrue(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """The keeper's daily step: 罚息, 复利 and late fees through today; overdue marked."""
    loan_id = parse_loan_action(args)["loan_id"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    check_transition(loan.status, "accrue")
    if loan.accrued_through_day == _today(ctx).isoformat():
        return {"loan": loan.to_json(), "exists": True}
    product = _product(ctx, loan.product_id)
    return {"loan": _save(ctx, _accrued(ctx, loan, product)), "exists": False}


def collect(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Debit the borrower's repayment account for what is due through an instalment, partly
    when funds are short; once per instalment and day."""
    parsed = parse_loan_action(args, instalment=True)
    loan_id, number = parsed["loan_id"], parsed["instalment"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    check_transition(loan.status, "collect")
    item = next((i for i in loan.schedule if i.number == number), None)
    if item is None:
        refuse(Code.INSTALMENT_NOT_FOUND)
    if item.due_ms > ctx.block.time_ms:
        refuse(Code.COLLECTION_NOT_DUE, f"instalment {number} falls due at {item.due_ms}")
    day = _today(ctx).isoformat()
    mark = keys.collected(loan_id, number, day)
    if ctx.get(mark) is not None:
        refuse(Code.ALREADY_COLLECTED)
    product = _product(ctx, loan.product_id)
    loan = _accrued(ctx, loan, product)
    items = calc.dues(loan, product.allocation_order, now_ms=ctx.block.time_ms, through=number)
    available = max(_available(_account(ctx, loan.repayment_account_id)), 0)
    allocation = calc.allocate(min(available, calc.total_due(items)), items)
    payment_id = f"c{number:03d}-{day}"
    ctx.put(mark, {"payment_id": payment_id, "amount_minor": allocation.total_minor})
    payment = None
    if allocation.total_minor:
        loan, record = _book_payment(
            ctx, loan, product, payment_id=payment_id, kind="collection",
            source=loan.repayment_account_id, allocation=allocation,
        )  # fmt: skip
        payment = record.to_json()
        loan = _settle_status(ctx, loan, product)
    return {"loan": _save(ctx, loan), "payment": payment}


def _existing_payment(ctx: Context, loan: Loan, request: Any, kind: str) -> dict[str, Any] | None:
    record = ctx.get_record(keys.payment(loan.loan_id, request.payment_id), PaymentRecord)
    if record is None:
        return None
    if record.kind != kind or (
        request.amount_minor is not None and record.amount_minor != request.amount_minor
    ):
        refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
    return {"loan": loan.to_json(), "payment": record.to_json(), "exists": True}


def repay(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Early repayment: everything due, the current period's interest to today, then principal;
    in full (the loan closes) or in part (the rest re-amortised, or the term shortened)."""
    request = parse_repay(args)
    loan = _loan(ctx, request.loan_id)
    _lender_or_borrower(ctx, loan)
    existing = _existing_payment(ctx, loan, request, "repayment")
    if existing is not None:
        return existing
    check_transition(loan.status, "repay")
    product = _product(ctx, loan.product_id)
    loan = _accrued(ctx, loan, product)
    now = ctx.block.time_ms
    today = _today(ctx)
    arrears = calc.dues(loan, product.allocation_order, now_ms=now)
    future = calc.future_principal(loan, now)
    assert loan.rate_bps is not None
    broken_days = (today - calc.last_due_day(loan, now)).days
    basis = DayCount(product.day_count)
    basis = DayCount.ACT_360 if basis is DayCount.THIRTY_360 else basis
    broken = interest_for_days(future, loan.rate_bps, broken_days, basis)
    payoff = calc.total_due(arrears) + broken + future
    amount = payoff if request.amount_minor is None else request.amount_minor
    if amount > payoff:
        refuse(Code.REPAYMENT_EXCEEDS_OUTSTANDING, f"the payoff today is {payoff}")
    if request.mode == "partial" and amount >= payoff:
        refuse(Code.REPAY_MODE_INVALID, "this pays everything: repay in full")
    if request.mode == "full" and amount != payoff:
        refuse(Code.REPAY_MODE_INVALID, f"a full repayment is the payoff, {payoff}")
    if request.mode == "partial" and amount <= calc.total_due(arrears) + broken:
        refuse(
            Code.REPAY_MODE_INVALID, "a partial repayment pays all that is due and some principal"
        )
    if _available(_account(ctx, loan.repayment_account_id)) < amount:
        refuse(Code.FUNDS_INSUFFICIENT)
    allocation = calc.allocate(calc.total_due(arrears), arrears)
    allocation = replace(allocation, interest_minor=allocation.interest_minor + broken)
    extra = amount - allocation.total_minor
    loan, record = _book_payment(
        ctx, loan, product, payment_id=request.payment_id, kind="repayment",
        source=loan.repayment_account_id, allocation=allocation, extra_principal=extra,
    )  # fmt: skip
    loan = _reschedule(loan, product, now, today, request.then, broken)
    loan = _settle_status(ctx, loan, product)
    return {"loan": _save(ctx, loan), "payment": record.to_json(), "exists": False}


def _reschedule(
    loan: Loan, product: Product, now: int, today: date, then: str | None, broken: int
) -> Loan:
    """Replace the instalments not yet due by a plan for the principal still owed."""
    past = [index for index, item in enumerate(loan.schedule) if item.due_ms <= now]
    keep = len(past)
    kept = loan.schedule[:keep]
    # The broken period's interest was paid with the repayment: it is part of the record.
    interest_kept = loan.interest_paid[:keep]
    left = loan.outstanding_principal_minor - sum(
        i.principal_minor - p for i, p in zip(kept, loan.principal_paid[:keep], strict=True)
    )
    base = replace(
        loan,
        interest_from_day=today.isoformat(),
        interest_collected_minor=loan.interest_collected_minor,
    )
    if left == 0:
        return replace(
            base,
            schedule=kept,
            principal_paid=loan.principal_paid[:keep],
            interest_paid=interest_kept,
        )
    future = loan.schedule[keep:]
    due_days = [day_of(item.due_ms) for item in future]
    assert loan.rate_bps is not None
    method = Method(product.method)
    payment = None
    if then == "shorten" and method is Method.EQUAL_INSTALMENT:
        payment = future[0].total_minor
    elif then == "shorten" and method is Method.EQUAL_PRINCIPAL:
        payment = future[0].principal_minor
    plan = plan_over(
        principal_minor=left,
        rate_bps=loan.rate_bps,
        method=method,
        day_count=DayCount(product.day_count),
        start_day=today,
        due_days=due_days,
        first_number=future[0].number,
        broken_first=True,
        payment_minor=payment,
    )
    return replace(
        base,
        schedule=(*kept, *plan),
        principal_paid=(*loan.principal_paid[:keep], *(0,) * len(plan)),
        interest_paid=(*interest_kept, *(0,) * len(plan)),
        term_months=keep + len(plan),
    )


# -- delinquency, collateral, write-off ------------------------------------------------------------


def default(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    loan_id = parse_loan_action(args)["loan_id"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    if loan.status != Status.CURRENT:
        check_transition(loan.status, "default")  # a current loan may turn overdue today
    product = _product(ctx, loan.product_id)
    loan = _accrued(ctx, loan, product)
    check_transition(loan.status, "default")
    if loan.days_past_due < product.default_after_days:
        refuse(
            Code.DEFAULT_BEFORE_LIMIT,
            f"{loan.days_past_due} days past due; the product defaults at {product.default_after_days}",
        )
    loan = _moved(ctx, loan, Status.DEFAULTED, f"{loan.days_past_due} days past due")
    return {"loan": _save(ctx, loan)}


def _everything_owed(ctx: Context, loan: Loan, product: Product) -> list[calc.Due]:
    """Once in default the whole principal is due: what is due now, then the principal of
    every instalment not yet due (their interest never accrues)."""
    now = ctx.block.time_ms
    items = calc.dues(loan, product.allocation_order, now_ms=now)
    for index, item in enumerate(loan.schedule):
        unpaid = item.principal_minor - loan.principal_paid[index]
        if item.due_ms > now and unpaid:
            items.append(calc.Due("principal", item.number, unpaid))
    return items


def liquidate(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Post the escrowed collateral hold for what the loan owes (the rest is released) and
    allocate it; the loan closes if it covered everything."""
    loan_id = parse_loan_action(args)["loan_id"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    check_transition(loan.status, "liquidate")
    if not loan.collateral_minor:
        refuse(Code.NOT_SECURED)
    product = _product(ctx, loan.product_id)
    loan = calc.accrue(loan, product, _today(ctx))
    items = _everything_owed(ctx, loan, product)
    take = min(loan.collateral_minor, calc.total_due(items))
    ctx.call(
        "payments",
        "transfer",
        {
            "id": f"{_hold_id(loan_id)}:post",
            "pending_id": _hold_id(loan_id),
            "amount": take,
            "flags": ["post_pending_transfer"],
        },
    )
    allocation = calc.allocate(take, items)
    loan, record = _book_payment(
        ctx, loan, product, payment_id="liquidation", kind="liquidation",
        source=collateral_account(loan_id), allocation=allocation,
    )  # fmt: skip
    loan = replace(loan, collateral_taken_minor=take)
    if calc.total_due(_everything_owed(ctx, loan, product)) == 0:
        loan = _moved(
            ctx,
            replace(loan, closed_day=_today(ctx).isoformat()),
            Status.CLOSED,
            "collateral covered the loan",
        )
    else:
        loan = _moved(ctx, loan, Status.COLLATERAL_LIQUIDATED, f"collateral {take} taken")
    return {"loan": _save(ctx, loan), "payment": record.to_json()}


def write_off(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """The lender writes the principal left off against its income account, which brings the
    loan account to zero; interest, penalty and fees still owed are written off with it."""
    parsed = parse_loan_action(args, officer=True)
    loan = _loan(ctx, parsed["loan_id"])
    _lender(ctx, loan)
    check_transition(loan.status, "write_off")
    product = _product(ctx, loan.product_id)
    owed = calc.total_due(_everything_owed(ctx, loan, product))
    principal = loan.outstanding_principal_minor
    transfer_ids: tuple[str, ...] = ()
    if principal:
        transfer_ids = (
            _transfer(
                ctx,
                f"ln:{loan.loan_id}:write_off",
                product.income_account_id,
                loan_account(loan.loan_id),
                principal,
                loan.currency,
            ),
        )
    record = PaymentRecord(
        loan_id=loan.loan_id, payment_id="write_off", kind="write_off", amount_minor=principal,
        penalty_minor=0, fee_minor=0, interest_minor=0, principal_minor=principal,
        day=_today(ctx).isoformat(), height=ctx.block.height, tx_hash=ctx.tx.tx_hash,
        transfer_ids=transfer_ids,
    )  # fmt: skip
    ctx.put_record(keys.payment(loan.loan_id, "write_off"), record, event=EVENT_PAYMENT)
    written = replace(
        loan,
        principal_repaid_minor=loan.amount_minor,
        written_off_minor=owed,
        penalty_due_minor=0,
        fee_due_minor=0,
        closed_day=_today(ctx).isoformat(),
        payments=loan.payments + 1,
    )
    written = _moved(ctx, written, Status.WRITTEN_OFF, f"{parsed['officer']}: {owed} written off")
    return {"loan": _save(ctx, written), "payment": record.to_json()}


def recover(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """Money paid on a written-off loan: to the lender's income account, up to what was
    written off."""
    request = parse_repay(args, recovery=True)
    loan = _loan(ctx, request.loan_id)
    _lender_or_borrower(ctx, loan)
    existing = _existing_payment(ctx, loan, request, "recovery")
    if existing is not None:
        return existing
    check_transition(loan.status, "recover")
    amount = request.amount_minor
    assert amount is not None
    if amount > loan.written_off_minor - loan.recovered_minor:
        refuse(
            Code.REPAYMENT_EXCEEDS_OUTSTANDING,
            f"{loan.written_off_minor - loan.recovered_minor} is left to recover",
        )
    if _available(_account(ctx, loan.repayment_account_id)) < amount:
        refuse(Code.FUNDS_INSUFFICIENT)
    product = _product(ctx, loan.product_id)
    transfer_id = _transfer(
        ctx,
        f"ln:{loan.loan_id}:{request.payment_id}:r",
        loan.repayment_account_id,
        product.income_account_id,
        amount,
        loan.currency,
    )
    record = PaymentRecord(
        loan_id=loan.loan_id, payment_id=request.payment_id, kind="recovery", amount_minor=amount,
        penalty_minor=0, fee_minor=0, interest_minor=0, principal_minor=0,
        day=_today(ctx).isoformat(), height=ctx.block.height, tx_hash=ctx.tx.tx_hash,
        transfer_ids=(transfer_id,),
    )  # fmt: skip
    ctx.put_record(keys.payment(loan.loan_id, request.payment_id), record, event=EVENT_PAYMENT)
    recovered = replace(
        loan, recovered_minor=loan.recovered_minor + amount, payments=loan.payments + 1
    )
    if loan.status != Status.RECOVERED:
        recovered = _moved(ctx, recovered, Status.RECOVERED, f"{amount} recovered")
    return {"loan": _save(ctx, recovered), "payment": record.to_json(), "exists": False}


def remind(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """The keeper's reminder before a due day: one `reminder` event per instalment, which the
    notifier turns into a notice for the borrower (in the app and the event stream)."""
    parsed = parse_loan_action(args, instalment=True)
    loan_id, number = parsed["loan_id"], parsed["instalment"]
    loan = _loan(ctx, loan_id)
    _lender(ctx, loan)
    check_transition(loan.status, "collect")
    index = next((k for k, i in enumerate(loan.schedule) if i.number == number), None)
    if index is None:
        refuse(Code.INSTALMENT_NOT_FOUND)
    item = loan.schedule[index]
    mark = keys.reminded(loan_id, number)
    if ctx.get(mark) is not None:
        return {"reminded": False, "exists": True}
    if not ctx.block.time_ms < item.due_ms <= ctx.block.time_ms + limits.REMINDER_MS:
        refuse(Code.COLLECTION_NOT_DUE, "a reminder goes out in the days before the due day")
    amount = item.total_minor - loan.principal_paid[index] - loan.interest_paid[index]
    ctx.put(mark, {"due_ms": item.due_ms})
    ctx.emit(
        EVENT_REMINDER,
        loan_id=loan_id,
        borrower=loan.borrower,
        instalment=number,
        due_ms=item.due_ms,
        amount_minor=amount,
        currency=loan.currency,
    )
    return {"reminded": True, "exists": False}


def _prefetch(_tx: TxInfo, args: dict[str, Any]) -> list[str]:
    wanted: list[str] = []
    for field, key in (("loan_id", keys.loan), ("product_id", keys.product)):
        value = args.get(field) if type(args) is dict else None
        if type(value) is str and len(value) <= limits.ID_CHARS_MAX:
            wanted.append(key(value))
    return wanted


LENDING_CONTRACT = Contract(
    name=CONTRACT_NAME,
    version=CONTRACT_VERSION,
    methods={
        "set_lpr": set_lpr,
        "create_product": create_product,
        "approve_product": approve_product,
        "apply": apply,
        "review": review,
        "withdraw": withdraw,
        "disburse": disburse,
        "accrue": accrue,
        "collect": collect,
        "repay": repay,
        "default": default,
        "liquidate": liquidate,
        "write_off": write_off,
        "recover": recover,
        "remind": remind,
    },
    prefetch=_prefetch,
)

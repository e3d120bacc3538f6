"""Request parsing: the contract's JSON args in, a small immutable request out, or a refusal,
checked in the order of the method's precedence table (codes.py).  No state is read here;
`type(x) is int`, so a bool or a float is never a number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from zhijin.lending import limits
from zhijin.lending.calc import COMPONENTS
from zhijin.lending.codes import Code, refuse
from zhijin.lending.schedule import DayCount, Method

__all__ = [
    "ApplyRequest",
    "ProductRequest",
    "RepayRequest",
    "parse_apply",
    "parse_loan_action",
    "parse_lpr",
    "parse_product",
    "parse_product_approval",
    "parse_repay",
    "parse_review",
]

_ID = re.compile(limits.ID_PATTERN)
_ACCOUNT = re.compile(limits.ACCOUNT_ID_PATTERN)
_OFFICER = re.compile(limits.OFFICER_PATTERN)
_SHA256 = re.compile(limits.SHA256_PATTERN)
_CURRENCY = re.compile(limits.CURRENCY_PATTERN)
_BUCKET = re.compile(limits.BUCKET_NAME_PATTERN)
LPR_TENORS = ("1y", "5y")
OUTCOMES = ("approve", "refer", "decline")  # credit.policy.Outcome.ALL


def _args(
    args: object, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if type(args) is not dict or not required <= set(args) <= required | optional:
        refuse(Code.ARGS_INVALID, f"args are an object of {sorted(required)}")
    return args


def _text(pattern: re.Pattern[str], value: object, code: Code) -> str:
    if type(value) is not str or pattern.fullmatch(value) is None:
        refuse(code)
    return value


def _int(value: object, low: int, high: int, code: Code, what: str = "") -> int:
    if type(value) is not int or not low <= value <= high:
        refuse(code, f"{what} is an integer from {low} to {high}" if what else "")
    return value


def _did(value: object, code: Code) -> str:
    if type(value) is not str or not value.startswith("did:") or len(value) > limits.DID_CHARS_MAX:
        refuse(code, "a borrower is a DID")
    return value


# -- LPR -------------------------------------------------------------------------------------------


def parse_lpr(args: object) -> tuple[str, int, str]:
    data = _args(args, {"tenor", "rate_bps", "effective_day"})
    if data["tenor"] not in LPR_TENORS:
        refuse(Code.LPR_INVALID, "tenor is 1y or 5y")
    rate = _int(data["rate_bps"], 0, limits.LPR_BPS_MAX, Code.LPR_INVALID, "rate_bps")
    day = data["effective_day"]
    try:
        parsed = date.fromisoformat(day) if type(day) is str and len(day) == 10 else None
    except ValueError:
        parsed = None
    if parsed is None:
        refuse(Code.LPR_INVALID, "effective_day is YYYY-MM-DD")
    return str(data["tenor"]), rate, parsed.isoformat()


# -- products --------------------------------------------------------------------------------------

_PRODUCT_FIELDS = {
    "product_id", "officer", "currency", "lpr_tenor", "spread_bps", "term_months", "method",
    "day_count", "grace_days", "penalty_uplift_bps", "compound_overdue_interest",
    "late_fee_minor", "allocation_order", "min_amount_minor", "max_amount_minor",
    "auto_approval", "collateral_ratio_bps", "buckets", "default_after_days",
    "income_account_id",
}  # fmt: skip
_AUTO_FIELDS = {"min_score", "max_dti_bps", "max_amount_minor", "min_kyc_level"}


@dataclass(frozen=True, slots=True)
class ProductRequest:
    product_id: str
    officer: str
    terms: dict[str, Any]  # every product field but the id, the officer and the approval


def parse_product(args: object) -> ProductRequest:
    data = _args(args, _PRODUCT_FIELDS)
    product_id = _text(_ID, data["product_id"], Code.ID_INVALID)
    officer = _text(_OFFICER, data["officer"], Code.OFFICER_INVALID)
    bad = Code.PRODUCT_INVALID
    currency = _text(_CURRENCY, data["currency"], bad)
    if data["lpr_tenor"] not in LPR_TENORS:
        refuse(bad, "lpr_tenor is 1y or 5y")
    spread = _int(
        data["spread_bps"], limits.SPREAD_BPS_MIN, limits.SPREAD_BPS_MAX, bad, "spread_bps"
    )
    term = _int(data["term_months"], 1, limits.TERM_MONTHS_MAX, bad, "term_months")
    if data["method"] not in tuple(Method):
        refuse(bad, f"method is one of {[m.value for m in Method]}")
    if data["day_count"] not in tuple(DayCount):
        refuse(bad, f"day_count is one of {[d.value for d in DayCount]}")
    grace = _int(data["grace_days"], 0, limits.GRACE_DAYS_MAX, bad, "grace_days")
    if type(data["compound_overdue_interest"]) is not bool:
        refuse(bad, "compound_overdue_interest is true or false")
    fee = _int(data["late_fee_minor"], 0, limits.LATE_FEE_MINOR_MAX, bad, "late_fee_minor")
    low = _int(data["min_amount_minor"], 1, limits.AMOUNT_MINOR_MAX, bad, "min_amount_minor")
    high = _int(data["max_amount_minor"], low, limits.AMOUNT_MINOR_MAX, bad, "max_amount_minor")
    auto = data["auto_approval"]
    if type(auto) is not dict or set(auto) != _AUTO_FIELDS:
        refuse(bad, f"auto_approval is an object of {sorted(_AUTO_FIELDS)}")
    auto_terms = {
        "auto_min_score": _int(auto["min_score"], 0, limits.SCORE_MAX, bad, "min_score"),
        "auto_max_dti_bps": _int(auto["max_dti_bps"], 0, limits.DTI_BPS_MAX, bad, "max_dti_bps"),
        "auto_max_amount_minor": _int(
            auto["max_amount_minor"], 0, limits.AMOUNT_MINOR_MAX, bad, "max_amount_minor"
        ),
        "auto_min_kyc_level": _int(
            auto["min_kyc_level"], 0, limits.KYC_LEVEL_MAX, bad, "min_kyc_level"
        ),
    }
    ratio = _int(
        data["collateral_ratio_bps"],
        0,
        limits.COLLATERAL_RATIO_BPS_MAX,
        bad,
        "collateral_ratio_bps",
    )
    default_after = _int(
        data["default_after_days"],
        limits.DEFAULT_AFTER_DAYS_MIN,
        limits.DEFAULT_AFTER_DAYS_MAX,
        bad,
        "default_after_days",
    )
    income = _text(_ACCOUNT, data["income_account_id"], bad)
    uplift = data["penalty_uplift_bps"]
    if type(uplift) is not int or uplift > limits.PENALTY_UPLIFT_BPS_MAX:
        refuse(bad, f"penalty_uplift_bps is an integer up to {limits.PENALTY_UPLIFT_BPS_MAX}")
    if uplift < 0:
        refuse(Code.PENALTY_BELOW_CONTRACT_RATE)
    order = data["allocation_order"]
    if type(order) is not list or sorted(order) != sorted(COMPONENTS):
        refuse(Code.ALLOCATION_ORDER_INVALID)
    buckets = _buckets(data["buckets"], default_after)
    terms = {
        "currency": currency,
        "lpr_tenor": data["lpr_tenor"],
        "spread_bps": spread,
        "term_months": term,
        "method": data["method"],
        "day_count": data["day_count"],
        "grace_days": grace,
        "penalty_uplift_bps": uplift,
        "compound_overdue_interest": data["compound_overdue_interest"],
        "late_fee_minor": fee,
        "allocation_order": tuple(order),
        "min_amount_minor": low,
        "max_amount_minor": high,
        **auto_terms,
        "collateral_ratio_bps": ratio,
        "buckets": buckets,
        "default_after_days": default_after,
        "income_account_id": income,
    }
    return ProductRequest(product_id, officer, terms)


def _buckets(value: object, default_after: int) -> tuple[tuple[str, int], ...]:
    if type(value) is not list or not 1 <= len(value) <= limits.BUCKETS_MAX:
        refuse(Code.BUCKETS_INVALID, f"buckets are a list of 1-{limits.BUCKETS_MAX}")
    parsed: list[tuple[str, int]] = []
    for item in value:
        if type(item) is not dict or set(item) != {"name", "from_days"}:
            refuse(Code.BUCKETS_INVALID, 'a bucket is {"name", "from_days"}')
        if type(item["name"]) is not str or _BUCKET.fullmatch(item["name"]) is None:
            refuse(Code.BUCKETS_INVALID, "a bucket's name is like M1 or M3+")
        start = item["from_days"]
        if type(start) is not int or not 1 <= start <= limits.DEFAULT_AFTER_DAYS_MAX:
            refuse(Code.BUCKETS_INVALID, "from_days is a positive integer")
        if parsed and start <= parsed[-1][1]:
            refuse(Code.BUCKETS_INVALID, "buckets start at rising days")
        parsed.append((item["name"], start))
    if default_after < parsed[-1][1]:
        refuse(Code.BUCKETS_INVALID, "default comes no sooner than the last bucket")
    return tuple(parsed)


def parse_product_approval(args: object) -> tuple[str, str]:
    data = _args(args, {"product_id", "officer"})
    return (
        _text(_ID, data["product_id"], Code.ID_INVALID),
        _text(_OFFICER, data["officer"], Code.OFFICER_INVALID),
    )


# -- applications ----------------------------------------------------------------------------------

_DECISION_FIELDS = {"decision_id", "record_sha256", "outcome", "score", "dti_bps", "kyc_level"}


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    loan_id: str
    product_id: str
    borrower: str
    applied_by: str
    amount_minor: int
    decision_id: str
    decision_sha256: str
    outcome: str
    score: int
    dti_bps: int
    kyc_level: int
    repayment_account_id: str
    collateral_account_id: str | None
    collateral_minor: int


def parse_apply(args: object) -> ApplyRequest:
    data = _args(
        args,
        {"loan_id", "product_id", "borrower", "applied_by", "amount_minor", "decision",
         "repayment_account_id"},
        frozenset({"collateral_account_id", "collateral_minor"}),
    )  # fmt: skip
    loan_id = _text(_ID, data["loan_id"], Code.ID_INVALID)
    product_id = _text(_ID, data["product_id"], Code.ID_INVALID)
    borrower = _did(data["borrower"], Code.ID_INVALID)
    applied_by = _text(_OFFICER, data["applied_by"], Code.ID_INVALID)
    repayment = _text(_ACCOUNT, data["repayment_account_id"], Code.ID_INVALID)
    collateral_account = data.get("collateral_account_id")
    if collateral_account is not None:
        collateral_account = _text(_ACCOUNT, collateral_account, Code.ID_INVALID)
    decision = data["decision"]
    bad = Code.DECISION_INVALID
    if type(decision) is not dict or set(decision) != _DECISION_FIELDS:
        refuse(bad, f"decision is an object of {sorted(_DECISION_FIELDS)}")
    decision_id = _text(_ID, decision["decision_id"], bad)
    sha = _text(_SHA256, decision["record_sha256"], bad)
    if decision["outcome"] not in OUTCOMES:
        refuse(bad, f"outcome is one of {list(OUTCOMES)}")
    score = _int(decision["score"], 0, limits.SCORE_MAX, bad, "score")
    dti = _int(decision["dti_bps"], 0, limits.DTI_BPS_MAX, bad, "dti_bps")
    kyc = _int(decision["kyc_level"], 0, limits.KYC_LEVEL_MAX, bad, "kyc_level")
    amount = _int(data["amount_minor"], 1, limits.AMOUNT_MINOR_MAX, Code.AMOUNT_INVALID)
    collateral = data.get("collateral_minor", 0)
    collateral = _int(collateral, 0, limits.AMOUNT_MINOR_MAX, Code.AMOUNT_INVALID)
    if (collateral > 0) != (collateral_account is not None):
        refuse(Code.COLLATERAL_REQUIRED, "collateral is an account and a positive amount together")
    return ApplyRequest(
        loan_id, product_id, borrower, applied_by, amount, decision_id, sha,
        str(decision["outcome"]), score, dti, kyc, repayment, collateral_account, collateral,
    )  # fmt: skip


def parse_review(args: object) -> tuple[str, str, bool, str]:
    data = _args(args, {"loan_id", "officer", "approve", "reason"})
    loan_id = _text(_ID, data["loan_id"], Code.ID_INVALID)
    officer = _text(_OFFICER, data["officer"], Code.OFFICER_INVALID)
    if type(data["approve"]) is not bool:
        refuse(Code.ARGS_INVALID, "approve is true or false")
    reason = data["reason"]
    if type(reason) is not str or not 1 <= len(reason) <= limits.REASON_CHARS_MAX:
        refuse(Code.ARGS_INVALID, f"reason is 1-{limits.REASON_CHARS_MAX} characters")
    return loan_id, officer, data["approve"], reason


def parse_loan_action(
    args: object, *, officer: bool = False, instalment: bool = False
) -> dict[str, Any]:
    wanted = (
        {"loan_id"}
        | ({"officer"} if officer else set())
        | ({"instalment"} if instalment else set())
    )
    data = _args(args, wanted)
    parsed: dict[str, Any] = {"loan_id": _text(_ID, data["loan_id"], Code.ID_INVALID)}
    if instalment:
        parsed["instalment"] = _int(
            data["instalment"], 1, limits.TERM_MONTHS_MAX, Code.INSTALMENT_INVALID
        )
    if officer:
        parsed["officer"] = _text(_OFFICER, data["officer"], Code.OFFICER_INVALID)
    return parsed


@dataclass(frozen=True, slots=True)
class RepayRequest:
    loan_id: str
    payment_id: str
    amount_minor: int | None  # None: the full payoff
    mode: str  # "full" | "partial"
    then: str | None  # a partial repayment: "reamortise" | "shorten"


def parse_repay(args: object, *, recovery: bool = False) -> RepayRequest:
    if recovery:
        data = _args(args, {"loan_id", "payment_id", "amount_minor"})
    else:
        data = _args(args, {"loan_id", "payment_id", "mode"}, frozenset({"amount_minor", "then"}))
    loan_id = _text(_ID, data["loan_id"], Code.ID_INVALID)
    payment_id = _text(_ID, data["payment_id"], Code.ID_INVALID)
    amount = data.get("amount_minor")
    if amount is not None:
        amount = _int(amount, 1, limits.AMOUNT_MINOR_MAX, Code.AMOUNT_INVALID)
    if recovery:
        return RepayRequest(loan_id, payment_id, amount, "recovery", None)
    mode, then = data["mode"], data.get("then")
    if mode == "full" and then is None:
        return RepayRequest(loan_id, payment_id, amount, "full", None)
    if mode != "partial" or then not in ("reamortise", "shorten") or amount is None:
        refuse(Code.REPAY_MODE_INVALID)
    return RepayRequest(loan_id, payment_id, amount, "partial", str(then))

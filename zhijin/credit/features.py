"""Model features: what each model sees of an applicant, as one row of numbers.

A feature is a raw field or a ratio of them.  Categories enter as their index in the field's
category list (LightGBM splits them natively, optbinning bins them as categories); a missing
optional fact is NaN (its own bin in the scorecard, LightGBM's missing branch).  `feature_row`
is the scorer's hot path: plain Python over the frozen Applicant, no pandas.

Not features, ever: `personal_status_sex` and `foreign_worker` (collected for the fairness report
only; see applicant.py).  Age is a feature with a monotone constraint that the probability of
default never rises with age, so an older applicant is never scored down for being older
(Reg B, 12 CFR 1002.6(b)(2): an empirically derived system may use age if it never assigns an
elderly applicant a negative value).

Monotone constraints (LightGBM's `monotone_constraints`, +1: PD rises with the feature) are set
where the business meaning demands them and left free where the data shows no order:
- duration, amount, monthly burden, instalment share, debt-to-income, late repayments and their
  share: +1 (more to repay, or a worse record, is never safer);
- age, income, on-time repayments, months on the platform, inflows: -1 (a longer or better
  record, or more income, is never riskier);
- residence years, existing credits and dependants: free (German Credit shows no reliable order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from zhijin.credit.applicant import FIELDS_BY_NAME, Applicant

__all__ = ["FEATURES", "FEATURES_BY_NAME", "Feature", "feature_row", "feature_value"]

FeatureKind = Literal["numeric", "categorical"]
NAN = math.nan
FEN_PER_YUAN = 100


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    kind: FeatureKind
    fields: tuple[str, ...]  # the raw fields it is computed from (the reason names the first)
    monotone: int  # +1 PD non-decreasing in it, -1 non-increasing, 0 free
    label_zh: str
    label_en: str
    unit_zh: str = ""
    unit_en: str = ""


def _categorical(name: str) -> Feature:
    field = FIELDS_BY_NAME[name]
    return Feature(name, "categorical", (name,), 0, field.label_zh, field.label_en)


FEATURES: tuple[Feature, ...] = (
    _categorical("checking_status"),
    Feature("duration_months", "numeric", ("duration_months",), 1, "贷款期限", "Loan duration",
            "个月", "months"),
    _categorical("credit_history"),
    _categorical("purpose"),
    Feature("amount_yuan", "numeric", ("amount_minor",), 1, "贷款金额", "Loan amount", "元", "yuan"),
    Feature("monthly_burden_yuan", "numeric", ("amount_minor", "duration_months"), 1,
            "每月应还本金", "Principal due per month", "元", "yuan"),
    _categorical("savings"),
    _categorical("employment_length"),
    Feature("installment_rate", "numeric", ("installment_rate",), 1, "月供占可支配收入档位",
            "Instalment share of disposable income (band)", "档", ""),
    _categorical("other_debtors"),
    Feature("residence_years", "numeric", ("residence_years",), 0, "现住址居住年数",
            "Years at present residence", "年", "years"),
    _categorical("property"),
    Feature("age_years", "numeric", ("age_years",), -1, "年龄", "Age", "岁", "years"),
    _categorical("other_plans"),
    _categorical("housing"),
    Feature("existing_credits", "numeric", ("existing_credits",), 0, "在本机构现有借款笔数",
            "Existing credits at this lender", "笔", "credits"),
    _categorical("job"),
    Feature("dependants", "numeric", ("dependants",), 0, "需抚养人数",
            "People the applicant maintains", "人", "people"),
    Feature("telephone", "numeric", ("telephone",), 0, "登记电话",
            "Telephone registered in own name", "", ""),
    Feature("monthly_income_yuan", "numeric", ("monthly_income_minor",), -1, "月收入",
            "Monthly income", "元", "yuan"),
    Feature("debt_to_income_bps", "numeric", ("monthly_debt_minor", "monthly_income_minor"), 1,
            "月还款负担占收入比例", "Monthly debt payments as a share of income", "基点", "bp"),
    Feature("on_time_repayments", "numeric", ("on_time_repayments",), -1, "平台按时还款次数",
            "On-time repayments on the platform", "次", "repayments"),
    Feature("late_repayments", "numeric", ("late_repayments",), 1, "平台逾期还款次数",
            "Late repayments on the platform", "次", "repayments"),
    Feature("late_share_bps", "numeric", ("late_repayments", "on_time_repayments"), 1,
            "平台逾期还款占比", "Share of platform repayments made late", "基点", "bp"),
    Feature("months_on_platform", "numeric", ("months_on_platform",), -1, "在平台月数",
            "Months on the platform", "个月", "months"),
    Feature("inflow_yuan_90d", "numeric", ("inflow_minor_90d",), -1, "近 90 天资金流入",
            "Inflows over the last 90 days", "元", "yuan"),
)  # fmt: skip

FEATURES_BY_NAME: dict[str, Feature] = {feature.name: feature for feature in FEATURES}

_CATEGORY_INDEX: dict[str, dict[str, float]] = {
    name: {code: float(i) for i, code in enumerate(field.codes)}
    for name, field in FIELDS_BY_NAME.items()
    if field.kind == "category"
}


def _yuan(minor: int | None) -> float:
    return NAN if minor is None else minor / FEN_PER_YUAN


def _ratio_bps(numerator: int | None, denominator: int | None) -> float:
    if numerator is None or not denominator:
        return NAN
    return numerator * 10_000 / denominator


def _late_share_bps(late: int | None, on_time: int | None) -> float:
    if late is None or on_time is None or late + on_time == 0:
        return NAN
    return late * 10_000 / (late + on_time)


def _optional(value: int | None) -> float:
    return NAN if value is None else float(value)


def feature_value(applicant: Applicant, name: str) -> float:
    """One feature of the applicant (NaN when its facts are unknown)."""
    a = applicant
    match name:
        case "amount_yuan":
            return a.amount_minor / FEN_PER_YUAN
        case "monthly_burden_yuan":
            return a.amount_minor / FEN_PER_YUAN / a.duration_months
        case "telephone":
            return 1.0 if a.telephone else 0.0
        case "monthly_income_yuan":
            return _yuan(a.monthly_income_minor)
        case "inflow_yuan_90d":
            return _yuan(a.inflow_minor_90d)
        case "debt_to_income_bps":
            return _ratio_bps(a.monthly_debt_minor, a.monthly_income_minor)
        case "late_share_bps":
            return _late_share_bps(a.late_repayments, a.on_time_repayments)
    value = getattr(a, name)
    categories = _CATEGORY_INDEX.get(name)
    if categories is not None:
        return categories[value]
    return _optional(value)


def feature_row(applicant: Applicant, names: tuple[str, ...]) -> list[float]:
    """The named features of the applicant, in that order (a model's own feature list)."""
    return [feature_value(applicant, name) for name in names]

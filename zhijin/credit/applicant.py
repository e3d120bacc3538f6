"""The applicant's raw fields: what they mean, their bounds, and their parsing.

`FIELDS` is the one source of every field's type, range or categories, unit and labels: the
parser, the features, the reason texts, the CSV a member retrains on and the API's documentation
all read it.  The first twenty are the German Credit attributes (Hofmann, UCI) with readable
category codes instead of A11..A14; the last six are facts the platform itself knows about a
customer (income, debts, repayment behaviour), optional because a German Credit row or a
thin-file applicant (信用白户) has none of them.

Units: money is integer fen (CNY minor units, 1 元 = 100 fen), never a float.  The German Credit
amounts are Deutsche Mark; the dataset loader reads 1 DM as 1 元 (a scale convention, stated in
docs/credit.md, not an exchange rate), so the data's "200 DM" category bound reads "200 元".

Two fields are collected for fairness monitoring only and are never model features:
`personal_status_sex` (sex and marital status, which ECOA/Reg B and fair-lending practice forbid
as a credit factor) and `foreign_worker` (a national-origin proxy).  They are optional.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

from zhijin.chain.codec import canonical_trusted
from zhijin.chain.errors import ZhijinError

__all__ = [
    "AMOUNT_MINOR_MAX",
    "FIELDS",
    "FIELDS_BY_NAME",
    "Applicant",
    "Category",
    "Field",
    "FieldError",
    "InvalidApplicant",
    "applicant_digest",
    "parse_applicant",
]

# The largest loan amount and the largest money fact: 1 亿元 (10**10 fen) is far above any
# retail or small-business credit line, and far inside the chain's signed 64-bit integers.
AMOUNT_MINOR_MAX = 10**10
COUNT_MAX = 100_000  # repayment counters: ~8,000 years of monthly instalments
FIELD_ERRORS_MAX = 64  # one error per field at most, so a report is always short

Kind = Literal["int", "category", "bool"]


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    label_zh: str
    label_en: str


@dataclass(frozen=True, slots=True)
class Field:
    """One raw field: its kind and bounds (inclusive), unit, labels and categories."""

    name: str
    kind: Kind
    required: bool
    label_zh: str
    label_en: str
    unit: str = ""  # "fen", "months", "years", "count", "" for categories and flags
    minimum: int | None = None
    maximum: int | None = None
    categories: tuple[Category, ...] = ()

    def category(self, code: str) -> Category:
        for category in self.categories:
            if category.code == code:
                return category
        raise KeyError(f"{self.name}: no category {code!r}")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(category.code for category in self.categories)


def _c(code: str, label_zh: str, label_en: str) -> Category:
    return Category(code, label_zh, label_en)


FIELDS: tuple[Field, ...] = (
    Field(
        "checking_status", "category", True, "支票账户状况", "Checking account",
        categories=(
            _c("overdrawn", "支票账户透支（余额低于 0 元）", "Checking account overdrawn (below 0)"),
            _c("below_200", "支票账户余额低于 200 元", "Checking balance below 200"),
            _c("200_or_more", "支票账户余额 200 元及以上或工资代发满一年",
               "Checking balance 200 or more, or salary paid in for a year"),
            _c("no_account", "无支票账户", "No checking account"),
        ),
    ),
    Field("duration_months", "int", True, "贷款期限", "Loan duration", "months", 1, 360),
    Field(
        "credit_history", "category", True, "信用历史", "Credit history",
        categories=(
            _c("no_credits_or_all_paid", "从未借款或所有借款均已按时还清",
               "No credits taken, or all credits paid back duly"),
            _c("all_paid_this_bank", "在本机构的借款均已按时还清",
               "All credits at this lender paid back duly"),
            _c("existing_paid_duly", "现有借款至今按时还款", "Existing credits paid back duly so far"),
            _c("delayed_in_past", "过去曾有逾期还款", "Delays in paying back in the past"),
            _c("critical_or_other_credits", "关键账户或在其他机构有借款",
               "Critical account, or credits at other lenders"),
        ),
    ),
    Field(
        "purpose", "category", True, "贷款用途", "Purpose",
        categories=(
            _c("car_new", "购买新车", "New car"),
            _c("car_used", "购买二手车", "Used car"),
            _c("furniture", "家具或设备", "Furniture or equipment"),
            _c("radio_tv", "电视或音响", "Radio or television"),
            _c("appliances", "家用电器", "Domestic appliances"),
            _c("repairs", "维修", "Repairs"),
            _c("education", "教育", "Education"),
            _c("retraining", "职业培训", "Retraining"),
            _c("business", "经营", "Business"),
            _c("other", "其他用途", "Other purpose"),
        ),
    ),
    Field("amount_minor", "int", True, "贷款金额", "Loan amount", "fen", 1, AMOUNT_MINOR_MAX),
    Field(
        "savings", "category", True, "储蓄与债券", "Savings and bonds",
        categories=(
            _c("below_100", "储蓄低于 100 元", "Savings below 100"),
            _c("100_to_500", "储蓄 100 至 500 元", "Savings 100 to 500"),
            _c("500_to_1000", "储蓄 500 至 1000 元", "Savings 500 to 1,000"),
            _c("1000_or_more", "储蓄 1000 元及以上", "Savings 1,000 or more"),
            _c("unknown_or_none", "无储蓄账户或未知", "No savings account, or unknown"),
        ),
    ),
    Field(
        "employment_length", "category", True, "现工作年限", "Present employment",
        categories=(
            _c("unemployed", "无业", "Unemployed"),
            _c("below_1_year", "现工作不满 1 年", "Employed less than 1 year"),
            _c("1_to_4_years", "现工作 1 至 4 年", "Employed 1 to 4 years"),
            _c("4_to_7_years", "现工作 4 至 7 年", "Employed 4 to 7 years"),
            _c("7_years_or_more", "现工作 7 年及以上", "Employed 7 years or more"),
        ),
    ),
    # German Credit codes the instalment's share of disposable income in four bands, a larger
    # number meaning a larger share (the data's bad rate rises with it).
    Field("installment_rate", "int", True, "月供占可支配收入档位（1–4，越大占比越高）",
          "Instalment share of disposable income (band 1-4, higher is a larger share)", "", 1, 4),
    Field(
        "personal_status_sex", "category", False, "性别与婚姻状况（仅用于公平性监测）",
        "Sex and marital status (fairness monitoring only)",
        categories=(
            _c("male_divorced_separated", "男性，离异或分居", "Male, divorced or separated"),
            _c("female_divorced_separated_married", "女性，离异、分居或已婚",
               "Female, divorced, separated or married"),
            _c("male_single", "男性，单身", "Male, single"),
            _c("male_married_widowed", "男性，已婚或丧偶", "Male, married or widowed"),
            _c("female_single", "女性，单身", "Female, single"),
        ),
    ),
    Field(
        "other_debtors", "category", True, "其他债务人或担保人", "Other debtors or guarantors",
        categories=(
            _c("none", "无共同借款人或担保人", "No co-applicant or guarantor"),
            _c("co_applicant", "有共同借款人", "Co-applicant"),
            _c("guarantor", "有担保人", "Guarantor"),
        ),
    ),
    # German Credit top-codes this at 4 ("4 years or more"); larger values score like 4.
    Field("residence_years", "int", True, "现住址居住年数", "Years at present residence",
          "years", 0, 99),
    Field(
        "property", "category", True, "财产", "Property",
        categories=(
            _c("real_estate", "拥有不动产", "Real estate"),
            _c("savings_insurance", "住房储蓄协议或人寿保险",
               "Building society savings or life insurance"),
            _c("car_or_other", "汽车或其他财产", "Car or other property"),
            _c("none_known", "无已知财产", "No known property"),
        ),
    ),
    Field("age_years", "int", True, "年龄", "Age", "years", 18, 100),
    Field(
        "other_plans", "category", True, "其他分期计划", "Other instalment plans",
        categories=(
            _c("none", "无其他分期计划", "No other instalment plans"),
            _c("bank", "在其他银行有分期计划", "Instalment plans at other banks"),
            _c("stores", "在商户有分期计划", "Instalment plans at stores"),
        ),
    ),
    Field(
        "housing", "category", True, "住房", "Housing",
        categories=(
            _c("rent", "租房", "Rents"),
            _c("own", "自有住房", "Owns home"),
            _c("free", "免费居住", "Lives for free"),
        ),
    ),
    Field("existing_credits", "int", True, "在本机构现有借款笔数",
          "Existing credits at this lender", "count", 0, 99),
    Field(
        "job", "category", True, "职业", "Job",
        categories=(
            _c("unskilled_nonresident", "无业或非常住非技术人员",
               "Unemployed, or unskilled non-resident"),
            _c("unskilled_resident", "常住非技术人员", "Unskilled resident"),
            _c("skilled", "技术人员或职员", "Skilled employee or official"),
            _c("highly_qualified", "管理人员、自雇或高级专业人员",
               "Management, self-employed or highly qualified"),
        ),
    ),
    Field("dependants", "int", True, "需抚养人数", "People the applicant maintains",
          "count", 0, 20),
    Field("telephone", "bool", True, "登记电话", "Telephone registered in own name"),
    Field("foreign_worker", "bool", False, "外籍劳工（仅用于公平性监测）",
          "Foreign worker (fairness monitoring only)"),
    # Facts the platform knows; optional (None when unknown).
    Field("monthly_income_minor", "int", False, "月收入", "Monthly income", "fen",
          0, AMOUNT_MINOR_MAX),
    Field("monthly_debt_minor", "int", False, "月还款负担", "Monthly debt payments", "fen",
          0, AMOUNT_MINOR_MAX),
    Field("on_time_repayments", "int", False, "平台按时还款次数", "On-time repayments on the platform",
          "count", 0, COUNT_MAX),
    Field("late_repayments", "int", False, "平台逾期还款次数", "Late repayments on the platform",
          "count", 0, COUNT_MAX),
    Field("months_on_platform", "int", False, "在平台月数", "Months on the platform", "months",
          0, 1200),
    Field("inflow_minor_90d", "int", False, "近 90 天资金流入", "Inflows over the last 90 days",
          "fen", 0, AMOUNT_MINOR_MAX),
)  # fmt: skip

FIELDS_BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}


@dataclass(frozen=True, slots=True)
class Applicant:
    """A validated applicant: every field in range, categories by their codes, money in fen."""

    checking_status: str
    duration_months: int
    credit_history: str
    purpose: str
    amount_minor: int
    savings: str
    employment_length: str
    installment_rate: int
    personal_status_sex: str | None
    other_debtors: str
    residence_years: int
    property: str
    age_years: int
    other_plans: str
    housing: str
    existing_credits: int
    job: str
    dependants: int
    telephone: bool
    foreign_worker: bool | None
    monthly_income_minor: int | None = None
    monthly_debt_minor: int | None = None
    on_time_repayments: int | None = None
    late_repayments: int | None = None
    months_on_platform: int | None = None
    inflow_minor_90d: int | None = None

    def to_json(self) -> dict[str, object]:
        """The fields as JSON, an absent optional field left out (so adding one later keeps
        every earlier applicant's digest)."""
        out: dict[str, object] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                out[item.name] = value
        return out


# The dataclass and FIELDS must name the same fields in the same order: FIELDS drives parsing,
# the dataclass is what the rest of the package holds.
if tuple(f.name for f in fields(Applicant)) != tuple(f.name for f in FIELDS):
    raise RuntimeError("Applicant and FIELDS name different fields")


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: str  # missing | wrong_type | out_of_range | unknown_category | unknown_field
    message_zh: str
    message_en: str

    def to_json(self) -> dict[str, str]:
        return {
            "field": self.field,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


class InvalidApplicant(ZhijinError):
    """The applicant's fields are wrong; `details["errors"]` names each wrong field."""

    code = "invalid_applicant"
    http_status = 422

    def __init__(self, errors: tuple[FieldError, ...]) -> None:
        self.errors = errors
        summary = "; ".join(f"{error.field}: {error.message_en}" for error in errors[:5])
        super().__init__(
            message=f"invalid applicant: {summary}",
            errors=[error.to_json() for error in errors],
        )


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_int(field: Field, value: object) -> FieldError | None:
    # `type(x) is int`: a bool is not a number and a float (or a string of digits) is refused,
    # so money never arrives as a float.
    if type(value) is not int:
        hint_zh = "（金额以分为单位）" if field.unit == "fen" else ""
        hint_en = " (money is an integer number of fen)" if field.unit == "fen" else ""
        return FieldError(
            field.name,
            "wrong_type",
            f"{field.label_zh}必须是整数{hint_zh}，收到 {_type_name(value)}",
            f"{field.label_en} must be an integer{hint_en}, got {_type_name(value)}",
        )
    assert field.minimum is not None and field.maximum is not None
    if not field.minimum <= value <= field.maximum:
        return FieldError(
            field.name,
            "out_of_range",
            f"{field.label_zh}必须在 {field.minimum} 到 {field.maximum} 之间，收到 {value}",
            f"{field.label_en} must be from {field.minimum} to {field.maximum}, got {value}",
        )
    return None


def _check_category(field: Field, value: object) -> FieldError | None:
    if type(value) is not str:
        return FieldError(
            field.name,
            "wrong_type",
            f"{field.label_zh}必须是类别代码字符串，收到 {_type_name(value)}",
            f"{field.label_en} must be a category code (a string), got {_type_name(value)}",
        )
    if value not in _CODES[field.name]:
        allowed = ", ".join(field.codes)
        shown = value[:40]
        return FieldError(
            field.name,
            "unknown_category",
            f"{field.label_zh}的类别 {shown!r} 未知，可选：{allowed}",
            f"{field.label_en}: unknown category {shown!r}; allowed: {allowed}",
        )
    return None


def _check_bool(field: Field, value: object) -> FieldError | None:
    if type(value) is not bool:
        return FieldError(
            field.name,
            "wrong_type",
            f"{field.label_zh}必须是 true 或 false，收到 {_type_name(value)}",
            f"{field.label_en} must be true or false, got {_type_name(value)}",
        )
    return None


_CHECKS = {"int": _check_int, "category": _check_category, "bool": _check_bool}
# Each category field's codes as a set, built once: the check runs on every decision.
_CODES = {field.name: frozenset(field.codes) for field in FIELDS if field.kind == "category"}


def _field_error(field: Field, raw: Mapping[str, object]) -> FieldError | None:
    value = raw.get(field.name)
    if value is None:
        if not field.required:
            return None
        return FieldError(
            field.name, "missing", f"缺少必填项：{field.label_zh}", f"{field.label_en} is required"
        )
    return _CHECKS[field.kind](field, value)


def _unknown_fields(raw: Mapping[str, object]) -> list[FieldError]:
    unknown = sorted(str(key)[:64] for key in raw if key not in FIELDS_BY_NAME)
    return [
        FieldError(name, "unknown_field", f"未知字段：{name}", f"unknown field: {name}")
        for name in unknown[: FIELD_ERRORS_MAX - len(FIELDS)]
    ]


def parse_applicant(raw: Mapping[str, object]) -> Applicant:
    """Validate raw fields (JSON-decoded) into an Applicant, or raise InvalidApplicant listing
    every wrong field at once (missing, wrong type, out of range, unknown category or field)."""
    if not isinstance(raw, Mapping):
        raise InvalidApplicant(
            (
                FieldError(
                    "",
                    "wrong_type",
                    f"申请人数据必须是对象，收到 {_type_name(raw)}",
                    f"the applicant must be an object, got {_type_name(raw)}",
                ),
            )
        )
    errors = [error for field in FIELDS if (error := _field_error(field, raw)) is not None]
    errors.extend(_unknown_fields(raw))
    if errors:
        raise InvalidApplicant(tuple(errors))
    return Applicant(**{field.name: raw.get(field.name) for field in FIELDS})  # type: ignore[arg-type]


def applicant_digest(applicant: Applicant) -> str:
    """SHA-256 (hex) of the applicant's canonical JSON (RFC 8785): the decision record's input
    digest, so a replay can prove it scored the same fields."""
    # parse_applicant validated every value (integers in bounds, flags, codes from fixed lists):
    # the validation pass of `canonical` would only repeat it; the bytes are the same.
    return hashlib.sha256(canonical_trusted(applicant.to_json())).hexdigest()

"""Fraud rules as versioned data: what a rule is (`RuleBody`), how it is checked when it is
saved (`check_rule`: the expression parses and type-checks against the feature names, and the
rule's own test cases give the answers it says they give), and the tier policy (`TierPolicy`,
read from `data/tiers-*.json`).

A rule is never checked at scoring time: the engine holds `CompiledRule`s, each built once by
`check_rule` when its version was saved or loaded.  A rule's version is an integer per rule id,
stored with its canonical body and SHA-256 (store.py); the first versions ship in
`data/rules-*.json`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zhijin.chain.codec import canonical
from zhijin.chain.errors import ZhijinError
from zhijin.risk import limits
from zhijin.risk.expressions import CompiledExpression, ExpressionInvalid, compile_expression
from zhijin.risk.features import FEATURES, FeaturePolicy, ReferenceRates

__all__ = [
    "CompiledRule",
    "RuleBody",
    "RuleTestFailed",
    "TierPolicy",
    "check_rule",
    "default_policy",
    "default_rules",
    "rule_sha256",
]

DEFAULT_RULES_FILE = "rules-2026-12.json"
DEFAULT_TIERS_FILE = "tiers-2026-12.json"
Value = int | bool | str | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RuleTest(_Strict):
    """One case a rule must answer as stated: the features given (the rest missing)."""

    features: dict[str, Value] = Field(max_length=len(FEATURES))
    expect: bool


class RuleBody(_Strict):
    id: str = Field(pattern=limits.RULE_ID_PATTERN)
    enabled: bool = True  # a version with enabled false retires the rule
    expression: str = Field(min_length=1, max_length=limits.EXPRESSION_CHARS_MAX)
    score_bps: int = Field(ge=0, le=10_000)  # added to the score when the rule matches
    tier: Literal["none", "hold", "refuse"] = "none"  # the least tier a match forces
    reason_zh: str = Field(min_length=2, max_length=200)  # what the customer reads
    reason_en: str = Field(min_length=2, max_length=200)
    rationale: str = Field(min_length=limits.REASON_CHARS_MIN, max_length=limits.REASON_CHARS_MAX)
    # Not strict here only: a JSON array reaches the API as a list, stored as a tuple.
    tests: tuple[RuleTest, ...] = Field(
        min_length=limits.RULE_TESTS_MIN, max_length=limits.RULE_TESTS_MAX, strict=False
    )


class RuleTestFailed(ZhijinError):
    """A rule's own test case (or its feature values) disagrees with the rule."""

    code = "rule_test_failed"
    http_status = 422


@dataclass(frozen=True)
class CompiledRule:
    body: RuleBody
    version: int
    expression: CompiledExpression

    @property
    def label(self) -> str:
        return f"{self.body.id}@{self.version}"


def rule_sha256(body: RuleBody) -> str:
    return hashlib.sha256(canonical(body.model_dump(mode="json"))).hexdigest()


def _test_row(test: RuleTest, index: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FEATURES)
    for name, value in test.features.items():
        kind = FEATURES.get(name)
        if kind is None:
            raise RuleTestFailed(
                message=f"test {index}: no feature is named {name!r}", test=index, feature=name
            )
        base = kind.rstrip("?")
        expected_type = {"int": int, "bool": bool, "str": str}[base]
        if value is None:
            if not kind.endswith("?"):
                raise RuleTestFailed(
                    message=f"test {index}: {name} is never missing", test=index, feature=name
                )
        elif type(value) is not expected_type:
            raise RuleTestFailed(
                message=f"test {index}: {name} is {base}", test=index, feature=name
            )
        row[name] = value
    return row


def check_rule(body: RuleBody, version: int) -> CompiledRule:
    """The save-time check: the expression parses and type-checks, every test case names real
    features with values of their types and gets the answer it expects, and at least one case
    matches (a rule that can never fire is a mistake).  Raises ExpressionInvalid or
    RuleTestFailed."""
    compiled = compile_expression(body.expression)
    if not any(test.expect for test in body.tests):
        raise RuleTestFailed(message="no test case expects the rule to match", test=-1)
    for index, test in enumerate(body.tests):
        row = _test_row(test, index)
        try:
            answer = compiled.matches(row)
        except Exception as error:  # simpleeval's own refusals (a value out of its range)
            raise RuleTestFailed(
                message=f"test {index}: the expression failed: {error}", test=index
            ) from None
        if answer != test.expect:
            raise RuleTestFailed(
                message=f"test {index}: expected {test.expect}, the rule answered {answer}",
                test=index,
            )
    return CompiledRule(body=body, version=version, expression=compiled)


class _Reference(_Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    exponent: int = Field(ge=0, le=4)
    rates: dict[str, str]

    @field_validator("rates")
    @classmethod
    def _decimal_rates(cls, rates: dict[str, str]) -> dict[str, str]:
        for currency, rate in rates.items():
            if len(currency) != 3 or not currency.isupper():
                raise ValueError(f"{currency!r} is not an ISO 4217 code")
            value = Decimal(rate)
            if not value.is_finite() or value <= 0:
                raise ValueError(f"the rate of {currency} must be a positive decimal")
        return rates


class _Weights(_Strict):
    anomaly_bps: int = Field(ge=0, le=10_000)  # the anomaly score's share of the score
    supervised_bps: int = Field(ge=0, le=10_000)


class TierPolicy(_Strict):
    """The tiers as data: score thresholds, what a hold and a refusal mean, the fail-open /
    fail-closed line for an engine that cannot decide, and the feature parameters."""

    version: str = Field(min_length=1, max_length=64)
    reference: _Reference
    hold_from_bps: int = Field(ge=1, le=10_000)
    refuse_from_bps: int = Field(ge=1, le=10_000)
    hold_timeout_ms: int = Field(gt=0, le=366 * 24 * 3600 * 1000)
    step_up_after_refusal_ms: int = Field(gt=0, le=30 * 24 * 3600 * 1000)
    # A refusal the customer answers with a fresh second factor becomes a hold for review.
    refuse_after_step_up_becomes: Literal["hold", "refuse"]
    fail_closed_new_payee_above_ref_minor: int = Field(ge=0)
    night_from_hour: int = Field(ge=0, le=23)
    night_to_hour: int = Field(ge=0, le=23)
    round_unit_minor: int = Field(gt=0)
    anomaly_warm_after: int = Field(ge=1, le=100_000)  # payments learned before it counts
    anomaly_reason_from_bps: int = Field(ge=0, le=10_000)
    supervised_reason_from_bps: int = Field(ge=0, le=10_000)
    weights: _Weights

    def model_post_init(self, _context: Any) -> None:
        if self.refuse_from_bps <= self.hold_from_bps:
            raise ValueError("refuse_from_bps must be above hold_from_bps")

    def reference_rates(self) -> ReferenceRates:
        return ReferenceRates(
            currency=self.reference.currency,
            exponent=self.reference.exponent,
            rates={k: Decimal(v) for k, v in self.reference.rates.items()},
        )

    def feature_policy(self) -> FeaturePolicy:
        return FeaturePolicy(
            reference=self.reference_rates(),
            night_from_hour=self.night_from_hour,
            night_to_hour=self.night_to_hour,
            round_unit_minor=self.round_unit_minor,
        )


def _data(name: str) -> str:
    return resources.files("zhijin.risk").joinpath("data", name).read_text("utf-8")


@cache
def default_policy() -> TierPolicy:
    return TierPolicy.model_validate_json(_data(DEFAULT_TIERS_FILE))


class _RuleFile(_Strict):
    version: str
    rules: tuple[RuleBody, ...] = Field(min_length=1, max_length=limits.RULES_ACTIVE_MAX)


@cache
def default_rules() -> tuple[RuleBody, ...]:
    """The rules the release ships (each checked like a saved rule when it is seeded)."""
    return _RuleFile.model_validate_json(_data(DEFAULT_RULES_FILE)).rules


def reasons_of(rule: CompiledRule) -> Mapping[str, str]:
    return {"zh_CN": rule.body.reason_zh, "en": rule.body.reason_en}


__all__ += ["ExpressionInvalid", "reasons_of"]

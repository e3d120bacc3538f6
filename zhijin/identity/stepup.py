"""Step-up (dynamic) authorisation: a versioned policy, held as data, that looks at a risky
action's context and answers allow, step_up (a fresh second factor first) or deny.

A policy is JSON:

    {"version": "2025-06-01", "fresh_mfa_ms": 120000, "utc_offset_minutes": 480,
     "reference": {"currency": "CNY", "exponent": 2, "rates": {"USD": "7.3", "JPY": "0.05"}},
     "rules": [{"id": "large_transfer", "actions": ["payment.transfer"],
                "when": {"field": "amount_ref_minor", "op": "gt", "value": 5000000},
                "outcome": "step_up", "reason": "transfer above 50,000.00 CNY"}]}

Amounts differ in meaning by currency (5,000,000 minor units are 50,000.00 CNY, 5,000,000 JPY
or 5,000.000 KWD), so thresholds are written in one reference currency: `amount_ref_minor` is
the amount in the reference currency's minor units, converted at the policy's own rates (how
many reference units one unit of that currency is worth, as decimal strings) and rounded up
(ROUND_CEILING), so a converted amount is never understated.  The rates are risk equivalents,
versioned with the rules, not market quotes: a compliance officer sets them with the policy.
A currency without a rate has no `amount_ref_minor`, so amount rules fail closed on it (the
default policy steps such payments up and does not deny them).  `amount_minor` and `currency`
stay available for rules that are about one currency.  The `reference` key is optional, so
policies stored before it existed still parse; a rule on a `*_ref_minor` fact needs it.

What a customer really moves is more than one transfer: a payment split into many small ones
(in one batch, or in many requests) must meet the same rules as the whole.  So a payment is
judged per payee (the request's total to that payee: `amount_ref_minor`) and cumulatively, over
the sliding window `limits.STEP_UP_WINDOW_MS` (24 h) of durable counters (counters.py), this
request included: `payee_24h_ref_minor` (everything to this payee) and `total_24h_ref_minor`
(everything to anyone).  A policy stored before these facts existed, one that names neither,
is loaded with them defaulted (`load_stored_policy`, below).  The sums are lower bounds: they count the currencies the policy has a
rate for (a payment in another currency is stepped up on its own, its `amount_ref_minor` being
missing).  A batch gives one context per payee; `evaluate_all` takes the most severe answer.

Conditions are `{"field", "op", "value"}` leaves combined by `{"all": [...]}`, `{"any": [...]}`
and `{"not": {...}}`.  A leaf whose field is unknown for this request (None) matches unless it
says `"if_missing": false`: risk checks fail closed, so a caller that forgets to pass the
device or the payee gets the stricter answer, never the looser one.

The decision is the most severe outcome of all matching rules (deny > step_up > allow), with
every matching rule's reason, and names the policy version so a later review knows which rules
applied.  A reason is one sentence, or `{"zh_CN": ..., "en": ...}`: the person reads it in their
language (the problem's detail); `reasons` keeps "rule_id: English sentence" for programs.  `enforce` turns it into an exception, accepting a second factor checked within the
policy's `fresh_mfa_ms` as satisfying step_up.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Context, Decimal
from typing import Any

from zhijin.identity import limits
from zhijin.identity.errors import StepUpRequired
from zhijin.platform.errors import Forbidden, InvalidInput
from zhijin.platform.i18n import LOCALES

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_STEP_UP_POLICY",
    "Cause",
    "Decision",
    "GeoPoint",
    "MovedAmount",
    "Outcome",
    "ReferenceCurrency",
    "RiskContext",
    "StepUpPolicy",
    "cause_of",
    "distance_km",
    "enforce",
    "evaluate",
    "evaluate_all",
    "load_stored_policy",
    "parse_policy",
    "permits",
    "screening_amount",
    "screening_total",
]

_EARTH_RADIUS_KM = 6371.0
_MS_PER_HOUR = 3_600_000


class Outcome(enum.IntEnum):
    ALLOW = 0
    STEP_UP = 1
    DENY = 2


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A location in micro-degrees (integers, so it serialises canonically)."""

    lat_e6: int
    lon_e6: int


def distance_km(a: GeoPoint, b: GeoPoint) -> int:
    """Great-circle distance (haversine), rounded down.  Floats are fine here: no money."""
    lat1, lon1 = math.radians(a.lat_e6 / 1e6), math.radians(a.lon_e6 / 1e6)
    lat2, lon2 = math.radians(b.lat_e6 / 1e6), math.radians(b.lon_e6 / 1e6)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return int(2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))))


_CURRENCY = re.compile(r"[A-Z]{3}")
_RATE = re.compile(
    rf"[0-9]{{1,{limits.STEP_UP_RATE_DIGITS_MAX}}}(\.[0-9]{{1,{limits.STEP_UP_RATE_DIGITS_MAX}}})?"
)
# Exact for any amount below 2^63 times any rate the policy accepts (19 + 24 digits).
_EXACT = Context(prec=64)


@dataclass(frozen=True, slots=True)
class MovedAmount:
    """An amount moved in one currency (a sum of payments, or one payment)."""

    currency: str
    exponent: int  # the currency's minor-unit exponent, as the accounts hold it
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ReferenceCurrency:
    """The currency a policy's thresholds are in, and its risk-equivalent rates."""

    currency: str
    exponent: int
    rates: Mapping[str, Decimal]  # reference units per one unit of the keyed currency

    def convert(self, amount_minor: int, currency: str, exponent: int) -> int | None:
        """`amount_minor` of `currency` (with `exponent` decimals) in reference minor units,
        rounded up; None when the policy has no rate for the currency."""
        if currency == self.currency:
            rate = Decimal(1)
        elif currency in self.rates:
            rate = self.rates[currency]
        else:
            return None
        scaled = _EXACT.multiply(Decimal(amount_minor), rate).scaleb(
            self.exponent - exponent, _EXACT
        )
        return int(scaled.to_integral_value(rounding=ROUND_CEILING, context=_EXACT))

    def total(self, moved: tuple[MovedAmount, ...]) -> int:
        """The sum of `moved` in reference minor units, counting the currencies with a rate
        (a lower bound: an unpriced amount adds nothing)."""
        converted = (self.convert(m.amount_minor, m.currency, m.exponent) for m in moved)
        return sum(amount for amount in converted if amount is not None)


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the policy may look at.  None means "not known for this request"."""

    action: str
    now_ms: int
    amount_minor: int | None = None
    currency: str | None = None
    amount_exponent: int | None = None  # the account's minor-unit exponent for `currency`
    payee_known: bool | None = None
    device_known: bool | None = None
    location: GeoPoint | None = None
    last_location: GeoPoint | None = None
    last_login_ms: int | None = None
    # Within the last STEP_UP_WINDOW_MS, this request included: to this payee, and to anyone.
    moved_to_payee: tuple[MovedAmount, ...] | None = None
    moved_overall: tuple[MovedAmount, ...] | None = None

    def amount_in(self, reference: ReferenceCurrency | None) -> int | None:
        if (
            reference is None
            or self.amount_minor is None
            or self.currency is None
            or self.amount_exponent is None
        ):
            return None
        return reference.convert(self.amount_minor, self.currency, self.amount_exponent)

    def facts(self, utc_offset_minutes: int, reference: ReferenceCurrency | None) -> dict[str, Any]:
        distance = (
            None
            if self.location is None or self.last_location is None
            else distance_km(self.location, self.last_location)
        )
        speed = None
        if distance is not None and self.last_login_ms is not None:
            hours_ms = max(self.now_ms - self.last_login_ms, 60_000)  # at least a minute apart
            speed = distance * _MS_PER_HOUR // hours_ms
        local_ms = self.now_ms + utc_offset_minutes * 60_000
        return {
            "action": self.action,
            "amount_minor": self.amount_minor,
            "amount_ref_minor": self.amount_in(reference),
            "payee_24h_ref_minor": _total(reference, self.moved_to_payee),
            "total_24h_ref_minor": _total(reference, self.moved_overall),
            "currency": self.currency,
            "payee_known": self.payee_known,
            "device_known": self.device_known,
            "distance_km": distance,
            "speed_kmh": speed,
            "local_hour": (local_ms // _MS_PER_HOUR) % 24,
        }


def _total(
    reference: ReferenceCurrency | None, moved: tuple[MovedAmount, ...] | None
) -> int | None:
    return None if reference is None or moved is None else reference.total(moved)


_FIELDS = frozenset(
    {
        "action",
        "amount_minor",
        "amount_ref_minor",
        "payee_24h_ref_minor",
        "total_24h_ref_minor",
        "currency",
        "payee_known",
        "device_known",
        "distance_km",
        "speed_kmh",
        "local_hour",
    }
)
_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in"})


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    actions: tuple[str, ...]  # "*" matches every action
    when: Mapping[str, Any]
    outcome: Outcome
    reason: str  # the English sentence (in Decision.reasons, as programs have always read it)
    reason_by_locale: tuple[tuple[str, str], ...] = ()  # (locale, sentence) for people


@dataclass(frozen=True, slots=True)
class StepUpPolicy:
    version: str
    fresh_mfa_ms: int
    utc_offset_minutes: int
    rules: tuple[Rule, ...]
    reference: ReferenceCurrency | None = None


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a rule matched, for a page to explain in the user's language: the rule's id as a
    stable `code` and the thresholds its condition names (`params`), e.g. ("new_payee",
    {"threshold_minor": 100000, "currency": "CNY", "exponent": 2})."""

    code: str
    outcome: Outcome
    params: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "outcome": self.outcome.name.lower(),
            "params": dict(self.params),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]  # "rule_id: reason" for every matching rule
    policy_version: str
    fresh_mfa_ms: int
    # The matching rules' sentences per locale, in the order of `reasons`.
    reasons_by_locale: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def localized_reasons(self) -> dict[str, list[str]]:
        """{locale: sentences}: what a problem's detail shows a person (problems.py)."""
        return {locale: list(sentences) for locale, sentences in self.reasons_by_locale}

    causes: tuple[Cause, ...] = ()  # the same rules, structured (`Cause`)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.name.lower(),
            "reasons": list(self.reasons),
            "policy_version": self.policy_version,
        }


def _check_condition(node: Any, depth: int) -> None:
    if depth > limits.STEP_UP_CONDITION_DEPTH_MAX or not isinstance(node, dict):
        raise InvalidInput("invalid_policy", "a condition is an object, nested at most 4 deep")
    if set(node) == {"all"} or set(node) == {"any"}:
        children = next(iter(node.values()))
        if not isinstance(children, list) or not children:
            raise InvalidInput("invalid_policy", "all/any take a non-empty list")
        for child in children:
            _check_condition(child, depth + 1)
        return
    if set(node) == {"not"}:
        _check_condition(node["not"], depth + 1)
        return
    if not {"field", "op", "value"} <= set(node) <= {"field", "op", "value", "if_missing"}:
        raise InvalidInput("invalid_policy", f"bad condition keys {sorted(node)}")
    if node["field"] not in _FIELDS or node["op"] not in _OPS:
        raise InvalidInput("invalid_policy", f"unknown field or op in {node}")
    if isinstance(node["value"], float) or (node["op"] == "in") != isinstance(node["value"], list):
        raise InvalidInput(
            "invalid_policy", "values are integers, strings or booleans; in takes a list"
        )


def _parse_reference(data: Any) -> ReferenceCurrency:
    if not isinstance(data, dict) or set(data) != {"currency", "exponent", "rates"}:
        raise InvalidInput("invalid_policy", "reference has exactly currency, exponent, rates")
    currency, exponent, raw_rates = data["currency"], data["exponent"], data["rates"]
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidInput("invalid_policy", "reference currency is an ISO 4217 code")
    if type(exponent) is not int or not 0 <= exponent <= limits.STEP_UP_EXPONENT_MAX:
        raise InvalidInput(
            "invalid_policy", f"reference exponent is 0 to {limits.STEP_UP_EXPONENT_MAX}"
        )
    if not isinstance(raw_rates, dict) or len(raw_rates) > limits.STEP_UP_RATES_MAX:
        raise InvalidInput(
            "invalid_policy", f"rates map at most {limits.STEP_UP_RATES_MAX} currencies"
        )
    rates: dict[str, Decimal] = {}
    for code, text in raw_rates.items():
        if not _CURRENCY.fullmatch(code) or code == currency:
            raise InvalidInput(
                "invalid_policy", f"rate {code!r}: an ISO 4217 code other than the reference"
            )
        if not isinstance(text, str) or not _RATE.fullmatch(text) or Decimal(text) == 0:
            raise InvalidInput(
                "invalid_policy", f'rate {code!r}: a positive decimal string such as "7.25"'
            )
        rates[code] = Decimal(text)
    return ReferenceCurrency(currency=currency, exponent=exponent, rates=rates)


def _fields(node: Mapping[str, Any]) -> set[str]:
    if "field" in node:
        return {node["field"]}
    if "not" in node:
        return _fields(node["not"])
    return set().union(*(_fields(child) for child in next(iter(node.values()))))


def _parse_reason(rule_id: object, raw: object) -> dict[str, str]:
    """A rule's reason: one sentence for every language, or {"zh_CN": ..., "en": ...} (the
    sentence a person reads in each; whoever sets a threshold writes it in both)."""
    if isinstance(raw, str) and 0 < len(raw) <= limits.STEP_UP_REASON_CHARS_MAX:
        return dict.fromkeys(LOCALES, raw)
    if (
        isinstance(raw, dict)
        and set(raw) == set(LOCALES)
        and all(
            isinstance(v, str) and 0 < len(v) <= limits.STEP_UP_REASON_CHARS_MAX
            for v in raw.values()
        )
    ):
        return {locale: raw[locale] for locale in LOCALES}
    raise InvalidInput(
        "invalid_policy",
        f"rule {rule_id!r}: reason is a sentence or an object of {', '.join(LOCALES)} sentences"
        f" of 1 to {limits.STEP_UP_REASON_CHARS_MAX} characters",
    )


def parse_policy(data: Mapping[str, Any]) -> StepUpPolicy:
    """Validate a policy document; InvalidInput(code=invalid_policy) names the first problem."""
    required = {"version", "fresh_mfa_ms", "utc_offset_minutes", "rules"}
    if not required <= set(data) <= required | {"reference"}:
        raise InvalidInput(
            "invalid_policy", f"a policy has the keys {sorted(required)} and optionally reference"
        )
    reference = None if "reference" not in data else _parse_reference(data["reference"])
    version, fresh, offset, raw_rules = (
        data[k] for k in ("version", "fresh_mfa_ms", "utc_offset_minutes", "rules")
    )
    if not isinstance(version, str) or not version:
        raise InvalidInput("invalid_policy", "version is a non-empty string")
    if type(fresh) is not int or not 0 < fresh <= limits.STEP_UP_FRESH_MS_MAX:
        raise InvalidInput("invalid_policy", "fresh_mfa_ms is a positive integer up to 15 minutes")
    if type(offset) is not int or not -14 * 60 <= offset <= 14 * 60:
        raise InvalidInput("invalid_policy", "utc_offset_minutes is between -840 and 840")
    if not isinstance(raw_rules, list) or len(raw_rules) > limits.STEP_UP_RULES_MAX:
        raise InvalidInput(
            "invalid_policy", f"rules is a list of at most {limits.STEP_UP_RULES_MAX}"
        )
    rules = []
    seen: set[str] = set()
    for raw in raw_rules:
        if not isinstance(raw, dict) or set(raw) != {"id", "actions", "when", "outcome", "reason"}:
            raise InvalidInput("invalid_policy", "a rule has id, actions, when, outcome, reason")
        if raw["id"] in seen or raw["outcome"] not in ("step_up", "deny"):
            raise InvalidInput("invalid_policy", f"rule {raw['id']!r}: duplicate id or bad outcome")
        if not isinstance(raw["actions"], list) or not all(
            isinstance(a, str) for a in raw["actions"]
        ):
            raise InvalidInput("invalid_policy", f"rule {raw['id']!r}: actions is a list of names")
        by_locale = _parse_reason(raw["id"], raw["reason"])
        _check_condition(raw["when"], 1)
        in_reference = sorted(f for f in _fields(raw["when"]) if f.endswith("_ref_minor"))
        if reference is None and in_reference:
            raise InvalidInput(
                "invalid_policy",
                f"rule {raw['id']!r} uses {', '.join(in_reference)}: give a reference",
            )
        seen.add(raw["id"])
        rules.append(
            Rule(
                id=str(raw["id"]),
                actions=tuple(raw["actions"]),
                when=raw["when"],
                outcome=Outcome[raw["outcome"].upper()],
                reason=by_locale["en"],
                reason_by_locale=tuple(by_locale.items()),
            )
        )
    return StepUpPolicy(
        version=version,
        fresh_mfa_ms=fresh,
        utc_offset_minutes=offset,
        rules=tuple(rules),
        reference=reference,
    )


# The cumulative facts, and the actions whose contexts carry them (payments/stepup.py).
_WINDOW_FACTS = frozenset({"payee_24h_ref_minor", "total_24h_ref_minor"})
_WINDOW_ACTIONS = frozenset({"payment.transfer", "*"})
# Marks the version of a policy loaded with the window facts defaulted, so a decision's
# `policy_version` tells a later review which rules applied.
WINDOW_DEFAULTED_SUFFIX = "+24h"


def load_stored_policy(data: Mapping[str, Any]) -> StepUpPolicy:
    """A stored policy as it is enforced: parsed, and, if it names neither 24 h fact (it was
    written before they existed), with them defaulted the way the default policy has them.

    Each threshold above a per-payee amount (`amount_ref_minor` "gt"/"gte") of a payment rule
    then also applies to the 24 h sum, with the same value and `if_missing`: the payee's sum in
    a rule about the payee (one that tests `payee_known`), everyone's otherwise.  So a split
    payment meets an old policy's thresholds as a whole, and nothing else changes (a negated
    threshold is left as written: widening "not above" would loosen it).  A policy that names
    either fact is taken as written; stored policies are never rewritten (no migration).
    """
    policy = parse_policy(data)
    if any(_WINDOW_FACTS & _fields(rule.when) for rule in policy.rules):
        return policy
    rules = tuple(_with_window_facts(rule) for rule in policy.rules)
    if rules == policy.rules:
        return policy
    return replace(policy, version=policy.version + WINDOW_DEFAULTED_SUFFIX, rules=rules)


def _with_window_facts(rule: Rule) -> Rule:
    if not _WINDOW_ACTIONS & set(rule.actions):
        return rule
    fact = "payee_24h_ref_minor" if "payee_known" in _fields(rule.when) else "total_24h_ref_minor"
    return replace(rule, when=_widen(rule.when, fact))


def _widen(node: Mapping[str, Any], fact: str) -> Mapping[str, Any]:
    if "all" in node or "any" in node:
        ((key, children),) = node.items()
        return {key: [_widen(child, fact) for child in children]}
    if "not" in node or node["field"] != "amount_ref_minor" or node["op"] not in ("gt", "gte"):
        return node
    return {"any": [node, {**node, "field": fact}]}


def _matches(node: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    if "all" in node:
        return all(_matches(child, facts) for child in node["all"])
    if "any" in node:
        return any(_matches(child, facts) for child in node["any"])
    if "not" in node:
        return not _matches(node["not"], facts)
    actual = facts[node["field"]]
    if actual is None:
        return bool(node.get("if_missing", True))
    expected, op = node["value"], node["op"]
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if op == "in":
        return actual in expected
    if type(actual) is not int or type(expected) is not int:
        return bool(node.get("if_missing", True))  # an ordering on non-integers: treat as unknown
    return {
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


def screening_amount(
    policy: StepUpPolicy, *, amount_minor: int, currency: str, exponent: int
) -> int | None:
    """The amount a caller compares with its "too small to ask" floor: in the policy's
    reference minor units when it has a reference (None without a rate for the currency, so
    the caller asks), as given when it has none (a policy from before references)."""
    if policy.reference is None:
        return amount_minor
    return policy.reference.convert(amount_minor, currency, exponent)


def screening_total(policy: StepUpPolicy, moved: tuple[MovedAmount, ...]) -> int | None:
    """`screening_amount` of a sum over currencies: None when any part has no rate."""
    total = 0
    for part in moved:
        amount = screening_amount(
            policy, amount_minor=part.amount_minor, currency=part.currency, exponent=part.exponent
        )
        if amount is None:
            return None
        total += amount
    return total


# Condition fields whose values a page shows as a threshold, and the parameter each becomes.
_AMOUNT_FIELDS = frozenset({"amount_ref_minor", "payee_24h_ref_minor", "total_24h_ref_minor"})
_LIMIT_PARAMS = {"distance_km": "distance_km", "speed_kmh": "speed_kmh"}


def _leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "all" in node or "any" in node:
        return [leaf for child in node.get("all", node.get("any", [])) for leaf in _leaves(child)]
    if "not" in node:
        return []  # a negated threshold is not one a page can state plainly
    return [node]


def cause_of(rule: Rule, policy: StepUpPolicy, context: RiskContext) -> Cause:
    """The structured reason of a matching rule: the smallest amount threshold it names (in
    the reference currency's minor units, or the payment's own for `amount_minor`), the
    distance, speed or local hours it names."""
    params: dict[str, Any] = {}
    amounts: list[int] = []
    for leaf in _leaves(rule.when):
        field, value = leaf["field"], leaf["value"]
        if field in _AMOUNT_FIELDS and type(value) is int and policy.reference is not None:
            amounts.append(value)
            params["currency"] = policy.reference.currency
            params["exponent"] = policy.reference.exponent
        elif field == "amount_minor" and type(value) is int and "currency" not in params:
            amounts.append(value)
            params["currency"] = context.currency
            params["exponent"] = context.amount_exponent
        elif field in _LIMIT_PARAMS and type(value) is int:
            params[_LIMIT_PARAMS[field]] = value
        elif field == "local_hour" and isinstance(value, list):
            params["local_hours"] = sorted(v for v in value if type(v) is int)
    if amounts:
        params["threshold_minor"] = min(amounts)
    return Cause(code=rule.id, outcome=rule.outcome, params=params)


def evaluate(policy: StepUpPolicy, context: RiskContext) -> Decision:
    facts = context.facts(policy.utc_offset_minutes, policy.reference)
    outcome = Outcome.ALLOW
    matched: list[Rule] = []
    causes: list[Cause] = []
    for rule in policy.rules:
        if "*" not in rule.actions and context.action not in rule.actions:
            continue
        if _matches(rule.when, facts):
            outcome = max(outcome, rule.outcome)
            matched.append(rule)
            causes.append(cause_of(rule, policy, context))
    return Decision(
        outcome=outcome,
        reasons=tuple(f"{rule.id}: {rule.reason}" for rule in matched),
        policy_version=policy.version,
        fresh_mfa_ms=policy.fresh_mfa_ms,
        reasons_by_locale=tuple(
            (locale, tuple(dict(rule.reason_by_locale)[locale] for rule in matched))
            for locale in LOCALES
        ),
        causes=tuple(causes),
    )


def evaluate_all(policy: StepUpPolicy, contexts: tuple[RiskContext, ...]) -> Decision:
    """One decision for a request with several contexts (a batch's payees): the most severe
    outcome, with every matching reason once."""
    outcome = Outcome.ALLOW
    # reason -> its sentence per locale; a dict keeps them ordered and each once
    reasons: dict[str, tuple[str, ...]] = {}
    causes: dict[str, Cause] = {}  # one per rule (the first context's parameters)
    for context in contexts:
        decision = evaluate(policy, context)
        outcome = max(outcome, decision.outcome)
        for index, reason in enumerate(decision.reasons):
            reasons.setdefault(
                reason, tuple(sentences[index] for _, sentences in decision.reasons_by_locale)
            )
        for cause in decision.causes:
            causes.setdefault(cause.code, cause)
    return Decision(
        outcome=outcome,
        reasons=tuple(reasons),
        reasons_by_locale=tuple(
            (locale, tuple(sentences[position] for sentences in reasons.values()))
            for position, locale in enumerate(LOCALES)
        ),
        policy_version=policy.version,
        fresh_mfa_ms=policy.fresh_mfa_ms,
        causes=tuple(causes.values()),
    )


def permits(decision: Decision, *, mfa_at_ms: int | None, now_ms: int) -> bool:
    """Whether the action may go ahead now (what `enforce` checks, without raising)."""
    if decision.outcome is Outcome.DENY:
        return False
    if decision.outcome is Outcome.STEP_UP:
        return mfa_at_ms is not None and 0 <= now_ms - mfa_at_ms <= decision.fresh_mfa_ms
    return True


def enforce(decision: Decision, *, mfa_at_ms: int | None, now_ms: int) -> None:
    """Raise unless the action may go ahead now."""
    if decision.outcome is Outcome.DENY:
        raise Forbidden(
            "denied_by_policy",
            "this action is refused by the risk policy",
            reasons=list(decision.reasons),
            reasons_by_locale=decision.localized_reasons(),
            reason_codes=[cause.to_json() for cause in decision.causes],
            policy_version=decision.policy_version,
        )
    if not permits(decision, mfa_at_ms=mfa_at_ms, now_ms=now_ms):
        raise StepUpRequired(
            message="confirm this action with a fresh authenticator code",
            reasons=list(decision.reasons),
            reasons_by_locale=decision.localized_reasons(),
            reason_codes=[cause.to_json() for cause in decision.causes],
            policy_version=decision.policy_version,
        )


DEFAULT_POLICY: Mapping[str, Any] = {
    "version": "2026-12-02.2",  # .2: each reason in zh-CN and English
    "fresh_mfa_ms": 2 * 60 * 1000,
    "utc_offset_minutes": 8 * 60,  # China Standard Time, no daylight saving
    # Risk equivalents in CNY, set a little above market so foreign amounts are never
    # understated; a compliance officer revises them with the policy (PUT /identity/policy).
    "reference": {
        "currency": "CNY",
        "exponent": 2,
        "rates": {
            "AUD": "4.8",
            "CAD": "5.3",
            "CHF": "9.1",
            "EUR": "8.5",
            "GBP": "9.8",
            "HKD": "0.94",
            "JPY": "0.05",
            "KRW": "0.0054",
            "MOP": "0.91",
            "SGD": "5.6",
            "USD": "7.3",
        },
    },
    "rules": [
        {
            "id": "transfer_over_limit",
            "actions": ["payment.transfer"],
            # Over 24 h, so that no split gets under it.  A currency without a rate steps up
            # (below) rather than being refused outright.
            "when": {
                "any": [
                    {
                        "field": "amount_ref_minor",
                        "op": "gt",
                        "value": 100_000_000,
                        "if_missing": False,
                    },
                    {
                        "field": "total_24h_ref_minor",
                        "op": "gt",
                        "value": 100_000_000,
                        "if_missing": False,
                    },
                ]
            },
            "outcome": "deny",
            "reason": {
                "zh_CN": "24 小时内付款超过 ¥1,000,000.00（或等值外币）须到网点办理",
                "en": "payments above CN¥1,000,000.00 or its equivalent in 24 h go through a "
                "branch",
            },
        },
        {
            "id": "large_transfer",
            "actions": ["payment.transfer"],
            # Cumulative, the norm for 大额 step-up: 51 payments of 999.99 are one of 50,999.49.
            "when": {
                "any": [
                    {"field": "amount_ref_minor", "op": "gt", "value": 5_000_000},
                    {"field": "total_24h_ref_minor", "op": "gt", "value": 5_000_000},
                ]
            },
            "outcome": "step_up",
            "reason": {
                "zh_CN": "24 小时内付款超过 ¥50,000.00（或等值外币）",
                "en": "payments above CN¥50,000.00 or its equivalent in 24 h",
            },
        },
        {
            "id": "new_payee",
            "actions": ["payment.transfer"],
            "when": {
                "all": [
                    {"field": "payee_known", "op": "eq", "value": False},
                    {
                        "any": [
                            {"field": "amount_ref_minor", "op": "gt", "value": 100_000},
                            {"field": "payee_24h_ref_minor", "op": "gt", "value": 100_000},
                        ]
                    },
                ]
            },
            "outcome": "step_up",
            "reason": {
                "zh_CN": "24 小时内向新收款人付款超过 ¥1,000.00（或等值外币）",
                "en": "payments above CN¥1,000.00 or its equivalent in 24 h to a new payee",
            },
        },
        {
            "id": "night_transfer",
            "actions": ["payment.transfer"],
            "when": {
                "all": [
                    {"field": "local_hour", "op": "in", "value": [0, 1, 2, 3, 4, 5]},
                    {
                        "any": [
                            {"field": "amount_ref_minor", "op": "gt", "value": 1_000_000},
                            {"field": "total_24h_ref_minor", "op": "gt", "value": 1_000_000},
                        ]
                    },
                ]
            },
            "outcome": "step_up",
            "reason": {
                "zh_CN": "在 0:00 至 6:00 之间付款，且 24 小时内超过 ¥10,000.00（或等值外币）",
                "en": "a payment between midnight and 6:00 with more than CN¥10,000.00 or its "
                "equivalent in 24 h",
            },
        },
        {
            "id": "new_device",
            "actions": ["*"],
            "when": {"field": "device_known", "op": "eq", "value": False},
            "outcome": "step_up",
            "reason": {"zh_CN": "首次使用此设备", "en": "first use of this device"},
        },
        {
            "id": "far_from_last_login",
            "actions": ["login", "payment.transfer"],
            "when": {"field": "distance_km", "op": "gt", "value": 500, "if_missing": False},
            "outcome": "step_up",
            "reason": {
                "zh_CN": "距上次登录地点超过 500 公里",
                "en": "more than 500 km from the last login",
            },
        },
        {
            "id": "impossible_travel",
            "actions": ["*"],
            "when": {"field": "speed_kmh", "op": "gt", "value": 1_000, "if_missing": False},
            "outcome": "deny",
            "reason": {
                "zh_CN": "自上次登录以来的移动速度超过客机",
                "en": "faster than an airliner since the last login",
            },
        },
    ],
}


# The default policy is data too: parse it at import, so a typo in it fails at once.
DEFAULT_STEP_UP_POLICY = parse_policy(DEFAULT_POLICY)

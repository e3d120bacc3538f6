"""Step-up policy: data in, decision out, enforcement with a fresh second factor."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from zhijin.identity.errors import StepUpRequired
from zhijin.identity.stepup import (
    DEFAULT_POLICY,
    DEFAULT_STEP_UP_POLICY,
    GeoPoint,
    MovedAmount,
    Outcome,
    RiskContext,
    distance_km,
    enforce,
    evaluate,
    evaluate_all,
    load_stored_policy,
    parse_policy,
    permits,
    screening_total,
)
from zhijin.platform.errors import Forbidden, InvalidInput

NOON_CST_MS = 1_750_046_400_000  # 2025-06-16 04:00 UTC = 12:00 in Beijing
BEIJING = GeoPoint(39_904_200, 116_407_400)
SHANGHAI = GeoPoint(31_230_400, 121_473_700)
TIANJIN = GeoPoint(39_084_200, 117_200_900)


def transfer(**kwargs: Any) -> RiskContext:
    base: dict[str, Any] = {
        "action": "payment.transfer",
        "now_ms": NOON_CST_MS,
        "amount_minor": 10_000,
        "currency": "CNY",
        "amount_exponent": 2,
        "payee_known": True,
        "device_known": True,
    }
    fields = {**base, **kwargs}
    # A payment with no history: the 24 h sums are the payment itself.
    own = ()
    if None not in (fields["amount_minor"], fields["currency"], fields["amount_exponent"]):
        own = (MovedAmount(fields["currency"], fields["amount_exponent"], fields["amount_minor"]),)
    fields.setdefault("moved_to_payee", own)
    fields.setdefault("moved_overall", own)
    return RiskContext(**fields)


def rule_ids(context: RiskContext) -> set[str]:
    return {r.split(":")[0] for r in evaluate(DEFAULT_STEP_UP_POLICY, context).reasons}


def test_distance() -> None:
    assert 1_050 <= distance_km(BEIJING, SHANGHAI) <= 1_080
    assert distance_km(BEIJING, BEIJING) == 0


def test_small_known_transfer_is_allowed() -> None:
    decision = evaluate(DEFAULT_STEP_UP_POLICY, transfer())
    assert decision.outcome is Outcome.ALLOW and decision.reasons == ()
    assert decision.policy_version == DEFAULT_POLICY["version"]


@pytest.mark.parametrize(
    ("context", "outcome", "rules"),
    [
        (transfer(amount_minor=5_000_001), Outcome.STEP_UP, {"large_transfer"}),
        (
            transfer(amount_minor=100_000_001),
            Outcome.DENY,
            {"transfer_over_limit", "large_transfer"},
        ),
        (transfer(payee_known=False, amount_minor=200_000), Outcome.STEP_UP, {"new_payee"}),
        (transfer(payee_known=False, amount_minor=50_000), Outcome.ALLOW, set()),
        (transfer(device_known=False), Outcome.STEP_UP, {"new_device"}),
        # 02:00 in Beijing, 20,000.00: a night transfer.
        (
            transfer(now_ms=NOON_CST_MS - 10 * 3_600_000, amount_minor=2_000_000),
            Outcome.STEP_UP,
            {"night_transfer"},
        ),
        # Unknown device or payee counts as risky: the policy fails closed.
        (transfer(device_known=None), Outcome.STEP_UP, {"new_device"}),
        (transfer(payee_known=None, amount_minor=200_000), Outcome.STEP_UP, {"new_payee"}),
    ],
)
def test_transfer_rules(context: RiskContext, outcome: Outcome, rules: set[str]) -> None:
    decision = evaluate(DEFAULT_STEP_UP_POLICY, context)
    assert decision.outcome is outcome
    assert rule_ids(context) == rules


def test_login_far_from_last_login_and_impossible_travel() -> None:
    near = RiskContext(
        action="login",
        now_ms=NOON_CST_MS,
        device_known=True,
        location=TIANJIN,
        last_location=BEIJING,
        last_login_ms=NOON_CST_MS - 3_600_000,
    )
    assert evaluate(DEFAULT_STEP_UP_POLICY, near).outcome is Outcome.ALLOW
    # Beijing to Shanghai in 6 hours: far, but possible -> step up.
    far = RiskContext(
        action="login",
        now_ms=NOON_CST_MS,
        device_known=True,
        location=SHANGHAI,
        last_location=BEIJING,
        last_login_ms=NOON_CST_MS - 6 * 3_600_000,
    )
    assert rule_ids(far) == {"far_from_last_login"}
    # ... in 30 minutes: faster than an airliner -> deny.
    teleport = RiskContext(
        action="login",
        now_ms=NOON_CST_MS,
        device_known=True,
        location=SHANGHAI,
        last_location=BEIJING,
        last_login_ms=NOON_CST_MS - 30 * 60_000,
    )
    assert evaluate(DEFAULT_STEP_UP_POLICY, teleport).outcome is Outcome.DENY
    # First login ever: no last location, so the distance rules stay quiet (if_missing=false).
    first = RiskContext(action="login", now_ms=NOON_CST_MS, device_known=True, location=SHANGHAI)
    assert evaluate(DEFAULT_STEP_UP_POLICY, first).outcome is Outcome.ALLOW


def test_enforce() -> None:
    step_up = evaluate(DEFAULT_STEP_UP_POLICY, transfer(amount_minor=6_000_000))
    with pytest.raises(StepUpRequired) as caught:
        enforce(step_up, mfa_at_ms=None, now_ms=NOON_CST_MS)
    assert caught.value.details["reasons"] and caught.value.details["policy_version"]
    with pytest.raises(StepUpRequired):  # a TOTP from 10 minutes ago is not fresh
        enforce(step_up, mfa_at_ms=NOON_CST_MS - 600_000, now_ms=NOON_CST_MS)
    enforce(step_up, mfa_at_ms=NOON_CST_MS - 30_000, now_ms=NOON_CST_MS)
    deny = evaluate(DEFAULT_STEP_UP_POLICY, transfer(amount_minor=200_000_000))
    with pytest.raises(Forbidden) as refused:
        enforce(deny, mfa_at_ms=NOON_CST_MS, now_ms=NOON_CST_MS)  # no TOTP lifts a deny
    assert refused.value.code == "denied_by_policy"


def test_policy_is_versioned_data() -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    body["version"] = "2025-07-01.1"
    for leaf in body["rules"][1]["when"]["any"]:  # lower the large-transfer threshold
        leaf["value"] = 1_000_000
    stricter = parse_policy(body)
    context = transfer(amount_minor=2_000_000)
    assert evaluate(DEFAULT_STEP_UP_POLICY, context).outcome is Outcome.ALLOW
    decision = evaluate(stricter, context)
    assert decision.outcome is Outcome.STEP_UP and decision.policy_version == "2025-07-01.1"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("version"),
        lambda p: p.update(fresh_mfa_ms=0),
        lambda p: p.update(fresh_mfa_ms=10**9),
        lambda p: p["rules"][0].update(outcome="allow"),
        lambda p: p["rules"][0].update(id=p["rules"][1]["id"]),
        lambda p: p["rules"][0]["when"]["any"][0].update(field="password"),
        lambda p: p["rules"][0]["when"]["any"][0].update(op="regex"),
        lambda p: p["rules"][0]["when"]["any"][0].update(value=1.5),
        lambda p: p["rules"][0].update(when={"all": []}),
        lambda p: p["rules"][0].update(
            when={
                "not": {
                    "not": {"not": {"not": {"not": {"field": "action", "op": "eq", "value": "x"}}}}
                }
            }
        ),
        lambda p: p.update(rules=[p["rules"][0]] * 65),
        lambda p: p.update(extra=True),
    ],
)
def test_invalid_policies_are_refused(mutate: Any) -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    mutate(body)
    with pytest.raises(InvalidInput) as caught:
        parse_policy(body)
    assert caught.value.code == "invalid_policy"


# -- thresholds in a reference currency ---------------------------------------------------------
def ref_amount(amount_minor: int, currency: str, exponent: int | None) -> int | None:
    context = transfer(amount_minor=amount_minor, currency=currency, amount_exponent=exponent)
    return context.amount_in(DEFAULT_STEP_UP_POLICY.reference)


def test_amounts_convert_into_the_reference_currency_rounding_up() -> None:
    assert ref_amount(12_345, "CNY", 2) == 12_345
    assert ref_amount(700_000, "USD", 2) == 5_110_000  # 7,000.00 USD at 7.3
    assert ref_amount(200_000, "JPY", 0) == 1_000_000  # 200,000 JPY at 0.05: 10,000.00 CNY
    assert ref_amount(1, "JPY", 0) == 5
    assert ref_amount(1, "KRW", 0) == 1  # 0.0054 CNY rounds up to one fen, never to zero
    assert ref_amount(3, "KRW", 0) == 2  # 1.62 fen
    assert ref_amount(100, "THB", 2) is None  # no rate: amount rules fail closed
    assert ref_amount(100, "USD", None) is None  # exponent unknown: the same


def test_reference_conversion_is_exact_at_the_largest_amounts_and_rates() -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    body["reference"] = {
        "currency": "KWD",
        "exponent": 3,
        "rates": {"VND": "0.000000000001", "XYZ": "999999999999.999999999999"},
    }
    reference = parse_policy(body).reference
    assert reference is not None
    top = 2**63 - 1
    assert reference.convert(top, "XYZ", 0) == -(-top * (10**24 - 1) // 10**9)
    assert reference.convert(1, "VND", 0) == 1  # 10^-9 minor units, rounded up
    assert reference.convert(top, "VND", 0) == -(-top // 10**9)


@pytest.mark.parametrize(
    ("amount", "currency", "outcome", "rules"),
    [
        (700_000, "USD", Outcome.STEP_UP, {"large_transfer"}),
        (600_000, "USD", Outcome.ALLOW, set()),  # 43,800.00 CNY
        (900_000, "JPY", Outcome.ALLOW, set()),  # 45,000.00 CNY
        (20_000_000, "JPY", Outcome.STEP_UP, {"large_transfer"}),  # 1,000,000.00 CNY exactly
        (20_000_001, "JPY", Outcome.DENY, {"transfer_over_limit", "large_transfer"}),
        # No rate: every amount rule that may step up does; the deny rule does not guess.
        (200_000, "THB", Outcome.STEP_UP, {"large_transfer"}),
    ],
)
def test_default_thresholds_apply_in_cny_whatever_the_currency(
    amount: int, currency: str, outcome: Outcome, rules: set[str]
) -> None:
    exponent = 0 if currency == "JPY" else 2
    context = transfer(amount_minor=amount, currency=currency, amount_exponent=exponent)
    assert evaluate(DEFAULT_STEP_UP_POLICY, context).outcome is outcome
    assert rule_ids(context) == rules


def test_a_policy_without_a_reference_still_parses_but_cannot_use_reference_amounts() -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    del body["reference"]
    with pytest.raises(InvalidInput) as caught:
        parse_policy(body)
    assert "amount_ref_minor" in caught.value.message
    for rule in body["rules"]:
        if rule["id"] == "large_transfer":
            rule["when"] = {"field": "amount_minor", "op": "gt", "value": 5_000_000}
    body["rules"] = [r for r in body["rules"] if "amount_ref_minor" not in repr(r["when"])]
    legacy = parse_policy(body)
    assert legacy.reference is None
    context = transfer(amount_minor=5_000_001, currency="JPY", amount_exponent=0)
    assert evaluate(legacy, context).outcome is Outcome.STEP_UP  # as written: minor units


@pytest.mark.parametrize(
    "reference",
    [
        None,
        [],
        {"currency": "CNY", "exponent": 2},
        {"currency": "cny", "exponent": 2, "rates": {}},
        {"currency": "CNY\n", "exponent": 2, "rates": {}},
        {"currency": "CNY", "exponent": 5, "rates": {}},
        {"currency": "CNY", "exponent": True, "rates": {}},
        {"currency": "CNY", "exponent": 2, "rates": {"CNY": "1"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": 7.3}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "7,3"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "-7.3"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "0.000"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "1e3"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "7.3\n"}},
        {"currency": "CNY", "exponent": 2, "rates": {"USD": "1" * 13}},
        {"currency": "CNY", "exponent": 2, "rates": {}, "x": 1},
        {"currency": "CNY", "exponent": 2, "rates": {"USDX": "7.3"}},
        {
            "currency": "CNY",
            "exponent": 2,
            "rates": {f"{a}{b}{c}": "1" for a in "ABC" for b in "ABCDEFGHIJ" for c in "ABCDEFGHIJ"},
        },
    ],
)
def test_invalid_references_are_refused(reference: Any) -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    body["reference"] = reference
    with pytest.raises(InvalidInput) as caught:
        parse_policy(body)
    assert caught.value.code == "invalid_policy"


# -- cumulative amounts: a payment split into small ones ---------------------------------------
def cny(amount_minor: int) -> tuple[MovedAmount, ...]:
    return (MovedAmount("CNY", 2, amount_minor),)


@pytest.mark.parametrize(
    ("kwargs", "outcome", "rules"),
    [
        # 999.99 now, 50,999.49 to a new payee in 24 h: both step-up rules see the total.
        (
            {
                "amount_minor": 99_999,
                "payee_known": False,
                "moved_to_payee": cny(5_099_949),
                "moved_overall": cny(5_099_949),
            },
            Outcome.STEP_UP,
            {"new_payee", "large_transfer"},
        ),
        # 999.99 now, 1,999.98 to this new payee in 24 h.
        (
            {"amount_minor": 99_999, "payee_known": False, "moved_to_payee": cny(199_998)},
            Outcome.STEP_UP,
            {"new_payee"},
        ),
        # 999.99 to each of many payees: the overall total steps up.
        (
            {
                "amount_minor": 99_999,
                "moved_to_payee": cny(99_999),
                "moved_overall": cny(5_099_949),
            },
            Outcome.STEP_UP,
            {"large_transfer"},
        ),
        # Over 1,000,000.00 in 24 h is refused however small this payment.
        (
            {"amount_minor": 100, "moved_overall": cny(100_000_001)},
            Outcome.DENY,
            {"transfer_over_limit", "large_transfer"},
        ),
        # At night the 24 h total counts too.
        (
            {
                "now_ms": NOON_CST_MS - 10 * 3_600_000,
                "amount_minor": 100,
                "moved_overall": cny(1_000_001),
            },
            Outcome.STEP_UP,
            {"night_transfer"},
        ),
        # A caller that does not pass the sums gets the stricter answer.
        ({"moved_to_payee": None, "payee_known": False}, Outcome.STEP_UP, {"new_payee"}),
        ({"moved_overall": None}, Outcome.STEP_UP, {"large_transfer"}),
    ],
)
def test_cumulative_amounts_meet_the_same_rules(
    kwargs: dict[str, Any], outcome: Outcome, rules: set[str]
) -> None:
    context = transfer(**kwargs)
    assert evaluate(DEFAULT_STEP_UP_POLICY, context).outcome is outcome
    assert rule_ids(context) == rules


def test_sums_convert_each_currency_and_count_only_priced_ones() -> None:
    reference = DEFAULT_STEP_UP_POLICY.reference
    assert reference is not None
    moved = (
        MovedAmount("CNY", 2, 100),
        MovedAmount("USD", 2, 100),  # 7.30 CNY
        MovedAmount("THB", 2, 10**12),  # no rate: adds nothing (a lower bound)
    )
    assert reference.total(moved) == 100 + 730
    assert screening_total(DEFAULT_STEP_UP_POLICY, moved[:2]) == 830
    assert screening_total(DEFAULT_STEP_UP_POLICY, moved) is None  # the floor asks the policy
    # The unpriced part does not hide what the priced ones add up to.
    context = transfer(
        amount_minor=100, moved_overall=(MovedAmount("CNY", 2, 100_000_001), moved[2])
    )
    assert evaluate(DEFAULT_STEP_UP_POLICY, context).outcome is Outcome.DENY


def test_a_request_with_several_payees_takes_the_most_severe_answer() -> None:
    contexts = (
        transfer(),
        transfer(payee_known=False, amount_minor=200_000, moved_to_payee=cny(200_000)),
        transfer(payee_known=False, amount_minor=300_000, moved_to_payee=cny(300_000)),
    )
    decision = evaluate_all(DEFAULT_STEP_UP_POLICY, contexts)
    assert decision.outcome is Outcome.STEP_UP
    assert [r.split(":")[0] for r in decision.reasons] == ["new_payee"]  # once
    assert not permits(decision, mfa_at_ms=None, now_ms=NOON_CST_MS)
    assert permits(decision, mfa_at_ms=NOON_CST_MS - 1_000, now_ms=NOON_CST_MS)
    assert evaluate_all(DEFAULT_STEP_UP_POLICY, ()).outcome is Outcome.ALLOW


def test_cumulative_facts_need_a_reference_in_the_policy() -> None:
    body = copy.deepcopy(dict(DEFAULT_POLICY))
    del body["reference"]
    body["rules"] = [
        {
            "id": "daily",
            "actions": ["payment.transfer"],
            "when": {"field": "total_24h_ref_minor", "op": "gt", "value": 1},
            "outcome": "step_up",
            "reason": "x",
        }
    ]
    with pytest.raises(InvalidInput) as caught:
        parse_policy(body)
    assert "total_24h_ref_minor" in caught.value.message


# The default policy as it was stored before the 24 h facts existed (version 2026-11-23.1): a
# compliance officer's PUT /policy of those days is exactly such a body.
_PAYMENT = ["payment.transfer"]
PRE_WINDOW_POLICY: dict[str, Any] = {
    "version": "2026-11-23.1",
    "fresh_mfa_ms": 120_000,
    "utc_offset_minutes": 480,
    "reference": copy.deepcopy(DEFAULT_POLICY["reference"]),
    "rules": [
        {
            "id": "transfer_over_limit",
            "actions": _PAYMENT,
            "when": {
                "field": "amount_ref_minor",
                "op": "gt",
                "value": 100_000_000,
                "if_missing": False,
            },
            "outcome": "deny",
            "reason": "transfers above 1,000,000.00 CNY",
        },
        {
            "id": "large_transfer",
            "actions": _PAYMENT,
            "when": {"field": "amount_ref_minor", "op": "gt", "value": 5_000_000},
            "outcome": "step_up",
            "reason": "transfer above 50,000.00 CNY",
        },
        {
            "id": "new_payee",
            "actions": _PAYMENT,
            "when": {
                "all": [
                    {"field": "payee_known", "op": "eq", "value": False},
                    {"field": "amount_ref_minor", "op": "gt", "value": 100_000},
                ]
            },
            "outcome": "step_up",
            "reason": "first transfer above 1,000.00 CNY to this payee",
        },
        {
            "id": "night_transfer",
            "actions": _PAYMENT,
            "when": {
                "all": [
                    {"field": "local_hour", "op": "in", "value": [0, 1, 2, 3, 4, 5]},
                    {"field": "amount_ref_minor", "op": "gt", "value": 1_000_000},
                ]
            },
            "outcome": "step_up",
            "reason": "transfer above 10,000.00 CNY at night",
        },
        {
            "id": "new_device",
            "actions": ["*"],
            "when": {"field": "device_known", "op": "eq", "value": False},
            "outcome": "step_up",
            "reason": "first use of this device",
        },
    ],
}


def test_an_old_stored_policy_is_loaded_with_the_24h_facts_as_the_default_has_them() -> None:
    loaded = load_stored_policy(PRE_WINDOW_POLICY)
    assert loaded.version == "2026-11-23.1+24h"  # a decision names what it applied
    current = {rule.id: rule.when for rule in DEFAULT_STEP_UP_POLICY.rules}
    for rule in loaded.rules:
        assert rule.when == current[rule.id], rule.id
    assert parse_policy(PRE_WINDOW_POLICY).version == "2026-11-23.1"  # the body is unchanged


def test_an_old_policy_meets_a_split_payment_as_a_whole() -> None:
    # 51 x 999.99 CNY in 24 h: each payment alone is under the old 50,000.00 threshold.
    split = transfer(
        amount_minor=99_999,
        moved_to_payee=(MovedAmount("CNY", 2, 51 * 99_999),),
        moved_overall=(MovedAmount("CNY", 2, 51 * 99_999),),
    )
    assert evaluate(parse_policy(PRE_WINDOW_POLICY), split).outcome is Outcome.ALLOW
    decision = evaluate(load_stored_policy(PRE_WINDOW_POLICY), split)
    assert decision.outcome is Outcome.STEP_UP and decision.policy_version.endswith("+24h")
    assert [r.split(":")[0] for r in decision.reasons] == ["large_transfer"]
    # To a new payee, the payee's own 24 h sum counts (1,200.00 over two payments).
    new_payee = transfer(
        amount_minor=60_000,
        payee_known=False,
        moved_to_payee=(MovedAmount("CNY", 2, 120_000),),
        moved_overall=(MovedAmount("CNY", 2, 120_000),),
    )
    reasons = evaluate(load_stored_policy(PRE_WINDOW_POLICY), new_payee).reasons
    assert [r.split(":")[0] for r in reasons] == ["new_payee"]


def test_a_policy_naming_a_24h_fact_is_taken_as_written() -> None:
    assert load_stored_policy(DEFAULT_POLICY) == DEFAULT_STEP_UP_POLICY
    opted_out = copy.deepcopy(PRE_WINDOW_POLICY)
    opted_out["rules"].append(
        {
            "id": "window_on_record",
            "actions": _PAYMENT,
            "when": {"field": "total_24h_ref_minor", "op": "lt", "value": 0},
            "outcome": "deny",
            "reason": "never",
        }
    )
    assert load_stored_policy(opted_out) == parse_policy(opted_out)


@pytest.mark.parametrize(
    "when",
    [
        {"not": {"field": "amount_ref_minor", "op": "gt", "value": 1}},
        {"field": "amount_ref_minor", "op": "lt", "value": 100},
        {"field": "amount_minor", "op": "gt", "value": 100},
        {"field": "device_known", "op": "eq", "value": False},
    ],
)
def test_defaulting_widens_only_thresholds_above_an_amount(when: dict[str, Any]) -> None:
    body = {**PRE_WINDOW_POLICY, "rules": [{**PRE_WINDOW_POLICY["rules"][1], "when": when}]}
    assert load_stored_policy(body) == parse_policy(body)


def test_defaulting_leaves_rules_of_other_actions_alone() -> None:
    rule = {**PRE_WINDOW_POLICY["rules"][1], "actions": ["fx.convert"]}
    body = {**PRE_WINDOW_POLICY, "rules": [rule]}
    assert load_stored_policy(body) == parse_policy(body)
    everywhere = {**PRE_WINDOW_POLICY, "rules": [{**rule, "actions": ["*"]}]}
    (widened,) = load_stored_policy(everywhere).rules
    assert widened.when == {
        "any": [
            {"field": "amount_ref_minor", "op": "gt", "value": 5_000_000},
            {"field": "total_24h_ref_minor", "op": "gt", "value": 5_000_000},
        ]
    }


def test_a_bad_stored_policy_is_still_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_stored_policy({**PRE_WINDOW_POLICY, "fresh_mfa_ms": 0})
    assert caught.value.code == "invalid_policy"


def test_reasons_are_sentences_in_each_language() -> None:
    context = transfer(payee_known=False, amount_minor=150_000)
    decision = evaluate(DEFAULT_STEP_UP_POLICY, context)
    assert [r.split(":")[0] for r in decision.reasons] == ["new_payee"]
    localized = decision.localized_reasons()
    assert localized == {
        "zh_CN": ["24 小时内向新收款人付款超过 ¥1,000.00（或等值外币）"],
        "en": ["payments above CN¥1,000.00 or its equivalent in 24 h to a new payee"],
    }
    # Programs keep reading "rule_id: English sentence".
    assert decision.reasons == (f"new_payee: {localized['en'][0]}",)
    with pytest.raises(StepUpRequired) as caught:
        enforce(decision, mfa_at_ms=None, now_ms=0)
    assert caught.value.details["reasons_by_locale"] == localized


def test_a_batch_decision_keeps_each_reason_once_in_every_language() -> None:
    new = transfer(payee_known=False, amount_minor=150_000)
    night = transfer(now_ms=NOON_CST_MS - 10 * 3_600_000, amount_minor=2_000_000)
    decision = evaluate_all(DEFAULT_STEP_UP_POLICY, (new, new, night))
    ids = [r.split(":")[0] for r in decision.reasons]
    localized = decision.localized_reasons()
    assert len(localized["zh_CN"]) == len(localized["en"]) == len(ids) == len(set(ids))
    assert localized["zh_CN"][ids.index("new_payee")].startswith("24 小时内向新收款人")


@pytest.mark.parametrize(
    "reason",
    [
        {"zh_CN": "大额"},  # a language missing
        {"zh_CN": "大额", "en": "large", "fr": "grand"},  # one we do not have
        {"zh_CN": "大额", "en": 5},
        {"zh_CN": "", "en": "large"},
        "x" * 281,
        "",
        42,
        None,
    ],
)
def test_a_reason_must_be_a_sentence_or_one_per_language(reason: object) -> None:
    policy = copy.deepcopy(dict(DEFAULT_POLICY))
    policy["rules"][0]["reason"] = reason
    with pytest.raises(InvalidInput, match="reason is a sentence") as caught:
        parse_policy(policy)
    assert caught.value.code == "invalid_policy"


def test_a_single_sentence_reason_is_shown_in_every_language() -> None:
    policy = copy.deepcopy(dict(DEFAULT_POLICY))
    policy["rules"][0]["reason"] = "needs a branch visit"
    rule = parse_policy(policy).rules[0]
    assert dict(rule.reason_by_locale) == {
        "zh_CN": "needs a branch visit",
        "en": "needs a branch visit",
    }


def test_each_matching_rule_gives_a_structured_cause_with_its_thresholds() -> None:
    """What a page needs to explain a step-up in the user's language: the rule's code and the
    threshold its condition names, in the reference currency."""
    night = NOON_CST_MS + 14 * 3_600_000  # 02:00 in Beijing
    context = transfer(amount_minor=6_000_000, payee_known=False, device_known=False, now_ms=night)
    decision = evaluate(DEFAULT_STEP_UP_POLICY, context)
    causes = {cause.code: cause.to_json() for cause in decision.causes}
    assert set(causes) == {"large_transfer", "new_payee", "night_transfer", "new_device"}
    assert [c.code for c in decision.causes] == [r.split(":")[0] for r in decision.reasons]
    money = {"currency": "CNY", "exponent": 2}
    assert causes["new_payee"] == {
        "code": "new_payee",
        "outcome": "step_up",
        "params": {"threshold_minor": 100_000, **money},
    }
    assert causes["large_transfer"]["params"] == {"threshold_minor": 5_000_000, **money}
    assert causes["night_transfer"]["params"] == {
        "threshold_minor": 1_000_000,
        "local_hours": [0, 1, 2, 3, 4, 5],
        **money,
    }
    assert causes["new_device"]["params"] == {}
    with pytest.raises(StepUpRequired) as caught:
        enforce(decision, mfa_at_ms=None, now_ms=night)
    assert [c["code"] for c in caught.value.details["reason_codes"]] == list(causes)
    far = RiskContext(
        action="login",
        now_ms=NOON_CST_MS,
        device_known=True,
        location=SHANGHAI,
        last_location=BEIJING,
        last_login_ms=NOON_CST_MS - 30 * 60_000,
    )
    travel = {c.code: c.to_json() for c in evaluate(DEFAULT_STEP_UP_POLICY, far).causes}
    assert travel["far_from_last_login"]["params"] == {"distance_km": 500}
    assert travel["impossible_travel"] == {
        "code": "impossible_travel",
        "outcome": "deny",
        "params": {"speed_kmh": 1_000},
    }
    # A batch gives each rule once, the most severe answer overall.
    both = evaluate_all(DEFAULT_STEP_UP_POLICY, (context, transfer(amount_minor=7_000_000)))
    assert [c.code for c in both.causes].count("large_transfer") == 1

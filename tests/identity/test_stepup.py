"""Step-up policy: data in, decision out, enforcement with a fresh second factor."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from zhijin.identity.errors import Forbidden, InvalidInput, StepUpRequired
from zhijin.identity.stepup import (
    DEFAULT_POLICY,
    DEFAULT_STEP_UP_POLICY,
    GeoPoint,
    Outcome,
    RiskContext,
    distance_km,
    enforce,
    evaluate,
    parse_policy,
)

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
        "payee_known": True,
        "device_known": True,
    }
    return RiskContext(**{**base, **kwargs})


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
    body["rules"][1]["when"]["value"] = 1_000_000  # lower the large-transfer threshold
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
        lambda p: p["rules"][0]["when"].update(field="password"),
        lambda p: p["rules"][0]["when"].update(op="regex"),
        lambda p: p["rules"][0]["when"].update(value=1.5),
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

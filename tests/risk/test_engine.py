"""The engine without a node: rules checked when saved (bad expressions, lying test cases,
missing features), maker-checker, tiers, a flood from one account, repeated events and
retries, a model file that fails its hash check, and the engine crashing (fail open below the
policy's limit, closed above it for new payees)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.risk.helpers import T0, facts, history, make_world
from zhijin.payments import ScreenTier
from zhijin.platform.errors import Conflict, Forbidden
from zhijin.risk.expressions import ExpressionInvalid, check
from zhijin.risk.features import CredentialChange, FeatureStore, Learned
from zhijin.risk.rules import RuleBody, RuleTestFailed, check_rule, default_policy

ANALYST, CHECKER = "user:analyst-1", "user:analyst-2"


def rule(**changes: Any) -> RuleBody:
    body: dict[str, Any] = {
        "id": "big_payment",
        "expression": "or_default(amount_ref_minor, 0) >= 5000000",
        "score_bps": 4500,
        "reason_zh": "单笔金额过大",
        "reason_en": "a very large payment",
        "rationale": "payments above 50,000.00 CNY are reviewed",
        "tests": [
            {"features": {"amount_ref_minor": 6_000_000}, "expect": True},
            {"features": {"amount_ref_minor": 100}, "expect": False},
        ],
    }
    body.update(changes)
    return RuleBody.model_validate_json(json.dumps(body))


# -- expressions and rules, checked when saved ----------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("amount_ref_minor >", "syntax_error"),
        ("no_such_feature > 1", "unknown_feature"),
        ("amount_ref_minor > 100", "feature_may_be_missing"),  # may be missing: say how
        ("payments_1m > 1.5", "literal_not_allowed"),  # no floats
        ("payments_1m + 1", "not_boolean"),
        ("currency > 3", "type_mismatch"),
        ("__import__('os').system('true')", "function_not_allowed"),
        ("open('x')", "function_not_allowed"),
        ("payments_1m.real > 1", "syntax_not_allowed"),
        ("1 < payments_1m < 3", "chained_comparison"),
        ("known(payments_1m)", "never_missing"),
    ],
)
def test_a_bad_expression_is_refused_when_saved(expression: str, problem: str) -> None:
    with pytest.raises(ExpressionInvalid) as refused:
        check(expression)
    assert refused.value.details["problem"] == problem, refused.value


def test_missing_features_are_handled_explicitly() -> None:
    assert check("known(device_new) and or_default(device_new, False)") == {"device_new"}
    with pytest.raises(ExpressionInvalid):  # not flow-sensitive: a guard does not unwrap it
        check("known(device_new) and device_new == True")
    assert check("device_new is None") == {"device_new"}
    assert check("or_default(speed_kmh, 0) > 900") == {"speed_kmh"}
    compiled = check_rule(rule(), 1)
    assert not compiled.expression.matches({"amount_ref_minor": None})


def test_a_rule_whose_test_cases_disagree_is_refused() -> None:
    lying = [{"features": {"amount_ref_minor": 100}, "expect": True}]
    with pytest.raises(RuleTestFailed):
        check_rule(rule(tests=lying), 1)
    never = [{"features": {"amount_ref_minor": 100}, "expect": False}]
    with pytest.raises(RuleTestFailed):  # a rule no case makes fire
        check_rule(rule(tests=never), 1)
    wrong_type = [{"features": {"amount_ref_minor": "a lot"}, "expect": True}]
    with pytest.raises(RuleTestFailed):
        check_rule(rule(tests=wrong_type), 1)


def test_a_bad_rule_is_not_saved_and_self_approval_is_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    risk = world.service
    with pytest.raises(ExpressionInvalid):
        risk.propose_rule(body=rule(expression="amount_ref_minor >>"), actor=ANALYST)
    assert risk.list_rules(status="draft") == []
    draft = risk.propose_rule(body=rule(), actor=ANALYST)
    assert (draft["status"], draft["version"]) == ("draft", 1)
    with pytest.raises(Forbidden) as refused:
        risk.decide_rule(
            rule_id="big_payment", version=1, actor=ANALYST, approve=True, reason="looks right"
        )
    assert refused.value.code == "risk_rule_self_approval"
    assert "big_payment@1" not in risk.engine.ruleset.versions()
    approved = risk.decide_rule(
        rule_id="big_payment", version=1, actor=CHECKER, approve=True, reason="checked the cases"
    )
    assert approved["status"] == "approved" and approved["decided_by"] == CHECKER
    assert "big_payment@1" in risk.engine.ruleset.versions()
    with pytest.raises(Conflict):
        risk.decide_rule(
            rule_id="big_payment", version=1, actor=CHECKER, approve=False, reason="again"
        )
    assert {"risk.rule.propose", "risk.rule.approve"} <= set(world.audit.actions())
    # A new version with enabled=false retires the rule once approved.
    risk.propose_rule(body=rule(enabled=False), actor=CHECKER)
    risk.decide_rule(
        rule_id="big_payment", version=2, actor=ANALYST, approve=True, reason="retired"
    )
    assert "big_payment@" not in risk.engine.ruleset.versions()


# -- tiers -------------------------------------------------------------------------------------


def test_an_ordinary_payment_is_allowed_and_recorded(tmp_path: Path) -> None:
    world = make_world(tmp_path, history=history(30))
    verdict = world.service.screen(facts("p-1"))
    assert verdict.tier == ScreenTier.ALLOW, verdict.reasons
    assert verdict.versions["policy"] == default_policy().version
    assert verdict.versions["rules"].startswith("rs-")
    world.service.settled(verdict, facts("p-1"), outcome="submitted")
    stored = world.service.get_decision(verdict.decision_id)
    assert stored["outcome"] == "submitted" and stored["features"]["history_payments"] == 30


def test_a_takeover_after_a_password_change_is_held_with_a_case(tmp_path: Path) -> None:
    world = make_world(tmp_path, history=history(30, amount_minor=300_000))
    world.identity.changes.append(CredentialChange("u-alice", "password", T0 - 3_600_000))
    payment = facts("p-ato", 300_000, credit_account_id="mule-cny", payee_known=False)
    verdict = world.service.screen(payment)
    assert verdict.tier == ScreenTier.HOLD, verdict.reasons
    assert any(r.startswith("credential_change_new_payee:") for r in verdict.reasons)
    assert verdict.hold_timeout_ms == default_policy().hold_timeout_ms
    assert "审核中" in verdict.notice["zh_CN"] and "under review" in verdict.notice["en"]
    world.service.settled(verdict, payment, outcome="held")
    (case,) = world.service.list_cases(member=None, status="open", limit=10)
    assert case["transfer_id"] == "p-ato"
    resolved = world.service.resolve_case(
        case_id=case["case_id"], verdict="confirmed_fraud", actor=ANALYST, reason="customer denies"
    )
    assert resolved["status"] == "confirmed_fraud"
    assert world.holds.resolved == [
        {"pending_id": "p-ato", "id": resolved["resolution_transfer_id"], "post": False}
    ]


def test_a_flood_from_one_account_is_held_then_refused_then_needs_a_step_up(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path, history=history(30))
    tiers = []
    for n in range(11):
        payment = facts(f"flood-{n}", at_ms=T0 + n * 1000)
        verdict = world.service.screen(payment)
        outcome = {"allow": "submitted", "hold": "held"}.get(verdict.tier.value, "refused")
        world.service.settled(verdict, payment, outcome=outcome)
        tiers.append(verdict.tier.value)
    assert tiers[:5] == ["allow"] * 5
    assert set(tiers[5:10]) == {"hold"}
    assert tiers[10] == "refuse"
    # The next attempt, without a fresh second factor, is asked for one first.
    again = world.service.screen(facts("flood-next", at_ms=T0 + 12_000))
    assert again.tier == ScreenTier.STEP_UP
    # With one, the refusal becomes a hold for review (the policy's choice).
    proven = world.service.screen(facts("flood-mfa", at_ms=T0 + 13_000, mfa_at_ms=T0 + 12_500))
    assert proven.tier == ScreenTier.HOLD, proven.reasons


def test_a_retry_gets_the_stored_verdict_and_counts_once(tmp_path: Path) -> None:
    world = make_world(tmp_path, history=history(30))
    payment = facts("retry-1")
    first = world.service.screen(payment)
    world.service.settled(first, payment, outcome="submitted")
    for _ in range(20):  # a client retrying is not a flood
        assert world.service.screen(payment).decision_id == first.decision_id
    assert (
        world.service.engine.store.features(
            facts("other"), default_policy().feature_policy(), last_sign_in=None
        )["payments_1m"]
        == 1
    )
    # A fresh service (a restart) still answers a retry from the table.
    world.service._recent.clear()
    assert world.service.screen(payment).decision_id == first.decision_id


def test_repeated_events_are_learned_once() -> None:
    store = FeatureStore()
    payment = Learned("t-1", "a", "b", 1000, T0)
    assert store.learn(payment) and not store.learn(payment)
    row = store.features(facts("x", debit_account_id="a"), default_policy().feature_policy(),
                         last_sign_in=None)  # fmt: skip
    assert row["history_payments"] == 1


def test_impossible_travel_and_a_mule_payee(tmp_path: Path) -> None:
    world = make_world(tmp_path, history=history(30))
    # Signed in from Shanghai ten minutes ago, paying from Urumqi.
    world.identity.sign_ins["u-alice"] = (31_230_000, 121_470_000, T0 - 600_000)
    far = facts("travel", lat_e6=43_820_000, lon_e6=87_610_000)
    verdict = world.service.screen(far)
    assert verdict.tier == ScreenTier.HOLD and "impossible_travel" in verdict.reasons[0]
    # Twelve unrelated senders pay "mule", which pays most of it out at once.
    store = world.service.engine.store
    for n in range(12):
        store.learn(Learned(f"in-{n}", f"sender-{n}", "mule", 100_000, T0 - 3_600_000))
    store.learn(Learned("out-1", "mule", "cashout", 1_100_000, T0 - 1_800_000))
    row = store.features(
        facts("to-mule", credit_account_id="mule"), default_policy().feature_policy(),
        last_sign_in=None,
    )  # fmt: skip
    assert row["payee_senders_24h"] == 12 and row["payee_mule_score_bps"] >= 6000


# -- faults ------------------------------------------------------------------------------------


def test_an_engine_crash_fails_open_below_the_limit_and_closed_above_for_new_payees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(tmp_path)

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("feature store lost")

    monkeypatch.setattr(world.service.engine, "decide", crash)
    limit = default_policy().fail_closed_new_payee_above_ref_minor
    small = world.service.screen(facts("c-1", limit, payee_known=False))
    assert small.tier == ScreenTier.ALLOW
    large_new = world.service.screen(facts("c-2", limit + 1, payee_known=False))
    assert large_new.tier == ScreenTier.REFUSE
    large_known = world.service.screen(facts("c-3", limit + 1, payee_known=True))
    assert large_known.tier == ScreenTier.ALLOW
    unknown_currency = world.service.screen(facts("c-4", 1, currency="XAU", payee_known=None))
    assert unknown_currency.tier == ScreenTier.REFUSE  # cannot be converted: closed
    for verdict in (small, large_new, large_known):
        assert verdict.degraded == ("engine_unavailable:RuntimeError",)
        assert any(r.startswith("engine_unavailable:") for r in verdict.reasons)


def _label_cases(world: Any, count: int) -> None:
    """Held payments resolved by an analyst: large night ones fraud, small ones cleared."""
    for n in range(count):
        fraud = n % 2 == 0
        payment = facts(
            f"lab-{n}", 900_000 if fraud else 20_000, at_ms=T0 + n * 120_000,
            credit_account_id=f"payee-{n}", payee_known=not fraud,
        )  # fmt: skip
        verdict = world.service.screen(payment)
        world.service.settled(replace(verdict, tier=ScreenTier.HOLD), payment, outcome="held")
    for case in world.service.list_cases(member=None, status="open", limit=200):
        verdict = "confirmed_fraud" if case["transfer_id"].endswith(("0", "2", "4", "6", "8")) \
            else "cleared"  # fmt: skip
        world.service.resolve_case(
            case_id=case["case_id"], verdict=verdict, actor=ANALYST, reason="reviewed"
        )


def test_a_model_file_that_fails_its_hash_check_falls_back_to_rules(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with pytest.raises(Exception, match="labelled"):
        world.service.train_model(actor=ANALYST)  # too few labels yet
    _label_cases(world, 24)
    status = world.service.train_model(actor=ANALYST)
    version = status["active"]
    assert version and world.service.engine.supervised is not None
    assert world.service.screen(facts("with-model")).versions["supervised"] == version
    (registered,) = status["registered"]
    path = tmp_path / "models" / registered["file_name"]
    path.write_text(path.read_text() + "\n# tampered\n")
    world.service.load_model()  # as at a restart
    assert world.service.engine.supervised is None
    for n in range(3):  # every decision meanwhile says so
        verdict = world.service.screen(facts(f"no-model-{n}"))
        assert verdict.degraded == (f"model_hash_mismatch:{version}",)
        assert verdict.versions["supervised"] == "refused"
        assert any("rules alone" in text for text in verdict.reasons_by_locale["en"])
        assert any("仅按规则" in text for text in verdict.reasons_by_locale["zh_CN"])


def test_a_decision_that_cannot_be_recorded_is_decided_by_the_fail_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(tmp_path, history=history(30))

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(world.service, "_record", broken)
    limit = default_policy().fail_closed_new_payee_above_ref_minor
    small = world.service.screen(facts("r-1", 100))
    assert small.tier == ScreenTier.ALLOW
    assert small.degraded == ("engine_unavailable:DecisionNotRecorded",)
    large_new = world.service.screen(facts("r-2", limit + 1, payee_known=False))
    assert large_new.tier == ScreenTier.REFUSE
    world.service.settled(large_new, facts("r-2"), outcome="refused")  # never raises

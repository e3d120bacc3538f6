"""The behavioural score's documented rules, their caps, and "why my score changed"."""

from __future__ import annotations

from zhijin.credit.behaviour import BehaviourFacts, behaviour_score, changes


def _points(facts: BehaviourFacts) -> dict[str, int]:
    return {item.code: item.points for item in behaviour_score(facts).contributions}


def test_a_thin_file_customer_gets_the_base_score_not_a_refusal() -> None:
    score = behaviour_score(BehaviourFacts())
    assert score.score == 500
    assert [c.code for c in score.contributions if c.points] == ["base"]


def test_each_rule_and_its_cap() -> None:
    facts = BehaviourFacts(
        on_time_repayments=4,
        late_repayments=1,
        months_on_platform=3,
        inflow_minor_90d=250_000,  # 2,500 yuan: two full steps
        balance_minor_now=120_000,
        balance_minor_90d_ago=100_000,
    )
    points = _points(facts)
    assert points == {
        "base": 500,
        "on_time_repayments": 40,
        "late_repayments": -50,
        "months_on_platform": 15,
        "inflows_90d": 20,
        "balance_trend": 40,
    }
    assert behaviour_score(facts).score == 565
    capped = _points(
        BehaviourFacts(on_time_repayments=99, late_repayments=99, months_on_platform=999,
                       inflow_minor_90d=10**12)
    )  # fmt: skip
    assert (capped["on_time_repayments"], capped["late_repayments"]) == (150, -300)
    assert (capped["months_on_platform"], capped["inflows_90d"]) == (60, 100)


def test_a_balance_that_halved_costs_points_and_the_score_stays_in_range() -> None:
    falling = BehaviourFacts(balance_minor_now=40_000, balance_minor_90d_ago=100_000)
    assert _points(falling)["balance_trend"] == -40
    worst = BehaviourFacts(late_repayments=50, balance_minor_now=0, balance_minor_90d_ago=10)
    assert behaviour_score(worst).score == 160


def test_changes_say_which_rule_moved_and_by_how_much_with_the_value() -> None:
    before = behaviour_score(BehaviourFacts(on_time_repayments=2)).contributions
    after = behaviour_score(BehaviourFacts(on_time_repayments=2, late_repayments=1)).contributions
    (change,) = changes(before, after)
    assert (change.code, change.points) == ("late_repayments", -50)
    assert "逾期或未还款 1 次" in change.text_zh and "1 instalments paid late" in change.text_en
    assert changes(after, after) == ()

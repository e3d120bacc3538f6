"""The simulator is seeded and labelled, and the time-split evaluation reports both scorers."""

from __future__ import annotations

from tests.risk.helpers import T0
from zhijin.risk.evaluation import evaluate, markdown
from zhijin.risk.simulate import HELD_OUT, SimulationParams, simulate

SMALL = SimulationParams(customers=40, payees=30, days=9, fraud_per_day=3)


def test_the_simulator_is_seeded_and_in_time_order() -> None:
    first, again = list(simulate(SMALL)), list(simulate(SMALL))
    assert first == again
    assert [e.facts.at_ms for e in first] == sorted(e.facts.at_ms for e in first)
    scenarios = {e.scenario for e in first if e.fraud}
    assert scenarios == {"account_takeover", "card_testing", HELD_OUT}
    assert all(e.scenario is None for e in first if not e.fraud)
    assert first[0].facts.at_ms < T0  # June 2026, before the helpers' T0
    other = list(simulate(SimulationParams(**{**SMALL.__dict__, "seed": 1})))
    assert other != first


def test_the_evaluation_reports_rules_alone_and_rules_with_models() -> None:
    result = evaluate(SMALL)
    assert result["test_fraud"] > 0 and result["test_payments"] > result["test_fraud"]
    for scorer in ("rules", "rules_models"):
        metrics = result[scorer]
        assert 0.0 <= metrics["recall_at_1pct_fpr"] <= 1.0
        assert 0.0 <= metrics["roc_auc"] <= 1.0
    assert f"{HELD_OUT} (held out)" in markdown(result)

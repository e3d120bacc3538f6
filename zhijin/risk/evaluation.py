"""The time-split evaluation on the simulator (simulate.py): the engine replays every payment
in time order (features and the anomaly model learning as it goes), the supervised model is
trained on the earlier part's labels (as if analysts had reviewed them), and the later part is
scored by the rules alone and by rules + models.  Reported: ROC-AUC, average precision, recall
at 1% false-positive rate, and per scenario the recall at the hold tier (the held-out scenario
named)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from zhijin.risk.engine import RiskEngine, Ruleset
from zhijin.risk.features import Learned
from zhijin.risk.models import load_supervised, train_supervised
from zhijin.risk.rules import check_rule, default_policy, default_rules
from zhijin.risk.simulate import HELD_OUT, SimulationParams, simulate

__all__ = ["evaluate", "markdown"]

TRAIN_SHARE = 2 / 3


def _metrics(labels: list[int], scores: list[int]) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    recall = max((t for f, t in zip(fpr, tpr, strict=True) if f <= 0.01), default=0.0)
    return {
        "roc_auc": round(float(roc_auc_score(labels, scores)), 3),
        "average_precision": round(float(average_precision_score(labels, scores)), 3),
        "recall_at_1pct_fpr": round(float(recall), 3),
    }


def evaluate(params: SimulationParams) -> dict[str, Any]:
    policy = default_policy()
    ruleset = Ruleset(tuple(check_rule(body, 1) for body in default_rules()))
    engine = RiskEngine(policy=policy, ruleset=ruleset)
    events = list(simulate(params))
    split_ms = events[0].facts.at_ms + int(
        (events[-1].facts.at_ms - events[0].facts.at_ms) * TRAIN_SHARE
    )
    rows, labels, rule_scores, scenarios, times = [], [], [], [], []
    rates = policy.reference_rates()
    for event in events:
        facts = event.facts
        if event.credential_change is not None:
            engine.store.credential_changed(event.credential_change)
        decision = engine.decide(facts, last_sign_in=event.sign_in)
        rules_only = min(10_000, sum(
            rule.body.score_bps for rule in ruleset.rules if rule.label in decision.matched
        ))  # fmt: skip
        rows.append(dict(decision.features))
        labels.append(int(event.fraud))
        rule_scores.append(rules_only)
        scenarios.append(event.scenario)
        times.append(facts.at_ms)
        engine.store.attempt(facts.transfer_id, facts.debit_account_id, facts.at_ms)
        engine.store.learn(Learned(
            facts.transfer_id, facts.debit_account_id, facts.credit_account_id,
            rates.convert(facts.amount_minor, facts.currency, facts.exponent), facts.at_ms,
        ))  # fmt: skip
        engine.anomaly.learn(decision.features)
    train = [i for i, t in enumerate(times) if t < split_ms]
    test = [i for i, t in enumerate(times) if t >= split_ms]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "eval.txt"
        sha = train_supervised([rows[i] for i in train], [labels[i] for i in train], path)
        model = load_supervised("eval", path, sha)
        combined = []
        for i in test:
            supervised = model.probability_bps(rows[i]) * policy.weights.supervised_bps // 10_000
            anomaly = engine.anomaly.score_bps(rows[i]) * policy.weights.anomaly_bps // 10_000
            combined.append(min(10_000, rule_scores[i] + supervised + anomaly))
    test_labels = [labels[i] for i in test]
    by_scenario: dict[str, dict[str, Any]] = {}
    for position, i in enumerate(test):
        name = scenarios[i]
        if name is None:
            continue
        entry = by_scenario.setdefault(name, {"payments": 0, "rules": 0, "rules_models": 0})
        entry["payments"] += 1
        entry["rules"] += int(rule_scores[i] >= policy.hold_from_bps)
        entry["rules_models"] += int(combined[position] >= policy.hold_from_bps)
    return {
        "params": params,
        "train_payments": len(train),
        "test_payments": len(test),
        "test_fraud": sum(test_labels),
        "rules": _metrics(test_labels, [rule_scores[i] for i in test]),
        "rules_models": _metrics(test_labels, combined),
        "by_scenario": by_scenario,
    }


def markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    lines = [
        f"Simulated with seed {p.seed}: {p.customers} customers, {p.days} days; trained on the "
        f"first two thirds ({result['train_payments']} payments), tested on the rest "
        f"({result['test_payments']} payments, {result['test_fraud']} fraudulent).",
        "",
        "| scorer | ROC-AUC | average precision | recall at 1% FPR |",
        "|---|---|---|---|",
    ]
    for name, key in (("rules alone", "rules"), ("rules + models", "rules_models")):
        m = result[key]
        lines.append(
            f"| {name} | {m['roc_auc']} | {m['average_precision']} | {m['recall_at_1pct_fpr']} |"
        )
    lines += ["", "| scenario | fraudulent payments | held or refused: rules | rules + models |",
              "|---|---|---|---|"]  # fmt: skip
    for name, entry in sorted(result["by_scenario"].items()):
        label = f"{name} (held out)" if name == HELD_OUT else name
        n = entry["payments"]
        lines.append(
            f"| {label} | {n} | {entry['rules'] / n:.3f} | {entry['rules_models'] / n:.3f} |"
        )
    return "\n".join(lines) + "\n"

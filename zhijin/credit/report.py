"""One call from a dataset to a model with its card filled in, and the figures as markdown.

`build_model` cross-validates (nested, evaluation.py), reports fairness on the out-of-fold PDs
(fairness.py) and trains the model on all rows (training.py) with both in its card: what
`zhijin credit train` runs.  `render_markdown` prints the figures docs/credit.md shows;
`python -m zhijin.credit.report` regenerates them on German Credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from zhijin.credit.artifact import TrainedModel
from zhijin.credit.datasets import Dataset, german_credit
from zhijin.credit.evaluation import FIELD_FIGURES, Evaluation, cross_validate
from zhijin.credit.fairness import DEFAULT_APPROVE_BELOW_PD_PPM, FairnessReport, fairness_report
from zhijin.credit.fairness import render_markdown as render_fairness
from zhijin.credit.metrics import Metrics
from zhijin.credit.training import DEFAULT_SEED, train

__all__ = ["BuiltModel", "build_model", "render_markdown", "render_repeats"]


@dataclass(frozen=True, slots=True)
class BuiltModel:
    model: TrainedModel
    evaluation: Evaluation
    fairness: FairnessReport


def build_model(
    dataset: Dataset,
    *,
    seed: int = DEFAULT_SEED,
    trainer: str = "",
    trained_at: datetime | None = None,
    name: str | None = None,
    folds: int = 5,
    approve_below_pd_ppm: int = DEFAULT_APPROVE_BELOW_PD_PPM,
) -> BuiltModel:
    evaluation = cross_validate(dataset, seed=seed, folds=folds)
    fairness = fairness_report(dataset, evaluation, approve_below_pd_ppm=approve_below_pd_ppm)
    model = train(
        dataset,
        seed=seed,
        trainer=trainer,
        trained_at=trained_at,
        name=name,
        evaluation=evaluation.to_json(),
        fairness=fairness.to_json(),
    )
    return BuiltModel(model, evaluation, fairness)


def _row(name: str, metrics: Metrics) -> str:
    return (
        f"| {name} | {metrics.auc:.3f} | {metrics.gini:.3f} | {metrics.ks:.3f} "
        f"| {metrics.brier:.3f} |"
    )


def render_markdown(evaluation: Evaluation) -> str:
    """The cross-validated figures of both models beside the baselines and the field's."""
    method = evaluation.to_json()["method"]
    lines = [
        f"{evaluation.dataset}: {method}.",
        "",
        "| model | AUC | Gini | KS | Brier |",
        "|---|---:|---:|---:|---:|",
        _row("scorecard (optbinning WoE + logistic)", evaluation.scorecard),
        _row("LightGBM (monotone constraints)", evaluation.gbdt),
        _row("baseline: logistic on raw features", evaluation.baseline_logistic),
        _row("baseline: checking account alone", evaluation.baseline_single_feature),
        f"| the field: logistic regression | {FIELD_FIGURES['logistic_regression_auc']:.2f} "
        "| | | |",
        f"| the field: LightGBM defaults | {FIELD_FIGURES['lightgbm_defaults_auc']:.2f} | | | |",
        "",
        "Chosen per fold (inner CV): "
        + "; ".join(
            f"C={p.scorecard_c}, {p.gbdt_leaves} leaves x {p.gbdt_rounds} rounds"
            for p in evaluation.chosen
        ),
        "",
        "Calibration (ten equal groups by predicted PD; predicted mean / observed bad rate):",
        "",
        "| group | scorecard | LightGBM |",
        "|---:|---:|---:|",
    ]
    for card_row, gbdt_row in zip(
        evaluation.scorecard.calibration, evaluation.gbdt.calibration, strict=True
    ):
        lines.append(
            f"| {card_row.group} | {card_row.predicted_mean:.3f} / "
            f"{card_row.observed_bad_rate:.3f} | {gbdt_row.predicted_mean:.3f} / "
            f"{gbdt_row.observed_bad_rate:.3f} |"
        )
    return "\n".join(lines) + "\n"


def render_repeats(evaluations: list[Evaluation]) -> str:
    """AUC over repeated CVs (other seeds): how much of a figure is the split's luck."""
    lines = ["| model | AUC per repeat | mean |", "|---|---|---:|"]
    for label, pick in (
        ("scorecard", lambda e: e.scorecard.auc),
        ("LightGBM", lambda e: e.gbdt.auc),
        ("baseline: logistic on raw features", lambda e: e.baseline_logistic.auc),
    ):
        values = [pick(e) for e in evaluations]
        shown = ", ".join(f"{v:.3f}" for v in values)
        lines.append(f"| {label} | {shown} | {sum(values) / len(values):.3f} |")
    seeds = ", ".join(str(e.seed) for e in evaluations)
    return f"Repeated nested {evaluations[0].folds}-fold CV, seeds {seeds}:\n\n" + "\n".join(lines)


REPEAT_SEEDS = (1, 2, 3)

if __name__ == "__main__":
    data = german_credit()
    figures = cross_validate(data, seed=DEFAULT_SEED)
    print(render_markdown(figures))
    print(render_fairness(fairness_report(data, figures)))
    print(render_repeats([figures, *(cross_validate(data, seed=s) for s in REPEAT_SEEDS)]))

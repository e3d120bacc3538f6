"""Discrimination and calibration figures of predicted probabilities of default.

AUC (the probability that a random bad applicant is ranked riskier than a random good one),
Gini = 2 AUC - 1, KS (the largest gap between the bad and good applicants' cumulative score
distributions), the Brier score (mean squared error of the probability) and a calibration table
(ten groups of equal size by predicted PD: predicted against observed bad rate).  Training-time
code: scikit-learn computes the curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

__all__ = ["CalibrationRow", "Metrics", "calibration_table", "measure"]

CALIBRATION_GROUPS = 10


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    group: int  # 1 = the lowest predicted PDs
    count: int
    predicted_mean: float
    observed_bad_rate: float

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "count": self.count,
            "predicted_mean": round(self.predicted_mean, 4),
            "observed_bad_rate": round(self.observed_bad_rate, 4),
        }


@dataclass(frozen=True, slots=True)
class Metrics:
    auc: float
    gini: float
    ks: float
    brier: float
    calibration: tuple[CalibrationRow, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "auc": round(self.auc, 4),
            "gini": round(self.gini, 4),
            "ks": round(self.ks, 4),
            "brier": round(self.brier, 4),
            "calibration": [row.to_json() for row in self.calibration],
        }


def calibration_table(bad: NDArray[np.int_], pd: NDArray[np.float64]) -> tuple[CalibrationRow, ...]:
    order = np.argsort(pd, kind="stable")
    rows = []
    for group, members in enumerate(np.array_split(order, CALIBRATION_GROUPS), start=1):
        if len(members) == 0:
            continue
        rows.append(
            CalibrationRow(
                group, len(members), float(pd[members].mean()), float(bad[members].mean())
            )
        )
    return tuple(rows)


def measure(bad: NDArray[np.int_], pd: NDArray[np.float64]) -> Metrics:
    """The figures of predictions `pd` against outcomes `bad` (1 = defaulted)."""
    auc = float(roc_auc_score(bad, pd))
    false_positive, true_positive, _ = roc_curve(bad, pd)
    return Metrics(
        auc=auc,
        gini=2 * auc - 1,
        ks=float(np.max(true_positive - false_positive)),
        brier=float(brier_score_loss(bad, pd)),
        calibration=calibration_table(bad, pd),
    )

"""The fast scorer: one applicant in, the scorecard's points, the PD and the reasons out.

The hot path is plain Python and one LightGBM call: the feature row is built from the frozen
Applicant (no DataFrame), the scorecard's points are summed from its lookup table, and the
booster is asked once, single-threaded, for its exact per-feature contributions
(`pred_contrib`, TreeSHAP).  Those contributions add up to the model's raw log-odds, so the same
call gives the probability of default (the logistic of their sum, equal to `Booster.predict`)
and the reasons (the features that raised it most).  The chain takes no floats, so the PD
leaves as an integer in parts per million, rounded half-even.

The booster is asked through LightGBM's own single-row C API
(`LGBM_BoosterPredictForMatSingleRowFast`, prepared once per model with
`...SingleRowFastInit`): `Booster.predict` rebuilds its configuration and a numpy result on every
call, which costs more than the trees themselves for one row.  The fast call's answer is checked
against `Booster.predict(pred_contrib=True)` on every training row in the tests; where a
LightGBM build lacks it, the scorer falls back to `Booster.predict`.
"""

from __future__ import annotations

import ctypes
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from zhijin.credit.applicant import Applicant
from zhijin.credit.artifact import LoadedModel
from zhijin.credit.features import feature_row
from zhijin.credit.reasons import REASONS_MAX, Reason, ReasonEntry
from zhijin.credit.scorecard import ScorecardTable

__all__ = ["PPM", "Reason", "Score", "Scorer"]

PPM = 1_000_000
_PREDICT_CONTRIB = 3  # LightGBM's C_API_PREDICT_CONTRIB
_DTYPE_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class _FastContributions:
    """One model's prepared single-row contribution call (LightGBM's C API).  One row buffer
    per scorer, so calls are serialised by a lock (uncontended it costs well under a
    microsecond)."""

    def __init__(self, booster: lgb.Booster, features: int) -> None:
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._booster = booster  # the config points into the booster: keep it alive
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._check = _safe_call
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_PREDICT_CONTRIB),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(features),
                _c_str("num_threads=1"),
                ctypes.byref(handle),
            )
        )
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, handle)
        self._handle = handle
        self._row = (ctypes.c_double * features)()
        self._out = (ctypes.c_double * (features + 1))()
        self._out_len = ctypes.c_int64()
        self._lock = threading.Lock()

    def __call__(self, row: list[float]) -> list[float]:
        with self._lock:
            self._row[:] = row  # type: ignore[assignment]  # ctypes accepts floats
            self._check(self._call(self._handle, self._row, ctypes.byref(self._out_len), self._out))
            return self._out[:]


def _contributions_call(
    booster: lgb.Booster, features: int
) -> Callable[[list[float]], list[float]]:
    try:
        return _FastContributions(booster, features)
    except (ImportError, AttributeError):  # a LightGBM build without the single-row C API

        def predict(row: list[float]) -> list[float]:
            matrix = np.array([row], dtype=np.float64)
            out = booster.predict(matrix, pred_contrib=True, num_threads=1)
            return [float(v) for v in out[0]]

        return predict


@dataclass(frozen=True, slots=True)
class Score:
    points: int  # the scorecard's points (the sum of the lookup table's integer points)
    pd_ppm: int  # the gradient-boosted model's probability of default, parts per million
    reasons: tuple[Reason, ...]  # at most four, most adverse first

    def to_json(self) -> dict[str, object]:
        return {
            "points": self.points,
            "pd_ppm": self.pd_ppm,
            "reasons": [reason.to_json() for reason in self.reasons],
        }


class Scorer:
    """Scores applicants with one loaded (hash-checked) model."""

    __slots__ = (
        "_contributions",
        "_entries",
        "_features",
        "_scorecard",
        "model_name",
        "model_sha256",
    )

    def __init__(self, model: LoadedModel) -> None:
        self.model_name = model.name
        self.model_sha256 = model.sha256
        self._features = model.features
        self._scorecard: ScorecardTable = model.scorecard
        self._contributions = _contributions_call(model.booster, len(model.features))
        self._entries: tuple[ReasonEntry, ...] = model.reasons.entries

    @classmethod
    def from_model(cls, model: LoadedModel) -> Scorer:
        return cls(model)

    def score(self, applicant: Applicant) -> Score:
        row = feature_row(applicant, self._features)
        points, _ = self._scorecard.points(row)
        contributions = self._contributions(row)
        raw = math.fsum(contributions)
        return Score(points, _ppm(_logistic(raw)), self._reasons(row, contributions))

    def gbdt_probability(self, applicant: Applicant) -> float:
        """The gradient-boosted PD as a float (what `score` rounds to pd_ppm)."""
        return _logistic(math.fsum(self._contributions(feature_row(applicant, self._features))))

    def scorecard_probability(self, applicant: Applicant) -> float:
        """The scorecard's logistic PD at the applicant's exact points."""
        _, exact = self._scorecard.points(feature_row(applicant, self._features))
        return self._scorecard.probability(exact)

    def contributions(self, applicant: Applicant) -> list[float]:
        """The exact contributions to the log-odds: one per feature, then the expected value."""
        return self._contributions(feature_row(applicant, self._features))

    def _reasons(self, row: list[float], contributions: list[float]) -> tuple[Reason, ...]:
        # Most adverse first; equal contributions in feature order, so a replay ranks alike.
        adverse = sorted(
            (
                (-contribution, index)
                for index, contribution in enumerate(contributions[: len(row)])
                if contribution > 0.0
            )
        )[:REASONS_MAX]
        return tuple(self._entries[index].reason(row[index]) for _, index in adverse)


def _logistic(raw: float) -> float:
    return 1.0 / (1.0 + math.exp(-raw))


def _ppm(probability: float) -> int:
    return round(probability * PPM)  # round() on a float is half-even

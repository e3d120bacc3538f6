"""Training both models on a dataset: the scorecard and the gradient-boosted model.

The scorecard: optbinning's optimal binning of each feature (fitted on the training rows only),
a logistic regression on the bins' weights of evidence, PDO scaling (scorecard.py), exported as
the lookup table.  The gradient-boosted model: LightGBM with the monotone constraints of
features.py, categories split natively, one thread and `deterministic`, so the same data and
seed give the same model string, byte for byte.

Hyperparameters (the logistic's regularisation C; LightGBM's leaves and rounds) are chosen by
an inner cross-validation on the training rows alone, from the small grids below, so the rows a
model is finally judged on never choose them (evaluation.py nests this inside every outer fold).

Training-time code: pandas, optbinning and scikit-learn are imported here, never by the scorer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from zhijin.credit.applicant import FIELDS, FIELDS_BY_NAME, Applicant
from zhijin.credit.artifact import MODEL_FORMAT, TrainedModel
from zhijin.credit.datasets import Dataset
from zhijin.credit.features import FEATURES, FEATURES_BY_NAME, feature_row
from zhijin.credit.reasons import build_reason_table, flag_texts, is_flag, range_texts
from zhijin.credit.scorecard import (
    MISSING_BIN,
    PDO_BASE_ODDS,
    PDO_BASE_POINTS,
    PDO_POINTS,
    Characteristic,
    ScorecardBin,
    ScorecardTable,
)

__all__ = [
    "MODEL_FORMAT",
    "Hyperparameters",
    "TrainedModel",
    "active_features",
    "feature_matrix",
    "fit_gbdt",
    "fit_scorecard",
    "gbdt_params",
    "scorecard_probability",
    "select_hyperparameters",
    "train",
]

DEFAULT_SEED = 20260601
SCORECARD_C_GRID = (0.03, 0.1, 0.3, 1.0)
# (leaves, rounds) at learning rate 0.1: as good as 400 rounds at 0.03 in the nested CV, with a
# third of the trees, which is what the scorer's exact contributions cost.
GBDT_GRID = ((4, 60), (4, 120), (8, 60))
GBDT_LEARNING_RATE = 0.1
INNER_FOLDS = 3
TRAINING_FOLDS = 5  # the inner CV of the final model, on all of its rows
SCORE_CHECK_TOLERANCE = 1e-6  # the lookup table against optbinning, in points
EXCLUDED_FIELDS = {
    "personal_status_sex": "sex and marital status: a prohibited basis (ECOA/Reg B); "
    "kept for the fairness report only",
    "foreign_worker": "a national-origin proxy (a prohibited basis); kept for the fairness "
    "report only",
}


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    scorecard_c: float
    gbdt_leaves: int
    gbdt_rounds: int

    def to_json(self) -> dict[str, object]:
        return {
            "scorecard_c": self.scorecard_c,
            "gbdt_leaves": self.gbdt_leaves,
            "gbdt_rounds": self.gbdt_rounds,
        }


def active_features(applicants: tuple[Applicant, ...]) -> tuple[str, ...]:
    """The features the data can teach: those with at least two distinct observed values (a
    German Credit row has no platform facts, so those features drop out of its models)."""
    matrix = feature_matrix(applicants, tuple(f.name for f in FEATURES))
    active = []
    for column, feature in enumerate(FEATURES):
        observed = matrix[:, column][~np.isnan(matrix[:, column])]
        if len(np.unique(observed)) >= 2:
            active.append(feature.name)
    return tuple(active)


def feature_matrix(
    applicants: tuple[Applicant, ...], names: tuple[str, ...]
) -> NDArray[np.float64]:
    return np.array([feature_row(a, names) for a in applicants], dtype=np.float64).reshape(
        len(applicants), len(names)
    )


def _frame(matrix: NDArray[np.float64], names: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame(matrix, columns=list(names))


def _categorical(names: tuple[str, ...]) -> list[str]:
    return [name for name in names if FEATURES_BY_NAME[name].kind == "categorical"]


# optbinning's trend is the bad rate's: the scorecard's bins follow the same business directions
# as LightGBM's monotone constraints, so an older applicant never earns fewer points for age.
_TRENDS = {1: "ascending", -1: "descending"}


def _binning(names: tuple[str, ...]) -> BinningProcess:
    trends = {
        name: {"monotonic_trend": _TRENDS[FEATURES_BY_NAME[name].monotone]}
        for name in names
        if FEATURES_BY_NAME[name].monotone != 0
    }
    return BinningProcess(
        list(names), categorical_variables=_categorical(names), binning_fit_params=trends
    )


def fit_scorecard(
    matrix: NDArray[np.float64], bad: NDArray[np.int_], names: tuple[str, ...], c: float
) -> Scorecard:
    """optbinning's Scorecard: binning fitted on these rows, then the logistic, PDO-scaled."""
    scorecard = Scorecard(
        _binning(names),
        LogisticRegression(C=c, max_iter=1_000),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": PDO_POINTS,
            "odds": PDO_BASE_ODDS,
            "scorecard_points": PDO_BASE_POINTS,
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optbinning's notices about pandas' future dtypes
        scorecard.fit(_frame(matrix, names), bad)
    return scorecard


def scorecard_probability(
    scorecard: Scorecard, matrix: NDArray[np.float64], names: tuple[str, ...]
) -> NDArray[np.float64]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(scorecard.predict_proba(_frame(matrix, names))[:, 1], dtype=np.float64)


def gbdt_params(names: tuple[str, ...], leaves: int, seed: int) -> dict[str, object]:
    return {
        "objective": "binary",
        "learning_rate": GBDT_LEARNING_RATE,
        "num_leaves": leaves,
        "min_data_in_leaf": 30,
        "lambda_l2": 5.0,
        "feature_fraction": 0.8,
        "monotone_constraints": [FEATURES_BY_NAME[name].monotone for name in names],
        "monotone_constraints_method": "advanced",
        "max_cat_to_onehot": 4,
        "cat_smooth": 10.0,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }


def fit_gbdt(
    matrix: NDArray[np.float64],
    bad: NDArray[np.int_],
    names: tuple[str, ...],
    *,
    leaves: int,
    rounds: int,
    seed: int,
) -> lgb.Booster:
    categorical = [
        i for i, name in enumerate(names) if FEATURES_BY_NAME[name].kind == "categorical"
    ]
    data = lgb.Dataset(
        matrix,
        label=bad,
        feature_name=list(names),
        categorical_feature=categorical,
        free_raw_data=True,
    )
    return lgb.train(gbdt_params(names, leaves, seed), data, num_boost_round=rounds)


def select_hyperparameters(
    matrix: NDArray[np.float64],
    bad: NDArray[np.int_],
    names: tuple[str, ...],
    *,
    seed: int,
    folds: int = INNER_FOLDS,
) -> Hyperparameters:
    """The grid point of each model with the best mean AUC over an inner stratified CV of these
    rows, the binning refitted inside every inner fold."""
    scorecard_auc = {c: 0.0 for c in SCORECARD_C_GRID}
    gbdt_auc = {point: 0.0 for point in GBDT_GRID}
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train_rows, test_rows in splitter.split(matrix, bad):
        train_x, test_x = matrix[train_rows], matrix[test_rows]
        train_y, test_y = bad[train_rows], bad[test_rows]
        binning = _binning(names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            binning.fit(_frame(train_x, names), train_y)
            train_woe = binning.transform(_frame(train_x, names), metric="woe")
            test_woe = binning.transform(_frame(test_x, names), metric="woe")
        for c in SCORECARD_C_GRID:
            logistic = LogisticRegression(C=c, max_iter=1_000).fit(train_woe, train_y)
            scorecard_auc[c] += roc_auc_score(test_y, logistic.predict_proba(test_woe)[:, 1])
        for leaves, rounds in GBDT_GRID:
            booster = fit_gbdt(train_x, train_y, names, leaves=leaves, rounds=rounds, seed=seed)
            gbdt_auc[(leaves, rounds)] += roc_auc_score(test_y, booster.predict(test_x))
    # max() keeps the first of equals: the grids run from the most to the least regularised.
    best_c = max(SCORECARD_C_GRID, key=lambda c: scorecard_auc[c])
    best_leaves, best_rounds = max(GBDT_GRID, key=lambda point: gbdt_auc[point])
    return Hyperparameters(best_c, best_leaves, best_rounds)


def _outcomes(dataset: Dataset) -> NDArray[np.int_]:
    return np.array(dataset.bad, dtype=np.int_)


def train(
    dataset: Dataset,
    *,
    seed: int = DEFAULT_SEED,
    trained_at: datetime | None = None,
    trainer: str = "",
    name: str | None = None,
    hyperparameters: Hyperparameters | None = None,
    evaluation: Mapping[str, object] | None = None,
    fairness: Mapping[str, object] | None = None,
) -> TrainedModel:
    """Both models on all of the dataset's rows.  The same dataset, seed, trained_at and
    trainer give the same model, byte for byte (tested by its file's hash).  `evaluation` and
    `fairness` (evaluation.py, fairness.py: the cross-validated figures) go into the card."""
    names = active_features(dataset.applicants)
    matrix = feature_matrix(dataset.applicants, names)
    bad = _outcomes(dataset)
    chosen = hyperparameters or select_hyperparameters(
        matrix, bad, names, seed=seed, folds=TRAINING_FOLDS
    )
    selection = (
        f"{TRAINING_FOLDS}-fold stratified CV on the training rows, best mean AUC"
        if hyperparameters is None
        else "given by the trainer"
    )
    scorecard = fit_scorecard(matrix, bad, names, chosen.scorecard_c)
    table = _scorecard_table(scorecard, names)
    _check_table(table, scorecard, matrix, names)
    booster = fit_gbdt(
        matrix, bad, names, leaves=chosen.gbdt_leaves, rounds=chosen.gbdt_rounds, seed=seed
    )
    reasons = build_reason_table({c.feature: c.splits for c in table.characteristics})
    model_name = name or f"credit-{dataset.name}-{seed}"
    at = (trained_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    card = _card(model_name, dataset, names, chosen, selection, seed, at, trainer)
    card["metrics"] = dict(evaluation) if evaluation is not None else None
    card["fairness"] = dict(fairness) if fairness is not None else None
    return TrainedModel(model_name, names, table, booster.model_to_string(), reasons, card)


def _bin_labels(name: str, characteristic_splits: object, index: int) -> tuple[str, str]:
    feature = FEATURES_BY_NAME[name]
    if is_flag(feature) and len(characteristic_splits) == 1:  # type: ignore[arg-type]
        return flag_texts(feature)[index]
    if feature.kind == "numeric":
        splits = tuple(float(v) for v in characteristic_splits)  # type: ignore[attr-defined]
        return range_texts(feature, splits, index)
    field = FIELDS_BY_NAME[feature.fields[0]]
    group = characteristic_splits[index]  # type: ignore[index]
    codes = [field.categories[int(v)] for v in sorted(group)]
    return "、".join(c.label_zh for c in codes), " / ".join(c.label_en for c in codes)


def _characteristic(name: str, optimal: object, rows: pd.DataFrame) -> Characteristic:
    feature = FEATURES_BY_NAME[name]
    splits_raw = optimal.splits  # type: ignore[attr-defined]
    # optbinning's detailed table lists a variable's bins in order, then Special, then Missing.
    regular = rows.iloc[:-2]
    missing = rows.iloc[-1]
    if str(missing["Bin"]) != "Missing":
        raise RuntimeError(f"{name}: optbinning's table does not end with the Missing bin")
    bins = []
    for index, (_, row) in enumerate(regular.iterrows()):
        label_zh, label_en = _bin_labels(name, splits_raw, index)
        bins.append(
            ScorecardBin(
                label_zh,
                label_en,
                round(float(row["Points"])),
                float(row["Points"]),
                int(row["Count"]),
                float(row["Event rate"]),
            )
        )
    if feature.kind == "numeric":
        splits = tuple(float(v) for v in splits_raw)
        category_bins: tuple[int, ...] = ()
    else:
        splits = ()
        where = {int(v): i for i, group in enumerate(splits_raw) for v in group}
        codes = FIELDS_BY_NAME[feature.fields[0]].codes
        category_bins = tuple(where.get(i, MISSING_BIN) for i in range(len(codes)))
    return Characteristic(
        name,
        feature.kind,
        splits,
        category_bins,
        tuple(bins),
        round(float(missing["Points"])),
        float(missing["Points"]),
    )


def _scorecard_table(scorecard: Scorecard, names: tuple[str, ...]) -> ScorecardTable:
    detailed = scorecard.table(style="detailed")
    process = scorecard.binning_process_
    return ScorecardTable(
        tuple(
            _characteristic(
                name, process.get_binned_variable(name), detailed[detailed["Variable"] == name]
            )
            for name in names
        )
    )


def _check_table(
    table: ScorecardTable, scorecard: Scorecard, matrix: NDArray[np.float64], names: tuple[str, ...]
) -> None:
    """The lookup table must give optbinning's own score on every training row: a table that
    read a bin wrongly would score applicants other than the model that was evaluated."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = scorecard.score(_frame(matrix, names))
    found = np.array([table.points(list(row))[1] for row in matrix])
    worst = float(np.max(np.abs(found - expected)))
    if worst > SCORE_CHECK_TOLERANCE:
        raise RuntimeError(f"scorecard lookup table differs from optbinning by {worst} points")


def _card(
    name: str,
    dataset: Dataset,
    names: tuple[str, ...],
    chosen: Hyperparameters,
    selection: str,
    seed: int,
    trained_at: str,
    trainer: str,
) -> dict[str, object]:
    return {
        "name": name,
        "format": MODEL_FORMAT,
        "trained_at": trained_at,
        "trainer": trainer,
        "seed": seed,
        "data": {
            "name": dataset.name,
            "source": dataset.source,
            "sha256": dataset.sha256,
            "rows": len(dataset.bad),
            "bad": dataset.bad_count,
        },
        "features": [
            {
                "name": n,
                "kind": FEATURES_BY_NAME[n].kind,
                "fields": list(FEATURES_BY_NAME[n].fields),
                "monotone": FEATURES_BY_NAME[n].monotone,
                "label_zh": FEATURES_BY_NAME[n].label_zh,
                "label_en": FEATURES_BY_NAME[n].label_en,
            }
            for n in names
        ],
        "fields_not_used": {
            f.name: EXCLUDED_FIELDS.get(f.name, "no variation in the training data")
            for f in FIELDS
            if not any(f.name in FEATURES_BY_NAME[n].fields for n in names)
        },
        "parameters": {
            "selection": selection,
            "chosen": chosen.to_json(),
            "scorecard": {
                "binning": "optbinning BinningProcess (optimal binning, CP solver); bad-rate "
                "trends follow the features' monotone constraints",
                "logistic_c_grid": list(SCORECARD_C_GRID),
                "scaling": {
                    "base_points": PDO_BASE_POINTS,
                    "base_odds_good_to_bad": PDO_BASE_ODDS,
                    "points_to_double_odds": PDO_POINTS,
                },
            },
            "gbdt": {
                "grid_leaves_rounds": [list(point) for point in GBDT_GRID],
                "params": gbdt_params(names, chosen.gbdt_leaves, seed),
            },
        },
        "libraries": {
            lib: version(lib) for lib in ("lightgbm", "optbinning", "scikit-learn", "numpy")
        },
    }

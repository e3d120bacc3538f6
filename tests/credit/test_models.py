"""Both models, their file, the fast scorer, the reasons, the evaluation and fairness report.

Real LightGBM and optbinning throughout.  The model is trained once for the module with fixed
hyperparameters (the nested selection has its own test); the full nested 5-fold report is the
docs command (`python -m zhijin.credit.report`), not a test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from zhijin.credit import scoring
from zhijin.credit.applicant import Applicant
from zhijin.credit.artifact import (
    InvalidModelFile,
    LoadedModel,
    ModelTampered,
    load_model,
    save_model,
)
from zhijin.credit.datasets import Dataset, german_credit
from zhijin.credit.evaluation import Evaluation, cross_validate
from zhijin.credit.fairness import fairness_report, render_markdown
from zhijin.credit.features import FEATURES_BY_NAME, feature_row
from zhijin.credit.scoring import Scorer
from zhijin.credit.training import (
    GBDT_GRID,
    SCORECARD_C_GRID,
    Hyperparameters,
    TrainedModel,
    feature_matrix,
    fit_scorecard,
    scorecard_probability,
    select_hyperparameters,
    train,
)

SEED = 11
FIXED = Hyperparameters(scorecard_c=0.1, gbdt_leaves=4, gbdt_rounds=120)
AT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return german_credit()


@pytest.fixture(scope="module")
def trained(data: Dataset) -> TrainedModel:
    return train(data, seed=SEED, trained_at=AT, trainer="did:key:test", hyperparameters=FIXED)


@pytest.fixture(scope="module")
def model_file(trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("model") / "credit-model.json"
    return path, save_model(trained, path)


@pytest.fixture(scope="module")
def loaded(model_file: tuple[Path, str]) -> LoadedModel:
    path, sha256 = model_file
    return load_model(path, expected_sha256=sha256)


@pytest.fixture(scope="module")
def scorer(loaded: LoadedModel) -> Scorer:
    return Scorer.from_model(loaded)


@pytest.fixture(scope="module")
def evaluation(data: Dataset) -> Evaluation:
    return cross_validate(data, seed=SEED, folds=3, hyperparameters=FIXED)


def test_the_file_hash_is_the_models_identity(model_file: tuple[Path, str]) -> None:
    path, sha256 = model_file
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_data_and_seed_give_the_same_file(
    data: Dataset, model_file: tuple[Path, str], tmp_path: Path
) -> None:
    again = train(data, seed=SEED, trained_at=AT, trainer="did:key:test", hyperparameters=FIXED)
    assert save_model(again, tmp_path / "again.json") == model_file[1]
    other = train(data, seed=SEED + 1, trained_at=AT, trainer="did:key:test", hyperparameters=FIXED)
    assert save_model(other, tmp_path / "other.json") != model_file[1]


def test_the_card_says_what_the_model_is(loaded: LoadedModel) -> None:
    card = loaded.card
    assert card["trained_at"] == "2026-06-01T00:00:00+00:00" and card["trainer"] == "did:key:test"
    assert card["data"]["rows"] == 1_000 and card["data"]["bad"] == 300
    assert card["parameters"]["chosen"] == FIXED.to_json()
    assert card["parameters"]["scorecard"]["scaling"] == {
        "base_points": 600,
        "base_odds_good_to_bad": 50,
        "points_to_double_odds": 20,
    }
    # Protected attributes never enter a model; platform facts absent from the data drop out.
    assert "personal_status_sex" in card["fields_not_used"]
    assert "foreign_worker" in card["fields_not_used"]
    assert "monthly_income_minor" in card["fields_not_used"]
    assert "personal_status_sex" not in loaded.features
    assert FEATURES_BY_NAME["age_years"].monotone == -1
    gbdt = card["parameters"]["gbdt"]["params"]
    assert gbdt["monotone_constraints"] == [FEATURES_BY_NAME[n].monotone for n in loaded.features]


def test_a_tampered_file_is_refused_naming_the_model(
    model_file: tuple[Path, str], tmp_path: Path
) -> None:
    path, sha256 = model_file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "credit-model.json"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelTampered) as caught:
        load_model(tampered, expected_sha256=sha256)
    error = caught.value
    assert error.code == "model_hash_mismatch"
    assert error.details["model"] == "credit-model.json"
    assert error.details["expected_sha256"] == sha256
    assert error.details["found_sha256"] == hashlib.sha256(bytes(data)).hexdigest()
    assert sha256 in error.message and "credit-model.json" in error.message


def test_a_file_that_is_not_a_model_is_refused_even_with_its_own_hash(tmp_path: Path) -> None:
    for content in (b"{}", b"not json", b'{"format":"zhijin.credit.model/1"}'):
        path = tmp_path / "junk.json"
        path.write_bytes(content)
        with pytest.raises(InvalidModelFile):
            load_model(path, expected_sha256=hashlib.sha256(content).hexdigest())


def test_the_scorer_equals_lightgbm_on_every_training_row(
    data: Dataset, loaded: LoadedModel, scorer: Scorer
) -> None:
    matrix = feature_matrix(data.applicants, loaded.features)
    expected_pd = loaded.booster.predict(matrix)
    expected_contributions = loaded.booster.predict(matrix, pred_contrib=True)
    for i, applicant in enumerate(data.applicants):
        assert scorer.contributions(applicant) == pytest.approx(
            expected_contributions[i], abs=1e-12
        )
        assert scorer.gbdt_probability(applicant) == pytest.approx(expected_pd[i], abs=1e-12)
        assert abs(scorer.score(applicant).pd_ppm - expected_pd[i] * 1_000_000) <= 0.5 + 1e-6


def test_the_scorer_equals_the_scorecards_logistic(
    data: Dataset, loaded: LoadedModel, scorer: Scorer
) -> None:
    matrix = feature_matrix(data.applicants, loaded.features)
    bad = np.array(data.bad, dtype=np.int_)
    refit = fit_scorecard(matrix, bad, loaded.features, FIXED.scorecard_c)
    expected = scorecard_probability(refit, matrix, loaded.features)
    for i, applicant in enumerate(data.applicants):
        assert scorer.scorecard_probability(applicant) == pytest.approx(expected[i], abs=1e-9)


def test_points_are_the_sum_of_the_tables_integer_points(
    data: Dataset, loaded: LoadedModel, scorer: Scorer
) -> None:
    table = loaded.scorecard
    for applicant in data.applicants[:200]:
        row = feature_row(applicant, loaded.features)
        by_bin = [c.points(v)[0] for c, v in zip(table.characteristics, row, strict=True)]
        points, exact = table.points(row)
        assert scorer.score(applicant).points == points == sum(by_bin)
        assert abs(points - exact) <= len(row) / 2
    # 600 points are odds of 50:1, and 20 more points double the odds.
    assert table.probability(600) == pytest.approx(1 / 51)
    assert table.probability(620) == pytest.approx(1 / 101)


def test_reasons_are_at_most_four_adverse_and_specific(
    data: Dataset, loaded: LoadedModel, scorer: Scorer
) -> None:
    names = loaded.features
    seen_codes: set[str] = set()
    for applicant in data.applicants:
        score = scorer.score(applicant)
        contributions = scorer.contributions(applicant)
        assert len(score.reasons) <= 4
        ranked = [contributions[names.index(r.feature)] for r in score.reasons]
        assert all(c > 0 for c in ranked) and ranked == sorted(ranked, reverse=True)
        positive = sum(1 for c in contributions[: len(names)] if c > 0)
        assert len(score.reasons) == min(4, positive)
        for reason in score.reasons:
            seen_codes.add(reason.code)
            assert reason.code.startswith(reason.feature)
            assert reason.text_zh and reason.text_en and "algorithm" not in reason.text_en
            value = getattr(applicant, FEATURES_BY_NAME[reason.feature].fields[0])
            if reason.feature in ("duration_months", "age_years"):
                assert f"{value}" in reason.text_zh and f"{value}" in reason.text_en
    assert "checking_status_overdrawn" in seen_codes and "duration_months_high" in seen_codes


def test_a_worse_fact_never_lowers_the_pd_where_the_model_is_monotone(
    data: Dataset, loaded: LoadedModel, scorer: Scorer
) -> None:
    for applicant in data.applicants[:40]:
        by_age = [
            scorer.gbdt_probability(dataclasses.replace(applicant, age_years=age))
            for age in range(18, 101, 3)
        ]
        # Flat stretches may differ in the last bit: the PD is the sum of the contributions.
        assert all(a >= b - 1e-12 for a, b in itertools.pairwise(by_age))
        # More to borrow over the same term raises both the amount and the monthly burden.
        by_amount = [
            scorer.gbdt_probability(dataclasses.replace(applicant, amount_minor=yuan * 100))
            for yuan in range(250, 20_000, 750)
        ]
        assert all(a <= b + 1e-12 for a, b in itertools.pairwise(by_amount))
        # The term alone (a longer term also lowers the monthly burden, its own feature).
        row = feature_row(applicant, loaded.features)
        column = loaded.features.index("duration_months")
        rows = np.array([row] * 18)
        rows[:, column] = np.arange(4, 73, 4)
        by_duration = loaded.booster.predict(rows)
        assert all(np.diff(by_duration) >= 0)


def test_a_platform_model_learns_the_members_facts_and_scores_thin_files(
    data: Dataset, tmp_path: Path
) -> None:
    # A member's own data: German Credit rows plus repayment facts that carry signal; every
    # fifth applicant is new to the platform (no facts), so the missing bins are trained and
    # training's own check holds the lookup table to optbinning on those rows too.
    rng = np.random.default_rng(5)
    applicants: list[Applicant] = []
    for i, (applicant, bad) in enumerate(zip(data.applicants, data.bad, strict=True)):
        if i % 5 == 0:
            applicants.append(applicant)
            continue
        applicants.append(
            dataclasses.replace(
                applicant,
                on_time_repayments=int(rng.integers(0, 40)),
                late_repayments=int(rng.poisson(3.0 if bad else 0.5)),
                months_on_platform=int(rng.integers(1, 60)),
            )
        )
    member = Dataset("member", "test", "0" * 64, tuple(applicants), data.bad)
    model = train(member, seed=SEED, trained_at=AT, hyperparameters=FIXED)
    assert {"late_repayments", "on_time_repayments", "late_share_bps"} <= set(model.features)
    assert "monthly_income_yuan" not in model.features
    path = tmp_path / "member.json"
    member_scorer = Scorer.from_model(load_model(path, expected_sha256=save_model(model, path)))
    late = dataclasses.replace(applicants[1], late_repayments=12, on_time_repayments=1)
    reasons = member_scorer.score(late).reasons
    assert any(r.code == "late_repayments_high" and "12" in r.text_zh for r in reasons)
    thin = member_scorer.score(applicants[0])  # no platform facts at all
    assert 0 < thin.pd_ppm < 1_000_000
    assert all(
        not r.code.endswith("_unknown") or r.text_en.startswith("No record") for r in thin.reasons
    )


def test_a_thin_file_applicant_is_scored_not_refused(scorer: Scorer, data: Dataset) -> None:
    thin = dataclasses.replace(
        data.applicants[5], credit_history="no_credits_or_all_paid", personal_status_sex=None
    )
    score = scorer.score(thin)
    assert 0 < score.pd_ppm < 1_000_000 and score.points > 0


def test_cross_validated_auc_is_in_an_honest_band(evaluation: Evaluation) -> None:
    # Above 0.85 on German Credit means leakage; below 0.70, a broken model.
    assert 0.70 < evaluation.scorecard.auc < 0.85
    assert 0.70 < evaluation.gbdt.auc < 0.85
    assert 0.70 < evaluation.baseline_logistic.auc < 0.85
    assert 0.60 < evaluation.baseline_single_feature.auc < evaluation.gbdt.auc
    for metrics in (evaluation.scorecard, evaluation.gbdt):
        assert metrics.gini == pytest.approx(2 * metrics.auc - 1)
        assert 0 < metrics.ks < 1 and 0 < metrics.brier < 0.25
        assert [row.group for row in metrics.calibration] == list(range(1, 11))
        assert sum(row.count for row in metrics.calibration) == 1_000
        means = [row.predicted_mean for row in metrics.calibration]
        assert means == sorted(means)
    assert evaluation.to_json()["method"].endswith("fixed in advance")


def test_hyperparameters_are_chosen_from_the_grids(data: Dataset, loaded: LoadedModel) -> None:
    rows = np.arange(0, 1_000, 2)
    matrix = feature_matrix(data.applicants, loaded.features)[rows]
    bad = np.array(data.bad, dtype=np.int_)[rows]
    chosen = select_hyperparameters(matrix, bad, loaded.features, seed=SEED, folds=2)
    assert chosen.scorecard_c in SCORECARD_C_GRID
    assert (chosen.gbdt_leaves, chosen.gbdt_rounds) in GBDT_GRID


def test_the_fairness_report_has_every_group(data: Dataset, evaluation: Evaluation) -> None:
    report = fairness_report(data, evaluation, approve_below_pd_ppm=300_000)
    attributes = {g.attribute for g in report.groups}
    assert attributes == {"age_band", "sex", "personal_status_sex", "foreign_worker"}
    for attribute in attributes:
        groups = [g for g in report.groups if g.attribute == attribute]
        assert sum(g.count for g in groups) == 1_000
        assert max(g.disparate_impact for g in groups) == 1.0
        assert all(0 <= g.disparate_impact <= 1 for g in groups)
    young = next(g for g in report.groups if g.group == "18-25")
    assert young.bad_rate == pytest.approx(80 / 190)  # German Credit's under-26 bad rate
    approved = (evaluation.gbdt_pd * 1_000_000 < 300_000).mean()
    assert report.approval_rate == pytest.approx(approved)
    text = render_markdown(report)
    assert "| 年龄段 Age band | 18–25 岁 aged 18-25 | 190 |" in text
    assert text.count("\n| ") == len(report.groups) + 1
    stricter = fairness_report(data, evaluation, approve_below_pd_ppm=100_000)
    assert stricter.approval_rate < report.approval_rate


@pytest.mark.parametrize("cutoff", [0, -1, 1_000_001, 0.3])
def test_a_bad_cutoff_is_refused(data: Dataset, evaluation: Evaluation, cutoff: object) -> None:
    with pytest.raises(ValueError):
        fairness_report(data, evaluation, approve_below_pd_ppm=cutoff)  # type: ignore[arg-type]


def test_a_model_file_holds_no_nan(model_file: tuple[Path, str]) -> None:
    text = model_file[0].read_text("utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert not math.isnan(float(len(text)))


def test_without_the_single_row_api_the_scorer_falls_back_to_predict(
    data: Dataset, loaded: LoadedModel, scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing_api(*args: object) -> None:
        raise AttributeError("LGBM_BoosterPredictForMatSingleRowFast")

    monkeypatch.setattr(scoring, "_FastContributions", missing_api)
    fallback = Scorer.from_model(loaded)
    for applicant in data.applicants[:100]:
        assert fallback.contributions(applicant) == pytest.approx(
            scorer.contributions(applicant), abs=1e-12
        )
        assert fallback.score(applicant).reasons == scorer.score(applicant).reasons

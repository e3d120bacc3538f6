"""The fairness report: approval rate, bad rate and AUC by age band, sex and marital status, and
foreign-worker status, with the disparate-impact ratio, at the policy's cut-off.

The probabilities are the cross-validated (out-of-fold) ones of evaluation.py, so every
applicant is judged by a model that never saw them.  An applicant is approved when the
gradient-boosted PD is below the cut-off (`approve_below_pd_ppm`, the policy's).  The
disparate-impact ratio of a group is its approval rate over the approval rate of the most
approved group of the same attribute; under the four-fifths rule (US EEOC, used in fair-lending
reviews) a ratio below 0.8 flags adverse impact to be explained or removed.

Sex and marital status (German Credit's `personal_status_sex`) and foreign-worker status are
never model features (applicant.py); they are read here only, to measure what the models do to
those groups.  `zhijin credit fairness` prints `render_markdown(fairness_for(...))`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from zhijin.credit.applicant import FIELDS_BY_NAME, Applicant
from zhijin.credit.datasets import Dataset
from zhijin.credit.evaluation import Evaluation, cross_validate

__all__ = [
    "ATTRIBUTE_TITLES",
    "DEFAULT_APPROVE_BELOW_PD_PPM",
    "FOUR_FIFTHS",
    "FairnessReport",
    "GroupFigures",
    "fairness_for",
    "fairness_report",
    "group_labels",
    "render_markdown",
]

DEFAULT_APPROVE_BELOW_PD_PPM = 300_000  # 30%: German Credit's own bad rate
FOUR_FIFTHS = 0.8
PPM = 1_000_000
AGE_BANDS = ((18, 25), (26, 35), (36, 50), (51, 100))


@dataclass(frozen=True, slots=True)
class GroupFigures:
    attribute: str
    group: str
    label_zh: str
    label_en: str
    count: int
    approval_rate: float
    bad_rate: float
    auc: float | None  # None when the group lacks good or bad applicants
    disparate_impact: float  # approval rate / the attribute's highest approval rate

    @property
    def adverse_impact(self) -> bool:
        return self.disparate_impact < FOUR_FIFTHS

    def to_json(self) -> dict[str, object]:
        return {
            "attribute": self.attribute,
            "group": self.group,
            "count": self.count,
            "approval_rate": round(self.approval_rate, 4),
            "bad_rate": round(self.bad_rate, 4),
            "auc": None if self.auc is None else round(self.auc, 4),
            "disparate_impact": round(self.disparate_impact, 4),
            "adverse_impact": self.adverse_impact,
        }


@dataclass(frozen=True, slots=True)
class FairnessReport:
    dataset: str
    folds: int
    seed: int
    approve_below_pd_ppm: int
    approval_rate: float
    groups: tuple[GroupFigures, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "method": f"out-of-fold PDs of a stratified {self.folds}-fold CV (seed {self.seed})",
            "approve_below_pd_ppm": self.approve_below_pd_ppm,
            "approval_rate": round(self.approval_rate, 4),
            "four_fifths": FOUR_FIFTHS,
            "groups": [group.to_json() for group in self.groups],
        }


def _age_band(applicant: Applicant) -> str:
    for low, high in AGE_BANDS:
        if low <= applicant.age_years <= high:
            return f"{low}-{high}"
    raise ValueError(f"age {applicant.age_years} is in no band")


def _sex(applicant: Applicant) -> str:
    status = applicant.personal_status_sex
    return "unknown" if status is None else status.split("_", 1)[0]


def _personal_status(applicant: Applicant) -> str:
    return applicant.personal_status_sex or "unknown"


def _foreign_worker(applicant: Applicant) -> str:
    return {None: "unknown", True: "yes", False: "no"}[applicant.foreign_worker]


_ATTRIBUTES: tuple[tuple[str, Callable[[Applicant], str]], ...] = (
    ("age_band", _age_band),
    ("sex", _sex),
    ("personal_status_sex", _personal_status),
    ("foreign_worker", _foreign_worker),
)


def group_labels(attribute: str, group: str) -> tuple[str, str]:
    if attribute == "age_band":
        low, high = group.split("-")
        return f"{low}–{high} 岁", f"aged {low}-{high}"
    if attribute == "sex":
        return {"male": ("男性", "male"), "female": ("女性", "female")}.get(group, ("未知", group))
    if attribute == "foreign_worker":
        return {
            "yes": ("外籍劳工", "foreign worker"),
            "no": ("非外籍劳工", "not a foreign worker"),
        }.get(group, ("未知", group))
    field = FIELDS_BY_NAME["personal_status_sex"]
    if group in field.codes:
        category = field.category(group)
        return category.label_zh, category.label_en
    return "未知", group


def _group_auc(bad: NDArray[np.int_], pd: NDArray[np.float64]) -> float | None:
    if len(np.unique(bad)) < 2:
        return None
    return float(roc_auc_score(bad, pd))


def _attribute_groups(
    attribute: str,
    keys: list[str],
    bad: NDArray[np.int_],
    pd: NDArray[np.float64],
    approved: NDArray[np.bool_],
) -> list[GroupFigures]:
    names = sorted(set(keys))
    members = {name: np.array([key == name for key in keys]) for name in names}
    rates = {name: float(approved[members[name]].mean()) for name in names}
    best = max(rates.values())
    groups = []
    for name in names:
        mask = members[name]
        label_zh, label_en = group_labels(attribute, name)
        groups.append(
            GroupFigures(
                attribute,
                name,
                label_zh,
                label_en,
                int(mask.sum()),
                rates[name],
                float(bad[mask].mean()),
                _group_auc(bad[mask], pd[mask]),
                rates[name] / best if best > 0 else 1.0,
            )
        )
    return groups


def fairness_report(
    dataset: Dataset,
    evaluation: Evaluation,
    *,
    approve_below_pd_ppm: int = DEFAULT_APPROVE_BELOW_PD_PPM,
) -> FairnessReport:
    """The report of the evaluation's out-of-fold gradient-boosted PDs on this dataset."""
    if type(approve_below_pd_ppm) is not int or not 0 < approve_below_pd_ppm <= PPM:
        raise ValueError(f"the cut-off must be an integer PD in ppm, 1 to {PPM}")
    if len(evaluation.gbdt_pd) != len(dataset.bad) or evaluation.dataset != dataset.name:
        raise ValueError("the evaluation is not of this dataset")
    bad = np.array(dataset.bad, dtype=np.int_)
    pd = evaluation.gbdt_pd
    approved = pd * PPM < approve_below_pd_ppm
    groups: list[GroupFigures] = []
    for attribute, key in _ATTRIBUTES:
        groups.extend(
            _attribute_groups(attribute, [key(a) for a in dataset.applicants], bad, pd, approved)
        )
    return FairnessReport(
        dataset.name,
        evaluation.folds,
        evaluation.seed,
        approve_below_pd_ppm,
        float(approved.mean()),
        tuple(groups),
    )


def fairness_for(
    dataset: Dataset,
    *,
    seed: int,
    approve_below_pd_ppm: int = DEFAULT_APPROVE_BELOW_PD_PPM,
    folds: int = 5,
) -> FairnessReport:
    """Cross-validate on the dataset and report (what `zhijin credit fairness` runs)."""
    evaluation = cross_validate(dataset, seed=seed, folds=folds)
    return fairness_report(dataset, evaluation, approve_below_pd_ppm=approve_below_pd_ppm)


ATTRIBUTE_TITLES = {
    "age_band": ("年龄段", "Age band"),
    "sex": ("性别", "Sex"),
    "personal_status_sex": ("性别与婚姻状况", "Sex and marital status"),
    "foreign_worker": ("外籍劳工", "Foreign worker"),
}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def render_markdown(report: FairnessReport) -> str:
    """The report as a markdown table (zh-CN and English headings), for docs/credit.md."""
    lines = [
        f"公平性报告 / Fairness report: {report.dataset}, out-of-fold PDs of a stratified "
        f"{report.folds}-fold CV (seed {report.seed}); approved when PD < "
        f"{report.approve_below_pd_ppm / 10_000:g}% (overall approval "
        f"{_percent(report.approval_rate)}); disparate impact = approval rate / the attribute's "
        f"highest; below {FOUR_FIFTHS} flags adverse impact (four-fifths rule).",
        "",
        "| 属性 attribute | 组 group | 人数 n | 批准率 approval | 坏账率 bad rate | AUC "
        "| 差异影响 DI | 四五规则 4/5 |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for group in report.groups:
        title_zh, title_en = ATTRIBUTE_TITLES[group.attribute]
        auc = "-" if group.auc is None else f"{group.auc:.3f}"
        flag = "不利影响 adverse" if group.adverse_impact else "通过 ok"
        lines.append(
            f"| {title_zh} {title_en} | {group.label_zh} {group.label_en} | {group.count} "
            f"| {_percent(group.approval_rate)} | {_percent(group.bad_rate)} | {auc} "
            f"| {group.disparate_impact:.2f} | {flag} |"
        )
    return "\n".join(lines) + "\n"

"""Reason codes: what about the applicant lowered their score, in the ECOA / Reg B sense.

Each model carries a reason table built at training time, one entry per feature and bin: a
stable code and a zh-CN and an English text that names the applicant's own value ("贷款期限为
48 个月，处于风险较高的区间（43.5 个月及以上）" / "Loan duration is 48 months, in a higher-risk
range (43.5 months or more)").  The scorer ranks the features by their exact contribution to
the gradient-boosted model's log-odds (LightGBM's `pred_contrib`, TreeSHAP) and reports at most
four of those that raised the probability of default, the most adverse first.  A feature that
lowered it is never a reason; a vague text ("the algorithm is complex") is never one either.

Codes: a category's `<feature>_<category code>` ("checking_status_below_200"); a numeric bin's
`<feature>_<high|low|range>` (high: the feature raises the risk, low: it lowers it, range:
neither in general); a missing platform fact's `<feature>_unknown`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from zhijin.credit.applicant import FIELDS_BY_NAME
from zhijin.credit.features import FEATURES_BY_NAME, Feature

__all__ = [
    "REASONS_MAX",
    "Reason",
    "ReasonEntry",
    "ReasonTable",
    "build_reason_table",
    "flag_texts",
    "is_flag",
    "range_texts",
]

REASONS_MAX = 4


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    feature: str
    text_zh: str
    text_en: str

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "feature": self.feature,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
        }


@dataclass(frozen=True, slots=True)
class ReasonEntry:
    """One feature's reasons: per bin (numeric) or per category index (categorical), plus the
    reason when the fact is missing.  Numeric texts hold `{value}`, filled in per applicant."""

    feature: str
    kind: str
    splits: tuple[float, ...]
    texts: tuple[tuple[str, str, str], ...]  # (code, text_zh, text_en) per bin or category
    missing: tuple[str, str, str]

    def reason(self, value: float) -> Reason:
        if math.isnan(value):
            code, text_zh, text_en = self.missing
            return Reason(code, self.feature, text_zh, text_en)
        if self.kind == "categorical":
            code, text_zh, text_en = self.texts[int(value)]
            return Reason(code, self.feature, text_zh, text_en)
        code, text_zh, text_en = self.texts[bisect_right(self.splits, value)]
        shown_zh, shown_en = _display(FEATURES_BY_NAME[self.feature], value)
        return Reason(
            code,
            self.feature,
            text_zh.replace("{value}", shown_zh),
            text_en.replace("{value}", shown_en),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "splits": list(self.splits),
            "texts": [list(text) for text in self.texts],
            "missing": list(self.missing),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReasonEntry:
        splits = data["splits"]
        texts = data["texts"]
        missing = data["missing"]
        if not (isinstance(splits, list) and isinstance(texts, list) and isinstance(missing, list)):
            raise ValueError("a reason entry holds lists")
        return cls(
            str(data["feature"]),
            str(data["kind"]),
            tuple(float(v) for v in splits),
            tuple(_triple(text) for text in texts),
            _triple(missing),
        )


@dataclass(frozen=True, slots=True)
class ReasonTable:
    entries: tuple[ReasonEntry, ...]  # in the model's feature order

    def to_json(self) -> dict[str, object]:
        return {"entries": [entry.to_json() for entry in self.entries]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ReasonTable:
        entries = data["entries"]
        if not isinstance(entries, list):
            raise ValueError("reason entries must be a list")
        return cls(tuple(ReasonEntry.from_json(entry) for entry in entries))


def _triple(value: object) -> tuple[str, str, str]:
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise ValueError("a reason text is [code, text_zh, text_en]")
    return (value[0], value[1], value[2])


def _number(value: float) -> str:
    rounded = round(value, 1)
    return f"{rounded:,.0f}" if rounded == int(rounded) else f"{rounded:,.1f}"


def _display(feature: Feature, value: float) -> tuple[str, str]:
    if feature.unit_en == "bp":
        return f"{value / 100:.1f}%", f"{value / 100:.1f}%"
    zh = f"{_number(value)} {feature.unit_zh}".strip()
    en = f"{_number(value)} {feature.unit_en}".strip()
    return zh, en


def _is_integer(feature: Feature) -> bool:
    field = FIELDS_BY_NAME.get(feature.name)
    return field is not None and field.kind == "int"


def _bound(feature: Feature, value: float) -> tuple[str, str]:
    """A bin edge as people read it: an integer feature's edge 43.5 is "44" (bins are
    `low <= value < high`, so an integer at or above 43.5 is 44 or more)."""
    if _is_integer(feature):
        return _display(feature, float(math.ceil(value)))
    return _display(feature, value)


def _plain(feature: Feature, value: float) -> str:
    """The number alone (the unit follows the range's upper end)."""
    if feature.unit_en == "bp":
        return f"{value / 100:.1f}%"
    return _number(value)


def range_texts(feature: Feature, splits: tuple[float, ...], index: int) -> tuple[str, str]:
    """Bin `index` of a numeric feature split at `splits`, in zh-CN and English."""
    integer = _is_integer(feature)
    low_edge = splits[index - 1] if index > 0 else None
    high_edge = splits[index] if index < len(splits) else None
    if low_edge is None and high_edge is None:
        return "全部取值", "any value"
    if high_edge is None:
        assert low_edge is not None
        low = _bound(feature, low_edge)
        return f"{low[0]}及以上", f"{low[1]} or more"
    if low_edge is None:
        high = _bound(feature, high_edge)
        return f"低于 {high[0]}", f"below {high[1]}"
    if integer:
        # The integers from ceil(low) to ceil(high) - 1, both included.
        first, last = float(math.ceil(low_edge)), float(math.ceil(high_edge) - 1)
        if first == last:
            return _display(feature, first)
        shown_zh, shown_en = _display(feature, last)
        return f"{_plain(feature, first)} 至 {shown_zh}", f"{_plain(feature, first)} to {shown_en}"
    shown_zh, shown_en = _display(feature, high_edge)
    start = _plain(feature, low_edge)
    return f"{start} 至 {shown_zh}", f"{start} to {shown_en}"


def _direction(feature: Feature) -> str:
    return {1: "high", -1: "low"}.get(feature.monotone, "range")


def _numeric_entry(feature: Feature, splits: tuple[float, ...]) -> ReasonEntry:
    if is_flag(feature):
        return _flag_entry(feature)
    code = f"{feature.name}_{_direction(feature)}"
    texts = []
    for index in range(len(splits) + 1):
        range_zh, range_en = range_texts(feature, splits, index)
        texts.append(
            (
                code,
                f"{feature.label_zh}为 {{value}}，处于风险较高的区间（{range_zh}）",
                f"{feature.label_en} is {{value}}, in a higher-risk range ({range_en})",
            )
        )
    return ReasonEntry(feature.name, "numeric", splits, tuple(texts), _missing(feature))


def is_flag(feature: Feature) -> bool:
    field = FIELDS_BY_NAME.get(feature.fields[0])
    return field is not None and field.kind == "bool"


def flag_texts(feature: Feature) -> tuple[tuple[str, str], tuple[str, str]]:
    """(zh, en) of a 0/1 feature's two values: the fact, not the number."""
    return (
        (f"未{feature.label_zh}", f"No {feature.label_en.lower()}"),
        (f"已{feature.label_zh}", feature.label_en),
    )


def _flag_entry(feature: Feature) -> ReasonEntry:
    no, yes = flag_texts(feature)
    return ReasonEntry(
        feature.name,
        "numeric",
        (0.5,),
        ((f"{feature.name}_no", *no), (f"{feature.name}_yes", *yes)),
        _missing(feature),
    )


def _categorical_entry(feature: Feature) -> ReasonEntry:
    field = FIELDS_BY_NAME[feature.fields[0]]
    texts = tuple(
        (
            f"{feature.name}_{category.code}",
            f"{field.label_zh}：{category.label_zh}",
            f"{field.label_en}: {category.label_en}",
        )
        for category in field.categories
    )
    return ReasonEntry(feature.name, "categorical", (), texts, _missing(feature))


def _missing(feature: Feature) -> tuple[str, str, str]:
    return (
        f"{feature.name}_unknown",
        f"平台没有{feature.label_zh}的记录",
        f"No record on the platform of: {feature.label_en.lower()}",
    )


def build_reason_table(splits_by_feature: dict[str, tuple[float, ...]]) -> ReasonTable:
    """The reason table of a model whose numeric features are binned at these splits (the
    scorecard's bins), in the dict's order (the model's feature order)."""
    entries = []
    for name, splits in splits_by_feature.items():
        feature = FEATURES_BY_NAME[name]
        if feature.kind == "categorical":
            entries.append(_categorical_entry(feature))
        else:
            entries.append(_numeric_entry(feature, splits))
    return ReasonTable(tuple(entries))

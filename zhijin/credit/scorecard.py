"""The scorecard as a plain lookup table: each feature's bins and the points each bin earns.

Points scaling (PDO): 600 points at good:bad odds of 50:1, and 20 points double the odds, so
score = offset + factor x ln(odds), factor = 20 / ln 2 (about 28.85), offset = 600 - factor x
ln 50 (about 487.1).  Each bin's points come from optbinning's Scorecard (its WoE times the
logistic coefficient, scaled); the table keeps them exact (for the logistic's probability) and
rounded half-even to integers (what an officer adds up by hand: the applicant's points are the
sum of the integer points).

A numeric feature's bins are split points: value < splits[0] is bin 0, splits[i-1] <= value <
splits[i] is bin i (optbinning's convention, checked against it on every training row).  A
categorical feature maps each category code to a bin.  A missing fact or a category the
training data never had earns the missing points (WoE 0, optbinning's default).

This module has no pandas: the scorer reads the table on its hot path.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

__all__ = [
    "PDO_BASE_ODDS",
    "PDO_BASE_POINTS",
    "PDO_POINTS",
    "Characteristic",
    "ScorecardBin",
    "ScorecardTable",
]

PDO_BASE_POINTS = 600
PDO_BASE_ODDS = 50  # good:bad
PDO_POINTS = 20
MISSING_BIN = -1


@dataclass(frozen=True, slots=True)
class ScorecardBin:
    label_zh: str
    label_en: str
    points: int
    points_exact: float
    count: int  # training applicants in the bin
    event_rate: float  # their bad rate

    def to_json(self) -> dict[str, object]:
        return {
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "points": self.points,
            "points_exact": self.points_exact,
            "count": self.count,
            "event_rate": self.event_rate,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ScorecardBin:
        return cls(
            str(data["label_zh"]),
            str(data["label_en"]),
            _int(data["points"]),
            _float(data["points_exact"]),
            _int(data["count"]),
            _float(data["event_rate"]),
        )


@dataclass(frozen=True, slots=True)
class Characteristic:
    """One feature's bins.  Numeric: `splits`.  Categorical: `category_bins[i]` is the bin of
    category index i (MISSING_BIN for a category training never saw)."""

    feature: str
    kind: str  # "numeric" | "categorical"
    splits: tuple[float, ...]
    category_bins: tuple[int, ...]
    bins: tuple[ScorecardBin, ...]
    missing_points: int
    missing_points_exact: float

    def bin_index(self, value: float) -> int:
        if math.isnan(value):
            return MISSING_BIN
        if self.kind == "numeric":
            return bisect_right(self.splits, value)
        index = int(value)
        return self.category_bins[index] if 0 <= index < len(self.category_bins) else MISSING_BIN

    def points(self, value: float) -> tuple[int, float]:
        index = self.bin_index(value)
        if index == MISSING_BIN:
            return self.missing_points, self.missing_points_exact
        chosen = self.bins[index]
        return chosen.points, chosen.points_exact

    def to_json(self) -> dict[str, object]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "splits": list(self.splits),
            "category_bins": list(self.category_bins),
            "bins": [item.to_json() for item in self.bins],
            "missing_points": self.missing_points,
            "missing_points_exact": self.missing_points_exact,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Characteristic:
        return cls(
            str(data["feature"]),
            str(data["kind"]),
            tuple(_float(v) for v in _list(data["splits"])),
            tuple(_int(v) for v in _list(data["category_bins"])),
            tuple(ScorecardBin.from_json(_dict(v)) for v in _list(data["bins"])),
            _int(data["missing_points"]),
            _float(data["missing_points_exact"]),
        )


@dataclass(frozen=True, slots=True)
class ScorecardTable:
    characteristics: tuple[Characteristic, ...]  # in the model's feature order

    @property
    def factor(self) -> float:
        return PDO_POINTS / math.log(2)

    @property
    def offset(self) -> float:
        return PDO_BASE_POINTS - self.factor * math.log(PDO_BASE_ODDS)

    def points(self, row: list[float]) -> tuple[int, float]:
        """(integer points, exact points) of a feature row in the model's feature order."""
        total = 0
        exact = 0.0
        for characteristic, value in zip(self.characteristics, row, strict=True):
            points, points_exact = characteristic.points(value)
            total += points
            exact += points_exact
        return total, exact

    def probability(self, points_exact: float) -> float:
        """The logistic's probability of default at these (exact) points."""
        return 1.0 / (1.0 + math.exp((points_exact - self.offset) / self.factor))

    def to_json(self) -> dict[str, object]:
        return {
            "scaling": {
                "base_points": PDO_BASE_POINTS,
                "base_odds_good_to_bad": PDO_BASE_ODDS,
                "points_to_double_odds": PDO_POINTS,
            },
            "characteristics": [item.to_json() for item in self.characteristics],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ScorecardTable:
        return cls(
            tuple(Characteristic.from_json(_dict(v)) for v in _list(data["characteristics"]))
        )


# Readers of the artifact's JSON: a file that is not what save_model wrote fails loudly here.
def _int(value: object) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def _float(value: object) -> float:
    if type(value) not in (int, float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)  # type: ignore[arg-type]


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value

"""The behavioural score: what the platform itself sees of a customer, by documented rules.

A pure calculator (no state, no I/O): facts in, a score and its itemised contributions out.
Every contribution carries a stable code and a specific sentence in Chinese and English, so
the customer sees why the score is what it is, and, comparing two snapshots (`changes`), why it
changed.  The rules (docs/credit.md repeats them):

| code | rule | cap |
|---|---|---|
| base | every customer starts at 500 | - |
| on_time_repayments | +10 per instalment paid on time | +150 |
| late_repayments | -50 per instalment paid late or not at all | -300 |
| months_on_platform | +5 per full month since the first account opened | +60 |
| inflows_90d | +10 per full 1,000 yuan received in the last 90 days | +100 |
| balance_trend | +40 if the balance grew over the 90 days, -40 if it fell by more than half | - |

The score is clamped to 0..1000.  A thin-file customer (信用白户) still gets a score: the base
plus whatever the platform has seen, never a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhijin.credit import limits

__all__ = ["BehaviourFacts", "BehaviourScore", "Contribution", "behaviour_score", "changes"]

BASE_POINTS = 500
ON_TIME_POINTS, ON_TIME_CAP = 10, 150
LATE_POINTS, LATE_CAP = -50, -300
MONTH_POINTS, MONTHS_CAP = 5, 60
INFLOW_STEP_MINOR, INFLOW_POINTS, INFLOW_CAP = 100_000, 10, 100  # per 1,000 yuan in fen
TREND_POINTS = 40


@dataclass(frozen=True, slots=True)
class BehaviourFacts:
    """What the platform saw, summed over the sources the decision may use (consent)."""

    on_time_repayments: int = 0
    late_repayments: int = 0
    months_on_platform: int = 0
    inflow_minor_90d: int = 0
    balance_minor_now: int = 0
    balance_minor_90d_ago: int = 0


@dataclass(frozen=True, slots=True)
class Contribution:
    code: str
    points: int
    text_zh: str
    text_en: str

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "points": self.points,
            "text_zh": self.text_zh,
            "text_en": self.text_en,
        }


@dataclass(frozen=True, slots=True)
class BehaviourScore:
    score: int
    contributions: tuple[Contribution, ...]


def _yuan(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _repayments(facts: BehaviourFacts) -> list[Contribution]:
    on_time = min(facts.on_time_repayments * ON_TIME_POINTS, ON_TIME_CAP)
    late = max(facts.late_repayments * LATE_POINTS, LATE_CAP)
    return [
        Contribution(
            "on_time_repayments",
            on_time,
            f"按时还款 {facts.on_time_repayments} 次",
            f"{facts.on_time_repayments} instalments paid on time",
        ),
        Contribution(
            "late_repayments",
            late,
            f"逾期或未还款 {facts.late_repayments} 次",
            f"{facts.late_repayments} instalments paid late or not paid",
        ),
    ]


def _trend(facts: BehaviourFacts) -> Contribution:
    now, then = facts.balance_minor_now, facts.balance_minor_90d_ago
    if now > then:
        points = TREND_POINTS
    elif then > 0 and now * 2 < then:
        points = -TREND_POINTS
    else:
        points = 0
    return Contribution(
        "balance_trend",
        points,
        f"账户余额 90 天内从 {_yuan(then)} 元变为 {_yuan(now)} 元",
        f"balance went from {_yuan(then)} to {_yuan(now)} yuan over 90 days",
    )


def behaviour_score(facts: BehaviourFacts) -> BehaviourScore:
    """The score and every rule's contribution (in the table's order)."""
    months = min(facts.months_on_platform * MONTH_POINTS, MONTHS_CAP)
    inflow_steps = facts.inflow_minor_90d // INFLOW_STEP_MINOR
    contributions = (
        Contribution("base", BASE_POINTS, "基础分", "starting score"),
        *_repayments(facts),
        Contribution(
            "months_on_platform",
            months,
            f"在平台 {facts.months_on_platform} 个月",
            f"{facts.months_on_platform} months on the platform",
        ),
        Contribution(
            "inflows_90d",
            min(inflow_steps * INFLOW_POINTS, INFLOW_CAP),
            f"近 90 天收入 {_yuan(facts.inflow_minor_90d)} 元",
            f"{_yuan(facts.inflow_minor_90d)} yuan received in the last 90 days",
        ),
        _trend(facts),
    )
    total = sum(item.points for item in contributions)
    score = max(limits.BEHAVIOUR_SCORE_MIN, min(limits.BEHAVIOUR_SCORE_MAX, total))
    return BehaviourScore(score, contributions)


def changes(
    before: tuple[Contribution, ...], after: tuple[Contribution, ...]
) -> tuple[Contribution, ...]:
    """Why the score changed: each rule whose contribution moved, with the difference in
    points and the new sentence (a rule new to `after` counts from zero)."""
    old = {item.code: item.points for item in before}
    return tuple(
        Contribution(item.code, item.points - old.get(item.code, 0), item.text_zh, item.text_en)
        for item in after
        if item.points != old.get(item.code, 0)
    )

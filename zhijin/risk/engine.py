"""The decision: one payment's features, the active rules, the models, the tier policy ->
one score, its reasons, its tier and the versions that produced it.

    score = min(10000, Σ matching rules' score_bps
                       + anomaly_bps × weights.anomaly_bps / 10000      (once warmed up)
                       + supervised_bps × weights.supervised_bps / 10000 (when registered))
    tier  = refuse ≥ refuse_from_bps > hold ≥ hold_from_bps > allow, raised to the least tier
            any matching rule forces.

A customer refused in the last `step_up_after_refusal_ms` whose session has no second factor
since then is asked for one first (`step_up`); with one, a refusal becomes what the policy says
(`refuse_after_step_up_becomes`: a hold for review, by default).  Pure but for the feature
store and models it reads; the service records and acts on the result.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zhijin.payments import PaymentFacts, ScreenTier
from zhijin.platform.i18n import LOCALES, N_, gettext
from zhijin.risk import limits
from zhijin.risk.features import FeatureStore
from zhijin.risk.models import AnomalyModel, SupervisedModel
from zhijin.risk.rules import CompiledRule, TierPolicy

__all__ = ["Decision", "RiskEngine", "Ruleset", "fallback"]

# What the customer and the analyst read for the engine's own reasons (the "messages" catalog).
ANOMALY = N_("risk.reason.anomaly")
SUPERVISED = N_("risk.reason.supervised")
STEP_UP = N_("risk.reason.step_up")
UNAVAILABLE_CLOSED = N_("risk.reason.engine_unavailable_closed")
UNAVAILABLE_OPEN = N_("risk.reason.engine_unavailable_open")

_TIER_ORDER = {ScreenTier.ALLOW: 0, ScreenTier.HOLD: 1, ScreenTier.REFUSE: 2}
_FORCED = {"none": ScreenTier.ALLOW, "hold": ScreenTier.HOLD, "refuse": ScreenTier.REFUSE}


@dataclass(frozen=True)
class Ruleset:
    rules: tuple[CompiledRule, ...]

    @property
    def label(self) -> str:
        """The rule versions in force, as one short id (the full list is in `versions`)."""
        text = ",".join(sorted(rule.label for rule in self.rules))
        return "rs-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def versions(self) -> str:
        return ",".join(sorted(rule.label for rule in self.rules))


@dataclass(frozen=True)
class Decision:
    tier: ScreenTier
    score_bps: int
    reasons: tuple[str, ...]
    reasons_by_locale: Mapping[str, tuple[str, ...]]
    versions: Mapping[str, str]
    degraded: tuple[str, ...]
    features: Mapping[str, Any]
    matched: tuple[str, ...] = ()


@dataclass
class _Reasons:
    english: list[str] = field(default_factory=list)
    by_locale: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LOCALES})

    def add(self, code: str, texts: Mapping[str, str]) -> None:
        self.english.append(f"{code}: {texts['en']}")
        for locale in LOCALES:
            self.by_locale[locale].append(texts[locale])

    def add_message(self, code: str, msgid: str) -> None:
        self.add(code, {locale: gettext(locale, msgid) for locale in LOCALES})


def _tier_of(score: int, policy: TierPolicy) -> ScreenTier:
    if score >= policy.refuse_from_bps:
        return ScreenTier.REFUSE
    if score >= policy.hold_from_bps:
        return ScreenTier.HOLD
    return ScreenTier.ALLOW


def _higher(a: ScreenTier, b: ScreenTier) -> ScreenTier:
    return a if _TIER_ORDER[a] >= _TIER_ORDER[b] else b


class RiskEngine:
    """Scores payments; holds the rules, models and policy in force (swapped as a whole)."""

    def __init__(
        self,
        *,
        policy: TierPolicy,
        ruleset: Ruleset,
        store: FeatureStore | None = None,
        anomaly: AnomalyModel | None = None,
    ) -> None:
        self.policy = policy
        self.ruleset = ruleset
        self.store = store or FeatureStore()
        self.anomaly = anomaly or AnomalyModel()
        self.supervised: SupervisedModel | None = None
        self.model_problems: tuple[str, ...] = ()  # e.g. ("model_hash_mismatch:gbm-…",)
        self._feature_policy = policy.feature_policy()
        self._refusals: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    # -- what changes while it runs --------------------------------------------------------
    def use_rules(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset

    def use_supervised(self, model: SupervisedModel | None, problems: Sequence[str] = ()) -> None:
        self.supervised = model
        self.model_problems = tuple(problems)

    def refused(self, user_id: str | None, at_ms: int) -> None:
        """A refusal: the user's next attempt needs a fresh second factor."""
        if user_id is None:
            return
        with self._lock:
            self._refusals[user_id] = max(at_ms, self._refusals.get(user_id, 0))
            self._refusals.move_to_end(user_id)
            while len(self._refusals) > limits.ACCOUNTS_TRACKED_MAX:
                self._refusals.popitem(last=False)

    def _step_up_owed(self, facts: PaymentFacts) -> int | None:
        """The time of the refusal that is still owed a second factor, or None."""
        if facts.user_id is None:
            return None
        with self._lock:
            refused_ms = self._refusals.get(facts.user_id)
        if refused_ms is None or facts.at_ms - refused_ms > self.policy.step_up_after_refusal_ms:
            return None
        return refused_ms

    # -- the decision ----------------------------------------------------------------------
    def decide(
        self,
        facts: PaymentFacts,
        *,
        last_sign_in: tuple[int | None, int | None, int | None] | None = None,
    ) -> Decision:
        policy, ruleset = self.policy, self.ruleset
        row = self.store.features(facts, self._feature_policy, last_sign_in=last_sign_in)
        reasons = _Reasons()
        score, forced, matched = 0, ScreenTier.ALLOW, []
        for rule in ruleset.rules:
            if rule.expression.matches(row):
                matched.append(rule.label)
                score += rule.body.score_bps
                forced = _higher(forced, _FORCED[rule.body.tier])
                reasons.add(rule.body.id, {"zh_CN": rule.body.reason_zh, "en": rule.body.reason_en})
        versions = {"policy": policy.version, "rules": ruleset.label}
        score += self._anomaly(row, reasons, versions)
        score += self._supervised(row, reasons, versions)
        score = min(10_000, score)
        tier = _higher(_tier_of(score, policy), forced)
        tier = self._after_refusal(facts, tier, reasons)
        return Decision(
            tier=tier,
            score_bps=score,
            reasons=tuple(reasons.english),
            reasons_by_locale={k: tuple(v) for k, v in reasons.by_locale.items()},
            versions=versions,
            degraded=self.model_problems,
            features=row,
            matched=tuple(matched),
        )

    def _anomaly(self, row: Mapping[str, Any], reasons: _Reasons, versions: dict[str, str]) -> int:
        model = self.anomaly
        if model.learned < self.policy.anomaly_warm_after:
            versions["anomaly"] = f"{model.VERSION} (warming up {model.learned})"
            return 0
        versions["anomaly"] = model.VERSION
        anomaly_bps = model.score_bps(row)
        if anomaly_bps >= self.policy.anomaly_reason_from_bps:
            reasons.add_message("anomaly", ANOMALY)
        return anomaly_bps * self.policy.weights.anomaly_bps // 10_000

    def _supervised(
        self, row: Mapping[str, Any], reasons: _Reasons, versions: dict[str, str]
    ) -> int:
        model = self.supervised
        if model is None:
            versions["supervised"] = "none" if not self.model_problems else "refused"
            return 0
        versions["supervised"] = model.version
        probability_bps = model.probability_bps(row)
        if probability_bps >= self.policy.supervised_reason_from_bps:
            reasons.add_message("supervised", SUPERVISED)
        return probability_bps * self.policy.weights.supervised_bps // 10_000

    def _after_refusal(
        self, facts: PaymentFacts, tier: ScreenTier, reasons: _Reasons
    ) -> ScreenTier:
        refused_ms = self._step_up_owed(facts)
        if refused_ms is None:
            return tier
        if facts.mfa_at_ms is None or facts.mfa_at_ms < refused_ms:
            reasons.add_message("step_up_after_refusal", STEP_UP)
            return ScreenTier.STEP_UP
        if tier == ScreenTier.REFUSE and self.policy.refuse_after_step_up_becomes == "hold":
            return ScreenTier.HOLD
        return tier


def fallback(facts: PaymentFacts, policy: TierPolicy, problem: str) -> Decision:
    """The answer when the engine cannot decide: closed (refused) for a payment to a payee
    that is new (or not known to be old) above the policy's limit, or whose amount cannot be
    converted; open (allowed) below it.  Said in the decision (`degraded`)."""
    amount_ref = policy.reference_rates().convert(
        facts.amount_minor, facts.currency, facts.exponent
    )
    limit = policy.fail_closed_new_payee_above_ref_minor
    closed = facts.payee_known is not True and (amount_ref is None or amount_ref > limit)
    reasons = _Reasons()
    reasons.add_message(
        "engine_unavailable",
        UNAVAILABLE_CLOSED if closed else UNAVAILABLE_OPEN,
    )
    return Decision(
        tier=ScreenTier.REFUSE if closed else ScreenTier.ALLOW,
        score_bps=10_000 if closed else 0,
        reasons=tuple(reasons.english),
        reasons_by_locale={k: tuple(v) for k, v in reasons.by_locale.items()},
        versions={"policy": policy.version, "rules": "none", "fallback": "fail-open-closed-1"},
        degraded=(f"engine_unavailable:{problem}",),
        features={},
    )

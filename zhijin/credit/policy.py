"""Decision policies as versioned data, and the pure calculator that applies one.

A policy is JSON (it lives on chain, one record per version):

    {"currency": "CNY",
     "approve": {"points_min": 620, "pd_ppm_max": 120000},
     "decline": {"points_below": 520, "pd_ppm_from": 350000},
     "tiers": [{"points_min": 520, "points_max": 619, "limit_minor": 500000,
                "rate_bps": 1800, "price_tier": "C"}, ...],
     "income_multiple": 6,                  # or null: the limit is at most 6 months' income
     "thin_file_behaviour_min": 600}        # or null: see below

Outcome: decline when the points are below `decline.points_below` or the PD is at or above
`decline.pd_ppm_from`; approve when the points reach `approve.points_min` and the PD is at most
`approve.pd_ppm_max`; refer to an officer otherwise.  A thin-file applicant (信用白户: no bureau
history) whose behavioural score on the platform reaches `thin_file_behaviour_min` is referred
instead of declined: what the platform knows is weighed by a person, not ignored.

The tiers price and size what is not declined: they cover the points from
`decline.points_below` to `limits.POINTS_MAX` without gap or overlap, the limit never falls
and the rate never rises as points grow.  A policy that breaks any of this is contradictory
and refused when saved (`policy_contradictory`, saying which rule), so a policy in force can
always answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zhijin.credit import limits
from zhijin.credit.codes import Code, refuse

__all__ = ["Outcome", "Policy", "PolicyResult", "Tier", "apply_policy", "parse_policy"]

_PRICE_TIER = re.compile(limits.PRICE_TIER_PATTERN)
_CURRENCY = re.compile(limits.CURRENCY_PATTERN)
_KEYS = {"currency", "approve", "decline", "tiers", "income_multiple", "thin_file_behaviour_min"}
_TIER_KEYS = {"points_min", "points_max", "limit_minor", "rate_bps", "price_tier"}


class Outcome:
    APPROVE = "approve"
    REFER = "refer"
    DECLINE = "decline"
    ALL = ("approve", "refer", "decline")


@dataclass(frozen=True, slots=True)
class Tier:
    points_min: int
    points_max: int
    limit_minor: int
    rate_bps: int
    price_tier: str


@dataclass(frozen=True, slots=True)
class Policy:
    currency: str
    approve_points_min: int
    approve_pd_ppm_max: int
    decline_points_below: int
    decline_pd_ppm_from: int
    tiers: tuple[Tier, ...]
    income_multiple: int | None
    thin_file_behaviour_min: int | None


@dataclass(frozen=True, slots=True)
class PolicyResult:
    outcome: str
    limit_minor: int
    price_tier: str | None
    rate_bps: int | None
    rule: str  # which rule decided: a stable code the decision record keeps


def _int(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        refuse(Code.POLICY_INVALID, f"{name} is an integer from {low} to {high}")
    return value


def _object(value: object, name: str, keys: set[str]) -> dict[str, Any]:
    if type(value) is not dict or set(value) != keys:
        refuse(Code.POLICY_INVALID, f"{name} is an object of {sorted(keys)}")
    return value


def _tier(value: object, index: int) -> Tier:
    raw = _object(value, f"tiers[{index}]", _TIER_KEYS)
    price_tier = raw["price_tier"]
    if type(price_tier) is not str or _PRICE_TIER.fullmatch(price_tier) is None:
        refuse(Code.POLICY_INVALID, f"tiers[{index}].price_tier is 1-8 of A-Z 0-9, a letter first")
    return Tier(
        points_min=_int(raw["points_min"], f"tiers[{index}].points_min", 0, limits.POINTS_MAX),
        points_max=_int(raw["points_max"], f"tiers[{index}].points_max", 0, limits.POINTS_MAX),
        limit_minor=_int(
            raw["limit_minor"], f"tiers[{index}].limit_minor", 0, limits.LIMIT_MINOR_MAX
        ),
        rate_bps=_int(raw["rate_bps"], f"tiers[{index}].rate_bps", 0, limits.RATE_BPS_MAX),
        price_tier=price_tier,
    )


def _optional_int(value: object, name: str, low: int, high: int) -> int | None:
    return None if value is None else _int(value, name, low, high)


def parse_policy(raw: object) -> Policy:
    """The policy `raw` describes, or `policy_invalid` (shape, types, ranges) or
    `policy_contradictory` (cut-offs and tiers that contradict each other), saying what."""
    data = _object(raw, "the policy", _KEYS)
    currency = data["currency"]
    if type(currency) is not str or _CURRENCY.fullmatch(currency) is None:
        refuse(Code.POLICY_INVALID, "currency is an ISO 4217 code")
    approve = _object(data["approve"], "approve", {"points_min", "pd_ppm_max"})
    decline = _object(data["decline"], "decline", {"points_below", "pd_ppm_from"})
    tiers = data["tiers"]
    if type(tiers) is not list or not 0 < len(tiers) <= limits.POLICY_TIERS_MAX:
        refuse(Code.POLICY_INVALID, f"tiers is a list of 1 to {limits.POLICY_TIERS_MAX} tiers")
    policy = Policy(
        currency=currency,
        approve_points_min=_int(approve["points_min"], "approve.points_min", 0, limits.POINTS_MAX),
        approve_pd_ppm_max=_int(approve["pd_ppm_max"], "approve.pd_ppm_max", 0, limits.PD_PPM_MAX),
        decline_points_below=_int(
            decline["points_below"], "decline.points_below", 0, limits.POINTS_MAX
        ),
        decline_pd_ppm_from=_int(
            decline["pd_ppm_from"], "decline.pd_ppm_from", 0, limits.PD_PPM_MAX
        ),
        tiers=tuple(_tier(tier, index) for index, tier in enumerate(tiers)),
        income_multiple=_optional_int(
            data["income_multiple"], "income_multiple", 1, limits.INCOME_MULTIPLE_MAX
        ),
        thin_file_behaviour_min=_optional_int(
            data["thin_file_behaviour_min"],
            "thin_file_behaviour_min",
            limits.BEHAVIOUR_SCORE_MIN,
            limits.BEHAVIOUR_SCORE_MAX,
        ),
    )
    problem = contradiction(policy)
    if problem is not None:
        refuse(Code.POLICY_CONTRADICTORY, problem)
    return policy


def contradiction(policy: Policy) -> str | None:
    """The first rule the policy breaks, in words, or None when it is coherent."""
    if policy.decline_points_below > policy.approve_points_min:
        return (
            f"decline.points_below {policy.decline_points_below} is above "
            f"approve.points_min {policy.approve_points_min}: declined scores would be approved"
        )
    if policy.decline_pd_ppm_from <= policy.approve_pd_ppm_max:
        return (
            f"decline.pd_ppm_from {policy.decline_pd_ppm_from} is not above "
            f"approve.pd_ppm_max {policy.approve_pd_ppm_max}: a PD would be approved and declined"
        )
    return _tier_problem(policy)


def _tier_problem(policy: Policy) -> str | None:
    expected_min = policy.decline_points_below
    previous: Tier | None = None
    for index, tier in enumerate(policy.tiers):
        if tier.points_max < tier.points_min:
            return f"tiers[{index}] ends ({tier.points_max}) before it starts ({tier.points_min})"
        if tier.points_min > expected_min:
            return f"tiers leave a gap: points {expected_min} to {tier.points_min - 1} have no tier"
        if tier.points_min < expected_min:
            return f"tiers[{index}] overlaps the tier before it (or starts below the decline cut)"
        if previous is not None and tier.limit_minor < previous.limit_minor:
            return f"tiers[{index}] gives a lower limit than tiers[{index - 1}] for higher points"
        if previous is not None and tier.rate_bps > previous.rate_bps:
            return f"tiers[{index}] prices higher than tiers[{index - 1}] for higher points"
        expected_min, previous = tier.points_max + 1, tier
    if expected_min != limits.POINTS_MAX + 1:
        return f"tiers leave a gap: points {expected_min} to {limits.POINTS_MAX} have no tier"
    names = [tier.price_tier for tier in policy.tiers]
    if len(set(names)) != len(names):
        return "two tiers share a price_tier name"
    return None


def _tier_for(policy: Policy, points: int) -> Tier:
    for tier in policy.tiers:  # at most POLICY_TIERS_MAX
        if tier.points_min <= points <= tier.points_max:
            return tier
    return policy.tiers[0]  # below the decline cut: only a referred thin file gets here


def apply_policy(
    policy: Policy,
    *,
    points: int,
    pd_ppm: int,
    monthly_income_minor: int | None,
    thin_file: bool,
    behaviour_score: int | None,
) -> PolicyResult:
    """Approve, refer or decline; the suggested limit (minor units) and price tier."""
    declined = points < policy.decline_points_below or pd_ppm >= policy.decline_pd_ppm_from
    if declined:
        floor = policy.thin_file_behaviour_min
        if not (thin_file and floor is not None and (behaviour_score or 0) >= floor):
            rule = "points_below_cut" if points < policy.decline_points_below else "pd_above_cut"
            return PolicyResult(Outcome.DECLINE, 0, None, None, rule)
        outcome, rule = Outcome.REFER, "thin_file_referred"
    elif points >= policy.approve_points_min and pd_ppm <= policy.approve_pd_ppm_max:
        outcome, rule = Outcome.APPROVE, "approve_cut_met"
    else:
        outcome, rule = Outcome.REFER, "between_cuts"
    tier = _tier_for(policy, points)
    limit_minor = tier.limit_minor
    if policy.income_multiple is not None and monthly_income_minor is not None:
        limit_minor = min(limit_minor, monthly_income_minor * policy.income_multiple)
    return PolicyResult(outcome, limit_minor, tier.price_tier, tier.rate_bps, rule)

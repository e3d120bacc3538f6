"""The policy calculator: coherent policies parse, contradictory ones are refused saying which
rule they break, and the outcome, limit and price tier follow the documented rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.credit.helpers import POLICY, policy
from zhijin.credit.codes import Code, CreditError
from zhijin.credit.policy import Outcome, apply_policy, parse_policy


def _refusal(raw: Any) -> CreditError:
    with pytest.raises(CreditError) as caught:
        parse_policy(raw)
    return caught.value


def _tiers(*bounds: tuple[int, int], limits: tuple[int, ...] = (), rates: tuple[int, ...] = ()):
    limits = limits or tuple(100 * (i + 1) for i in range(len(bounds)))
    rates = rates or tuple(2_000 - 100 * i for i in range(len(bounds)))
    return [
        {"points_min": low, "points_max": high, "limit_minor": limit, "rate_bps": rate,
         "price_tier": f"T{i}"}
        for i, ((low, high), limit, rate) in enumerate(zip(bounds, limits, rates, strict=True))
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"decline": {"points_below": 700, "pd_ppm_from": 450_000}}, "is above approve.points_min"),
        ({"decline": {"points_below": 480, "pd_ppm_from": 150_000}}, "is not above"),
        ({"tiers": _tiers((480, 579), (600, 1_000))}, "gap: points 580 to 599"),
        ({"tiers": _tiers((480, 600), (590, 1_000))}, "overlaps"),
        ({"tiers": _tiers((480, 579), (580, 900))}, "gap: points 901 to 1000"),
        ({"tiers": _tiers((500, 1_000))}, "gap: points 480 to 499"),
        ({"tiers": _tiers((480, 579), (580, 1_000), limits=(900, 100))}, "lower limit"),
        ({"tiers": _tiers((480, 579), (580, 1_000), rates=(900, 1_000))}, "prices higher"),
        ({"tiers": _tiers((480, 470), (471, 1_000))}, "ends (470) before it starts"),
    ],
)
def test_contradictory_policies_are_refused_naming_the_rule(
    changes: dict[str, Any], words: str
) -> None:
    error = _refusal(policy(**changes))
    assert error.code == Code.POLICY_CONTRADICTORY
    assert words in error.message


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        policy(currency="cny"),
        policy(approve={"points_min": 620.0, "pd_ppm_max": 150_000}),
        policy(approve={"points_min": True, "pd_ppm_max": 150_000}),
        policy(approve={"points_min": 620, "pd_ppm_max": 2_000_000}),
        policy(tiers=[]),
        policy(income_multiple=0),
        policy(tiers=[{**POLICY["tiers"][0], "price_tier": "lower"}]),
        {**POLICY, "extra": 1},
    ],
)
def test_malformed_policies_are_invalid(raw: Any) -> None:
    assert _refusal(raw).code == Code.POLICY_INVALID


def _apply(points: int, pd_ppm: int, **kwargs: Any) -> Any:
    values: dict[str, Any] = {"monthly_income_minor": None, "thin_file": False}
    values["behaviour_score"] = None
    values.update(kwargs)
    return apply_policy(parse_policy(POLICY), points=points, pd_ppm=pd_ppm, **values)


def test_outcomes_limits_and_tiers() -> None:
    approved = _apply(700, 50_000)
    assert (approved.outcome, approved.limit_minor, approved.price_tier) == (
        "approve",
        5_000_000,
        "A",
    )
    assert _apply(620, 150_000).outcome == Outcome.APPROVE  # both cuts inclusive
    referred = _apply(600, 200_000)
    assert (referred.outcome, referred.price_tier, referred.rule) == ("refer", "B", "between_cuts")
    assert _apply(700, 450_000).outcome == Outcome.DECLINE  # a high PD declines any score
    declined = _apply(479, 10_000)
    assert (declined.outcome, declined.limit_minor, declined.price_tier) == ("decline", 0, None)
    # The limit is at most six months' income when the income is known.
    assert _apply(700, 50_000, monthly_income_minor=100_000).limit_minor == 600_000


def test_a_thin_file_with_good_behaviour_is_referred_not_declined() -> None:
    thin = _apply(450, 100_000, thin_file=True, behaviour_score=600)
    assert (thin.outcome, thin.rule, thin.price_tier) == ("refer", "thin_file_referred", "C")
    assert _apply(450, 100_000, thin_file=True, behaviour_score=500).outcome == Outcome.DECLINE
    assert _apply(450, 100_000, thin_file=False, behaviour_score=900).outcome == Outcome.DECLINE

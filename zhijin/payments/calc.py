"""Pure calculators: rounding, fees and FX conversion.  No state, no I/O, testable alone.

All arithmetic is on integers and exact rationals.  A division names its rounding with the
`decimal.ROUND_*` constant it applies, and the result is exactly what `decimal` would give with
unlimited precision: there is no intermediate rounding to a context precision to reason about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
)

from zhijin.payments import limits

__all__ = [
    "FEE_ROUNDING",
    "FX_PRINCIPAL_ROUNDING",
    "FX_SPREAD_ROUNDING",
    "FX_TARGET_ROUNDING",
    "FxAmounts",
    "divide_rounded",
    "fee_amount",
    "fx_from_source",
    "fx_from_target",
    "parse_rate",
]

# Fees follow the platform default (ARCHITECTURE.md "Money"): half-even.
FEE_ROUNDING = ROUND_HALF_EVEN
# FX rounds in the liquidity provider's favour, always: the beneficiary's amount converted from
# a fixed source amount rounds down, the source principal needed for a fixed target amount
# rounds up, and the spread rounds up.
FX_TARGET_ROUNDING = ROUND_FLOOR
FX_PRINCIPAL_ROUNDING = ROUND_CEILING
FX_SPREAD_ROUNDING = ROUND_CEILING

_ROUNDINGS = frozenset(
    {ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP}
)
_RATE = re.compile(limits.RATE_PATTERN)


def divide_rounded(numerator: int, denominator: int, rounding: str) -> int:
    """numerator / denominator rounded to an integer with the named decimal.ROUND_* mode."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if rounding not in _ROUNDINGS:
        raise ValueError(f"unsupported rounding {rounding}")
    quotient, remainder = divmod(numerator, denominator)  # floor division
    if remainder == 0 or rounding == ROUND_FLOOR:
        return quotient
    if rounding == ROUND_CEILING:
        return quotient + 1
    negative = numerator < 0
    if rounding == ROUND_DOWN:  # towards zero
        return quotient + 1 if negative else quotient
    if rounding == ROUND_UP:  # away from zero
        return quotient if negative else quotient + 1
    twice = 2 * remainder
    if twice < denominator:
        return quotient
    if twice > denominator:
        return quotient + 1
    # Exactly half way between quotient and quotient + 1.
    if rounding == ROUND_HALF_UP:  # away from zero
        return quotient if negative else quotient + 1
    return quotient if quotient % 2 == 0 else quotient + 1  # ROUND_HALF_EVEN


def parse_rate(text: object) -> tuple[int, int] | None:
    """A positive plain decimal string ("7.1234") as an exact (numerator, denominator).

    None if it is not a string of at most 12 integer and 12 fraction digits, or is zero.
    Exponents, signs, spaces and leading zeros are refused so that one rate has one spelling.
    """
    if not isinstance(text, str) or not _RATE.fullmatch(text):
        return None
    numerator, denominator = Decimal(text).as_integer_ratio()
    if numerator <= 0:
        return None
    return numerator, denominator


def fee_amount(
    *,
    amount: int,
    fixed_amount: int,
    rate_bps: int,
    min_amount: int,
    max_amount: int | None,
    rounding: str = FEE_ROUNDING,
) -> int:
    """fixed + amount x rate_bps / 10 000 (rounded as named), clamped to [min, max]."""
    variable = divide_rounded(amount * rate_bps, limits.BPS_PER_UNIT, rounding)
    fee = max(fixed_amount + variable, min_amount)
    return fee if max_amount is None else min(fee, max_amount)


@dataclass(frozen=True, slots=True)
class FxAmounts:
    """One cross-currency payment: the payer pays principal + spread, the beneficiary gets target.

    The spread is `spread_bps` of the principal, and is booked as its own transfer.
    """

    principal_amount: int  # source currency, to the source liquidity account
    spread_amount: int  # source currency, to the provider's spread account
    target_amount: int  # target currency, from the target liquidity account

    @property
    def source_amount(self) -> int:
        return self.principal_amount + self.spread_amount


def _scaled_rate(
    rate: tuple[int, int], source_exponent: int, target_exponent: int
) -> tuple[int, int]:
    """The rate in minor units: target minor units per source minor unit, as a fraction."""
    numerator, denominator = rate
    shift = target_exponent - source_exponent
    if shift >= 0:
        return numerator * 10**shift, denominator
    return numerator, denominator * 10**-shift


def fx_from_source(
    *,
    source_amount: int,
    rate: tuple[int, int],
    spread_bps: int,
    source_exponent: int,
    target_exponent: int,
) -> FxAmounts:
    """The payer fixes what leaves their account; the beneficiary gets what that buys.

    principal = the largest p with p + ceil(p x spread) <= source_amount, i.e.
    floor(source x 10 000 / (10 000 + spread_bps)); the spread is the rest (at least the exact
    spread on the principal, rounded up); target = floor(principal x rate).
    """
    principal = divide_rounded(
        source_amount * limits.BPS_PER_UNIT,
        limits.BPS_PER_UNIT + spread_bps,
        ROUND_FLOOR,
    )
    numerator, denominator = _scaled_rate(rate, source_exponent, target_exponent)
    target = divide_rounded(principal * numerator, denominator, FX_TARGET_ROUNDING)
    return FxAmounts(
        principal_amount=principal,
        spread_amount=source_amount - principal,
        target_amount=target,
    )


def fx_from_target(
    *,
    target_amount: int,
    rate: tuple[int, int],
    spread_bps: int,
    source_exponent: int,
    target_exponent: int,
) -> FxAmounts:
    """The payer fixes what the beneficiary receives; principal and spread round up."""
    numerator, denominator = _scaled_rate(rate, source_exponent, target_exponent)
    principal = divide_rounded(target_amount * denominator, numerator, FX_PRINCIPAL_ROUNDING)
    spread = divide_rounded(principal * spread_bps, limits.BPS_PER_UNIT, FX_SPREAD_ROUNDING)
    return FxAmounts(principal_amount=principal, spread_amount=spread, target_amount=target_amount)

"""ISO 4217 currencies: which codes we accept, their minor-unit exponents, and exact conversion.

The exponent comes from CLDR through babel (a maintained library), never from a hand table.
CLDR follows ISO 4217 for almost every currency; where it differs (a handful such as IQD or
IRR, which CLDR gives 0 decimals because their minor units are not used) zhijin follows CLDR.
An account records its currency's exponent when it is created, so a later babel upgrade never
changes the meaning of an existing balance; only the acceptance of new accounts can change, which
is why the set of accepted codes is pinned to a reference date (see `limits`).

Conversions between major-unit decimals and integer minor units are exact: a decimal with more
fraction digits than the currency allows is refused, never rounded.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal, InvalidOperation

import babel.numbers
from babel.core import get_global

from zhijin.payments import limits

__all__ = [
    "CurrencyError",
    "exponent",
    "format_minor",
    "is_valid",
    "supported_currencies",
    "to_minor",
    "validate",
]

_CODE = re.compile(limits.CURRENCY_PATTERN)


class CurrencyError(ValueError):
    """A currency code or amount that cannot be used; `code` is stable for callers to map."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def supported_currencies() -> frozenset[str]:
    """ISO 4217 codes that CLDR lists as legal tender in some territory on the reference date.

    This leaves out withdrawn currencies (DEM, HRK), precious metals and fund codes (XAU, XDR),
    and the testing and "no currency" codes (XTS, XXX): none of them is money a customer pays.
    """
    territories = get_global("territory_currencies")
    codes: set[str] = set()
    for territory in territories:
        codes.update(
            babel.numbers.get_territory_currencies(
                territory,
                start_date=limits.CURRENCY_TENDER_DATE,
                tender=True,
                non_tender=False,
            )
        )
    return frozenset(code for code in codes if _CODE.match(code))


def is_valid(code: object) -> bool:
    """True if `code` is an accepted ISO 4217 alphabetic code; never raises."""
    return isinstance(code, str) and code in supported_currencies()


def validate(code: object) -> str:
    """Return `code` if accepted, else raise CurrencyError("currency_invalid")."""
    if not is_valid(code):
        raise CurrencyError("currency_invalid", f"{code!r} is not an ISO 4217 currency code in use")
    return str(code)


@functools.cache
def exponent(code: str) -> int:
    """Digits after the decimal point in the currency's major unit (CNY 2, JPY 0, KWD 3)."""
    validate(code)
    return int(babel.numbers.get_currency_precision(code))


def to_minor(amount: Decimal | str, code: str) -> int:
    """Convert a major-unit decimal to integer minor units exactly.

    Refuses (CurrencyError "amount_precision") a value with more fraction digits than the
    currency has, even trailing zeros: "100.00" is not a JPY amount.  Never rounds.
    """
    digits = exponent(code)
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except InvalidOperation as exc:
        raise CurrencyError("amount_invalid", f"{amount!r} is not a decimal") from exc
    if not value.is_finite():
        raise CurrencyError("amount_invalid", f"{amount!r} is not a finite decimal")
    written_exponent = value.as_tuple().exponent
    if not isinstance(written_exponent, int) or -written_exponent > digits:
        raise CurrencyError(
            "amount_precision",
            f"{code} amounts have at most {digits} decimals; got {value}",
        )
    minor = value.scaleb(digits)
    # The scaled value is integral here (checked above), so this conversion is exact.
    return int(minor)


def format_minor(amount_minor: int, code: str, *, digits: int | None = None) -> str:
    """Integer minor units as a plain major-unit decimal string with exactly `digits` decimals."""
    places = exponent(code) if digits is None else digits
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**places)
    if places == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{places}d}"

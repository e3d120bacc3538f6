"""Pure helpers for showing people and companies to other people: masked names, name matching
(confirmation of payee), exact decimal amounts and the user's day boundaries.

A payer sees enough of a payee's name to notice a wrong account (a typo that names a stranger)
and not enough to learn a stranger's full name from an account number: 张*丰, "Z**** S**",
杭州****有限公司.  Matching follows the UK's Confirmation of Payee: the name the payer expects is
compared with the name on record, after normalisation, as `match`, `close_match` (a typo, a
missing middle name, the words in another order) or `no_match`; the full name is never
returned, only its masked form.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from difflib import SequenceMatcher
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zhijin.payments.expected import PartyKind, PartyName

__all__ = [
    "NameMatch",
    "day_range_ms",
    "format_minor",
    "local_date",
    "local_time",
    "mask_name",
    "match_name",
    "parse_amount",
    "time_zone",
]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_SEPARATORS = re.compile(r"[\s·•・.\-_,，。()（）]+")
# The tail of a company's name that says what it is, kept visible: 有限公司, Co., Ltd.
_CJK_COMPANY_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团", "公司", "商行", "店")
_LATIN_COMPANY_WORDS = frozenset(
    {"co", "co.", "company", "corp", "corp.", "inc", "inc.", "ltd", "ltd.", "llc", "plc", "limited"}
)
# Close match: the share of characters two normalised names have in common (difflib's ratio).
# (A name is not money: difflib's float ratio is fine here.)
_CLOSE_RATIO = 0.8


class NameMatch(StrEnum):
    MATCH = "match"
    CLOSE_MATCH = "close_match"
    NO_MATCH = "no_match"


def _mask_word(word: str) -> str:
    return word[:1] + "*" * (len(word) - 1)


def _mask_cjk_person(name: str) -> str:
    # 张三 -> 张*, 张三丰 -> 张*丰, 欧阳娜娜 -> 欧**娜; each part of 买买提·艾力 on its own.
    parts = []
    for part in name.split("·"):
        if len(part) <= 2:
            parts.append(part[:1] + "*" * (len(part) - 1))
        else:
            parts.append(part[0] + "*" * (len(part) - 2) + part[-1])
    return "·".join(parts)


def _mask_company(name: str) -> str:
    if _CJK.search(name):
        suffix = next((s for s in _CJK_COMPANY_SUFFIXES if name.endswith(s)), "")
        body = name[: len(name) - len(suffix)]
        shown = 2 if len(body) > 3 else 1
        return body[:shown] + "*" * (len(body) - shown) + suffix
    words = name.split()
    masked = [
        w if index == 0 or w.casefold() in _LATIN_COMPANY_WORDS else _mask_word(w)
        for index, w in enumerate(words)
    ]
    return " ".join(masked)


def mask_name(party: PartyName) -> str:
    """The name as a payer may see it: a person's partly hidden, a company's partly hidden
    (its first characters and its legal form), a consortium member's in full (public)."""
    name = party.name.strip()
    if party.kind is PartyKind.INSTITUTION:
        return name
    if party.kind is PartyKind.BUSINESS:
        return _mask_company(name)
    if _CJK.search(name):
        return _mask_cjk_person(name.replace(" ", ""))
    return " ".join(_mask_word(word) for word in name.split())


def _normalised(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


def match_name(expected: str, actual: str) -> NameMatch:
    """How the name the payer typed compares with the payee's name on record."""
    want, have = _normalised(expected), _normalised(actual)
    if not want:
        return NameMatch.NO_MATCH
    if want == have or want.replace(" ", "") == have.replace(" ", ""):
        return NameMatch.MATCH
    want_words, have_words = sorted(want.split()), sorted(have.split())
    if want_words == have_words:  # "San Zhang" for "Zhang San"
        return NameMatch.CLOSE_MATCH
    if len(want_words) >= 2 and set(want_words) < set(have_words):  # a middle name left out
        return NameMatch.CLOSE_MATCH
    want_text, have_text = want.replace(" ", ""), have.replace(" ", "")
    # A one-character slip in a two-character Chinese name is not close: 张三 vs 张五 is another
    # person, so CJK names need the same length and at most one differing character of three.
    if _CJK.search(have):
        if len(want_text) != len(have_text) or len(have_text) < 3:
            return NameMatch.NO_MATCH
        differing = sum(a != b for a, b in zip(want_text, have_text, strict=True))
        return NameMatch.CLOSE_MATCH if differing <= 1 else NameMatch.NO_MATCH
    ratio = SequenceMatcher(None, want_text, have_text).ratio()
    return NameMatch.CLOSE_MATCH if ratio >= _CLOSE_RATIO else NameMatch.NO_MATCH


# -- amounts and days ------------------------------------------------------------------------------


def format_minor(amount_minor: int, exponent: int) -> str:
    """Minor units as an exact decimal string with the currency's decimals: 12345, 2 -> 123.45."""
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return sign + digits
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def parse_amount(text: str, exponent: int) -> int | None:
    """A decimal amount a person typed ("12.5", "12.50", "1,000") in minor units; None when it
    is not a positive amount with at most the currency's decimals (never rounded)."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if not re.fullmatch(r"[0-9]{1,19}(\.[0-9]{1,4})?", cleaned):
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value() or scaled <= 0:
        return None
    return int(scaled)


def time_zone(name: str) -> ZoneInfo:
    """An IANA time zone, or ValueError with a clear message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Shanghai)") from None


def day_range_ms(first: date, last: date, zone: ZoneInfo) -> tuple[int, int]:
    """[start of `first`, start of the day after `last`) in `zone`, as Unix milliseconds."""
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    end_day = last + timedelta(days=1)
    end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


def local_date(time_ms: int, zone: ZoneInfo) -> date:
    """The calendar day a block time falls on in `zone`."""
    return datetime.fromtimestamp(time_ms // 1000, tz=zone).date()


def local_time(time_ms: int, zone: ZoneInfo) -> str:
    """A block time as local ISO 8601 with its offset: 2026-12-02T09:30:00+08:00."""
    return datetime.fromtimestamp(time_ms // 1000, tz=zone).isoformat()

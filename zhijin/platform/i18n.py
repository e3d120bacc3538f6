"""Languages: which locale a request speaks, the gettext catalogs, and money and dates per locale.

zh-CN is the product's default; English is the second language.  The catalogs are the `.po`
files under `zhijin/platform/locale/<locale>/LC_MESSAGES/<domain>.po` (the sources; no compiled
`.mo` is committed): Babel reads and compiles each one in memory at its first use.  Two
domains: "messages" (API problems, notices, the CLI) and "web" (page templates).

Every msgid must have a translation in every locale, English included, so a forgotten string
shows as a failing catalog test rather than as a raw key on a page.  `gettext` raises
`MissingTranslation` for an unknown msgid while strict mode is on (the test suite turns it on);
in production it logs the miss and returns the msgid, so one forgotten string never turns an
answer into a server error.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import babel.dates
import babel.numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

__all__ = [
    "DEFAULT_LOCALE",
    "DISPLAY_ZONE",
    "DOMAINS",
    "LANG_COOKIE",
    "LOCALES",
    "LOCALE_DIR",
    "N_",
    "MissingTranslation",
    "catalog_path",
    "cli_text",
    "environment_locale",
    "format_datetime",
    "format_money",
    "gettext",
    "has_message",
    "is_strict",
    "negotiate",
    "render",
    "request_locale",
    "set_strict",
    "translations",
]

log = logging.getLogger("zhijin.i18n")

LOCALES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANG_COOKIE = "zhijin_lang"
DOMAINS: tuple[str, ...] = ("messages", "web")
DISPLAY_ZONE = "Asia/Shanghai"
LOCALE_DIR = Path(__file__).parent / "locale"

# RFC 4647 lookup: a language range is truncated tag by tag until one of these matches, so
# zh-Hans-CN -> zh-hans -> zh, and en-GB -> en.  Chinese in any script or region is served the
# simplified catalog, which a Traditional reader understands better than English.
_LOOKUP = {"zh": "zh_CN", "zh-cn": "zh_CN", "zh-hans": "zh_CN", "en": "en"}
_ACCEPT_ITEMS_MAX = 32  # a header longer than this is hostile or broken; the rest is ignored
_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$", re.IGNORECASE)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_strict = False


class MissingTranslation(KeyError):
    """A msgid that the catalog of a locale does not hold (raised in strict mode)."""


def set_strict(enabled: bool) -> None:
    """Strict mode (tests): an unknown msgid raises instead of being logged and shown raw."""
    global _strict
    _strict = enabled


def is_strict() -> bool:
    return _strict


def N_(msgid: str) -> str:
    """Mark a msgid for extraction where it is defined; it is translated where it is shown."""
    return msgid


def negotiate(*, cookie: str | None, accept_language: str | None) -> str:
    """The locale to answer in: the remembered cookie, then Accept-Language, then the default."""
    if cookie in LOCALES:
        return cookie
    for language_range in _ranges_by_preference(accept_language or ""):
        found = _lookup(language_range)
        if found is not None:
            return found
    return DEFAULT_LOCALE


def request_locale(request: Request) -> str:
    return negotiate(
        cookie=request.cookies.get(LANG_COOKIE),
        accept_language=request.headers.get("accept-language"),
    )


def environment_locale(environ: Mapping[str, str]) -> str:
    """The command line's locale.  `ZHIJIN_LANG` first (zhijin's own choice, whatever the
    terminal's: `zh_CN`, `en`, or any tag we match, such as `zh-Hans` or `en_US.UTF-8`; a
    language we lack is passed over), then POSIX precedence: the first set of LC_ALL,
    LC_MESSAGES and LANG decides.  "C" and "POSIX" mean no localisation, which is English (the
    catalog's source language for people); nothing set at all, or a language we lack, is
    zh_CN."""
    chosen = _posix_locale(environ.get("ZHIJIN_LANG", ""))
    if chosen is not None:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return _posix_locale(value) or DEFAULT_LOCALE
    return DEFAULT_LOCALE


def _posix_locale(value: str) -> str | None:
    tag = value.partition(".")[0].partition("@")[0]  # zh_CN.UTF-8@pinyin -> zh_CN
    if tag in ("C", "POSIX"):
        return "en"
    return _lookup(tag.replace("_", "-")) if tag else None


def cli_text(msgid: str, **params: object) -> str:
    """A CLI sentence, or a command's or option's help, in the terminal's language
    (`environment_locale` of this process's environment).  Every cli.py imports it as
    `_cli_text`, the name `make catalogs` extracts msgids from (`-k _cli_text`); help text is
    rendered when the module is imported, which for the `zhijin` command is at its start."""
    return render(environment_locale(os.environ), msgid, params)


def _ranges_by_preference(header: str) -> list[str]:
    """Accept-Language (RFC 9110 12.5.4) as ranges, best first; q=0 and malformed items dropped."""
    weighted: list[tuple[Decimal, int, str]] = []
    for position, item in enumerate(header.split(",")[:_ACCEPT_ITEMS_MAX]):
        parts = [part.strip() for part in item.split(";")]
        if not _RANGE.match(parts[0]):
            continue
        quality = Decimal(1)
        for parameter in parts[1:]:
            matched = _QVALUE.match(parameter)
            quality = Decimal(matched.group(1)) if matched else Decimal(-1)
        if quality > 0:
            # Sorting on (-q, position) keeps the sender's order among equal weights.
            weighted.append((-quality, position, parts[0]))
    return [language_range for _, _, language_range in sorted(weighted)]


def _lookup(language_range: str) -> str | None:
    if language_range == "*":
        return DEFAULT_LOCALE
    tag = language_range.lower()
    while tag:
        if tag in _LOOKUP:
            return _LOOKUP[tag]
        tag = tag.rpartition("-")[0]
    return None


def catalog_path(locale: str, domain: str) -> Path:
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; expected one of {LOCALES}")
    if domain not in DOMAINS:
        raise ValueError(f"unknown catalog domain {domain!r}; expected one of {DOMAINS}")
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def translations(locale: str, domain: str) -> Translations:
    """The compiled catalog of (locale, domain), read from its .po file once per process."""
    path = catalog_path(locale, domain)
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=domain)
    compiled = io.BytesIO()
    # Fuzzy entries are drafts, not translations: leaving them out makes them count as missing.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


def has_message(locale: str, msgid: str, *, domain: str = "messages") -> bool:
    return msgid in translations(locale, domain)._catalog


def gettext(locale: str, msgid: str, /, *, domain: str = "messages", **params: object) -> str:
    """`msgid` translated into `locale`, then `str.format(**params)`.

    A template names its params (`{amount}`); a param the template does not name is ignored,
    a name the params lack raises KeyError, which the catalog tests catch for every template."""
    return render(locale, msgid, params, domain=domain)


def render(
    locale: str, msgid: str, params: Mapping[str, object], *, domain: str = "messages"
) -> str:
    """`gettext` with the params as a mapping (for callers that build them)."""
    if not has_message(locale, msgid, domain=domain):
        if _strict:
            raise MissingTranslation(f"{domain}/{locale}: no translation for {msgid!r}")
        log.warning("missing translation", extra={"locale": locale, "msgid": msgid})
        text = msgid
    else:
        text = translations(locale, domain).gettext(msgid)
    # Always formatted, so a template naming a param the caller forgot fails at once (and a
    # literal brace in a template is written {{ or }}).
    return text.format_map(params)


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """An amount in minor units as the locale writes it: ¥1,234.56 (zh_CN), CN¥1,234.56 (en).

    Exact: the integer is shifted by the currency's ISO 4217 exponent (from CLDR, the same
    source payments uses) into a Decimal, so no digit is ever rounded or passes through float."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError(f"amount_minor must be an int, not {type(amount_minor).__name__}")
    if not babel.numbers.is_currency(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    exponent = babel.numbers.get_currency_precision(currency)
    amount = Decimal(amount_minor).scaleb(-exponent)
    return babel.numbers.format_currency(amount, currency, locale=_babel_locale(locale))


def format_datetime(moment: datetime | int, locale: str, *, zone: str = DISPLAY_ZONE) -> str:
    """A moment in the one display format of `locale`, shown in `zone` (Asia/Shanghai).

    An int is milliseconds since the epoch, UTC (block time and every `*_ms` field).  A naive
    datetime is refused: guessing its zone would show a wrong time without anyone noticing."""
    if isinstance(moment, bool):
        raise TypeError("moment must be a datetime or int milliseconds, not bool")
    if isinstance(moment, int):
        # Epoch plus a timedelta is exact integer arithmetic; fromtimestamp would pass a float.
        moment = _EPOCH + timedelta(milliseconds=moment)
    elif moment.tzinfo is None:
        raise ValueError("a naive datetime has no zone; pass an aware one or epoch milliseconds")
    return babel.dates.format_datetime(
        moment, format="medium", tzinfo=ZoneInfo(zone), locale=_babel_locale(locale)
    )


def _babel_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}; expected one of {LOCALES}")
    return locale

"""The i18n core: locale negotiation, catalogs, money and dates per locale."""

from __future__ import annotations

import logging
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from babel.messages.pofile import read_po
from starlette.requests import Request

from zhijin.platform import i18n

# -- negotiation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("en-GB", "en"),
        ("zh", "zh_CN"),
        ("zh-Hans", "zh_CN"),
        ("zh-Hans-CN", "zh_CN"),
        ("zh-TW", "zh_CN"),
        ("ZH-cn", "zh_CN"),
        ("fr-FR, en;q=0.5", "en"),
        ("zh;q=0.5, en;q=0.8", "en"),
        ("en;q=0.8, zh;q=0.8", "en"),
        ("en;q=0, zh;q=0.1", "zh_CN"),
        ("fr, de", "zh_CN"),
        ("*", "zh_CN"),
        ("en;q=2, zh;q=0.1", "zh_CN"),
        ("en;q=abc", "zh_CN"),
        ("en-", "zh_CN"),
        (";;;,,,", "zh_CN"),
        ("", "zh_CN"),
        (None, "zh_CN"),
    ],
)
def test_accept_language_lookup(accept_language: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie=None, accept_language=accept_language) == expected


def test_cookie_wins_over_accept_language_and_a_bad_cookie_is_ignored() -> None:
    assert i18n.negotiate(cookie="en", accept_language="zh-CN") == "en"
    assert i18n.negotiate(cookie="zh_CN", accept_language="en") == "zh_CN"
    assert i18n.negotiate(cookie="fr", accept_language="en") == "en"
    assert i18n.negotiate(cookie="zh-CN", accept_language=None) == "zh_CN"
    assert i18n.negotiate(cookie="", accept_language="en-US") == "en"


def test_a_huge_header_is_read_only_to_its_limit() -> None:
    header = ",".join(["fr"] * 100_000 + ["en"])
    assert i18n.negotiate(cookie=None, accept_language=header) == i18n.DEFAULT_LOCALE


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


def test_request_locale_reads_the_cookie_then_the_header() -> None:
    assert i18n.request_locale(_request({})) == "zh_CN"
    assert i18n.request_locale(_request({"Accept-Language": "en-US"})) == "en"
    both = {"Accept-Language": "en-US", "Cookie": f"{i18n.LANG_COOKIE}=zh_CN"}
    assert i18n.request_locale(_request(both)) == "zh_CN"


# -- catalogs -------------------------------------------------------------------------------------


def test_catalogs_exist_for_every_locale_and_domain_and_are_cached() -> None:
    for locale in i18n.LOCALES:
        for domain in i18n.DOMAINS:
            assert i18n.catalog_path(locale, domain).is_file()
            assert i18n.translations(locale, domain) is i18n.translations(locale, domain)


def test_unknown_locale_or_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        i18n.translations("fr", "messages")
    with pytest.raises(ValueError, match="unknown catalog domain"):
        i18n.translations("en", "emails")
    with pytest.raises(ValueError, match="unknown locale"):
        i18n.format_money(100, "CNY", "zh-CN")


def test_a_missing_msgid_raises_in_strict_mode_and_is_logged_otherwise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(i18n.MissingTranslation, match=r"no\.such\.key"):
        i18n.gettext("zh_CN", "no.such.key")
    i18n.set_strict(False)
    try:
        with caplog.at_level(logging.WARNING, logger="zhijin.i18n"):
            assert i18n.gettext("en", "no.such.key {n}", n=3) == "no.such.key 3"
            assert i18n.gettext("en", "no.such.key") == "no.such.key"
        assert "missing translation" in caplog.text
    finally:
        i18n.set_strict(True)


def test_every_msgid_has_a_translation_in_every_locale_with_the_same_params() -> None:
    """The catalog test: a missing, empty or fuzzy translation fails, in any locale."""
    for domain in i18n.DOMAINS:
        by_locale = {}
        for locale in i18n.LOCALES:
            with i18n.catalog_path(locale, domain).open("rb") as source:
                catalog = read_po(source, locale=locale)
            by_locale[locale] = {m.id: m for m in catalog if m.id}
            for message in by_locale[locale].values():
                where = f"{domain}/{locale}: {message.id!r}"
                assert message.string, f"{where} has no translation"
                assert not message.fuzzy, f"{where} is fuzzy (a draft, not a translation)"
        ids = {locale: set(messages) for locale, messages in by_locale.items()}
        assert ids["zh_CN"] == ids["en"], f"{domain}: the locales hold different msgids"
        for msgid in ids["en"]:
            names = {loc: _fields(str(by_locale[loc][msgid].string)) for loc in i18n.LOCALES}
            assert names["zh_CN"] == names["en"], f"{domain}: {msgid!r} params differ: {names}"


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# -- money ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_minor", "currency", "locale", "expected"),
    [
        (123456, "CNY", "zh_CN", "¥1,234.56"),
        (123456, "CNY", "en", "CN¥1,234.56"),
        (-123456, "USD", "en", "-$1,234.56"),
        (-123456, "USD", "zh_CN", "-US$1,234.56"),
        (1234, "JPY", "zh_CN", "JP¥1,234"),
        (1234, "BHD", "en", "BHD1.234"),
        (0, "CNY", "zh_CN", "¥0.00"),
        (1, "CNY", "en", "CN¥0.01"),
        (2**63 - 1, "CNY", "zh_CN", "¥92,233,720,368,547,758.07"),
    ],
)
def test_money_is_exact_and_in_the_locale_format(
    amount_minor: int, currency: str, locale: str, expected: str
) -> None:
    assert i18n.format_money(amount_minor, currency, locale) == expected


@pytest.mark.parametrize("amount", [12.5, "1250", True, None])
def test_money_refuses_anything_but_an_int(amount: object) -> None:
    with pytest.raises(TypeError, match="amount_minor must be an int"):
        i18n.format_money(amount, "CNY", "en")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["XYZ", "cny", ""])
def test_money_refuses_an_unknown_currency(currency: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        i18n.format_money(100, currency, "en")


# -- dates ----------------------------------------------------------------------------------------

# 2026-12-02 09:00:05.999 UTC, which is 17:00:05 in Asia/Shanghai.
_MOMENT_MS = 1_796_202_005_999


def test_epoch_milliseconds_show_in_shanghai_time_per_locale() -> None:
    assert i18n.format_datetime(_MOMENT_MS, "zh_CN") == "2026年12月2日 17:00:05"
    assert i18n.format_datetime(_MOMENT_MS, "en") == "Dec 2, 2026, 5:00:05\u202fPM"


def test_an_aware_datetime_shows_the_same_as_its_milliseconds() -> None:
    moment = datetime(2026, 12, 2, 9, 0, 5, 999000, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
    for locale in i18n.LOCALES:
        assert i18n.format_datetime(moment, locale) == i18n.format_datetime(_MOMENT_MS, locale)
        assert i18n.format_datetime(elsewhere, locale) == i18n.format_datetime(moment, locale)
    assert i18n.format_datetime(moment, "en", zone="UTC") == "Dec 2, 2026, 9:00:05\u202fAM"


def test_dates_refuse_naive_datetimes_and_bools() -> None:
    with pytest.raises(ValueError, match="naive"):
        i18n.format_datetime(datetime(2026, 12, 2, 9, 0), "zh_CN")
    with pytest.raises(TypeError, match="bool"):
        i18n.format_datetime(True, "zh_CN")
    with pytest.raises(OverflowError):
        i18n.format_datetime(2**62, "en")


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "zh_CN"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
        ({"LANG": "fr_FR.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.GB18030"}, "zh_CN"),
        ({"LC_ALL": "", "LANG": "en_US"}, "en"),
        ({"LANG": "de_DE.UTF-8@euro"}, "zh_CN"),
        # ZHIJIN_LANG is zhijin's own choice, above the terminal's; a language we lack is passed over.
        ({"ZHIJIN_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
        ({"ZHIJIN_LANG": "zh_CN", "LANG": "C.UTF-8"}, "zh_CN"),
        ({"ZHIJIN_LANG": "zh-Hans", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ({"ZHIJIN_LANG": "en_US.UTF-8"}, "en"),
        ({"ZHIJIN_LANG": "fr", "LANG": "en_US.UTF-8"}, "en"),
        ({"ZHIJIN_LANG": "", "LANG": "en_US.UTF-8"}, "en"),
    ],
)
def test_the_command_line_follows_posix_locale_variables(
    environ: dict[str, str], expected: str
) -> None:
    assert i18n.environment_locale(environ) == expected

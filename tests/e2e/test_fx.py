"""Pay abroad (跨境汇款) in Chromium, in both languages and on both viewports: the live quotes of
the pair (rate, spread, time left), the review with the payee's masked name, what leaves the
account, the fee and what the payee receives (by the contract's arithmetic and rounding), the
payment and its status page, then the ledger; and in 大字 mode the page still fits a phone and
passes axe.  A customer with no account sees the empty state leading to /onboarding."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import (
    PAIRED_VARIANTS,
    PASSWORD,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    screenshot,
    sign_in,
    visit,
)
from tests.e2e.test_payments import _named
from zhijin.identity.rbac import Role
from zhijin.payments import calc

RATE = "0.1385"
SPREAD_BPS = 30
TEXT = {
    "zh_CN": {"paid": "已汇出", "rate": "1 CNY = 0.1385 USD", "empty": "您还没有账户"},
    "en": {"paid": "Sent", "rate": "1 CNY = 0.1385 USD", "empty": "You have no accounts yet"},
}
YUAN = {"zh_CN": "¥", "en": "CN¥"}
DOLLAR = {"zh_CN": "US$", "en": "$"}  # Babel's CLDR data for the US dollar


def _books(server: E2EServer, tag: str) -> tuple[str, str]:
    """This test's FX liquidity in CNY and USD (funded) and a live CNY → USD quote."""
    member = server.platform.node.key.did
    ids = {}
    for code in ("CNY", "USD"):
        c = code.lower()
        settle, liquidity = f"fxs-{c}-{tag}", f"fxl-{c}-{tag}"
        for account_id, kind in ((settle, "settlement"), (liquidity, "fx_liquidity")):
            server.op(
                "POST",
                "/accounts",
                {"id": account_id, "owner": member, "currency": code, "kind": kind},
            )
        server.op(
            "POST",
            "/transfers",
            {
                "id": f"fxd-{c}-{tag}",
                "debit_account_id": settle,
                "credit_account_id": liquidity,
                "amount": 10**9,
                "currency": code,
            },
        )
        ids[code] = liquidity
    server.op(
        "POST",
        "/fx/quotes",
        {
            "id": f"fxq-{tag}",
            "source_currency": "CNY",
            "target_currency": "USD",
            "rate": RATE,
            "spread_bps": SPREAD_BPS,
            "expires_at_ms": server.platform.node.clock() + 3_600_000,
            "source_liquidity_account_id": ids["CNY"],
            "target_liquidity_account_id": ids["USD"],
        },
    )
    return ids["CNY"], ids["USD"]


def _usd_payee(server: E2EServer, tag: str) -> str:
    login, _, did = server.customer("fxpayee")
    _named(server, login, "张三丰", "13800138000", Role.CUSTOMER)
    account = f"usd-{tag}"
    server.op(
        "POST", "/accounts", {"id": account, "owner": did, "currency": "USD"} | {"kind": "customer"}
    )
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    return account


def _expected(source_minor: int) -> calc.FxAmounts:
    return calc.fx_from_source(
        source_amount=source_minor,
        rate=calc.parse_rate(RATE) or (0, 1),
        spread_bps=SPREAD_BPS,
        source_exponent=2,
        target_exponent=2,
    )


def _money(minor: int, symbol: str) -> str:
    return f"{symbol}{minor // 100:,}.{minor % 100:02d}"


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_pay_abroad_under_a_live_quote(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    tag = secrets.token_hex(3)
    _books(server, tag)
    payee = _usd_payee(server, tag)
    login, _, did = server.customer("fxpayer")
    _named(server, login, "李小龙", "13900139000", Role.CUSTOMER)
    payer = server.open_and_fund(did, amount_minor=500_000, tag=tag)
    text = TEXT[variant.locale]
    expected = _expected(50_000)
    with visit(browser, server, variant) as page:
        sign_in(page, login, PASSWORD)
        page.goto("/fx")
        expect(page.locator("#fx-quote-table")).to_contain_text(text["rate"])
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "fx-quotes", variant)
        form = page.locator("#pay-form")
        form.locator("select[name=target]").select_option("USD")
        form.locator("input[name=amount]").fill("500.00")
        form.locator("input[name=credit]").fill(payee)
        form.locator("input[name=credit]").press("Tab")
        expect(page.locator("#payee-found")).to_contain_text("张*丰")
        page.locator("#fx-review").click()
        expect(page.locator("#confirm-payee")).to_contain_text("张*丰")
        expect(page.locator("#fx-source-amount")).to_have_text(_money(50_000, YUAN[variant.locale]))
        expect(page.locator("#fx-target-amount")).to_have_text(
            _money(expected.target_amount, DOLLAR[variant.locale])
        )
        expect(page.locator("#fx-spread-amount")).to_contain_text(
            _money(expected.spread_amount, YUAN[variant.locale])
        )
        assert server.balance(payee) == 0  # nothing moved on the review
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "fx-review", variant)
        page.locator("#fx-confirm").click()
        expect(page.locator("#fx-paid")).to_contain_text(text["paid"])
        assert server.balance(payee) == expected.target_amount
        assert server.balance(payer) == 500_000 - 50_000
        page.locator("#fx-status-link").click()
        expect(page.locator("#fx-status-target")).to_have_text(
            _money(expected.target_amount, DOLLAR[variant.locale])
        )
        assert_accessible(page)
        screenshot(page, "fx-status", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_no_account_leads_to_onboarding_in_large_text(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    login, _, _ = server.customer("fxnone")
    with visit(browser, server, variant) as page:
        sign_in(page, login, PASSWORD)
        page.goto("/money")
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("large")
        expect(page.locator("#accounts-empty")).to_contain_text(TEXT[variant.locale]["empty"])
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "money-empty-large", variant)
        page.goto("/fx")
        expect(page.locator("#accounts-empty")).to_be_visible()
        page.locator("#open-account").click()
        expect(page).to_have_url(f"{server.base}/onboarding")

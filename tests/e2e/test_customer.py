"""A customer's journeys in Chromium, in both languages and on both viewports: register and
sign in, the home with formatted amounts and the balance chart, the statement, pay (and see
the ledger change), a refused payment, and the step-up prompt of a large one."""

from __future__ import annotations

import secrets

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.harness import (
    PAIRED_VARIANTS,
    PASSWORD,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    expect_lang,
    screenshot,
    sign_in,
    visit,
)

TEXT = {
    "zh_CN": {"registered": "注册成功", "no_accounts": "您还没有账户", "home": "我的钱"},
    "en": {
        "registered": "Registered",
        "no_accounts": "You have no accounts yet",
        "home": "My money",
    },
}
# Babel's CLDR data: the yuan is "¥" in Chinese and "CN¥" in English.
YUAN = {"zh_CN": "¥", "en": "CN¥"}


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_register_then_sign_in(browser: Browser, server: E2EServer, variant: Variant) -> None:
    login = f"reg-{secrets.token_hex(4)}@example.com"
    text = TEXT[variant.locale]
    with visit(browser, server, variant) as page:
        page.goto("/")
        expect(page).to_have_url(f"{server.base}/signin")
        expect_lang(page, variant.locale)
        assert_accessible(page)
        page.goto("/register")
        form = page.locator("#register-form")
        form.locator("input[name=login]").fill(login)
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        expect(page.locator("#register-form")).to_contain_text(text["registered"])
        assert_accessible(page)
        sign_in(page, login, PASSWORD)
        # No account yet: led to open one (tests/e2e/test_onboarding.py walks it).
        expect(page).to_have_url(f"{server.base}/onboarding")
        page.goto("/money")
        expect(page.locator("h1")).to_have_text(text["home"])
        expect(page.locator("#accounts-empty")).to_contain_text(text["no_accounts"])
        assert page.locator("#my-did").inner_text().startswith("did:key:z")
        assert_accessible(page)
        screenshot(page, "register-sign-in", variant)
        # Signing out ends the session: the money page asks to sign in again.
        page.locator("#signout").click()
        expect(page).to_have_url(f"{server.base}/signin")
        page.goto("/money")
        expect(page).to_have_url(f"{server.base}/signin?next=/money")


def _pay(page: Page, *, to: str, amount: str, reference: str = "", confirm: bool = True) -> None:
    """Fill in the pay form and send it; then (`confirm`) confirm on the review step."""
    form = page.locator("#pay-form")
    form.locator("input[name=credit]").fill(to)
    form.locator("input[name=amount]").fill(amount)
    form.locator("input[name=reference]").fill(reference)
    form.locator("#pay-review").click()
    if confirm:
        page.locator("#pay-confirm").click()


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_home_statement_and_pay_with_the_ledger_changing(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    login, password, did = server.customer("home")
    tag = secrets.token_hex(3)
    account = server.open_and_fund(did, amount_minor=1_234_567, tag=tag)  # 12,345.67
    yuan = YUAN[variant.locale]
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        accounts = page.locator("#accounts")
        expect(accounts).to_contain_text(account)
        expect(accounts).to_contain_text(f"{yuan}12,345.67")
        expect(page.locator("#entries")).to_contain_text("opening deposit")
        # ECharts drew the balance trend (a canvas in the chart's element).
        expect(page.locator(".balance-chart canvas").first).to_be_visible()
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "home", variant)
        page.locator(f"#accounts a[href='/money/accounts/{account}']").click()
        expect(page.locator("#account-balance")).to_have_text(f"{yuan}12,345.67")
        expect(page.locator("#entries")).to_contain_text(f"bank-{tag}")
        assert_accessible(page)

        page.goto("/pay")
        assert_accessible(page)
        _pay(page, to=f"shop-{tag}", amount="12.34", reference="coffee beans")
        expect(page.locator("#paid")).to_contain_text(f"{yuan}12.34")
        assert server.balance(account) == 1_234_567 - 1_234  # the ledger, to the minor unit
        screenshot(page, "paid", variant)
        # More decimals than the yuan has: refused before anything reaches the ledger.
        page.goto("/pay")
        _pay(page, to=f"shop-{tag}", amount="1.001", confirm=False)
        expect(page.locator("#pay-error")).to_be_visible()
        # More than the account holds, to a payee new this session: the step-up policy speaks
        # first (its causes in words, no machine code) and nothing moves.  The ledger's own
        # refusal, translated, is tests/payments/test_pages.py's.
        _pay(page, to=f"shop-{tag}", amount="20000")
        expect(page.locator("#stepup-causes li").first).to_be_visible()
        assert "_" not in page.locator("#stepup-causes").inner_text()
        assert server.balance(account) == 1_234_567 - 1_234
        page.goto("/money")
        expect(accounts).to_contain_text(f"{yuan}12,333.33")
        expect(page.locator("#entries")).to_contain_text("coffee beans")


def test_a_payment_received_shows_without_a_reload(browser: Browser, server: E2EServer) -> None:
    variant = Variant("zh_CN", "desktop")
    login, password, did = server.customer("live")
    tag = secrets.token_hex(3)
    account = server.open_and_fund(did, amount_minor=250_000, tag=tag)
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        expect(page.locator("#accounts")).to_contain_text("¥2,500.00")
        server.op(
            "POST",
            "/transfers",
            {
                "id": f"gift-{tag}",
                "debit_account_id": f"bank-{tag}",
                "credit_account_id": account,
                "amount": 1_000,
                "currency": "CNY",
                "reference": "birthday",
            },
        )
        # The live stream announces it; the home refreshes its part, chart included.
        expect(page.locator("#accounts")).to_contain_text("¥2,510.00", timeout=10_000)
        expect(page.locator("#entries")).to_contain_text("birthday")
        expect(page.locator(".balance-chart canvas").first).to_be_visible()


def test_a_large_payment_asks_for_a_fresh_code_then_pays_once(
    browser: Browser, server: E2EServer
) -> None:
    variant = Variant("zh_CN", "desktop")
    login, password, did = server.customer("large")
    tag = secrets.token_hex(3)
    account = server.open_and_fund(did, amount_minor=10_000_000, tag=tag)  # 100,000.00
    identity = server.platform.identity
    user = identity.store.user_by_login(login)
    assert user is not None
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        authenticator = _enrol_totp(page)
        # Enrolment counts as a fresh second factor; move the clock past its freshness.
        skew_ms = identity.current_policy().fresh_mfa_ms + 60_000
        real_clock = identity.clock
        identity.clock = lambda: real_clock() + skew_ms
        try:
            page.goto("/pay")
            _pay(page, to=f"shop-{tag}", amount="60000.00")  # above the 50,000.00 rule
            expect(page.locator("#stepup-reason")).to_be_visible()
            expect(page.locator("#pay-form")).to_contain_text("¥60,000.00")  # said as money
            assert server.balance(account) == 10_000_000
            assert_accessible(page)
            screenshot(page, "step-up", variant)
            code = page.locator("#pay-form input[name=code]")
            expect(code).to_be_focused()
            code.fill(authenticator.at(identity.clock() / 1000))
            page.locator("#pay-form button[type=submit]").click()
            expect(page.locator("#paid")).to_contain_text("¥60,000.00")
            assert server.balance(account) == 4_000_000
        finally:
            identity.clock = real_clock


def _enrol_totp(page: Page) -> pyotp.TOTP:
    """Set up an authenticator on the security page, typing the secret shown as text (as a
    person whose phone cannot scan would); returns the authenticator."""
    page.goto("/security")
    page.locator("#totp-begin").click()
    expect(page.locator("#totp-qr")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    authenticator = pyotp.TOTP(secret)
    page.locator("#totp-confirm input[name=code]").fill(authenticator.now())
    page.locator("#totp-confirm button[type=submit]").click()
    expect(page.locator("#recovery-codes")).to_be_visible()
    return authenticator


def test_security_self_service(browser: Browser, server: E2EServer) -> None:
    """Authenticator with recovery codes, key export behind a fresh code (as a file, never in
    the page), an API token shown once and revoked."""
    import json
    from pathlib import Path

    from zhijin.chain.crypto import KeyPair
    from zhijin.identity.did import seed_from_private_multikey

    variant = Variant("en", "desktop")
    login, password, did = server.customer("keys")
    identity = server.platform.identity
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        authenticator = _enrol_totp(page)
        codes = page.locator("#recovery-codes").inner_text().split()
        assert len(codes) >= 8
        assert_accessible(page)
        screenshot(page, "security", variant)
        real_clock = identity.clock
        identity.clock = lambda: real_clock() + 31_000  # the next TOTP step: an unused code
        try:
            page.goto("/security")
            form = page.locator("#keys-form")
            form.locator("input[name=code]").fill("000000")
            form.locator("button").click()
            expect(page.locator("#keys-error")).to_be_visible()
            page.goto("/security")
            form.locator("input[name=code]").fill(authenticator.at(identity.clock() / 1000))
            form.locator("button").click()
            with page.expect_download() as download:
                page.locator("#keys-download").click()
            exported = json.loads(Path(download.value.path()).read_text())
            assert exported["did"] == did
            seed = seed_from_private_multikey(exported["keys"][0]["secretKeyMultibase"])
            assert KeyPair.from_seed(seed).did == did
            assert exported["keys"][0]["secretKeyMultibase"] not in page.content()
        finally:
            identity.clock = real_clock
        page.locator("#token-form input[name=name]").fill("bookkeeping")
        page.locator("#token-form button").click()
        expect(page.locator("#token-new")).to_contain_text("zjt_")
        expect(page.locator("#tokens")).to_contain_text("bookkeeping")
        page.locator("#tokens button").first.click()
        expect(page.locator("#tokens")).not_to_contain_text("bookkeeping")

"""A new customer's way to an open account, in Chromium, in both languages and on both
viewports: register, sign in (led to onboarding), personal data with a wrong resident ID
shown beside its field, the KYC upload, the account request, the status while the bank
reviews, the opening policy's automatic account, and its first balance on /money."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import (
    PASSWORD,
    VARIANTS,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    expect_lang,
    screenshot,
    sign_in,
    visit,
)
from zhijin.identity.rbac import Principal, Role

RESIDENT_ID = "11010119950307123X"
TEXT = {
    "zh_CN": {
        "title": "开户",
        "bad_id": "这不是有效的居民身份证号码",
        "pending": "等待银行审核您的实名认证",
        "policy": "已按银行的开户政策自动开立",
        "money": "我的钱",
    },
    "en": {
        "title": "Open an account",
        "bad_id": "not a valid resident identity card number",
        "pending": "Waiting for the bank to review your identity check",
        "policy": "Opened automatically under the bank's opening policy",
        "money": "My money",
    },
}
YUAN = {"zh_CN": "¥", "en": "CN¥"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _approve_kyc(server: E2EServer, login: str) -> None:
    """The bank's compliance officer approves the case (their console is another page)."""
    identity = server.platform.identity
    officer_login, _password = server.staff(Role.COMPLIANCE_OFFICER)
    officer = identity.store.user_by_login(officer_login)
    customer = identity.store.user_by_login(login)
    assert officer is not None and customer is not None
    member = server.platform.node.key.did
    principal = Principal(officer.id, frozenset({Role.COMPLIANCE_OFFICER}), member)
    assert (
        server.platform.personal.review_kyc(
            principal=principal, subject_user_id=customer.id, approve=True
        )
        == "approved"
    )


def _deposit(server: E2EServer, account_id: str, *, amount_minor: int, tag: str) -> None:
    member = server.platform.node.key.did
    bank = f"bank-onb-{tag}"
    server.op(
        "POST", "/accounts", {"id": bank, "owner": member, "currency": "CNY", "kind": "settlement"}
    )
    server.op(
        "POST",
        "/transfers",
        {
            "id": f"first-{tag}",
            "debit_account_id": bank,
            "credit_account_id": account_id,
            "amount": amount_minor,
            "currency": "CNY",
            "reference": "first deposit",
        },
    )
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)


@pytest.mark.parametrize("variant", VARIANTS)
def test_register_to_an_open_account_with_its_first_balance(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login = f"onb-{secrets.token_hex(4)}@example.com"
    with visit(browser, server, variant) as page:
        page.goto("/register")
        form = page.locator("#register-form")
        form.locator("input[name=login]").fill(login)
        form.locator("input[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        expect(page.locator("#register-form a.button")).to_be_visible()
        sign_in(page, login, PASSWORD)
        # No account yet: led to onboarding, not told to ask the bank.
        expect(page).to_have_url(f"{server.base}/onboarding")
        expect_lang(page, variant.locale)
        expect(page.locator("h1")).to_have_text(text["title"])
        assert_accessible(page)

        person = page.locator("#person-form")
        person.locator("input[name=name]").fill("王小明")
        person.locator("input[name=resident_id]").fill("110101199503071230")  # check digit
        person.locator("input[name=mobile]").fill("138 0013 8000")
        person.locator("button[type=submit]").click()
        expect(page.locator("#e-resident_id")).to_contain_text(text["bad_id"], ignore_case=True)
        expect(page.locator("#f-resident_id")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#e-mobile")).to_have_count(0)
        assert_accessible(page)
        screenshot(page, "onboarding-person-error", variant)
        page.locator("#f-resident_id").fill(RESIDENT_ID)
        page.locator("#person-form button[type=submit]").click()

        kyc = page.locator("#kyc-form")
        expect(kyc).to_be_visible()
        kyc.locator("input[name=id_document]").set_input_files(
            {"name": "id-front.png", "mimeType": "image/png", "buffer": PNG}
        )
        kyc.locator("button[type=submit]").click()

        account = page.locator("#account-form")
        expect(account).to_be_visible()
        account.locator("select[name=currency]").select_option("CNY")
        account.locator("button[type=submit]").click()
        expect(page.locator("#requests")).to_contain_text(text["pending"])
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "onboarding-pending", variant)

        _approve_kyc(server, login)  # the policy (individual:CNY) opens the account
        page.locator("#status-refresh").click()
        expect(page.locator("#requests")).to_contain_text(text["policy"])
        opened = page.locator("#requests tr[data-status=opened] a").first
        opened.click()
        account_id = page.locator("#request-facts dd.mono").inner_text().strip()
        assert account_id.startswith("acct-")
        assert server.balance(account_id) == 0  # really open on the ledger
        _deposit(server, account_id, amount_minor=10_000, tag=secrets.token_hex(3))
        page.locator("a.button[href='/money']").click()
        expect(page.locator("h1")).to_have_text(text["money"])
        expect(page.locator("#accounts")).to_contain_text(account_id)
        expect(page.locator("#accounts")).to_contain_text(f"{YUAN[variant.locale]}100.00")
        assert server.balance(account_id) == 10_000
        assert_accessible(page)
        screenshot(page, "onboarding-opened", variant)


def test_large_text_mode_keeps_the_fields_and_errors_usable(
    browser: Browser, server: E2EServer
) -> None:
    variant = Variant("zh_CN", "phone")
    login, password, _did = server.customer("onb-large")
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        expect(page).to_have_url(f"{server.base}/onboarding")
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("large")
        page.locator("#person-form button[type=submit]").click()  # everything missing
        for field in ("name", "resident_id", "mobile"):
            expect(page.locator(f"#e-{field}")).to_be_visible()
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "onboarding-large", variant)

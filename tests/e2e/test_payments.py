"""Payment journeys in Chromium, in both languages and on both viewports: pay safely (the
payee's masked name shown as the field is left and again on the review, then the ledger),
recent payees, the step-up prompt said from its cause with an authenticator set up in place
ending in a paid transfer, a collection QR / payment link paid and refunded in part from the
SME owner's merchant view, and the statement searched and downloaded as CSV."""

from __future__ import annotations

import csv
import io
import secrets
from pathlib import Path

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
    screenshot,
    sign_in,
    visit,
)
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource

RESIDENT_ID = "11010519491231002X"
YUAN = {"zh_CN": "¥", "en": "CN¥"}
TEXT = {
    "zh_CN": {"new_payee": "新收款人且超过 ¥1,000.00", "paid": "已付款"},
    "en": {"new_payee": "new payee over CN¥1,000.00", "paid": "Paid"},
}


def _named(server: E2EServer, login: str, name: str, mobile: str, role: Role) -> None:
    """Give a user their name (identity's vault): what confirmation of payee masks."""
    user = server.platform.identity.store.user_by_login(login)
    assert user is not None
    server.platform.personal.save_person(
        principal=Principal(user_id=user.id, roles=frozenset({role})),
        name=name,
        resident_id=RESIDENT_ID,
        mobile=mobile,
    )


def _person(server: E2EServer, name: str, *, funded: int = 0) -> tuple[str, str, str]:
    """A named customer with one CNY account (funded from the bank): (login, did, account)."""
    login, _, did = server.customer("pay")
    _named(server, login, name, "13800138000", Role.CUSTOMER)
    tag = secrets.token_hex(3)
    account = server.open_and_fund(did, amount_minor=max(funded, 1), tag=tag)
    return login, did, account


def _sme_owner(server: E2EServer, name: str) -> tuple[str, str]:
    """A named SME owner with a merchant account: (login, account)."""
    login = f"sme-{secrets.token_hex(4)}@example.com"
    source = RequestSource(ip=f"10.8.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    user = server.platform.identity.register(
        login=login, password=PASSWORD, kind="sme_owner", source=source
    )
    _named(server, login, name, "13700137000", Role.SME_OWNER)
    account = f"m-{secrets.token_hex(4)}"
    server.op(
        "POST",
        "/accounts",
        {"id": account, "owner": user.did, "currency": "CNY", "kind": "merchant"},
    )
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    return login, account


def _fill_payee(page: Page, payee: str, amount: str, name: str) -> None:
    """Type the payee, leave the field (which looks the payee up: their masked name shows
    before anything else is asked), then the amount."""
    form = page.locator("#pay-form")
    form.locator("input[name=credit]").fill(payee)
    form.locator("input[name=credit]").press("Tab")
    expect(page.locator("#payee-found")).to_contain_text(name)
    form.locator("input[name=amount]").fill(amount)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_pay_safely_with_the_payees_masked_name(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    payer, _, payer_account = _person(server, "李小龙", funded=500_000)
    _, _, payee_account = _person(server, "张三丰")
    yuan = YUAN[variant.locale]
    with visit(browser, server, variant) as page:
        sign_in(page, payer, PASSWORD)
        page.goto("/pay")
        _fill_payee(page, payee_account, "88.80", "张*丰")
        assert_accessible(page)
        page.locator("#pay-review").click()
        expect(page.locator("#confirm-payee")).to_contain_text("张*丰")
        expect(page.locator("#confirm-amount")).to_have_text(f"{yuan}88.80")
        assert server.balance(payee_account) == 1  # nothing moved on the review
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "pay-review", variant)
        page.locator("#pay-confirm").click()
        expect(page.locator("#paid")).to_contain_text(f"{yuan}88.80")
        assert server.balance(payer_account) == 500_000 - 8_880
        assert server.balance(payee_account) == 1 + 8_880
        # The payee is now a recent one: picked from the list, the form is filled in.
        page.goto("/pay")
        recent = page.locator("#recent-payees")
        expect(recent).to_contain_text("张*丰")
        recent.locator("a").first.click()
        expect(page.locator("#pay-form input[name=credit]")).to_have_value(payee_account)
        assert_accessible(page)
        screenshot(page, "pay-recent", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_step_up_explained_and_an_authenticator_set_up_in_place_pays(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    payer, _, payer_account = _person(server, "王五", funded=1_000_000)
    _, _, payee_account = _person(server, "赵六")
    text = TEXT[variant.locale]
    with visit(browser, server, variant) as page:
        sign_in(page, payer, PASSWORD)
        page.goto("/pay")
        _fill_payee(page, payee_account, "1500", "赵*")
        page.locator("#pay-review").click()
        page.locator("#pay-confirm").click()
        expect(page.locator("#stepup-causes")).to_contain_text(text["new_payee"])
        expect(page.locator("#enrol-start")).to_be_focused()
        assert server.balance(payer_account) == 1_000_000
        assert_accessible(page)
        screenshot(page, "step-up-cause", variant)
        page.locator("#enrol-start").click()
        expect(page.locator("#totp-qr")).to_be_visible()
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "step-up-enrol", variant)
        page.locator("#pay-form input[name=code]").fill(pyotp.TOTP(secret).now())
        page.locator("#enrol-confirm").click()
        expect(page.locator("#paid")).to_contain_text(text["paid"])
        expect(page.locator("#recovery-codes")).to_be_visible()
        assert len(page.locator("#recovery-codes").inner_text().split()) >= 8
        assert server.balance(payer_account) == 1_000_000 - 150_000
        assert server.balance(payee_account) == 1 + 150_000
        screenshot(page, "step-up-paid", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_a_collection_qr_is_paid_and_refunded_in_part(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    owner, shop_account = _sme_owner(server, "王小明")
    payer, _, payer_account = _person(server, "Li Si", funded=100_000)
    yuan = YUAN[variant.locale]
    with visit(browser, server, variant) as shop:
        sign_in(shop, owner, PASSWORD)
        shop.goto("/merchant")
        expect(shop.locator("#incoming-empty")).to_be_visible()
        form = shop.locator("#qr-form")
        form.locator("input[name=amount]").fill("25.00")
        form.locator("input[name=memo]").fill("咖啡 coffee")
        form.locator("#qr-create").click()
        expect(shop.locator("#collection-qr")).to_be_visible()
        link = shop.locator("#collection-link").get_attribute("href")
        assert link is not None and "/pay/" in link
        assert_accessible(shop)
        screenshot(shop, "merchant-qr", variant)
        with visit(browser, server, variant) as page:
            sign_in(page, payer, PASSWORD)
            page.goto(link)
            expect(page.locator("#link-amount")).to_have_text(f"{yuan}25.00")
            expect(page.locator("#link-payee")).to_contain_text("王*明")
            assert_accessible(page)
            screenshot(page, "pay-link", variant)
            page.locator("#pay-review").click()
            expect(page.locator("#confirm-amount")).to_have_text(f"{yuan}25.00")
            page.locator("#pay-confirm").click()
            expect(page.locator("#paid")).to_be_visible()
        assert server.balance(payer_account) == 100_000 - 2_500
        shop.goto("/merchant")
        incoming = shop.locator("#incoming")
        expect(incoming).to_contain_text("L* S*")
        expect(shop.locator("#daily")).to_contain_text(f"{yuan}25.00")
        refund = incoming.locator(".refund-form").first
        refund.locator("input[name=amount]").fill("30.00")  # more than the payment
        refund.locator(".refund-submit").click()
        expect(incoming.locator(".refund-error")).to_be_visible()
        assert server.balance(payer_account) == 100_000 - 2_500
        incoming.locator(".refund-form input[name=amount]").first.fill("10.00")
        incoming.locator(".refund-submit").first.click()
        expect(incoming.locator(".refund-done")).to_contain_text(f"{yuan}10.00")
        assert server.balance(payer_account) == 100_000 - 2_500 + 1_000
        assert server.balance(shop_account) == 2_500 - 1_000
        assert_accessible(shop)
        assert_fits_the_screen(shop)
        screenshot(shop, "merchant-refund", variant)
        with shop.expect_download() as download:
            shop.locator("#settlement-download").click()
        rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
        mine = [row for row in rows[1:] if row[2] == shop_account]
        assert len(mine) == 1 and mine[0][4] == "25.00" and mine[0][6] == "10.00"


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_statement_is_searched_and_downloaded(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    login, _, account = _person(server, "孙七", funded=300_000)
    _, _, other = _person(server, "周八")
    for n, memo in enumerate(("books", "rent", "books again")):
        server.op(
            "POST",
            "/transfers",
            {
                "id": f"st-{secrets.token_hex(4)}-{n}",
                "debit_account_id": account,
                "credit_account_id": other,
                "amount": 1_000 * (n + 1),
                "currency": "CNY",
                "reference": memo,
            },
        )
    server.platform.projections.wait_for(server.platform.node.head.height, timeout_s=10)
    yuan = YUAN[variant.locale]
    with visit(browser, server, variant) as page:
        sign_in(page, login, PASSWORD)
        page.goto(f"/money/accounts/{account}")
        entries = page.locator("#entries")
        expect(entries).to_contain_text("周*")
        expect(entries).to_contain_text(f"-{yuan}30.00")
        search = page.locator("#statement-search")
        search.locator("input[name=q]").fill("books")
        search.locator("button[type=submit]").click()
        expect(entries).to_contain_text("books again")
        expect(entries).not_to_contain_text("rent")
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "statement", variant)
        with page.expect_download() as download:
            page.locator("#download-csv").click()
        body = Path(download.value.path()).read_text("utf-8-sig")
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0][0] == ("时间" if variant.locale == "zh_CN" else "Time")
        assert sorted(row[8] for row in rows[1:]) == ["books", "books again"]
        assert sorted(row[3] for row in rows[1:]) == ["-10.00", "-30.00"]

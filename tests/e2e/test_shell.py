"""The shell in Chromium: the language and 大字 switches persist, the keyboard alone reaches
every navigation entry, the API docs render with the network blocked, a staff member's home
names their console (and no one's money), the explorer and the document check; and, over
plain HTTP, the headers, the asset allow-list and the refusals of the preference form."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.harness import (
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
from zhijin.identity.rbac import Role

LARGE_BASE_PX_MIN = 18
TOUCH_TARGET_PX_MIN = 44


def _px(page: Page, selector: str, prop: str) -> float:
    value = page.eval_on_selector(selector, f"e => getComputedStyle(e)['{prop}']")
    return float(str(value).removesuffix("px"))


@pytest.mark.parametrize("variant", [VARIANTS[2]])  # zh-phone; it switches to English
def test_language_and_large_text_switches_persist(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    other = "en" if variant.locale == "zh_CN" else "zh_CN"
    with visit(browser, server, variant) as page:
        page.goto("/explorer")
        expect_lang(page, variant.locale)  # the first visit follows Accept-Language
        page.locator("#lang-switch").click()
        expect_lang(page, other)
        expect(page).to_have_url(f"{server.base}/explorer")
        assert any(
            c["name"] == "zhijin_lang" and c["value"] == other for c in page.context.cookies()
        )
        page.goto("/documents")
        expect_lang(page, other)  # remembered on another page, over Accept-Language
        assert _px(page, "html", "font-size") < LARGE_BASE_PX_MIN
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("large")
        expect(page.locator("#text-switch")).to_have_attribute("aria-pressed", "true")
        page.goto("/signin")
        expect(page.locator("html")).to_have_class("large")
        assert _px(page, "html", "font-size") >= LARGE_BASE_PX_MIN
        assert _px(page, "#signin-form button[type=submit]", "height") >= TOUCH_TARGET_PX_MIN
        assert_fits_the_screen(page)
        assert_accessible(page)  # the high-contrast colours still pass AA
        screenshot(page, "large-text", variant)
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("normal")


def _focused_href(page: Page) -> str | None:
    value = page.evaluate(
        "() => document.activeElement && document.activeElement.getAttribute('href')"
    )
    return None if value is None else str(value)


@pytest.mark.parametrize("variant", [VARIANTS[0], VARIANTS[1]])  # zh-desktop, en-phone
def test_the_keyboard_alone_reaches_every_navigation_entry(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    login, password, _did = server.customer("keys")
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        nav = "nav.bottom" if variant.viewport == "phone" else "nav.primary"
        expected = page.eval_on_selector_all(
            f"{nav} a", "links => links.map(a => a.getAttribute('href'))"
        )
        assert "/money" in expected and "/pay" in expected and "/explorer" in expected
        page.keyboard.press("Tab")
        assert _focused_href(page) == "#main"  # the skip link comes first
        reached: list[str] = []
        for _ in range(60):  # every focusable element of the page, at most
            page.keyboard.press("Tab")
            href = _focused_href(page)
            if href is not None and href in expected and href not in reached:
                reached.append(href)
            if set(reached) == set(expected):
                break
        assert set(reached) == set(expected)
        # The focus is visible, and Enter on a link opens its page.
        page.locator(f"{nav} a[href='/explorer']").focus()
        assert (
            page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
        )
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{server.base}/explorer")


def test_the_api_docs_render_with_the_network_blocked(browser: Browser, server: E2EServer) -> None:
    variant = Variant("en", "desktop")
    with visit(browser, server, variant) as page:
        blocked: list[str] = []
        page.on("requestfailed", lambda r: blocked.append(r.url))
        response = page.goto("/docs")
        assert response is not None
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("zhijin")
        expect(page.locator(".opblock-tag").first).to_be_visible()
        screenshot(page, "api-docs", variant)
        assert blocked == []  # nothing even tried to leave this origin


def test_a_staff_home_names_the_console_and_shows_no_money(
    browser: Browser, server: E2EServer
) -> None:
    variant = Variant("zh_CN", "desktop")
    login, password = server.staff(Role.BANK_OFFICER)
    with visit(browser, server, variant, refused=(403,)) as page:
        sign_in(page, login, password, server.code(login))
        expect(page).to_have_url(f"{server.base}/staff")
        expect(page.locator("main")).to_contain_text("银行柜员控制台")
        nav = page.locator("nav.primary")
        expect(nav.locator("a[href='/money']")).to_have_count(0)
        expect(nav.locator("a[href='/pay']")).to_have_count(0)
        assert_accessible(page)
        screenshot(page, "staff-home", variant)
        response = page.goto("/pay")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("无权访问")
        assert_accessible(page)


def test_the_explorer_shows_a_body_only_to_whom_it_concerns(
    browser: Browser, server: E2EServer
) -> None:
    variant = Variant("en", "desktop")
    login, password, did = server.customer("reader")
    tag = secrets.token_hex(3)
    server.open_and_fund(did, amount_minor=5_000, tag=tag)
    paid = server.op("GET", f"/transfers/fund-{tag}")
    with visit(browser, server, variant) as page:
        page.goto("/explorer")
        expect(page.locator("#head")).to_contain_text("zhijin-local")
        assert_accessible(page)
        page.locator("input[name=q]").fill(paid["tx_hash"])
        page.locator("form[role=search] button").click()
        expect(page).to_have_url(f"{server.base}/explorer/txs/{paid['tx_hash']}")
        expect(page.locator("#tx-redacted")).to_be_visible()  # anyone: where, not what
        expect(page.locator("main")).not_to_contain_text(f"cust-{tag}")
        sign_in(page, login, password)
        page.goto(f"/explorer/txs/{paid['tx_hash']}")
        expect(page.locator("#tx-body")).to_contain_text(f"cust-{tag}")  # her own deposit
        page.locator("#tx-facts a").click()  # the block it is in
        expect(page.locator("#block-txs")).to_contain_text(paid["tx_hash"])
        assert_accessible(page)
        screenshot(page, "explorer", variant)


def test_a_document_is_checked_by_its_hash_only(
    browser: Browser, server: E2EServer, tmp_path: Path
) -> None:
    variant = Variant("zh_CN", "phone")
    document = tmp_path / "contract.txt"
    document.write_bytes(b"supply contract " + secrets.token_bytes(8))
    with visit(browser, server, variant) as page:
        page.goto("/documents")
        page.locator("#check-file").set_input_files(str(document))
        button = page.locator("#check-form button[type=submit]")
        expect(button).to_be_enabled()
        button.click()
        expect(page.locator("#check-answer")).to_contain_text("没有存证记录")
        assert_accessible(page)
        receipt = tmp_path / "receipt.json"
        receipt.write_text('{"version": 1}')
        page.locator("#verify-form input[name=receipt]").set_input_files(str(receipt))
        page.locator("#verify-form button[type=submit]").click()
        expect(page.locator("#verify-answer")).to_contain_text("回执无效")
        screenshot(page, "documents", variant)


# -- over plain HTTP --------------------------------------------------------------------------


def test_headers_assets_and_the_allow_list(server: E2EServer) -> None:
    page = httpx.get(server.base + "/signin")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.base + "/docs").headers["content-security-policy"]
    for url in _asset_urls(page.text):
        asset = httpx.get(server.base + url)
        assert asset.status_code == 200, url
        assert "immutable" in asset.headers["cache-control"]
    htmx = next(u for u in _asset_urls(page.text) if "htmx" in u)
    for refused in (
        htmx.replace("@2", "@1"),  # another version than the one installed
        "/static/vendor/htmx.org@2.0.11/package.json",  # a file not on the allow-list
        "/static/vendor/htmx.org@2.0.11/../../package.json",
        "/static/shell/000000000000/shell.js",  # a digest of another build
        "/static/shell/x/keys",
    ):
        assert httpx.get(server.base + refused).status_code == 404, refused


def _asset_urls(html: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def test_the_preference_form_refuses_other_sites_and_other_destinations(server: E2EServer) -> None:
    cross = httpx.post(
        server.base + "/prefs", data={"lang": "en"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert "zhijin_lang" not in cross.headers.get("set-cookie", "")
    elsewhere = httpx.post(
        server.base + "/prefs",
        data={"lang": "en", "back": "//evil.example/x"},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert elsewhere.status_code == 303
    assert elsewhere.headers["location"] == "/"
    assert "zhijin_lang=en" in elsewhere.headers["set-cookie"]
    unknown = httpx.post(server.base + "/prefs", data={"lang": "fr", "text": "huge"})
    assert unknown.status_code == 303 and "set-cookie" not in unknown.headers
    too_long = httpx.post(server.base + "/prefs", data={"lang": "x" * 100})
    assert too_long.status_code == 422

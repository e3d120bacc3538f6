"""Security self-service in Chromium, in both languages and on both viewports: change the
password (a mismatch refused in the user's language, then the other browser signed out),
the sessions listed with this device marked, and one other session signed out from here."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import (
    VARIANTS,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    screenshot,
    sign_in,
    visit,
)

NEW_PASSWORD = "purple elephant juggling 42"
TEXT = {
    "zh_CN": {
        "mismatch": "两次输入的新密码不一致",
        "changed": "密码已修改",
        "this": "当前设备",
        "out": "该会话已退出",
    },
    "en": {
        "mismatch": "The two new passwords differ",
        "changed": "Password changed",
        "this": "This device",
        "out": "That session is signed out",
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_sessions_and_password_change(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login, password, _did = server.customer("sec")
    with visit(browser, server, variant) as other, visit(browser, server, variant) as page:
        sign_in(other, login, password)
        sign_in(page, login, password)
        page.goto("/security")
        sessions = page.locator("#session-list")
        expect(sessions.locator("tbody tr")).to_have_count(2)
        expect(sessions).to_contain_text(text["this"])
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "security-sessions", variant)
        # Sign the other browser out from here.
        sessions.locator("button.session-revoke").click()
        expect(page.locator("#session-signed-out")).to_contain_text(text["out"])
        expect(page.locator("#session-list tbody tr")).to_have_count(1)
        other.goto("/security")
        expect(other).to_have_url(f"{server.base}/signin?next=/security")
        sign_in(other, login, password)

        form = page.locator("#password-form")
        form.locator("input[name=current]").fill(password)
        form.locator("input[name=new]").fill(NEW_PASSWORD)
        form.locator("input[name=again]").fill(NEW_PASSWORD + "!")
        form.locator("button[type=submit]").click()
        expect(page.locator("#password-error")).to_contain_text(text["mismatch"])
        form = page.locator("#password-form")
        form.locator("input[name=current]").fill(password)
        form.locator("input[name=new]").fill(NEW_PASSWORD)
        form.locator("input[name=again]").fill(NEW_PASSWORD)
        form.locator("button[type=submit]").click()
        expect(page.locator("#password-changed")).to_contain_text(text["changed"])
        assert_accessible(page)
        other.goto("/security")  # the other browser was signed out by the change
        expect(other).to_have_url(f"{server.base}/signin?next=/security")
        sign_in(other, login, NEW_PASSWORD)  # the new password signs in
        other.goto("/security")
        expect(other).to_have_url(f"{server.base}/security")

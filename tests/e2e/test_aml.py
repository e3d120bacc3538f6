"""AML's pages in Chromium, in both languages and on both viewports (and in 大字): a risk analyst
works a customer's alerts from the queue into a case, investigates and escalates it (the
payment graph drawn, separation of duties shown), a compliance officer files the report
(anchored on chain); the analyst dry-runs an edited rule; the regulator watches the live feed
receive a payment committed while the page is open, and reads the flow charts.  Every page
passes axe and never scrolls sideways."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.harness import (
    PAIRED_VARIANTS,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    screenshot,
    settled,
    sign_in,
    visit,
)
from zhijin.identity.rbac import Role

YUAN = 100
TEXT = {
    "zh_CN": {"open": "已立案", "escalated": "已升级", "reported": "已报送", "large": "大额交易",
              "live": "实时连接中"},
    "en": {"open": "Open", "escalated": "Escalated", "reported": "Reported",
           "large": "Large-value transaction", "live": "Live"},
}  # fmt: skip


def _staff_sign_in(page: Page, server: E2EServer, role: Role) -> str:
    login, password = server.staff(role)
    sign_in(page, login, password, server.code(login))
    return login


def _check(page: Page, journey: str, variant: Variant) -> None:
    assert_accessible(page)
    assert_fits_the_screen(page)
    screenshot(page, journey, variant)


def _large_mode(page: Page, journey: str, variant: Variant) -> None:
    """大字 on a phone: the same page still fits and passes axe."""
    if variant.viewport != "phone":
        return
    page.locator("#text-switch").click()
    expect(page.locator("html")).to_have_class("large")
    _check(page, f"{journey}-large", variant)
    page.locator("#text-switch").click()
    expect(page.locator("html")).not_to_have_class("large")


def _suspect(server: E2EServer) -> tuple[str, str]:
    """A customer funded in cash with ¥600,000 who pays ¥500,000 out: two large-value alerts.
    (the customer's DID, the payment's transfer id)."""
    _login, _password, did = server.customer("suspect")
    tag = secrets.token_hex(4)
    account = server.open_and_fund(did, amount_minor=600_000 * YUAN, tag=tag)
    server.op("POST", "/transfers", {
        "id": f"out-{tag}", "debit_account_id": account, "credit_account_id": f"shop-{tag}",
        "amount": 500_000 * YUAN, "currency": "CNY",
    })  # fmt: skip
    server.platform.projections.wait_for(
        server.platform.node.head.height, timeout_s=10, projection=["aml"]
    )
    return did, f"out-{tag}"


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_an_analyst_works_a_case_from_alert_to_report(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    words = TEXT[variant.locale]
    did, _ = _suspect(server)
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.RISK_ANALYST)
        page.goto(f"/aml/alerts?customer={did}")
        rows = page.locator("#queue-rows tr[data-alert]")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text(words["large"])
        _check(page, "aml-queue", variant)
        _large_mode(page, "aml-queue", variant)
        page.locator("#open-reason").fill("现金存入后大额转出 / cash in, large payment out")
        page.locator("#open-submit").click()
        page.wait_for_url("**/aml/cases/case-*")
        expect(page.locator("#case-status")).to_have_text(words["open"])
        expect(page.locator("#sod-notice")).to_be_visible()
        expect(page.locator("#step-dismissed")).to_have_count(0)
        expect(page.locator(".chart[data-graph] canvas")).to_have_count(1)
        expect(page.locator("#graph-edges tbody tr")).to_have_count(2)
        _check(page, "aml-case-open", variant)
        case_url = page.url
        for step, reason in (("investigating", "调取交易明细"), ("escalated", "疑似过渡账户")):
            page.locator("#step-reason").fill(reason)
            page.locator(f"#step-{step}").click()
            expect(page.locator("#case-status")).to_have_attribute("data-status", step)
            settled(page)
        expect(page.locator("#case-status")).to_have_text(words["escalated"])
        expect(page.locator("#case-steps li")).to_have_count(3)
        expect(page.locator("#file-report")).to_have_count(0)  # the compliance officer's
        _large_mode(page, "aml-case-escalated", variant)
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.COMPLIANCE_OFFICER)
        page.goto(case_url)
        expect(page.locator("#export-xml")).to_be_visible()
        page.locator("#step-reason").fill("报送可疑交易报告 / filing the report")
        page.locator("#file-report").click()
        expect(page.locator("#case-status")).to_have_attribute("data-status", "reported")
        expect(page.locator("#case-status")).to_have_text(words["reported"])
        expect(page.locator("#filing-hash")).to_have_text(_hex64())
        expect(page.locator("#filing-anchor")).to_have_attribute("href", _block_link())
        _check(page, "aml-case-reported", variant)
        with page.expect_download() as download:
            page.locator("#export-xml").click()
        assert download.value.suggested_filename.endswith(".xml")


def _hex64() -> object:
    import re

    return re.compile(r"^[0-9a-f]{64}$")


def _block_link() -> object:
    import re

    return re.compile(r"^/blocks/\d+$")


@pytest.mark.parametrize("variant", PAIRED_VARIANTS[:1])
def test_the_analyst_dry_runs_an_edited_rule(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    _suspect(server)
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.RISK_ANALYST)
        page.goto("/aml/rules")
        _check(page, "aml-rules", variant)
        page.locator("#threshold_individual_domestic_cny").fill("100000")
        page.locator("#dry-run-button").click()
        expect(page.locator("#dry-run-summary")).to_be_visible()
        expect(page.locator("#dry-run-customers li").first).to_be_visible()
        page.locator("#fan_counterparties_min").fill("0")
        page.locator("#dry-run-button").click()
        expect(
            page.locator("#dry-run-fields li[data-field=fan_counterparties_min]")
        ).to_be_visible()
        assert_accessible(page)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_regulator_sees_the_live_feed_and_the_charts(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    words = TEXT[variant.locale]
    _suspect(server)
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.REGULATOR)
        page.goto("/aml/feed")
        expect(page.locator("#read-only")).to_be_visible()
        expect(page.locator("#feed-state")).to_have_text(words["live"])
        _check(page, "aml-feed", variant)
        # A payment committed while the page is open arrives without a reload.
        _did, transfer_id = _suspect(server)
        fresh = page.locator(f'#feed-transactions tr[data-transfer="{transfer_id}"]')
        expect(fresh).to_have_count(1, timeout=15_000)
        money = "¥500,000.00" if variant.locale == "zh_CN" else "CN¥500,000.00"
        expect(fresh.locator("td.num")).to_have_text(money)
        expect(page.locator("#feed-alerts tr.fresh").first).to_contain_text(words["large"])
        assert_fits_the_screen(page)
        _large_mode(page, "aml-feed", variant)
        page.goto("/aml/flows")
        expect(page.locator(".chart[data-series-chart] canvas").first).to_be_visible()
        expect(page.locator("#flow-totals tbody tr").first).to_be_visible()
        expect(page.locator("#lvr-xml")).to_be_visible()
        _check(page, "aml-flows", variant)
        _large_mode(page, "aml-flows", variant)

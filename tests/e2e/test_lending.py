"""Lending's pages in Chromium, in both languages and on both viewports (and in 大字): the
customer applies with their credit decision and sees the result and its reasons at once, finds
the loan (paid out by the bank) in "my loans", opens its schedule, previews a partial early
repayment that shortens the term and confirms it; withdraws an application; the officer works
the review queue (rejecting with a reason, by keyboard), and sees the book, the products and
the LPR table.  Each page is axe-clean and never scrolls sideways on a phone."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.credit.helpers import POLICY
from tests.e2e.harness import (
    PAIRED_VARIANTS,
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
from tests.lending.helpers import PRODUCT
from zhijin.chain.codec import canonical, sha256
from zhijin.identity.rbac import Role
from zhijin.lending import service
from zhijin.lending.expected import DecisionFacts
from zhijin.platform.gateway import MemberGateway

TEXT = {
    "zh_CN": {
        "loans": "我的贷款",
        "approved": "已自动批准",
        "reason": "收入稳定",
        "current": "正常还款中",
        "repaid": "还款已完成",
        "new_payee": "新收款人且超过 ¥1,000.00",
        "withdrawn": "已撤回",
        "queue": "贷款审批",
        "rejected": "已拒绝",
        "forbidden": "无权访问",
    },
    "en": {
        "loans": "My loans",
        "approved": "Approved automatically",
        "reason": "steady income",
        "current": "Current",
        "repaid": "Repaid",
        "new_payee": "new payee over CN¥1,000.00",
        "withdrawn": "Withdrawn",
        "queue": "Loan review queue",
        "rejected": "Rejected",
        "forbidden": "Not allowed",
    },
}


@dataclass
class _Decisions:
    """Credit's decision records as lending's port gives them (injected, as the API tests do:
    the anchors they name are on chain; training a model is credit's e2e test's business)."""

    facts: dict[str, DecisionFacts]

    def decision(self, decision_id: str) -> DecisionFacts | None:
        return self.facts.get(decision_id)

    def decisions_of(self, subject: str, *, limit: int) -> list[DecisionFacts]:
        return [f for f in self.facts.values() if f.subject == subject][:limit]


@dataclass(frozen=True, slots=True)
class World:
    decisions: _Decisions
    gateway: MemberGateway
    member: str


def _chain(gateway: MemberGateway, contract: str, method: str, args: dict[str, Any]) -> None:
    result = gateway.submit(contract, method, args)
    assert result["status"] == "ok", result


@pytest.fixture(scope="module")
def world(server: E2EServer) -> World:
    """An approved model and policy in credit, the LPR, an approved product (made by one
    officer, approved by another) with the bank's income account."""
    platform = server.platform
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    _chain(gateway, "payments", "create_accounts", {"accounts": [
        {"id": "e2e-income", "owner": member, "currency": "CNY", "kind": "settlement"},
    ]})  # fmt: skip
    _chain(gateway, "credit", "register_model", {"sha256": "a" * 64, "name": "m", "version": "1",
                                                 "card_sha256": "c" * 64, "trainer": "u-t"})  # fmt: skip
    _chain(gateway, "credit", "approve_model", {"sha256": "a" * 64, "approver": "u-a"})
    _chain(gateway, "credit", "set_policy", {"policy_id": "retail", "version": 1,
                                             "rules": POLICY, "officer": "u-p"})  # fmt: skip
    service.set_lpr(platform, gateway, tenor="1y", rate_bps=310, effective_day="2024-01-22")
    terms = {k: v for k, v in PRODUCT.items() if k != "officer"}
    terms = {**terms, "income_account_id": "e2e-income",
             "auto_approval": {**PRODUCT["auto_approval"], "min_kyc_level": 0}}  # fmt: skip
    service.create_product(platform, gateway, terms=terms, officer="u-maker")
    service.approve_product(
        platform, gateway, product_id=PRODUCT["product_id"], officer="u-checker"
    )
    decisions = _Decisions({})
    platform.lending_ports = replace(platform.lending_ports, decisions=decisions)
    return World(decisions, gateway, member)


def _borrower(server: E2EServer, world: World, tag: str) -> tuple[str, str, str, str]:
    """A customer with a funded account and an anchored credit decision about them."""
    login, password, did = server.customer(f"loan-{tag}")
    account = server.open_and_fund(did, amount_minor=5_000_000, tag=tag)
    decision_id = f"dec-{tag}"
    record = {"decision_id": decision_id, "subject": did, "member": world.member, "points": 720}
    digest = sha256(canonical(record)).hex()
    _chain(world.gateway, "credit", "anchor_decision", {
        "decision_id": decision_id, "record_sha256": digest, "model_sha256": "a" * 64,
        "policy_id": "retail", "policy_version": 1,
    })  # fmt: skip
    world.decisions.facts[decision_id] = DecisionFacts(
        decision_id=decision_id, record_sha256=digest, member=world.member, subject=did,
        outcome="approve", points=720, limit_minor=5_000_000, currency="CNY",
        reasons=({"code": "income", "feature": "income", "text_zh": "收入稳定",
                  "text_en": "steady income"},), decided_at_ms=server.platform.node.clock(),
    )  # fmt: skip
    return login, password, did, account


def _apply(page: Page, amount: str) -> None:
    page.goto("/loans/apply")
    form = page.locator("#apply-form")
    form.locator("#apply-amount").fill(amount)
    form.locator("#apply-income").fill("20000")
    form.locator("#apply-submit").click()
    expect(page.locator("#apply-result")).to_be_visible()


def _checks(page: Page) -> None:
    assert_accessible(page)
    assert_fits_the_screen(page)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_customer_applies_and_repays_early(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    tag = f"{variant.id}-{secrets.token_hex(2)}"
    login, password, _did, _account = _borrower(server, world, tag)
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        expect(
            page.locator("nav.primary a[href='/loans'], nav.bottom a[href='/loans']").first
        ).to_have_count(1)
        page.goto("/loans")
        expect_lang(page, variant.locale)
        expect(page.locator("h1")).to_have_text(text["loans"])
        _checks(page)
        _apply(page, "12000")
        result = page.locator("#apply-result")
        expect(result).to_have_attribute("data-status", "approved")
        expect(result).to_contain_text(text["approved"])
        expect(page.locator("#decision-reasons li[data-code='income']")).to_contain_text(
            text["reason"]
        )
        _checks(page)
        screenshot(page, "lending-applied", variant)
        loan_id = page.locator("#to-loan").get_attribute("href").rsplit("/", 1)[-1]  # type: ignore[union-attr]
        service.disburse(server.platform, world.gateway, loan_id=loan_id)  # the bank pays out
        page.goto("/loans")
        row = page.locator(f"#my-loans tr[data-loan='{loan_id}']")
        expect(row.locator(".loan-status")).to_have_text(text["current"])
        expect(row.locator(".outstanding")).to_contain_text("12,000.00")
        _checks(page)
        row.locator("a").click()
        expect(page.locator("#loan-schedule tbody tr")).to_have_count(12)
        expect(page.locator("#loan-schedule tr[data-state='due']")).to_have_count(1)
        _checks(page)
        form = page.locator("#repay-form")
        form.locator("#repay-partial").check()
        form.locator("#repay-amount").fill("3000")
        form.locator("#repay-shorten").check()
        form.locator("#repay-preview").click()
        expect(page.locator("#new-schedule")).to_be_visible()
        shortened = page.locator("#new-schedule tbody tr").count()
        assert 0 < shortened < 12
        _checks(page)
        screenshot(page, "lending-repay-preview", variant)
        page.locator("#repay-confirm").click()
        # ¥3,000.00 to the loan's account, never paid before: the step-up policy asks for a
        # fresh code, and this borrower sets an authenticator up in place (identity's prompt).
        expect(page.locator("#stepup-causes")).to_contain_text(text["new_payee"])
        expect(page.locator("#enrol-start")).to_be_focused()
        _checks(page)
        page.locator("#enrol-start").click()
        expect(page.locator("#totp-qr")).to_be_visible()
        secret = page.locator("#totp-secret").inner_text().replace(" ", "")
        _checks(page)
        page.locator("#repay input[name=code]").fill(pyotp.TOTP(secret).now())
        page.locator("#enrol-confirm").click()
        expect(page.locator("#repaid")).to_contain_text(text["repaid"])
        expect(page.locator("#recovery-codes")).to_be_visible()
        _checks(page)
        page.wait_for_url(f"**/loans/{loan_id}?repaid=*")  # the repaid loan's address
        page.reload()
        expect(page.locator("#repaid")).to_contain_text(text["repaid"])
        expect(page.locator("#loan-payments tr[data-payment]")).to_have_count(1)
        expect(page.locator("#loan-schedule tbody tr")).to_have_count(shortened)
        _checks(page)
        screenshot(page, "lending-loan", variant)


@pytest.mark.parametrize("variant", [VARIANTS[2]])  # zh-phone, in 大字
def test_a_withdrawal_in_large_text_on_a_phone(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login, password, _did, _account = _borrower(server, world, f"wd-{secrets.token_hex(2)}")
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        page.goto("/loans")
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("large")
        _apply(page, "5000")
        page.locator("#to-loan").click()
        page.on("dialog", lambda dialog: dialog.accept())
        page.locator("#withdraw").click()
        expect(page.locator("#loan-status")).to_have_text(text["withdrawn"])
        _checks(page)
        screenshot(page, "lending-withdrawn-large", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_officer_rejects_from_the_queue_by_keyboard(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    _login, _password, did, account = _borrower(server, world, f"q-{secrets.token_hex(2)}")
    queued = service.apply(
        server.platform, world.gateway, loan_id=f"e2e-q-{secrets.token_hex(3)}",
        product_id=PRODUCT["product_id"], borrower=did, applied_by="u-desk",
        amount_minor=30_000_000, decision_id=next(
            f.decision_id for f in world.decisions.facts.values() if f.subject == did),
        monthly_income_minor=2_000_000, monthly_debt_minor=0, kyc_level=0,
        repayment_account_id=account,
    )["loan"]  # fmt: skip
    assert queued["status"] == "review"
    officer, officer_password = server.staff(Role.BANK_OFFICER)
    with visit(browser, server, variant, refused=(403,)) as page:
        sign_in(page, officer, officer_password, server.code(officer))
        page.goto("/staff/loans")
        _checks(page)
        page.goto("/staff/loans/queue")
        expect(page.locator("h1")).to_have_text(text["queue"])
        row = page.locator(f"#queue-{queued['loan_id']}")
        expect(row.locator("li[data-code='amount_above_auto_limit']")).to_have_count(1)
        _checks(page)
        reason = row.locator("input[name=reason]")
        reason.focus()
        page.keyboard.type("收入不足")
        page.keyboard.press("Tab")  # approve
        page.keyboard.press("Tab")  # reject
        page.keyboard.press("Enter")
        expect(page.locator(f"#queue-{queued['loan_id']} .review-done")).to_have_text(
            text["rejected"]
        )
        _checks(page)
        screenshot(page, "lending-queue", variant)
        for path in ("/staff/loans/products", "/staff/loans/lpr"):
            page.goto(path)
            _checks(page)
        expect(page.locator("#lpr-table tr[data-tenor='1y'] .lpr-rate")).to_have_text("3.10%")
        response = page.goto("/loans")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text(text["forbidden"])

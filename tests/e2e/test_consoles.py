"""The staff consoles in Chromium: each staff role signs in (with its authenticator) to exactly
its console's navigation and gets the 403 page on the others, a customer sees none of it; and
each console's main action by real clicks, checked through the services afterwards: a KYC case
reviewed, an account opened only by the second officer (the first is told why not), a role
granted, a policy previewed and saved, the chain and the audit log verified with progress."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.harness import (
    PAIRED_VARIANTS,
    E2EServer,
    Variant,
    assert_accessible,
    assert_fits_the_screen,
    screenshot,
    sign_in,
    visit,
)
from zhijin.identity.kyc import KycDocument
from zhijin.identity.rbac import Role
from zhijin.identity.service import RequestSource
from zhijin.identity.stepup import DEFAULT_POLICY
from zhijin.payments.opening import AccountOpening
from zhijin.platform.gateway import MemberGateway

CONSOLES = {
    Role.BANK_OFFICER: {"/staff/account-requests", "/staff/accounts", "/staff/loans"},
    Role.COMPLIANCE_OFFICER: {
        "/staff/kyc",
        "/staff/personal-data",
        "/staff/audit",
        "/staff/policy",
    },
    Role.AUDITOR: {"/staff/audit", "/staff/ledger", "/staff/chain"},
    Role.ADMIN: {"/staff/people", "/staff/policy"},
}
EVERY_CONSOLE_PAGE = set().union(*CONSOLES.values())
# Each role in one language and viewport; together they cover both of each.
ROLE_VARIANTS = [
    pytest.param(Role.BANK_OFFICER, Variant("zh_CN", "desktop"), id="officer-zh-desktop"),
    pytest.param(Role.COMPLIANCE_OFFICER, Variant("en", "phone"), id="compliance-en-phone"),
    pytest.param(Role.AUDITOR, Variant("zh_CN", "phone"), id="auditor-zh-phone"),
    pytest.param(Role.ADMIN, Variant("en", "desktop"), id="admin-en-desktop"),
]


def _nav_paths(page: Page, variant: Variant) -> set[str]:
    nav = page.locator("nav.bottom" if variant.viewport == "phone" else "nav.primary")
    hrefs = nav.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return {href for href in hrefs if href.startswith("/staff/")}


def _staff_sign_in(page: Page, server: E2EServer, role: Role, *more: Role) -> str:
    login, password = server.staff(role, *more)
    sign_in(page, login, password, server.code(login))
    return login


@pytest.mark.parametrize(("role", "variant"), ROLE_VARIANTS)
def test_each_staff_role_sees_exactly_its_console(
    browser: Browser, server: E2EServer, role: Role, variant: Variant
) -> None:
    with visit(browser, server, variant, refused=(403,)) as page:
        _staff_sign_in(page, server, role)
        expect(page).to_have_url(f"{server.base}/staff")
        assert _nav_paths(page, variant) == CONSOLES[role]
        expect(page.locator("#console-pages a")).to_have_count(len(CONSOLES[role]))
        for path in sorted(CONSOLES[role]):
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            assert_accessible(page)
            assert_fits_the_screen(page)
            screenshot(page, f"console{path.replace('/', '-')}-{role.value}", variant)
        other = sorted(EVERY_CONSOLE_PAGE - CONSOLES[role])[0]
        refused = page.goto(other)
        assert refused is not None and refused.status == 403
        expect(page.locator("h1")).to_have_text(
            "无权访问" if variant.locale == "zh_CN" else "Not allowed"
        )
        assert _nav_paths(page, variant) == CONSOLES[role]
        if variant.viewport == "phone":  # 大字 on a phone: the console still fits
            page.goto(sorted(CONSOLES[role])[0])
            page.locator("#text-switch").click()
            expect(page.locator("html")).to_have_class("large")
            assert_fits_the_screen(page)
            assert_accessible(page)
            screenshot(page, f"console-large-{role.value}", variant)


def test_a_customer_sees_no_staff_navigation(browser: Browser, server: E2EServer) -> None:
    variant = Variant("zh_CN", "phone")
    with visit(browser, server, variant, refused=(403,)) as page:
        login, password, _did = server.customer("console-customer")
        sign_in(page, login, password)
        assert _nav_paths(page, variant) == set()
        response = page.goto("/staff/kyc")
        assert response is not None and response.status == 403


def _customer_with_kyc(server: E2EServer) -> tuple[str, object]:
    """A customer who submitted KYC and asked for a USD account (through the services):
    (user id, their principal)."""
    login, password, _did = server.customer("kyc")
    identity = server.platform.identity
    session = identity.login(login=login, password=password, source=RequestSource(ip="e2e-kyc"))
    principal = session.principal
    personal = server.platform.personal
    personal.save_person(
        principal=principal, name="何欣", resident_id="11010119950307123X", mobile="13800138000"
    )
    personal.submit_kyc(
        principal=principal,
        member_did=server.platform.node.key.did,
        documents=[KycDocument("id_card_front", "image/png", b"\x89PNG demo")],
    )
    opening = AccountOpening(server.platform, MemberGateway(server.platform.node))
    opening.request(
        principal=principal,
        request_id="usd-1",
        currency_code="USD",
        kind="customer",
        purpose="savings",
    )
    return principal.user_id, principal


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_account_opens_only_when_a_second_officer_approves(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    user_id, _principal = _customer_with_kyc(server)
    opening = AccountOpening(server.platform, MemberGateway(server.platform.node))
    row = f"#request-{user_id}-usd-1"
    with visit(browser, server, variant) as page:
        # One person holding both duties reviews the KYC, then may not open the account.
        _staff_sign_in(page, server, Role.BANK_OFFICER, Role.COMPLIANCE_OFFICER)
        page.goto("/staff/kyc")
        case = page.locator(f"#kyc-{user_id}")
        case.locator("button[value=approve]").click()
        expect(page.locator(f"#kyc-{user_id} .kyc-status")).to_have_text(
            "已通过" if variant.locale == "zh_CN" else "Approved"
        )
        assert server.platform.identity.store.kyc_case(user_id)["status"] == "approved"
        page.goto("/staff/account-requests")
        expect(page.locator(f"{row} [data-blocker=sod_self_approval]")).to_be_visible()
        expect(page.locator(f"{row} button.open-account")).to_have_count(0)
        assert_accessible(page)
        screenshot(page, "console-four-eyes-refused", variant)
        assert opening.store.get(user_id, "usd-1").status == "pending"
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.BANK_OFFICER)
        page.goto("/staff/account-requests")
        page.locator(f"{row} button.open-account").click()
        expect(page.locator(f"{row} .request-status")).to_have_text(
            "已开户" if variant.locale == "zh_CN" else "Opened"
        )
        screenshot(page, "console-account-opened", variant)
        opened = opening.store.get(user_id, "usd-1")
        assert opened.status == "opened"
        account = server.op("GET", f"/accounts/{opened.account_id}")
        assert account["currency"] == "USD" and account["status"] == "open"
        # The officer then freezes it from the accounts console, and unfreezes it.
        page.goto(f"/staff/accounts?after={opened.account_id[:-1]}")
        account_row = page.locator(f"#account-{opened.account_id}")
        account_row.locator("button.freeze").click()
        expect(page.locator(f"#account-{opened.account_id} button.unfreeze")).to_be_visible()
        assert server.op("GET", f"/accounts/{opened.account_id}")["status"] == "frozen"
        page.locator(f"#account-{opened.account_id} button.unfreeze").click()
        expect(page.locator(f"#account-{opened.account_id} button.freeze")).to_be_visible()
        assert server.op("GET", f"/accounts/{opened.account_id}")["status"] == "open"


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_admin_grants_a_role_the_policy_allows(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    officer, _ = server.staff(Role.BANK_OFFICER)
    identity = server.platform.identity
    target = identity.store.user_by_login(officer)
    assert target is not None
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.ADMIN)
        page.goto(f"/staff/people?after={officer[:-1]}")
        row = page.locator(f"#staff-{officer}")
        options = row.locator("select[name=role] option").evaluate_all("os => os.map(o => o.value)")
        assert "compliance_officer" in options and "auditor" not in options
        row.locator("select[name=role]").select_option("compliance_officer")
        row.locator("form button[type=submit]").click()
        expect(page.locator("#staff-done")).to_be_visible()
        assert identity.store.roles_of(target.id) == {Role.BANK_OFFICER, Role.COMPLIANCE_OFFICER}
        assert_accessible(page)
        screenshot(page, "console-role-granted", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_compliance_previews_and_saves_a_policy(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    draft = json.loads(json.dumps(DEFAULT_POLICY))
    draft["version"] = f"e2e-{variant.id}"
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.COMPLIANCE_OFFICER)
        page.goto("/staff/policy")
        page.locator("textarea[name=policy]").fill(json.dumps(draft, indent=2))
        page.locator("#policy-preview-button").click()
        expect(page.locator("#preview-summary")).to_be_visible()
        assert_accessible(page)
        page.locator("#policy-save").click()
        expect(page.locator("#policy-saved")).to_contain_text(draft["version"])
        screenshot(page, "console-policy-saved", variant)
    assert server.platform.identity.current_policy().version == draft["version"]


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_auditor_verifies_the_chain_and_the_audit_log(
    browser: Browser, server: E2EServer, variant: Variant
) -> None:
    with visit(browser, server, variant) as page:
        _staff_sign_in(page, server, Role.AUDITOR)
        page.goto("/staff/chain")
        expect(page.locator("#read-only")).to_be_visible()
        page.locator("#chain-verify-start").click()
        expect(page.locator("#chain-verify-result")).to_have_class("notice ok", timeout=60_000)
        assert_accessible(page)
        screenshot(page, "console-chain-verified", variant)
        page.goto("/staff/audit?action=role.*")
        expect(page.locator("#audit-entries")).to_be_visible()
        with page.expect_download() as download:
            page.locator("#audit-csv").click()
        lines = download.value.path().read_text("utf-8").splitlines()
        assert lines[0].startswith("seq,at,actor,action") and len(lines) > 1
        assert all(",role." in line for line in lines[1:])
        page.locator("#audit-verify-start").click()
        expect(page.locator("#audit-verify-result")).to_have_class("notice ok", timeout=60_000)
        assert_accessible(page)
        screenshot(page, "console-audit-verified", variant)
        page.goto("/staff/ledger")
        expect(page.locator("#ledger-state")).to_have_class("notice ok")
        page.locator("#ledger-verify-start").click()
        expect(page.locator("#ledger-verify-result")).to_have_class("notice ok", timeout=60_000)
        screenshot(page, "console-ledger", variant)

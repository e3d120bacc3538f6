"""Credit's pages in Chromium, in both languages and on both viewports (and in 大字): the
customer's score, its reasons, its history chart and their decisions with the reasons in their
language; the officer's decisions console (filter by outcome, one decision, replay → match);
the regulator's registry and a model card with its figures and fairness table.  Each role
sees its own pages in the navigation and is refused the others'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.credit.conftest import FAST
from tests.credit.helpers import APPLICANT, POLICY
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
from zhijin.credit import service
from zhijin.identity.rbac import Role
from zhijin.platform.gateway import MemberGateway

TEXT = {
    "zh_CN": {
        "my_credit": "我的信用",
        "decisions": "信用决策",
        "models": "信用模型",
        "match": "一致",
        "every_member": "所有成员机构登记的模型",
        "forbidden": "无权访问",
    },
    "en": {
        "my_credit": "My credit",
        "decisions": "Credit decisions",
        "models": "Credit models",
        "match": "Match",
        "every_member": "Every member's registered models",
        "forbidden": "Not allowed",
    },
}
RISKY = {
    "checking_status": "overdrawn",
    "duration_months": 60,
    "age_years": 20,
    "amount_minor": 2_000_000,
    "savings": "below_100",
    "credit_history": "delayed_in_past",
}


@dataclass(frozen=True, slots=True)
class World:
    sha: str
    customer: tuple[str, str, str]
    decided: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def world(server: E2EServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    """A model with its cross-validated figures and fairness report in the card (fixed
    hyperparameters, so it takes seconds), registered by one officer and approved by another;
    a policy; a funded customer with a good and a risky decision about them."""
    from zhijin.credit.artifact import save_model
    from zhijin.credit.datasets import fetch_german_credit, german_credit
    from zhijin.credit.evaluation import cross_validate
    from zhijin.credit.fairness import fairness_report
    from zhijin.credit.training import Hyperparameters, train

    fetch_german_credit()
    data = german_credit()
    chosen = Hyperparameters(**FAST)
    evaluation = cross_validate(data, seed=7, hyperparameters=chosen)
    fairness = fairness_report(data, evaluation)
    model = train(data, seed=7, hyperparameters=chosen, evaluation=evaluation.to_json(),
                  fairness=fairness.to_json(), trainer="u-maker")  # fmt: skip
    path = tmp_path_factory.mktemp("e2e-credit") / "model.json"
    save_model(model, path)
    platform = server.platform
    gateway = MemberGateway(platform.node)
    sha = service.register_model(platform, gateway, trainer="u-maker", path=path)["model"]["sha256"]
    service.approve_model(platform, gateway, sha256_hex=sha, approver="u-checker")
    service.save_policy(platform, gateway, policy_id="retail", version=1, rules=POLICY,
                        officer="u-maker")  # fmt: skip
    customer = server.customer("credit")
    server.open_and_fund(customer[2], amount_minor=250_000, tag="credit")
    decided = {}
    for decision_id, changes in (("e2e-good", {}), ("e2e-risky", RISKY)):
        answer = service.decide_for(
            platform,
            gateway,
            decision_id=decision_id,
            policy_id="retail",
            applicant={**APPLICANT, **changes},
            subject=customer[2],
            requested_by="operator",
        )
        decided[decision_id] = answer["decision"]
    return World(sha, customer, decided)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_customer_sees_their_score_its_history_and_their_decisions(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login, password, _did = world.customer
    risky = world.decided["e2e-risky"]
    reason = risky["reasons"][0]
    with visit(browser, server, variant, refused=(403,)) as page:
        sign_in(page, login, password)
        nav = page.locator("nav.primary")
        expect(nav.locator("a[href='/credit']")).to_have_count(1)
        expect(nav.locator("a[href='/credit/models']")).to_have_count(0)
        expect(nav.locator("a[href='/credit/decisions']")).to_have_count(0)
        page.goto("/credit")
        expect_lang(page, variant.locale)
        expect(page.locator("h1")).to_have_text(text["my_credit"])
        expect(page.locator("#my-score")).to_have_text(str(risky["behaviour_score"]))
        expect(page.locator("#score-reasons tr[data-code='inflows_90d']")).to_have_count(1)
        expect(page.locator(".chart canvas")).to_have_count(1)  # ECharts drew the history
        row = page.locator("#my-decisions tr[data-decision='e2e-risky']")
        said = reason["text_zh"] if variant.locale == "zh_CN" else reason["text_en"]
        expect(row.locator(f"li[data-code='{reason['code']}']")).to_contain_text(said)
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "credit-customer", variant)
        response = page.goto("/credit/models")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text(text["forbidden"])


@pytest.mark.parametrize("variant", [VARIANTS[2]])  # zh-phone, in 大字
def test_the_customers_page_in_large_text_fits_a_phone(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    login, password, _did = world.customer
    with visit(browser, server, variant) as page:
        sign_in(page, login, password)
        page.goto("/credit")
        page.locator("#text-switch").click()
        expect(page.locator("html")).to_have_class("large")
        expect(page.locator("#my-decisions")).to_be_visible()
        assert_fits_the_screen(page)
        assert_accessible(page)
        screenshot(page, "credit-customer-large", variant)


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_officer_filters_opens_and_replays_a_decision(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login, password = server.staff(Role.BANK_OFFICER)
    outcome = world.decided["e2e-risky"]["outcome"]
    with visit(browser, server, variant, refused=(403,)) as page:
        sign_in(page, login, password, server.code(login))
        nav = page.locator("nav.primary")
        expect(nav.locator("a[href='/credit/decisions']")).to_have_count(1)
        expect(nav.locator("a[href='/credit']")).to_have_count(0)
        page.goto("/credit/decisions")
        expect(page.locator("h1")).to_have_text(text["decisions"])
        expect(page.locator("tr[data-decision='e2e-good']")).to_have_count(1)
        page.locator("#outcome-filter select").select_option(outcome)
        page.locator("#outcome-filter button[type=submit]").click()
        expect(page).to_have_url(f"{server.base}/credit/decisions?outcome={outcome}")
        rows = page.locator("#decision-rows tr[data-outcome]")
        expect(rows.first).to_be_visible()
        assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.outcome)")) == {outcome}
        assert_accessible(page)
        page.locator("a[href='/credit/decisions/e2e-risky']").click()
        record = world.decided["e2e-risky"]
        expect(page.locator("#input-digest")).to_have_text(record["input_sha256"])
        expect(page.locator("#model-hash")).to_have_text(record["model_sha256"])
        page.locator("#replay-button").click()
        verdict = page.locator("#replay-verdict")
        expect(verdict).to_have_attribute("data-same", "true")
        expect(verdict).to_contain_text(text["match"])
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "credit-decision-replay", variant)
        response = page.goto("/credit")
        assert response is not None and response.status == 403


@pytest.mark.parametrize("variant", PAIRED_VARIANTS)
def test_the_regulator_sees_every_members_models_and_a_card(
    browser: Browser, server: E2EServer, world: World, variant: Variant
) -> None:
    text = TEXT[variant.locale]
    login, password = server.staff(Role.REGULATOR)
    with visit(browser, server, variant, refused=(403,)) as page:
        sign_in(page, login, password, server.code(login))
        nav = page.locator("nav.primary")
        expect(nav.locator("a[href='/credit/models']")).to_have_count(1)
        expect(nav.locator("a[href='/credit/decisions']")).to_have_count(0)
        page.goto("/credit/models")
        expect(page.locator("h1")).to_have_text(text["models"])
        expect(page.locator("#models-heading")).to_have_text(text["every_member"])
        page.locator(f"tr[data-model='{world.sha}'] a").click()
        expect(page.locator("#model-sha")).to_have_text(world.sha)
        expect(page.locator("#model-trainer")).to_have_text("u-maker")
        expect(page.locator("#model-approver")).to_have_text("u-checker")
        expect(page.locator("#metrics tbody tr")).to_have_count(4)
        expect(page.locator("#fairness tr[data-group='age_band/18-25']")).to_have_count(1)
        assert_accessible(page)
        assert_fits_the_screen(page)
        screenshot(page, "credit-model-card", variant)
        response = page.goto("/credit/decisions")
        assert response is not None and response.status == 403

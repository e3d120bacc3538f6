"""Every way an end user moves money out meets the fraud screen with the single transfer's
tiers: the batch endpoint (item by item, a linked chain as a whole), FX payments (on the source
amount and currency) and payment links (the API and the pay page).  A real node with the risk
service on; two approved rules make the tiers certain: 77.00 CNY is held, 66.00 CNY refused
(the engine's own velocity rules are kept away: at most five payments a minute an account)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.payments.pain001 import Pain001, PaymentInfo, Tx, build
from tests.payments.test_api import BOB, Api, account, move
from tests.payments.test_stepup_cumulative import daytime_clock
from tests.platform.users import create_staff, identity_of, login_with_token, new_password
from zhijin.identity.rbac import Role
from zhijin.identity.service import RequestSource
from zhijin.identity.store import hash_token
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings

RISK = "/api/v1/risk"
HELD_MINOR = 7_700  # the rule `test_hold` holds exactly this amount
REFUSED_MINOR = 6_600  # the rule `test_refuse` refuses exactly this amount
FUNDS = 50_000  # under the step-up policy's 1,000.00 CNY floor: the policy stays out of it
FX_RATE = "0.1385"


@dataclass
class Customer:
    headers: dict[str, str]
    account_id: str  # their CNY account
    did: str


@dataclass
class World:
    api: Api
    analyst: dict[str, str]

    def post(self, path: str, body: Any, who: dict[str, str]) -> Any:
        return self.api.client.post(path, json=body, headers=who)

    def get(self, path: str, who: dict[str, str]) -> Any:
        return self.api.client.get(path, headers=who)

    def balance(self, account_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/api/v1/accounts/{account_id}").json()
        return found

    def customer(self, kind: str = "customer") -> Customer:
        """A new user with a funded CNY account (a fresh one per test: a refusal makes the
        next payment of its user wait for a step-up)."""
        client = self.api.client
        login, password = f"screen-{secrets.token_hex(4)}", new_password()
        user = identity_of(client).register(
            login=login, password=password, kind="individual", source=_source()
        )
        assert user.did is not None
        account_id = f"sc-{secrets.token_hex(4)}"
        self.api.ok("/api/v1/accounts", account(account_id, user.did, kind=kind))
        self.api.ok("/api/v1/transfers", move(f"{account_id}-dep", "settle-cny", account_id, FUNDS))
        time.sleep(0.01)  # sign in strictly after the deposit's block
        return Customer(login_with_token(client, login, password), account_id, user.did)

    def fresh_code(self, customer: Customer) -> None:
        """The customer's session confirmed with a second factor just now."""
        identity = identity_of(self.api.client)
        token = customer.headers["Authorization"].removeprefix("Bearer ")
        identity.store.mark_session(hash_token(token), mfa_at_ms=identity.clock())

    def cases_of(self, transfer_id: str) -> list[dict[str, Any]]:
        cases = self.get(f"{RISK}/cases?limit=100", self.analyst).json()["cases"]
        return [case for case in cases if case["transfer_id"] == transfer_id]

    def decision_of(self, transfer_id: str) -> dict[str, Any]:
        path = f"{RISK}/decisions?transfer_id={transfer_id}"
        (decision,) = self.get(path, self.analyst).json()["decisions"][:1]
        return decision  # type: ignore[no-any-return]

    def not_moved(self, customer: Customer, transfer_id: str) -> None:
        assert self.get(f"/api/v1/transfers/{transfer_id}", customer.headers).status_code == 404


def _source() -> RequestSource:
    """A client address of its own for each registration (registrations are rate limited per
    address)."""
    return RequestSource(ip=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}")


def _rule(rule_id: str, amount_minor: int, tier: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "expression": f"amount_minor == {amount_minor}",
        "score_bps": 100,
        "tier": tier,
        "reason_zh": f"测试规则：{tier}",
        "reason_en": f"a test rule: {tier}",
        "rationale": "the screened-paths tests make the tier of one amount certain",
        "tests": [{"features": {"amount_minor": amount_minor}, "expect": True}],
    }


def _approve(world: World, analyst2: dict[str, str], body: dict[str, Any]) -> None:
    draft = world.post(f"{RISK}/rules", body, world.analyst)
    assert draft.status_code == 201, draft.text
    decision = {"approve": True, "reason": "tests of the screened paths"}
    path = f"{RISK}/rules/{body['id']}/versions/1/decision"
    assert world.post(path, decision, analyst2).status_code == 200


def _quote(api: Api) -> None:
    api.ok(
        "/api/v1/fx/quotes",
        {
            "id": "sq-1",
            "source_currency": "CNY",
            "target_currency": "USD",
            "rate": FX_RATE,
            "spread_bps": 30,
            "expires_at_ms": api.platform.node.clock() + 3_600_000,
            "source_liquidity_account_id": "fx-cny",
            "target_liquidity_account_id": "fx-usd",
            "spread_account_id": "fee-cny",
        },
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("screened-paths")
    settings = Settings(data=data, block_interval_ms=5, password_hashing="test", risk_screen="on")
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        client.app.state.platform.node.clock = daytime_clock  # type: ignore[attr-defined]
        client.app.state.guard.clock = daytime_clock  # type: ignore[attr-defined]
        identity_of(client).clock = daytime_clock
        api = Api(client, (data / "operator-token").read_text().strip())
        for code in ("CNY", "USD"):
            c = code.lower()
            for body in (
                account(f"settle-{c}", api.member, code, "settlement"),
                account(f"fx-{c}", api.member, code, "fx_liquidity"),
                account(f"fee-{c}", api.member, code, "fee"),
                account(f"bob-{c}", BOB, code),
            ):
                api.ok("/api/v1/accounts", body)
        api.ok("/api/v1/transfers", move("dep-fx-usd", "settle-usd", "fx-usd", 10_000_000, "USD"))
        _quote(api)
        world = World(api, create_staff(client, roles={Role.RISK_ANALYST}))
        analyst2 = create_staff(client, roles={Role.RISK_ANALYST})
        _approve(world, analyst2, _rule("test_hold", HELD_MINOR, "hold"))
        _approve(world, analyst2, _rule("test_refuse", REFUSED_MINOR, "refuse"))
        yield world


# -- the batch endpoint ---------------------------------------------------------------------------


def _item(transfer_id: str, debit: str, amount: int, *, linked: bool = False) -> dict[str, Any]:
    body = move(transfer_id, debit, "bob-cny", amount)
    if linked:
        body["flags"] = ["linked"]
    return body


def test_a_batch_is_screened_item_by_item_and_a_chain_as_a_whole(world: World) -> None:
    payer = world.customer()
    a = payer.account_id
    items = [
        _item(f"{a}-ok", a, 1_234),
        _item(f"{a}-held", a, HELD_MINOR),
        _item(f"{a}-refused", a, REFUSED_MINOR),
        _item(f"{a}-chain-1", a, 1_111, linked=True),
        _item(f"{a}-chain-2", a, REFUSED_MINOR),
    ]
    answer = world.post("/api/v1/transfers/batch", {"transfers": items}, payer.headers)
    assert answer.status_code == 200, answer.text
    results = {r["id"]: r for r in answer.json()["results"]}
    assert results[f"{a}-ok"]["result"] == "ok" and results[f"{a}-ok"]["risk"]["tier"] == "allow"
    assert results[f"{a}-ok"]["held"] is False
    held = results[f"{a}-held"]
    assert held["result"] == "ok" and held["held"] is True and held["risk"]["tier"] == "hold"
    assert "审核中" in held["risk"]["notice"]["zh_CN"]
    refused = results[f"{a}-refused"]
    assert refused["result"] == "payment_refused_by_risk"
    assert "测试规则" in refused["detail"]  # the rule's own reason, zh-CN by default
    # The refused item's chain: nothing of it moved, its other item says why.
    assert results[f"{a}-chain-2"]["result"] == "payment_refused_by_risk"
    assert results[f"{a}-chain-1"]["result"] == "linked_event_failed"
    assert answer.json()["ok"] == 2 and answer.json()["failed"] == 3
    for refused_id in (f"{a}-refused", f"{a}-chain-1", f"{a}-chain-2"):
        world.not_moved(payer, refused_id)
        assert world.decision_of(refused_id)["outcome"] == "refused"
    # Allowed: posted.  Held: a pending transfer with a case.
    posted = world.get(f"/api/v1/transfers/{a}-ok", payer.headers).json()
    assert "pending" not in posted["flags"]
    pending = world.get(f"/api/v1/transfers/{a}-held", payer.headers).json()
    assert "pending" in pending["flags"] and pending["hold"]["hold_status"] == "pending"
    assert len(world.cases_of(f"{a}-held")) == 1
    balance = world.balance(a)
    assert balance["balance_posted"] == FUNDS - 1_234 and balance["debits_pending"] == HELD_MINOR
    # A refusal: the next payment needs a fresh second factor, nothing moves meanwhile.
    again = world.post(
        "/api/v1/transfers/batch", {"transfers": [_item(f"{a}-after", a, 1_000)]}, payer.headers
    )
    assert again.status_code == 401 and again.json()["code"] == "step_up_required", again.text
    world.not_moved(payer, f"{a}-after")


def test_a_held_item_holds_its_whole_linked_chain(world: World) -> None:
    payer = world.customer()
    a = payer.account_id
    items = [
        _item(f"{a}-c1", a, 2_222, linked=True),
        _item(f"{a}-c2", a, HELD_MINOR),
        _item(f"{a}-alone", a, 3_333),
    ]
    answer = world.post("/api/v1/transfers/batch", {"transfers": items}, payer.headers)
    assert answer.status_code == 200, answer.text
    results = {r["id"]: r for r in answer.json()["results"]}
    assert all(r["result"] == "ok" for r in results.values())
    assert results[f"{a}-c1"]["held"] and results[f"{a}-c2"]["held"]
    assert results[f"{a}-alone"]["held"] is False
    for held_id in (f"{a}-c1", f"{a}-c2"):
        record = world.get(f"/api/v1/transfers/{held_id}", payer.headers).json()
        assert record["hold"]["hold_status"] == "pending"
        assert len(world.cases_of(held_id)) == 1  # each held item has its case
    balance = world.balance(a)
    assert balance["balance_posted"] == FUNDS - 3_333
    assert balance["debits_pending"] == 2_222 + HELD_MINOR
    # A retry of the batch finds the same holds (the stored verdicts), nothing twice.
    retry = world.post("/api/v1/transfers/batch", {"transfers": items}, payer.headers)
    assert retry.status_code == 200, retry.text
    assert all(r["exists"] for r in retry.json()["results"])
    assert world.balance(a)["debits_pending"] == 2_222 + HELD_MINOR
    assert world.balance(a)["balance_posted"] == FUNDS - 3_333


def test_a_batch_the_screen_refuses_entirely_moves_nothing(world: World) -> None:
    payer = world.customer()
    a = payer.account_id
    items = [_item(f"{a}-r1", a, REFUSED_MINOR)]
    answer = world.post("/api/v1/transfers/batch", {"transfers": items}, payer.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["height"] is None and body["ok"] == 0
    assert body["results"][0]["result"] == "payment_refused_by_risk"
    english = world.api.client.post(
        "/api/v1/transfers/batch",
        json={"transfers": [_item(f"{a}-r2", a, 1_000)]},
        headers={**payer.headers, "Accept-Language": "en"},
    )
    assert english.status_code == 401  # the refusal asks for a step-up first
    world.not_moved(payer, f"{a}-r1")
    assert world.balance(a)["balance_posted"] == FUNDS


def test_the_operators_batch_is_not_screened(world: World) -> None:
    payer = world.customer()
    items = [move("op-batch-1", payer.account_id, "bob-cny", REFUSED_MINOR)]
    answer = world.api.post("/api/v1/transfers/batch", {"transfers": items})
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["result"] == "ok" and "risk" not in result


def test_an_end_user_cannot_upload_a_pain001_file(world: World) -> None:
    """Bulk files are the member's (operator and staff, who book them for their customers
    and answer for them): not a customer payment, not screened.  A customer is refused."""
    payer = world.customer()
    tx = Tx("E2E-1", "66.00", "CNY", creditor_iban=None, creditor_other_id="bob-cny")
    info = PaymentInfo("PMT-1", [tx], debtor_iban=None, debtor_other_id=payer.account_id)
    xml = build(Pain001(message_id="SCREEN-1", payments=[info]))
    headers = {**payer.headers, "Content-Type": "application/xml"}
    answer = world.api.client.post(
        "/api/v1/payments/iso20022/pain001", content=xml, headers=headers
    )
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    assert world.balance(payer.account_id)["balance_posted"] == FUNDS


# -- FX payments ----------------------------------------------------------------------------------


def _fx(payment_id: str, debit: str, **amount: int) -> dict[str, Any]:
    return {
        "id": payment_id,
        "quote_id": "sq-1",
        "debit_account_id": debit,
        "credit_account_id": "bob-usd",
        **{f"{side}_amount": value for side, value in amount.items()},
    }


def test_fx_refused_by_the_screen_moves_nothing(world: World) -> None:
    payer = world.customer()
    used = world.api.get("/api/v1/fx/quotes/sq-1").json()["used_target_amount"]
    refused = world.post(
        "/api/v1/fx/payments", _fx("fx-r", payer.account_id, source=REFUSED_MINOR), payer.headers
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "payment_refused_by_risk"
    world.not_moved(payer, "fx-r")
    assert world.balance(payer.account_id)["balance_posted"] == FUNDS
    assert world.api.get("/api/v1/fx/quotes/sq-1").json()["used_target_amount"] == used
    after = world.post(
        "/api/v1/fx/payments", _fx("fx-r2", payer.account_id, source=1_000), payer.headers
    )
    assert after.status_code == 401 and after.json()["code"] == "step_up_required"


def test_fx_held_by_the_screen_is_not_made_and_says_why(world: World) -> None:
    payer = world.customer()
    held = world.post(
        "/api/v1/fx/payments", _fx("fx-h", payer.account_id, source=HELD_MINOR), payer.headers
    )
    assert held.status_code == 403, held.text
    problem = held.json()
    assert problem["code"] == "payment_needs_review" and "资金未动" in problem["detail"]
    world.not_moved(payer, "fx-h")
    assert world.balance(payer.account_id)["balance_posted"] == FUNDS
    assert world.cases_of("fx-h") == []  # no hold to review: nothing waits on a case
    decision = world.decision_of("fx-h")
    assert decision["tier"] == "hold" and decision["outcome"] == "refused"
    # A hold is not a refusal of the customer: no step-up is owed for it.
    allowed = world.post(
        "/api/v1/fx/payments", _fx("fx-h2", payer.account_id, source=1_000), payer.headers
    )
    assert allowed.status_code == 200, allowed.text
    mine = world.get(f"{RISK}/my/decisions", payer.headers).json()["decisions"]
    assert {row["transfer_id"]: row["status"] for row in mine}["fx-h"] == "已拒绝"


def test_fx_is_screened_on_its_source_amount_and_currency(world: World) -> None:
    payer = world.customer()
    # A fixed target amount is put to the step-up policy unsized (it fails closed): confirm.
    world.fresh_code(payer)
    paid = world.post(
        "/api/v1/fx/payments", _fx("fx-t", payer.account_id, target=500), payer.headers
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["risk"]["tier"] == "allow"
    decision = world.decision_of("fx-t")
    assert decision["currency"] == "CNY" and decision["outcome"] == "submitted"
    assert decision["amount_minor"] == paid.json()["source_amount"]
    assert world.balance(payer.account_id)["balance_posted"] == FUNDS - decision["amount_minor"]


# -- payment links --------------------------------------------------------------------------------


def _link(world: World, amount_minor: int) -> str:
    merchant = world.customer(kind="merchant")
    created = world.post(
        "/api/v1/payment-requests",
        {"account_id": merchant.account_id, "amount": amount_minor, "single_use": False},
        merchant.headers,
    )
    assert created.status_code == 200, created.text
    return str(created.json()["link"]).rstrip("/").rsplit("/", 1)[-1]


def test_a_payment_link_the_screen_refuses_moves_nothing(world: World) -> None:
    payer, token = world.customer(), _link(world, REFUSED_MINOR)
    body = {"debit_account_id": payer.account_id, "id": "link-r"}
    refused = world.post(f"/api/v1/pay/{token}", body, payer.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "payment_refused_by_risk"
    world.not_moved(payer, "link-r")
    assert world.balance(payer.account_id)["balance_posted"] == FUNDS


def test_a_payment_link_the_screen_holds_is_a_pending_transfer_with_a_case(world: World) -> None:
    payer, token = world.customer(), _link(world, HELD_MINOR)
    body = {"debit_account_id": payer.account_id, "id": "link-h"}
    held = world.post(f"/api/v1/pay/{token}", body, payer.headers)
    assert held.status_code == 200, held.text
    assert held.json()["risk"]["tier"] == "hold"
    record = world.get("/api/v1/transfers/link-h", payer.headers).json()
    assert record["hold"]["hold_status"] == "pending"
    assert len(world.cases_of("link-h")) == 1


# -- the pay page ---------------------------------------------------------------------------------


def _signed_in_page(world: World) -> tuple[TestClient, str]:
    """A browser session of a new customer (its own client: the cookie jar is per client),
    and their funded account."""
    client = world.api.client
    login, password = f"screen-web-{secrets.token_hex(4)}", new_password()
    user = identity_of(client).register(
        login=login, password=password, kind="individual", source=_source()
    )
    assert user.did is not None
    account_id = f"sw-{secrets.token_hex(4)}"
    world.api.ok("/api/v1/accounts", account(account_id, user.did))
    world.api.ok("/api/v1/transfers", move(f"{account_id}-dep", "settle-cny", account_id, FUNDS))
    time.sleep(0.01)
    browser = TestClient(client.app, base_url="https://testserver")
    signed = browser.post(
        "/signin", data={"login": login, "password": password}, headers={"HX-Request": "true"}
    )
    assert signed.status_code == 204, signed.text
    return browser, account_id


def _page_post(browser: TestClient, data: dict[str, str], path: str = "/pay") -> Any:
    csrf = next(v for k, v in browser.cookies.items() if k.endswith("zhijin_csrf"))
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true", "Accept-Language": "zh-CN"}
    return browser.post(path, data=data, headers=headers)


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html))


def test_the_pay_page_tells_a_held_payment_is_under_review(world: World) -> None:
    browser, account_id = _signed_in_page(world)
    transfer_id = f"web-{secrets.token_hex(6)}"
    form = {"id": transfer_id, "debit": account_id, "credit": "bob-cny", "amount": "77.00"}
    review = _page_post(browser, form)
    assert review.status_code == 200, review.text
    page = _page_post(browser, _hidden(review.text))
    assert page.status_code == 200, page.text
    assert 'id="held"' in page.text and "审核中" in page.text, page.text
    assert 'id="paid"' not in page.text
    record = world.api.get(f"/api/v1/transfers/{transfer_id}").json()
    assert record["hold"]["hold_status"] == "pending", (record, _hidden(page.text))
    assert len(world.cases_of(transfer_id)) == 1


def test_the_pay_page_says_a_refusal_and_moves_nothing(world: World) -> None:
    browser, account_id = _signed_in_page(world)
    transfer_id = f"web-{secrets.token_hex(6)}"
    form = {"id": transfer_id, "debit": account_id, "credit": "bob-cny", "amount": "66.00"}
    page = _page_post(browser, _hidden(_page_post(browser, form).text))
    assert page.status_code == 200, page.text
    assert "风险控制" in page.text and 'id="paid"' not in page.text, page.text
    assert world.api.get(f"/api/v1/transfers/{transfer_id}").status_code == 404
    assert world.balance(account_id)["balance_posted"] == FUNDS


@pytest.mark.parametrize(
    ("amount", "said"), [("77.00", "无法冻结等待审核"), ("66.00", "因风险控制被拒绝")]
)
def test_the_fx_page_says_what_the_screen_decided_and_moves_nothing(
    world: World, amount: str, said: str
) -> None:
    browser, account_id = _signed_in_page(world)
    payment_id = f"web-{secrets.token_hex(6)}"
    form = {
        "id": payment_id,
        "debit": account_id,
        "target": "USD",
        "side": "source",
        "amount": amount,
        "credit": "bob-usd",
    }
    review = _page_post(browser, form, "/fx")
    assert review.status_code == 200 and 'name="quote"' in review.text, review.text
    page = _page_post(browser, _hidden(review.text), "/fx")
    assert page.status_code == 200, page.text
    assert said in page.text and 'id="fx-paid"' not in page.text, page.text
    assert world.api.get(f"/api/v1/transfers/{payment_id}").status_code == 404
    assert world.balance(account_id)["balance_posted"] == FUNDS


# -- a hold under review ------------------------------------------------------------------------


def test_no_customer_posts_or_voids_a_hold_under_review(world: World) -> None:
    payer = world.customer()
    a = payer.account_id
    held = world.post("/api/v1/transfers", _item(f"{a}-rev", a, HELD_MINOR), payer.headers)
    assert held.status_code == 200 and held.json()["risk"]["tier"] == "hold", held.text
    for action in ("post", "void"):
        answer = world.post(
            f"/api/v1/transfers/{a}-rev/{action}", {"id": f"{a}-rev-{action}"}, payer.headers
        )
        assert answer.status_code == 403, answer.text
        assert (
            answer.json()["code"] == "payment_under_review" and "审核中" in answer.json()["detail"]
        )
    record = world.get(f"/api/v1/transfers/{a}-rev", payer.headers).json()
    assert record["hold"]["hold_status"] == "pending"
    assert world.balance(a)["balance_posted"] == FUNDS
    # The review decides: cleared, the hold is posted.
    (case,) = world.cases_of(f"{a}-rev")
    cleared = world.post(
        f"{RISK}/cases/{case['case_id']}/resolution",
        {"verdict": "cleared", "reason": "the customer confirmed by phone"},
        world.analyst,
    )
    assert cleared.status_code == 200, cleared.text
    assert world.balance(a)["balance_posted"] == FUNDS - HELD_MINOR

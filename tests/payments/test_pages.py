"""Payments' pages through the app (no browser): the review step shows the payee's masked name
before anything moves, pay by phone number, the error paths (a bad amount, an unknown payee,
another user's account, a refund over its cap, a role that may not see the merchant view), the
step-up prompt said from its cause and the authenticator set up in place ending in a payment,
a payment link's form, and the statement's names, search and downloads."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.payments.test_api import Api, _settings, account, move
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.payments.web.paying import payee_ways

PASSWORD = "correct horse battery staple"
RESIDENT_ID = "11010519491231002X"
FUNDS = 900_000  # 9,000.00 CNY


@dataclass
class Person:
    client: TestClient
    user_id: str
    did: str

    def csrf(self) -> str:
        return next(v for k, v in self.client.cookies.items() if k.endswith("zhijin_csrf"))

    def post(self, path: str, data: dict[str, str], lang: str = "zh-CN") -> Any:
        headers = {"X-CSRF-Token": self.csrf(), "HX-Request": "true", "Accept-Language": lang}
        return self.client.post(path, data=data, headers=headers)

    def get(self, path: str, lang: str = "zh-CN", **kwargs: Any) -> Any:
        return self.client.get(path, headers={"Accept-Language": lang}, **kwargs)


@dataclass
class World:
    api: Api
    alice: Person  # 张三丰, account a-1 (funded); mobile 13800138000 names a-1
    bob: Person  # Li Si, account b-1
    shop: Person  # SME owner 王小明 with 杭州小明科技有限公司, merchant account s-1

    def balance(self, account_id: str) -> int:
        answer = self.api.get(f"/api/v1/accounts/{account_id}")
        assert answer.status_code == 200, answer.text
        return int(answer.json()["balance_posted"])


def _person(api: Api, name: str, mobile: str, kind: str = "individual") -> Person:
    app = api.client.app
    platform = api.platform
    login = f"pages-{secrets.token_hex(4)}@example.com"
    source = RequestSource(ip=f"10.7.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    user = platform.identity.register(login=login, password=PASSWORD, kind=kind, source=source)
    role = Role.SME_OWNER if kind == "sme_owner" else Role.CUSTOMER
    platform.personal.save_person(
        principal=Principal(user_id=user.id, roles=frozenset({role})),
        name=name,
        resident_id=RESIDENT_ID,
        mobile=mobile,
    )
    client = TestClient(app, base_url="https://testserver")
    signed = client.post(
        "/signin", data={"login": login, "password": PASSWORD}, headers={"HX-Request": "true"}
    )
    assert signed.status_code == 204, signed.text
    assert user.did is not None
    return Person(client, user.id, user.did)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("pages")
    settings = _settings(data).model_copy(update={"audit_anchor_interval_s": 0})
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, (data / "operator-token").read_text().strip())
        alice = _person(api, "张三丰", "13800138000")
        bob = _person(api, "Li Si", "13900139000")
        shop = _person(api, "王小明", "13700137000", kind="sme_owner")
        api.platform.personal.save_business(
            principal=Principal(user_id=shop.user_id, roles=frozenset({Role.SME_OWNER})),
            company_name="杭州小明科技有限公司",
            uscc="91330100MA2CF1234X",
        )
        api.ok("/api/v1/accounts", account("settle-cny", api.member, "CNY", "settlement"))
        for body in (
            account("a-1", alice.did),
            account("b-1", bob.did),
            account("s-1", shop.did, kind="merchant"),
        ):
            api.ok("/api/v1/accounts", body)
        for payee in ("a-1", "b-1"):
            api.ok("/api/v1/transfers", move(f"fund-{payee}", "settle-cny", payee, FUNDS))
        mobile = alice.client.put(
            "/api/v1/accounts/a-1/mobile",
            json={"mobile": "13800138000"},
            headers={"X-CSRF-Token": alice.csrf()},
        )
        assert mobile.status_code == 200, mobile.text
        yield World(api, alice, bob, shop)


def _form(debit: str, credit: str, amount: str, **extra: str) -> dict[str, str]:
    return {
        "id": "web-" + secrets.token_hex(8),
        "debit": debit,
        "credit": credit,
        "amount": amount,
        **extra,
    }


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', html))


# -- the payee field ------------------------------------------------------------------------------


def test_the_one_payee_field_tells_a_phone_number_and_an_iban_from_an_account_id() -> None:
    assert payee_ways("138 0013 8000") == {"mobile": "13800138000"}
    assert payee_ways("+8613800138000") == {"mobile": "+8613800138000"}
    assert payee_ways("DE89 3704 0044 0532 0130 00") == {"iban": "DE89 3704 0044 0532 0130 00"}
    assert payee_ways("cust-1") == {"account_id": "cust-1"}
    assert payee_ways("12345") == {"account_id": "12345"}  # too short for a phone


# -- pay: review, then pay ------------------------------------------------------------------------


def test_the_review_shows_the_masked_name_and_nothing_moves_until_confirmed(world: World) -> None:
    before_a, before_b = world.balance("a-1"), world.balance("b-1")
    review = world.bob.post("/pay", _form("b-1", "a-1", "12.34", reference="lunch"))
    assert review.status_code == 200
    assert 'id="confirm-payee"' in review.text and "张*丰" in review.text
    assert "张三丰" not in review.text  # never the full name
    assert "¥12.34" in review.text
    assert world.balance("a-1") == before_a  # the review moved nothing
    fields = _hidden(review.text)
    assert fields["confirmed"] == "1" and fields["credit"] == "a-1"
    paid = world.bob.post("/pay", fields)
    assert 'id="paid"' in paid.text and "¥12.34" in paid.text
    assert world.balance("a-1") == before_a + 1_234
    assert world.balance("b-1") == before_b - 1_234
    again = world.bob.post("/pay", fields)  # a retry of the same payment pays once
    assert 'id="paid"' in again.text
    assert world.balance("b-1") == before_b - 1_234


def test_a_phone_number_pays_the_account_it_names(world: World) -> None:
    before = world.balance("a-1")
    check = world.bob.post("/pay/payee", {"credit": "138 0013 8000"}, lang="en")
    assert 'id="payee-found"' in check.text and "张*丰" in check.text
    review = world.bob.post("/pay", _form("b-1", "138-0013-8000", "1.00"), lang="en")
    fields = _hidden(review.text)
    assert fields["credit"] == "a-1"
    assert "CN¥1.00" in review.text
    world.bob.post("/pay", fields, lang="en")
    assert world.balance("a-1") == before + 100


@pytest.mark.parametrize(
    ("amount", "zh", "en"),
    [
        ("1.001", "小数", "decimal"),
        ("abc", "金额", "amount"),
        ("0", "大于", "more than zero"),
        ("99999999999999999999", "金额", "amount"),
        ("1,000", "金额", "amount"),
    ],
)
def test_a_bad_amount_is_refused_in_the_form(world: World, amount: str, zh: str, en: str) -> None:
    before = world.balance("b-1")
    for lang, word in (("zh-CN", zh), ("en", en)):
        answer = world.bob.post("/pay", _form("b-1", "a-1", amount), lang=lang)
        assert answer.status_code == 200
        error = re.search(r'id="pay-error"[^>]*>([^<]+)<', answer.text)
        assert error is not None, answer.text
        assert word.lower() in error.group(1).lower(), error.group(1)
    assert world.balance("b-1") == before


def test_more_than_the_account_holds_is_refused_by_the_ledger_in_words(world: World) -> None:
    poor = _person(world.api, "钱少", "13500135000")
    world.api.ok("/api/v1/accounts", account("p-1", poor.did))
    world.api.ok("/api/v1/transfers", move("fund-p-1", "settle-cny", "p-1", 500))
    review = poor.post("/pay", _form("p-1", "a-1", "10.00"), lang="en")
    refused = poor.post("/pay", _hidden(review.text), lang="en")
    error = re.search(r'id="pay-error"[^>]*>([^<]+)<', refused.text)
    assert error is not None, refused.text
    assert "exceeds_credits" not in error.group(1) and "1000" not in error.group(1)
    assert world.balance("p-1") == 500


def test_an_unknown_payee_is_refused_before_anything_moves(world: World) -> None:
    answer = world.bob.post("/pay", _form("b-1", "no-such-account", "5.00"))
    assert 'id="pay-error"' in answer.text and "收款人" in answer.text
    check = world.bob.post("/pay/payee", {"credit": "no-such-account"}, lang="en")
    assert 'id="payee-missing"' in check.text
    platform = world.bob.post("/pay", _form("b-1", "settle-cny", "5.00"))  # not a payee
    assert 'id="pay-error"' in platform.text


def test_paying_from_another_users_account_is_refused(world: World) -> None:
    before = world.balance("a-1")
    review = world.bob.post("/pay", _form("a-1", "b-1", "5.00"))
    assert 'id="pay-error"' in review.text
    # Even past the review (a forged confirmed form): not one of hers, nothing moves.
    forged = world.bob.post("/pay", {**_form("a-1", "b-1", "5.00"), "confirmed": "1"})
    assert 'id="pay-error"' in forged.text and 'id="paid"' not in forged.text
    assert world.balance("a-1") == before


def test_another_users_statement_is_refused(world: World) -> None:
    assert world.bob.get("/money/accounts/a-1").status_code == 403
    assert world.bob.get("/api/v1/accounts/a-1/statement.csv").status_code == 403


# -- step-up: said from its cause, enrolment in place ----------------------------------------------


def test_a_new_payee_over_1000_yuan_is_explained_and_enrolment_in_place_pays(
    world: World,
) -> None:
    carol = _person(world.api, "赵六", "13600136000")
    world.api.ok("/api/v1/accounts", account("c-1", carol.did))
    world.api.ok("/api/v1/transfers", move("fund-c-1", "settle-cny", "c-1", FUNDS))
    review = carol.post("/pay", _form("c-1", "s-1", "1500.00"))
    assert "杭州****有限公司" in review.text  # a merchant account: the company's masked name
    prompt = carol.post("/pay", _hidden(review.text))
    assert 'id="stepup-causes"' in prompt.text
    assert "新收款人且超过 ¥1,000.00" in prompt.text
    assert 'id="enrol-start"' in prompt.text  # no authenticator: offered in place
    assert world.balance("c-1") == FUNDS
    english = carol.post("/pay", _hidden(review.text), lang="en")
    assert "new payee over CN¥1,000.00" in english.text
    start = carol.post("/pay/enrol", _hidden(prompt.text))
    assert 'id="totp-qr"' in start.text and 'src="data:image/svg+xml' in start.text
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', start.text)
    assert secret is not None
    fields = _hidden(start.text)
    wrong = carol.post("/pay/enrol/confirm", {**fields, "code": "000000"})
    assert wrong.headers["HX-Retarget"] == "#enrol-error" and 'role="alert"' in wrong.text
    assert world.balance("c-1") == FUNDS
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
    done = carol.post("/pay/enrol/confirm", {**fields, "code": code})
    assert 'id="paid"' in done.text and "¥1,500.00" in done.text
    assert 'id="recovery-codes"' in done.text and 'hx-swap-oob="true"' in done.text
    assert world.balance("c-1") == FUNDS - 150_000


# -- a payment link -----------------------------------------------------------------------------


def test_a_payment_link_fills_the_form_and_is_paid_once(world: World) -> None:
    made = world.shop.post(
        "/merchant/requests", {"account_id": "s-1", "amount": "8.80", "memo": "奶茶"}
    )
    assert 'id="collection-qr"' in made.text and 'src="data:image/svg+xml;base64,' in made.text
    link = re.search(
        r'id="collection-link" href="https://testserver(/pay/[A-Za-z0-9_-]{32})"', made.text
    )
    assert link is not None, made.text
    page = world.bob.get(link.group(1))
    assert page.status_code == 200
    assert 'id="link-amount"' in page.text and "¥8.80" in page.text
    assert "杭州****有限公司" in page.text and "奶茶" in page.text
    before = world.balance("s-1")
    form = _hidden(page.text)
    form.update({"debit": "b-1", "amount": "999.00"})  # a fixed amount cannot be changed
    review = world.bob.post("/pay", form)
    assert "¥8.80" in review.text and "¥999.00" not in review.text
    paid = world.bob.post("/pay", _hidden(review.text))
    assert 'id="paid"' in paid.text
    assert world.balance("s-1") == before + 880
    reopened = world.bob.get(link.group(1))
    assert 'id="link-closed"' in reopened.text  # single use: paid
    assert world.bob.get("/pay/" + "x" * 32).status_code == 404


# -- the merchant view --------------------------------------------------------------------------


def test_the_merchant_sees_payers_and_refunds_never_exceed_the_payment(world: World) -> None:
    world.api.ok("/api/v1/transfers", move("buy-1", "b-1", "s-1", 5_000))
    view = world.shop.get("/merchant")
    assert view.status_code == 200
    assert 'id="incoming"' in view.text and "L* S*" in view.text  # Li Si, masked
    assert 'id="daily"' in view.text and 'id="settlement-download"' in view.text
    before = world.balance("b-1")
    over = world.shop.post(
        "/merchant/refunds", {"id": "rf-over-1", "original": "buy-1", "amount": "50.01"}
    )
    assert "refund-error" in over.text
    assert world.balance("b-1") == before
    part = world.shop.post(
        "/merchant/refunds", {"id": "rf-part-1", "original": "buy-1", "amount": "20.00"}
    )
    assert "refund-done" in part.text and "¥20.00" in part.text
    rest = world.shop.post(
        "/merchant/refunds", {"id": "rf-part-2", "original": "buy-1", "amount": "30.01"}
    )
    assert "refund-error" in rest.text  # 30.00 remain
    full = world.shop.post("/merchant/refunds", {"id": "rf-rest", "original": "buy-1"})
    assert "refund-done" in full.text and "¥30.00" in full.text
    assert world.balance("b-1") == before + 5_000
    report = world.shop.get("/api/v1/merchant/settlement.csv?account_id=s-1&lang=en")
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Date" and any(row[2] == "s-1" for row in rows[1:])


def test_the_merchant_view_and_refunds_are_the_owners_only(world: World) -> None:
    assert world.bob.get("/merchant").status_code == 403  # a customer, not an SME owner
    world.api.ok("/api/v1/transfers", move("buy-2", "b-1", "s-1", 1_000))
    stolen = world.bob.post("/merchant/refunds", {"id": "rf-bob", "original": "buy-2"})
    assert stolen.status_code == 403
    assert world.shop.get("/merchant?account=b-1").status_code == 404
    unknown = world.shop.post("/merchant/refunds", {"id": "rf-x", "original": "no-such"})
    assert "refund-error" in unknown.text


# -- the statement ------------------------------------------------------------------------------


def test_the_statement_names_counterparties_searches_and_downloads(world: World) -> None:
    world.api.ok("/api/v1/transfers", move("gift-1", "b-1", "a-1", 777, reference="red packet"))
    page = world.alice.get("/money/accounts/a-1", lang="en")
    assert page.status_code == 200
    assert "L* S*" in page.text and "red packet" in page.text
    assert "CN¥7.77" in page.text
    found = world.alice.get("/money/accounts/a-1", params={"q": "red packet"})
    assert "red packet" in found.text and "fund-a-1" not in found.text
    none = world.alice.get("/money/accounts/a-1", params={"q": "nothing like this"})
    assert 'id="statement-empty"' in none.text
    bad = world.alice.get("/money/accounts/a-1", params={"from_date": "2026-13-01"}, lang="en")
    assert bad.status_code == 200 and 'id="statement-error"' in bad.text
    backwards = world.alice.get(
        "/money/accounts/a-1", params={"from_date": "2026-12-03", "to_date": "2026-01-01"}
    )
    assert 'id="statement-error"' in backwards.text
    link = re.search(r'id="download-csv" href="([^"]+)"', found.text)
    assert link is not None
    download = world.alice.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][0] == "时间" and len(rows) == 2 and rows[1][8] == "red packet"
    camt = re.search(r'id="download-camt053" href="([^"]+)"', page.text)
    assert camt is not None
    xml = world.alice.get(camt.group(1).replace("&amp;", "&"))
    assert xml.status_code == 200 and b"camt.053.001.08" in xml.content

"""Payments for people over a real node: confirmation of payee (by account, IBAN, phone; rate
limited, audited, no name for a frozen account), recent payees, statements with masked names,
search, local days, CSV and camt.053, payment requests (links, QR, single-use raced), the
merchant's incoming payments, daily totals, refunds (never above the original, raced) and the
settlement report, and the step-up answer's structured reasons."""

from __future__ import annotations

import contextlib
import csv
import io
import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from tests.conftest import pg_base_url
from tests.payments.test_api import Api, _settings, account, move
from tests.platform.users import identity_of, me, register_and_login
from zhijin.identity.rbac import Principal, Role
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.payments.tables import payment_requests_table, refund_totals_table, refunds_table
from zhijin.platform.scratch import scratch_schema

RESIDENT_ID = "11010519491231002X"
FUNDS = 900_000  # 9,000.00 CNY each: every payment below stays under the step-up floor
IBAN = "DE89370400440532013000"


@dataclass
class User:
    headers: dict[str, str]
    user_id: str
    did: str


@dataclass
class World:
    api: Api
    alice: User  # 张三丰, account a-1
    bob: User  # Li Si, accounts b-1 and b-frozen
    shop: User  # 王小明 with 杭州小明科技有限公司, merchant account s-1

    @property
    def client(self) -> TestClient:
        return self.api.client

    def get(self, user: User | None, path: str, **kwargs: Any) -> Any:
        headers = {} if user is None else user.headers
        return self.client.get(path, headers=headers, **kwargs)

    def post(self, user: User, path: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=user.headers)

    def put(self, user: User, path: str, body: Any) -> Any:
        return self.client.put(path, json=body, headers=user.headers)


def _user(client: TestClient, name: str, mobile: str, kind: str = "individual") -> User:
    headers = register_and_login(client, kind=kind)
    person = {"name": name, "resident_id": RESIDENT_ID, "mobile": mobile}
    saved = client.put("/api/v1/identity/personal-data", json=person, headers=headers)
    assert saved.status_code == 204, saved.text
    who = me(client, headers)
    return User(headers, who["user_id"], who["did"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One node per engine for the whole module (the queries group, order and lock)."""
    with contextlib.ExitStack() as stack:
        url = None
        if request.param == "postgresql":
            url = stack.enter_context(scratch_schema(pg_base_url(), prefix="zt"))
        yield from _world(tmp_path_factory.mktemp("people"), url)


def _world(data: Path, url: str | None) -> Iterator[World]:
    settings = _settings(data)
    if url is not None:
        settings = settings.model_copy(update={"database_url": url, "platform_database_url": url})
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, (data / "operator-token").read_text().strip())
        alice = _user(client, "张三丰", "13800138000")
        bob = _user(client, "Li Si", "13900139000")
        shop = _user(client, "王小明", "13700137000", kind="sme_owner")
        platform = api.platform
        platform.personal.save_business(
            principal=Principal(user_id=shop.user_id, roles=frozenset({Role.SME_OWNER})),
            company_name="杭州小明科技有限公司",
            uscc="91330100MA2CF1234X",
        )
        api.ok("/api/v1/accounts", account("settle-cny", api.member, "CNY", "settlement"))
        for body in (
            account("a-1", alice.did),
            account("b-1", bob.did),
            account("b-frozen", bob.did),
            account("s-1", shop.did, kind="merchant"),
        ):
            api.ok("/api/v1/accounts", body)
        for payee in ("a-1", "b-1"):
            api.ok("/api/v1/transfers", move(f"fund-{payee}", "settle-cny", payee, FUNDS))
        api.ok("/api/v1/accounts/b-frozen/status", {"status": "frozen"})
        yield World(api, alice, bob, shop)


def _confirm(world: World, user: User, **body: Any) -> Any:
    return world.post(user, "/api/v1/payees/confirm", body)


def _pay(world: World, user: User, transfer_id: str, debit: str, credit: str, amount: int) -> Any:
    return world.post(user, "/api/v1/transfers", move(transfer_id, debit, credit, amount))


def _audit_actions(world: World, action: str) -> list[Any]:
    entries = identity_of(world.client).audit.entries(after_seq=0, limit=1000)
    return [entry for entry in entries if entry.action == action]


# -- confirmation of payee -------------------------------------------------------------------------


def test_confirmation_of_payee_shows_the_masked_name_and_compares_the_expected_one(
    world: World,
) -> None:
    answer = _confirm(world, world.bob, account_id="a-1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "张*丰" and body["name_kind"] == "person"
    assert body["account_id"] == "a-1" and body["by"] == "account_id" and body["match"] is None
    assert "张三丰" not in answer.text
    for expected, match in (("张三丰", "match"), ("张三峰", "close_match"), ("李四", "no_match")):
        compared = _confirm(world, world.bob, account_id="a-1", expected_name=expected)
        assert compared.status_code == 200, compared.text
        assert compared.json()["match"] == match, expected
    latin = _confirm(world, world.alice, account_id="b-1", expected_name="Li  Sii")
    assert latin.json()["name"] == "L* S*" and latin.json()["match"] == "close_match"
    merchant = _confirm(world, world.alice, account_id="s-1").json()
    assert merchant["name"] == "杭州****有限公司" and merchant["name_kind"] == "business"
    audited = _audit_actions(world, "payments.payee.confirm")
    assert audited and all("张三丰" not in str(entry.details) for entry in audited)


def test_a_frozen_unknown_or_platform_account_gets_no_name(world: World) -> None:
    frozen = _confirm(world, world.alice, account_id="b-frozen")
    assert frozen.status_code == 422 and frozen.json()["code"] == "payee_unavailable"
    assert "name" not in frozen.json() and "L*" not in frozen.text
    for missing in ("no-such-account", "settle-cny"):
        refused = _confirm(world, world.alice, account_id=missing)
        assert refused.status_code == 404 and refused.json()["code"] == "payee_not_found"
    outcomes = {e.outcome for e in _audit_actions(world, "payments.payee.confirm")}
    assert {"payee_unavailable", "payee_not_found"} <= outcomes


def test_the_payee_is_named_in_exactly_one_valid_way(world: World) -> None:
    both = _confirm(world, world.alice, account_id="b-1", mobile="13900139000")
    assert both.status_code == 422 and both.json()["code"] == "invalid_request"
    assert _confirm(world, world.alice).status_code == 422
    wrong_type = _confirm(world, world.alice, account_id=12)
    assert wrong_type.status_code == 422
    bad_iban = _confirm(world, world.alice, iban="DE00370400440532013000")
    assert bad_iban.status_code == 422 and bad_iban.json()["code"] == "iban_invalid"
    huge = _confirm(world, world.alice, account_id="b-1", expected_name="x" * 201)
    assert huge.status_code == 422


def test_a_payee_is_found_by_iban(world: World) -> None:
    registered = world.api.client.put(
        "/api/v1/accounts/b-1/iban", json={"iban": IBAN}, headers=world.api.headers
    )
    assert registered.status_code == 200, registered.text
    answer = _confirm(world, world.alice, iban="DE89 3704 0044 0532 0130 00")
    assert answer.status_code == 200, answer.text
    assert answer.json()["account_id"] == "b-1" and answer.json()["by"] == "iban"


def test_pay_by_phone_only_with_ones_own_number(world: World) -> None:
    theirs = world.put(world.bob, "/api/v1/accounts/b-1/mobile", {"mobile": "13800138000"})
    assert theirs.status_code == 422 and theirs.json()["code"] == "mobile_not_owners"
    not_mine = world.put(world.bob, "/api/v1/accounts/a-1/mobile", {"mobile": "13900139000"})
    assert not_mine.status_code == 403
    bad = world.put(world.alice, "/api/v1/accounts/a-1/mobile", {"mobile": "12345678901"})
    assert bad.status_code == 422 and bad.json()["code"] == "mobile_invalid"
    unknown = _confirm(world, world.bob, mobile="13800138000")
    assert unknown.status_code == 404
    mine = world.put(world.alice, "/api/v1/accounts/a-1/mobile", {"mobile": "+86 138 0013 8000"})
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"account_id": "a-1", "mobile": "138****8000", "registered": True}
    again = world.put(world.alice, "/api/v1/accounts/a-1/mobile", {"mobile": "13800138000"})
    assert again.json()["registered"] is False
    found = _confirm(world, world.bob, mobile="138 0013 8000", expected_name="张三丰")
    assert found.status_code == 200, found.text
    assert found.json()["account_id"] == "a-1" and found.json()["match"] == "match"
    assert world.get(world.alice, "/api/v1/accounts/a-1/mobile").json()["mobile"] == "138****8000"


def test_payee_lookups_are_rate_limited_per_user(world: World) -> None:
    prober = User(register_and_login(world.client), "", "")
    answers = [_confirm(world, prober, account_id=f"guess-{n}") for n in range(21)]
    assert [a.status_code for a in answers[:20]] == [404] * 20
    assert answers[20].status_code == 429 and answers[20].json()["code"] == "rate_limited"
    assert int(answers[20].headers["Retry-After"]) >= 1
    # Another user's budget is untouched.
    assert _confirm(world, world.bob, account_id="a-1").status_code == 200


# -- recent payees and statements -------------------------------------------------------------------


def _funded(world: World, name: str, mobile: str) -> tuple[User, str]:
    """A fresh customer with a funded account of their own (for tests that count payments)."""
    user = _user(world.client, name, mobile)
    account_id = f"acc-{secrets.token_hex(4)}"
    world.api.ok("/api/v1/accounts", account(account_id, user.did))
    world.api.ok("/api/v1/transfers", move(f"fund-{account_id}", "settle-cny", account_id, FUNDS))
    return user, account_id


def test_recent_payees_most_recent_first_with_masked_names(world: World) -> None:
    dave, dave_account = _funded(world, "Dave Wu", "13500135000")
    assert _pay(world, dave, "rp-1", dave_account, "b-1", 1_234).status_code == 200
    assert _pay(world, dave, "rp-2", dave_account, "s-1", 2_000).status_code == 200
    assert _pay(world, dave, "rp-3", dave_account, "s-1", 3_000).status_code == 200
    url = "/api/v1/payees/recent"
    page = world.get(dave, url, params={"limit": 1}).json()
    assert [(p["account_id"], p["name"], p["payments"]) for p in page["payees"]] == [
        ("s-1", "杭州****有限公司", 2)
    ]
    rest = world.get(dave, url, params={"limit": 1, "after": page["next_after"]}).json()
    assert [(p["account_id"], p["name"]) for p in rest["payees"]] == [("b-1", "L* S*")]
    last = world.get(dave, url, params={"limit": 1, "after": rest["next_after"]}).json()
    assert last["payees"] == [] and last["next_after"] is None
    only = world.get(dave, url, params={"account_id": dave_account}).json()["payees"]
    assert [p["account_id"] for p in only] == ["s-1", "b-1"]
    assert world.get(dave, url, params={"account_id": "b-1"}).status_code == 403
    bad = world.get(dave, url, params={"after": "x"})
    assert bad.status_code == 422 and bad.json()["code"] == "cursor_invalid"
    assert world.api.get(url).status_code == 403  # the operator has no payees of its own


def test_statement_names_counterparties_and_searches(world: World) -> None:
    erin, erin_account = _funded(world, "欧阳娜娜", "13300133000")
    assert _pay(world, erin, "st-out", erin_account, "b-1", 1_111).status_code == 200
    assert _pay(world, erin, "st-shop-1", erin_account, "s-1", 2_222).status_code == 200
    assert _pay(world, erin, "st-shop-2", erin_account, "s-1", 3_333).status_code == 200
    assert _pay(world, world.bob, "st-in", "b-1", erin_account, 1_250).status_code == 200
    url = f"/api/v1/accounts/{erin_account}/entries"
    lines = world.get(erin, url).json()["entries"]
    assert [line["transfer_id"] for line in lines] == [
        "st-in",
        "st-shop-2",
        "st-shop-1",
        "st-out",
        f"fund-{erin_account}",
    ]
    latest = lines[0]
    assert latest["amount"] == "12.50" and latest["counterparty"]["name"] == "L* S*"
    assert latest["local_time"].endswith("+08:00") and latest["direction"] == "credit"
    assert lines[3]["amount"] == "-11.11" and lines[3]["balance"] == "8988.89"
    assert lines[4]["counterparty"]["name_kind"] == "institution"
    by_name = world.get(erin, url, params={"q": "Li Si"}).json()["entries"]
    assert [line["transfer_id"] for line in by_name] == ["st-in", "st-out"]
    company = world.get(erin, url, params={"q": "小明科技"}).json()["entries"]
    assert [line["transfer_id"] for line in company] == ["st-shop-2", "st-shop-1"]
    as_text = world.get(erin, url, params={"q": "22.22"}).json()["entries"]
    assert [line["transfer_id"] for line in as_text] == ["st-shop-1"]
    exact = world.get(erin, url, params={"amount": "11.11"}).json()["entries"]
    assert [line["transfer_id"] for line in exact] == ["st-out"]
    assert world.get(erin, url, params={"q": "nobody"}).json()["entries"] == []
    one = world.get(erin, url, params={"counterparty": "b-1", "limit": 1}).json()
    assert [line["transfer_id"] for line in one["entries"]] == ["st-in"]
    older = world.get(
        erin, url, params={"counterparty": "b-1", "before_entry": one["next_before_entry"]}
    ).json()["entries"]
    assert [line["transfer_id"] for line in older] == ["st-out"]
    assert _audit_actions(world, "payments.names.read")


def test_statement_periods_are_local_days_and_refuse_bad_input(world: World) -> None:
    url = "/api/v1/accounts/a-1/entries"
    past = world.get(world.alice, url, params={"from_date": "2020-01-01", "to_date": "2020-01-31"})
    assert past.status_code == 200 and past.json()["entries"] == []
    assert past.json()["to_ms"] - past.json()["from_ms"] == 31 * 86_400_000
    assert past.json()["from_ms"] == 1_577_808_000_000  # 2020-01-01T00:00+08:00
    for params, code in (
        ({"from_date": "2020-02-01", "to_date": "2020-01-01"}, "period_invalid"),
        ({"from_date": "2020-01-01", "to_date": "2021-06-01"}, "period_too_long"),
        ({"tz": "Mars/Olympus"}, "time_zone_invalid"),
        ({"amount": "12.345"}, "amount_text_invalid"),
        ({"amount": "-1"}, "amount_text_invalid"),
    ):
        answer = world.get(world.alice, url, params=params)
        assert answer.status_code == 422 and answer.json()["code"] == code, params
    assert world.get(world.alice, url, params={"from_date": "yesterday"}).status_code == 422
    assert world.get(world.bob, url).status_code == 403  # not bob's account


def test_statement_downloads_as_csv_and_camt053(world: World) -> None:
    assert _pay(world, world.bob, "csv-1", "b-1", "a-1", 777).status_code == 200
    answer = world.get(world.alice, "/api/v1/accounts/a-1/statement.csv")
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["时间", "交易编号", "收支", "金额"]
    by_id = {row[1]: row for row in rows[1:]}
    assert by_id["csv-1"][2:4] == ["收入", "7.77"] and by_id["csv-1"][6] == "L* S*"
    assert by_id["fund-a-1"][3] == "9000.00"
    english = world.get(world.alice, "/api/v1/accounts/a-1/statement.csv", params={"lang": "en"})
    assert english.content.decode("utf-8-sig").startswith("Time,Transfer,Direction,Amount")
    camt = world.get(world.alice, "/api/v1/accounts/a-1/statement.camt053")
    assert camt.status_code == 200, camt.text
    root = ET.fromstring(camt.content)
    assert root.tag.endswith("Document") and b"BkToCstmrStmt" in camt.content
    assert b"csv-1" in camt.content
    assert world.get(world.bob, "/api/v1/accounts/a-1/statement.csv").status_code == 403


# -- payment requests -----------------------------------------------------------------------------


def _request(world: World, user: User, **body: Any) -> dict[str, Any]:
    answer = world.post(user, "/api/v1/payment-requests", {"account_id": "s-1", **body})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _token(request: dict[str, Any]) -> str:
    return str(request["link"]).rsplit("/pay/", 1)[1]


def test_a_single_use_payment_link_is_paid_once(world: World) -> None:
    request = _request(world, world.shop, amount=5_000, memo="订单 1001")
    assert request["status"] == "open" and request["amount"] == "50.00"
    assert request["link"].startswith("https://testserver/pay/")
    token = _token(request)
    assert len(token) == 32
    anonymous = world.get(None, f"/api/v1/pay/{token}").json()
    assert anonymous["payee_name"] is None and anonymous["payee_account_id"] is None
    assert anonymous["amount"] == "50.00" and anonymous["memo"] == "订单 1001"
    signed_in = world.get(world.alice, f"/api/v1/pay/{token}").json()
    assert signed_in["payee_name"] == "杭州****有限公司" and signed_in["payee_account_id"] == "s-1"
    qr = world.get(world.shop, f"/api/v1/payment-requests/{request['id']}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in qr.content
    other_amount = world.post(
        world.alice, f"/api/v1/pay/{token}", {"debit_account_id": "a-1", "amount": 1}
    )
    assert other_amount.status_code == 422
    assert other_amount.json()["code"] == "payment_request_amount_fixed"
    paid = world.post(world.alice, f"/api/v1/pay/{token}", {"debit_account_id": "a-1"})
    assert paid.status_code == 200, paid.text
    assert paid.json()["transfer"]["reference"] == request["id"]
    assert paid.headers["Idempotent-Replayed"] == "false"
    retry = world.post(world.alice, f"/api/v1/pay/{token}", {"debit_account_id": "a-1"})
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    second = world.post(world.bob, f"/api/v1/pay/{token}", {"debit_account_id": "b-1"})
    assert second.status_code == 409 and second.json()["code"] == "payment_request_paid"
    view = world.get(world.shop, f"/api/v1/payment-requests/{request['id']}").json()
    assert view["status"] == "paid" and view["paid_by_transfer_id"] == f"pr.{request['id']}"


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_two_payers_racing_for_a_single_use_link_pay_it_once(world: World) -> None:
    token = _token(_request(world, world.shop, amount=1_000))
    before = world.get(world.shop, "/api/v1/accounts/s-1").json()["balance_posted"]
    answers = _race(
        [
            lambda: world.post(world.alice, f"/api/v1/pay/{token}", {"debit_account_id": "a-1"}),
            lambda: world.post(world.bob, f"/api/v1/pay/{token}", {"debit_account_id": "b-1"}),
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    assert [a.json()["code"] for a in answers if a.status_code == 409] == ["payment_request_paid"]
    after = world.get(world.shop, "/api/v1/accounts/s-1").json()["balance_posted"]
    assert after - before == 1_000


def test_a_reusable_link_takes_many_payments_with_the_payers_amount(world: World) -> None:
    token = _token(_request(world, world.shop, single_use=False, show_name_public=True))
    public = world.get(None, f"/api/v1/pay/{token}").json()
    assert public["payee_name"] == "杭州****有限公司" and public["amount"] is None
    url = f"/api/v1/pay/{token}"
    missing = world.post(world.alice, url, {"debit_account_id": "a-1", "id": "re-0"})
    assert missing.json()["code"] == "payment_request_amount_required"
    no_id = world.post(world.alice, url, {"debit_account_id": "a-1", "amount": 100})
    assert no_id.json()["code"] == "payment_request_id_required"
    for n in (1, 2):
        body = {"debit_account_id": "a-1", "amount": 100 * n, "id": f"re-{n}"}
        assert world.post(world.alice, url, body).status_code == 200
    wrong = world.post(world.alice, url, {"debit_account_id": "a-1", "amount": 1.5, "id": "re-3"})
    assert wrong.status_code == 422


def test_expired_cancelled_and_unknown_links_are_refused(world: World) -> None:
    request = _request(world, world.shop, amount=100, expires_in_ms=60_000)
    with world.api.platform.platform_engine.begin() as conn:
        conn.execute(
            update(payment_requests_table)
            .where(payment_requests_table.c.id == request["id"])
            .values(expires_at_ms=1)
        )
    expired = world.post(world.alice, f"/api/v1/pay/{_token(request)}", {"debit_account_id": "a-1"})
    assert expired.status_code == 410 and expired.json()["code"] == "payment_request_expired"
    assert world.get(None, f"/api/v1/pay/{_token(request)}").json()["status"] == "expired"
    open_one = _request(world, world.shop, amount=100)
    cancel = world.post(world.shop, f"/api/v1/payment-requests/{open_one['id']}/cancel", {})
    assert cancel.json()["status"] == "cancelled"
    refused = world.post(
        world.alice, f"/api/v1/pay/{_token(open_one)}", {"debit_account_id": "a-1"}
    )
    assert refused.status_code == 410 and refused.json()["code"] == "payment_request_cancelled"
    unknown = world.get(None, f"/api/v1/pay/{secrets.token_urlsafe(24)}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "payment_request_not_found"
    assert world.get(None, "/api/v1/pay/short").status_code == 422
    # Someone else's request, or an account not one's own, does not exist for them.
    assert world.get(world.bob, f"/api/v1/payment-requests/{open_one['id']}").status_code == 404
    foreign = world.post(world.bob, "/api/v1/payment-requests", {"account_id": "s-1"})
    assert foreign.status_code == 403
    frozen = world.post(world.bob, "/api/v1/payment-requests", {"account_id": "b-frozen"})
    assert frozen.json()["code"] == "payment_request_account_invalid"
    short = world.post(
        world.shop, "/api/v1/payment-requests", {"account_id": "s-1", "expires_in_ms": 1}
    )
    assert short.status_code == 422
    control = world.post(
        world.shop, "/api/v1/payment-requests", {"account_id": "s-1", "memo": "a\u0000b"}
    )
    assert control.status_code == 422
    huge = world.post(
        world.shop, "/api/v1/payment-requests", {"account_id": "s-1", "amount": 2**63}
    )
    assert huge.status_code == 422
    made = {request["id"], open_one["id"]} | {_request(world, world.shop)["id"] for _ in range(3)}
    seen: list[str] = []
    before = None
    for _ in range(50):  # pages of 2 until the end
        params: dict[str, Any] = {"account_id": "s-1", "limit": 2}
        if before is not None:
            params["before"] = before
        page = world.get(world.shop, "/api/v1/payment-requests", params=params).json()
        seen += [r["id"] for r in page["requests"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) and made <= set(seen)
    bad = world.get(
        world.shop, "/api/v1/payment-requests", params={"account_id": "s-1", "before": "x"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "cursor_invalid"


# -- merchant -------------------------------------------------------------------------------------


def test_the_merchant_sees_payers_and_daily_totals(world: World) -> None:
    assert _pay(world, world.alice, "m-0", "a-1", "s-1", 1_000).status_code == 200
    assert _pay(world, world.bob, "m-1", "b-1", "s-1", 4_000).status_code == 200
    incoming = world.get(world.shop, "/api/v1/merchant/accounts/s-1/incoming").json()
    latest = incoming["payments"][0]
    assert latest["transfer_id"] == "m-1" and latest["payer"]["name"] == "L* S*"
    assert latest["refundable_minor"] == 4_000 and latest["amount"] == "40.00"
    names = {p["payer"]["name"] for p in incoming["payments"]}
    assert "张*丰" in names
    daily = world.get(world.shop, "/api/v1/merchant/accounts/s-1/daily").json()
    total = sum(day["received_minor"] for day in daily["days"])
    balance = world.get(world.shop, "/api/v1/accounts/s-1").json()["balance_posted"]
    refunded = sum(day["refunded_minor"] for day in daily["days"])
    assert total - refunded == balance
    assert world.get(world.alice, "/api/v1/merchant/accounts/s-1/incoming").status_code == 403


def _refund(world: World, refund_id: str, original: str, amount: int | None = None) -> Any:
    body: dict[str, Any] = {"id": refund_id, "original_transfer_id": original}
    if amount is not None:
        body["amount"] = amount
    return world.post(world.shop, "/api/v1/merchant/refunds", body)


def test_refunds_name_the_payment_and_never_exceed_it(world: World) -> None:
    assert _pay(world, world.alice, "buy-1", "a-1", "s-1", 5_000).status_code == 200
    first = _refund(world, "rf-1", "buy-1", 2_000)
    assert first.status_code == 200, first.text
    assert first.json()["refunded_minor"] == 2_000
    assert first.json()["transfer"]["credit_account_id"] == "a-1"
    assert first.json()["transfer"]["reference"] == "RF:buy-1"
    retry = _refund(world, "rf-1", "buy-1", 2_000)
    assert retry.status_code == 200 and retry.json()["refunded_minor"] == 2_000
    changed = _refund(world, "rf-1", "buy-1", 2_001)
    assert changed.status_code == 409
    assert changed.json()["code"] == "refund_exists_with_different_fields"
    over = _refund(world, "rf-2", "buy-1", 3_001)
    assert over.status_code == 409 and over.json()["code"] == "refund_exceeds_original"
    rest = _refund(world, "rf-3", "buy-1")
    assert rest.status_code == 200 and rest.json()["amount_minor"] == 3_000
    assert _refund(world, "rf-4", "buy-1").json()["code"] == "refund_exceeds_original"
    incoming = world.get(world.shop, "/api/v1/merchant/accounts/s-1/incoming").json()
    bought = next(p for p in incoming["payments"] if p["transfer_id"] == "buy-1")
    assert bought["refunded_minor"] == 5_000 and bought["refundable_minor"] == 0
    # Not a payment into one's own account, not a payment, nothing at all.
    assert _refund(world, "rf-5", "fund-a-1", 1).status_code == 403
    assert _refund(world, "rf-6", "no-such-transfer", 1).json()["code"] == (
        "refund_original_not_found"
    )
    assert _refund(world, "rf-7", "buy-1", 0).status_code == 422
    assert _refund(world, "rf-8", "buy-1", -5).status_code == 422


def test_two_refunds_racing_cannot_together_exceed_the_payment(world: World) -> None:
    assert _pay(world, world.bob, "buy-2", "b-1", "s-1", 1_000).status_code == 200
    answers = _race(
        [
            lambda: _refund(world, "race-a", "buy-2", 600),
            lambda: _refund(world, "race-b", "buy-2", 600),
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    incoming = world.get(world.shop, "/api/v1/merchant/accounts/s-1/incoming").json()
    bought = next(p for p in incoming["payments"] if p["transfer_id"] == "buy-2")
    assert bought["refunded_minor"] == 600
    refund_ids = {a.json()["id"] for a in answers if a.status_code == 200}
    assert len(refund_ids) == 1


def test_a_refund_the_ledger_refuses_gives_its_claim_back(world: World) -> None:
    """The merchant's account frozen: the refund is refused on chain and claims nothing."""
    assert _pay(world, world.bob, "buy-3", "b-1", "s-1", 700).status_code == 200
    world.api.ok("/api/v1/accounts/s-1/status", {"status": "frozen"})
    try:
        refused = _refund(world, "frozen-1", "buy-3", 700)
        assert refused.status_code == 422 and refused.json()["code"] == "debit_account_frozen"
    finally:
        world.api.ok("/api/v1/accounts/s-1/status", {"status": "open"})
    assert _refund(world, "thawed-1", "buy-3", 700).status_code == 200


def test_the_chain_holds_the_cap_when_the_off_chain_record_is_lost(world: World) -> None:
    """The off-chain claim is only the early answer: with its rows gone (a restored backup, a
    second node that never saw them), a refund past what the payment brought is still refused,
    by the contract, and gives its new claim back."""
    assert _pay(world, world.bob, "buy-4", "b-1", "s-1", 800).status_code == 200
    assert _refund(world, "lost-1", "buy-4", 800).status_code == 200
    with world.api.platform.platform_engine.begin() as conn:
        conn.execute(delete(refunds_table).where(refunds_table.c.original_id == "buy-4"))
        conn.execute(
            delete(refund_totals_table).where(refund_totals_table.c.original_id == "buy-4")
        )
    again = _refund(world, "lost-2", "buy-4", 1)
    assert again.status_code == 409 and again.json()["code"] == "refund_exceeds_original"
    assert "lost-2" not in {
        row.id for row in _refund_rows(world, "buy-4")
    }  # the claim was given back
    committed = world.api.platform.node.state_get("payments/refunded/buy-4")
    assert committed == {"refunded_amount": 800, "refunds": 1, "transfer_id": "buy-4"}
    record = world.api.get("/api/v1/transfers/lost-1").json()
    assert record["parent_id"] == "buy-4"  # the link is on chain


def _refund_rows(world: World, original: str) -> list[Any]:
    with world.api.platform.platform_engine.connect() as conn:
        return list(
            conn.execute(select(refunds_table).where(refunds_table.c.original_id == original))
        )


def test_a_refund_replayed_as_another_tx_books_once(world: World) -> None:
    """The same refund body signed into a second tx (a replayed submission) is `exists`."""
    assert _pay(world, world.bob, "buy-5", "b-1", "s-1", 900).status_code == 200
    body = {"id": "replay-1", "original_transfer_id": "buy-5", "amount": 300}
    gateway = world.client.app.state.gateway  # type: ignore[attr-defined]
    first = gateway.submit("payments", "refund_transfer", body, sender=world.shop.did)
    second = gateway.submit("payments", "refund_transfer", body, sender=world.shop.did)
    assert first["status"] == "ok" and second["status"] == "ok", (first, second)
    assert first["return"]["exists"] is False and second["return"]["exists"] is True
    assert second["return"]["refunded_amount"] == 300
    other = gateway.submit(
        "payments", "refund_transfer", {**body, "amount": 301}, sender=world.shop.did
    )
    assert other["status"] != "ok" and other["code"] == "exists_with_different_fields"
    stranger = gateway.submit(
        "payments", "refund_transfer", {**body, "id": "replay-2"}, sender=world.bob.did
    )
    assert stranger["code"] == "not_authorized"  # the payer cannot refund themselves


def test_the_settlement_report_is_per_day_and_currency(world: World) -> None:
    assert _pay(world, world.bob, "settle-1", "b-1", "s-1", 100).status_code == 200
    answer = world.get(world.shop, "/api/v1/merchant/settlement.csv", params={"lang": "en"})
    assert answer.status_code == 200 and answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "Date",
        "Currency",
        "Account",
        "Payments",
        "Received",
        "Refunds",
        "Refunded",
        "Net",
    ]
    assert rows[1][1:3] == ["CNY", "s-1"] and int(rows[1][3]) >= 1
    assert rows[1][7].count(".") == 1
    assert world.api.get("/api/v1/merchant/settlement.csv").status_code == 403


# -- step-up reasons --------------------------------------------------------------------------------


def test_the_step_up_answer_says_why_and_whether_the_user_has_an_authenticator(
    world: World,
) -> None:
    carol = _user(world.client, "赵敏", "13600136000")
    world.api.ok("/api/v1/accounts", account("c-1", carol.did))
    world.api.ok("/api/v1/transfers", move("fund-c-1", "settle-cny", "c-1", 1_000_000))
    answer = _pay(world, carol, "big-1", "c-1", "b-1", 150_000)
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["code"] == "step_up_required"
    causes = {cause["code"]: cause for cause in body["reason_codes"]}
    assert causes["new_payee"]["params"] == {
        "threshold_minor": 100_000,
        "currency": "CNY",
        "exponent": 2,
    }
    assert causes["new_payee"]["outcome"] == "step_up"
    assert body["has_authenticator"] is False
    assert body["enrol_path"] == "/api/v1/identity/totp/enrol"

"""Pay abroad through the app (no browser) and the live-quotes API: which quotes are live for a
pair, what each does with an amount (the contract's arithmetic and rounding: the preview equals
what `pay_fx` books), the review with the payee's masked name and the best quote, the payment,
its status page, and the refusals (another currency's payee, a pair with no quote, a quote
that expired between review and confirm, another user's account, step-up for an amount fixed
on the payee's side, the permission the listing needs)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.payments.test_api import Api, _settings, account, move
from tests.payments.test_pages import Person, _hidden, _person
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.payments import calc

FUNDS = 900_000  # 9,000.00 CNY
RATE = "0.1385"
SPREAD_BPS = 30


@dataclass
class World:
    api: Api
    alice: Person  # 张三丰: CNY account fa-cny (funded)
    bob: Person  # Li Si: USD account fb-usd, CNY account fb-cny

    def balance(self, account_id: str) -> int:
        answer = self.api.get(f"/api/v1/accounts/{account_id}")
        assert answer.status_code == 200, answer.text
        return int(answer.json()["balance_posted"])

    def quote(
        self, quote_id: str, *, rate: str = RATE, ttl_ms: int = 600_000, **extra: int
    ) -> None:
        body = {
            "id": quote_id,
            "source_currency": "CNY",
            "target_currency": "USD",
            "rate": rate,
            "spread_bps": SPREAD_BPS,
            "expires_at_ms": self.api.platform.node.clock() + ttl_ms,
            "source_liquidity_account_id": "fx-cny",
            "target_liquidity_account_id": "fx-usd",
            "spread_account_id": "fee-cny",
            **extra,
        }
        self.api.ok("/api/v1/fx/quotes", body)


BRIEF_TTL_MS = 400  # a quote that lives past its own block and is gone a moment later


def _expired_quote(world: World, quote_id: str) -> None:
    """A quote whose expiry has passed by the head's block time."""
    world.quote(quote_id, rate="0.2000", ttl_ms=BRIEF_TTL_MS)
    time.sleep(BRIEF_TTL_MS / 1000 + 0.1)
    tick = "tick-" + secrets.token_hex(4)
    world.api.ok("/api/v1/transfers", move(tick, "settle-cny", "fee-cny", 1))  # a later block


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data: Path = tmp_path_factory.mktemp("fx-pages")
    settings = _settings(data).model_copy(update={"audit_anchor_interval_s": 0})
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, (data / "operator-token").read_text().strip())
        alice = _person(api, "张三丰", "13800138000")
        bob = _person(api, "Li Si", "13900139000")
        member = api.member
        for code in ("CNY", "USD"):
            c = code.lower()
            for body in (
                account(f"settle-{c}", member, code, "settlement"),
                account(f"fx-{c}", member, code, "fx_liquidity"),
                account(f"fee-{c}", member, code, "fee"),
            ):
                api.ok("/api/v1/accounts", body)
            api.ok("/api/v1/transfers", move(f"dep-fx-{c}", f"settle-{c}", f"fx-{c}", 10**9, code))
        for body in (
            account("fa-cny", alice.did),
            account("fb-usd", bob.did, "USD"),
            account("fb-cny", bob.did),
        ):
            api.ok("/api/v1/accounts", body)
        api.ok("/api/v1/transfers", move("fund-fa", "settle-cny", "fa-cny", FUNDS))
        world = World(api, alice, bob)
        world.quote("fxq-worse", rate="0.1300")
        world.quote("fxq-best")
        yield world


def _form(amount: str, *, side: str = "source", credit: str = "fb-usd") -> dict[str, str]:
    return {
        "id": "fx-" + secrets.token_hex(8),
        "debit": "fa-cny",
        "target": "USD",
        "side": side,
        "amount": amount,
        "credit": credit,
    }


def _expected(source_amount: int) -> calc.FxAmounts:
    return calc.fx_from_source(
        source_amount=source_amount,
        rate=calc.parse_rate(RATE) or (0, 1),
        spread_bps=SPREAD_BPS,
        source_exponent=2,
        target_exponent=2,
    )


# -- the live quotes, through the API -------------------------------------------------------------


def test_the_live_quotes_of_a_pair_with_what_each_does_with_an_amount(world: World) -> None:
    answer = world.alice.client.get(
        "/api/v1/fx/quotes",
        params={"source_currency": "CNY", "target_currency": "USD", "source_amount": 100_000},
    )
    assert answer.status_code == 200, answer.text
    listing = answer.json()
    ids = {q["id"] for q in listing["quotes"]}
    assert {"fxq-best", "fxq-worse"} <= ids
    assert listing["best_quote_id"] == "fxq-best"  # the better rate for the payer
    best = next(q for q in listing["quotes"] if q["id"] == "fxq-best")
    expected = _expected(100_000)
    assert best["rate"] == RATE and best["spread_percent"] == "0.3"
    assert best["preview"]["target_amount"] == expected.target_amount
    assert best["preview"]["spread_amount"] == expected.spread_amount
    assert best["preview"]["rounding"] == "ROUND_FLOOR" and best["preview"]["refusal"] is None
    assert best["remaining_target_amount"] is None and best["expires_in_ms"] > 0
    other_pair = world.alice.client.get(
        "/api/v1/fx/quotes", params={"source_currency": "USD", "target_currency": "CNY"}
    )
    assert other_pair.status_code == 200 and other_pair.json()["quotes"] == []
    both = world.alice.client.get(
        "/api/v1/fx/quotes",
        params={
            "source_currency": "CNY",
            "target_currency": "USD",
            "source_amount": 1,
            "target_amount": 1,
        },
    )
    assert both.status_code == 422 and both.json()["code"] == "amount_side_invalid"
    anonymous = TestClient(world.api.client.app, base_url="https://testserver")
    refused = anonymous.get(
        "/api/v1/fx/quotes", params={"source_currency": "CNY", "target_currency": "USD"}
    )
    assert refused.status_code == 401


def test_a_quote_past_its_capacity_or_expiry_is_not_live(world: World) -> None:
    world.quote("fxq-tiny", rate="0.2000", max_target_amount=100)
    _expired_quote(world, "fxq-brief")
    answer = world.bob.client.get(
        "/api/v1/fx/quotes",
        params={"source_currency": "CNY", "target_currency": "USD", "source_amount": 100_000},
    ).json()
    ids = {q["id"] for q in answer["quotes"]}
    assert "fxq-brief" not in ids  # expired by block time
    tiny = next(q for q in answer["quotes"] if q["id"] == "fxq-tiny")
    assert tiny["remaining_target_amount"] == 100
    assert tiny["preview"]["refusal"] == "quote_capacity_exceeded"
    assert answer["best_quote_id"] == "fxq-best"  # the better rate cannot carry the amount


# -- the page -------------------------------------------------------------------------------------


def test_the_page_lists_the_live_quotes_of_the_pair(world: World) -> None:
    page = world.alice.get("/fx")
    assert page.status_code == 200
    assert 'name="target"' in page.text and '<option value="USD"' in page.text
    quotes = world.alice.get("/fx/quotes", params={"debit": "fa-cny", "target": "USD"})
    assert "1 CNY = 0.1385 USD" in quotes.text and "0.3%" in quotes.text
    assert "还剩" in quotes.text
    english = world.alice.get("/fx/quotes", params={"debit": "fa-cny", "target": "USD"}, lang="en")
    assert "min left" in english.text and "Rate" in english.text


def test_review_then_pay_abroad_books_what_the_review_said(world: World) -> None:
    before = world.balance("fb-usd")
    review = world.alice.post("/fx", _form("100.00"))  # under the step-up floor
    assert review.status_code == 200, review.text
    expected = _expected(10_000)
    assert "L* S*" in review.text  # the payee's masked name
    assert "¥100.00" in review.text
    assert f"US${expected.target_amount // 100:,}.{expected.target_amount % 100:02d}" in (
        review.text
    )
    fields = _hidden(review.text)
    assert fields["quote"] == "fxq-best" and fields["confirmed"] == "1"
    assert world.balance("fb-usd") == before  # the review moved nothing
    paid = world.alice.post("/fx", fields)
    assert 'id="fx-paid"' in paid.text, paid.text
    assert world.balance("fb-usd") == before + expected.target_amount
    replay = world.alice.post("/fx", fields)  # the same id again books nothing twice
    assert 'id="fx-paid"' in replay.text
    assert world.balance("fb-usd") == before + expected.target_amount
    status = world.alice.get(f"/fx/payments/{fields['id']}")
    assert status.status_code == 200 and 'id="fx-legs"' in status.text
    assert f"{fields['id']}~target" in status.text
    # The principal leg is the payer's with the provider (GET /transfers/{id}'s rule): the
    # payee sees the target leg in their own statement, not the payer's side of it.
    assert world.bob.get(f"/fx/payments/{fields['id']}").status_code == 403
    stranger = _person(world.api, "王五", "13500135000")
    assert stranger.get(f"/fx/payments/{fields['id']}").status_code == 403


def test_a_payee_in_another_currency_or_a_pair_without_quotes_is_refused_in_words(
    world: World,
) -> None:
    wrong = world.alice.post("/fx", _form("10.00", credit="fb-cny"))
    assert 'id="fx-error"' in wrong.text and "收款账户不是您选择的收款币种" in wrong.text
    no_pair = world.alice.post("/fx", {**_form("10.00"), "target": "JPY"})
    assert 'id="fx-error"' in no_pair.text and "没有能完成这笔汇款的外汇报价" in no_pair.text
    same = world.alice.post("/fx", {**_form("10.00"), "target": "CNY"}, lang="en")
    assert "other than your account" in same.text
    bad_amount = world.alice.post("/fx", _form("1,000"))
    assert 'id="fx-error"' in bad_amount.text
    not_mine = world.alice.post("/fx", {**_form("10.00"), "debit": "fb-usd"})
    assert 'id="fx-error"' in not_mine.text


def test_a_quote_that_expired_after_the_review_is_refused_and_nothing_moves(
    world: World,
) -> None:
    review = world.alice.post("/fx", _form("10.00"))
    fields = _hidden(review.text)
    # The quote the review chose has expired by the time the payer confirms (a stale form):
    # the contract refuses it by block time, and the form asks for a new review.
    _expired_quote(world, "fxq-gone")
    before = world.balance("fa-cny")
    refused = world.alice.post("/fx", {**fields, "quote": "fxq-gone"})
    assert 'id="fx-error"' in refused.text and "外汇报价已过期" in refused.text
    assert world.balance("fa-cny") == before
    assert 'name="quote"' not in refused.text or _hidden(refused.text).get("quote", "") == ""


def test_an_amount_fixed_on_the_payees_side_is_stepped_up_and_paid_after_enrolment(
    world: World,
) -> None:
    carol = _person(world.api, "赵六", "13600136000")
    world.api.ok("/api/v1/accounts", account("fc-cny", carol.did))
    world.api.ok("/api/v1/transfers", move("fund-fc", "settle-cny", "fc-cny", FUNDS))
    form = {**_form("5.00", side="target"), "debit": "fc-cny"}
    review = carol.post("/fx", form)
    assert "US$5.00" in review.text
    prompt = carol.post("/fx", _hidden(review.text))
    assert 'id="stepup-causes"' in prompt.text and 'id="enrol-start"' in prompt.text
    assert 'hx-post="/fx/enrol"' in prompt.text
    assert world.balance("fc-cny") == FUNDS
    start = carol.post("/fx/enrol", _hidden(prompt.text))
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', start.text)
    assert secret is not None and 'hx-post="/fx/enrol/confirm"' in start.text
    code = pyotp.TOTP(secret.group(1).replace(" ", "")).now()
    before = world.balance("fb-usd")
    done = carol.post("/fx/enrol/confirm", {**_hidden(start.text), "code": code})
    assert 'id="fx-paid"' in done.text and 'id="recovery-codes"' in done.text
    assert world.balance("fb-usd") == before + 500
    assert world.balance("fc-cny") < FUNDS

"""A payment split into small ones meets the step-up policy as a whole: in one batch, over many
requests, across a restart and under concurrent requests; retries count once; a malformed
payment is a 422 before any policy is asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.payments.test_api import BOB, Api, _settings, account, books, move
from tests.platform.users import identity_of, login_with_token, new_password
from zhijin.identity.service import RequestSource, wall_clock_ms
from zhijin.identity.stepup import MovedAmount
from zhijin.identity.store import hash_token
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir

CAROL = "did:key:z6MkSplitCarol"
FUNDS = 70_000_000  # 700,000.00 CNY
JUST_UNDER = 99_999  # 999.99 CNY: under the 1,000.00 floor and the new-payee threshold
HOUR_MS = 3_600_000
BEIJING_OFFSET_MS = 8 * HOUR_MS


def daytime_clock() -> int:
    """The wall clock, moved on to 06:xx when it is night in Beijing (00:00-05:59), so that
    these tests meet the new-payee and large-transfer rules and never the night rule, whatever
    hour CI runs at (the night rule has its own tests in tests/identity).  The chain and
    identity (and the request guard, which asks the hour) all take it, so block times and the
    24 h windows agree."""
    now = wall_clock_ms()
    local_hour = (now + BEIJING_OFFSET_MS) // HOUR_MS % 24
    return now + (6 - local_hour) * HOUR_MS if local_hour < 6 else now


@dataclass
class Payer:
    api: Api
    user_id: str
    headers: dict[str, str]

    def pay(self, body: dict[str, Any]) -> Any:
        return self.api.client.post("/api/v1/transfers", json=body, headers=self.headers)

    def batch(self, items: list[dict[str, Any]]) -> Any:
        body = {"transfers": items}
        return self.api.client.post("/api/v1/transfers/batch", json=body, headers=self.headers)

    def moved(self, payee: str | None = None) -> tuple[MovedAmount, ...]:
        identity = identity_of(self.api.client)
        return identity.counters.amount_moved(
            user_id=self.user_id, payee=payee, now_ms=identity.clock()
        )

    def fresh_code(self) -> None:
        """As after POST /identity/step-up: the token's session has a second factor now."""
        identity = identity_of(self.api.client)
        token = self.headers["Authorization"].removeprefix("Bearer ")
        identity.store.mark_session(hash_token(token), mfa_at_ms=identity.clock())

    def balance(self) -> int:
        balance: int = self.api.get("/api/v1/accounts/p-alice").json()["balance_posted"]
        return balance


def open_books(api: Api, login: str, password: str) -> str:
    """Alice (a registered user) with funds, Bob paid by the custodian before she signs in
    (known), Carol never paid (new); returns her user id."""
    books(api)
    user = identity_of(api.client).register(
        login=login, password=password, kind="individual", source=RequestSource(ip="t")
    )
    assert user.did is not None
    api.ok("/api/v1/accounts", account("p-alice", user.did))
    api.ok("/api/v1/accounts", account("p-bob", BOB))
    api.ok("/api/v1/accounts", account("p-carol", CAROL))
    api.ok("/api/v1/transfers", move("p-dep", "settle-cny", "p-alice", FUNDS))
    api.ok("/api/v1/transfers", move("p-known", "p-alice", "p-bob", 1))
    time.sleep(0.01)  # sign-in strictly after that block
    return user.id


@pytest.fixture
def payer(tmp_path: Path) -> Iterator[Payer]:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        # One clock for the chain's block times and identity's windows, both by day.
        client.app.state.platform.node.clock = daytime_clock  # type: ignore[attr-defined]
        client.app.state.guard.clock = daytime_clock  # type: ignore[attr-defined]
        identity_of(client).clock = daytime_clock
        api = Api(client, (tmp_path / "operator-token").read_text().strip())
        password = new_password()
        user_id = open_books(api, "split.payer", password)
        yield Payer(api, user_id, login_with_token(client, "split.payer", password))


def rules(response: Any) -> set[str]:
    return {reason.split(":")[0] for reason in response.json()["reasons"]}


def test_51_payments_of_999_99_in_one_batch_to_a_new_payee_need_a_step_up(payer: Payer) -> None:
    """The issue's attack: 50,999.49 CNY in one request, no fresh code."""
    items = [move(f"split-{n}", "p-alice", "p-carol", JUST_UNDER) for n in range(51)]
    response = payer.batch(items)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "step_up_required"
    assert {"new_payee", "large_transfer"} <= rules(response)
    assert payer.api.get("/api/v1/transfers/split-0").status_code == 404
    assert payer.balance() == FUNDS - 1
    assert payer.moved() == ()  # refused: nothing reserved
    # With a fresh code the same batch goes through, and counts once.
    payer.fresh_code()
    assert payer.batch(items).status_code == 200
    assert payer.balance() == FUNDS - 1 - 51 * JUST_UNDER
    assert payer.moved("p-carol") == (MovedAmount("CNY", 2, 51 * JUST_UNDER),)


def test_the_same_split_over_separate_requests_is_caught(payer: Payer) -> None:
    first = payer.pay(move("one-1", "p-alice", "p-carol", JUST_UNDER))
    assert first.status_code == 200, first.text
    second = payer.pay(move("one-2", "p-alice", "p-carol", JUST_UNDER))
    assert second.status_code == 401 and second.json()["code"] == "step_up_required"
    assert rules(second) == {"new_payee"}
    assert payer.api.get("/api/v1/transfers/one-2").status_code == 404
    # Two small batches are no better than two small transfers.
    batch = payer.batch([move("one-3", "p-alice", "p-carol", 100)])
    assert batch.status_code == 401 and rules(batch) == {"new_payee"}
    assert payer.moved() == (MovedAmount("CNY", 2, JUST_UNDER),)


def test_the_new_payee_rule_applies_to_a_batch_total(payer: Payer) -> None:
    """600.00 twice: each under 1,000.00, together over it; to a known payee it is allowed."""
    halves = [move(f"half-{n}", "p-alice", "p-carol", 60_000) for n in range(2)]
    refused = payer.batch(halves)
    assert refused.status_code == 401 and rules(refused) == {"new_payee"}
    known = [move(f"bob-{n}", "p-alice", "p-bob", 60_000) for n in range(2)]
    allowed = payer.batch(known)
    assert allowed.status_code == 200, allowed.text
    assert [r["result"] for r in allowed.json()["results"]] == ["ok", "ok"]
    # A known payee's batch above 50,000.00 together steps up too.
    large = payer.batch([move(f"big-{n}", "p-alice", "p-bob", 3_000_000) for n in range(2)])
    assert large.status_code == 401 and rules(large) == {"large_transfer"}


def test_the_maximum_is_refused_on_a_batch_and_on_a_24h_total(payer: Payer) -> None:
    payer.fresh_code()  # a deny is never lifted by a second factor
    batch = payer.batch([move(f"max-{n}", "p-alice", "p-bob", 60_000_000) for n in range(2)])
    assert batch.status_code == 403, batch.text
    assert batch.json()["code"] == "denied_by_policy"
    assert "transfer_over_limit" in rules(batch)
    first = payer.pay(move("max-a", "p-alice", "p-bob", 60_000_000))
    assert first.status_code == 200, first.text
    second = payer.pay(move("max-b", "p-alice", "p-bob", 50_000_000))
    assert second.status_code == 403 and second.json()["code"] == "denied_by_policy"
    assert payer.balance() == FUNDS - 1 - 60_000_000
    assert payer.moved() == (MovedAmount("CNY", 2, 60_000_000),)


def test_a_retry_counts_once_and_a_ledger_refusal_not_at_all(payer: Payer) -> None:
    body = move("retry-1", "p-alice", "p-carol", JUST_UNDER)
    first, again = payer.pay(body), payer.pay(body)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert payer.moved("p-carol") == (MovedAmount("CNY", 2, JUST_UNDER),)
    # The same id with another body: 409, nothing moved, nothing more counted.
    changed = payer.pay({**body, "amount": 100})
    assert changed.status_code == 409
    assert payer.moved("p-carol") == (MovedAmount("CNY", 2, JUST_UNDER),)
    # More than the account holds: the ledger refuses, the reservation is given back.
    payer.fresh_code()
    broke = payer.pay(move("retry-2", "p-alice", "p-bob", FUNDS + 10_000_000))
    assert broke.status_code == 422 and broke.json()["code"] == "exceeds_credits"
    assert payer.moved("p-bob") == ()
    # In a batch, only the refused item is given back.
    mixed = payer.batch(
        [
            move("retry-3", "p-alice", "p-bob", 500),
            move("retry-4", "p-alice", "p-bob", FUNDS + 10_000_000),
        ]
    )
    assert [r["result"] for r in mixed.json()["results"]] == ["ok", "exceeds_credits"]
    assert payer.moved("p-bob") == (MovedAmount("CNY", 2, 500),)


def test_concurrent_requests_do_not_slip_under_the_new_payee_threshold(payer: Payer) -> None:
    """Six payments of 999.99 at once to a new payee: one goes through, the rest step up."""
    start = threading.Barrier(6)
    statuses: list[int] = []

    def pay(n: int) -> None:
        start.wait()
        statuses.append(payer.pay(move(f"race-{n}", "p-alice", "p-carol", JUST_UNDER)).status_code)

    workers = [threading.Thread(target=pay, args=(n,)) for n in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(statuses) == [200] + [401] * 5
    assert payer.balance() == FUNDS - 1 - JUST_UNDER
    assert payer.moved("p-carol") == (MovedAmount("CNY", 2, JUST_UNDER),)


def test_counters_survive_a_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    password = new_password()
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, (tmp_path / "operator-token").read_text().strip())
        open_books(api, "restart.payer", password)
        headers = login_with_token(client, "restart.payer", password)
        body = move("before", "p-alice", "p-carol", JUST_UNDER)
        assert client.post("/api/v1/transfers", json=body, headers=headers).status_code == 200
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        body = move("after", "p-alice", "p-carol", JUST_UNDER)
        response = client.post("/api/v1/transfers", json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "step_up_required"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"id": "v-1", "debit_account_id": "p-alice", "credit_account_id": "p-carol"},
            "amount_must_be_integer",
        ),
        (
            {"id": "v-2", "debit_account_id": "p-alice", "amount": 10**8},
            "credit_account_id_invalid",
        ),
        (
            {
                "id": "v-3",
                "debit_account_id": "p-alice",
                "credit_account_id": "p-carol",
                "amount": 10**8,
            },
            "currency_invalid",
        ),
    ],
)
def test_a_malformed_payment_is_a_422_before_any_step_up(
    payer: Payer, body: dict[str, Any], code: str
) -> None:
    response = payer.pay(body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert payer.api.get(f"/api/v1/transfers/{body['id']}").status_code == 404


def test_a_batch_item_without_an_amount_is_a_422_naming_it(payer: Payer) -> None:
    items = [
        move("vb-1", "p-alice", "p-carol", 10**8),
        {"id": "vb-2", "debit_account_id": "p-alice", "credit_account_id": "p-carol"},
    ]
    response = payer.batch(items)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "amount_must_be_integer"
    assert problem["index"] == 1 and problem["id"] == "vb-2"
    assert payer.moved() == ()


def test_an_fx_payment_without_an_amount_is_a_422_before_any_step_up(payer: Payer) -> None:
    body = {
        "id": "fx-v",
        "quote_id": "no-such-quote",
        "debit_account_id": "p-alice",
        "credit_account_id": "bob-usd",
    }
    response = payer.api.client.post("/api/v1/fx/payments", json=body, headers=payer.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "amount_side_invalid"


def test_fx_payments_count_their_source_amount(payer: Payer) -> None:
    quote = {
        "id": "q-split",
        "source_currency": "CNY",
        "target_currency": "USD",
        "rate": "0.1385",
        "expires_at_ms": payer.api.platform.node.clock() + 600_000,
        "source_liquidity_account_id": "fx-cny",
        "target_liquidity_account_id": "fx-usd",
    }
    payer.api.ok("/api/v1/fx/quotes", quote)

    def pay_fx(payment_id: str, **amount: int) -> Any:
        body = {
            "id": payment_id,
            "quote_id": "q-split",
            "debit_account_id": "p-alice",
            "credit_account_id": "bob-usd",
            **amount,
        }
        return payer.api.client.post("/api/v1/fx/payments", json=body, headers=payer.headers)

    assert pay_fx("fx-1", source_amount=JUST_UNDER).status_code == 200
    split = pay_fx("fx-2", source_amount=JUST_UNDER)  # bob-usd is a new payee: 1,999.98 now
    assert split.status_code == 401 and rules(split) == {"new_payee"}
    # Sized by its target, the source amount is unknown beforehand: a fresh code, always.
    by_target = pay_fx("fx-3", target_amount=1_000)
    assert by_target.status_code == 401 and by_target.json()["code"] == "step_up_required"
    payer.fresh_code()
    paid = pay_fx("fx-3", target_amount=1_000)
    assert paid.status_code == 200, paid.text
    source = paid.json()["source_amount"]
    assert pay_fx("fx-3", target_amount=1_000).status_code == 200  # a retry counts once
    assert payer.moved("bob-usd") == (MovedAmount("CNY", 2, JUST_UNDER + source),)

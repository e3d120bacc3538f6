"""Client ids over the API: a conflict with another customer's transfer says only that the id is
taken; a pain.001 MsgId is accepted once per initiating party."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhijin.platform.app import create_app
from zhijin.platform.runtime import init_data_dir

from .test_api import Api, _settings, account, books, move

# Alice's transfer to Carol, with values no other part of the answer could contain by chance.
SECRET_AMOUNT = 4_321
SECRET_REFERENCE = "rent flat 9B march"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield Api(client, (tmp_path / "operator-token").read_text().strip())


def _customers(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    """Alice and Bob signed in, each with a funded account; Alice paid Carol `shared-1`."""
    from tests.platform.users import me, register_and_login

    books(api)
    alice = register_and_login(api.client)
    bob = register_and_login(api.client)
    alice_did, bob_did = me(api.client, alice)["did"], me(api.client, bob)["did"]
    for body in (
        account("c-alice", alice_did),
        account("c-bob", bob_did),
        account("c-carol", "did:key:z6MkApiCarol"),
    ):
        api.ok("/api/v1/accounts", body)
    api.ok("/api/v1/transfers", move("c-dep-a", "settle-cny", "c-alice", 50_000))
    api.ok("/api/v1/transfers", move("c-dep-b", "settle-cny", "c-bob", 50_000))
    secret = move("shared-1", "c-alice", "c-carol", SECRET_AMOUNT, reference=SECRET_REFERENCE)
    paid = api.client.post("/api/v1/transfers", json=secret, headers=alice)
    assert paid.status_code == 200, paid.text
    return alice, bob


def _reveals_nothing(text: str) -> None:
    for secret in ("c-alice", "c-carol", str(SECRET_AMOUNT), SECRET_REFERENCE, "differs"):
        assert secret not in text, (secret, text)
    for field in ("debit_account_id", "credit_account_id", "amount", "reference"):
        assert field not in text, (field, text)


def test_reusing_another_customers_transfer_id_says_only_that_it_is_taken(api: Api) -> None:
    alice, bob = _customers(api)
    client = api.client
    mine = move("shared-1", "c-bob", "c-alice", 10)

    single = client.post("/api/v1/transfers", json=mine, headers=bob)
    assert single.status_code == 409
    assert single.json()["code"] == "transfer_id_taken"
    _reveals_nothing(single.text)

    batch = client.post("/api/v1/transfers/batch", json={"transfers": [mine]}, headers=bob)
    assert batch.status_code == 200, batch.text
    assert [r["result"] for r in batch.json()["results"]] == ["transfer_id_taken"]
    _reveals_nothing(batch.text)

    # A hold Bob may capture (he is its payee): posting it under Alice's id is refused alike.
    hold = move("c-hold", "c-alice", "c-bob", 30, flags=["pending"])
    assert client.post("/api/v1/transfers", json=hold, headers=alice).status_code == 200
    for action in ("post", "void"):
        resolved = client.post(
            f"/api/v1/transfers/c-hold/{action}", json={"id": "shared-1"}, headers=bob
        )
        assert resolved.status_code == 409, resolved.text
        assert resolved.json()["code"] == "transfer_id_taken"
        _reveals_nothing(resolved.text)

    # Nothing moved: Bob's account and Carol's are as they were.
    assert api.get("/api/v1/accounts/c-bob").json()["balance_posted"] == 50_000
    assert api.get("/api/v1/accounts/c-carol").json()["balance_posted"] == SECRET_AMOUNT


def test_an_fx_payment_under_another_customers_id_says_only_that_it_is_taken(api: Api) -> None:
    _alice, bob = _customers(api)
    quote = {
        "id": "q-ids",
        "source_currency": "CNY",
        "target_currency": "USD",
        "rate": "0.1385",
        "expires_at_ms": api.platform.node.clock() + 600_000,
        "source_liquidity_account_id": "fx-cny",
        "target_liquidity_account_id": "fx-usd",
    }
    api.ok("/api/v1/fx/quotes", quote)
    payment = {
        "id": "shared-1",
        "quote_id": "q-ids",
        "debit_account_id": "c-bob",
        "credit_account_id": "bob-usd",
        "source_amount": 1_000,
    }
    refused = api.client.post("/api/v1/fx/payments", json=payment, headers=bob)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "transfer_id_taken"
    _reveals_nothing(refused.text)
    # The operator may read every transfer, so it gets the precise answer.
    precise = api.post("/api/v1/fx/payments", payment)
    assert precise.status_code == 409 and precise.json()["code"] == "exists_with_different_fields"


def _precise(response: Any) -> str:
    assert response.status_code == 409, response.text
    problem: dict[str, Any] = response.json()
    assert problem["code"] == "exists_with_different_fields"
    detail: str = problem["detail"]
    return detail


def test_whoever_may_read_the_transfer_keeps_the_precise_conflict(api: Api) -> None:
    alice, _bob = _customers(api)
    changed = move("shared-1", "c-alice", "c-carol", SECRET_AMOUNT + 1, reference=SECRET_REFERENCE)
    own = api.client.post("/api/v1/transfers", json=changed, headers=alice)
    assert "amount" in _precise(own) and "reference" not in _precise(own)
    operator = api.post("/api/v1/transfers", move("shared-1", "settle-cny", "c-carol", 5))
    assert "debit_account_id" in _precise(operator)
    batch = api.client.post("/api/v1/transfers/batch", json={"transfers": [changed]}, headers=alice)
    (item,) = batch.json()["results"]
    assert item["result"] == "exists_with_different_fields" and "amount" in item["message"]
    # The same body again is still a replay, not a conflict.
    same = move("shared-1", "c-alice", "c-carol", SECRET_AMOUNT, reference=SECRET_REFERENCE)
    replay = api.client.post("/api/v1/transfers", json=same, headers=alice)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"

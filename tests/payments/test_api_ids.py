"""Client ids over the API: a conflict with another customer's transfer says only that the id is
taken; a pain.001 MsgId is accepted once per initiating party."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir

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


# -- pain.001: a MsgId is accepted once per initiating party ---------------------------------------

XML_HEADERS = {"Content-Type": "application/xml"}


def _file(message_id: str, ends: list[str], party_id: str | None = None, amount: str = "10.00"):
    from .pain001 import Pain001, PaymentInfo, Tx, build

    transactions = [
        Tx(end, amount, "CNY", creditor_iban=None, creditor_other_id="bob-cny") for end in ends
    ]
    return build(
        Pain001(
            message_id=message_id,
            payments=[
                PaymentInfo("PMT-1", transactions, debtor_iban=None, debtor_other_id="alice-cny")
            ],
            initiating_party_id=party_id,
        )
    )


def _upload(api: Api, xml: bytes, **params: Any) -> Any:
    headers = {**api.headers, **XML_HEADERS}
    return api.client.post(
        "/api/v1/payments/iso20022/pain001", content=xml, headers=headers, params=params
    )


def _balances(api: Api) -> tuple[int, int]:
    alice = api.get("/api/v1/accounts/alice-cny").json()["balance_posted"]
    bob = api.get("/api/v1/accounts/bob-cny").json()["balance_posted"]
    return alice, bob


def _booked(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [b["end_to_end_id"] for b in response.json()["booked"]]


def _refused_reused(response: Any, *, same_file: bool) -> None:
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "msg_id_reused"
    assert problem["same_file"] is same_file and problem["first_height"] >= 1


def test_a_corrected_resend_under_the_same_msg_id_is_refused_and_books_nothing(api: Api) -> None:
    books(api)
    assert _booked(_upload(api, _file("MSG-A", ["E-1", "E-2"]))) == ["E-1", "E-2"]
    before = _balances(api)
    assert before == (100_000 - 2_000, 2_000)
    # The case: the same MsgId, every end-to-end id changed.
    _refused_reused(_upload(api, _file("MSG-A", ["E-1b", "E-2b"])), same_file=False)
    # Another amount, linked this time: refused all the same.
    _refused_reused(
        _upload(api, _file("MSG-A", ["E-3"], amount="1.00"), linked="true"), same_file=False
    )
    # The very same bytes again: refused too, saying it is the file booked the first time.
    _refused_reused(_upload(api, _file("MSG-A", ["E-1", "E-2"])), same_file=True)
    assert _balances(api) == before
    # A new MsgId books.
    assert _booked(_upload(api, _file("MSG-B", ["E-1", "E-2"]))) == ["E-1", "E-2"]
    assert _balances(api) == (100_000 - 4_000, 4_000)


def test_a_file_with_nothing_to_book_still_uses_its_msg_id(api: Api) -> None:
    books(api)
    nothing = _upload(api, _file("MSG-N", ["E-1"], amount="5000.00"))  # exceeds_credits
    assert _booked(nothing) == []
    assert [r["code"] for r in nothing.json()["rejected"]] == ["exceeds_credits"]
    _refused_reused(_upload(api, _file("MSG-N", ["E-1"], amount="1.00")), same_file=False)
    assert _balances(api) == (100_000, 0)


def test_two_initiating_parties_may_use_the_same_msg_id_once_each(api: Api) -> None:
    books(api)
    first = _upload(api, _file("MSG-P", ["E-1"], party_id="91310000MA1FL1XQ5B"))
    second = _upload(api, _file("MSG-P", ["E-1"], party_id="91110000802100433B"))
    assert _booked(first) == _booked(second) == ["E-1"]
    ids = {r.json()["booked"][0]["transfer_id"] for r in (first, second)}
    assert len(ids) == 2  # same MsgId, PmtInfId and EndToEndId: still two transfers
    assert _balances(api) == (100_000 - 2_000, 2_000)
    _refused_reused(
        _upload(api, _file("MSG-P", ["E-9"], party_id="91310000MA1FL1XQ5B")), same_file=False
    )
    # No party id: the uploader is the party, a key of its own.
    assert _booked(_upload(api, _file("MSG-P", ["E-1"]))) == ["E-1"]
    assert _balances(api) == (100_000 - 3_000, 3_000)


def test_a_file_of_several_parts_claims_its_msg_id_in_its_first_part(api: Api) -> None:
    books(api)
    api.ok("/api/v1/transfers", move("dep-more", "settle-cny", "alice-cny", 1_000_000))
    ends = [f"E-{index}" for index in range(150)]
    booked = _booked(_upload(api, _file("MSG-BIG", ends, amount="0.01")))
    assert booked == ends  # two parts, both booked
    _refused_reused(_upload(api, _file("MSG-BIG", ends[:120], amount="0.01")), same_file=False)
    assert _balances(api)[1] == 150


def test_concurrent_files_under_one_msg_id_book_only_one(api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    books(api)
    files = [_file("MSG-RACE", [f"R{n}-1", f"R{n}-2"]) for n in range(4)]
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        responses = list(pool.map(lambda xml: _upload(api, xml), files))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "msg_id_reused"
    assert _balances(api) == (100_000 - 2_000, 2_000)


def test_a_used_msg_id_stays_used_after_a_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    token = (tmp_path / "operator-token").read_text().strip()
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, token)
        books(api)
        assert _booked(_upload(api, _file("MSG-R", ["E-1"]))) == ["E-1"]
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        api = Api(client, token)
        _refused_reused(_upload(api, _file("MSG-R", ["E-2"])), same_file=False)
        assert _balances(api) == (100_000 - 1_000, 1_000)


def test_the_same_file_after_an_import_stopped_between_parts_books_only_the_rest(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhijin.chain.errors import Unavailable
    from zhijin.payments import service

    books(api)
    api.ok("/api/v1/transfers", move("dep-more", "settle-cny", "alice-cny", 1_000_000))
    real_submit = service._submit

    def stop_before_part_1(*args: Any, **kwargs: Any) -> Any:
        if args[2] == "import_transfers" and args[3]["message"]["part"] == 1:
            raise Unavailable("commit_timeout", "the tx was not committed in time")
        return real_submit(*args, **kwargs)

    ends = [f"E-{index}" for index in range(150)]
    xml = _file("MSG-STOP", ends, amount="0.01")
    with monkeypatch.context() as patch:
        patch.setattr(service, "_submit", stop_before_part_1)
        stopped = _upload(api, xml)
    assert stopped.status_code == 503, stopped.text
    assert _balances(api)[1] == 100  # part 0 only
    # Another file under the MsgId is still refused, saying the first stopped midway.
    other = _upload(api, _file("MSG-STOP", ["X-1"], amount="0.01"))
    _refused_reused(other, same_file=False)
    assert (other.json()["parts_booked"], other.json()["parts"]) == (1, 2)
    # The same bytes complete it: part 1 is booked, part 0 answered as it was the first time.
    resumed = _upload(api, xml)
    assert _booked(resumed) == ends
    assert resumed.json()["resumed_from_part"] == 1
    assert not any(b["exists"] for b in resumed.json()["booked"])
    assert _balances(api)[1] == 150
    _refused_reused(_upload(api, xml), same_file=True)
    assert _balances(api)[1] == 150


# -- one limit for a transfer id: the contract's -------------------------------------------------


def test_a_transfer_id_at_the_limits_works_end_to_end_and_one_past_is_refused_alike(
    api: Api,
) -> None:
    """A client id of ID_CHARS_MAX books and reads back; the read path takes any transfer id
    up to TRANSFER_ID_CHARS_MAX (a leg's `<id>~fee` included), as the contract's `get_transfer`
    does, and refuses one past it with the contract's code (test_transfers pins the contract)."""
    from zhijin.payments import limits

    books(api)
    api.ok("/api/v1/accounts", account("c-long", "did:key:z6MkApiLong"))
    longest = "t" * limits.ID_CHARS_MAX
    booked = api.ok("/api/v1/transfers", move(longest, "settle-cny", "c-long", 7))
    assert booked["transfer"]["id"] == longest
    assert api.get(f"/api/v1/transfers/{longest}").json()["amount"] == 7
    at_limit = api.get("/api/v1/transfers/" + "t" * limits.TRANSFER_ID_CHARS_MAX)
    assert (at_limit.status_code, at_limit.json()["code"]) == (404, "transfer_not_found")
    past = api.get("/api/v1/transfers/" + "t" * (limits.TRANSFER_ID_CHARS_MAX + 1))
    assert (past.status_code, past.json()["code"]) == (422, "id_invalid")
    too_long = api.post(
        "/api/v1/transfers", move("t" * (limits.ID_CHARS_MAX + 1), "settle-cny", "c-long", 7)
    )
    assert too_long.status_code == 422

"""The payments HTTP API over a real node: operator paths, idempotency, strict types, holds,
FX with pacs.008, statements with camt.053, pain.001 import, trial balance, reindex, demo."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments import iso20022 as iso
from zhijin.payments import service
from zhijin.payments.demo import demo_account_id, seed_payments_demo
from zhijin.payments.invariants import check_invariants
from zhijin.payments.projection import COUNTERS

from .pain001 import Pain001, PaymentInfo, Tx, build

ALICE = "did:key:z6MkApiAlice"
BOB = "did:key:z6MkApiBob"


class Api:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    @property
    def platform(self) -> Platform:
        return self.client.app.state.platform  # type: ignore[attr-defined,no-any-return]

    @property
    def member(self) -> str:
        return self.platform.node.key.did

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def _settings(data: Path, database_url: str | None = None) -> Settings:
    return Settings(
        data=data, block_interval_ms=5, database_url=database_url, password_hashing="test"
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield Api(client, (tmp_path / "operator-token").read_text().strip())


def account(account_id: str, owner: str, code: str = "CNY", kind: str = "customer") -> dict:
    return {"id": account_id, "owner": owner, "currency": code, "kind": kind}


def move(transfer_id: str, debit: str, credit: str, amount: int, code: str = "CNY", **extra: Any):
    return {
        "id": transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": code,
        **extra,
    }


def books(api: Api) -> None:
    for code in ("CNY", "USD"):
        c = code.lower()
        for body in (
            account(f"settle-{c}", api.member, code, "settlement"),
            account(f"fx-{c}", api.member, code, "fx_liquidity"),
            account(f"fee-{c}", api.member, code, "fee"),
            account(f"alice-{c}", ALICE, code),
            account(f"bob-{c}", BOB, code),
        ):
            api.ok("/api/v1/accounts", body)
        api.ok(
            "/api/v1/transfers", move(f"dep-alice-{c}", f"settle-{c}", f"alice-{c}", 100_000, code)
        )
        api.ok("/api/v1/transfers", move(f"dep-fx-{c}", f"settle-{c}", f"fx-{c}", 10_000_000, code))


def assert_projection_matches_chain(platform: Platform) -> None:
    """Every projected account's counters equal the chain's, and the chain's books hold."""
    with platform.store.read() as conn:
        state = service._CommittedState(platform, conn)
        assert check_invariants(state) == []
        page = service.list_accounts(platform, limit=500)
        assert page["next_after_id"] is None
        for projected in page["accounts"]:
            stored = state.get(f"payments/account/{projected['id']}")
            assert stored is not None
            assert {k: projected[k] for k in (*COUNTERS, "status")} == {
                k: stored[k] for k in (*COUNTERS, "status")
            }
    chain = service.trial_balance(platform, source="chain")
    projected_totals = service.trial_balance(platform)
    assert chain["balanced"] and chain["currencies"] == projected_totals["currencies"]
    assert chain["ok"] and projected_totals["ok"], chain["projections"]  # every row as on chain


def test_operator_token_is_required(api: Api) -> None:
    response = api.client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "session_invalid"


def test_transfers_statements_and_balances(api: Api) -> None:
    books(api)
    for index in range(7):
        api.ok("/api/v1/transfers", move(f"t-{index}", "alice-cny", "bob-cny", 1_000 + index))
    alice = api.get("/api/v1/accounts/alice-cny").json()
    spent = sum(1_000 + i for i in range(7))
    assert alice["balance_posted"] == alice["available"] == 100_000 - spent
    first = api.get("/api/v1/accounts/alice-cny/statement", params={"limit": 5}).json()
    assert [e["entry_no"] for e in first["entries"]] == [1, 2, 3, 4, 5]
    assert first["next_after_entry"] == 5
    rest = api.get(
        "/api/v1/accounts/alice-cny/statement", params={"after_entry": 5, "limit": 5}
    ).json()
    assert [e["entry_no"] for e in rest["entries"]] == [6, 7, 8]
    assert rest["next_after_entry"] is None
    entries = first["entries"] + rest["entries"]
    running = 0
    for entry in entries:
        running += entry["amount"] if entry["direction"] == "credit" else -entry["amount"]
        assert entry["balance"] == running
    assert running == alice["balance_posted"]
    too_big = api.get("/api/v1/accounts/alice-cny/statement", params={"limit": 501})
    assert too_big.status_code == 422
    listing = api.get("/api/v1/accounts", params={"owner": ALICE}).json()
    assert [a["id"] for a in listing["accounts"]] == ["alice-cny", "alice-usd"]
    missing = api.get("/api/v1/accounts/nobody")
    assert missing.status_code == 404 and missing.json()["code"] == "account_not_found"
    assert_projection_matches_chain(api.platform)


def test_retry_gets_the_same_answer_and_a_changed_body_gets_409(api: Api) -> None:
    books(api)
    body = move("pay-1", "alice-cny", "bob-cny", 2_500, reference="invoice 7")
    first = api.post("/api/v1/transfers", body)
    again = api.post("/api/v1/transfers", body)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.headers["Idempotent-Replayed"] == "false"
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = api.post("/api/v1/transfers", {**body, "amount": 2_501})
    assert changed.status_code == 409
    assert changed.headers["content-type"].startswith("application/problem+json")
    problem = changed.json()
    assert problem["code"] == "exists_with_different_fields" and "amount" in problem["detail"]
    assert api.get("/api/v1/accounts/alice-cny").json()["balance_posted"] == 97_500


@pytest.mark.parametrize("amount", [2.5, 100.0, True, "100", None, 0, -5, 2**63])
def test_amounts_are_json_integers_only(api: Api, amount: Any) -> None:
    books(api)
    response = api.post("/api/v1/transfers", move("bad", "alice-cny", "bob-cny", amount))
    assert response.status_code == 422
    # null means "not given": the model lets it through and the contract names what is missing.
    expected = "amount_must_be_integer" if amount is None else "invalid_request"
    assert response.json()["code"] == expected
    assert api.get("/api/v1/transfers/bad").status_code == 404
    assert api.get("/api/v1/accounts/alice-cny").json()["balance_posted"] == 100_000


def test_contract_refusals_keep_their_codes(api: Api) -> None:
    books(api)
    cases = [
        (move("x1", "alice-cny", "bob-cny", 10**9), 422, "exceeds_credits"),
        (move("x2", "alice-cny", "nobody", 5), 404, "credit_account_not_found"),
        (move("x3", "alice-cny", "bob-usd", 5), 422, "currency_mismatch"),
        (move("x4", "alice-cny", "bob-cny", 5, "XXX"), 422, "currency_invalid"),
        (move("x5", "alice-cny", "bob-cny", 5, product="nope"), 404, "fee_schedule_not_found"),
    ]
    for body, status, code in cases:
        response = api.post("/api/v1/transfers", body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert_projection_matches_chain(api.platform)


def test_batch_with_a_linked_chain(api: Api) -> None:
    books(api)
    result = api.ok(
        "/api/v1/transfers/batch",
        {
            "transfers": [
                move("b-1", "alice-cny", "bob-cny", 100, flags=["linked"]),
                move("b-2", "alice-cny", "bob-cny", 10**9),
                move("b-3", "alice-cny", "bob-cny", 300),
            ]
        },
    )
    assert [r["result"] for r in result["results"]] == [
        "linked_event_failed",
        "exceeds_credits",
        "ok",
    ]
    assert api.get("/api/v1/transfers/b-1").status_code == 404
    assert api.get("/api/v1/accounts/bob-cny").json()["balance_posted"] == 300
    empty = api.post("/api/v1/transfers/batch", {"transfers": []})
    assert empty.status_code == 422


def test_holds_post_void_and_expire(api: Api) -> None:
    books(api)
    api.ok("/api/v1/transfers", move("h-1", "alice-cny", "bob-cny", 10_000, flags=["pending"]))
    api.ok("/api/v1/transfers", move("h-2", "alice-cny", "bob-cny", 20_000, flags=["pending"]))
    alice = api.get("/api/v1/accounts/alice-cny").json()
    assert alice["available"] == 70_000 and alice["balance_posted"] == 100_000
    posted = api.ok("/api/v1/transfers/h-1/post", {"id": "h-1-post", "amount": 4_000})
    assert posted["transfer"]["amount"] == 4_000
    again = api.post("/api/v1/transfers/h-1/post", {"id": "h-1-post-again"})
    assert again.status_code == 422 and again.json()["code"] == "pending_transfer_already_posted"
    api.ok("/api/v1/transfers/h-2/void", {"id": "h-2-void"})
    assert api.get("/api/v1/transfers/h-1").json()["hold"]["hold_status"] == "posted"
    assert api.get("/api/v1/transfers/h-2").json()["hold"]["hold_status"] == "voided"
    api.ok(
        "/api/v1/transfers",
        move("h-3", "alice-cny", "bob-cny", 5_000, flags=["pending"], timeout_ms=1),
    )
    time.sleep(0.01)
    api.ok("/api/v1/transfers", move("tick", "alice-cny", "bob-cny", 1))  # a later block
    held = api.get("/api/v1/transfers/h-3").json()["hold"]
    assert held["hold_status"] == "expired" and held["resolved_by"] is None
    alice = api.get("/api/v1/accounts/alice-cny").json()
    assert alice["debits_pending"] == 0 and alice["balance_posted"] == 100_000 - 4_000 - 1
    assert_projection_matches_chain(api.platform)


def test_fx_quote_payment_and_pacs008(api: Api) -> None:
    books(api)
    quote = {
        "id": "q-1",
        "source_currency": "CNY",
        "target_currency": "USD",
        "rate": "0.1385",
        "spread_bps": 30,
        "expires_at_ms": api.platform.node.clock() + 600_000,
        "source_liquidity_account_id": "fx-cny",
        "target_liquidity_account_id": "fx-usd",
        "spread_account_id": "fee-cny",
    }
    created = api.ok("/api/v1/fx/quotes", quote)
    assert created["quote"]["used_target_amount"] == 0
    float_rate = api.post("/api/v1/fx/quotes", {**quote, "rate": 0.1385})
    assert float_rate.status_code == 422
    payment = {
        "id": "fx-1",
        "quote_id": "q-1",
        "debit_account_id": "alice-cny",
        "credit_account_id": "bob-usd",
        "source_amount": 10_000,
    }
    paid = api.ok("/api/v1/fx/payments", payment)
    assert paid["target_amount"] == api.get("/api/v1/accounts/bob-usd").json()["balance_posted"]
    assert api.post("/api/v1/fx/payments", payment).json() == paid
    quote_now = api.get("/api/v1/fx/quotes/q-1").json()
    assert quote_now["used_target_amount"] == paid["target_amount"]
    response = api.get(
        "/api/v1/transfers/fx-1/pacs008",
        params={"debtor_agent_bic": "HXCBCNSHXXX", "creditor_agent_bic": "CHASUS33XXX"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"}
    settled = root.find(".//p:IntrBkSttlmAmt", ns)
    assert settled is not None and settled.get("Ccy") == "USD"
    assert settled.text == iso.Amount.of(paid["target_amount"], "USD").text()
    not_fx = api.get(
        "/api/v1/transfers/dep-alice-cny/pacs008",
        params={"debtor_agent_bic": "HXCBCNSHXXX", "creditor_agent_bic": "CHASUS33XXX"},
    )
    assert not_fx.status_code == 422 and not_fx.json()["code"] == "not_cross_border"
    assert_projection_matches_chain(api.platform)


def test_camt053_statement(api: Api) -> None:
    books(api)
    start = api.platform.node.head.time_ms + 1
    api.ok("/api/v1/transfers", move("c-1", "alice-cny", "bob-cny", 1_234, reference="rent"))
    api.ok("/api/v1/transfers", move("c-2", "bob-cny", "alice-cny", 234))
    end = api.platform.node.head.time_ms + 1
    response = api.get(
        "/api/v1/accounts/alice-cny/camt053", params={"from_ms": start, "to_ms": end}
    )
    assert response.status_code == 200, response.text
    ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}
    root = ET.fromstring(response.content)
    entries = root.findall(".//c:Ntry", ns)
    assert [e.find("c:CdtDbtInd", ns).text for e in entries] == ["DBIT", "CRDT"]  # type: ignore[union-attr]
    balances = {
        b.find("c:Tp/c:CdOrPrtry/c:Cd", ns).text: b.find("c:Amt", ns).text  # type: ignore[union-attr]
        for b in root.findall(".//c:Bal", ns)
    }
    assert balances == {"OPBD": "1000.00", "CLBD": "990.00"}
    bad = api.get("/api/v1/accounts/alice-cny/camt053", params={"from_ms": end, "to_ms": start})
    assert bad.status_code == 422 and bad.json()["code"] == "period_invalid"


def test_pain001_import_names_every_rejection(api: Api) -> None:
    books(api)
    document = Pain001(
        message_id="MSG-1",
        payments=[
            PaymentInfo(
                "PMT-1",
                [
                    Tx("E2E-1", "10.00", "CNY", creditor_iban=None, creditor_other_id="bob-cny"),
                    Tx("E2E-2", "1.234", "CNY", creditor_iban=None, creditor_other_id="bob-cny"),
                    Tx("E2E-3", "5.00", "CNY", creditor_iban=None, creditor_other_id="ghost"),
                    Tx("E2E-4", "5000.00", "CNY", creditor_iban=None, creditor_other_id="bob-cny"),
                ],
                debtor_iban=None,
                debtor_other_id="alice-cny",
            )
        ],
    )
    xml = build(document)
    headers = {**api.headers, "Content-Type": "application/xml"}
    response = api.client.post("/api/v1/payments/iso20022/pain001", content=xml, headers=headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [b["end_to_end_id"] for b in result["booked"]] == ["E2E-1"]
    assert {r["end_to_end_id"]: r["code"] for r in result["rejected"]} == {
        "E2E-2": "amount_precision",
        "E2E-3": "creditor_account_unknown",
        "E2E-4": "exceeds_credits",
    }
    again = api.client.post("/api/v1/payments/iso20022/pain001", content=xml, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "msg_id_reused"
    assert again.json()["same_file"] is True
    assert api.get("/api/v1/accounts/bob-cny").json()["balance_posted"] == 1_000
    linked = api.client.post(
        "/api/v1/payments/iso20022/pain001",
        content=build(Pain001(message_id="MSG-2", payments=document.payments)),
        headers=headers,
        params={"linked": "true"},
    ).json()
    assert linked["booked"] == []
    codes = {r["end_to_end_id"]: r["code"] for r in linked["rejected"]}
    assert codes["E2E-1"] == "linked_event_failed" and codes["E2E-4"] == "exceeds_credits"
    broken = api.client.post(
        "/api/v1/payments/iso20022/pain001", content=b"<not-xml", headers=headers
    )
    assert broken.status_code == 422 and broken.json()["code"] == "pain001_invalid"


ALICE_IBAN = "GB82 WEST 1234 5698 7654 32"  # as people write it: spaces, any case
BOB_IBAN = "DE89370400440532013000"


def _platform_text(platform: Platform) -> str:
    """Every row of every table of the platform database, as text."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(platform.platform_engine)
    with platform.platform_engine.connect() as conn:
        return repr([conn.execute(table.select()).all() for table in metadata.sorted_tables])


def test_pain001_names_accounts_by_the_iban_directory(api: Api) -> None:
    books(api)
    first = api.client.put(
        "/api/v1/accounts/alice-cny/iban", json={"iban": ALICE_IBAN.lower()}, headers=api.headers
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"account_id": "alice-cny", "iban": "GB**5432", "registered": True}
    again = api.client.put(
        "/api/v1/accounts/alice-cny/iban", json={"iban": ALICE_IBAN}, headers=api.headers
    )
    assert again.json()["registered"] is False  # idempotent
    put = api.client.put(
        "/api/v1/accounts/bob-cny/iban", json={"iban": BOB_IBAN}, headers=api.headers
    )
    assert put.status_code == 200
    taken = api.client.put(
        "/api/v1/accounts/bob-usd/iban", json={"iban": BOB_IBAN}, headers=api.headers
    )
    assert taken.status_code == 409 and taken.json()["code"] == "iban_taken"
    for bad, status, code in [
        ({"iban": "DE89370400440532013001"}, 422, "iban_invalid"),  # checksum
        ({"iban": "XX89370400440532013000"}, 422, "iban_invalid"),  # no such country
        ({"iban": 89370400440532013000}, 422, None),
        ({}, 422, None),
        ({"iban": "D" * 100}, 422, None),
    ]:
        refused = api.client.put("/api/v1/accounts/bob-usd/iban", json=bad, headers=api.headers)
        assert refused.status_code == status, (bad, refused.text)
        if code is not None:
            assert refused.json()["code"] == code
    missing = api.client.put(
        "/api/v1/accounts/ghost/iban", json={"iban": BOB_IBAN}, headers=api.headers
    )
    assert missing.status_code == 404
    assert api.get("/api/v1/accounts/bob-cny/iban").json()["iban"] == "DE**3000"
    assert api.get("/api/v1/accounts/bob-usd/iban").json()["iban"] is None

    def upload(message_id: str) -> dict[str, Any]:
        document = Pain001(
            message_id=message_id,
            payments=[
                PaymentInfo(
                    "PMT-1",
                    [
                        Tx("I-1", "10.00", "CNY", creditor_iban=BOB_IBAN),
                        Tx("I-2", "1.00", "CNY", creditor_iban="NL91ABNA0417164300"),
                    ],
                    debtor_iban=ALICE_IBAN.replace(" ", ""),
                )
            ],
        )
        headers = {**api.headers, "Content-Type": "application/xml"}
        response = api.client.post(
            "/api/v1/payments/iso20022/pain001", content=build(document), headers=headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    result = upload("IBAN-1")
    assert [b["end_to_end_id"] for b in result["booked"]] == ["I-1"]
    assert [(r["end_to_end_id"], r["code"]) for r in result["rejected"]] == [
        ("I-2", "creditor_account_unknown")
    ]
    assert api.get("/api/v1/accounts/bob-cny").json()["balance_posted"] == 1_000
    head_ms = api.platform.node.head.time_ms
    camt = api.get("/api/v1/accounts/bob-cny/camt053", params={"from_ms": 0, "to_ms": head_ms + 1})
    assert camt.status_code == 200 and f"<IBAN>{BOB_IBAN}</IBAN>" in camt.text

    # Sealed at rest: no table of the platform database holds the numbers in the clear.
    stored = _platform_text(api.platform)
    assert BOB_IBAN not in stored and ALICE_IBAN.replace(" ", "") not in stored
    audited = [
        e
        for e in api.platform.identity.audit.entries(after_seq=0, limit=1000)
        if e.action.startswith("payments.iban.")
    ]
    assert [(e.action, e.target, e.actor) for e in audited] == [
        ("payments.iban.register", "account:alice-cny", "operator"),
        ("payments.iban.register", "account:bob-cny", "operator"),
    ]
    assert audited[1].details == {"iban": "DE**3000"}

    removed = api.client.delete("/api/v1/accounts/bob-cny/iban", headers=api.headers)
    assert removed.json() == {"account_id": "bob-cny", "removed": True}
    assert api.client.delete("/api/v1/accounts/bob-cny/iban", headers=api.headers).json() == {
        "account_id": "bob-cny",
        "removed": False,
    }
    after = upload("IBAN-2")
    assert after["booked"] == []
    assert {r["code"] for r in after["rejected"]} == {"creditor_account_unknown"}
    moved = api.client.put(
        "/api/v1/accounts/bob-usd/iban", json={"iban": BOB_IBAN}, headers=api.headers
    )
    assert moved.status_code == 200 and moved.json()["registered"] is True


def test_only_custodian_staff_name_accounts_by_iban_and_one_iban_names_one_account(
    api: Api,
) -> None:
    import threading

    from tests.platform.users import create_staff, me, register_and_login
    from zhijin.identity.rbac import Role

    books(api)
    alice = register_and_login(api.client)
    api.ok("/api/v1/accounts", account("own-alice", me(api.client, alice)["did"]))
    mine = api.client.put("/api/v1/accounts/own-alice/iban", json={"iban": BOB_IBAN}, headers=alice)
    assert mine.status_code == 403, mine.text
    assert api.client.get("/api/v1/accounts/own-alice/iban", headers=alice).json()["iban"] is None
    officer = create_staff(api.client, roles={Role.BANK_OFFICER})
    done = api.client.put(
        "/api/v1/accounts/own-alice/iban", json={"iban": BOB_IBAN}, headers=officer
    )
    assert done.status_code == 200, done.text
    assert api.client.get("/api/v1/accounts/own-alice/iban", headers=alice).json() == {
        "account_id": "own-alice",
        "iban": "DE**3000",
    }

    # Eight accounts race for one IBAN: exactly one gets it.
    contested = "FR1420041010050500013M02606"
    for n in range(8):
        api.ok("/api/v1/accounts", account(f"race-{n}", BOB))
    codes: list[int] = []

    def claim(n: int) -> None:
        response = api.client.put(
            f"/api/v1/accounts/race-{n}/iban", json={"iban": contested}, headers=api.headers
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 7
    holders = [
        n for n in range(8) if api.get(f"/api/v1/accounts/race-{n}/iban").json()["iban"] is not None
    ]
    assert len(holders) == 1


def test_trial_balance_and_reindex_rebuild_the_same_tables(api: Api) -> None:
    books(api)
    api.ok("/api/v1/transfers", move("r-1", "alice-cny", "bob-cny", 700, flags=["pending"]))
    api.ok("/api/v1/transfers", move("r-2", "alice-cny", "bob-cny", 300))
    tb = api.get("/api/v1/payments/trial-balance").json()
    assert tb["balanced"] and {c["currency"] for c in tb["currencies"]} == {"CNY", "USD"}
    cny = next(c for c in tb["currencies"] if c["currency"] == "CNY")
    assert cny["debits_pending"] == cny["credits_pending"] == 700
    chain = api.get("/api/v1/payments/trial-balance", params={"source": "chain"}).json()
    assert chain["currencies"] == tb["currencies"]
    platform = api.platform
    before = _dump(platform)
    platform.projections.stop()
    platform.projections.reindex()
    assert _dump(platform) == before


def _dump(platform: Platform) -> dict[str, list[Any]]:
    from zhijin.payments import projection

    tables = {}
    with platform.platform_engine.connect() as conn:
        for table in projection.metadata.sorted_tables:
            rows = conn.execute(table.select()).all()
            tables[table.name] = sorted(tuple(row) for row in rows)
    return tables


def test_demo_seeds_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    init_data_dir(settings, members=1)
    owners = {
        "alice": "did:key:z6MkDemoAlice",
        "bob": "did:key:z6MkDemoBob",
        "shop": "did:key:z6MkDemoShop",
    }
    with Platform(settings) as platform:
        seeded = seed_payments_demo(platform, owners)
        assert "demo-xborder-1" in seeded.transfers
        state = _payments_state(platform)
        tables = _dump(platform)
        again = seed_payments_demo(platform, owners)
        assert again == seeded
        assert _payments_state(platform) == state
        assert _dump(platform) == tables
        shop = service.get_account(platform, account_id=demo_account_id("shop-shop", "cny"))
        assert shop["balance_posted"] == 45_000
        assert_projection_matches_chain(platform)


def _payments_state(platform: Platform) -> list[tuple[str, Any]]:
    from zhijin.payments.queries import scan_all

    with platform.store.read() as conn:
        return list(scan_all(service._CommittedState(platform, conn), "payments/"))


# -- end users and staff through the identity domain ----------------------------------------------


def test_customers_pay_from_their_own_accounts_only(api: Api) -> None:
    from tests.platform.users import create_staff, me, register_and_login
    from zhijin.identity.rbac import Role

    books(api)
    alice = register_and_login(api.client)
    bob = register_and_login(api.client)
    alice_did, bob_did = me(api.client, alice)["did"], me(api.client, bob)["did"]
    assert alice_did and bob_did and alice_did != bob_did
    api.ok("/api/v1/accounts", account("u-alice", alice_did))
    api.ok("/api/v1/accounts", account("u-bob", bob_did))
    api.ok("/api/v1/transfers", move("u-dep", "settle-cny", "u-alice", 50_000))
    client = api.client
    paid = client.post(
        "/api/v1/transfers", json=move("u-1", "u-alice", "u-bob", 1_000), headers=alice
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["transfer"]["amount"] == 1_000
    # The chain recorded the user as the sender, vouched for by the member.
    tx = api.platform.store.get_tx(bytes.fromhex(paid.json()["transfer"]["tx_hash"]))
    assert tx is not None and tx.sender == alice_did
    stolen = client.post(
        "/api/v1/transfers", json=move("u-2", "u-bob", "u-alice", 10), headers=alice
    )
    assert stolen.status_code == 403 and stolen.json()["code"] == "out_of_scope"
    # The contract's own rule holds even where RBAC is not asked: a batch naming Bob's account.
    bob_view = client.get("/api/v1/accounts/u-bob", headers=bob)
    assert bob_view.status_code == 200 and bob_view.json()["balance_posted"] == 1_000
    assert client.get("/api/v1/accounts/u-bob", headers=alice).status_code == 403
    assert client.get("/api/v1/accounts/u-bob/statement", headers=alice).status_code == 403
    mine = client.get("/api/v1/accounts", headers=alice).json()["accounts"]
    assert [a["id"] for a in mine] == ["u-alice"]
    assert client.get("/api/v1/transfers/u-1", headers=bob).status_code == 200  # the payee
    opened = client.post("/api/v1/accounts", json=account("u-x", alice_did), headers=alice)
    assert opened.status_code == 403
    assert client.get("/api/v1/payments/trial-balance", headers=alice).status_code == 401
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    listed = client.get("/api/v1/accounts", headers=officer)
    assert listed.status_code == 200 and {"u-alice", "u-bob"} <= {
        a["id"] for a in listed.json()["accounts"]
    }
    assert api.get("/api/v1/accounts/u-bob").json()["balance_posted"] == 1_000


def test_large_customer_payments_need_a_step_up(api: Api) -> None:
    from tests.platform.users import me, register_and_login

    books(api)
    alice = register_and_login(api.client)
    alice_did = me(api.client, alice)["did"]
    api.ok("/api/v1/accounts", account("s-alice", alice_did))
    api.ok("/api/v1/accounts", account("s-bob", BOB))
    api.ok("/api/v1/transfers", move("s-dep", "settle-cny", "s-alice", 90_000_000))
    big = move("s-1", "s-alice", "s-bob", 6_000_000)  # above the default policy's 50,000.00
    response = api.client.post("/api/v1/transfers", json=big, headers=alice)
    assert response.status_code in (401, 403), response.text
    assert response.json()["code"] in ("step_up_required", "mfa_required")
    assert api.get("/api/v1/transfers/s-1").status_code == 404
    assert api.get("/api/v1/accounts/s-alice").json()["balance_posted"] == 90_000_000


def test_a_new_payee_needs_a_step_up_a_payee_paid_before_sign_in_does_not(api: Api) -> None:
    from tests.platform.users import identity_of, login_with_token, new_password
    from zhijin.identity.service import RequestSource

    books(api)
    password = new_password()
    user = identity_of(api.client).register(
        login="payee.novelty", password=password, kind="individual", source=RequestSource(ip="t")
    )
    assert user.did is not None
    api.ok("/api/v1/accounts", account("n-alice", user.did))
    api.ok("/api/v1/accounts", account("n-bob", BOB))
    api.ok("/api/v1/accounts", account("n-carol", "did:key:z6MkApiCarol"))
    api.ok("/api/v1/transfers", move("n-dep", "settle-cny", "n-alice", 10_000_000))
    # The bank (custodian) paid Bob from Alice's account before she signed in: Bob is known.
    api.ok("/api/v1/transfers", move("n-0", "n-alice", "n-bob", 1_000))
    time.sleep(0.01)  # sign-in strictly after that block
    alice = login_with_token(api.client, "payee.novelty", password)

    known = api.client.post(
        "/api/v1/transfers", json=move("n-1", "n-alice", "n-bob", 200_000), headers=alice
    )
    assert known.status_code == 200, known.text
    new = api.client.post(
        "/api/v1/transfers", json=move("n-2", "n-alice", "n-carol", 200_000), headers=alice
    )
    assert new.status_code == 401 and new.json()["code"] == "step_up_required", new.text
    # A small payment within this session does not make Carol known for a large one.
    small = api.client.post(
        "/api/v1/transfers", json=move("n-3", "n-alice", "n-carol", 100), headers=alice
    )
    assert small.status_code == 200, small.text
    again = api.client.post(
        "/api/v1/transfers", json=move("n-4", "n-alice", "n-carol", 200_000), headers=alice
    )
    assert again.status_code == 401 and again.json()["code"] == "step_up_required"
    assert api.get("/api/v1/transfers/n-2").status_code == 404
    assert api.get("/api/v1/accounts/n-alice").json()["balance_posted"] == 10_000_000 - 201_100


def test_step_up_thresholds_count_in_the_policy_reference_currency(api: Api) -> None:
    """The default policy's thresholds are CNY: 7,000.00 USD (51,100.00 CNY at its rate) steps
    up although 700,000 minor units are far below 50,000.00; 100.00 USD (730.00 CNY) is below
    the floor; a currency the policy has no rate for steps up and is not refused."""
    from tests.platform.users import identity_of, login_with_token, new_password
    from zhijin.identity.service import RequestSource

    books(api)
    password = new_password()
    user = identity_of(api.client).register(
        login="payer.abroad", password=password, kind="individual", source=RequestSource(ip="t")
    )
    assert user.did is not None
    for code in ("USD", "THB"):
        c = code.lower()
        if code != "USD":
            api.ok("/api/v1/accounts", account(f"settle-{c}", api.member, code, "settlement"))
        api.ok("/api/v1/accounts", account(f"x-alice-{c}", user.did, code))
        api.ok("/api/v1/accounts", account(f"x-bob-{c}", BOB, code))
        api.ok("/api/v1/transfers", move(f"x-dep-{c}", f"settle-{c}", f"x-alice-{c}", 10**8, code))
        # Bob is a known payee: paid by the custodian before she signs in.
        api.ok("/api/v1/transfers", move(f"x-0-{c}", f"x-alice-{c}", f"x-bob-{c}", 1, code))
    time.sleep(0.01)  # sign-in strictly after those blocks
    alice = login_with_token(api.client, "payer.abroad", password)

    def pay(transfer_id: str, code: str, amount: int) -> Any:
        c = code.lower()
        body = move(transfer_id, f"x-alice-{c}", f"x-bob-{c}", amount, code)
        return api.client.post("/api/v1/transfers", json=body, headers=alice)

    small = pay("x-1", "USD", 10_000)
    assert small.status_code == 200, small.text
    large = pay("x-2", "USD", 700_000)
    assert large.status_code == 401, large.text
    problem = large.json()
    assert problem["code"] == "step_up_required"
    assert any(r.startswith("large_transfer:") for r in problem["reasons"]), problem
    unpriced = pay("x-3", "THB", 200_000)
    assert unpriced.status_code == 401 and unpriced.json()["code"] == "step_up_required"
    assert not any(r.startswith("transfer_over_limit") for r in unpriced.json()["reasons"])
    for refused in ("x-2", "x-3"):
        assert api.get(f"/api/v1/transfers/{refused}").status_code == 404
    assert api.get("/api/v1/accounts/x-alice-usd").json()["balance_posted"] == 10**8 - 10_001


def test_bank_staff_open_and_freeze_accounts_customers_cannot(api: Api) -> None:
    from tests.platform.users import create_staff, me, register_and_login
    from zhijin.identity.rbac import Role

    books(api)
    client = api.client
    alice = register_and_login(client)
    alice_did = me(client, alice)["did"]
    officer = create_staff(client, roles={Role.BANK_OFFICER})
    compliance = create_staff(client, roles={Role.COMPLIANCE_OFFICER})
    risk = create_staff(client, roles={Role.RISK_ANALYST})

    opened = client.post("/api/v1/accounts", json=account("o-alice", alice_did), headers=officer)
    assert opened.status_code == 200, opened.text
    assert opened.json()["account"]["custodian"] == api.member
    assert opened.json()["account"]["owner"] == alice_did
    refused = client.post("/api/v1/accounts", json=account("o-x", alice_did), headers=risk)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert api.get("/api/v1/accounts/o-x").status_code == 404

    api.ok("/api/v1/transfers", move("o-dep", "settle-cny", "o-alice", 5_000))
    own_freeze = client.post(
        "/api/v1/accounts/o-alice/status", json={"status": "frozen"}, headers=alice
    )
    assert own_freeze.status_code == 403
    frozen = client.post(
        "/api/v1/accounts/o-alice/status", json={"status": "frozen"}, headers=compliance
    )
    assert frozen.status_code == 200, frozen.text
    assert api.get("/api/v1/accounts/o-alice").json()["status"] == "frozen"
    credit = api.post("/api/v1/transfers", move("o-dep2", "settle-cny", "o-alice", 5_000))
    assert credit.status_code == 422 and credit.json()["code"] == "credit_account_frozen"
    paid = client.post(
        "/api/v1/transfers", json=move("o-1", "o-alice", "settle-cny", 100), headers=alice
    )
    assert paid.status_code == 422 and paid.json()["code"] == "debit_account_frozen", paid.text

    # Staff grants are privileged: the audit log names who opened and who froze.
    identity = client.app.state.identity  # type: ignore[attr-defined]
    officer_id = me(client, officer)["user_id"]
    compliance_id = me(client, compliance)["user_id"]
    entries = identity.audit.entries(limit=500)
    actions = {(e.actor, e.action, e.target, e.outcome) for e in entries}
    assert (f"user:{officer_id}", "account.open", "account:o-alice", "granted") in actions
    assert (f"user:{compliance_id}", "account.status", "account:o-alice", "granted") in actions

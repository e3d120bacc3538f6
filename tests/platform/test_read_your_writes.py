"""Read-your-writes per projection over the HTTP API (issue 11 item 5): payments and notary.

A write waits only for the query table its answer reads (payments for payments), so another
projection held back does not delay it; when the payments table itself is held back past the
wait, the write answers 202 `committed_not_yet_visible` with the tx hash and a Retry-After
(never a 404 for a committed transfer), a later read finds the transfer, and a retry of the
same request answers as usual.  Projections are held back by gates (events), not by timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Connection

from tests.payments.test_api import Api, account, move
from tests.payments.test_api import books as fx_books
from zhijin.node.app import create_app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments.api import REPLAYED_HEADER
from zhijin.platform.projections import RETRY_AFTER_S, BlockView, Projection

SHORT_WAIT_S = 0.3  # the write's wait for its projection; only reached when a gate is shut
WAIT_S = 30.0


class Gate:
    """Holds one projection's blocks until opened (its lane waits; the others go on)."""

    def __init__(self, projection: Projection) -> None:
        self.projection = projection
        self.apply = projection.apply
        self.opened = threading.Event()

    def held_apply(self, conn: Connection, block: BlockView) -> None:
        self.opened.wait()
        self.apply(conn, block)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(
        data=tmp_path,
        block_interval_ms=5,
        password_hashing="test",
        projector="thread",  # the gates are events in this process
        projection_wait_s=SHORT_WAIT_S,
    )
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        yield Api(client, (tmp_path / "operator-token").read_text().strip())


@pytest.fixture
def shut(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """shut(name): hold back the projection `name` until the test ends (or opens it)."""
    gates: list[Gate] = []

    def close(name: str) -> Gate:
        (projection,) = [p for p in api.platform.projections.projections if p.name == name]
        gate = Gate(projection)
        monkeypatch.setattr(projection, "apply", gate.held_apply)
        gates.append(gate)
        return gate

    yield close
    for gate in gates:
        gate.opened.set()


def books(api: Api) -> None:
    api.ok("/api/v1/accounts", account("settle", api.member, kind="settlement"))
    api.ok("/api/v1/accounts", account("alice", "did:key:z6MkRywAlice"))


def test_a_held_back_notary_table_does_not_delay_a_transfer(api: Api, shut: Any) -> None:
    books(api)
    shut("notary")
    response = api.post("/api/v1/transfers", move("t-1", "settle", "alice", 500))
    assert response.status_code == 200, response.text
    assert response.json()["transfer"]["amount"] == 500
    assert api.get("/api/v1/accounts/alice").json()["credits_posted"] == 500
    runner = api.platform.projections
    assert not runner.wait_for(api.platform.node.head.height, projection="notary", timeout_s=0)


def test_a_held_back_payments_table_answers_202_then_the_transfer_is_found(
    api: Api, shut: Any
) -> None:
    books(api)
    gate = shut("payments")
    body = move("t-1", "settle", "alice", 700)
    response = api.post("/api/v1/transfers", body)
    assert response.status_code == 202, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    answer = response.json()
    assert answer["status"] == answer["code"] == "committed_not_yet_visible"
    assert answer["projections"] == ["payments"]
    committed = api.platform.store.get_tx(bytes.fromhex(answer["tx_hash"]))
    assert committed is not None and committed.height == answer["height"]

    early = api.get("/api/v1/transfers/t-1")  # a read before the table shows it
    assert early.status_code == 202, early.text
    assert early.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert {k: early.json()[k] for k in ("code", "tx_hash", "height")} == {
        "code": "committed_not_yet_visible",
        "tx_hash": answer["tx_hash"],
        "height": answer["height"],
    }
    assert api.get("/api/v1/transfers/t-never").status_code == 404  # never committed

    gate.opened.set()
    assert api.platform.projections.wait_for(answer["height"], projection="payments")
    found = api.get("/api/v1/transfers/t-1")
    assert found.status_code == 200 and found.json()["amount"] == 700
    retried = api.post("/api/v1/transfers", body)  # the client's retry after its 202
    assert retried.status_code == 200, retried.text
    assert retried.headers[REPLAYED_HEADER] == "true"
    assert retried.json()["transfer"] == found.json()


def test_every_payments_write_answers_202_while_its_table_is_held_back(api: Api, shut: Any) -> None:
    books(api)
    api.ok("/api/v1/transfers", move("hold-1", "settle", "alice", 300, flags=["pending"]))
    shut("payments")
    writes = [
        ("/api/v1/accounts", account("bob", "did:key:z6MkRywBob")),
        ("/api/v1/transfers/batch", {"transfers": [move("b-1", "settle", "alice", 1)]}),
        ("/api/v1/transfers/hold-1/post", {"id": "post-1"}),
        ("/api/v1/accounts/alice/status", {"status": "frozen"}),
    ]
    for path, body in writes:
        response = api.post(path, body)
        assert response.status_code == 202, (path, response.text)
        assert response.json()["code"] == "committed_not_yet_visible"
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    early = api.get("/api/v1/accounts/bob")
    assert early.status_code == 202 and early.json()["code"] == "committed_not_yet_visible"
    assert api.get("/api/v1/accounts/nobody").status_code == 404


def test_the_api_documents_the_202(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/v1/transfers", "post"),
        ("/api/v1/transfers/{transfer_id}", "get"),
        ("/api/v1/accounts", "post"),
        ("/api/v1/fx/payments", "post"),
    ]:
        documented = paths[path][method]["responses"]["202"]
        assert "Retry-After" in documented["headers"], (path, method)


def test_an_anchor_waits_for_the_notary_table_only(api: Api, shut: Any) -> None:
    payments = shut("payments")
    free = api.post("/api/v1/notary/anchors", {"hash": "a" * 64, "title": "contract"})
    assert free.status_code == 200, free.text
    assert [a["hash"] for a in api.get("/api/v1/notary/anchors").json()["anchors"]] == ["a" * 64]
    payments.opened.set()

    shut("notary")
    held = api.post("/api/v1/notary/anchors", {"hash": "b" * 64, "title": "invoice"})
    assert held.status_code == 202, held.text
    assert held.json()["projections"] == ["notary"]
    assert held.headers["Retry-After"] == str(RETRY_AFTER_S)
    looked_up = api.get(f"/api/v1/notary/anchors/{'b' * 64}")  # committed state: no wait
    assert looked_up.status_code == 200 and looked_up.json()["tx_hash"] == held.json()["tx_hash"]


@pytest.mark.parametrize("wait_s", [0, -1, 301])
def test_a_projection_wait_out_of_bounds_is_refused(tmp_path: Path, wait_s: float) -> None:
    with pytest.raises(ValidationError, match="projection_wait_s"):
        Settings(data=tmp_path, projection_wait_s=wait_s)


def test_an_fx_payment_answers_202_then_its_retry_answers_as_usual(api: Api, shut: Any) -> None:
    fx_books(api)
    gate = shut("payments")
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
    assert api.post("/api/v1/fx/quotes", quote).status_code == 202
    payment = {
        "id": "fx-1",
        "quote_id": "q-1",
        "debit_account_id": "alice-cny",
        "credit_account_id": "bob-usd",
        "source_amount": 10_000,
    }
    held = api.post("/api/v1/fx/payments", payment)
    assert held.status_code == 202 and held.json()["code"] == "committed_not_yet_visible"
    gate.opened.set()
    assert api.platform.projections.wait_for(held.json()["height"], projection="payments")
    retried = api.post("/api/v1/fx/payments", payment)
    assert retried.status_code == 200, retried.text
    found = api.get("/api/v1/transfers/fx-1")
    assert found.status_code == 200 and found.json()["debit_account_id"] == "alice-cny"
    assert (
        retried.json()["target_amount"]
        == api.get("/api/v1/accounts/bob-usd").json()["balance_posted"]
    )

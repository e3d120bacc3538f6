"""Many threads paying from one hot account through the real node (solo orderer), directly
and over HTTP, on SQLite and PostgreSQL: never overdrawn, nothing lost or booked twice, and
every payments invariant holds after every committed block."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zhijin.node.app import create_app
from zhijin.node.runtime import Platform
from zhijin.payments import service
from zhijin.payments.invariants import check_invariants
from zhijin.platform.gateway import MemberGateway

HOT_OWNER = "did:key:z6MkHotWallet"
RECEIVERS = 12
START_BALANCE = 60_000
THREADS = 8
PAYMENTS_PER_THREAD = 25


class InvariantWatch:
    """Checks the payments invariants over committed state after every block."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.blocks = 0
        self.problems: list[str] = []
        platform.node.add_listener(self)

    def __call__(self, height: int) -> None:
        with self.platform.store.read() as conn:
            problems = check_invariants(service._CommittedState(self.platform, conn))
        self.blocks += 1
        self.problems.extend(f"height {height}: {p}" for p in problems)


@pytest.fixture
def platform(db_platform: Platform) -> Platform:
    return db_platform


def _setup(platform: Platform) -> InvariantWatch:
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    accounts = [
        {"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"},
        {"id": "hot", "owner": HOT_OWNER, "currency": "CNY", "kind": "customer"},
    ] + [
        {"id": f"r-{i}", "owner": f"did:key:z6MkReceiver{i}", "currency": "CNY", "kind": "customer"}
        for i in range(RECEIVERS)
    ]
    service.open_accounts(platform, gateway, accounts=accounts)
    service.transfer(
        platform,
        gateway,
        request={
            "id": "fund",
            "debit_account_id": "settle",
            "credit_account_id": "hot",
            "amount": START_BALANCE,
            "currency": "CNY",
        },
    )
    return InvariantWatch(platform)


def _payment(thread: int, index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"p-{thread}-{index}",
        "debit_account_id": "hot",
        "credit_account_id": f"r-{rng.randrange(RECEIVERS)}",
        "amount": rng.randint(1, 800),
        "currency": "CNY",
    }


def _check_books(platform: Platform, accepted: dict[str, int], watch: InvariantWatch) -> None:
    assert watch.problems == []
    assert watch.blocks > 0
    hot = service.get_account(platform, account_id="hot")
    assert hot["balance_posted"] == START_BALANCE - sum(accepted.values()) >= 0
    received = sum(
        service.get_account(platform, account_id=f"r-{i}")["balance_posted"]
        for i in range(RECEIVERS)
    )
    assert received == sum(accepted.values())
    entries = []
    after = 0
    while True:
        page = service.statement(platform, account_id="hot", after_entry=after, limit=500)
        entries += page["entries"]
        if page["next_after_entry"] is None:
            break
        after = page["next_after_entry"]
    debits = [e["transfer_id"] for e in entries if e["direction"] == "debit"]
    assert sorted(debits) == sorted(accepted)  # every accepted payment once, nothing else
    for transfer_id, amount in accepted.items():
        assert service.get_transfer(platform, transfer_id=transfer_id)["amount"] == amount
    for source in ("chain", "projection"):
        books = service.trial_balance(platform, source=source)
        assert books["balanced"], books
    # Overdraft was reached: the hot account ran dry and later payments were refused.
    assert sum(accepted.values()) > START_BALANCE - 800


def test_threads_pay_from_one_hot_account_through_the_node(platform: Platform) -> None:
    watch = _setup(platform)
    gateway = MemberGateway(platform.node)
    accepted: dict[str, int] = {}
    refused: list[str] = []
    lock = threading.Lock()

    def client(thread: int) -> None:
        rng = random.Random(thread)
        for index in range(PAYMENTS_PER_THREAD):
            request = _payment(thread, index, rng)
            try:
                service.transfer(platform, gateway, request=request, sender=HOT_OWNER)
            except service.PaymentRefused as refusal:
                assert refusal.code == "exceeds_credits", refusal
                with lock:
                    refused.append(request["id"])
            else:
                with lock:
                    accepted[request["id"]] = request["amount"]

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(client, range(THREADS)))
    assert len(accepted) + len(refused) == THREADS * PAYMENTS_PER_THREAD
    assert refused, "the payments asked for more than the balance"
    _check_books(platform, accepted, watch)


def test_threads_pay_from_one_hot_account_over_http(platform: Platform) -> None:
    watch = _setup(platform)
    token = (platform.settings.data / "operator-token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    accepted: dict[str, int] = {}
    lock = threading.Lock()
    with TestClient(create_app(platform=platform), base_url="https://testserver") as http:

        def client(thread: int) -> None:
            rng = random.Random(100 + thread)
            for index in range(PAYMENTS_PER_THREAD):
                body = _payment(thread, index, rng)
                response = http.post("/api/v1/transfers", json=body, headers=headers)
                if response.status_code == 200:
                    retry = http.post("/api/v1/transfers", json=body, headers=headers)
                    assert retry.json() == response.json()  # a retry books nothing twice
                    with lock:
                        accepted[body["id"]] = body["amount"]
                else:
                    assert response.json()["code"] == "exceeds_credits", response.text

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(client, range(THREADS)))
    _check_books(platform, accepted, watch)

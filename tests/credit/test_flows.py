"""Credit's consumer of payments' committed events (zhijin/credit/flows.py): posted movements
and balances per account, inflows only from other owners, holds counted when posted and never
when voided, a block applied twice counted once; through a node, an inflow on the ledger moves
the customer's behavioural score and its history says why; a restarted node resumes from the
consumer's cursor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, select, update

from tests.credit.conftest import Node
from tests.credit.flow_events import (
    AMY,
    BOB,
    DAY_MS,
    NOW_MS,
    WINDOW_MS,
    account_event,
    block_of,
    transfer_event,
)
from tests.platform.users import me, register_and_login
from zhijin.credit.flows import CreditFlowsProjection, FlowFacts, flow_accounts_table, flows_table
from zhijin.node.app import create_app
from zhijin.node.modules import default_projection_verifiers
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.projection_verify import verify_projections
from zhijin.platform.projections import BlockView, cursors


@pytest.fixture
def engine() -> Engine:
    engine = create_engine("sqlite://")
    CreditFlowsProjection.metadata.create_all(engine)
    return engine


def _apply(engine: Engine, *blocks: BlockView) -> None:
    projection = CreditFlowsProjection()
    for block in blocks:
        with engine.begin() as conn:
            projection.apply(conn, block)


def _facts(engine: Engine, subject: str) -> dict[str, tuple[int, int, int]]:
    """Per account: (balance now, balance at the window's start, inflow in the window)."""
    found = FlowFacts(engine).account_facts(subject, since_ms=NOW_MS - WINDOW_MS, until_ms=NOW_MS)
    return {
        f.account_id: (f.balance_minor_now, f.balance_minor_then, f.inflow_minor) for f in found
    }


def test_inflows_from_others_count_and_a_block_applied_twice_counts_once(engine: Engine) -> None:
    opened = block_of(
        1, account_event("amy-1", AMY), account_event("amy-2", AMY), account_event("bob", BOB)
    )
    early = block_of(2, transfer_event("t-old", "bob", "amy-1", 40_000, at_ms=50 * DAY_MS))
    recent = block_of(
        3,
        transfer_event("t-in", "bob", "amy-1", 150_000, at_ms=NOW_MS - DAY_MS),
        transfer_event("t-own", "amy-1", "amy-2", 30_000, at_ms=NOW_MS - DAY_MS),  # her own money
    )
    _apply(engine, opened, early, recent)
    expected = {"amy-1": (160_000, 40_000, 150_000), "amy-2": (30_000, 0, 0)}
    assert _facts(engine, AMY) == expected
    assert _facts(engine, BOB) == {"bob": (-190_000, -40_000, 0)}
    _apply(engine, recent, early)  # replayed: every movement is already kept
    assert _facts(engine, AMY) == expected
    with engine.connect() as conn:
        assert conn.execute(select(flows_table)).all().__len__() == 6


def test_a_hold_counts_when_posted_and_never_when_voided(engine: Engine) -> None:
    at = NOW_MS - DAY_MS
    _apply(
        engine,
        block_of(1, account_event("amy", AMY), account_event("bob", BOB)),
        block_of(2, transfer_event("h-1", "bob", "amy", 10_000, at_ms=at, flags=["pending"]),
               transfer_event("h-2", "bob", "amy", 20_000, at_ms=at, flags=["pending"])),
        block_of(3, transfer_event("p-1", "bob", "amy", 10_000, at_ms=at,
                            flags=["post_pending_transfer"], pending_id="h-1"),
               transfer_event("v-2", "bob", "amy", 20_000, at_ms=at,
                         flags=["void_pending_transfer"], pending_id="h-2")),
    )  # fmt: skip
    assert _facts(engine, AMY) == {"amy": (10_000, 0, 10_000)}


def test_a_failed_tx_and_other_contracts_events_move_nothing(engine: Engine) -> None:
    _apply(
        engine,
        block_of(1, account_event("amy", AMY), account_event("bob", BOB)),
        block_of(2, transfer_event("t-failed", "bob", "amy", 5_000, at_ms=NOW_MS), ok=False),
        block_of(3, {"type": "credit.repayment_recorded", "attrs": {"id": "r"}}),
    )
    assert _facts(engine, AMY) == {"amy": (0, 0, 0)}


def test_an_account_the_consumer_never_saw_open_is_not_half_counted(engine: Engine) -> None:
    """Money from an account opened before this consumer existed is an inflow (another owner,
    as far as the ledger's events show); the unseen account itself gets no row."""
    _apply(
        engine,
        block_of(1, account_event("amy", AMY)),
        block_of(2, transfer_event("t-1", "unseen", "amy", 7_000, at_ms=NOW_MS - DAY_MS)),
    )
    assert _facts(engine, AMY) == {"amy": (7_000, 0, 7_000)}
    with engine.connect() as conn:
        assert [row.account_id for row in conn.execute(select(flows_table))] == ["amy"]


# -- through a node -----------------------------------------------------------------------------
def _fund(node: Any, post: Any, tag: str, owner: str, amount: int) -> None:
    member = node.platform.node.key.did
    for account_id, who, kind in ((f"bank-{tag}", member, "settlement"),
                                  (f"cust-{tag}", owner, "customer")):  # fmt: skip
        answer = post("/api/v1/accounts", {"id": account_id, "owner": who, "currency": "CNY",
                                          "kind": kind})  # fmt: skip
        assert answer.status_code in (200, 201), answer.text
    _pay(node, post, f"in-{tag}", f"bank-{tag}", f"cust-{tag}", amount)


def _pay(node: Any, post: Any, transfer_id: str, debit: str, credit: str, amount: int) -> None:
    body = {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
            "amount": amount, "currency": "CNY"}  # fmt: skip
    answer = post("/api/v1/transfers", body)
    assert answer.status_code in (200, 201), answer.text
    runner = node.platform.projections
    assert runner.wait_for(node.platform.node.head.height, projection="credit_flows", timeout_s=10)


def test_an_inflow_on_the_ledger_moves_the_score_and_says_why(node: Node) -> None:
    customer = register_and_login(node.client)
    did = me(node.client, customer)["did"]
    first = node.get("/api/v1/credit/me/score", headers=customer).json()
    _fund(node, node.post, "flows", did, 350_000)  # 3,500 yuan paid in by the bank
    moved = node.get("/api/v1/credit/me/score", headers=customer).json()
    changes = {item["code"]: item for item in moved["changes"]}
    assert changes["inflows_90d"]["points"] == 30  # +10 per full 1,000 yuan
    assert "3,500.00" in changes["inflows_90d"]["text_zh"]
    assert changes["balance_trend"]["points"] == 40
    assert moved["score"] == first["score"] + 70
    assert moved["thin_file"] is False and first["thin_file"] is True
    # The same transfer sent again is the ledger's "exists": no new event, the score stays.
    _pay(node, node.post, "in-flows", "bank-flows", "cust-flows", 350_000)
    again = node.get("/api/v1/credit/me/score", headers=customer).json()
    assert (again["score"], again["seq"]) == (moved["score"], moved["seq"])


def test_projections_verify_checks_the_flows_on_a_node_and_names_a_changed_balance(
    node: Node,
) -> None:
    """`zhijin projections verify` runs the flows verifier (credit's manifest names it) against
    the node's real chain: it passes, then names a balance changed in the table."""
    _fund(node, node.post, "verify", "did:key:z6MkFlowsVerifyOwner", 120_000)
    platform = node.platform
    verifiers = [v for v in default_projection_verifiers() if v.name == "credit_flows"]
    assert len(verifiers) == 1
    report = verify_projections(platform.store, platform.platform_engine, verifiers)
    assert report.ok and report.heights["credit_flows"] > 0
    table = flow_accounts_table
    with platform.platform_engine.begin() as conn:
        conn.execute(
            update(table).where(table.c.account_id == "cust-verify").values(balance_minor=1)
        )
    try:
        report = verify_projections(platform.store, platform.platform_engine, verifiers)
        named = [(m.table, m.key, m.field, m.expected, m.found) for m in report.mismatches]
        assert named == [("credit_flow_accounts", "cust-verify", "balance_minor", 120_000, 1)]
    finally:
        with platform.platform_engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.account_id == "cust-verify")
                .values(balance_minor=120_000)
            )


def test_a_restarted_node_resumes_from_the_consumers_cursor(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, block_interval_ms=5, password_hashing="test",
                        projector="thread", audit_anchor_interval_s=0)  # fmt: skip
    init_data_dir(settings, members=1)
    token = (tmp_path / "operator-token").read_text().strip()
    operator = {"Authorization": f"Bearer {token}"}
    owner = "did:key:z6MkResumeTestOwnerAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

    def run(step: Any) -> None:
        with (
            Platform(settings) as platform,
            TestClient(create_app(platform=platform), base_url="https://testserver") as client,
        ):
            running = type("Running", (), {"platform": platform})()
            step(running, lambda path, body: client.post(path, json=body, headers=operator))

    def first(running: Any, post: Any) -> None:
        _fund(running, post, "r1", owner, 100_000)

    def second(running: Any, post: Any) -> None:
        engine = running.platform.platform_engine
        with engine.connect() as conn:
            height = conn.execute(
                select(cursors.c.height).where(cursors.c.name == "credit_flows")
            ).scalar()
        assert height is not None and height > 0
        # Had the consumer started again from block 1, these rows would come back.
        with engine.begin() as conn:
            conn.execute(delete(flows_table).where(flows_table.c.transfer_id == "in-r1"))
        _pay(running, post, "in-r1b", "bank-r1", "cust-r1", 50_000)
        kept = {row.transfer_id for row in _flow_rows(engine)}
        assert kept == {"in-r1b"}
        (facts,) = FlowFacts(engine).account_facts(owner, since_ms=0, until_ms=2**62)
        assert facts.balance_minor_now == 150_000  # the balance carried over the restart

    run(first)
    run(second)


def _flow_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(flows_table).where(flows_table.c.account_id == "cust-r1")))

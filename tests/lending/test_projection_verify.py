"""Lending's projection verifier: after a small workload (a product, a loan disbursed and partly
repaid early, a reminder) the query tables match the chain; then each field it vouches for is
changed in the platform database the way someone with write access could, and the verifier
names that table, row and field (one mutation test per field), a row added without its record
and a row deleted; `zhijin projections verify` is where it is hooked."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, delete, insert, select, update

from tests.lending.conftest import API, Node, application
from zhijin.lending.projection import (
    loans_table,
    payments_table,
    products_table,
    reminders_table,
)
from zhijin.lending.projection_verify import LendingProjectionVerifier
from zhijin.lending.schedule import DAY_MS
from zhijin.node.modules import default_projection_verifiers
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projection_verify import Mismatch, verify_projections


@pytest.fixture(scope="module")
def loaded(node: Node, world: dict[str, Any]) -> dict[str, Any]:
    customer = world["customer"]
    assert (
        node.post(f"{API}/applications", application("pv-1"), headers=customer).status_code == 200
    )
    loan = node.post(f"{API}/loans/pv-1/disburse").json()["loan"]
    part = {
        "payment_id": "pv-1-pp",
        "mode": "partial",
        "amount_minor": 100_000,
        "then": "reamortise",
    }
    assert node.post(f"{API}/loans/pv-1/repayments", part, headers=customer).status_code == 200
    chain_node = node.platform.node
    real_clock = chain_node.clock
    first = loan["schedule"][0]
    try:
        chain_node.clock = lambda: first["due_ms"] - DAY_MS  # type: ignore[method-assign]
        result = MemberGateway(chain_node).submit(
            "lending", "remind", {"loan_id": "pv-1", "instalment": first["number"]}
        )
        assert result["status"] == "ok", result
    finally:
        chain_node.clock = real_clock  # type: ignore[method-assign]
    assert node.platform.projections.wait_for(chain_node.head.height, timeout_s=30)
    return {"reminder_key": f"pv-1/{first['number']:03d}"}


def _verify(node: Node) -> list[Mismatch]:
    platform = node.platform
    report = verify_projections(
        platform.store, platform.platform_engine, [LendingProjectionVerifier()]
    )
    return list(report.mismatches)


def test_the_verifier_is_hooked_where_the_others_are() -> None:
    assert "lending" in [verifier.domain for verifier in default_projection_verifiers()]


def test_the_tables_match_the_chain(node: Node, loaded: dict[str, Any]) -> None:
    assert _verify(node) == []


# (table, key column, key, column, a false value)
CASES = [
    (products_table, "product_id", "consumer-12", "member", "did:key:forged"),
    (products_table, "product_id", "consumer-12", "status", "pending_approval"),
    (products_table, "product_id", "consumer-12", "created_by", "u-forged"),
    (products_table, "product_id", "consumer-12", "record", "{}"),
    (loans_table, "loan_id", "pv-1", "member", "did:key:forged"),
    (loans_table, "loan_id", "pv-1", "borrower", "did:key:forged"),
    (loans_table, "loan_id", "pv-1", "product_id", "other"),
    (loans_table, "loan_id", "pv-1", "status", "closed"),
    (loans_table, "loan_id", "pv-1", "amount_minor", 1),
    (loans_table, "loan_id", "pv-1", "outstanding_minor", 0),
    (loans_table, "loan_id", "pv-1", "days_past_due", 40),
    (loans_table, "loan_id", "pv-1", "bucket", "M2"),
    (loans_table, "loan_id", "pv-1", "next_due_ms", 1),
    (loans_table, "loan_id", "pv-1", "next_instalment", 9),
    (loans_table, "loan_id", "pv-1", "accrued_through_day", "2000-01-01"),
    (loans_table, "loan_id", "pv-1", "record", "{}"),
    (payments_table, "key", "pv-1/pv-1-pp", "loan_id", "pv-2"),
    (payments_table, "key", "pv-1/pv-1-pp", "payment_id", "forged"),
    (payments_table, "key", "pv-1/pv-1-pp", "kind", "write_off"),
    (payments_table, "key", "pv-1/pv-1-pp", "amount_minor", 1),
    (payments_table, "key", "pv-1/pv-1-pp", "height", 1),
    (payments_table, "key", "pv-1/pv-1-pp", "record", "{}"),
    (reminders_table, "key", None, "due_ms", 1),
    (reminders_table, "key", None, "loan_id", "pv-2"),
    (reminders_table, "key", None, "instalment", 7),
]


@pytest.mark.parametrize(
    ("table", "key_column", "key", "column", "value"),
    CASES,
    ids=[f"{case[0].name}.{case[3]}" for case in CASES],
)
def test_each_field_it_vouches_for_is_checked(
    node: Node,
    loaded: dict[str, Any],
    table: Table,
    key_column: str,
    key: str | None,
    column: str,
    value: Any,
) -> None:
    key = key or loaded["reminder_key"]
    where = table.c[key_column] == key
    engine = node.platform.platform_engine
    with engine.begin() as conn:
        before = conn.execute(select(table.c[column]).where(where)).scalar_one()
        conn.execute(update(table).where(where).values({column: value}))
    try:
        found = _verify(node)
    finally:
        with engine.begin() as conn:
            conn.execute(update(table).where(where).values({column: before}))
    assert [(m.table, m.key, m.field) for m in found] == [(table.name, key, column)]
    assert found[0].found == value and found[0].expected == before
    assert _verify(node) == []


def test_a_row_without_its_record_and_a_missing_row_are_named(
    node: Node, loaded: dict[str, Any]
) -> None:
    engine = node.platform.platform_engine
    with engine.begin() as conn:
        row = dict(
            conn.execute(select(loans_table).where(loans_table.c.loan_id == "pv-1")).one()._mapping
        )
        conn.execute(insert(loans_table).values({**row, "loan_id": "pv-forged"}))
    try:
        found = _verify(node)
        assert [(m.table, m.key, m.field, m.expected) for m in found] == [
            (loans_table.name, "pv-forged", "row", None)
        ]
    finally:
        with engine.begin() as conn:
            conn.execute(delete(loans_table).where(loans_table.c.loan_id == "pv-forged"))
    with engine.begin() as conn:
        conn.execute(delete(loans_table).where(loans_table.c.loan_id == "pv-1"))
    try:
        found = _verify(node)
        assert [(m.table, m.key, m.field, m.found) for m in found] == [
            (loans_table.name, "pv-1", "row", None)
        ]
    finally:
        with engine.begin() as conn:
            conn.execute(insert(loans_table).values(row))
    assert _verify(node) == []

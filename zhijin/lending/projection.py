"""Lending's query tables, fed by the lending contract's events (so `zhijin reindex` rebuilds
them from the blocks): products, loans (a row per loan with the columns the queue, the book and
the keeper filter on, and the record as it now stands), payments, and the reminders the keeper
sent before due days (what the borrower's pages show); and the reads made of them.

`projection_verify.py` recomputes every row from the chain's records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)

from zhijin.lending import limits
from zhijin.lending.contract import (
    CONTRACT_NAME,
    EVENT_LOAN,
    EVENT_PAYMENT,
    EVENT_PRODUCT,
    EVENT_REMINDER,
)
from zhijin.lending.lifecycle import LIVE
from zhijin.platform.projections import BlockView

__all__ = [
    "LendingProjection",
    "book_by_bucket",
    "due_loans",
    "dumps",
    "get_loan",
    "get_product",
    "list_loans",
    "list_products",
    "loan_row",
    "loans_table",
    "payments_of",
    "payments_table",
    "products_table",
    "reminder_key",
    "reminders_of",
    "reminders_table",
]

metadata = MetaData()
_ID = limits.ID_CHARS_MAX
_DID = limits.DID_CHARS_MAX

products_table = Table(
    "lending_products",
    metadata,
    Column("product_id", String(_ID), primary_key=True),
    Column("member", String(_DID), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_by", String(limits.OFFICER_CHARS_MAX), nullable=False),
    Column("record", Text, nullable=False),
)
loans_table = Table(
    "lending_loans",
    metadata,
    Column("loan_id", String(_ID), primary_key=True),
    Column("member", String(_DID), nullable=False),
    Column("borrower", String(_DID), nullable=False),
    Column("product_id", String(_ID), nullable=False),
    Column("status", String(24), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("outstanding_minor", BigInteger, nullable=False),
    Column("days_past_due", BigInteger, nullable=False),
    Column("bucket", String(8), nullable=True),
    # The earliest instalment not fully paid (the keeper's index); None when nothing is left.
    Column("next_due_ms", BigInteger, nullable=True),
    Column("next_instalment", BigInteger, nullable=True),
    Column("accrued_through_day", String(10), nullable=True),
    Column("updated_height", BigInteger, nullable=False),
    Column("record", Text, nullable=False),
    Index("ix_lending_loans_borrower", "borrower", "loan_id"),
    Index("ix_lending_loans_member_status", "member", "status", "loan_id"),
    Index("ix_lending_loans_due", "status", "next_due_ms"),
)
payments_table = Table(
    "lending_payments",
    metadata,
    Column("key", String(2 * _ID + 1), primary_key=True),
    Column("loan_id", String(_ID), nullable=False),
    Column("payment_id", String(_ID), nullable=False),
    Column("kind", String(12), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("record", Text, nullable=False),
    Index("ix_lending_payments_loan", "loan_id", "height"),
)

# One row per reminder mark on chain (`keys.reminded`): the key is "<loan id>/<NNN>", as the
# mark's key under `lending/reminded/`, so the verifier pairs them without a lookup.
reminders_table = Table(
    "lending_reminders",
    metadata,
    Column("key", String(_ID + 4), primary_key=True),
    Column("loan_id", String(_ID), nullable=False),
    Column("borrower", String(_DID), nullable=False),
    Column("instalment", BigInteger, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("height", BigInteger, nullable=False),
    Index("ix_lending_reminders_borrower", "borrower", "due_ms"),
)

_EVENTS = {
    f"{CONTRACT_NAME}.{name}": name
    for name in (EVENT_PRODUCT, EVENT_LOAN, EVENT_PAYMENT, EVENT_REMINDER)
}


def reminder_key(loan_id: str, instalment: int) -> str:
    return f"{loan_id}/{instalment:03d}"


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _next_due(record: dict[str, Any]) -> tuple[int | None, int | None]:
    for index, item in enumerate(record["schedule"]):
        owed = item["principal_minor"] + item["interest_minor"]
        paid = record["principal_paid"][index] + record["interest_paid"][index]
        if paid < owed:
            return item["due_ms"], item["number"]
    return None, None


def outstanding_minor(record: Mapping[str, Any]) -> int:
    """Principal the borrower still owes: none before the loan is disbursed (an application,
    an approval or a withdrawal lends nothing)."""
    if record.get("disbursed_day") is None:
        return 0
    return int(record["amount_minor"]) - int(record["principal_repaid_minor"])


def loan_row(record: dict[str, Any], height: int) -> dict[str, Any]:
    next_due, number = _next_due(record)
    return {
        "loan_id": record["loan_id"],
        "member": record["member"],
        "borrower": record["borrower"],
        "product_id": record["product_id"],
        "status": record["status"],
        "amount_minor": record["amount_minor"],
        "outstanding_minor": outstanding_minor(record),
        "days_past_due": record["days_past_due"],
        "bucket": record["bucket"],
        "next_due_ms": next_due,
        "next_instalment": number,
        "accrued_through_day": record["accrued_through_day"],
        "updated_height": height,
        "record": dumps(record),
    }


class LendingProjection:
    name = "lending"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        # The last record per key wins within a block (a loan applied and disbursed in one).
        rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in _EVENTS.values()}
        for tx in block.txs:
            if not tx.ok:
                continue
            for event in tx.events:
                name = _EVENTS.get(event["type"])
                if name is None:
                    continue
                attrs = event["attrs"]
                if name == EVENT_PRODUCT:
                    rows[name][attrs["product_id"]] = {
                        "product_id": attrs["product_id"],
                        "member": attrs["member"],
                        "status": attrs["status"],
                        "created_by": attrs["created_by"],
                        "record": dumps(attrs),
                    }
                elif name == EVENT_LOAN:
                    rows[name][attrs["loan_id"]] = loan_row(attrs, block.height)
                elif name == EVENT_REMINDER:
                    key = reminder_key(attrs["loan_id"], attrs["instalment"])
                    rows[name][key] = {
                        "key": key,
                        "loan_id": attrs["loan_id"],
                        "borrower": attrs["borrower"],
                        "instalment": attrs["instalment"],
                        "due_ms": attrs["due_ms"],
                        "amount_minor": attrs["amount_minor"],
                        "currency": attrs["currency"],
                        "height": block.height,
                    }
                else:
                    key = f"{attrs['loan_id']}/{attrs['payment_id']}"
                    rows[name][key] = {
                        "key": key,
                        "loan_id": attrs["loan_id"],
                        "payment_id": attrs["payment_id"],
                        "kind": attrs["kind"],
                        "amount_minor": attrs["amount_minor"],
                        "height": block.height,
                        "record": dumps(attrs),
                    }
        _write(conn, products_table, "product_id", rows[EVENT_PRODUCT])
        _write(conn, loans_table, "loan_id", rows[EVENT_LOAN])
        _write(conn, payments_table, "key", rows[EVENT_PAYMENT])
        _write(conn, reminders_table, "key", rows[EVENT_REMINDER])


def _write(conn: Connection, table: Table, key: str, rows: dict[str, dict[str, Any]]) -> None:
    if rows:  # one delete and one insert per table per block, not a statement per event
        keys = list(rows)
        for start in range(0, len(keys), 500):  # bounded IN lists
            conn.execute(delete(table).where(table.c[key].in_(keys[start : start + 500])))
        conn.execute(table.insert(), list(rows.values()))


def _record(row: Any) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(row.record)
    return record


def get_product(conn: Connection, product_id: str) -> dict[str, Any] | None:
    table = products_table
    row = conn.execute(select(table.c.record).where(table.c.product_id == product_id)).first()
    return None if row is None else _record(row)


def list_products(
    conn: Connection, *, member: str | None, status: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    table = products_table
    query = select(table.c.record).order_by(table.c.product_id).limit(limit)
    if member is not None:
        query = query.where(table.c.member == member)
    if status is not None:
        query = query.where(table.c.status == status)
    if after is not None:
        query = query.where(table.c.product_id > after)
    return [_record(row) for row in conn.execute(query)]


def get_loan(conn: Connection, loan_id: str) -> dict[str, Any] | None:
    table = loans_table
    row = conn.execute(select(table.c.record).where(table.c.loan_id == loan_id)).first()
    return None if row is None else _record(row)


def list_loans(
    conn: Connection,
    *,
    member: str | None,
    borrower: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    table = loans_table
    query = select(table.c.record).order_by(table.c.loan_id).limit(limit)
    for column, value in (("member", member), ("borrower", borrower), ("status", status)):
        if value is not None:
            query = query.where(table.c[column] == value)
    if after is not None:
        query = query.where(table.c.loan_id > after)
    return [_record(row) for row in conn.execute(query)]


def due_loans(
    conn: Connection, *, member: str, due_by_ms: int, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Live loans of `member` with an instalment unpaid and due by `due_by_ms` (the keeper)."""
    table = loans_table
    query = (
        select(table.c.loan_id, table.c.next_due_ms, table.c.next_instalment, table.c.status,
               table.c.accrued_through_day, table.c.record)
        .where(table.c.member == member, table.c.status.in_(sorted(LIVE)))
        .where(table.c.next_due_ms.is_not(None), table.c.next_due_ms <= due_by_ms)
        .order_by(table.c.loan_id)
        .limit(limit)
    )  # fmt: skip
    if after is not None:
        query = query.where(table.c.loan_id > after)
    return [dict(row._mapping) for row in conn.execute(query)]


def payments_of(conn: Connection, loan_id: str, *, limit: int) -> list[dict[str, Any]]:
    table = payments_table
    query = (
        select(table.c.record)
        .where(table.c.loan_id == loan_id)
        .order_by(table.c.height, table.c.payment_id)
        .limit(limit)
    )
    return [_record(row) for row in conn.execute(query)]


def book_by_bucket(conn: Connection, *, member: str | None) -> list[dict[str, Any]]:
    """The loan book per member, status and delinquency bucket: count and outstanding."""
    table = loans_table
    query = select(
        table.c.member,
        table.c.status,
        table.c.bucket,
        func.count().label("loans"),
        func.sum(table.c.outstanding_minor).label("outstanding_minor"),
    ).group_by(table.c.member, table.c.status, table.c.bucket)
    if member is not None:
        query = query.where(table.c.member == member)
    return [
        {**dict(row._mapping), "outstanding_minor": int(row.outstanding_minor or 0)}
        for row in conn.execute(query.order_by(table.c.member, table.c.status, table.c.bucket))
    ]


def reminders_of(
    conn: Connection, *, borrower: str, due_from_ms: int, limit: int
) -> list[dict[str, Any]]:
    """The borrower's reminders for due days from `due_from_ms` on, the soonest first."""
    table = reminders_table
    query = (
        select(table)
        .where(table.c.borrower == borrower, table.c.due_ms >= due_from_ms)
        .order_by(table.c.due_ms, table.c.loan_id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]

"""Checking lending's query tables against the lending contract's records on chain (`zhijin
projections verify`, `GET /api/v1/projections/verify`): every row equals what its record says,
every record has its row, and no row lacks one.  Mismatches come in key order, so the first
one names the first loan (product, payment, reminder) that differs.

What each table vouches for, recomputed from the record alone:

- products: member, status, created_by and the whole record;
- loans: every column `projection.loan_row` derives (member, borrower, product, status, amount,
  outstanding principal, days past due, bucket, the next instalment and its due time, the day
  accrued through) and the whole record; `updated_height` is the height of the block that wrote
  the row, which the record does not hold, so it is not compared;
- payments: loan, payment id, kind, amount, height and the whole allocation record;
- reminders: loan, instalment and due time (what the mark on chain holds); the borrower, the
  amount and the currency come from the reminder's event and are shown as the event said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from zhijin.lending.projection import (
    LendingProjection,
    dumps,
    loan_row,
    loans_table,
    payments_table,
    products_table,
    reminders_table,
)
from zhijin.lending.records import keys
from zhijin.platform.projection_verify import (
    MISMATCHES_MAX,
    STATE_PAGE_KEYS,
    KeyedTable,
    Mismatch,
    StateAt,
    compare_keyed_rows,
)

__all__ = ["TABLES", "LendingProjectionVerifier"]

DOMAIN = "lending"


def _product(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "member": record["member"],
        "status": record["status"],
        "created_by": record["created_by"],
        "record": dumps(dict(record)),
    }


def _loan(record: Mapping[str, Any]) -> dict[str, Any]:
    row = loan_row(dict(record), height=0)
    del row["updated_height"], row["loan_id"]
    return row


def _payment(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "loan_id": record["loan_id"],
        "payment_id": record["payment_id"],
        "kind": record["kind"],
        "amount_minor": record["amount_minor"],
        "height": record["height"],
        "record": dumps(dict(record)),
    }


def _reminder(mark: Mapping[str, Any]) -> dict[str, Any]:
    return {"due_ms": mark["due_ms"]}


TABLES = (
    KeyedTable(DOMAIN, products_table, "product_id", keys.PRODUCT, _product),
    KeyedTable(DOMAIN, loans_table, "loan_id", keys.LOAN, _loan),
    KeyedTable(DOMAIN, payments_table, "key", keys.PAYMENT, _payment),
    KeyedTable(DOMAIN, reminders_table, "key", keys.REMINDED, _reminder),
)


def _reminder_keys(conn: Connection) -> list[Mismatch]:
    """A reminder row's loan and instalment columns must say what its key (the mark's) says."""
    found: list[Mismatch] = []
    table = reminders_table
    after: str | None = None
    while len(found) < MISMATCHES_MAX:
        query = select(table.c.key, table.c.loan_id, table.c.instalment)
        query = query.order_by(table.c.key).limit(STATE_PAGE_KEYS)
        if after is not None:
            query = query.where(table.c.key > after)
        rows = list(conn.execute(query))
        if not rows:
            break
        for row in rows:
            loan_id, _, number = row.key.rpartition("/")
            expected = int(number) if number.isdigit() else number
            if row.loan_id != loan_id:
                found.append(Mismatch(DOMAIN, table.name, row.key, "loan_id", loan_id, row.loan_id))
            if row.instalment != expected:
                found.append(
                    Mismatch(DOMAIN, table.name, row.key, "instalment", expected, row.instalment)
                )
        after = rows[-1].key
    return found


class LendingProjectionVerifier:
    domain = DOMAIN
    name = LendingProjection.name  # its cursor is the height to compare at

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        found: list[Mismatch] = []
        for spec in TABLES:
            found += compare_keyed_rows(state, conn, spec)
        return found + _reminder_keys(conn)

"""Checking the payments query tables against the ledger on chain (`zhijin projections verify`).

What a customer or an operator reads comes from these tables, so each value they show is
recomputed from the committed account records at the projection's height:

- `payments_accounts`: every column the record holds (owner, currency, kind, flags, status, the
  four counters, ...) equals the record; no row without a record, no record without a row.
- `payments_entries`: per account, debit entries add up to `debits_posted` and credit entries to
  `credits_posted`; entries are numbered 1, 2, ... with no gap; each entry's running balance is
  the sum of the movements up to it; the account row's `entries` equals the number of entries.
- `payments_transfers`: every column equals the transfer record (`record` its JSON text), and
  a hold's `hold_status`, `resolved_by` and `resolved_at_ms` its pending state; both ways.
- `payments_currency_totals`: per currency, the number of accounts and the four sums.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select

from zhijin.payments.projection import (
    COUNTERS,
    CREDIT,
    TRANSFER_RECORD_COLUMNS,
    accounts_table,
    entries_table,
    totals_table,
    transfers_table,
)
from zhijin.payments.records import TransferFlag, keys
from zhijin.platform.projection_verify import (
    MISMATCHES_MAX,
    KeyedTable,
    Mismatch,
    StateAt,
    compare_page,
    rows_without_records,
)

__all__ = ["PaymentsProjectionVerifier"]

DOMAIN = "payments"
# The account row's columns that copy the record as stored on chain (flags as sorted text).
_RECORD_COLUMNS = tuple(
    column.name
    for column in accounts_table.columns
    if column.name not in ("entries", "updated_height")
)


def _expected_account(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: ",".join(record["flags"]) if name == "flags" else record[name]
        for name in _RECORD_COLUMNS
    }


ACCOUNTS = KeyedTable(DOMAIN, accounts_table, "id", keys.ACCOUNT, _expected_account)


def _expected_transfer(
    record: Mapping[str, Any], pending: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    hold = pending.get(keys.pending(record["id"])) if _is_hold(record) else None
    return {
        **{name: record[name] for name in TRANSFER_RECORD_COLUMNS},
        "height": record["created_height"],
        "time_ms": record["created_at_ms"],
        # As the projection writes it: keys sorted, no spaces (json.dumps's ASCII escapes).
        "record": json.dumps(record, sort_keys=True, separators=(",", ":")),
        "hold_status": None if hold is None else hold["status"],
        "resolved_by": None if hold is None else hold["resolved_by"],
        "resolved_at_ms": None if hold is None else hold["resolved_at_ms"],
    }


def _is_hold(record: Mapping[str, Any]) -> bool:
    return TransferFlag.PENDING.value in record["flags"]


TRANSFERS = KeyedTable(  # `expected` is bound per page, with that page's pending states
    DOMAIN,
    transfers_table,
    "id",
    keys.TRANSFER,
    functools.partial(_expected_transfer, pending={}),
)


class PaymentsProjectionVerifier:
    domain = DOMAIN
    name = "payments"  # PaymentsProjection.name: its cursor is the height to check at

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        found: list[Mismatch] = []
        totals: dict[str, list[int]] = {}  # currency -> accounts + the four counter sums
        for page in state.scan(keys.ACCOUNT):
            if len(found) >= MISMATCHES_MAX:
                return found
            found += compare_page(conn, ACCOUNTS, page)
            records = [record for _, record in page]
            found += _entry_sums(conn, records)
            found += _entry_chain(conn, [record["id"] for record in records])
            for record in records:
                line = totals.setdefault(record["currency"], [0, 0, 0, 0, 0])
                line[0] += 1
                for index, name in enumerate(COUNTERS, start=1):
                    line[index] += record[name]
        found += rows_without_records(state, conn, ACCOUNTS)
        found += _totals(conn, totals)
        return found + _transfers(state, conn)


def _transfers(state: StateAt, conn: Connection) -> list[Mismatch]:
    found: list[Mismatch] = []
    for page in state.scan(keys.TRANSFER):
        if len(found) >= MISMATCHES_MAX:
            return found
        holds = [record["id"] for _, record in page if _is_hold(record)]
        pending = state.get_many([keys.pending(hold) for hold in holds])
        expected = functools.partial(_expected_transfer, pending=pending)
        spec = dataclasses.replace(TRANSFERS, expected=expected)
        found += compare_page(conn, spec, page)
    return found + rows_without_records(state, conn, TRANSFERS)


def _entry_sums(conn: Connection, records: Sequence[Mapping[str, Any]]) -> list[Mismatch]:
    """Posted counters against the entries' sums, and the row's entry count against its rows."""
    ids = [record["id"] for record in records]
    sums: dict[str, dict[str, int]] = {}
    query = (
        select(
            entries_table.c.account_id,
            entries_table.c.direction,
            func.count().label("entries"),
            func.sum(entries_table.c.amount).label("amount"),
        )
        .where(entries_table.c.account_id.in_(ids))
        .group_by(entries_table.c.account_id, entries_table.c.direction)
    )
    for row in conn.execute(query):
        line = sums.setdefault(row.account_id, {})
        line[row.direction] = int(row.amount)
        line["entries"] = line.get("entries", 0) + int(row.entries)
    counted = dict(
        conn.execute(
            select(accounts_table.c.id, accounts_table.c.entries).where(
                accounts_table.c.id.in_(ids)
            )
        ).all()
    )
    found = []
    for record in records:
        line = sums.get(record["id"], {})
        for direction, counter in (("debit", "debits_posted"), (CREDIT, "credits_posted")):
            if line.get(direction, 0) != record[counter]:
                found.append(
                    Mismatch(
                        DOMAIN,
                        entries_table.name,
                        record["id"],
                        f"sum of {direction} entries",
                        record[counter],
                        line.get(direction, 0),
                    )
                )
        rows = line.get("entries", 0)
        if record["id"] in counted and counted[record["id"]] != rows:
            found.append(
                Mismatch(
                    DOMAIN,
                    accounts_table.name,
                    record["id"],
                    "entries",
                    rows,
                    counted[record["id"]],
                )
            )
    return found


def _entry_chain(conn: Connection, ids: Sequence[str]) -> list[Mismatch]:
    """Entries numbered 1, 2, ... per account, each balance the running sum of the movements."""
    signed = case(
        (entries_table.c.direction == CREDIT, entries_table.c.amount), else_=-entries_table.c.amount
    )
    partition, order = entries_table.c.account_id, entries_table.c.entry_no
    walked = (
        select(
            entries_table.c.account_id,
            entries_table.c.entry_no,
            entries_table.c.balance,
            func.sum(signed).over(partition_by=partition, order_by=order).label("running"),
            func.row_number().over(partition_by=partition, order_by=order).label("number"),
        )
        .where(entries_table.c.account_id.in_(ids))
        .subquery()
    )
    query = (
        select(walked)
        .where((walked.c.running != walked.c.balance) | (walked.c.number != walked.c.entry_no))
        .order_by(walked.c.account_id, walked.c.entry_no)
        .limit(MISMATCHES_MAX)
    )
    found = []
    for row in conn.execute(query):
        key = f"{row.account_id}#{row.entry_no}"
        if row.number != row.entry_no:
            found.append(
                Mismatch(DOMAIN, entries_table.name, key, "entry_no", int(row.number), row.entry_no)
            )
        if row.running != row.balance:
            found.append(
                Mismatch(DOMAIN, entries_table.name, key, "balance", int(row.running), row.balance)
            )
    return found


def _totals(conn: Connection, totals: Mapping[str, Sequence[int]]) -> list[Mismatch]:
    """The per-currency totals row: the sums are decimal text (they can pass 2**63 - 1)."""
    rows = {row.currency: row for row in conn.execute(select(totals_table))}
    found = []
    for code in sorted(set(totals) | set(rows)):
        row = rows.get(code)
        line = totals.get(code)
        if row is None or line is None:
            expected, present = ("present", None) if row is None else (None, "present")
            found.append(Mismatch(DOMAIN, totals_table.name, code, "row", expected, present))
            continue
        wanted = {"accounts": line[0], **{name: str(line[i]) for i, name in enumerate(COUNTERS, 1)}}
        found += [
            Mismatch(DOMAIN, totals_table.name, code, name, value, getattr(row, name))
            for name, value in wanted.items()
            if getattr(row, name) != value
        ]
    return found

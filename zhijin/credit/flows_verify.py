"""Checking the `credit_flows` projection (flows.py) against the chain (`zhijin projections
verify`): its two tables recomputed from payments' committed events, every field of every row
compared, a row the events do not explain named as well as one they need and the table lacks.

`credit_flows` is a projection of events, not of state: there is no record per row under a
state key, so the recomputation replays every committed block from genesis up to the height the
projection's cursor says it applied, as the projection runner fed them to it.  The replay is
written apart from the projection's own bookkeeping (it keeps its running balances in memory,
the projection in its tables), so a changed row, a bug in the projection's arithmetic and a
dropped or doubled movement all show; only the reading of the wire (`payment_events`,
`is_posted`: which events count, which transfers post money) is shared, because it is the
definition both must follow.

Memory: one small record per account and one key per movement (about 230 bytes; the pairs
seen, which is how a movement seen twice is counted once, as the projection does); expected
rows are compared a batch at a time and never held together.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, select, tuple_

from zhijin.credit.flows import (
    ACCOUNT_CREATED,
    IN_CLAUSE_MAX,
    CreditFlowsProjection,
    flow_accounts_table,
    flows_table,
    is_posted,
    payment_events,
)
from zhijin.platform.projection_verify import MISMATCHES_MAX, STATE_PAGE_KEYS, Mismatch, StateAt
from zhijin.platform.projections import BlockView

__all__ = ["CreditFlowsVerifier", "FlowsReplay"]

DOMAIN = "credit"
ACCOUNT_FIELDS = ("owner", "custodian", "currency", "opened_at_ms", "balance_minor", "entries",
                  "height")  # fmt: skip
FLOW_FIELDS = ("entry_no", "direction", "amount_minor", "balance_minor_after", "from_other_owner",
               "time_ms", "height")  # fmt: skip


@dataclass(slots=True)
class _Account:
    owner: str
    custodian: str | None
    currency: str
    opened_at_ms: int
    height: int  # the block that opened it, then the last block that moved it
    balance_minor: int = 0
    entries: int = 0

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ACCOUNT_FIELDS}


class FlowsReplay:
    """The projection's rows as the committed events say they must be, one block at a time:
    `block` returns the movements a block adds; `accounts` holds every account as it stands
    after the blocks replayed so far; `seen` every (account, transfer) movement kept."""

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.seen: set[tuple[str, str]] = set()

    def block(self, block: BlockView) -> list[dict[str, Any]]:
        movements: list[dict[str, Any]] = []
        for kind, attrs in payment_events(block):
            if kind == ACCOUNT_CREATED:
                self.accounts.setdefault(
                    attrs["id"],
                    _Account(attrs["owner"], attrs.get("custodian"), attrs["currency"],
                             attrs["created_at_ms"], block.height),
                )  # fmt: skip
            elif is_posted(attrs):
                movements += self._transfer(attrs, block)
        return movements

    def _transfer(self, record: dict[str, Any], block: BlockView) -> Iterator[dict[str, Any]]:
        debit_id, credit_id = record["debit_account_id"], record["credit_account_id"]
        amount = int(record["amount"])
        time_ms = int(record.get("created_at_ms", block.time_ms))
        sides = ((debit_id, credit_id, -amount, "debit"), (credit_id, debit_id, amount, "credit"))
        for account_id, other_id, change, direction in sides:
            account = self.accounts.get(account_id)
            if account is None or (account_id, record["id"]) in self.seen:
                continue  # an unknown account (opened before any event of it) is not counted
            self.seen.add((account_id, record["id"]))
            other = self.accounts.get(other_id)
            account.balance_minor += change
            account.entries += 1
            account.height = block.height
            yield {
                "account_id": account_id,
                "transfer_id": record["id"],
                "entry_no": account.entries,
                "direction": direction,
                "amount_minor": amount,
                "balance_minor_after": account.balance_minor,
                "from_other_owner": change > 0 and (other is None or other.owner != account.owner),
                "time_ms": time_ms,
                "height": block.height,
            }


def _flow_key(account_id: str, transfer_id: str) -> str:
    return f"{account_id}/{transfer_id}"


def _differences(table: str, key: str, expected: dict[str, Any], row: Any,
                 fields: Sequence[str]) -> list[Mismatch]:  # fmt: skip
    if row is None:
        return [Mismatch(DOMAIN, table, key, "row", "present", None)]
    return [
        Mismatch(DOMAIN, table, key, name, expected[name], row._mapping[name])
        for name in fields
        if row._mapping[name] != expected[name]
    ]


class CreditFlowsVerifier:
    domain = DOMAIN
    name = CreditFlowsProjection.name  # its cursor is the height to compare at

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        replay = FlowsReplay()
        found: list[Mismatch] = []
        batch: list[dict[str, Any]] = []
        for block in state.blocks():
            batch += replay.block(block)
            if len(batch) >= IN_CLAUSE_MAX:
                found += self._compare_flows(conn, batch)
                batch = []
            if len(found) >= MISMATCHES_MAX:
                return found
        found += self._compare_flows(conn, batch)
        flows = flows_table
        found += _rows_unexplained(
            conn, flows, (flows.c.account_id, flows.c.transfer_id), replay.seen
        )
        return found + self._compare_accounts(conn, replay.accounts)

    @staticmethod
    def _compare_flows(conn: Connection, expected: Sequence[dict[str, Any]]) -> list[Mismatch]:
        table = flows_table
        found: list[Mismatch] = []
        for start in range(0, len(expected), IN_CLAUSE_MAX):
            chunk = expected[start : start + IN_CLAUSE_MAX]
            keys = [(row["account_id"], row["transfer_id"]) for row in chunk]
            rows = {
                (row.account_id, row.transfer_id): row
                for row in conn.execute(
                    select(table).where(tuple_(table.c.account_id, table.c.transfer_id).in_(keys))
                )
            }
            for key, wanted in zip(keys, chunk, strict=True):
                found += _differences(
                    table.name, _flow_key(*key), wanted, rows.get(key), FLOW_FIELDS
                )
        return found

    @staticmethod
    def _compare_accounts(conn: Connection, accounts: dict[str, _Account]) -> list[Mismatch]:
        """Both ways, in account order a page at a time: each account the events opened has its
        row as the replay left it, and each row has its account."""
        table = flow_accounts_table
        found: list[Mismatch] = []
        expected_ids = sorted(accounts)
        for start in range(0, len(expected_ids), IN_CLAUSE_MAX):
            chunk = expected_ids[start : start + IN_CLAUSE_MAX]
            rows = {
                row.account_id: row
                for row in conn.execute(select(table).where(table.c.account_id.in_(chunk)))
            }
            for account_id in chunk:
                found += _differences(table.name, account_id, accounts[account_id].row(),
                                      rows.get(account_id), ACCOUNT_FIELDS)  # fmt: skip
            if len(found) >= MISMATCHES_MAX:
                return found
        known = {(account_id,) for account_id in accounts}
        return found + _rows_unexplained(conn, table, (table.c.account_id,), known)


def _rows_unexplained(
    conn: Connection,
    table: Table,
    key_columns: Sequence[Column[Any]],
    known: Container[tuple[str, ...]],
) -> list[Mismatch]:
    """The rows whose key the replay never produced, in key order, a page at a time."""
    key = tuple_(*key_columns)
    found: list[Mismatch] = []
    after: tuple[str, ...] | None = None
    while len(found) < MISMATCHES_MAX:
        query = select(*key_columns).order_by(*key_columns).limit(STATE_PAGE_KEYS)
        if after is not None:
            query = query.where(key > tuple_(*after))
        keys = [tuple(row) for row in conn.execute(query)]
        found += [
            Mismatch(DOMAIN, table.name, "/".join(row_key), "row", None, "present")
            for row_key in keys
            if row_key not in known
        ]
        if len(keys) < STATE_PAGE_KEYS:
            break
        after = keys[-1]
    return found

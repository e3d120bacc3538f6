"""The payments query tables: accounts with balances, statement entries, transfers, totals.

Fed by the contract's events (`payments.*`), including those other contracts cause through
`ctx.call` and the end-of-block expiries, so `zhijin reindex` rebuilds every table from the
blocks.  One block is applied in one pass: the accounts it touches are read once, every change is
computed in memory in event order, then written in a few bulk statements.  That keeps a hot
account (one row touched by hundreds of transfers in a block) at one read and one write per block.

Tables:

- `payments_accounts`: one row per account: its record, the four counters, and how many
  statement entries it has (`entries`, the last entry number).
- `payments_entries`: one row per posted movement per account (a single-phase transfer, the
  posted part of a hold), numbered 1, 2, ... per account, with the running balance (posted
  credits minus posted debits) after it.  Holds, voids and expiries move no posted money: they
  show in the counters and in the transfer's `hold_status`, not as entries.
- `payments_transfers`: every transfer by id, the record as the chain stored it, and for a hold
  where it stands (pending, posted, voided, expired).
- `payments_currency_totals`: per currency, the number of accounts and the sums of the four
  counters, kept as decimal text because a sum over many accounts can pass 2**63 - 1.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from zhijin.chain.errors import invariant
from zhijin.payments import limits
from zhijin.payments.book import (
    EVENT_ACCOUNT_CREATED,
    EVENT_ACCOUNT_STATUS_CHANGED,
    EVENT_PENDING_EXPIRED,
    EVENT_TRANSFER_CREATED,
)
from zhijin.payments.records import PendingStatus, TransferFlag
from zhijin.platform.projections import BlockView

__all__ = [
    "COUNTERS",
    "TRANSFER_RECORD_COLUMNS",
    "PaymentsProjection",
    "accounts_table",
    "block_events",
    "entries_table",
    "metadata",
    "totals_table",
    "transfers_table",
]

EVENT_PREFIX = "payments."
IN_CLAUSE_IDS_MAX = 500  # ids per `IN (...)` when loading a block's accounts and holds
COUNTERS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
# The transfer row's columns copied as they are from the transfer's record on chain.
TRANSFER_RECORD_COLUMNS = (
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "kind",
    "pending_id",
    "parent_id",
    "tx_hash",
)
DEBIT = "debit"
CREDIT = "credit"

metadata = MetaData()

accounts_table = Table(
    "payments_accounts",
    metadata,
    Column("id", String(limits.ID_CHARS_MAX), primary_key=True),
    Column("owner", String(limits.OWNER_CHARS_MAX), nullable=False),
    Column("custodian", String(limits.OWNER_CHARS_MAX), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("exponent", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("flags", String(80), nullable=False),  # comma-separated, sorted
    Column("credit_limit", BigInteger, nullable=False),
    Column("reference", String(limits.REFERENCE_CHARS_MAX), nullable=True),
    Column("status", String(8), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("created_height", BigInteger, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in COUNTERS),
    Column("entries", BigInteger, nullable=False),
    Column("updated_height", BigInteger, nullable=False),
    Index("ix_payments_accounts_owner", "owner", "id"),
    Index("ix_payments_accounts_custodian", "custodian", "id"),
)

entries_table = Table(
    "payments_entries",
    metadata,
    Column("account_id", String(limits.ID_CHARS_MAX), primary_key=True),
    Column("entry_no", BigInteger, primary_key=True),
    Column("transfer_id", String(limits.TRANSFER_ID_CHARS_MAX), nullable=False),
    Column("direction", String(6), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),  # posted credits - posted debits, after
    Column("counterparty_id", String(limits.ID_CHARS_MAX), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(limits.REFERENCE_CHARS_MAX), nullable=True),
    Column("height", BigInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_payments_entries_account_time", "account_id", "time_ms"),
)

transfers_table = Table(
    "payments_transfers",
    metadata,
    Column("id", String(limits.TRANSFER_ID_CHARS_MAX), primary_key=True),
    Column("debit_account_id", String(limits.ID_CHARS_MAX), nullable=False),
    Column("credit_account_id", String(limits.ID_CHARS_MAX), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("pending_id", String(limits.ID_CHARS_MAX), nullable=True),
    Column("parent_id", String(limits.ID_CHARS_MAX), nullable=True),
    Column("hold_status", String(8), nullable=True),  # holds only
    Column("resolved_by", String(limits.ID_CHARS_MAX), nullable=True),
    Column("resolved_at_ms", BigInteger, nullable=True),
    Column("height", BigInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Column("record", Text, nullable=False),  # the transfer record as stored on chain (JSON)
    Index("ix_payments_transfers_parent", "parent_id"),
)

totals_table = Table(
    "payments_currency_totals",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("accounts", BigInteger, nullable=False),
    *(Column(name, String(40), nullable=False) for name in COUNTERS),
)


_ACCOUNT_COLUMNS = tuple(column.name for column in accounts_table.columns)
# The transfer record as text (keys sorted, no spaces); built once, `json.dumps` with options
# would build a new encoder for every transfer.
_RECORD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass
class _BlockChanges:
    """Everything one block changes, computed in memory before one bulk write per table."""

    accounts: dict[str, dict[str, Any]]  # loaded or created rows, by id
    holds: dict[str, dict[str, Any]]  # held transfers (loaded or created), by id
    new_accounts: dict[str, None] = field(default_factory=dict)
    changed_accounts: dict[str, None] = field(default_factory=dict)
    new_transfers: list[dict[str, Any]] = field(default_factory=list)
    changed_holds: dict[str, None] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, list[int]] = field(default_factory=dict)  # accounts + 4 counter deltas

    def account(self, account_id: str) -> dict[str, Any]:
        row = self.accounts.get(account_id)
        invariant(row is not None, f"an event names account {account_id} before it exists")
        assert row is not None
        return row

    def move(self, row: dict[str, Any], height: int, **deltas: int) -> None:
        for name, delta in deltas.items():
            row[name] += delta
        totals = self.totals.setdefault(row["currency"], [0, 0, 0, 0, 0])
        for index, name in enumerate(COUNTERS, start=1):
            totals[index] += deltas.get(name, 0)
        row["updated_height"] = height
        if row["id"] not in self.new_accounts:
            self.changed_accounts[row["id"]] = None


class PaymentsProjection:
    name = "payments"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        events = [
            event
            for event in block_events(block)
            if str(event.get("type", "")).startswith(EVENT_PREFIX)
        ]
        if not events:
            return
        changes = _BlockChanges(
            accounts=_load_accounts(conn, _account_ids(events)),
            holds=_load_holds(conn, _hold_ids(events)),
        )
        for event in events:
            _apply_event(changes, event["type"][len(EVENT_PREFIX) :], event["attrs"], block)
        _write(conn, changes)


def block_events(block: BlockView) -> Iterator[dict[str, Any]]:
    for tx in block.txs:
        if tx.ok:
            yield from tx.events
    yield from block.end_block_events


def _account_ids(events: Iterable[dict[str, Any]]) -> list[str]:
    wanted: set[str] = set()
    for event in events:
        attrs = event["attrs"]
        for name in ("debit_account_id", "credit_account_id", "account_id"):
            value = attrs.get(name)
            if isinstance(value, str):
                wanted.add(value)
    return sorted(wanted)


def _hold_ids(events: Iterable[dict[str, Any]]) -> list[str]:
    wanted: set[str] = set()
    for event in events:
        attrs = event["attrs"]
        if event["type"] == EVENT_PREFIX + EVENT_PENDING_EXPIRED:
            wanted.add(attrs["transfer_id"])
        elif attrs.get("pending_id") is not None:
            wanted.add(attrs["pending_id"])
    return sorted(wanted)


def _load_accounts(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids, IN_CLAUSE_IDS_MAX):
        query = select(accounts_table).where(accounts_table.c.id.in_(chunk))
        for row in conn.execute(query):
            rows[row.id] = dict(row._mapping)
    return rows


def _load_holds(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    columns = (
        transfers_table.c.id,
        transfers_table.c.amount,
        transfers_table.c.hold_status,
        transfers_table.c.resolved_by,
        transfers_table.c.resolved_at_ms,
    )
    for chunk in _chunks(ids, IN_CLAUSE_IDS_MAX):
        for row in conn.execute(select(*columns).where(transfers_table.c.id.in_(chunk))):
            rows[row.id] = dict(row._mapping)
    return rows


def _apply_event(
    changes: _BlockChanges, event_type: str, attrs: dict[str, Any], block: BlockView
) -> None:
    if event_type == EVENT_TRANSFER_CREATED:
        _transfer_created(changes, attrs, block)
    elif event_type == EVENT_ACCOUNT_CREATED:
        _account_created(changes, attrs, block)
    elif event_type == EVENT_ACCOUNT_STATUS_CHANGED:
        row = changes.account(attrs["account_id"])
        row["status"] = attrs["status"]
        changes.move(row, block.height)
    elif event_type == EVENT_PENDING_EXPIRED:
        _pending_expired(changes, attrs, block)


def _account_created(changes: _BlockChanges, attrs: dict[str, Any], block: BlockView) -> None:
    row = {
        **{name: attrs[name] for name in _ACCOUNT_COLUMNS if name in attrs},
        "flags": ",".join(attrs["flags"]),
        "entries": 0,
        "updated_height": block.height,
    }
    invariant(all(row[name] == 0 for name in COUNTERS), "an account opens with zero counters")
    changes.accounts[row["id"]] = row
    changes.new_accounts[row["id"]] = None
    changes.totals.setdefault(row["currency"], [0, 0, 0, 0, 0])[0] += 1


def _transfer_created(changes: _BlockChanges, record: dict[str, Any], block: BlockView) -> None:
    flags = record["flags"]
    debit = changes.account(record["debit_account_id"])
    credit = changes.account(record["credit_account_id"])
    amount = record["amount"]
    row = {name: record[name] for name in TRANSFER_RECORD_COLUMNS}
    row.update(
        height=record["created_height"],
        time_ms=record["created_at_ms"],
        hold_status=None,
        resolved_by=None,
        resolved_at_ms=None,
        record=_RECORD_JSON.encode(record),
    )
    posted = amount
    if TransferFlag.PENDING in flags:
        row["hold_status"] = PendingStatus.PENDING.value
        changes.holds[record["id"]] = row
        changes.move(debit, block.height, debits_pending=amount)
        changes.move(credit, block.height, credits_pending=amount)
        posted = 0
    elif TransferFlag.POST_PENDING_TRANSFER in flags or TransferFlag.VOID_PENDING_TRANSFER in flags:
        posting = TransferFlag.POST_PENDING_TRANSFER in flags
        held = _resolve_hold(changes, record["pending_id"], posting, record["id"], block)
        posted = amount if posting else 0
        changes.move(debit, block.height, debits_pending=-held["amount"], debits_posted=posted)
        changes.move(credit, block.height, credits_pending=-held["amount"], credits_posted=posted)
    else:
        changes.move(debit, block.height, debits_posted=amount)
        changes.move(credit, block.height, credits_posted=amount)
    changes.new_transfers.append(row)
    if posted:
        _entry(changes, debit, DEBIT, posted, record, credit["id"], block)
        _entry(changes, credit, CREDIT, posted, record, debit["id"], block)


def _resolve_hold(
    changes: _BlockChanges, hold_id: str, posting: bool, resolved_by: str | None, block: BlockView
) -> dict[str, Any]:
    held = changes.holds.get(hold_id)
    invariant(
        held is not None and held["hold_status"] == PendingStatus.PENDING,
        f"a resolution names hold {hold_id}, which is not pending",
    )
    assert held is not None
    if resolved_by is None:
        held["hold_status"] = PendingStatus.EXPIRED.value
    else:
        status = PendingStatus.POSTED if posting else PendingStatus.VOIDED
        held["hold_status"] = status.value
    held["resolved_by"] = resolved_by
    held["resolved_at_ms"] = block.time_ms
    changes.changed_holds[hold_id] = None
    return held


def _pending_expired(changes: _BlockChanges, attrs: dict[str, Any], block: BlockView) -> None:
    held = _resolve_hold(changes, attrs["transfer_id"], False, None, block)
    invariant(held["amount"] == attrs["amount"], "an expiry releases the held amount")
    debit = changes.account(attrs["debit_account_id"])
    credit = changes.account(attrs["credit_account_id"])
    changes.move(debit, block.height, debits_pending=-attrs["amount"])
    changes.move(credit, block.height, credits_pending=-attrs["amount"])


def _entry(
    changes: _BlockChanges,
    account: dict[str, Any],
    direction: str,
    amount: int,
    record: dict[str, Any],
    counterparty_id: str,
    block: BlockView,
) -> None:
    account["entries"] += 1
    changes.entries.append(
        {
            "account_id": account["id"],
            "entry_no": account["entries"],
            "transfer_id": record["id"],
            "direction": direction,
            "amount": amount,
            "balance": account["credits_posted"] - account["debits_posted"],
            "counterparty_id": counterparty_id,
            "currency": record["currency"],
            "kind": record["kind"],
            "reference": record["reference"],
            "height": block.height,
            "time_ms": record["created_at_ms"],
            "tx_hash": record["tx_hash"],
        }
    )


_HOLD_FIELDS = ("hold_status", "resolved_by", "resolved_at_ms")
_ACCOUNT_FIELDS = ("status", "entries", "updated_height", *COUNTERS)
_TRANSFER_COLUMNS = tuple(column.name for column in transfers_table.columns)
_ENTRY_COLUMNS = tuple(column.name for column in entries_table.columns)


class _BulkStatement:
    """One INSERT or UPDATE run over many rows through the driver's executemany.

    A block writes a row per transfer, two per posted transfer (entries) and one per account
    it touches: thousands of rows in a busy block.  SQLAlchemy Core would build a parameter
    dict per row on top of the driver's own work (measured: a third of the projection's CPU),
    so rows go to the driver as plain tuples, in the column order of the statement.
    """

    def __init__(self, sql: str, fields: Sequence[str]) -> None:
        self._sql = sql  # with `{p}` for each placeholder
        self._fields = operator.itemgetter(*fields)
        self._by_paramstyle: dict[str, str] = {}

    @classmethod
    def insert(cls, table: Table, columns: Sequence[str]) -> _BulkStatement:
        names = ", ".join(columns)
        values = ", ".join("{p}" for _ in columns)
        return cls(f"INSERT INTO {table.name} ({names}) VALUES ({values})", columns)

    @classmethod
    def update(cls, table: Table, columns: Sequence[str], key: str) -> _BulkStatement:
        assignments = ", ".join(f"{name} = {{p}}" for name in columns)
        sql = f"UPDATE {table.name} SET {assignments} WHERE {key} = {{p}}"
        return cls(sql, (*columns, key))

    def run(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        paramstyle = conn.dialect.paramstyle
        sql = self._by_paramstyle.get(paramstyle)
        if sql is None:
            invariant(paramstyle in _PLACEHOLDERS, f"no placeholder for paramstyle {paramstyle}")
            sql = self._by_paramstyle[paramstyle] = self._sql.format(p=_PLACEHOLDERS[paramstyle])
        fields = self._fields
        conn.exec_driver_sql(sql, [fields(row) for row in rows])


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_INSERT_ACCOUNTS = _BulkStatement.insert(accounts_table, _ACCOUNT_COLUMNS)
_UPDATE_ACCOUNTS = _BulkStatement.update(accounts_table, _ACCOUNT_FIELDS, "id")
_INSERT_TRANSFERS = _BulkStatement.insert(transfers_table, _TRANSFER_COLUMNS)
_UPDATE_HOLDS = _BulkStatement.update(transfers_table, _HOLD_FIELDS, "id")
_INSERT_ENTRIES = _BulkStatement.insert(entries_table, _ENTRY_COLUMNS)


def _write(conn: Connection, changes: _BlockChanges) -> None:
    accounts = changes.accounts
    if changes.new_accounts:
        _INSERT_ACCOUNTS.run(conn, [accounts[i] for i in changes.new_accounts])
    if changes.changed_accounts:
        _UPDATE_ACCOUNTS.run(conn, [accounts[i] for i in changes.changed_accounts])
    if changes.new_transfers:
        _INSERT_TRANSFERS.run(conn, changes.new_transfers)
    new_ids = {row["id"] for row in changes.new_transfers}
    resolved_earlier = [i for i in changes.changed_holds if i not in new_ids]
    if resolved_earlier:
        _UPDATE_HOLDS.run(conn, [changes.holds[i] for i in resolved_earlier])
    if changes.entries:
        _INSERT_ENTRIES.run(conn, changes.entries)
    _write_totals(conn, changes.totals)


def _write_totals(conn: Connection, deltas: dict[str, list[int]]) -> None:
    if not deltas:
        return
    stored = {
        row.currency: row
        for row in conn.execute(
            select(totals_table).where(totals_table.c.currency.in_(sorted(deltas)))
        )
    }
    for code, delta in sorted(deltas.items()):
        row = stored.get(code)
        values: dict[str, Any] = {"accounts": (row.accounts if row else 0) + delta[0]}
        for index, name in enumerate(COUNTERS, start=1):
            previous = int(getattr(row, name)) if row else 0
            values[name] = str(previous + delta[index])
        if row is None:
            conn.execute(totals_table.insert().values(currency=code, **values))
        else:
            conn.execute(
                totals_table.update().where(totals_table.c.currency == code).values(**values)
            )


# -- reads ----------------------------------------------------------------------------------------


def account_json(row: Any) -> dict[str, Any]:
    """An account row as the API shows it: the record, its counters and derived balances."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    data["flags"] = [flag for flag in data["flags"].split(",") if flag]
    data["balance_posted"] = data["credits_posted"] - data["debits_posted"]
    protected = "debits_must_not_exceed_credits" in data["flags"]
    data["available"] = (
        data["credits_posted"]
        + data["credit_limit"]
        - data["debits_posted"]
        - data["debits_pending"]
        if protected
        else None
    )
    return data


def read_account(conn: Connection, account_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(accounts_table).where(accounts_table.c.id == account_id)).first()
    return None if row is None else account_json(row)


def list_accounts(
    conn: Connection,
    *,
    owner: str | None = None,
    custodian: str | None = None,
    currency: str | None = None,
    after_id: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of accounts in id order; pass the last id as `after_id` for the next page."""
    invariant(0 < limit <= limits.PAGE_SIZE_MAX, "page size within bounds")
    query = select(accounts_table).order_by(accounts_table.c.id).limit(limit)
    if owner is not None:
        query = query.where(accounts_table.c.owner == owner)
    if custodian is not None:
        query = query.where(accounts_table.c.custodian == custodian)
    if currency is not None:
        query = query.where(accounts_table.c.currency == currency)
    if after_id is not None:
        query = query.where(accounts_table.c.id > after_id)
    return [account_json(row) for row in conn.execute(query)]


def statement_page(
    conn: Connection, *, account_id: str, after_entry: int = 0, limit: int
) -> list[dict[str, Any]]:
    """Entries after entry number `after_entry`, oldest first, at most `limit`."""
    invariant(0 < limit <= limits.PAGE_SIZE_MAX, "page size within bounds")
    query = (
        select(entries_table)
        .where(entries_table.c.account_id == account_id, entries_table.c.entry_no > after_entry)
        .order_by(entries_table.c.entry_no)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def recent_entries(
    conn: Connection, *, account_id: str, before_entry: int | None = None, limit: int
) -> list[dict[str, Any]]:
    """Entries before entry number `before_entry` (all when None), newest first, at most
    `limit`: the statement as a person reads it."""
    invariant(0 < limit <= limits.PAGE_SIZE_MAX, "page size within bounds")
    query = (
        select(entries_table)
        .where(entries_table.c.account_id == account_id)
        .order_by(entries_table.c.entry_no.desc())
        .limit(limit)
    )
    if before_entry is not None:
        query = query.where(entries_table.c.entry_no < before_entry)
    return [dict(row._mapping) for row in conn.execute(query)]


def entries_between(
    conn: Connection, *, account_id: str, from_ms: int, to_ms: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """(opening balance, entries booked in [from_ms, to_ms)), at most `limit` entries."""
    before = conn.execute(
        select(entries_table.c.balance)
        .where(entries_table.c.account_id == account_id, entries_table.c.time_ms < from_ms)
        .order_by(entries_table.c.entry_no.desc())
        .limit(1)
    ).scalar()
    query = (
        select(entries_table)
        .where(
            entries_table.c.account_id == account_id,
            entries_table.c.time_ms >= from_ms,
            entries_table.c.time_ms < to_ms,
        )
        .order_by(entries_table.c.entry_no)
        .limit(limit)
    )
    return int(before or 0), [dict(row._mapping) for row in conn.execute(query)]


def read_transfer(conn: Connection, transfer_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(transfers_table.c.record, *(transfers_table.c[k] for k in _HOLD_FIELDS)).where(
            transfers_table.c.id == transfer_id
        )
    ).first()
    if row is None:
        return None
    record: dict[str, Any] = json.loads(row.record)
    if row.hold_status is not None:
        record["hold"] = {name: getattr(row, name) for name in _HOLD_FIELDS}
    return record


def currency_totals(conn: Connection) -> list[dict[str, Any]]:
    """Per currency: accounts and the sums of their counters (ints), and whether it balances."""
    lines = []
    for row in conn.execute(select(totals_table).order_by(totals_table.c.currency)):
        line: dict[str, Any] = {"currency": row.currency, "accounts": row.accounts}
        line.update({name: int(getattr(row, name)) for name in COUNTERS})
        line["balanced"] = (
            line["debits_posted"] == line["credits_posted"]
            and line["debits_pending"] == line["credits_pending"]
        )
        lines.append(line)
    return lines

"""What the behavioural score reads of the ledger: a consumer of payments' committed events.

A projection (zhijin/platform/projections.py) over the blocks: the runner applies each block
once, in height order, and moves this projection's cursor in the same database transaction, so
a restart resumes where it stopped and `zhijin reindex` rebuilds it from the blocks.  Within a
block, every posted movement is keyed by (account, transfer): a movement already kept is
skipped, so a block applied again (or an event seen twice) never counts twice.

It reads only the events payments writes on chain (their wire form, `expected.PAYMENT_EVENTS`),
never payments' tables: `payments.account_created` (whose account: owner, custodian, currency,
opening time) and `payments.transfer_created` (a posted transfer, or the posting of a hold;
a hold itself and its void move no money).  Tables:

- `credit_flow_accounts`: one row per account: owner, custodian, currency, when it opened, and
  its posted balance (credits minus debits) after the last movement applied.
- `credit_flows`: one row per posted movement per account: direction, amount, the balance
  after it, whether it came from another owner (an inflow), when.

`FlowFacts` answers credit's `PaymentFacts` port from these tables: per account of the subject,
the balance now and at the start of the window, and what others paid in within it.  An inflow
on the ledger therefore moves the behavioural score (`inflows_90d`, `balance_trend`) as soon as
this projection has applied its block, and the score's history says why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
    tuple_,
    update,
)

from zhijin.credit import limits
from zhijin.credit.expected import PAYMENT_EVENTS, AccountFacts
from zhijin.platform.projections import BlockView

__all__ = [
    "CreditFlowsProjection",
    "FlowFacts",
    "flow_accounts_table",
    "flows_table",
    "is_posted",
    "payment_events",
]

ACCOUNT_CREATED = PAYMENT_EVENTS.account_created
TRANSFER_CREATED = PAYMENT_EVENTS.transfer_created
IN_CLAUSE_MAX = 500  # ids per `IN (...)`
ACCOUNTS_PER_SUBJECT_MAX = 50  # a customer's accounts looked at for one score (one page)
_ID = limits.FLOW_ID_CHARS_MAX
_OWNER = limits.FLOW_OWNER_CHARS_MAX

metadata = MetaData()
flow_accounts_table = Table(
    "credit_flow_accounts",
    metadata,
    Column("account_id", String(_ID), primary_key=True),
    Column("owner", String(_OWNER), nullable=False),
    Column("custodian", String(_OWNER), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("entries", BigInteger, nullable=False),  # movements kept, the last entry_no
    Column("height", BigInteger, nullable=False),
    Index("ix_credit_flow_accounts_owner", "owner", "account_id"),
)
flows_table = Table(
    "credit_flows",
    metadata,
    Column("account_id", String(_ID), primary_key=True),
    Column("transfer_id", String(_ID), primary_key=True),
    Column("entry_no", BigInteger, nullable=False),  # 1, 2, ... per account, in ledger order
    Column("direction", String(6), nullable=False),  # credit | debit
    Column("amount_minor", BigInteger, nullable=False),
    Column("balance_minor_after", BigInteger, nullable=False),
    Column("from_other_owner", Boolean, nullable=False),  # an inflow: paid in by someone else
    Column("time_ms", BigInteger, nullable=False),
    Column("height", BigInteger, nullable=False),
    Index("ix_credit_flows_account_time", "account_id", "time_ms", "entry_no"),
)


def payment_events(block: BlockView) -> Iterator[tuple[str, dict[str, Any]]]:
    """The block's payments events this consumer reads, in order: those of its committed txs
    (a failed tx emitted nothing), then its end-block events."""
    wanted = (ACCOUNT_CREATED, TRANSFER_CREATED)
    for tx in block.txs:
        if tx.ok:
            for event in tx.events:
                if event.get("type") in wanted:
                    yield event["type"], event["attrs"]
    for event in block.end_block_events:
        if event.get("type") in wanted:
            yield event["type"], event["attrs"]


def is_posted(record: dict[str, Any]) -> bool:
    """A transfer that moves posted money: a plain one or a hold's posting (a hold and its
    void only reserve and release)."""
    flags = set(record.get("flags") or ())
    return not flags & {PAYMENT_EVENTS.flag_pending, PAYMENT_EVENTS.flag_void}


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class CreditFlowsProjection:
    name = "credit_flows"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        events = list(payment_events(block))
        if not events:
            return
        transfers = [
            attrs for kind, attrs in events if kind == TRANSFER_CREATED and is_posted(attrs)
        ]
        accounts = self._load_accounts(conn, transfers)
        new_accounts: dict[str, dict[str, Any]] = {}
        seen = self._kept(conn, transfers)
        flows: list[dict[str, Any]] = []
        touched: dict[str, None] = {}
        for kind, attrs in events:  # in event order: an account opens before it is paid
            if kind == ACCOUNT_CREATED:
                if attrs["id"] not in accounts:
                    row = _account_row(attrs, block.height)
                    accounts[row["account_id"]] = new_accounts[row["account_id"]] = row
            elif is_posted(attrs):
                flows.extend(_movements(attrs, accounts, seen, block, touched))
        if new_accounts:
            conn.execute(flow_accounts_table.insert(), list(new_accounts.values()))
        if flows:
            conn.execute(flows_table.insert(), flows)
        table = flow_accounts_table
        for account_id in touched:  # an account new in this block was inserted as it ends
            if account_id not in new_accounts:
                row = accounts[account_id]
                conn.execute(
                    update(table)
                    .where(table.c.account_id == account_id)
                    .values(balance_minor=row["balance_minor"], entries=row["entries"],
                            height=block.height)
                )  # fmt: skip

    @staticmethod
    def _load_accounts(
        conn: Connection, transfers: Sequence[dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        ids = sorted(
            {t["debit_account_id"] for t in transfers} | {t["credit_account_id"] for t in transfers}
        )
        rows: dict[str, dict[str, Any]] = {}
        table = flow_accounts_table
        for chunk in _chunks(ids, IN_CLAUSE_MAX):
            for row in conn.execute(select(table).where(table.c.account_id.in_(chunk))):
                rows[row.account_id] = dict(row._mapping)
        return rows

    @staticmethod
    def _kept(conn: Connection, transfers: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
        """The (account, transfer) movements already kept: an event applied twice is skipped."""
        keys = [(t["credit_account_id"], t["id"]) for t in transfers]
        keys += [(t["debit_account_id"], t["id"]) for t in transfers]
        kept: set[tuple[str, str]] = set()
        table = flows_table
        for chunk in _chunks(keys, IN_CLAUSE_MAX):
            query = select(table.c.account_id, table.c.transfer_id).where(
                tuple_(table.c.account_id, table.c.transfer_id).in_(list(chunk))
            )
            kept.update((row.account_id, row.transfer_id) for row in conn.execute(query))
        return kept


def _account_row(attrs: dict[str, Any], height: int) -> dict[str, Any]:
    return {
        "account_id": attrs["id"],
        "owner": attrs["owner"],
        "custodian": attrs.get("custodian"),
        "currency": attrs["currency"],
        "opened_at_ms": attrs["created_at_ms"],
        "balance_minor": 0,
        "entries": 0,
        "height": height,
    }


def _movements(
    record: dict[str, Any],
    accounts: dict[str, dict[str, Any]],
    seen: set[tuple[str, str]],
    block: BlockView,
    touched: dict[str, None],
) -> Iterator[dict[str, Any]]:
    """The two sides of a posted transfer, each once, with the running balance after it."""
    debit = accounts.get(record["debit_account_id"])
    credit = accounts.get(record["credit_account_id"])
    amount = int(record["amount"])
    for row, other, sign, direction in ((debit, credit, -1, "debit"), (credit, debit, 1, "credit")):
        if row is None or (row["account_id"], record["id"]) in seen:
            continue  # an account opened before this consumer existed is never half-counted
        seen.add((row["account_id"], record["id"]))
        row["balance_minor"] += sign * amount
        row["entries"] += 1
        touched[row["account_id"]] = None
        yield {
            "account_id": row["account_id"],
            "transfer_id": record["id"],
            "entry_no": row["entries"],
            "direction": direction,
            "amount_minor": amount,
            "balance_minor_after": row["balance_minor"],
            "from_other_owner": sign > 0 and (other is None or other["owner"] != row["owner"]),
            "time_ms": int(record.get("created_at_ms", block.time_ms)),
            "height": block.height,
        }


@dataclass(frozen=True, slots=True)
class FlowFacts:
    """Credit's `PaymentFacts` port, answered from this projection's tables."""

    engine: Engine

    def account_facts(self, subject: str, *, since_ms: int, until_ms: int) -> list[AccountFacts]:
        accounts = flow_accounts_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(accounts)
                .where(accounts.c.owner == subject)
                .order_by(accounts.c.account_id)
                .limit(ACCOUNTS_PER_SUBJECT_MAX)
            ).all()
            return [self._facts(conn, row, since_ms, until_ms) for row in rows]

    @staticmethod
    def _facts(conn: Connection, account: Any, since_ms: int, until_ms: int) -> AccountFacts:
        flows = flows_table
        mine = flows.c.account_id == account.account_id

        def balance_before(moment_ms: int) -> int:
            found = conn.execute(
                select(flows.c.balance_minor_after)
                .where(and_(mine, flows.c.time_ms < moment_ms))
                .order_by(flows.c.entry_no.desc())
                .limit(1)
            ).scalar()
            return int(found or 0)

        inflow = conn.execute(
            select(func.coalesce(func.sum(flows.c.amount_minor), 0)).where(
                and_(
                    mine,
                    flows.c.from_other_owner.is_(True),
                    flows.c.time_ms >= since_ms,
                    flows.c.time_ms <= until_ms,
                )
            )
        ).scalar()
        return AccountFacts(
            account_id=account.account_id,
            custodian=account.custodian,
            currency=account.currency,
            opened_at_ms=account.opened_at_ms,
            balance_minor_now=balance_before(until_ms + 1),
            balance_minor_then=balance_before(since_ms),
            inflow_minor=int(inflow or 0),
        )

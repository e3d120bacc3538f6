"""The tx's working set of ledger records (`Book`) and the block facts an operation sees (`Env`).

A Book reads each record through the tx's context at most once, stages changes that can be undone
group by group (one item, or one linked chain), and writes every changed record and emits every
event once, at the end.  Writing once per key matters for a hot account that one batch touches
many times; undoing gives a refused item or linked chain "nothing lost, nothing half-applied"
without asking the runtime for savepoints.

Records are read with `ctx.get_record` and written with `ctx.put_record`, so an account that many
txs of a block touch is decoded once per block, and each record is encoded by its own type
(`records` says which write their JSON out without a validation pass, and why that is safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from zhijin.chain.contract import Context, Record
from zhijin.chain.errors import invariant
from zhijin.payments.records import (
    Account,
    FeeSchedule,
    FxQuote,
    PendingState,
    Transfer,
    keys,
)

__all__ = [
    "EVENT_ACCOUNT_CREATED",
    "EVENT_ACCOUNT_STATUS_CHANGED",
    "EVENT_FEE_SCHEDULE_SET",
    "EVENT_FX_QUOTE_CREATED",
    "EVENT_PENDING_EXPIRED",
    "EVENT_TRANSFER_CREATED",
    "Book",
    "Env",
]

EVENT_ACCOUNT_CREATED = "account_created"
EVENT_ACCOUNT_STATUS_CHANGED = "account_status_changed"
EVENT_TRANSFER_CREATED = "transfer_created"
EVENT_PENDING_EXPIRED = "pending_expired"
EVENT_FEE_SCHEDULE_SET = "fee_schedule_set"
EVENT_FX_QUOTE_CREATED = "fx_quote_created"

_MISSING: Any = object()  # not loaded yet (None means loaded and absent, or deleted)
_R = TypeVar("_R", bound=Record)


@dataclass(frozen=True, slots=True)
class Env:
    time_ms: int
    height: int
    tx_hash: str


class Book:
    """The tx's working set: records read once, changes undoable per group, written once."""

    __slots__ = ("_ctx", "_dirty", "_event_mark", "_events", "_journal", "_values")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        # key -> record, expiry entry (the transfer id), or None (absent or deleted).
        self._values: dict[str, Any] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of changed keys
        self._journal: list[tuple[str, Any, bool]] | None = None
        # (type, attrs, None) for a plain event; (type, record, key) for an event that carries
        # the record staged under key (a new transfer), written and emitted as one at the flush.
        self._events: list[tuple[str, Any, str | None]] = []
        self._event_mark = 0

    # -- reads ---------------------------------------------------------------------------------
    def _load(self, key: str, record_type: type[_R]) -> _R | None:
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            value = self._ctx.get_record(key, record_type)
            self._values[key] = value
        result: _R | None = value
        return result

    def account(self, account_id: str) -> Account | None:
        return self._load(keys.account(account_id), Account)

    def transfer(self, transfer_id: str) -> Transfer | None:
        return self._load(keys.transfer(transfer_id), Transfer)

    def pending(self, transfer_id: str) -> PendingState | None:
        return self._load(keys.pending(transfer_id), PendingState)

    def quote(self, quote_id: str) -> FxQuote | None:
        return self._load(keys.quote(quote_id), FxQuote)

    def fee_schedule(self, product: str, code: str) -> FeeSchedule | None:
        return self._load(keys.fee(product, code), FeeSchedule)

    def refund_total(self, transfer_id: str) -> tuple[int, int]:
        """(how much of a payment its refunds returned so far, how many refunds made it)."""
        key = keys.refunded(transfer_id)
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            value = self._ctx.get(key)
            self._values[key] = value
        if value is None:
            return 0, 0
        return int(value["refunded_amount"]), int(value["refunds"])

    def due_expiries(self, limit: int) -> list[tuple[str, Any]]:
        return self._ctx.scan(keys.EXPIRY, limit=limit)

    # -- staged writes -------------------------------------------------------------------------
    def _stage(self, key: str, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((key, self._values.get(key, _MISSING), key in self._dirty))
        self._values[key] = value
        self._dirty[key] = None

    def put_account(self, account: Account) -> None:
        self._stage(keys.account(account.id), account)

    def put_transfer(self, transfer: Transfer) -> None:
        """Stage a new transfer and its event: both carry the same record, encoded once."""
        key = keys.transfer(transfer.id)
        self._stage(key, transfer)
        self._events.append((EVENT_TRANSFER_CREATED, transfer, key))

    def put_pending(self, state: PendingState) -> None:
        self._stage(keys.pending(state.transfer_id), state)

    def put_quote(self, quote: FxQuote) -> None:
        self._stage(keys.quote(quote.id), quote)

    def put_refund_total(self, transfer_id: str, refunded_amount: int, refunds: int) -> None:
        """A payment's refunded total and how many refunds made it (plain JSON, integers)."""
        value = {"refunded_amount": refunded_amount, "refunds": refunds, "transfer_id": transfer_id}
        self._stage(keys.refunded(transfer_id), value)

    def put_fee_schedule(self, schedule: FeeSchedule) -> None:
        self._stage(keys.fee(schedule.product, schedule.currency), schedule)

    def put_expiry(self, expires_at_ms: int, transfer_id: str) -> None:
        self._stage(keys.expiry(expires_at_ms, transfer_id), transfer_id)

    def delete_expiry(self, expires_at_ms: int, transfer_id: str) -> None:
        self._stage(keys.expiry(expires_at_ms, transfer_id), None)

    def emit(self, event_type: str, attrs: dict[str, Any]) -> None:
        self._events.append((event_type, attrs, None))

    # -- atomic groups -------------------------------------------------------------------------
    def begin(self) -> None:
        invariant(self._journal is None, "atomic groups do not nest")
        self._journal = []
        self._event_mark = len(self._events)

    def commit(self) -> None:
        invariant(self._journal is not None, "commit without begin")
        self._journal = None

    def rollback(self) -> None:
        journal = self._journal
        invariant(journal is not None, "rollback without begin")
        assert journal is not None  # for mypy; `invariant` raised otherwise
        for key, previous, was_dirty in reversed(journal):
            if previous is _MISSING:
                self._values.pop(key, None)
            else:
                self._values[key] = previous
            if not was_dirty:
                self._dirty.pop(key, None)
        del self._events[self._event_mark :]
        self._journal = None

    def flush(self) -> None:
        """Stage every changed record and every event (in emission order) in the tx's context."""
        invariant(self._journal is None, "flush inside an atomic group")
        ctx, values = self._ctx, self._values
        # A record whose event carries it is written with that event, in event order: one
        # encoding for both.  Write order within a tx does not matter (the write set is sorted);
        # event order does, and is kept.
        carried = {
            record_key
            for _, record, record_key in self._events
            if record_key is not None and record_key in self._dirty and values[record_key] is record
        }
        for key in self._dirty:
            if key in carried:
                continue
            value = values[key]
            if value is None:
                ctx.delete(key)
            elif isinstance(value, str | dict):  # an expiry entry, a refunded total
                ctx.put(key, value)
            else:
                ctx.put_record(key, value)
        for event_type, payload, record_key in self._events:
            if record_key is None:
                ctx.emit(event_type, **payload)
            elif record_key in carried:
                carried.discard(record_key)
                ctx.put_record(record_key, payload, event=event_type)
            else:
                ctx.emit(event_type, **payload.to_json())
        self._dirty.clear()
        self._events.clear()

"""The tx's working set of ledger records (`Book`) and the block facts an operation sees (`Env`).

A Book reads each record through the tx's context at most once, stages changes that can be undone
group by group (one item, or one linked chain), and writes every changed record and emits every
event once, at the end.  Writing once per key matters for a hot account that one batch touches
many times; undoing gives a refused item or linked chain "nothing lost, nothing half-applied"
without asking the runtime for savepoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhijin.chain.contract import Context
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


@dataclass(frozen=True, slots=True)
class Env:
    time_ms: int
    height: int
    tx_hash: str


class Book:
    """The tx's working set: records read once, changes undoable per group, written once."""

    __slots__ = ("_ctx", "_dirty", "_encoded", "_event_mark", "_events", "_journal", "_values")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._values: dict[str, Any] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of changed keys
        self._journal: list[tuple[str, Any, bool]] | None = None
        # (type, attrs, key): key names the staged record an event carries (transfers), else None.
        self._events: list[tuple[str, dict[str, Any], str | None]] = []
        self._event_mark = 0
        # key -> (record, its JSON) for records whose JSON was built when staged (transfers,
        # whose event carries the same JSON); flush writes it with its event (validated once)
        # if the record is still the one staged under the key.  Nothing mutates these dicts:
        # the runtime encodes a written value at once and copies an event's attributes.
        self._encoded: dict[str, tuple[Any, dict[str, Any]]] = {}

    # -- reads ---------------------------------------------------------------------------------
    def _load(self, key: str, parse: Any) -> Any:
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            raw = self._ctx.get(key)
            value = None if raw is None else parse(raw)
            self._values[key] = value
        return value

    def account(self, account_id: str) -> Account | None:
        result: Account | None = self._load(keys.account(account_id), Account.from_json)
        return result

    def transfer(self, transfer_id: str) -> Transfer | None:
        result: Transfer | None = self._load(keys.transfer(transfer_id), Transfer.from_json)
        return result

    def pending(self, transfer_id: str) -> PendingState | None:
        result: PendingState | None = self._load(keys.pending(transfer_id), PendingState.from_json)
        return result

    def quote(self, quote_id: str) -> FxQuote | None:
        result: FxQuote | None = self._load(keys.quote(quote_id), FxQuote.from_json)
        return result

    def fee_schedule(self, product: str, code: str) -> FeeSchedule | None:
        result: FeeSchedule | None = self._load(keys.fee(product, code), FeeSchedule.from_json)
        return result

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
        record = transfer.to_json()
        self._stage(key, transfer)
        self._encoded[key] = (transfer, record)
        self._events.append((EVENT_TRANSFER_CREATED, record, key))

    def put_pending(self, state: PendingState) -> None:
        self._stage(keys.pending(state.transfer_id), state)

    def put_quote(self, quote: FxQuote) -> None:
        self._stage(keys.quote(quote.id), quote)

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
        ctx, values, encoded = self._ctx, self._values, self._encoded
        # Records whose event carries their JSON are written with that event, in event order:
        # one validation for both.  Write order within a tx does not matter (the write set is
        # sorted); event order does, and is kept.
        with_event = {
            key
            for _, attrs, key in self._events
            if key is not None
            and key in self._dirty
            and (staged := encoded.get(key)) is not None
            and staged[0] is values[key]
            and staged[1] is attrs
        }
        for key in self._dirty:
            if key in with_event:
                continue
            value = values[key]
            if value is None:
                ctx.delete(key)
            elif isinstance(value, str):
                ctx.put(key, value)
            else:
                staged = encoded.get(key)
                ctx.put(
                    key, staged[1] if staged is not None and staged[0] is value else value.to_json()
                )
        for event_type, attrs, record_key in self._events:
            if record_key in with_event and encoded[record_key][1] is attrs:
                with_event.discard(record_key)
                ctx.put(record_key, attrs, event=event_type)
            else:
                ctx.emit(event_type, **attrs)
        self._dirty.clear()
        self._events.clear()
        encoded.clear()

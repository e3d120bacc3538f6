"""What a block's payments events mean to a signed-in end user: their own accounts only.

A subscriber's accounts are read from the projections when it subscribes and grow as accounts
are opened for its DID; every `payments.*` event touching one of them (a transfer in or out, a
hold expiring, a status change, the opening itself) becomes a `payments` notice with the event's
type and attributes, which are what the statement and transfer reads already show the owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from zhijin.payments import book, limits, projection
from zhijin.platform.notifications import Audience, Notice
from zhijin.platform.projections import BlockView

__all__ = ["PaymentsNotifier"]

ACCOUNTS_KEY = "payments.accounts"
_PAGE = limits.PAGE_SIZE_MAX
# Events name accounts by these attributes; an opening names its own account by "id".
_ACCOUNT_FIELDS = ("debit_account_id", "credit_account_id", "account_id")
_ACCOUNT_CREATED = projection.EVENT_PREFIX + book.EVENT_ACCOUNT_CREATED


class PaymentsNotifier:
    name = "payments"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: _BlockIndex | None = None

    def prepare(self, audience: Audience) -> None:
        owned: set[str] = set()
        if audience.owner is not None:
            after: str | None = None
            with self.engine.connect() as conn:
                while True:
                    rows = projection.list_accounts(
                        conn, owner=audience.owner, after_id=after, limit=_PAGE
                    )
                    owned.update(row["id"] for row in rows)
                    if len(rows) < _PAGE:
                        break
                    after = rows[-1]["id"]
        audience.keys[ACCOUNTS_KEY] = owned

    def notices(self, block: BlockView, audience: Audience) -> list[Notice]:
        if audience.owner is None:
            return []
        index = self._index(block)
        owned = audience.keys.setdefault(ACCOUNTS_KEY, set())
        positions: set[int] = set()
        for position in index.opened_for.get(audience.owner, ()):
            owned.add(index.events[position]["attrs"]["id"])
            positions.add(position)
        touched = index.by_account
        accounts = owned if len(owned) < len(touched) else owned.intersection(touched)
        for account_id in accounts:
            positions.update(touched.get(account_id, ()))
        notices = []
        for position in sorted(positions):
            event = index.events[position]
            data = {
                "type": event["type"][len(projection.EVENT_PREFIX) :],
                "height": block.height,
                "time_ms": block.time_ms,
                "attrs": event["attrs"],
            }
            notices.append(Notice(block.height, "payments", data))
        return notices

    def _index(self, block: BlockView) -> _BlockIndex:
        """The block's payments events by the accounts they name, built once per block for
        all subscribers (the hub asks once per subscriber)."""
        cached = self._cached
        if cached is not None and cached.block is block:
            return cached
        events = _payments_events(block)
        index = _BlockIndex(block, events, {}, {})
        for position, event in enumerate(events):
            attrs = event["attrs"]
            if event["type"] == _ACCOUNT_CREATED:
                index.opened_for.setdefault(attrs.get("owner"), []).append(position)
            for name in _ACCOUNT_FIELDS:
                value = attrs.get(name)
                if isinstance(value, str):
                    index.by_account.setdefault(value, []).append(position)
        self._cached = index
        return index


@dataclass(slots=True)
class _BlockIndex:
    block: BlockView
    events: list[dict[str, Any]]
    by_account: dict[str, list[int]]  # account id -> positions of the events naming it
    opened_for: dict[Any, list[int]]  # owner -> positions of the accounts opened for them


def _payments_events(block: BlockView) -> list[dict[str, Any]]:
    return [
        event
        for event in projection.block_events(block)
        if str(event.get("type", "")).startswith(projection.EVENT_PREFIX)
    ]

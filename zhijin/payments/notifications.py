"""What a block's payments events mean to a signed-in end user: their own accounts only.

A subscriber's accounts are read from the projections when it subscribes and grow as accounts
are opened for its DID; every `payments.*` event touching one of them (a transfer in or out, a
hold expiring, a status change, the opening itself) becomes a `payments` notice with the event's
type and attributes, which are what the statement and transfer reads already show the owner.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from zhijin.payments import book, limits, projection
from zhijin.platform.notifications import Audience, Notice
from zhijin.platform.projections import BlockView

__all__ = ["PaymentsNotifier"]

ACCOUNTS_KEY = "payments.accounts"
_PAGE = limits.PAGE_SIZE_MAX
# Events that name accounts by these attributes (the opening names its own id).
_ACCOUNT_FIELDS = ("debit_account_id", "credit_account_id", "account_id")


class PaymentsNotifier:
    name = "payments"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        owned = audience.keys.setdefault(ACCOUNTS_KEY, set())
        notices = []
        for event in _payments_events(block):
            kind = event["type"][len(projection.EVENT_PREFIX) :]
            attrs: dict[str, Any] = event["attrs"]
            if kind == book.EVENT_ACCOUNT_CREATED and attrs.get("owner") == audience.owner:
                owned.add(attrs["id"])
            elif not any(attrs.get(name) in owned for name in _ACCOUNT_FIELDS):
                continue
            data = {"type": kind, "height": block.height, "time_ms": block.time_ms, "attrs": attrs}
            notices.append(Notice(block.height, "payments", data))
        return notices


def _payments_events(block: BlockView) -> list[dict[str, Any]]:
    return [
        event
        for event in projection.block_events(block)
        if str(event.get("type", "")).startswith(projection.EVENT_PREFIX)
    ]

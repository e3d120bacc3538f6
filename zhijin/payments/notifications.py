"""What a block's payments events mean to a signed-in end user: their own accounts only.

A subscriber's accounts are read from the projections when it subscribes and grow as accounts
are opened for its DID; every `payments.*` event touching one of them (a transfer in or out, a
hold expiring, a status change, the opening itself) becomes a `payments` notice with the event's
type and attributes, which are what the statement and transfer reads already show the owner,
and a `text` that says it in the subscriber's language ("账户 c-1 收到 ¥100.00").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from zhijin.payments import book, limits, projection
from zhijin.payments.records import AccountStatus, TransferFlag
from zhijin.platform.i18n import format_money, gettext
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
            kind = event["type"][len(projection.EVENT_PREFIX) :]
            data = {
                "type": kind,
                "height": block.height,
                "time_ms": block.time_ms,
                "attrs": event["attrs"],
                "text": notice_text(kind, event["attrs"], owned, audience.locale),
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


def notice_text(kind: str, attrs: dict[str, Any], owned: set[str], locale: str) -> str:
    """What a payments event means to the owner of `owned`, as one sentence in `locale`."""
    if kind == book.EVENT_TRANSFER_CREATED:
        return _transfer_text(attrs, owned, locale)
    if kind == book.EVENT_PENDING_EXPIRED:
        account_id = _own_side(attrs, owned)
        return gettext(
            locale,
            "notice.payments.hold_expired",
            amount=_money(attrs, locale),
            account_id=account_id,
        )
    if kind == book.EVENT_ACCOUNT_CREATED:
        return gettext(
            locale,
            "notice.payments.account_opened",
            currency=attrs.get("currency", ""),
            account_id=attrs.get("id", ""),
        )
    if kind == book.EVENT_ACCOUNT_STATUS_CHANGED:
        account_id = attrs.get("account_id", "")
        status = attrs.get("status")
        if status == AccountStatus.FROZEN:
            return gettext(locale, "notice.payments.account_frozen", account_id=account_id)
        if status == AccountStatus.CLOSED:
            return gettext(locale, "notice.payments.account_closed", account_id=account_id)
        return gettext(locale, "notice.payments.account_open", account_id=account_id)
    return gettext(locale, "notice.payments.other")


def _transfer_text(attrs: dict[str, Any], owned: set[str], locale: str) -> str:
    flags = attrs.get("flags") or []
    debit, credit = attrs.get("debit_account_id", ""), attrs.get("credit_account_id", "")
    amount = _money(attrs, locale)
    if TransferFlag.VOID_PENDING_TRANSFER in flags:
        return gettext(locale, "notice.payments.hold_voided", account_id=_own_side(attrs, owned))
    if debit in owned and credit in owned:
        return gettext(
            locale,
            "notice.payments.moved",
            amount=amount,
            debit_account_id=debit,
            credit_account_id=credit,
        )
    if TransferFlag.PENDING in flags:
        if debit in owned:
            return gettext(locale, "notice.payments.held", amount=amount, account_id=debit)
        return gettext(locale, "notice.payments.incoming_hold", amount=amount, account_id=credit)
    if debit in owned:
        if TransferFlag.POST_PENDING_TRANSFER in flags:
            return gettext(locale, "notice.payments.hold_posted", amount=amount, account_id=debit)
        return gettext(locale, "notice.payments.sent", amount=amount, account_id=debit)
    return gettext(locale, "notice.payments.received", amount=amount, account_id=credit)


def _own_side(attrs: dict[str, Any], owned: set[str]) -> str:
    debit = str(attrs.get("debit_account_id", ""))
    return debit if debit in owned else str(attrs.get("credit_account_id", ""))


def _money(attrs: dict[str, Any], locale: str) -> str:
    amount, currency = attrs.get("amount"), attrs.get("currency")
    if isinstance(amount, int) and isinstance(currency, str):
        return format_money(amount, currency, locale)
    return str(amount)

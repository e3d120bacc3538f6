"""The SME owner's view of their collections: incoming payments with the payers' masked names,
daily totals, refunds linked to the payment they return, and a settlement report per day and
currency.

A refund is a new transfer from the merchant's account back to the account that paid (a
transfer is never edited).  It names the payment it returns, and the refunds of one payment
can never together exceed it: each refund first claims its amount with one conditional UPDATE
(`refunded_minor + amount <= original_amount`) in the platform database, which two requests
at once cannot both pass, and only then is submitted.  A refund the ledger refused gives its
claim back; one whose outcome is unknown (a timeout: the tx may still commit) keeps it, so the
bound fails safe.  A retry of the same refund (same id, same body) claims nothing twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from zhijin.payments import projection
from zhijin.payments.expected import PaymentsHost
from zhijin.payments.payees import format_minor, local_date, local_time
from zhijin.payments.people import StatementFilter, _Namer
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.payments.service import STATEMENT_LINES_MAX
from zhijin.payments.tables import refund_totals_table, refunds_table

__all__ = [
    "RefundClaim",
    "claim_refund",
    "daily_totals",
    "incoming",
    "refunded",
    "refunded_by_original",
    "release_refund",
    "settlement_csv",
]


# -- reads ----------------------------------------------------------------------------------------


def _entries_in(
    conn: Connection, account_id: str, period: tuple[int, int], direction: str | None = None
) -> list[dict[str, Any]]:
    entries = projection.entries_table
    query = select(entries).where(
        entries.c.account_id == account_id,
        entries.c.time_ms >= period[0],
        entries.c.time_ms < period[1],
    )
    if direction is not None:
        query = query.where(entries.c.direction == direction)
    rows = conn.execute(query.order_by(entries.c.entry_no).limit(STATEMENT_LINES_MAX + 1)).all()
    if len(rows) > STATEMENT_LINES_MAX:
        raise refused(PeopleCode.STATEMENT_TOO_LARGE, lines_max=STATEMENT_LINES_MAX)
    return [dict(row._mapping) for row in rows]


def refunded_by_original(conn: Connection, original_ids: Iterable[str]) -> dict[str, int]:
    ids = sorted(set(original_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(refund_totals_table.c.original_id, refund_totals_table.c.refunded_minor).where(
            refund_totals_table.c.original_id.in_(ids)
        )
    ).all()
    return {row.original_id: row.refunded_minor for row in rows}


def refunded(platform: PaymentsHost, original_id: str) -> int:
    """How much of a payment was refunded (or is claimed by a refund under way)."""
    with platform.platform_engine.connect() as conn:
        return refunded_by_original(conn, [original_id]).get(original_id, 0)


def _refund_links(conn: Connection, refund_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(refund_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(refunds_table.c.id, refunds_table.c.original_id).where(refunds_table.c.id.in_(ids))
    ).all()
    return {row.id: row.original_id for row in rows}


def incoming(
    platform: PaymentsHost,
    *,
    account: Mapping[str, Any],
    search: StatementFilter,
    before_entry: int | None,
    limit: int,
) -> dict[str, Any]:
    """Payments into the account in the period, newest first, with the payer's masked name,
    the request they paid (the reference) and how much of each was refunded."""
    period = search.period_ms()
    entries = projection.entries_table
    namer = _Namer.of(platform)
    with platform.platform_engine.connect() as conn:
        query = select(entries).where(
            entries.c.account_id == account["id"],
            entries.c.direction == projection.CREDIT,
            entries.c.time_ms >= period[0],
            entries.c.time_ms < period[1],
        )
        if before_entry is not None:
            query = query.where(entries.c.entry_no < before_entry)
        rows = [
            dict(row._mapping)
            for row in conn.execute(query.order_by(entries.c.entry_no.desc()).limit(limit))
        ]
        refunded = refunded_by_original(conn, (row["transfer_id"] for row in rows))
        payers = {
            row["counterparty_id"]: projection.read_account(conn, row["counterparty_id"])
            for row in rows
        }
    exponent = account["exponent"]
    payments = []
    for row in rows:
        done = refunded.get(row["transfer_id"], 0)
        payments.append(
            {
                "entry_no": row["entry_no"],
                "transfer_id": row["transfer_id"],
                "time_ms": row["time_ms"],
                "local_time": local_time(row["time_ms"], search.zone),
                "amount_minor": row["amount"],
                "amount": format_minor(row["amount"], exponent),
                "refunded_minor": done,
                "refundable_minor": row["amount"] - done,
                "currency": row["currency"],
                "reference": row["reference"],
                "payer": namer.counterparty(payers[row["counterparty_id"]], row["counterparty_id"]),
            }
        )
    return {
        "account_id": account["id"],
        "currency": account["currency"],
        "exponent": exponent,
        "time_zone": search.zone.key,
        "payments": payments,
        "next_before_entry": rows[-1]["entry_no"] if len(rows) == limit else None,
    }


@dataclass(slots=True)
class _Day:
    payments: int = 0
    received_minor: int = 0
    refunds: int = 0
    refunded_minor: int = 0
    other_out_minor: int = 0

    def add(self, entry: Mapping[str, Any], refund_ids: Mapping[str, str]) -> None:
        if entry["direction"] == projection.CREDIT:
            self.payments += 1
            self.received_minor += entry["amount"]
        elif entry["transfer_id"] in refund_ids:
            self.refunds += 1
            self.refunded_minor += entry["amount"]
        else:
            self.other_out_minor += entry["amount"]


def _days(
    conn: Connection, account_id: str, period: tuple[int, int], zone: ZoneInfo
) -> dict[date, _Day]:
    rows = _entries_in(conn, account_id, period)
    links = _refund_links(
        conn, (r["transfer_id"] for r in rows if r["direction"] == projection.DEBIT)
    )
    days: dict[date, _Day] = {}
    for row in rows:
        days.setdefault(local_date(row["time_ms"], zone), _Day()).add(row, links)
    return days


def _day_json(day: date, totals: _Day, exponent: int, currency: str) -> dict[str, Any]:
    net = totals.received_minor - totals.refunded_minor
    return {
        "date": day.isoformat(),
        "currency": currency,
        "payments": totals.payments,
        "received_minor": totals.received_minor,
        "received": format_minor(totals.received_minor, exponent),
        "refunds": totals.refunds,
        "refunded_minor": totals.refunded_minor,
        "refunded": format_minor(totals.refunded_minor, exponent),
        "net_minor": net,
        "net": format_minor(net, exponent),
        "other_out_minor": totals.other_out_minor,
    }


def daily_totals(
    platform: PaymentsHost, *, account: Mapping[str, Any], search: StatementFilter
) -> dict[str, Any]:
    """Per local day of the period: payments received, refunds paid, and the net."""
    period = search.period_ms()
    with platform.platform_engine.connect() as conn:
        days = _days(conn, account["id"], period, search.zone)
    lines = [
        _day_json(day, days[day], account["exponent"], account["currency"]) for day in sorted(days)
    ]
    return {
        "account_id": account["id"],
        "currency": account["currency"],
        "time_zone": search.zone.key,
        "days": lines,
    }


_SETTLEMENT_HEADINGS = {
    "zh-CN": ("日期", "币种", "账户", "收款笔数", "收款金额", "退款笔数", "退款金额", "净额"),
    "en": ("Date", "Currency", "Account", "Payments", "Received", "Refunds", "Refunded", "Net"),
}


def settlement_csv(
    platform: PaymentsHost,
    *,
    accounts: Iterable[Mapping[str, Any]],
    search: StatementFilter,
    language: str,
) -> bytes:
    """The settlement report: one line per day, currency and account of the owner's
    collection accounts, amounts as exact decimals (UTF-8 with a BOM, for Excel)."""
    period = search.period_ms()
    language = language if language in _SETTLEMENT_HEADINGS else "zh-CN"
    lines: list[tuple[str, str, str, dict[str, Any]]] = []
    with platform.platform_engine.connect() as conn:
        for account in accounts:
            days = _days(conn, account["id"], period, search.zone)
            for day, totals in days.items():
                line = _day_json(day, totals, account["exponent"], account["currency"])
                lines.append((line["date"], account["currency"], account["id"], line))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_SETTLEMENT_HEADINGS[language])
    for day_text, currency, account_id, line in sorted(lines, key=lambda item: item[:3]):
        writer.writerow(
            (
                day_text,
                currency,
                account_id,
                line["payments"],
                line["received"],
                line["refunds"],
                line["refunded"],
                line["net"],
            )
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# -- refunds --------------------------------------------------------------------------------------


# A payment a client made (a fee or FX leg the contract booked has another kind), possibly in a
# linked batch, or the posting of a hold; never a hold itself or its void.
_REFUNDABLE_FLAGS = frozenset({"linked", "post_pending_transfer"})


@dataclass(frozen=True, slots=True)
class RefundClaim:
    refund_id: str
    original_id: str
    amount_minor: int
    new: bool  # False: a retry of a refund claimed before (nothing claimed now)


def check_original(record: Mapping[str, Any], account_id: str) -> None:
    """A refund returns a posted single-phase payment into this account, not a hold or a
    leg the contract booked (a fee or FX leg has `~` in its id)."""
    flags = set(record.get("flags") or ())
    if (
        record["credit_account_id"] != account_id
        or record["kind"] != "transfer"
        or not flags <= _REFUNDABLE_FLAGS
    ):
        raise refused(PeopleCode.REFUND_ORIGINAL_INVALID)


def claim_refund(
    platform: PaymentsHost,
    *,
    refund_id: str,
    original: Mapping[str, Any],
    account_id: str,
    amount_minor: int,
) -> RefundClaim:
    """Claim `amount_minor` of the original payment for refund `refund_id`, atomically."""
    with platform.platform_engine.begin() as conn:
        previous = conn.execute(
            select(refunds_table).where(refunds_table.c.id == refund_id)
        ).first()
        if previous is not None:
            if (previous.original_id, previous.amount_minor) != (original["id"], amount_minor):
                raise refused(PeopleCode.REFUND_EXISTS_WITH_DIFFERENT_FIELDS, id=refund_id)
            return RefundClaim(refund_id, original["id"], amount_minor, new=False)
    try:
        with platform.platform_engine.begin() as conn:
            conn.execute(
                insert(refund_totals_table).values(
                    original_id=original["id"],
                    original_amount=original["amount"],
                    refunded_minor=0,
                )
            )
    except IntegrityError:
        pass  # its row exists: the first refund of this payment created it
    try:
        with platform.platform_engine.begin() as conn:
            claimed = conn.execute(
                update(refund_totals_table)
                .where(
                    refund_totals_table.c.original_id == original["id"],
                    refund_totals_table.c.refunded_minor + amount_minor
                    <= refund_totals_table.c.original_amount,
                )
                .values(refunded_minor=refund_totals_table.c.refunded_minor + amount_minor)
            ).rowcount
            if claimed != 1:
                raise refused(PeopleCode.REFUND_EXCEEDS_ORIGINAL, original_id=original["id"])
            conn.execute(
                insert(refunds_table).values(
                    id=refund_id,
                    original_id=original["id"],
                    account_id=account_id,
                    amount_minor=amount_minor,
                    created_at_ms=platform.node.clock(),
                )
            )
    except IntegrityError:
        # The same refund id claimed at this very moment by a concurrent retry: its claim
        # stands (this transaction's increment was rolled back with it).
        return claim_refund(
            platform,
            refund_id=refund_id,
            original=original,
            account_id=account_id,
            amount_minor=amount_minor,
        )
    return RefundClaim(refund_id, original["id"], amount_minor, new=True)


def release_refund(platform: PaymentsHost, claim: RefundClaim) -> None:
    """Give back a claim whose refund the ledger definitely refused (nothing moved)."""
    with platform.platform_engine.begin() as conn:
        removed = conn.execute(
            delete(refunds_table).where(refunds_table.c.id == claim.refund_id)
        ).rowcount
        if removed == 1:
            conn.execute(
                update(refund_totals_table)
                .where(refund_totals_table.c.original_id == claim.original_id)
                .values(refunded_minor=refund_totals_table.c.refunded_minor - claim.amount_minor)
            )

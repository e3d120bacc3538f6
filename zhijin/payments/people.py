"""Payments for people: confirmation of payee, pay by phone number, recent payees and
statements with names, search, local days and CSV.

Names come from the vault through the host's `PartyNames` port, never from the chain, and leave
the node masked (`payees.mask_name`).  A payee lookup is what an enumerator would script (which
account, IBAN or phone number belongs to whom), so each costs a token of the user's own bucket
(the host's `LookupBudget`: `limits.PAYEE_LOOKUPS_BURST`, then one per
`PAYEE_LOOKUP_REFILL_MS`, a 429 with Retry-After after that) and is written to the access audit log, found or not.  A frozen or closed account
answers `payee_unavailable` with no name: nobody should be paying into it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, or_, select

from zhijin.payments import limits, projection
from zhijin.payments.aliases import MobileDirectory, compact_mobile, mask_mobile
from zhijin.payments.directory import IbanDirectory, valid_iban
from zhijin.payments.expected import PartyName, PaymentsHost
from zhijin.payments.payees import (
    NameMatch,
    day_range_ms,
    format_minor,
    local_time,
    mask_name,
    match_name,
    parse_amount,
)
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.payments.service import STATEMENT_LINES_MAX
from zhijin.platform.errors import InvalidInput

__all__ = [
    "StatementFilter",
    "account_mobile",
    "confirm_payee",
    "counterparties",
    "people_statement",
    "recent_payees",
    "register_mobile",
    "remove_mobile",
    "statement_csv",
]

# Accounts a payer may name as a payee: people's and businesses' own.  Settlement, fee, loan
# and other platform accounts are never a payee a person types in.
PAYEE_KINDS = frozenset({"customer", "merchant"})


def _audit(
    platform: PaymentsHost, *, actor: str, action: str, target: str, outcome: str, **details: Any
) -> None:
    platform.audit.append(
        actor=actor,
        action=action,
        target=target,
        outcome=outcome,
        at_ms=platform.node.clock(),
        details=details,
    )


def _read(platform: PaymentsHost) -> Connection:
    return platform.platform_engine.connect()


@dataclass(slots=True)
class _Namer:
    """Names of accounts' owners for one answer, each owner read from the vault at most once."""

    platform: PaymentsHost
    cache: dict[tuple[str, bool], PartyName | None]

    @classmethod
    def of(cls, platform: PaymentsHost) -> _Namer:
        return cls(platform, {})

    def party(self, owner: str, *, business: bool) -> PartyName | None:
        key = (owner, business)
        if key not in self.cache:
            self.cache[key] = self.platform.party_names.name_of(owner, business=business)
        return self.cache[key]

    def masked(self, owner: str, *, business: bool) -> tuple[str | None, str | None]:
        """(masked name, name kind) or (None, None) when no name is on record."""
        party = self.party(owner, business=business)
        return (None, None) if party is None else (mask_name(party), party.kind.value)

    def full(self, owner: str, *, business: bool) -> str | None:
        party = self.party(owner, business=business)
        return None if party is None else party.name

    def owners_named(self) -> int:
        return len({owner for (owner, _), party in self.cache.items() if party is not None})

    def counterparty(self, account: Mapping[str, Any] | None, account_id: str) -> dict[str, Any]:
        if account is None:  # cannot happen for a projected entry; answer without a name
            return {"account_id": account_id, "kind": None, "name": None, "name_kind": None}
        name, kind = self.masked(account["owner"], business=account["kind"] == "merchant")
        return {"account_id": account_id, "kind": account["kind"], "name": name, "name_kind": kind}


# -- confirmation of payee -------------------------------------------------------------------------


def _resolve_payee(
    platform: PaymentsHost,
    *,
    account_id: str | None,
    iban: str | None,
    mobile: str | None,
) -> tuple[str, str | None]:
    """(how the payee was named, the account id it resolves to or None)."""
    if account_id is not None:
        return "account_id", account_id
    if iban is not None:
        compact = valid_iban(iban)
        return "iban", IbanDirectory(platform.vault, platform.platform_engine).account_for(compact)
    if mobile is not None:
        number = compact_mobile(mobile)
        directory = MobileDirectory(platform.vault, platform.platform_engine)
        return "mobile", directory.account_for(number)
    raise InvalidInput("payee_missing", "name the payee by account_id, iban or mobile")


def confirm_payee(
    platform: PaymentsHost,
    *,
    requester: str,
    account_id: str | None = None,
    iban: str | None = None,
    mobile: str | None = None,
    expected_name: str | None = None,
) -> dict[str, Any]:
    """Who an account id, IBAN or phone number pays: the masked name, and how the name the
    payer expects compares (`match`, `close_match`, `no_match`), before any money moves.

    `requester` is whose lookup budget it spends and who the audit entry names
    ("user:<id>" or "operator").  Unknown, not a payee account, frozen or closed: refused,
    audited, and the budget is spent all the same (a miss tells an enumerator as much as a hit).
    """
    platform.payee_lookups.spend(requester)
    by, resolved = _resolve_payee(platform, account_id=account_id, iban=iban, mobile=mobile)
    with _read(platform) as conn:
        account = None if resolved is None else projection.read_account(conn, resolved)
    target = f"account:{resolved}" if resolved is not None else f"payee:{by}"
    if account is None or account["kind"] not in PAYEE_KINDS:
        _audit(
            platform,
            actor=requester,
            action="payments.payee.confirm",
            target=target,
            outcome=PeopleCode.PAYEE_NOT_FOUND.value,
            by=by,
        )
        raise refused(PeopleCode.PAYEE_NOT_FOUND)
    if account["status"] != "open":
        _audit(
            platform,
            actor=requester,
            action="payments.payee.confirm",
            target=target,
            outcome=PeopleCode.PAYEE_UNAVAILABLE.value,
            by=by,
        )
        raise refused(PeopleCode.PAYEE_UNAVAILABLE, account_status=account["status"])
    namer = _Namer.of(platform)
    business = account["kind"] == "merchant"
    name, name_kind = namer.masked(account["owner"], business=business)
    answer: dict[str, Any] = {
        "account_id": account["id"],
        "by": by,
        "currency": account["currency"],
        "kind": account["kind"],
        "name": name,
        "name_kind": name_kind,
        "match": None,
    }
    if expected_name is not None:
        full = namer.full(account["owner"], business=business)
        matched = NameMatch.NO_MATCH if full is None else match_name(expected_name, full)
        answer["match"] = matched.value  # a plain str: canonical JSON refuses str subclasses
    _audit(
        platform,
        actor=requester,
        action="payments.payee.confirm",
        target=target,
        outcome="ok",
        by=by,
        fields=["name"],
        match=answer["match"],
    )
    return answer


# -- pay by phone number --------------------------------------------------------------------------


def _mobiles(platform: PaymentsHost) -> MobileDirectory:
    return MobileDirectory(platform.vault, platform.platform_engine)


def register_mobile(
    platform: PaymentsHost, *, account: Mapping[str, Any], mobile: str, actor: str
) -> dict[str, Any]:
    """Let payers reach `account` by its owner's own mobile number (the one in their personal
    data), moving it from another of their accounts (idempotent; audited, number masked)."""
    number = compact_mobile(mobile)
    if account["status"] == "closed":
        raise refused(PeopleCode.PAYEE_UNAVAILABLE, account_status="closed")
    if platform.party_names.mobile_of(account["owner"]) != number:
        raise refused(PeopleCode.MOBILE_NOT_OWNERS)
    with _read(platform) as conn:
        own = projection.list_accounts(conn, owner=account["owner"], limit=limits.PAGE_SIZE_MAX)
    registered = _mobiles(platform).register(
        account["id"],
        number,
        same_owner={row["id"] for row in own},
        now_ms=platform.node.clock(),
    )
    if registered:
        _audit(
            platform,
            actor=actor,
            action="payments.mobile.register",
            target=f"account:{account['id']}",
            outcome="ok",
            mobile=mask_mobile(number),
        )
    return {"account_id": account["id"], "mobile": mask_mobile(number), "registered": registered}


def remove_mobile(platform: PaymentsHost, *, account_id: str, actor: str) -> dict[str, Any]:
    removed = _mobiles(platform).remove(account_id)
    if removed:
        _audit(
            platform,
            actor=actor,
            action="payments.mobile.remove",
            target=f"account:{account_id}",
            outcome="ok",
        )
    return {"account_id": account_id, "removed": removed}


def account_mobile(platform: PaymentsHost, *, account_id: str) -> dict[str, Any]:
    mobile = _mobiles(platform).mobile_of(account_id)
    return {"account_id": account_id, "mobile": None if mobile is None else mask_mobile(mobile)}


# -- recent payees --------------------------------------------------------------------------------


def _parse_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    time_text, _, account_id = cursor.partition(":")
    if not time_text.isdigit() or not account_id:
        raise InvalidInput("cursor_invalid", "after is the next_after of the previous page")
    return int(time_text), account_id


def recent_payees(
    platform: PaymentsHost,
    *,
    owner: str,
    account_id: str | None = None,
    after: str | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """Whom `owner` paid from their accounts (or one of them), most recent first, each once,
    with the masked name, the last time and how often: from their own posted debits."""
    entries, accounts = projection.entries_table, projection.accounts_table
    with _read(platform) as conn:
        mine = select(accounts.c.id).where(accounts.c.owner == owner)
        if account_id is not None:
            mine = mine.where(accounts.c.id == account_id)
        last = func.max(entries.c.time_ms).label("last_paid_ms")
        query = (
            select(entries.c.counterparty_id, last, func.count().label("payments"))
            .join(accounts, accounts.c.id == entries.c.counterparty_id)
            .where(
                entries.c.account_id.in_(mine.scalar_subquery()),
                entries.c.direction == projection.DEBIT,
                accounts.c.kind.in_(sorted(PAYEE_KINDS)),
                accounts.c.owner != owner,  # moving money between one's own accounts
            )
            .group_by(entries.c.counterparty_id)
            .order_by(last.desc(), entries.c.counterparty_id)
            .limit(limit)
        )
        position = _parse_cursor(after)
        if position is not None:
            query = query.having(
                or_(
                    last < position[0],
                    and_(last == position[0], entries.c.counterparty_id > position[1]),
                )
            )
        rows = conn.execute(query).all()
        found = {
            row.counterparty_id: projection.read_account(conn, row.counterparty_id) for row in rows
        }
    namer = _Namer.of(platform)
    payees = []
    for row in rows:
        party = namer.counterparty(found[row.counterparty_id], row.counterparty_id)
        account = found[row.counterparty_id] or {}
        payees.append(
            {
                **party,
                "currency": account.get("currency"),
                "status": account.get("status"),
                "last_paid_ms": row.last_paid_ms,
                "payments": row.payments,
            }
        )
    next_after = None
    if len(rows) == limit:
        next_after = f"{rows[-1].last_paid_ms}:{rows[-1].counterparty_id}"
    return {"payees": payees, "next_after": next_after}


# -- statements for people ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementFilter:
    """A statement's period (calendar days in `zone`, both included) and search."""

    first: date
    last: date
    zone: ZoneInfo
    query: str | None = None  # memo, counterparty name or account id, or an amount
    counterparty_id: str | None = None
    amount: str | None = None  # an exact decimal amount ("12.50")

    def period_ms(self) -> tuple[int, int]:
        if self.last < self.first:
            raise refused(PeopleCode.PERIOD_INVALID)
        if (self.last - self.first).days >= limits.STATEMENT_DAYS_MAX:
            raise refused(PeopleCode.PERIOD_TOO_LONG, days_max=limits.STATEMENT_DAYS_MAX)
        return day_range_ms(self.first, self.last, self.zone)


def counterparties(conn: Connection, *, account_id: str, from_ms: int, to_ms: int) -> list[str]:
    """The distinct counterparties of an account's entries in [from_ms, to_ms), bounded."""
    entries = projection.entries_table
    rows = conn.execute(
        select(entries.c.counterparty_id)
        .where(
            entries.c.account_id == account_id,
            entries.c.time_ms >= from_ms,
            entries.c.time_ms < to_ms,
        )
        .group_by(entries.c.counterparty_id)
        .limit(limits.STATEMENT_COUNTERPARTIES_MAX + 1)
    ).all()
    if len(rows) > limits.STATEMENT_COUNTERPARTIES_MAX:
        raise refused(PeopleCode.STATEMENT_TOO_BROAD)
    return [row.counterparty_id for row in rows]


def _named_counterparties(
    conn: Connection, namer: _Namer, ids: Iterable[str], text: str
) -> list[str]:
    """Of `ids`, the accounts whose owner's full name contains `text` (normalised)."""
    wanted = text.casefold().replace(" ", "")
    matched = []
    for counterparty_id in ids:
        account = projection.read_account(conn, counterparty_id)
        if account is None:
            continue
        full = namer.full(account["owner"], business=account["kind"] == "merchant")
        if full is not None and wanted in full.casefold().replace(" ", ""):
            matched.append(counterparty_id)
    return matched


def _conditions(
    conn: Connection,
    namer: _Namer,
    account: Mapping[str, Any],
    search: StatementFilter,
    period: tuple[int, int],
) -> list[Any]:
    entries = projection.entries_table
    conditions: list[Any] = [
        entries.c.account_id == account["id"],
        entries.c.time_ms >= period[0],
        entries.c.time_ms < period[1],
    ]
    if search.counterparty_id is not None:
        conditions.append(entries.c.counterparty_id == search.counterparty_id)
    if search.amount is not None:
        amount = parse_amount(search.amount, account["exponent"])
        if amount is None:
            raise refused(PeopleCode.AMOUNT_TEXT_INVALID, exponent=account["exponent"])
        conditions.append(entries.c.amount == amount)
    text = (search.query or "").strip()
    if text:
        alternatives: list[Any] = [
            func.lower(entries.c.reference).contains(text.lower(), autoescape=True),
            entries.c.counterparty_id == text,
        ]
        as_amount = parse_amount(text, account["exponent"])
        if as_amount is not None:
            alternatives.append(entries.c.amount == as_amount)
        if len(text) >= 2:  # one character would match half of all names
            ids = counterparties(conn, account_id=account["id"], from_ms=period[0], to_ms=period[1])
            named = _named_counterparties(conn, namer, ids, text)
            if named:
                alternatives.append(entries.c.counterparty_id.in_(named))
        conditions.append(or_(*alternatives))
    return conditions


def _line(
    entry: Mapping[str, Any],
    account: Mapping[str, Any],
    party: dict[str, Any],
    zone: ZoneInfo,
) -> dict[str, Any]:
    exponent = account["exponent"]
    signed = entry["amount"] if entry["direction"] == projection.CREDIT else -entry["amount"]
    return {
        "entry_no": entry["entry_no"],
        "transfer_id": entry["transfer_id"],
        "time_ms": entry["time_ms"],
        "local_time": local_time(entry["time_ms"], zone),
        "direction": entry["direction"],
        "amount_minor": entry["amount"],
        "amount": format_minor(signed, exponent),
        "balance_minor": entry["balance"],
        "balance": format_minor(entry["balance"], exponent),
        "currency": entry["currency"],
        "memo": entry["reference"],
        "counterparty": party,
    }


def _statement_rows(
    platform: PaymentsHost,
    account: Mapping[str, Any],
    search: StatementFilter,
    *,
    before_entry: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], _Namer]:
    period = search.period_ms()
    namer = _Namer.of(platform)
    entries = projection.entries_table
    with _read(platform) as conn:
        conditions = _conditions(conn, namer, account, search, period)
        if before_entry is not None:
            conditions.append(entries.c.entry_no < before_entry)
        query = select(entries).where(*conditions).order_by(entries.c.entry_no.desc()).limit(limit)
        rows = [dict(row._mapping) for row in conn.execute(query)]
        found = {
            row["counterparty_id"]: projection.read_account(conn, row["counterparty_id"])
            for row in rows
        }
    lines = [
        _line(
            row,
            account,
            namer.counterparty(found[row["counterparty_id"]], row["counterparty_id"]),
            search.zone,
        )
        for row in rows
    ]
    return lines, namer


def _audit_names(platform: PaymentsHost, actor: str, account_id: str, namer: _Namer) -> None:
    """One access-log entry per statement that showed names (how many owners' names)."""
    owners = namer.owners_named()
    if owners:
        _audit(
            platform,
            actor=actor,
            action="payments.names.read",
            target=f"account:{account_id}",
            outcome="ok",
            fields=["name"],
            purpose="statement",
            owners=owners,
        )


def people_statement(
    platform: PaymentsHost,
    *,
    account: Mapping[str, Any],
    search: StatementFilter,
    actor: str,
    before_entry: int | None = None,
    limit: int = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    """A page of the account's entries in the period that match the search, newest first,
    each with its counterparty's masked name and exact decimal amounts."""
    lines, namer = _statement_rows(
        platform, account, search, before_entry=before_entry, limit=limit
    )
    _audit_names(platform, actor, account["id"], namer)
    from_ms, to_ms = search.period_ms()
    return {
        "account_id": account["id"],
        "currency": account["currency"],
        "exponent": account["exponent"],
        "from_ms": from_ms,
        "to_ms": to_ms,
        "time_zone": search.zone.key,
        "entries": lines,
        "next_before_entry": lines[-1]["entry_no"] if len(lines) == limit else None,
    }


# Column headings per language (zh-CN first, the default).
_CSV_HEADINGS = {
    "zh-CN": ("时间", "交易编号", "收支", "金额", "余额", "币种", "对方户名", "对方账户", "附言"),
    "en": (
        "Time",
        "Transfer",
        "Direction",
        "Amount",
        "Balance",
        "Currency",
        "Counterparty",
        "Counterparty account",
        "Memo",
    ),
}
_CSV_DIRECTIONS = {
    "zh-CN": {projection.CREDIT: "收入", projection.DEBIT: "支出"},
    "en": {projection.CREDIT: "in", projection.DEBIT: "out"},
}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    """Free text (a memo, a name) as a CSV cell a spreadsheet will not run as a formula."""
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def statement_csv(
    platform: PaymentsHost,
    *,
    account: Mapping[str, Any],
    search: StatementFilter,
    actor: str,
    language: str,
) -> bytes:
    """The whole period's matching entries as CSV (UTF-8 with a BOM, so Excel reads Chinese),
    oldest first, amounts as exact signed decimals; at most `STATEMENT_LINES_MAX` lines."""
    lines, namer = _statement_rows(
        platform, account, search, before_entry=None, limit=STATEMENT_LINES_MAX + 1
    )
    if len(lines) > STATEMENT_LINES_MAX:
        raise refused(PeopleCode.STATEMENT_TOO_LARGE, lines_max=STATEMENT_LINES_MAX)
    _audit_names(platform, actor, account["id"], namer)
    language = language if language in _CSV_HEADINGS else "zh-CN"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_HEADINGS[language])
    for line in reversed(lines):
        party = line["counterparty"]
        writer.writerow(
            (
                line["local_time"],
                line["transfer_id"],
                _CSV_DIRECTIONS[language][line["direction"]],
                line["amount"],
                line["balance"],
                line["currency"],
                _cell(party["name"]),
                party["account_id"],
                _cell(line["memo"]),
            )
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")

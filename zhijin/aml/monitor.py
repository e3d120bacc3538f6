"""The monitor: AML's projection of the committed stream (its tables, `AmlProjection`).

It is a projection like payments' own (zhijin/platform/projections.py): the projection runner
applies each committed block once, in height order, in the same database transaction that moves
its cursor, on a lane of its own in the projector process.  So it is resumable (a restart goes
on from the cursor), never applies a block twice, and never slows block production (a slow
evaluation holds back only the aml cursor).  It is also idempotent on its own: a transfer it
already holds is skipped, an account already known is kept, and alerts are written by id, so a
block fed again (a replay, a repeated event) changes nothing.  `zhijin reindex` rebuilds it
from the blocks under the rules in force; cases and filings live in the service's tables
(`tables.py`) and survive that, as they refer to alerts by their derived ids.

Tables: `aml_accounts` (what AML knows of each account: owner, custodian, kind of party),
`aml_parties` (when a customer's first account at a member opened: the dormancy baseline),
`aml_movements` (every posted customer movement, see facts.py), `aml_alerts` and
`aml_rule_sets` (each member's rule versions from the AML contract: a member's customers are
judged by its latest approved version from the block after the approval, by the default file
before that).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    insert,
    or_,
    select,
    update,
)

from zhijin.aml import limits
from zhijin.aml.alerts import Alert, record_findings
from zhijin.aml.contract import CONTRACT_NAME, EVENT_RULE_SET, RuleSetStatus
from zhijin.aml.detect import detect
from zhijin.aml.facts import (
    ACCOUNT_CREATED,
    SEQ_PER_BLOCK,
    TRANSFER_CREATED,
    AccountFact,
    Movement,
    account_fact,
    movement,
    payment_events,
)
from zhijin.aml.rules import MemberRules, Party, RuleSet, default_rules, parse_rules
from zhijin.platform.projections import BlockView

__all__ = [
    "AmlProjection",
    "SqlAlerts",
    "SqlWindow",
    "accounts_table",
    "alert_from_row",
    "alerts_table",
    "metadata",
    "movement_from_row",
    "movements_table",
    "rule_sets_table",
]

metadata = MetaData()
_PARTY = limits.PARTY_CHARS_MAX
_ACCOUNT = limits.ACCOUNT_CHARS_MAX

accounts_table = Table(
    "aml_accounts",
    metadata,
    Column("account_id", String(_ACCOUNT), primary_key=True),
    Column("owner", String(_PARTY), nullable=False),
    Column("custodian", String(_PARTY), nullable=True),
    Column("currency", String(limits.CURRENCY_CHARS), nullable=False),
    Column("party", String(16), nullable=False),
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("is_settlement", Boolean, nullable=False),
)
parties_table = Table(
    "aml_parties",
    metadata,
    Column("owner", String(_PARTY), primary_key=True),
    Column("member", String(_PARTY), primary_key=True),
    Column("opened_at_ms", BigInteger, nullable=False),
)
movements_table = Table(
    "aml_movements",
    metadata,
    Column("transfer_id", String(limits.TRANSFER_CHARS_MAX), primary_key=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("height", BigInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("day", String(limits.DAY_CHARS), nullable=False),
    Column("payer", String(_PARTY), nullable=False),
    Column("payee", String(_PARTY), nullable=False),
    Column("payer_account", String(_ACCOUNT), nullable=False),
    Column("payee_account", String(_ACCOUNT), nullable=False),
    Column("payer_party", String(16), nullable=False),
    Column("payee_party", String(16), nullable=False),
    Column("payer_member", String(_PARTY), nullable=False),
    Column("payee_member", String(_PARTY), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(limits.CURRENCY_CHARS), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Index("ix_aml_movements_payer", "payer", "seq"),
    Index("ix_aml_movements_payee", "payee", "seq"),
    Index("ix_aml_movements_height", "height"),
)
alerts_table = Table(
    "aml_alerts",
    metadata,
    Column("alert_id", String(limits.ALERT_ID_CHARS), primary_key=True),
    Column("member", String(_PARTY), nullable=False),
    Column("customer", String(_PARTY), nullable=False),
    Column("typology", String(limits.TYPOLOGY_CHARS_MAX), nullable=False),
    Column("rule_id", String(limits.RULE_CHARS_MAX), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("currency", String(limits.CURRENCY_CHARS), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("transfer_ids", Text, nullable=False),  # JSON list, at most ALERT_TRANSFERS_MAX
    Column("transfer_count", BigInteger, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("first_time_ms", BigInteger, nullable=False),
    Column("last_time_ms", BigInteger, nullable=False),
    Column("day", String(limits.DAY_CHARS), nullable=False),
    Column("due_day", String(limits.DAY_CHARS), nullable=False),
    Column("due_known", Boolean, nullable=False),
    Column("rules_version", String(limits.RULE_CHARS_MAX), nullable=False),
    Column("detected_height", BigInteger, nullable=False),
    Column("updated_height", BigInteger, nullable=False),
    Index("ix_aml_alerts_episode", "member", "customer", "typology", "last_seq"),
    Index("ix_aml_alerts_member_day", "member", "day"),
    Index("ix_aml_alerts_updated", "updated_height"),
)

# Every version of every member's rules as the contract holds it (contract.py): the pages and
# the API list them, and the monitor judges a member's customers by its latest approved one
# from `from_height` (the block after the approval) on.
rule_sets_table = Table(
    "aml_rule_sets",
    metadata,
    Column("member", String(_PARTY), primary_key=True),
    Column("version", String(limits.RULE_CHARS_MAX), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("rules", Text, nullable=False),  # the rule set's JSON
    Column("status", String(16), nullable=False),
    Column("proposer", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("decider", String(64), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("proposed_height", BigInteger, nullable=False),
    Column("proposed_ms", BigInteger, nullable=False),
    Column("decided_height", BigInteger, nullable=True),
    Column("decided_ms", BigInteger, nullable=True),
    Column("from_height", BigInteger, nullable=True),  # approved: in force from this block
    Column("tx_hash", String(64), nullable=False),
    Index("ix_aml_rule_sets_in_force", "member", "from_height"),
)

_MOVEMENT_FIELDS = tuple(Movement.__dataclass_fields__)
RULE_SET_EVENT = f"{CONTRACT_NAME}.{EVENT_RULE_SET}"
_RULE_SET_FIELDS = (
    "member", "version", "sha256", "status", "proposer", "reason", "decider",
    "decision_reason", "proposed_height", "proposed_ms", "decided_height", "decided_ms",
    "tx_hash",
)  # fmt: skip
_ALERT_FIELDS = tuple(Alert.__dataclass_fields__)


def movement_from_row(row: Any) -> Movement:
    mapping = row._mapping
    return Movement(**{name: mapping[name] for name in _MOVEMENT_FIELDS})


def alert_from_row(row: Any) -> Alert:
    mapping = dict(row._mapping)
    mapping["transfer_ids"] = tuple(json.loads(mapping["transfer_ids"]))
    return Alert(**{name: mapping[name] for name in _ALERT_FIELDS})


class SqlWindow:
    """`detect.WindowSource` over the monitor's tables, inside the block's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _select(self, condition: Any, since_ms: int, until_seq: int) -> list[Movement]:
        t = movements_table
        query = (
            select(t)
            .where(condition, t.c.time_ms >= since_ms, t.c.seq <= until_seq)
            .order_by(t.c.seq.desc())
            .limit(limits.WINDOW_ROWS_MAX)
        )
        return [movement_from_row(row) for row in reversed(self.conn.execute(query).all())]

    def flows(self, party: str, member: str, *, since_ms: int, until_seq: int) -> list[Movement]:
        t = movements_table
        side = or_(
            and_(t.c.payer == party, t.c.payer_member == member),
            and_(t.c.payee == party, t.c.payee_member == member),
        )
        return self._select(side, since_ms, until_seq)

    def outflows(self, parties: Sequence[str], *, since_ms: int, until_seq: int) -> list[Movement]:
        return self._select(movements_table.c.payer.in_(list(parties)), since_ms, until_seq)

    def inflows(self, parties: Sequence[str], *, since_ms: int, until_seq: int) -> list[Movement]:
        return self._select(movements_table.c.payee.in_(list(parties)), since_ms, until_seq)

    def last_seen_ms(self, party: str, member: str, *, before_seq: int) -> int | None:
        t = movements_table
        side = or_(
            and_(t.c.payer == party, t.c.payer_member == member),
            and_(t.c.payee == party, t.c.payee_member == member),
        )
        query = select(t.c.time_ms).where(side, t.c.seq < before_seq).order_by(t.c.seq.desc())
        last = self.conn.execute(query.limit(1)).scalar()
        if last is not None:
            return int(last)
        p = parties_table
        opened = self.conn.execute(
            select(p.c.opened_at_ms).where(p.c.owner == party, p.c.member == member)
        ).scalar()
        return None if opened is None else int(opened)


class SqlAlerts:
    """`alerts.AlertSink` over `aml_alerts`, stamping the block that wrote each alert."""

    def __init__(self, conn: Connection, height: int) -> None:
        self.conn = conn
        self.height = height

    def get(self, alert_id: str) -> Alert | None:
        row = self.conn.execute(
            select(alerts_table).where(alerts_table.c.alert_id == alert_id)
        ).first()
        return None if row is None else alert_from_row(row)

    def latest_episode(self, *, member: str, customer: str, typology: str) -> Alert | None:
        t = alerts_table
        query = (
            select(t)
            .where(t.c.member == member, t.c.customer == customer, t.c.typology == typology)
            .order_by(t.c.last_seq.desc())
            .limit(1)
        )
        row = self.conn.execute(query).first()
        return None if row is None else alert_from_row(row)

    def put(self, alert: Alert) -> None:
        values: dict[str, Any] = {name: getattr(alert, name) for name in _ALERT_FIELDS}
        values["transfer_ids"] = json.dumps(list(alert.transfer_ids), separators=(",", ":"))
        t = alerts_table
        if self.get(alert.alert_id) is None:
            values.update(detected_height=self.height, updated_height=self.height)
            self.conn.execute(insert(t).values(**values))
        else:
            values["updated_height"] = self.height
            self.conn.execute(update(t).where(t.c.alert_id == alert.alert_id).values(**values))


class AmlProjection:
    name = "aml"
    metadata = metadata

    def __init__(self, rules: RuleSet | None = None) -> None:
        self.rules = rules or default_rules()  # the default: a member with no approved version
        self._parsed: dict[str, RuleSet] = {}  # approved rule sets by SHA-256, parsed once

    def apply(self, conn: Connection, block: BlockView) -> None:
        _record_rule_sets(conn, block)
        events = list(payment_events(block.txs, block.end_block_events))
        if not events:
            return
        accounts = _Accounts(conn)
        batch: list[Movement] = []
        for index, event in enumerate(events):
            if event["type"] == ACCOUNT_CREATED:
                accounts.open(account_fact(event["attrs"]))
            elif event["type"] == TRANSFER_CREATED:
                seq = block.height * SEQ_PER_BLOCK + index
                made = movement(event["attrs"], seq=seq, account=accounts.get)
                if made is not None:
                    batch.append(made)
        batch = _unseen(conn, batch)
        if not batch:
            return
        conn.execute(
            insert(movements_table),
            [
                {
                    **{name: getattr(m, name) for name in _MOVEMENT_FIELDS},
                    "day": m.day,
                    "height": block.height,
                }
                for m in batch
            ],
        )
        book = self.book(conn, height=block.height)
        findings = detect(batch, SqlWindow(conn), book)
        record_findings(findings, SqlAlerts(conn, block.height), book)

    def book(self, conn: Connection, *, height: int) -> MemberRules:
        """The rules each member's customers are judged by in block `height`."""
        t = rule_sets_table
        rows = conn.execute(
            select(t.c.member, t.c.sha256, t.c.rules)
            .where(t.c.status == RuleSetStatus.APPROVED, t.c.from_height <= height)
            .order_by(t.c.from_height)
        ).all()
        by_member: dict[str, RuleSet] = {}
        for member, digest, body in rows:  # the latest approval wins
            rules = self._parsed.get(digest)
            if rules is None:
                rules = self._parsed[digest] = parse_rules(json.loads(body))
            by_member[member] = rules
        return MemberRules(self.rules, by_member)


def _record_rule_sets(conn: Connection, block: BlockView) -> None:
    """Keep the versions the block's AML txs proposed or decided (an approval in force from
    the next block, whatever the order of the txs in this one)."""
    t = rule_sets_table
    for tx in block.txs:
        if not tx.ok:
            continue
        for event in tx.events:
            if event.get("type") != RULE_SET_EVENT:
                continue
            record = dict(event["attrs"])
            row = {
                **{name: record[name] for name in _RULE_SET_FIELDS},
                "rules": json.dumps(record["rules"], sort_keys=True, ensure_ascii=False),
                "from_height": (
                    record["decided_height"] + 1
                    if record["status"] == RuleSetStatus.APPROVED
                    else None
                ),
            }
            key = and_(t.c.member == row["member"], t.c.version == row["version"])
            if conn.execute(select(t.c.version).where(key)).first() is None:
                conn.execute(insert(t).values(**row))
            else:
                conn.execute(update(t).where(key).values(**row))


def _unseen(conn: Connection, batch: list[Movement]) -> list[Movement]:
    """The batch without transfers already held (a repeated event) or repeated within it."""
    ids = [m.transfer_id for m in batch]
    held: set[str] = set()
    t = movements_table
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        held.update(
            conn.execute(select(t.c.transfer_id).where(t.c.transfer_id.in_(chunk))).scalars()
        )
    fresh: list[Movement] = []
    for move in batch:
        if move.transfer_id not in held:
            held.add(move.transfer_id)
            fresh.append(move)
    return fresh


class _Accounts:
    """The accounts a block names: those it opens, then the table, each read once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cache: dict[str, AccountFact | None] = {}

    def open(self, fact: AccountFact) -> None:
        if self.get(fact.account_id) is not None:
            return  # a repeated event: the account stands as first recorded
        self.conn.execute(insert(accounts_table).values(**_fact_values(fact)))
        self.cache[fact.account_id] = fact
        if fact.party != Party.PLATFORM and fact.custodian is not None:
            p = parties_table
            known = self.conn.execute(
                select(p.c.owner).where(p.c.owner == fact.owner, p.c.member == fact.custodian)
            ).first()
            if known is None:
                self.conn.execute(
                    insert(p).values(
                        owner=fact.owner, member=fact.custodian, opened_at_ms=fact.opened_at_ms
                    )
                )

    def get(self, account_id: str) -> AccountFact | None:
        if account_id not in self.cache:
            row = self.conn.execute(
                select(accounts_table).where(accounts_table.c.account_id == account_id)
            ).first()
            self.cache[account_id] = None if row is None else AccountFact(**dict(row._mapping))
        return self.cache[account_id]


def _fact_values(fact: AccountFact) -> dict[str, Any]:
    return {name: getattr(fact, name) for name in AccountFact.__dataclass_fields__}

"""Credit's off-chain tables in the platform database, written by the service (not fed by
blocks, so `zhijin reindex` leaves them alone): the decision records and the behavioural score
history.  The applicant's raw fields are personal data: they are sealed in the identity vault
(`APPLICANT_SCHEMA`, one record per decision), never stored here in the clear and never put on
chain; the chain holds only the record's hash."""

from __future__ import annotations

import json
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    update,
)

from zhijin.credit import limits
from zhijin.platform.errors import InvalidInput
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity

__all__ = [
    "APPLICANT_SCHEMA",
    "DecisionCursor",
    "behaviour_table",
    "decisions_table",
    "ensure_tables",
    "get_decision",
    "insert_decision",
    "list_decisions",
    "mark_anchored",
]

# The applicant's fields as given (and as completed from what the platform knows), sealed.
APPLICANT_SCHEMA = RecordSchema(
    "credit_applicant", (FieldSpec("input", Sensitivity.SENSITIVE, blind_index=False),)
)

metadata = MetaData()
_SHA = limits.SHA256_CHARS
_ID = limits.ID_CHARS_MAX
_DID = limits.MEMBER_CHARS_MAX

decisions_table = Table(
    "credit_decisions",
    metadata,
    Column("decision_id", String(_ID), primary_key=True),
    Column("member", String(_DID), nullable=False),
    Column("subject", String(_DID), nullable=True),  # the applicant's DID, when a customer
    Column("requested_by", String(_ID + 8), nullable=False),  # user id, or "operator"
    Column("request_sha256", String(_SHA), nullable=False),  # what a retry must repeat
    Column("input_sha256", String(_SHA), nullable=False),
    Column("model_sha256", String(_SHA), nullable=False),
    Column("policy_id", String(_ID), nullable=False),
    Column("policy_version", BigInteger, nullable=False),
    Column("points", Integer, nullable=False),
    Column("pd_ppm", Integer, nullable=False),
    Column("outcome", String(limits.OUTCOME_CHARS_MAX), nullable=False),
    Column("limit_minor", BigInteger, nullable=False),
    Column("price_tier", String(limits.PRICE_TIER_CHARS_MAX), nullable=True),
    Column("record", Text, nullable=False),  # the decision record (canonical JSON)
    Column("record_sha256", String(_SHA), nullable=False),
    Column("decided_at_ms", BigInteger, nullable=False),
    Column("anchor_height", BigInteger, nullable=True),  # None until the anchor committed
    Column("anchor_tx_hash", String(64), nullable=True),
    Index("ix_credit_decisions_subject", "subject", "decided_at_ms"),
    Index("ix_credit_decisions_member", "member", "decided_at_ms"),
)
behaviour_table = Table(
    "credit_behaviour_history",
    metadata,
    Column("subject", String(_DID), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("score", Integer, nullable=False),
    Column("previous_score", Integer, nullable=True),
    Column("contributions", Text, nullable=False),  # JSON list of {code, points, text_zh, ...}
    Column("changes", Text, nullable=False),  # JSON list: why it moved since the last snapshot
    Column("other_members_data", String(24), nullable=False),  # used | not_used_no_consent | none
    Column("thin_file", Boolean, nullable=False),
)

_created: weakref.WeakSet[Engine] = weakref.WeakSet()
_creating = threading.Lock()


def ensure_tables(engine: Engine) -> None:
    """Create credit's off-chain tables once per engine (idempotent, like identity's)."""
    if engine in _created:
        return
    with _creating:
        if engine not in _created:
            metadata.create_all(engine)
            _created.add(engine)


def get_decision(conn: Connection, decision_id: str) -> dict[str, Any] | None:
    table = decisions_table
    row = conn.execute(select(table).where(table.c.decision_id == decision_id)).first()
    if row is None:
        return None
    data = dict(row._mapping)
    data["record"] = json.loads(data["record"])
    return data


def insert_decision(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(decisions_table.insert(), [row])


def mark_anchored(conn: Connection, decision_id: str, *, height: int, tx_hash: str) -> None:
    table = decisions_table
    conn.execute(
        update(table)
        .where(table.c.decision_id == decision_id)
        .values(anchor_height=height, anchor_tx_hash=tx_hash)
    )


_CURSOR = re.compile(limits.DECISION_CURSOR_PATTERN)


@dataclass(frozen=True, slots=True)
class DecisionCursor:
    """Where a page of decisions ended: its last row's time and id.  Pages are in the order
    (decided_at_ms newest first, then decision_id), so the next page starts strictly after
    this pair and the decisions of one millisecond are never skipped nor repeated, wherever a
    page boundary falls among them.  As text: `"<decided_at_ms>:<decision_id>"`."""

    decided_at_ms: int
    decision_id: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> DecisionCursor:
        return cls(row["decided_at_ms"], row["decision_id"])

    @classmethod
    def parse(cls, text: str) -> DecisionCursor:
        if not _CURSOR.fullmatch(text):
            raise InvalidInput(
                "invalid_cursor", "before is the next_before of the previous page of decisions"
            )
        time_text, _, decision_id = text.partition(":")
        return cls(int(time_text), decision_id)

    def text(self) -> str:
        return f"{self.decided_at_ms}:{self.decision_id}"


def list_decisions(
    conn: Connection,
    *,
    member: str | None,
    subject: str | None,
    before: DecisionCursor | None,
    limit: int,
    outcome: str | None = None,
) -> list[dict[str, Any]]:
    """A page of decisions, newest first (one millisecond's by id); pass the last row's
    `DecisionCursor` for the next; `outcome` keeps only the decisions with that outcome."""
    table = decisions_table
    query = select(table).order_by(table.c.decided_at_ms.desc(), table.c.decision_id).limit(limit)
    if member is not None:
        query = query.where(table.c.member == member)
    if subject is not None:
        query = query.where(table.c.subject == subject)
    if before is not None:
        query = query.where(
            or_(
                table.c.decided_at_ms < before.decided_at_ms,
                and_(
                    table.c.decided_at_ms == before.decided_at_ms,
                    table.c.decision_id > before.decision_id,
                ),
            )
        )
    if outcome is not None:
        query = query.where(table.c.outcome == outcome)
    rows = []
    for row in conn.execute(query):
        data = dict(row._mapping)
        data["record"] = json.loads(data["record"])
        rows.append(data)
    return rows


def last_behaviour(conn: Connection, subject: str) -> dict[str, Any] | None:
    table = behaviour_table
    query = select(table).where(table.c.subject == subject).order_by(table.c.seq.desc()).limit(1)
    row = conn.execute(query).first()
    return None if row is None else _behaviour_out(row)


def _behaviour_out(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["contributions"] = json.loads(data["contributions"])
    data["changes"] = json.loads(data["changes"])
    return data


def behaviour_history(
    conn: Connection, subject: str, *, before_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    table = behaviour_table
    query = select(table).where(table.c.subject == subject)
    if before_seq is not None:
        query = query.where(table.c.seq < before_seq)
    query = query.order_by(table.c.seq.desc()).limit(limit)
    return [_behaviour_out(row) for row in conn.execute(query)]


def append_behaviour(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(behaviour_table.insert(), [row])

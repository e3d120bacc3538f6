"""AML's off-chain tables in the platform database, written by the service (not fed by blocks,
so `zhijin reindex` leaves them alone): cases, the alerts each gathers, every step of a case
with who took it, in which role and why, and the filings of large-value reports.  They refer to
the monitor's alerts by their derived ids, which a reindex reproduces."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import BigInteger, Column, Engine, Index, MetaData, String, Table, Text

from zhijin.aml import limits

__all__ = [
    "case_alerts_table",
    "case_steps_table",
    "cases_table",
    "ensure_tables",
    "large_value_filings_table",
]

metadata = MetaData()
_PARTY = limits.PARTY_CHARS_MAX

cases_table = Table(
    "aml_cases",
    metadata,
    Column("case_id", String(limits.ID_CHARS_MAX), primary_key=True),
    Column("member", String(_PARTY), nullable=False),
    Column("customer", String(_PARTY), nullable=False),
    Column("status", String(limits.STATUS_CHARS_MAX), nullable=False),
    Column("opened_by", String(limits.ACTOR_CHARS_MAX), nullable=False),
    Column("opened_at_ms", BigInteger, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
    Column("filing_sha256", String(limits.SHA256_CHARS), nullable=True),
    Column("filing_height", BigInteger, nullable=True),
    Column("filing_xml", Text, nullable=True),
    Index("ix_aml_cases_member_status", "member", "status", "updated_at_ms"),
    Index("ix_aml_cases_customer", "member", "customer"),
)
case_alerts_table = Table(
    "aml_case_alerts",
    metadata,
    Column("case_id", String(limits.ID_CHARS_MAX), primary_key=True),
    Column("alert_id", String(limits.ALERT_ID_CHARS), primary_key=True),
    Column("attached_at_ms", BigInteger, nullable=False),
    Index("ix_aml_case_alerts_alert", "alert_id"),
)
case_steps_table = Table(
    "aml_case_steps",
    metadata,
    Column("case_id", String(limits.ID_CHARS_MAX), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("from_status", String(limits.STATUS_CHARS_MAX), nullable=True),
    Column("to_status", String(limits.STATUS_CHARS_MAX), nullable=False),
    Column("actor", String(limits.ACTOR_CHARS_MAX), nullable=False),
    Column("role", String(limits.ROLE_CHARS_MAX), nullable=False),
    Column("reason", String(limits.REASON_CHARS_MAX), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
)
large_value_filings_table = Table(
    "aml_large_value_filings",
    metadata,
    Column("alert_id", String(limits.ALERT_ID_CHARS), primary_key=True),
    Column("member", String(_PARTY), nullable=False),
    Column("filed_by", String(limits.ACTOR_CHARS_MAX), nullable=False),
    Column("filed_at_ms", BigInteger, nullable=False),
    Column("report_sha256", String(limits.SHA256_CHARS), nullable=False),
    Column("anchor_height", BigInteger, nullable=False),
)

_created: weakref.WeakSet[Engine] = weakref.WeakSet()
_creating = threading.Lock()


def ensure_tables(engine: Engine) -> None:
    """Create AML's off-chain tables once per engine (idempotent, like credit's)."""
    if engine in _created:
        return
    with _creating:
        if engine not in _created:
            metadata.create_all(engine)
            _created.add(engine)

"""Risk's off-chain tables in the platform database, written by the service: rule versions
(maker-checker, each change anchored on chain by its hash), the decision recorded with every
screened payment (score, reasons, rule and model versions, the features it saw), the review
cases of held payments (whose verdicts are the supervised model's labels), and the model
registry (each file's SHA-256)."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from zhijin.risk import limits

__all__ = [
    "cases_table",
    "decisions_table",
    "ensure_tables",
    "metadata",
    "models_table",
    "rules_table",
]

metadata = MetaData()
_ID = limits.ID_CHARS_MAX
_PARTY = 128
_ACTOR = 200

rules_table = Table(
    "risk_rules",
    metadata,
    Column("rule_id", String(48), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", Text, nullable=False),  # canonical JSON of the RuleBody
    Column("body_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # draft | approved | rejected
    Column("member", String(_PARTY), nullable=False),
    Column("created_by", String(_ACTOR), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("decided_by", String(_ACTOR), nullable=True),
    Column("decided_ms", BigInteger, nullable=True),
    Column("decision_reason", String(limits.REASON_CHARS_MAX), nullable=True),
    Column("anchor_height", BigInteger, nullable=True),
    Index("ix_risk_rules_status", "status", "rule_id"),
)
decisions_table = Table(
    "risk_decisions",
    metadata,
    Column("decision_id", String(_ID), primary_key=True),
    Column("transfer_id", String(_ID), nullable=False),
    Column("member", String(_PARTY), nullable=False),
    Column("payer", String(_PARTY), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("debit_account_id", String(_ID), nullable=False),
    Column("credit_account_id", String(_ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("tier", String(16), nullable=False),
    Column("score_bps", Integer, nullable=False),
    Column("reasons", Text, nullable=False),  # JSON: ["rule_id: English sentence", ...]
    Column("reasons_by_locale", Text, nullable=False),  # JSON: {"zh_CN": [...], "en": [...]}
    Column("versions", Text, nullable=False),  # JSON: {"rules": ..., "policy": ..., ...}
    Column("degraded", Text, nullable=False),  # JSON list
    Column("features", Text, nullable=False),  # JSON: the row the decision saw
    Column("hold_timeout_ms", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=True),  # submitted|held|refused|ledger_refused
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_risk_decisions_transfer", "transfer_id", "at_ms"),
    Index("ix_risk_decisions_member", "member", "at_ms"),
    Index("ix_risk_decisions_payer", "payer", "at_ms"),
)
cases_table = Table(
    "risk_cases",
    metadata,
    Column("case_id", String(_ID), primary_key=True),
    Column("decision_id", String(_ID), nullable=False, unique=True),
    Column("transfer_id", String(_ID), nullable=False),
    Column("member", String(_PARTY), nullable=False),
    Column("payer", String(_PARTY), nullable=False),
    Column("status", String(16), nullable=False),  # open | cleared | confirmed_fraud
    Column("opened_ms", BigInteger, nullable=False),
    Column("resolved_by", String(_ACTOR), nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Column("reason", String(limits.REASON_CHARS_MAX), nullable=True),
    Column("resolution_transfer_id", String(_ID), nullable=True),
    Index("ix_risk_cases_member_status", "member", "status", "opened_ms"),
)
models_table = Table(
    "risk_models",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # lightgbm
    Column("sha256", String(64), nullable=False),
    Column("file_name", String(128), nullable=False),
    Column("labels", Integer, nullable=False),
    Column("positives", Integer, nullable=False),
    Column("registered_by", String(_ACTOR), nullable=False),
    Column("registered_ms", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # active | retired
)

_created: weakref.WeakSet[Engine] = weakref.WeakSet()
_creating = threading.Lock()


def ensure_tables(engine: Engine) -> None:
    """Create risk's tables once per engine (idempotent, like AML's)."""
    if engine in _created:
        return
    with _creating:
        if engine not in _created:
            metadata.create_all(engine)
            _created.add(engine)

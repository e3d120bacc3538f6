"""Credit's query tables, fed by the credit contract's events (so `zhijin reindex` rebuilds them
from the blocks): the model registry, policy versions, decision anchors and repayment facts,
and the reads the API makes of them."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
)

from zhijin.credit import limits
from zhijin.credit.contract import (
    CONTRACT_NAME,
    EVENT_DECISION_ANCHORED,
    EVENT_MODEL,
    EVENT_POLICY_SAVED,
    EVENT_REPAYMENT,
)
from zhijin.platform.projections import BlockView

__all__ = [
    "CreditProjection",
    "anchors_table",
    "get_anchor",
    "get_model",
    "get_policy",
    "list_models",
    "models_table",
    "policies_table",
    "repayments_of",
    "repayments_table",
]

metadata = MetaData()
_SHA = limits.SHA256_CHARS
_MEMBER = limits.MEMBER_CHARS_MAX
_ID = limits.ID_CHARS_MAX

models_table = Table(
    "credit_models",
    metadata,
    Column("sha256", String(_SHA), primary_key=True),
    Column("name", String(limits.MODEL_NAME_CHARS_MAX), nullable=False),
    Column("version", String(limits.MODEL_VERSION_CHARS_MAX), nullable=False),
    Column("card_sha256", String(_SHA), nullable=False),
    Column("member", String(_MEMBER), nullable=False),
    Column("trainer", String(limits.OFFICER_CHARS_MAX), nullable=False),
    Column("status", String(10), nullable=False),
    Column("approver", String(limits.OFFICER_CHARS_MAX), nullable=True),
    Column("registered_height", BigInteger, nullable=False),
    Column("registered_ms", BigInteger, nullable=False),
    Column("approved_height", BigInteger, nullable=True),
    Column("approved_ms", BigInteger, nullable=True),
    Column("retired_height", BigInteger, nullable=True),
    Column("retired_ms", BigInteger, nullable=True),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_credit_models_member", "member", "registered_height"),
)
policies_table = Table(
    "credit_policies",
    metadata,
    # "<policy_id>/<version, 7 digits>": the record's state key without its prefix
    Column("key", String(_ID + 8), primary_key=True),
    Column("policy_id", String(_ID), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("member", String(_MEMBER), nullable=False),
    Column("officer", String(limits.OFFICER_CHARS_MAX), nullable=False),
    Column("rules", Text, nullable=False),  # canonical JSON of the policy
    Column("saved_height", BigInteger, nullable=False),
    Column("saved_ms", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_credit_policies_id", "policy_id", "version"),
)
anchors_table = Table(
    "credit_anchors",
    metadata,
    Column("decision_id", String(_ID), primary_key=True),
    Column("record_sha256", String(_SHA), nullable=False),
    Column("model_sha256", String(_SHA), nullable=False),
    Column("policy_id", String(_ID), nullable=False),
    Column("policy_version", BigInteger, nullable=False),
    Column("member", String(_MEMBER), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_credit_anchors_model", "model_sha256"),
)
repayments_table = Table(
    "credit_repayments",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("subject", String(_MEMBER), nullable=False),
    Column("member", String(_MEMBER), nullable=False),
    Column("due_at_ms", BigInteger, nullable=False),
    Column("paid_at_ms", BigInteger, nullable=True),
    Column("height", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_credit_repayments_subject", "subject", "due_at_ms"),
)

_EVENT = {f"{CONTRACT_NAME}.{name}": name for name in (EVENT_MODEL, EVENT_POLICY_SAVED)}
_EVENT |= {f"{CONTRACT_NAME}.{name}": name for name in (EVENT_DECISION_ANCHORED, EVENT_REPAYMENT)}


def policy_row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": f"{record['policy_id']}/{record['version']:07d}",
        "policy_id": record["policy_id"],
        "version": record["version"],
        "member": record["member"],
        "officer": record["officer"],
        "rules": json.dumps(record["rules"], sort_keys=True, separators=(",", ":")),
        "saved_height": record["saved_height"],
        "saved_ms": record["saved_ms"],
        "tx_hash": record["tx_hash"],
    }


class CreditProjection:
    name = "credit"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        # The last record per key wins within a block (a model registered and approved in one).
        upserts: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in _EVENT.values()}
        for tx in block.txs:
            if not tx.ok:
                continue
            for event in tx.events:
                name = _EVENT.get(event["type"])
                if name is not None:
                    attrs = dict(event["attrs"])
                    upserts[name][_key(name, attrs)] = attrs
        self._write(conn, models_table, "sha256", upserts[EVENT_MODEL])
        policies = {key: policy_row(row) for key, row in upserts[EVENT_POLICY_SAVED].items()}
        self._write(conn, policies_table, "key", policies)
        self._write(conn, anchors_table, "decision_id", upserts[EVENT_DECISION_ANCHORED])
        self._write(conn, repayments_table, "id", upserts[EVENT_REPAYMENT])

    @staticmethod
    def _write(conn: Connection, table: Table, key: str, rows: dict[str, dict[str, Any]]) -> None:
        if rows:  # one delete and one insert per table per block, not a statement per event
            conn.execute(delete(table).where(table.c[key].in_(list(rows))))
            conn.execute(table.insert(), list(rows.values()))


def _key(name: str, attrs: dict[str, Any]) -> str:
    if name == EVENT_MODEL:
        return str(attrs["sha256"])
    if name == EVENT_POLICY_SAVED:
        return f"{attrs['policy_id']}/{attrs['version']:07d}"
    if name == EVENT_DECISION_ANCHORED:
        return str(attrs["decision_id"])
    return str(attrs["id"])


def get_model(conn: Connection, sha256: str) -> dict[str, Any] | None:
    row = conn.execute(select(models_table).where(models_table.c.sha256 == sha256)).first()
    return None if row is None else dict(row._mapping)


def list_models(
    conn: Connection,
    *,
    member: str | None,
    status: str | None,
    after_sha256: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(models_table).order_by(models_table.c.sha256).limit(limit)
    if member is not None:
        query = query.where(models_table.c.member == member)
    if status is not None:
        query = query.where(models_table.c.status == status)
    if after_sha256 is not None:
        query = query.where(models_table.c.sha256 > after_sha256)
    return [dict(row._mapping) for row in conn.execute(query)]


def _policy_out(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["rules"] = json.loads(data["rules"])
    del data["key"]
    return data


def get_policy(conn: Connection, policy_id: str, version: int | None) -> dict[str, Any] | None:
    """A policy version, or its latest when `version` is None."""
    table = policies_table
    query = select(table).where(table.c.policy_id == policy_id)
    if version is None:
        latest = select(func.max(table.c.version)).where(table.c.policy_id == policy_id)
        query = query.where(table.c.version == latest.scalar_subquery())
    else:
        query = query.where(table.c.version == version)
    row = conn.execute(query).first()
    return None if row is None else _policy_out(row)


def get_anchor(conn: Connection, decision_id: str) -> dict[str, Any] | None:
    table = anchors_table
    row = conn.execute(select(table).where(table.c.decision_id == decision_id)).first()
    return None if row is None else dict(row._mapping)


def repayments_of(conn: Connection, subject: str) -> list[dict[str, Any]]:
    """The subject's recorded instalments, the most recent first (at most a history's worth)."""
    table = repayments_table
    query = (
        select(table)
        .where(table.c.subject == subject)
        .order_by(table.c.due_at_ms.desc())
        .limit(limits.BEHAVIOUR_HISTORY_MAX)
    )
    return [dict(row._mapping) for row in conn.execute(query)]

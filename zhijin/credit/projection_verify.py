"""Checking credit's query tables against the credit contract's records on chain (`zhijin
projections verify`): every row equals its record, every record has its row, no row lacks one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table

from zhijin.credit.projection import (
    CreditProjection,
    anchors_table,
    models_table,
    policies_table,
    policy_row,
    repayments_table,
)
from zhijin.credit.records import keys
from zhijin.platform.projection_verify import KeyedTable, Mismatch, StateAt, compare_keyed_rows

__all__ = ["CreditProjectionVerifier"]


def _columns_of(table: Table) -> Any:
    names = tuple(column.name for column in table.columns)

    def expected(record: Mapping[str, Any]) -> dict[str, Any]:
        return {name: record[name] for name in names}

    return expected


def _policy(record: Mapping[str, Any]) -> dict[str, Any]:
    return policy_row(dict(record))


TABLES = (
    KeyedTable("credit", models_table, "sha256", keys.MODEL, _columns_of(models_table)),
    KeyedTable("credit", policies_table, "key", keys.POLICY, _policy),
    KeyedTable("credit", anchors_table, "decision_id", keys.DECISION, _columns_of(anchors_table)),
    KeyedTable("credit", repayments_table, "id", keys.REPAYMENT, _columns_of(repayments_table)),
)


class CreditProjectionVerifier:
    domain = "credit"
    name = CreditProjection.name  # its cursor is the height to compare at

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        found: list[Mismatch] = []
        for spec in TABLES:
            found += compare_keyed_rows(state, conn, spec)
        return found

"""Checking the notary's query table against the anchors on chain.

The audit log's anchored heads are read from this table (`zhijin audit verify`), so a row
removed or changed here could hide a cut or rewritten audit log: every row must equal its record
on chain, and every record must have its row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from zhijin.notary.contract import record_key
from zhijin.notary.projection import anchors_table
from zhijin.platform.projection_verify import KeyedTable, Mismatch, StateAt, compare_keyed_rows

__all__ = ["NotaryProjectionVerifier"]

_COLUMNS = tuple(column.name for column in anchors_table.columns)


def _expected_anchor(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in _COLUMNS}


ANCHORS = KeyedTable(
    "notary", anchors_table, "hash", record_key(""), _expected_anchor
)  # record_key(""): the prefix of every anchor's state key


class NotaryProjectionVerifier:
    domain = "notary"
    name = "notary"  # NotaryProjection.name

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        return compare_keyed_rows(state, conn, ANCHORS)

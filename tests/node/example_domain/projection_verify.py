"""Checking the guestbook's query table against the entries on chain (`zhijin projections
verify`): every row equals its record, every record has its row, no row lacks a record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from tests.node.example_domain.projection import GuestbookProjection, entries_table
from tests.node.example_domain.records import keys
from zhijin.platform.projection_verify import KeyedTable, Mismatch, StateAt, compare_keyed_rows

__all__ = ["GuestbookProjectionVerifier"]

_COLUMNS = tuple(column.name for column in entries_table.columns)


def _expected_row(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in _COLUMNS}


ENTRIES = KeyedTable("guestbook", entries_table, "id", keys.ENTRY, _expected_row)


class GuestbookProjectionVerifier:
    domain = "guestbook"
    name = GuestbookProjection.name  # its cursor is the height to compare at

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]:
        return compare_keyed_rows(state, conn, ENTRIES)

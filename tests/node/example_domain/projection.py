"""The guestbook's query table: entries, newest first, fed by `guestbook.entry_signed` events
(so `zhijin reindex` rebuilds it from the blocks), and the reads the API makes of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index, MetaData, String, Table, select

from tests.node.example_domain import limits
from tests.node.example_domain.contract import CONTRACT_NAME, EVENT_ENTRY_SIGNED
from zhijin.platform.projections import BlockView

__all__ = ["GuestbookProjection", "entries_table", "list_entries"]

EVENT_TYPE = f"{CONTRACT_NAME}.{EVENT_ENTRY_SIGNED}"

metadata = MetaData()
entries_table = Table(
    "guestbook_entries",
    metadata,
    Column("id", String(limits.ENTRY_ID_CHARS_MAX), primary_key=True),
    Column("author", String(limits.AUTHOR_CHARS_MAX), nullable=False),
    Column("message", String(limits.MESSAGE_CHARS_MAX), nullable=False),
    Column("signed_at_ms", BigInteger, nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Index("ix_guestbook_entries_height", "height"),
)


class GuestbookProjection:
    name = "guestbook"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        rows = [
            dict(event["attrs"])
            for tx in block.txs
            if tx.ok
            for event in tx.events
            if event["type"] == EVENT_TYPE
        ]
        if rows:  # one statement per block, not per entry
            conn.execute(entries_table.insert(), rows)


def list_entries(
    conn: Connection, *, before_height: int | None, limit: int
) -> list[dict[str, Any]]:
    """A page of entries, newest first; pass the last row's height for the next page."""
    query = select(entries_table).order_by(entries_table.c.height.desc(), entries_table.c.id)
    if before_height is not None:
        query = query.where(entries_table.c.height < before_height)
    return [dict(row._mapping) for row in conn.execute(query.limit(limit))]

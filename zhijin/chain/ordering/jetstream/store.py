"""The chain store of a cluster peer: blocks plus the stream position committed with each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, Table, insert, select

from zhijin.chain.errors import invariant
from zhijin.chain.store import BlockRecord, ChainStore

__all__ = ["ClusterStore", "StreamCursor"]

cluster_metadata = MetaData()
cursors = Table(
    "cluster_cursors",
    cluster_metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),  # next stream sequence to read after this block
    Column("marker_seq", BigInteger, nullable=True),  # a marker whose segment is not yet done
)


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """Where to resume reading the ordering stream after a block.

    `seq` is the next message to read.  When a marker's segment spans several blocks and only
    some are committed, `seq` is the segment's start and `marker_seq` names that marker: on
    replay the committed txs are skipped (their nonces are used) and the marker wins again.
    """

    seq: int
    marker_seq: int | None = None


class ClusterStore(ChainStore):
    """The chain store plus the stream cursor, written in each block's database transaction."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.next_cursor: StreamCursor | None = None

    def create_schema(self) -> None:
        super().create_schema()
        cluster_metadata.create_all(self.engine)

    def commit_block(self, conn: Any, record: BlockRecord) -> None:
        super().commit_block(conn, record)
        cursor = self.next_cursor if record.height > 0 else StreamCursor(1)
        invariant(cursor is not None, "a cluster block needs its stream cursor")
        assert cursor is not None
        conn.execute(
            insert(cursors).values(
                height=record.height, seq=cursor.seq, marker_seq=cursor.marker_seq
            )
        )
        self.next_cursor = None

    def cursor_at(self, height: int) -> StreamCursor | None:
        with self.read() as conn:
            row = conn.execute(select(cursors).where(cursors.c.height == height)).first()
        return None if row is None else StreamCursor(row.seq, row.marker_seq)

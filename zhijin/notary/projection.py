"""The notary's query table: anchored documents, listable by owner, newest first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    inspect,
    select,
)

from zhijin.notary import limits
from zhijin.platform.projections import BlockView

__all__ = ["NotaryProjection", "anchors_table", "anchors_titled", "list_anchors"]

metadata = MetaData()
anchors_table = Table(
    "notary_anchors",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("title", String(limits.TITLE_CHARS_MAX), nullable=False),
    Column("owner", String(limits.OWNER_CHARS_MAX), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("anchored_at", BigInteger, nullable=False),
    Column("tx_hash", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Index("ix_notary_anchors_owner_height", "owner", "height"),
)


class NotaryProjection:
    name = "notary"
    metadata = metadata

    def apply(self, conn: Connection, block: BlockView) -> None:
        rows = []
        for tx in block.txs:
            if tx.contract != "notary" or not tx.ok or not tx.result["return"].get("created"):
                continue
            record = tx.result["return"]["record"]
            rows.append(
                {
                    "hash": record["hash"],
                    "title": record["title"],
                    "owner": record["owner"],
                    "height": record["height"],
                    "anchored_at": record["anchored_at"],
                    "tx_hash": record["tx_hash"],
                    "expires_at": record["expires_at"],
                }
            )
        if rows:
            conn.execute(anchors_table.insert(), rows)


def list_anchors(
    conn: Connection, *, owner: str | None, before_height: int | None, limit: int
) -> list[dict[str, Any]]:
    """A page of anchors, newest first; pass the last row's height to get the next page."""
    query = select(anchors_table).order_by(anchors_table.c.height.desc(), anchors_table.c.hash)
    if owner is not None:
        query = query.where(anchors_table.c.owner == owner)
    if before_height is not None:
        query = query.where(anchors_table.c.height < before_height)
    return [dict(row._mapping) for row in conn.execute(query.limit(limit))]


def anchors_titled(
    engine: Engine, *, owner: str, title_prefix: str, limit: int
) -> list[tuple[str, str]]:
    """(title, hash) of `owner`'s anchors whose title starts with `title_prefix`, at most
    `limit`; none before the projection first ran (its table does not exist yet)."""
    if not inspect(engine).has_table(anchors_table.name):
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            select(anchors_table.c.title, anchors_table.c.hash)
            .where(anchors_table.c.title.startswith(title_prefix, autoescape=True))
            .where(anchors_table.c.owner == owner)
            .order_by(anchors_table.c.hash)
            .limit(limit)
        ).all()
    return [(row.title, row.hash) for row in rows]

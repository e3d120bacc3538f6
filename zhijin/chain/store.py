"""Chain storage through SQLAlchemy Core, on SQLite (WAL) or PostgreSQL.

One database transaction per block: the block row, its transactions, the state writes (history
and current), the new log-tree nodes and the signed tree head commit together or not at all,
so a crash never leaves half a block.

Stored bytes are kept exactly as hashed (canonical JSON), so `chain verify` can re-derive every
hash from what is on disk and name the first place where anything was changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from zhijin.chain.codec import canonical, decode, decode_trusted
from zhijin.chain.files import touch_private

SQLITE_CACHE_KIB = 64 * 1024  # page cache per pooled chain-store connection
PREFETCH_CHUNK = 900  # keys per IN (...) query, below SQLite's bound-parameter limit

__all__ = ["BlockRecord", "ChainStore", "StoredBlock", "StoredTx", "TxRecord"]

metadata = MetaData()

# State keys compare in code-point order on every engine: contracts scan key ranges, and two
# members on different databases must see the same order.  SQLite's default BINARY collation
# already does this; PostgreSQL needs the "C" collation.
Key = String(256).with_variant(String(256, collation="C"), "postgresql")

meta = Table(
    "chain_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
blocks = Table(
    "chain_blocks",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False, unique=True),
    Column("header", LargeBinary, nullable=False),  # canonical JSON, exactly as hashed
    Column("signatures", Text, nullable=False),  # JSON list of {signer, signature}
    Column("end_block_events", LargeBinary, nullable=False),  # canonical JSON list
)
txs = Table(
    "chain_txs",
    metadata,
    Column("hash", LargeBinary(32), primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    Column("sender", String(256), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),  # canonical JSON, exactly as signed
    Column("signer", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("batch_hash", LargeBinary(32), nullable=True),
    Column("result", LargeBinary, nullable=False),  # canonical JSON outcome
    UniqueConstraint("sender", "nonce", name="uq_chain_txs_sender_nonce"),
    Index("ix_chain_txs_height_position", "height", "position", unique=True),
)
batches = Table(
    "chain_batches",
    metadata,
    Column("hash", LargeBinary(32), primary_key=True),
    Column("signer", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("tx_hashes", LargeBinary, nullable=False),  # concatenated 32-byte hashes, in order
)
# Keyed by (height, key): each block appends at the end of the index, and a block's write set
# (what `chain verify` compares) is one range.  History of one key uses the key index.
state_history = Table(
    "chain_state_history",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("key", Key, primary_key=True),
    Column("value", LargeBinary, nullable=True),  # canonical JSON; NULL = deleted
    Index("ix_chain_state_history_key", "key"),
)
state_current = Table(
    "chain_state",
    metadata,
    Column("key", Key, primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("height", BigInteger, nullable=False),
)
log_nodes = Table(
    "chain_log_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)
tree_heads = Table(
    "chain_tree_heads",
    metadata,
    Column("height", BigInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("block_hash", LargeBinary(32), nullable=False),
    Column("signatures", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class TxRecord:
    """A transaction as the node commits it."""

    tx_hash: bytes
    position: int
    sender: str
    nonce: int
    body: bytes
    signer: str
    signature: bytes
    batch_hash: bytes | None
    result: bytes  # canonical JSON


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """Everything one block commits, written in one database transaction."""

    height: int
    block_hash: bytes
    header: bytes
    signatures: list[dict[str, str]]
    end_block_events: list[dict[str, Any]]
    txs: Sequence[TxRecord]
    batches: Sequence[tuple[bytes, str, bytes, bytes]]  # hash, signer, signature, tx hashes
    writes: Sequence[tuple[str, bytes | None]]  # canonical values; None = deleted
    log_nodes: Sequence[tuple[int, int, bytes]]
    tree_size: int
    log_root: bytes
    tree_head_signatures: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class StoredBlock:
    height: int
    block_hash: bytes
    header: bytes
    signatures: list[dict[str, str]]
    end_block_events: bytes

    def header_json(self) -> dict[str, Any]:
        return dict(decode(self.header))


@dataclass(frozen=True, slots=True)
class StoredTx:
    tx_hash: bytes
    height: int
    position: int
    sender: str
    nonce: int
    body: bytes
    signer: str
    signature: bytes
    batch_hash: bytes | None
    result: bytes

    def envelope(self) -> dict[str, Any]:
        return {"body": decode(self.body), "signer": self.signer, "signature": self.signature.hex()}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed block survives power loss, not just a killed process.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_cache(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def _create_private_sqlite(url: str) -> None:
    # SQLite creates a database file with the umask's mode (often 0644) and gives its -wal and
    # -shm files the database file's mode: creating it owner-only first covers all three.
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        touch_private(Path(database))


def make_engine(url: str, *, pooled: bool = False) -> Engine:
    """An engine for `url`.  SQLite connections are opened per use unless `pooled`: the chain
    store keeps a few open, so each block's inserts find the index pages in the connection's
    page cache instead of reading them again from the file."""
    if url.startswith("sqlite"):
        _create_private_sqlite(url)
        pool = {"pool_size": 4, "max_overflow": 8} if pooled else {"poolclass": NullPool}
        engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        if pooled:
            event.listen(engine, "connect", _sqlite_cache)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


class ChainStore:
    """Reads and block commits over one SQLAlchemy engine."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else make_engine(url, pooled=True)
        self.dialect = self.engine.dialect.name
        self._local = threading.local()

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- connections ---------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- meta ----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.read() as conn:
            return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(meta.delete().where(meta.c.key == key))
            conn.execute(insert(meta).values(key=key, value=value))

    # -- blocks and txs ------------------------------------------------------------------------
    def head_height(self) -> int | None:
        with self.read() as conn:
            return conn.execute(select(func.max(blocks.c.height))).scalar()

    def get_block(self, height: int, conn: Connection | None = None) -> StoredBlock | None:
        query = select(blocks).where(blocks.c.height == height)
        if conn is None:
            with self.read() as own:
                row = own.execute(query).first()
        else:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredBlock(
            height=row.height,
            block_hash=row.hash,
            header=row.header,
            signatures=json.loads(row.signatures),
            end_block_events=row.end_block_events,
        )

    def iter_blocks(self, start: int = 0) -> Iterator[StoredBlock]:
        """Blocks in height order, read in pages so memory stays bounded."""
        height = start
        page = 200
        while True:
            with self.read() as conn:
                rows = conn.execute(
                    select(blocks)
                    .where(blocks.c.height >= height)
                    .order_by(blocks.c.height)
                    .limit(page)
                ).all()
            for row in rows:
                yield StoredBlock(
                    row.height,
                    row.hash,
                    row.header,
                    json.loads(row.signatures),
                    row.end_block_events,
                )
            if len(rows) < page:
                return
            height = rows[-1].height + 1

    def get_tx(self, tx_hash: bytes) -> StoredTx | None:
        with self.read() as conn:
            row = conn.execute(select(txs).where(txs.c.hash == tx_hash)).first()
        return None if row is None else _stored_tx(row)

    def txs_at(self, height: int) -> list[StoredTx]:
        with self.read() as conn:
            rows = conn.execute(
                select(txs).where(txs.c.height == height).order_by(txs.c.position)
            ).all()
        return [_stored_tx(row) for row in rows]

    def get_batch(self, batch_hash: bytes) -> tuple[str, bytes, list[bytes]] | None:
        with self.read() as conn:
            row = conn.execute(select(batches).where(batches.c.hash == batch_hash)).first()
        if row is None:
            return None
        hashes = [row.tx_hashes[i : i + 32] for i in range(0, len(row.tx_hashes), 32)]
        return row.signer, row.signature, hashes

    def bodies(self, tx_hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        with self.read() as conn:
            rows = conn.execute(select(txs.c.hash, txs.c.body).where(txs.c.hash.in_(tx_hashes)))
            return {row.hash: row.body for row in rows}

    def used_nonces(self, pairs: Collection[tuple[str, int]]) -> set[tuple[str, int]]:
        """Which (sender, nonce) pairs are already committed: one query per call."""
        pairs = list(pairs)
        used: set[tuple[str, int]] = set()
        placeholder = "?" if self.dialect == "sqlite" else "%s"
        with self.read() as conn:
            # Driver-level SQL: Core would compile a fresh statement for every list length.
            for start in range(0, len(pairs), PREFETCH_CHUNK // 2):
                chunk = pairs[start : start + PREFETCH_CHUNK // 2]
                rows = ", ".join([f"({placeholder}, {placeholder})"] * len(chunk))
                params = tuple(value for pair in chunk for value in pair)
                result = conn.exec_driver_sql(
                    f"SELECT sender, nonce FROM chain_txs WHERE (sender, nonce) IN (VALUES {rows})",
                    params,
                )
                used.update((sender, nonce) for sender, nonce in result)
        return used

    def state_rows_at(self, height: int) -> list[tuple[str, bytes | None]]:
        with self.read() as conn:
            rows = conn.execute(
                select(state_history.c.key, state_history.c.value)
                .where(state_history.c.height == height)
                .order_by(state_history.c.key)
            )
            return [(row.key, row.value) for row in rows]

    def iter_state(self) -> Iterator[tuple[str, bytes, int]]:
        with self.read() as conn:
            rows = conn.execute(
                select(state_current.c.key, state_current.c.value, state_current.c.height).order_by(
                    state_current.c.key
                )
            )
            for row in rows:
                yield row.key, row.value, row.height

    def tree_head(self, height: int | None = None) -> dict[str, Any] | None:
        query = select(tree_heads)
        query = (
            query.order_by(tree_heads.c.height.desc()).limit(1)
            if height is None
            else query.where(tree_heads.c.height == height)
        )
        with self.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return {
            "tree_size": row.tree_size,
            "root": row.root.hex(),
            "height": row.height,
            "block_hash": row.block_hash.hex(),
            "signatures": json.loads(row.signatures),
        }

    def tree_head_for_size(self, tree_size: int) -> dict[str, Any] | None:
        """The first tree head whose tree covers at least `tree_size` leaves."""
        with self.read() as conn:
            height = conn.execute(
                select(func.min(tree_heads.c.height)).where(tree_heads.c.tree_size >= tree_size)
            ).scalar()
        return None if height is None else self.tree_head(height)

    # -- the log tree's node store -------------------------------------------------------------
    def get_nodes(self, coords: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not coords:
            return {}
        # One `level = L AND idx IN (...)` term per level: SQLite plans a row-value IN list as a
        # full scan, but uses the primary key for this form (O(log n) per proof, not O(n)).
        by_level: dict[int, list[int]] = {}
        for level, index in coords:
            by_level.setdefault(level, []).append(index)
        condition = or_(
            *(
                and_(log_nodes.c.level == level, log_nodes.c.idx.in_(indices))
                for level, indices in sorted(by_level.items())
            )
        )
        with self.read() as conn:
            rows = conn.execute(
                select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(condition)
            )
            return {(row.level, row.idx): row.hash for row in rows}

    # -- state reads (used while executing a block) --------------------------------------------
    def state_get(self, conn: Connection, key: str) -> Any | None:
        value = self.state_get_raw(conn, key)
        return None if value is None else decode(value)

    def state_get_raw(self, conn: Connection, key: str) -> bytes | None:
        value: bytes | None = conn.execute(
            select(state_current.c.value).where(state_current.c.key == key)
        ).scalar()
        return value

    def state_scan(
        self, conn: Connection, prefix: str, start_after: str, limit: int
    ) -> list[tuple[str, Any]]:
        # Keys are compared as strings; the upper bound is the prefix followed by the largest
        # code point, which no real key reaches.
        lower = max(prefix, start_after)
        condition = and_(
            state_current.c.key >= prefix,
            state_current.c.key > lower if lower == start_after else state_current.c.key >= lower,
            state_current.c.key < prefix + "\U0010ffff",
        )
        rows = conn.execute(
            select(state_current.c.key, state_current.c.value)
            .where(condition)
            .order_by(state_current.c.key)
            .limit(limit)
        )
        # State values were validated canonical JSON when their block committed.
        return [(row.key, decode_trusted(row.value)) for row in rows if row.key.startswith(prefix)]

    def add_block_signatures(self, height: int, signatures: Sequence[dict[str, str]]) -> int:
        """Merge member signatures into a committed block's row; returns how many were new.

        Cluster mode: each peer commits a block with its own signature and adds the other
        members' signatures as they arrive.  The caller has checked them (`valid_signatures`);
        a signer already present is kept as it is, so the call is idempotent.
        """
        with self.engine.begin() as conn:
            stored = conn.execute(
                select(blocks.c.signatures).where(blocks.c.height == height)
            ).scalar()
            if stored is None:
                raise KeyError(f"no block at height {height}")
            merged: list[dict[str, str]] = json.loads(stored)
            present = {s["signer"] for s in merged}
            added = [dict(s) for s in signatures if s["signer"] not in present]
            added = list({s["signer"]: s for s in added}.values())
            if added:
                conn.execute(
                    blocks.update()
                    .where(blocks.c.height == height)
                    .values(signatures=json.dumps(merged + added))
                )
            return len(added)

    # -- the one write path --------------------------------------------------------------------
    def commit_block(self, conn: Connection, record: BlockRecord) -> None:
        """Write one block inside the caller's open transaction on `conn`."""
        conn.execute(
            insert(blocks).values(
                height=record.height,
                hash=record.block_hash,
                header=record.header,
                signatures=json.dumps(record.signatures),
                end_block_events=canonical(record.end_block_events),
            )
        )
        if record.txs:
            self._executemany(
                conn,
                "INSERT INTO chain_txs (hash, height, position, sender, nonce, body, signer,"
                " signature, batch_hash, result) VALUES ({})",
                [_tx_row(record.height, tx) for tx in record.txs],
            )
        if record.batches:
            # A batch may span blocks: the first block that holds one of its txs stores it.
            dialect_insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
            conn.execute(
                dialect_insert(batches).on_conflict_do_nothing(index_elements=[batches.c.hash]),
                [
                    {"hash": h, "signer": s, "signature": sig, "tx_hashes": hashes}
                    for h, s, sig, hashes in record.batches
                ],
            )
        if record.writes:
            self._write_state(conn, record.height, record.writes)
        if record.log_nodes:
            self._executemany(
                conn, "INSERT INTO chain_log_nodes (level, idx, hash) VALUES ({})", record.log_nodes
            )
        conn.execute(
            insert(tree_heads).values(
                height=record.height,
                tree_size=record.tree_size,
                root=record.log_root,
                block_hash=record.block_hash,
                signatures=json.dumps(record.tree_head_signatures),
            )
        )

    def _write_state(
        self, conn: Connection, height: int, writes: Sequence[tuple[str, bytes | None]]
    ) -> None:
        self._executemany(
            conn,
            "INSERT INTO chain_state_history (key, height, value) VALUES ({})",
            [(key, height, value) for key, value in writes],
        )
        deleted = [key for key, value in writes if value is None]
        if deleted:
            conn.execute(state_current.delete().where(state_current.c.key.in_(deleted)))
        upserts = [(key, value, height) for key, value in writes if value is not None]
        if upserts:
            self._executemany(
                conn,
                "INSERT INTO chain_state (key, value, height) VALUES ({}) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value, height = excluded.height",
                upserts,
            )

    def _executemany(self, conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Bulk insert through the driver: the block's hot path, thousands of rows per block.

        Core's per-row parameter processing costs more than the insert itself here; the SQL is
        fixed text with only placeholders, filled in this dialect's parameter style.
        """
        placeholder = "?" if self.dialect == "sqlite" else "%s"
        width = len(rows[0])
        conn.exec_driver_sql(sql.format(", ".join([placeholder] * width)), list(rows))

    def prefetch(self, conn: Connection, keys: Sequence[str]) -> dict[str, bytes | None]:
        """Current canonical values of many keys in few queries (absent keys map to None)."""
        found: dict[str, bytes | None] = dict.fromkeys(keys)
        for start in range(0, len(keys), PREFETCH_CHUNK):
            chunk = keys[start : start + PREFETCH_CHUNK]
            rows = conn.execute(
                select(state_current.c.key, state_current.c.value).where(
                    state_current.c.key.in_(chunk)
                )
            )
            for row in rows:
                found[row.key] = row.value
        return found


def _tx_row(height: int, tx: TxRecord) -> tuple[Any, ...]:
    return (
        tx.tx_hash,
        height,
        tx.position,
        tx.sender,
        tx.nonce,
        tx.body,
        tx.signer,
        tx.signature,
        tx.batch_hash,
        tx.result,
    )


def _stored_tx(row: Any) -> StoredTx:
    return StoredTx(
        tx_hash=row.hash,
        height=row.height,
        position=row.position,
        sender=row.sender,
        nonce=row.nonce,
        body=row.body,
        signer=row.signer,
        signature=row.signature,
        batch_hash=row.batch_hash,
        result=row.result,
    )

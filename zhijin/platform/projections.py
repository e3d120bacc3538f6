"""Projections: query tables fed by committed blocks, rebuildable from the chain.

The chain is the source of truth; a projection is a function of the blocks.  Each projection
keeps a cursor (the last height it applied) in the platform database and applies blocks in
height order, one database transaction per block, so a crash between blocks loses nothing and
a block is never applied twice.  `zhijin reindex` drops the tables and replays every block.

Projections run on their own thread, woken by the node after each commit, so a slow query
table never slows block production.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, String, Table, select

from zhijin.chain.codec import decode
from zhijin.chain.store import ChainStore

__all__ = ["BlockView", "Projection", "ProjectionRunner", "TxView", "projection_metadata"]

log = logging.getLogger("zhijin.projections")

projection_metadata = MetaData()
cursors = Table(
    "projection_cursors",
    projection_metadata,
    Column("name", String(64), primary_key=True),
    Column("height", BigInteger, nullable=False),
)

WAKE_INTERVAL_S = 1.0
BLOCKS_PER_PASS_MAX = 500


@dataclass(frozen=True, slots=True)
class TxView:
    """One committed tx as projections see it."""

    tx_hash: str
    position: int
    sender: str
    signer: str
    contract: str
    method: str
    args: dict[str, Any]
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.result.get("status") == "ok")

    @property
    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.result.get("events", [])
        return events


@dataclass(frozen=True, slots=True)
class BlockView:
    height: int
    time_ms: int
    txs: Sequence[TxView]
    end_block_events: Sequence[dict[str, Any]]


class Projection(Protocol):
    name: str
    metadata: MetaData  # the tables it owns

    def apply(self, conn: Connection, block: BlockView) -> None:
        """Apply one block inside the caller's transaction.  Must be deterministic."""
        ...


def load_block(store: ChainStore, height: int) -> BlockView | None:
    stored = store.get_block(height)
    if stored is None:
        return None
    header = stored.header_json()
    txs = []
    for tx in store.txs_at(height):
        body = decode(tx.body)
        txs.append(
            TxView(
                tx_hash=tx.tx_hash.hex(),
                position=tx.position,
                sender=tx.sender,
                signer=tx.signer,
                contract=body["contract"],
                method=body["method"],
                args=body["args"],
                result=decode(tx.result),
            )
        )
    return BlockView(height, header["time_ms"], txs, decode(stored.end_block_events))


class ProjectionRunner:
    """Keeps every registered projection caught up with the chain."""

    def __init__(
        self,
        store: ChainStore,
        engine: Engine,
        projections: Sequence[Projection],
        *,
        head: Callable[[], int | None] | None = None,
    ) -> None:
        self.store = store
        # The highest height projections may apply: the chain head by default; a cluster peer
        # passes its final height, so query tables never show a block that is not final.
        self._head = head or store.head_height
        self.engine = engine
        self.projections = list(projections)
        projection_metadata.create_all(engine)
        for projection in self.projections:
            projection.metadata.create_all(engine)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._applied = threading.Condition()
        self.heights: dict[str, int] = {p.name: self._cursor(p.name) for p in self.projections}

    def _cursor(self, name: str) -> int:
        with self.engine.connect() as conn:
            height = conn.execute(select(cursors.c.height).where(cursors.c.name == name)).scalar()
        return -1 if height is None else int(height)

    # -- catching up -------------------------------------------------------------------------------
    def catch_up(self, *, blocks_max: int = BLOCKS_PER_PASS_MAX) -> int:
        """Apply committed blocks not yet projected; returns how many block applications ran."""
        head = self._head()
        if head is None:
            return 0
        applied = 0
        for projection in self.projections:
            start = self.heights[projection.name] + 1
            for height in range(start, min(head, start + blocks_max - 1) + 1):
                block = load_block(self.store, height)
                if block is None:
                    break
                self._apply(projection, block)
                applied += 1
        with self._applied:
            self._applied.notify_all()
        return applied

    def _apply(self, projection: Projection, block: BlockView) -> None:
        with self.engine.begin() as conn:
            projection.apply(conn, block)
            updated = conn.execute(
                cursors.update()
                .where(cursors.c.name == projection.name)
                .values(height=block.height)
            )
            if updated.rowcount == 0:
                conn.execute(cursors.insert().values(name=projection.name, height=block.height))
        self.heights[projection.name] = block.height

    def wait_for(self, height: int, *, timeout_s: float = 10.0) -> bool:
        """Block until every projection has applied `height` (read-your-writes for the API)."""
        with self._applied:
            return self._applied.wait_for(
                lambda: all(h >= height for h in self.heights.values()), timeout_s
            )

    def reindex(self) -> int:
        """Drop and rebuild every projection from block 0; returns the blocks replayed."""
        for projection in self.projections:
            projection.metadata.drop_all(self.engine)
            projection.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                conn.execute(cursors.delete().where(cursors.c.name == projection.name))
            self.heights[projection.name] = -1
        total = 0
        while applied := self.catch_up():
            total += applied
        return total

    # -- the background thread --------------------------------------------------------------------
    def notify(self, _height: int) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zhijin-projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(WAKE_INTERVAL_S)
            self._wake.clear()
            try:
                while self.catch_up() and not self._stopping.is_set():
                    pass
            except Exception:
                # A projection bug must not take the node down; it retries on the next wake.
                log.exception("projection catch-up failed")

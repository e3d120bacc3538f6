"""Projections: query tables fed by committed blocks, rebuildable from the chain.

The chain is the source of truth; a projection is a function of the blocks.  Each projection
keeps a cursor (the last height it applied) in the platform database and applies blocks in
height order; the blocks of one database transaction (one block, or a few when it is behind)
move the cursor in that same transaction, so a crash loses nothing and a block is never
applied twice.  `zhijin reindex` drops the tables and replays every block.

Projections run apart from block production, woken by the node after each commit, so a slow
query table never slows it: in a separate process by default (`zhijin.platform.projector`; the
second core applies blocks while the first produces them), or on threads of the node's process
when no picklable factory of the projections is given (tests with ad-hoc projections).  In the
background each projection has a lane (a thread) of its own, so a slow or failing projection
holds back only its own cursor: a caller waits (`wait_for`) only for the projection it reads.
Each block is loaded and decoded once for all projections (lanes share a small cache of decoded
blocks); its stored bytes are this node's own committed, canonical encoding (every body and
result was validated before its block committed; `chain verify` re-checks them strictly), so
they are decoded without re-validation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, Connection, Engine, MetaData, String, Table, select

from zhijin.chain.codec import decode_trusted
from zhijin.chain.errors import ZhijinError, invariant
from zhijin.chain.store import ChainStore
from zhijin.platform.gc_tuning import GcMode
from zhijin.platform.projector import ProjectorProcess

__all__ = [
    "PROJECTION_WAIT_S",
    "RETRY_AFTER_S",
    "BlockView",
    "CommittedNotYetVisible",
    "Projection",
    "ProjectionRunner",
    "TxView",
    "await_visible",
    "projection_metadata",
]

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
# A projection that is behind applies several blocks per database transaction (one commit, one
# cursor update), up to these bounds, which also bound the decoded blocks held in memory.
BLOCKS_PER_TRANSACTION_MAX = 32
TXS_PER_TRANSACTION_MAX = 5_000
# Decoded blocks the lanes share: lanes that move together load each block once.
BLOCKS_CACHED_MAX = 2 * BLOCKS_PER_TRANSACTION_MAX
TXS_CACHED_MAX = 2 * TXS_PER_TRANSACTION_MAX
LANE_RETRY_S = 1.0  # a lane whose projection failed tries again after this, not at every block
# How long a write waits for the projection its answer reads (Settings.projection_wait_s), and
# the Retry-After of the answer when that projection has not applied the block in time.
PROJECTION_WAIT_S = 30.0
RETRY_AFTER_S = 1


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
    header = decode_trusted(stored.header)
    txs = []
    for tx in store.txs_at(height):
        body = decode_trusted(tx.body)
        txs.append(
            TxView(
                tx_hash=tx.tx_hash.hex(),
                position=tx.position,
                sender=tx.sender,
                signer=tx.signer,
                contract=body["contract"],
                method=body["method"],
                args=body["args"],
                result=decode_trusted(tx.result),
            )
        )
    return BlockView(height, header["time_ms"], txs, decode_trusted(stored.end_block_events))


class CommittedNotYetVisible(ZhijinError):
    """A write committed, but the projection its answer reads had not applied its block when
    the wait ended.  Not a failure: the tx stands, a read later finds it, and a retry with the
    same ids answers as usual; the API answers 202 with the tx hash and a Retry-After, never a
    404 for something committed."""

    code = "committed_not_yet_visible"
    http_status = 202

    def __init__(self, *, tx_hash: str | None, height: int, projections: Sequence[str]) -> None:
        super().__init__(
            message=f"committed in block {height}; not yet visible in the query tables: read it"
            " again (or retry the same request) shortly",
            tx_hash=tx_hash,
            height=height,
            projections=list(projections),
            retry_after_s=RETRY_AFTER_S,
        )


def await_visible(
    runner: ProjectionRunner, result: dict[str, Any], *, projection: str | Sequence[str]
) -> None:
    """Read-your-writes for a committed gateway result: wait until `projection` applied its
    block, or raise CommittedNotYetVisible (with the tx hash and height) when the wait ends."""
    names = [projection] if isinstance(projection, str) else list(projection)
    if not runner.wait_for(result["height"], projection=names):
        raise CommittedNotYetVisible(
            tx_hash=result.get("tx_hash"), height=result["height"], projections=names
        )


class _BlockCache:
    """Decoded blocks the lanes share, the most recently loaded kept, within bounds."""

    def __init__(self, store: ChainStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._blocks: OrderedDict[int, BlockView] = OrderedDict()
        self._txs = 0

    def get(self, height: int) -> BlockView | None:
        # Loading under the lock: a lane right behind another waits, then finds the block here.
        with self._lock:
            block = self._blocks.get(height)
            if block is not None:
                return block
            block = load_block(self._store, height)
            if block is None:
                return None
            self._blocks[height] = block
            self._txs += len(block.txs)
            while len(self._blocks) > 1 and (
                len(self._blocks) > BLOCKS_CACHED_MAX or self._txs > TXS_CACHED_MAX
            ):
                _, evicted = self._blocks.popitem(last=False)
                self._txs -= len(evicted.txs)
            return block

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._txs = 0


class ProjectionRunner:
    """Keeps every registered projection caught up with the chain."""

    def __init__(
        self,
        store: ChainStore,
        engine: Engine,
        projections: Sequence[Projection],
        *,
        head: Callable[[], int | None] | None = None,
        factory: Callable[[], Sequence[Projection]] | None = None,
        wait_timeout_s: float = PROJECTION_WAIT_S,
        gc_mode: GcMode = "tuned",
    ) -> None:
        """`factory` (a module-level function returning the same projections) moves applying
        into a separate process, which builds its own projections, store and engine with it.
        `wait_timeout_s`: how long `wait_for` waits unless told otherwise.  `gc_mode`: the
        projector process's garbage collector (`ZHIJIN_GC`, zhijin/platform/gc_tuning.py)."""
        self.store = store
        self.gc_mode: GcMode = gc_mode
        self.wait_timeout_s = wait_timeout_s
        # The highest height projections may apply: the chain head by default; a cluster peer
        # passes its final height, so query tables never show a block that is not final.
        self._head = head or store.head_height
        self.engine = engine
        self.projections = list(projections)
        projection_metadata.create_all(engine)
        for projection in self.projections:
            projection.metadata.create_all(engine)
        self._stopping = threading.Event()
        # One lane (a thread and its wake-up) per projection while running in the background.
        self._wakes = {p.name: threading.Event() for p in self.projections}
        self._lanes: list[threading.Thread] = []
        self._cache = _BlockCache(store)
        self._factory = factory
        self._process: ProjectorProcess | None = None
        self._applied = threading.Condition()
        # Called (without arguments) after each chunk of blocks is applied: the projector
        # process reports its progress to the node's process through it.
        self.on_applied: Callable[[], None] | None = None
        self.listeners: list[Callable[[], None]] = []
        self.heights: dict[str, int] = {p.name: self._cursor(p.name) for p in self.projections}
        self.cpu_s = 0.0  # CPU seconds spent catching up, summed (for benchmarks)
        self._cpu_before_process = 0.0

    def _cursor(self, name: str) -> int:
        with self.engine.connect() as conn:
            height = conn.execute(select(cursors.c.height).where(cursors.c.name == name)).scalar()
        return -1 if height is None else int(height)

    # -- catching up -------------------------------------------------------------------------------
    def catch_up(self, *, blocks_max: int = BLOCKS_PER_PASS_MAX) -> int:
        """Apply committed blocks not yet projected, every projection in turn, on the calling
        thread; returns how many block applications ran."""
        started = time.thread_time()
        try:
            return self._catch_up(blocks_max)
        finally:
            self._add_cpu(time.thread_time() - started)

    def _add_cpu(self, cpu_s: float) -> None:
        with self._applied:
            self.cpu_s += cpu_s

    def _catch_up(self, blocks_max: int) -> int:
        head = self._head()
        if head is None or not self.projections:
            return 0
        height = min(self.heights.values()) + 1
        end = min(head, height + blocks_max - 1)
        applied = 0
        while height <= end:
            chunk = self._load_chunk(height, end, load=lambda h: load_block(self.store, h))
            if not chunk:
                break  # the next height is not stored yet
            for projection in self.projections:
                behind = [block for block in chunk if block.height > self.heights[projection.name]]
                if behind:
                    self._apply(projection, behind)
                    applied += len(behind)
            self._applied_chunk()
            height = chunk[-1].height + 1
        return applied

    def _catch_up_lane(self, projection: Projection, blocks_max: int) -> int:
        """One projection's catch-up (its lane), with blocks from the shared cache."""
        head = self._head()
        if head is None:
            return 0
        height = self.heights[projection.name] + 1
        end = min(head, height + blocks_max - 1)
        applied = 0
        while height <= end:
            chunk = self._load_chunk(height, end, load=self._cache.get)
            if not chunk:
                break
            self._apply(projection, chunk)
            applied += len(chunk)
            self._applied_chunk()
            height = chunk[-1].height + 1
        return applied

    def _applied_chunk(self) -> None:
        self._tell_listeners()
        if self.on_applied is not None:
            self.on_applied()

    def _load_chunk(
        self, start: int, end: int, *, load: Callable[[int], BlockView | None]
    ) -> list[BlockView]:
        """Consecutive blocks from `start`, each loaded once, within the per-transaction bounds."""
        chunk: list[BlockView] = []
        txs = 0
        for height in range(start, min(end, start + BLOCKS_PER_TRANSACTION_MAX - 1) + 1):
            if chunk and txs >= TXS_PER_TRANSACTION_MAX:
                break
            block = load(height)
            if block is None:
                break
            chunk.append(block)
            txs += len(block.txs)
        return chunk

    def _apply(self, projection: Projection, blocks: Sequence[BlockView]) -> None:
        """Apply consecutive blocks and move the cursor past them, in one transaction."""
        last = blocks[-1].height
        invariant(
            blocks[0].height == self.heights[projection.name] + 1
            and last - blocks[0].height == len(blocks) - 1,
            "projection blocks must follow the cursor without gaps",
        )
        with self.engine.begin() as conn:
            for block in blocks:
                projection.apply(conn, block)
            updated = conn.execute(
                cursors.update().where(cursors.c.name == projection.name).values(height=last)
            )
            if updated.rowcount == 0:
                conn.execute(cursors.insert().values(name=projection.name, height=last))
        with self._applied:
            self.heights[projection.name] = last
            self._applied.notify_all()

    def record_progress(self, heights: dict[str, int], cpu_s: float) -> None:
        """Heights applied elsewhere (the projector process): wake whoever waits for them."""
        with self._applied:
            for name, height in heights.items():
                if name in self.heights:
                    self.heights[name] = max(self.heights[name], height)
            self.cpu_s = cpu_s + self._cpu_before_process
            self._applied.notify_all()
        self._tell_listeners()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly: it runs on the applying thread) whenever the projected
        height may have moved."""
        self.listeners.append(listener)

    def _tell_listeners(self) -> None:
        for listener in self.listeners:
            listener()

    @property
    def projected_height(self) -> int:
        """The height every projection has applied (-1 before the first block)."""
        with self._applied:
            return min(self.heights.values(), default=-1)

    def wait_for(
        self,
        height: int,
        *,
        projection: str | Sequence[str] | None = None,
        timeout_s: float | None = None,
    ) -> bool:
        """Block until `projection` (a name, or several) has applied `height`: read-your-writes
        for the API, which waits only for the projection it reads.  Without a name, every
        projection (an operator's or a test's "all caught up").  False when the wait ended
        first (after `timeout_s`, by default the runner's `wait_timeout_s`)."""
        names = self._names(projection)
        with self._applied:
            return self._applied.wait_for(
                lambda: all(self.heights[name] >= height for name in names),
                self.wait_timeout_s if timeout_s is None else timeout_s,
            )

    def _names(self, projection: str | Sequence[str] | None) -> list[str]:
        if projection is None:
            return list(self.heights)
        names = [projection] if isinstance(projection, str) else list(projection)
        unknown = [name for name in names if name not in self.heights]
        if unknown:  # a misspelt name would otherwise wait for nothing and answer at once
            raise ValueError(f"no projection named {', '.join(unknown)}")
        return names

    def reindex(self) -> int:
        """Drop and rebuild every projection from block 0; returns the blocks replayed."""
        for projection in self.projections:
            projection.metadata.drop_all(self.engine)
            projection.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                conn.execute(cursors.delete().where(cursors.c.name == projection.name))
            self.heights[projection.name] = -1
        self._cache.clear()
        total = 0
        while applied := self.catch_up():
            total += applied
        return total

    # -- running in the background: a process, or a thread --------------------------------------
    def notify(self, height: int) -> None:
        """The node committed (or, on a cluster peer, finalised) `height`."""
        if self._process is not None:
            self._process.advance(height)
            return
        for wake in self._wakes.values():
            wake.set()

    @property
    def worker_pid(self) -> int | None:
        """The projector process's pid while projections run in one (operators, tests)."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        if self._factory is not None:
            self._cpu_before_process = self.cpu_s
            self._process = ProjectorProcess(self, self._factory)
            self._process.start(self._head())
            return
        self._stopping.clear()
        self._lanes = [
            threading.Thread(
                target=self._run_lane,
                args=(projection,),
                name=f"zhijin-projection-{projection.name}",
                daemon=True,
            )
            for projection in self.projections
        ]
        for lane in self._lanes:
            lane.start()

    def stop(self) -> None:
        """Stop applying in the background; what was notified before is applied first."""
        if self._process is not None:
            self._process.stop()
            self._process = None
            for projection in self.projections:  # the process may have moved the cursors
                self.heights[projection.name] = self._cursor(projection.name)
            return
        self._stopping.set()
        for wake in self._wakes.values():
            wake.set()
        for lane in self._lanes:
            lane.join(30)
        self._lanes = []

    def _run_lane(self, projection: Projection) -> None:
        wake = self._wakes[projection.name]
        while not self._stopping.is_set():
            wake.wait(WAKE_INTERVAL_S)
            wake.clear()
            started = time.thread_time()
            try:
                while (
                    self._catch_up_lane(projection, BLOCKS_PER_PASS_MAX)
                    and not self._stopping.is_set()
                ):
                    pass
            except Exception:
                # A projection bug must not take the node down, nor hold back the other
                # projections: this lane retries a little later.
                log.exception("projection %s catch-up failed", projection.name)
                self._stopping.wait(LANE_RETRY_S)
            finally:
                self._add_cpu(time.thread_time() - started)

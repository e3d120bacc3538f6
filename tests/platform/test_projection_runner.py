"""The projection runner over a real chain: each block loaded once, applied once, in order.

(The runner lives in zhijin/platform/projections.py; its tests sit with the chain's because
they drive a node through the chain test harness.)
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, func, select

from tests.chain.helpers import ChainHarness, open_chain
from zhijin.chain.store import ChainStore, StoredTx, make_engine
from zhijin.platform import projections
from zhijin.platform.projections import BlockView, ProjectionRunner


class Recorder:
    """Writes one row per applied tx, so a rolled-back transaction leaves no rows."""

    def __init__(self, name: str, fail_at: int | None = None) -> None:
        self.name = name
        self.metadata = MetaData()
        self.table = Table(f"rec_{name}", self.metadata, Column("height", Integer))
        self.applied: list[int] = []
        self.fail_at = fail_at

    def apply(self, conn: Connection, block: BlockView) -> None:
        if block.height == self.fail_at:
            raise RuntimeError("projection bug")
        self.applied.append(block.height)
        for tx in block.txs:
            assert tx.ok and tx.result["return"]["created"]
            conn.execute(self.table.insert().values(height=block.height))

    def rows(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(self.table)).scalar() or 0)


class CountingStore(ChainStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loads: list[int] = []

    def txs_at(self, height: int) -> list[StoredTx]:
        self.loads.append(height)
        return super().txs_at(height)


def build_chain(url: str, blocks: int) -> ChainHarness:
    chain = open_chain(url)
    user = chain.users[0]
    for n in range(blocks):
        for i in range(2):
            document = hashlib.sha256(f"doc {n} {i}".encode()).hexdigest()
            chain.submit(chain.envelope(user, "notary", "anchor", {"hash": document, "title": "t"}))
        chain.commit()
    return chain


@pytest.fixture
def chain(db_url: str) -> ChainHarness:
    chain = build_chain(db_url, blocks=12)
    yield chain
    chain.store.close()


def test_each_block_is_loaded_once_and_applied_once_in_order(
    chain: ChainHarness, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projections, "BLOCKS_PER_TRANSACTION_MAX", 5)
    store = CountingStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    ahead, behind = Recorder("ahead"), Recorder("behind")
    runner = ProjectionRunner(store, engine, [ahead])
    runner.catch_up(blocks_max=4)
    assert ahead.applied == [0, 1, 2, 3]
    runner = ProjectionRunner(store, engine, [ahead, behind])  # a new projection starts at -1
    store.loads.clear()
    while runner.catch_up():
        pass
    head = chain.store.head_height()
    assert ahead.applied == list(range(head + 1))
    assert behind.applied == list(range(head + 1))
    assert store.loads == list(range(head + 1))  # once for both projections
    assert runner.heights == {"ahead": head, "behind": head}
    with engine.connect() as conn:
        assert ahead.rows(conn) == behind.rows(conn) == 2 * head
    assert ProjectionRunner(store, engine, [Recorder("ahead")]).heights["ahead"] == head
    store.close()
    engine.dispose()


def test_a_failing_block_rolls_back_its_transaction_and_keeps_the_cursor(
    chain: ChainHarness, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projections, "BLOCKS_PER_TRANSACTION_MAX", 4)
    store = ChainStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    failing = Recorder("failing", fail_at=6)
    runner = ProjectionRunner(store, engine, [failing])
    with pytest.raises(RuntimeError):
        runner.catch_up()
    # Blocks 0-3 committed as one transaction; 4-7 (with the failing 6) rolled back whole.
    assert runner.heights["failing"] == 3
    with engine.connect() as conn:
        assert failing.rows(conn) == 2 * 3
    assert ProjectionRunner(store, engine, [Recorder("failing")]).heights["failing"] == 3
    failing.fail_at = None
    while runner.catch_up():
        pass
    with engine.connect() as conn:
        assert failing.rows(conn) == 2 * chain.store.head_height()
    store.close()
    engine.dispose()


class Gated(Recorder):
    """A Recorder whose blocks wait for a gate (an event here; a file in a projector child,
    which shares no memory with the test): a projection held back deterministically."""

    def __init__(self, name: str, gate: threading.Event | Path) -> None:
        super().__init__(name)
        self.gate = gate

    def apply(self, conn: Connection, block: BlockView) -> None:
        if isinstance(self.gate, threading.Event):
            self.gate.wait()
        else:
            while not self.gate.exists():
                time.sleep(GATE_POLL_S)
        super().apply(conn, block)


GATE_POLL_S = 0.01
WAIT_S = 30.0  # an outcome that must come: generous, never reached when all is well
BLOCKED_WAIT_S = 0.2  # a wait that must end unanswered: the gate is shut until the test opens it


def gated_and_free(gate: str) -> list[Recorder]:
    """The projector child's projections (a module-level factory, picklable)."""
    return [Gated("gated", Path(gate)), Recorder("free")]


def test_a_blocked_projection_holds_back_only_itself_on_threads(
    chain: ChainHarness, db_url: str, tmp_path: Path
) -> None:
    store = ChainStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    gate = threading.Event()
    gated, free = Gated("gated", gate), Recorder("free")
    runner = ProjectionRunner(store, engine, [gated, free])  # the blocked one first
    head = chain.store.head_height()
    runner.start()
    try:
        runner.notify(head)
        assert runner.wait_for(head, projection="free", timeout_s=WAIT_S)
        assert free.applied == list(range(head + 1))
        assert not runner.wait_for(head, projection="gated", timeout_s=BLOCKED_WAIT_S)
        assert not runner.wait_for(head, timeout_s=BLOCKED_WAIT_S)  # all: the gated too
        assert runner.projected_height < head
    finally:
        gate.set()
    assert runner.wait_for(head, timeout_s=WAIT_S)
    runner.stop()
    assert gated.applied == free.applied == list(range(head + 1))
    store.close()
    engine.dispose()


def test_a_failing_projection_does_not_stop_the_others_on_threads(
    chain: ChainHarness, db_url: str, tmp_path: Path
) -> None:
    store = ChainStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    failing, free = Recorder("failing", fail_at=3), Recorder("free")
    runner = ProjectionRunner(store, engine, [failing, free])
    head = chain.store.head_height()
    runner.start()
    runner.notify(head)
    assert runner.wait_for(head, projection=["free"], timeout_s=WAIT_S)
    runner.stop()
    assert free.applied == list(range(head + 1))
    assert runner.heights["failing"] < 3
    store.close()
    engine.dispose()


def test_a_blocked_projection_holds_back_only_itself_in_the_projector_process(
    chain: ChainHarness, db_url: str, tmp_path: Path
) -> None:
    store = ChainStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    gate = tmp_path / "open"
    factory = functools.partial(gated_and_free, str(gate))
    runner = ProjectionRunner(store, engine, factory(), factory=factory)
    head = chain.store.head_height()
    runner.start()
    try:
        assert runner.worker_pid is not None
        runner.notify(head)
        assert runner.wait_for(head, projection="free", timeout_s=WAIT_S)
        assert not runner.wait_for(head, projection="gated", timeout_s=BLOCKED_WAIT_S)
    finally:
        gate.touch()
    assert runner.wait_for(head, timeout_s=WAIT_S)
    runner.stop()
    assert runner.heights == {"gated": head, "free": head}
    with engine.connect() as conn:
        assert Recorder("free").rows(conn) == 2 * head
    store.close()
    engine.dispose()


def test_waiting_for_a_projection_that_does_not_exist_is_refused(
    chain: ChainHarness, db_url: str, tmp_path: Path
) -> None:
    store = ChainStore(db_url)
    engine = make_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    runner = ProjectionRunner(store, engine, [Recorder("free")])
    with pytest.raises(ValueError, match="paymnets"):
        runner.wait_for(0, projection="paymnets", timeout_s=0)
    store.close()
    engine.dispose()

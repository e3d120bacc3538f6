"""The commit pipeline (Node(pipeline=True)) on SQLite and PostgreSQL: block h+1 executes while
block h commits, at most one block in flight, commits in strict height order, waiters answered
only after the durable commit, and a failed commit of h discards h+1 and fails both."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from zhijin.chain.crypto import KeyPair
from zhijin.chain.node import NodeError, _CachedReader
from zhijin.chain.store import BlockRecord
from zhijin.chain.verify import verify_chain
from zhijin.node.modules import default_registry
from zhijin.notary.contract import record_key

from .helpers import ChainHarness, open_chain

WAIT_S = 20


@pytest.fixture
def chain(db_url: str) -> Iterator[ChainHarness]:
    chain = open_chain(db_url, pipeline=True)
    yield chain
    chain.node.close()
    chain.store.close()


def doc(n: int) -> str:
    return hashlib.sha256(f"pipeline document {n}".encode()).hexdigest()


def anchor(chain: ChainHarness, key: KeyPair, n: int) -> dict[str, Any]:
    return chain.envelope(key, "notary", "anchor", {"hash": doc(n), "title": f"doc {n}"})


def submit(chain: ChainHarness, envelope: dict[str, Any]) -> Future[dict[str, Any]]:
    (admission,) = chain.submit(envelope)
    assert admission.accepted, (admission.code, admission.message)
    assert admission.future is not None
    return admission.future


def produce(chain: ChainHarness) -> int:
    """Cut a block without waiting for its commit (the solo orderer's loop does this)."""
    txs = chain.node.take(10_000, timeout_s=0)
    assert txs
    chain.clock.advance(10)
    return chain.node.produce_block(txs)


def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class CommitSpy:
    """Wraps the store's commit_block: records the order, checks one block at a time, and can
    hold a height's commit until the next block is sealed (so the overlap really happens)."""

    def __init__(self, chain: ChainHarness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chain = chain
        self.original = chain.store.commit_block
        self.heights: list[int] = []
        self.durable_before: list[int | None] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.hold: set[int] = set()  # commit these only once the next block is sealed
        self.fail: set[int] = set()  # ... and then fail them
        self.futures_at_hold: dict[int, list[bool]] = {}
        self.watch: dict[int, list[Future[dict[str, Any]]]] = {}
        monkeypatch.setattr(chain.store, "commit_block", self)

    def __call__(self, conn: Any, record: BlockRecord) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.heights.append(record.height)
        try:
            self.durable_before.append(self.chain.store.head_height())
            if record.height in self.hold or record.height in self.fail:
                node = self.chain.node
                until(lambda: node._tip.height > record.height, f"block {record.height + 1}")
                # The next block is sealed; this one is not durable: nobody was answered.
                self.futures_at_hold[record.height] = [
                    f.done() for f in self.watch.get(record.height, [])
                ]
            if record.height in self.fail:
                raise RuntimeError(f"disk full at block {record.height}")
            self.original(conn, record)
        finally:
            with self.lock:
                self.active -= 1


def test_blocks_overlap_commit_in_height_order_and_read_the_block_in_flight(
    chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = CommitSpy(chain, monkeypatch)
    spy.hold = {2, 5, 9}
    futures: list[tuple[int, Future[dict[str, Any]]]] = []
    for height in range(1, 13):
        # Block h anchors doc h; block h+1 anchors doc h again (another user): it must see
        # h's record, which is still in flight for the held heights.
        fresh = submit(chain, anchor(chain, chain.users[0], height))
        futures.append((height, fresh))
        spy.watch[height] = [fresh]
        if height > 1:
            futures.append((height, submit(chain, anchor(chain, chain.users[1], height - 1))))
        assert produce(chain) == height
    chain.node.drain()
    assert spy.heights == list(range(1, 13))  # strict height order, each block once
    assert spy.durable_before == list(range(0, 12))  # h commits on top of durable h-1
    assert spy.max_active == 1  # at most one block in flight
    assert spy.futures_at_hold == {2: [False], 5: [False], 9: [False]}
    for height, future in futures:
        result = future.result(timeout=WAIT_S)
        assert result["status"] == "ok" and result["height"] == height
    for height in range(1, 12):
        # The second anchoring (in block h+1) found the first (in block h, then in flight).
        second = [f for h, f in futures if h == height + 1][1].result()
        assert second["return"]["created"] is False
        assert second["return"]["record"]["height"] == height
    assert chain.node.head.height == chain.store.head_height() == 12
    report = verify_chain(chain.store, chain.genesis, default_registry())
    assert report.ok, report.reason


def test_a_failed_commit_discards_the_next_block_and_fails_both_waiters(
    chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = chain.run(anchor(chain, chain.users[0], 1))
    assert first["height"] == 1
    spy = CommitSpy(chain, monkeypatch)
    spy.fail = {2}
    lost = anchor(chain, chain.users[0], 2)
    lost_future = submit(chain, lost)
    spy.watch[2] = [lost_future]
    assert produce(chain) == 2
    # Block 3 reads doc 2 from block 2's write set, which will never be durable.
    built_on = anchor(chain, chain.users[1], 2)
    built_on_future = submit(chain, built_on)
    with pytest.raises(NodeError) as raised:
        produce(chain)
    assert raised.value.code == "commit_failed"
    assert "block 3" in raised.value.message
    for future in (lost_future, built_on_future):
        with pytest.raises(NodeError) as failed:
            future.result(timeout=WAIT_S)
        assert failed.value.code == "commit_failed"
    assert spy.futures_at_hold == {2: [False]}
    assert spy.heights == [2]  # block 3 never reached the database
    # Back to the last durable block: head, tip, log tree, cache.
    node = chain.node
    assert chain.store.head_height() == node.head.height == node._tip.height == 1
    assert node.log_tree.size == node.head.log_size == 1
    assert node.state_get(record_key(doc(2))) is None
    # The same envelopes again (their nonces were released): block 2 anew, and the first
    # anchoring of doc 2 is now user 1's, since block 2's lost write is forgotten.
    monkeypatch.undo()
    again = [submit(chain, built_on), submit(chain, lost)]
    assert chain.commit() == 2
    results = [future.result(timeout=WAIT_S) for future in again]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["return"]["created"] is True
    assert results[0]["return"]["record"]["owner"] == chain.users[1].did
    assert results[1]["return"]["created"] is False
    report = verify_chain(chain.store, chain.genesis, default_registry())
    assert report.ok, report.reason


def test_a_failed_commit_with_nothing_after_it_fails_its_waiters_and_the_node_goes_on(
    chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_conn: Any, record: BlockRecord) -> None:
        raise RuntimeError(f"disk full at block {record.height}")

    monkeypatch.setattr(chain.store, "commit_block", broken)
    future = submit(chain, anchor(chain, chain.users[0], 1))
    assert produce(chain) == 1
    with pytest.raises(NodeError):
        future.result(timeout=WAIT_S)
    monkeypatch.undo()
    result = chain.run(anchor(chain, chain.users[1], 1))
    assert result["status"] == "ok" and result["height"] == 1
    assert result["return"]["created"] is True
    report = verify_chain(chain.store, chain.genesis, default_registry())
    assert report.ok, report.reason


def test_a_failing_execution_waits_for_the_block_in_flight(
    chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while executing h+1 fails only h+1: h, in flight, still commits and answers."""
    kept = submit(chain, anchor(chain, chain.users[0], 1))
    assert produce(chain) == 1
    refused = submit(chain, anchor(chain, chain.users[1], 2))

    def broken(*_args: object) -> None:
        raise RuntimeError("prefetch broke")

    monkeypatch.setattr(chain.node, "_prefetch", broken)
    with pytest.raises(RuntimeError):
        produce(chain)
    assert kept.result(timeout=WAIT_S)["height"] == 1
    with pytest.raises(NodeError):
        refused.result(timeout=WAIT_S)
    assert chain.store.head_height() == chain.node.head.height == chain.node._tip.height == 1
    monkeypatch.undo()
    assert chain.run(anchor(chain, chain.users[1], 2))["height"] == 2


def test_scans_see_the_block_in_flight(
    chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next block's reader merges the in-flight block's writes over the committed rows:
    a new key shows in a scan and a get before the database has it."""
    submit(chain, anchor(chain, chain.users[0], 1))
    chain.commit()
    original = chain.store.commit_block
    gate = threading.Event()

    def gated(conn: Any, record: BlockRecord) -> None:
        assert gate.wait(WAIT_S)
        original(conn, record)

    monkeypatch.setattr(chain.store, "commit_block", gated)
    submit(chain, anchor(chain, chain.users[0], 2))
    assert produce(chain) == 2
    keys = sorted([record_key(doc(1)), record_key(doc(2))])
    try:
        assert chain.node.state_get(record_key(doc(2))) is None  # not durable yet
        with chain.store.read() as conn:
            reader = _CachedReader(chain.node, conn)
            assert [key for key, _ in reader.scan("notary/", "", 10)] == keys
            assert [key for key, _ in reader.scan("notary/", keys[0], 10)] == keys[1:]
            assert [key for key, _ in reader.scan("notary/", "", 1)] == keys[:1]
            assert reader.get(record_key(doc(2)))["title"] == "doc 2"
    finally:
        gate.set()
    chain.node.drain()
    assert chain.node.state_get(record_key(doc(2)))["title"] == "doc 2"

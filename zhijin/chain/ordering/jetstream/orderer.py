"""The orderer: the stream readers, the applier and the finality thread of one peer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from nats.js import JetStreamContext

from zhijin.chain.block import BlockHeader, Signature
from zhijin.chain.codec import canonical
from zhijin.chain.ordering.jetstream.cutter import StreamCutter
from zhijin.chain.ordering.jetstream.finality import (
    Divergence,
    FinalityTracker,
    stored_final_height,
)
from zhijin.chain.ordering.jetstream.limits import (
    APPLY_BATCH_MAX,
    APPLY_QUEUE_MAX,
    CUT_RETRY_S,
    FAILURE_BACKOFF_S,
    MESSAGE_BYTES_MAX,
    PUBLISH_TIMEOUT_S,
    STREAM_SETUP_S_MAX,
    VOTE_QUEUE_MAX,
    VOTE_REPLAY_MARGIN_S,
)
from zhijin.chain.ordering.jetstream.link import NatsLink, OrderingUnavailable, ensure_streams
from zhijin.chain.ordering.jetstream.messages import BlockVote, CutMarker, StreamMessage
from zhijin.chain.ordering.jetstream.node import ClusterNode
from zhijin.chain.ordering.jetstream.reader import StreamReader, first_seq_since
from zhijin.chain.ordering.jetstream.settings import OrderingSettings, StreamNames
from zhijin.chain.ordering.jetstream.store import ClusterStore, StreamCursor
from zhijin.chain.ordering.jetstream.votes import VotePublisher
from zhijin.chain.tx import Tx

__all__ = ["JetStreamOrderer", "OrdererStats"]

log = logging.getLogger("zhijin.chain.jetstream")

T = TypeVar("T")


@dataclass(slots=True)
class OrdererStats:
    applied_seq: int = 0
    blocks: int = 0
    markers_published: int = 0
    apply_s: float = 0.0  # time spent applying (parse, verify, execute, commit)
    vote_start_seq: int = 0  # where this run began reading the signature stream


class JetStreamOrderer:
    """Runs a ClusterNode against the JetStream ordering service.

    Threads: the NATS loop (reading both streams into bounded queues, publishing), the applier
    (the only caller of `StreamCutter` and `produce_block`) and the finality thread.
    """

    def __init__(
        self,
        node: ClusterNode,
        store: ClusterStore,
        settings: OrderingSettings,
        *,
        name: str = "peer",
    ) -> None:
        self.node = node
        self.store = store
        self.settings = settings
        self.names = StreamNames(node.genesis.chain_id)
        self.link = NatsLink(settings.nats_urls, name)
        self.final_listeners: list[Callable[[int], None]] = []
        self.cutter, self.finality = self._resume()
        self.stats = OrdererStats(applied_seq=self.cutter.next_seq - 1)
        self._messages: queue.Queue[StreamMessage] = queue.Queue(APPLY_QUEUE_MAX)
        self._votes: queue.Queue[tuple[int, bytes]] = queue.Queue(VOTE_QUEUE_MAX)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tasks: list[Future[Any]] = []
        self._order_reader = StreamReader(
            self._js,
            subject=self.names.order_filter,
            stream=self.names.order_stream,
            stopping=self._stopping,
            on_hole=self._halt_on_hole,
        )
        self._vote_reader = StreamReader(
            self._js,
            subject=self.names.sig_subject,
            stream=self.names.sig_stream,
            stopping=self._stopping,
        )
        self._proposed: tuple[int, int, float] = (0, 0, 0.0)  # height, first seq, when
        self.votes = VotePublisher(self._send_vote)
        self.link.reconnect_listeners.append(self.votes.retry_now)
        self._counted_head = node.head.height  # heights the finality thread has seen commit
        node.orderer = self

    def _resume(self) -> tuple[StreamCutter, FinalityTracker]:
        """The cutter and the finality tracker where the stored chain leaves off."""
        cursor = self.store.cursor_at(self.node.head.height) or StreamCursor(1)
        cutter = StreamCutter(self.node, self.store, cursor, chain_id=self.node.genesis.chain_id)
        final_height = stored_final_height(self.store, self.node.membership, self.node.head.height)
        finality = FinalityTracker(
            self.store,
            self.node.membership,
            start_height=final_height,
            listeners=self.final_listeners,
        )
        return cutter, finality

    @property
    def halted(self) -> Divergence | None:
        return self.finality.halted

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, catch_up: Callable[[int], None] | None = None) -> None:
        """Connect, create the streams, then read and apply.

        `catch_up(first_seq)` is called when the stream no longer holds the messages this
        peer needs next (they are past its retention): it must bring the chain up to a block
        whose cursor is at or past `first_seq`, from another peer's blocks.
        """
        self.link.start()
        self._setup_streams()
        first_seq = self.link.call(self._first_seq(), timeout_s=PUBLISH_TIMEOUT_S * 2)
        if self.cutter.next_seq < first_seq and not self._stream_is_empty:
            if catch_up is None:
                raise OrderingUnavailable(
                    message=f"the stream starts at {first_seq}, this peer needs "
                    f"{self.cutter.next_seq}: catch up from another peer first"
                )
            catch_up(first_seq)
            self.cutter, self.finality = self._resume()
            self._counted_head = self.node.head.height
        # Votes for blocks not final here are published again.  A vote for a block final here
        # that never reached the stream before a crash is not re-published (that would fill a
        # bounded stream with old votes): a peer that needs it fetches the stored quorum
        # signatures from the other peers instead (`offer_signatures`, cluster.py).
        for height in range(self.finality.final_height + 1, self.node.head.height + 1):
            self._queue_own_vote(height)
        self._tasks.append(self.link.spawn(self.votes.run(self._stopping)))
        self._tasks.append(self.link.spawn(self._read_orders()))
        self._tasks.append(self.link.spawn(self._read_votes()))
        for target, name in ((self._apply_loop, "applier"), (self._finality_loop, "finality")):
            thread = threading.Thread(target=target, name=f"zhijin-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "cluster peer %s: chain %s at height %d, stream seq %d, final %d",
            self.node.key.did,
            self.node.genesis.chain_id,
            self.node.head.height,
            self.cutter.next_seq,
            self.finality.final_height,
        )

    def _setup_streams(self) -> None:
        deadline = time.monotonic() + STREAM_SETUP_S_MAX
        while True:
            try:
                js = self._js()
                self.link.call(
                    ensure_streams(js, self.names, self.settings), timeout_s=PUBLISH_TIMEOUT_S * 3
                )
                return
            except Exception as exc:
                # JetStream answers "unavailable" until its meta leader is elected.
                if time.monotonic() > deadline:
                    raise OrderingUnavailable(message=f"JetStream is not ready: {exc}") from exc
                time.sleep(FAILURE_BACKOFF_S)

    _stream_is_empty = False

    async def _first_seq(self) -> int:
        info = await self._js().stream_info(self.names.order_stream)
        self._stream_is_empty = info.state.messages == 0 and info.state.last_seq == 0
        return int(info.state.first_seq)

    def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for thread in self._threads:
            thread.join(10)
        self.link.stop()

    def _js(self) -> JetStreamContext:
        js = self.link.js
        if js is None:
            raise OrderingUnavailable(message="not connected to NATS")
        return js

    # -- publishing (gateway side) ---------------------------------------------------------------
    def publish_txs(self, txs: Sequence[Tx], *, as_batch: bool) -> dict[bytes, tuple[str, str]]:
        """Publish admitted txs; returns the problems of those the stream did not take."""
        if not txs:
            return {}
        messages: list[tuple[str, bytes, list[Tx]]] = []
        if as_batch and txs[0].batch_hash is not None:
            envelope = {
                "bodies": [dict(tx.body) for tx in txs],
                "signer": txs[0].signer,
                "signature": txs[0].signature.hex(),
            }
            messages.append((f"tx:{txs[0].batch_hash.hex()}", canonical(envelope), list(txs)))
        else:
            for tx in txs:
                messages.append((f"tx:{tx.hash_hex}", canonical(tx.envelope()), [tx]))
        problems: dict[bytes, tuple[str, str]] = {}
        for _, data, group in messages:
            if len(data) > MESSAGE_BYTES_MAX:
                for tx in group:
                    problems[tx.tx_hash] = ("tx_too_large", "the envelope exceeds the stream limit")
        to_send = [
            (msg_id, data) for msg_id, data, group in messages if group[0].tx_hash not in problems
        ]
        try:
            results = self.link.call(
                self._publish_all(self.names.tx_subject, to_send),
                timeout_s=PUBLISH_TIMEOUT_S + 2,
            )
        except Exception as exc:
            results = [exc] * len(to_send)
        sent = iter(results)
        for msg_id, _data, group in messages:
            if group[0].tx_hash in problems:
                continue
            outcome = next(sent)
            if isinstance(outcome, BaseException):
                problem = (
                    "ordering_unavailable",
                    f"the ordering service did not store the tx ({type(outcome).__name__}): "
                    "it may have lost its quorum; retry later",
                )
                for tx in group:
                    problems[tx.tx_hash] = problem
                log.warning("publish %s failed: %r", msg_id, outcome)
        return problems

    async def _publish_all(self, subject: str, messages: Sequence[tuple[str, bytes]]) -> list[Any]:
        js = self._js()
        return await asyncio.gather(
            *(
                js.publish(
                    subject, data, timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id}
                )
                for msg_id, data in messages
            ),
            return_exceptions=True,
        )

    # -- reading the streams ---------------------------------------------------------------------
    async def _read_orders(self) -> None:
        await self._order_reader.run(lambda: self.cutter.next_seq, self._enqueue_order)

    async def _read_votes(self) -> None:
        start_seq = 1
        for _ in range(10):  # bounded: on persistent failure, re-read the whole stream
            try:
                start_seq = await first_seq_since(
                    self._js(),
                    subject=self.names.sig_subject,
                    stream=self.names.sig_stream,
                    start_time=self._vote_replay_start(),
                )
                break
            except Exception as exc:
                log.info("locating the vote replay start failed (%r); retrying", exc)
                await asyncio.sleep(FAILURE_BACKOFF_S)
        self.stats.vote_start_seq = start_seq
        await self._vote_reader.run(lambda: start_seq, self._enqueue_vote)

    def _halt_on_hole(self, next_seq: int, seq: int) -> None:
        # Applying past a hole would cut other blocks than the members did: stop, and catch
        # up from other peers on the next start.
        self.finality.halt_for(
            self.node.head.height + 1,
            self.node.head.block_hash,
            f"stream messages {next_seq}..{seq - 1} are past retention: "
            "restart this peer to catch up from other peers",
        )

    def _vote_replay_start(self) -> datetime:
        """Where a (re)started peer begins reading votes: shortly before the first block that
        is not final here, so votes published while it was down rebuild its finality, without
        re-reading (and re-verifying) the whole retained signature stream.

        A vote is published after its signer committed the block, hence after the block time
        (the proposer's clock); `VOTE_REPLAY_MARGIN_S` absorbs clock skew between members.
        """
        height = min(self.finality.final_height + 1, self.node.head.height)
        block = self.store.get_block(height)
        time_ms = block.header_json()["time_ms"] if block is not None else self.node.head.time_ms
        start_s = time_ms / 1000 - VOTE_REPLAY_MARGIN_S
        return datetime.fromtimestamp(max(start_s, 0), tz=UTC)

    async def _enqueue_order(self, msg: Any) -> int:
        seq = msg.metadata.sequence.stream
        kind = "cut" if msg.subject == self.names.cut_subject else "tx"
        await self._hand_over(
            self._messages, StreamMessage(seq, kind, msg.data, msg.metadata.num_pending)
        )
        return int(seq) + 1

    async def _enqueue_vote(self, msg: Any) -> int:
        seq = msg.metadata.sequence.stream
        await self._hand_over(self._votes, (seq, msg.data))
        return int(seq) + 1

    async def _hand_over(self, target: queue.Queue[T], item: T) -> None:
        while not self._stopping.is_set():
            try:
                target.put_nowait(item)
                return
            except queue.Full:
                await asyncio.sleep(0.005)  # the thread it feeds is behind: hold the reader

    # -- applying --------------------------------------------------------------------------------
    def _take(self, timeout_s: float) -> list[StreamMessage]:
        try:
            first = self._messages.get(timeout=timeout_s)
        except queue.Empty:
            return []
        taken = [first]
        while len(taken) < APPLY_BATCH_MAX:
            try:
                taken.append(self._messages.get_nowait())
            except queue.Empty:
                break
        return taken

    def _apply_loop(self) -> None:
        at_tail = False
        while not self._stopping.is_set():
            if self.halted is not None:
                time.sleep(0.2)
                continue
            messages = self._take(0.01 if self.cutter.pending else 0.2)
            try:
                if messages:
                    started = time.perf_counter()
                    self._apply(messages)
                    self.stats.apply_s += time.perf_counter() - started
                    at_tail = messages[-1].pending_after == 0
                elif self.cutter.pending:
                    at_tail = True
                if at_tail:
                    self._maybe_propose()
            except Exception:
                # An exception here is a bug or a broken database, not a stream condition: the
                # peer cannot go on applying without risking a gap, so it halts loudly.
                log.exception("applying the stream failed; this peer halts")
                self.finality.halt_for(
                    self.node.head.height + 1, self.node.head.block_hash, "applying failed"
                )

    def _apply(self, messages: Sequence[StreamMessage]) -> None:
        run: list[StreamMessage] = []
        for message in messages:
            if message.seq < self.cutter.next_seq:
                continue
            self.cutter.next_seq = message.seq + 1
            self.stats.applied_seq = message.seq
            if message.kind == "tx":
                run.append(message)
                continue
            if run:
                self.cutter.add_txs(run)
                run = []
            members = self.node.membership.latest().weights  # as of the head: marker rule
            for height, _ in self.cutter.on_marker(message, members):
                self.stats.blocks += 1
                self._queue_own_vote(height)
                if self.halted is not None:
                    return
        if run:
            self.cutter.add_txs(run)

    def _queue_own_vote(self, height: int) -> None:
        block = self.store.get_block(height)
        if block is None:
            return
        own = next((s for s in block.signatures if s["signer"] == self.node.key.did), None)
        if own is None:
            return
        self.votes.add(BlockVote(height, block.header, Signature.from_json(own)))
        # Wake the finality thread: votes that arrived before this block can now count.
        with contextlib.suppress(queue.Full):
            self._votes.put_nowait((0, b""))

    def offer_signatures(self, header: Mapping[str, Any], signatures: Sequence[Any]) -> int:
        """Count signatures over `header` obtained elsewhere (another peer's stored block) as
        votes; they pass the same checks as votes from the stream.  Returns how many queued."""
        encoded = canonical(BlockHeader.from_json(header).to_json())
        height = int(header["height"])
        queued = 0
        for item in signatures:
            vote = BlockVote(height, encoded, Signature.from_json(item))
            try:
                self._votes.put_nowait((-1, vote.encode()))
                queued += 1
            except queue.Full:
                break
        return queued

    async def _send_vote(self, vote: BlockVote) -> None:
        await self._js().publish(
            self.names.sig_subject,
            vote.encode(),
            timeout=PUBLISH_TIMEOUT_S,
            headers={"Nats-Msg-Id": vote.msg_id},
        )

    def _maybe_propose(self) -> None:
        cutter = self.cutter
        if not cutter.pending:
            return
        if not self.node.membership.latest().is_member(self.node.key.did):
            return  # a joining (or removed) member's marker would be ignored by every peer
        waited_ms = (time.monotonic() - cutter.first_pending_at) * 1000
        if len(cutter.pending) < self.settings.block_txs_target and (
            waited_ms < self.settings.block_interval_ms
        ):
            return
        height = self.node.head.height + 1
        first_seq = next(iter(cutter.pending.values())).seq
        last_height, last_first, last_at = self._proposed
        if (height, first_seq) == (last_height, last_first) and (
            time.monotonic() - last_at < CUT_RETRY_S
        ):
            return
        marker = CutMarker.make(
            self.node.key,
            chain_id=self.node.genesis.chain_id,
            height=height,
            time_ms=self.node.clock(),
            first_seq=first_seq,
        )
        self._proposed = (height, first_seq, time.monotonic())
        self.stats.markers_published += 1

        async def send() -> None:
            try:
                await self._js().publish(
                    self.names.cut_subject,
                    marker.encode(),
                    timeout=PUBLISH_TIMEOUT_S,
                    headers={"Nats-Msg-Id": marker.msg_id},
                )
            except Exception as exc:
                log.info("cut marker for %d not published (%r); will retry", height, exc)

        self.link.spawn(send())

    # -- finality --------------------------------------------------------------------------------
    def _finality_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                seq, data = self._votes.get(timeout=0.2)
            except queue.Empty:
                seq, data = 0, b""
            try:
                head = self.node.head.height
                if seq == 0 and data == b"":
                    for height in self._committed_since_last(head):
                        self.finality.on_commit(height)
                else:
                    self._on_vote_message(seq, data, head)
            except Exception:
                log.exception("finality bookkeeping failed")
                time.sleep(FAILURE_BACKOFF_S)

    def _committed_since_last(self, head: int) -> list[int]:
        start = max(self._counted_head, self.finality.final_height) + 1
        self._counted_head = max(self._counted_head, head)
        return list(range(start, head + 1))

    def _on_vote_message(self, seq: int, data: bytes, head: int) -> None:
        try:
            vote = BlockVote.decode(data)
        except ValueError as exc:
            self.finality.rejected_votes += 1
            log.warning("signature stream seq %d: %s", seq, exc)
            return
        for height in self._committed_since_last(head):
            self.finality.on_commit(height)
        self.finality.on_vote(vote, head)

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        head = self.node.head
        return {
            "height": head.height,
            "block_hash": head.block_hash.hex(),
            "state_root": head.state_root.hex(),
            "final_height": self.finality.final_height,
            "applied_seq": self.stats.applied_seq,
            "stream_last_seq": self._order_reader.last_seq,
            "pending_txs": len(self.cutter.pending),
            "apply_queue": self._messages.qsize(),
            "markers_published": self.stats.markers_published,
            "markers_ignored": self.cutter.markers_ignored,
            "skipped_msgs": self.cutter.skipped,
            "rejected_votes": self.finality.rejected_votes,
            "votes_unacked": self.votes.pending(),
            "vote_start_seq": self.stats.vote_start_seq,
            "resubscribes": self._order_reader.resubscribes + self._vote_reader.resubscribes,
            "blocks_applied": self.stats.blocks,
            "apply_s": round(self.stats.apply_s, 3),
            "halted": None if self.halted is None else self.halted.to_json(),
        }

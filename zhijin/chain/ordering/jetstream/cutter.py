"""The deterministic cutter: the same stream messages give every peer the same blocks."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from zhijin.chain import limits
from zhijin.chain.errors import TxRejected
from zhijin.chain.ordering.jetstream.limits import PENDING_TXS_MAX
from zhijin.chain.ordering.jetstream.messages import CutMarker, StreamMessage
from zhijin.chain.ordering.jetstream.node import ClusterNode
from zhijin.chain.ordering.jetstream.store import ClusterStore, StreamCursor
from zhijin.chain.tx import Tx, parse_envelope

__all__ = ["StreamCutter"]

log = logging.getLogger("zhijin.chain.jetstream")


@dataclass(slots=True)
class _Pending:
    seq: int
    tx: Tx


class StreamCutter:
    """Turns the ordering stream into blocks: the same messages give every peer the same blocks.

    Only the applier thread calls it.  Its state is the pending txs (valid, not yet cut, in
    stream order) and the next height; both follow from the stream and the chain alone.
    """

    def __init__(
        self, node: ClusterNode, store: ClusterStore, cursor: StreamCursor, *, chain_id: str
    ) -> None:
        self.node = node
        self.store = store
        self.chain_id = chain_id
        self.next_seq = cursor.seq
        self.segment_start = cursor.seq
        self.resume_marker = cursor.marker_seq
        self.pending: OrderedDict[tuple[str, int], _Pending] = OrderedDict()
        self.first_pending_at = 0.0  # monotonic time the first pending tx was seen (proposing)
        self.skipped = 0
        self.markers_ignored = 0

    # -- txs -------------------------------------------------------------------------------------
    def _admissible(self, tx: Tx) -> str | None:
        body = tx.body
        if body["chain_id"] != self.chain_id:
            return "wrong_chain"
        contract = self.node.registry.get(body["contract"])
        if contract is None:
            return "unknown_contract"
        if body["method"] not in contract.methods or body["method"] in contract.readonly_methods:
            return "unknown_method"
        return None

    def add_txs(self, messages: Sequence[StreamMessage]) -> None:
        """A run of tx messages with no marker between them: one nonce query for all."""
        parsed: list[tuple[int, list[Tx]]] = []
        for message in messages:
            try:
                txs = parse_envelope(message.data)
            except TxRejected as exc:
                log.info("stream seq %d skipped: %s", message.seq, exc.code)
                self.skipped += 1
                continue
            parsed.append((message.seq, txs))
        pairs = [(tx.sender, tx.nonce) for _, txs in parsed for tx in txs]
        used = self.store.used_nonces(pairs) if pairs else set()
        dropped: dict[str, list[bytes]] = {}
        for seq, txs in parsed:
            problem = self._group_problem(txs, used)
            if problem is not None:
                self.skipped += 1
                # A re-sent copy of a pending or committed tx keeps its waiters: the first
                # copy answers them.  Another tx reusing the nonce is told why it is dropped.
                dropped.setdefault(problem, []).extend(
                    tx.tx_hash for tx in txs if not self._is_known(tx)
                )
                continue
            if not self.pending:
                self.first_pending_at = time.monotonic()
            for tx in txs:
                self.pending[(tx.sender, tx.nonce)] = _Pending(seq, tx)
        for code, hashes in dropped.items():
            if hashes:
                self.node.drop_waiters(hashes, code, f"the ordering stream skipped the tx: {code}")

    def _group_problem(self, txs: Sequence[Tx], used: set[tuple[str, int]]) -> str | None:
        if len(self.pending) + len(txs) > PENDING_TXS_MAX:
            return "ordering_backlog"
        seen: set[tuple[str, int]] = set()
        for tx in txs:
            problem = self._admissible(tx)
            if problem is not None:
                return problem
            pair = (tx.sender, tx.nonce)
            if pair in used or pair in self.pending or pair in seen:
                return "nonce_used"
            seen.add(pair)
        return None

    def _is_known(self, tx: Tx) -> bool:
        entry = self.pending.get((tx.sender, tx.nonce))
        if entry is not None:
            return entry.tx.tx_hash == tx.tx_hash
        return self.store.get_tx(tx.tx_hash) is not None

    # -- markers ---------------------------------------------------------------------------------
    def on_marker(
        self, message: StreamMessage, weights: Mapping[str, int]
    ) -> list[tuple[int, CutMarker]]:
        """Apply a marker; returns the heights it committed (with the marker)."""
        try:
            marker = CutMarker.decode(message.data)
        except ValueError as exc:
            log.warning("stream seq %d: %s", message.seq, exc)
            self.markers_ignored += 1
            return []
        resuming = self.resume_marker == message.seq
        expected = self.node.head.height + 1
        # A marker being resumed won before (its segment's first blocks are committed), when
        # its proposer was a member: a governance tx inside the segment must not undo that.
        if marker.chain_id != self.chain_id or not (resuming or marker.proposer in weights):
            log.warning("stream seq %d: marker from a non-member or another chain", message.seq)
            self.markers_ignored += 1
            return []
        if not resuming and marker.height != expected:
            self.markers_ignored += 1  # a later marker for a height already cut: expected
            return []
        self.resume_marker = None
        committed = self._cut(message.seq, marker)
        self.segment_start = message.seq + 1
        return [(height, marker) for height in committed]

    def _cut(self, marker_seq: int, marker: CutMarker) -> list[int]:
        # Too far ahead is judged against the marker's own time, not the (adjusted) block
        # time, so a replay after a crash in the middle of a long segment decides the same.
        horizon = marker.time_ms + limits.VALIDITY_MS_MAX
        too_far = [p.tx for p in self.pending.values() if p.tx.body["valid_until"] > horizon]
        for tx in too_far:
            del self.pending[(tx.sender, tx.nonce)]
        if too_far:
            self.node.drop_waiters(
                [tx.tx_hash for tx in too_far],
                "valid_until_too_far",
                "valid_until may be at most 24 hours after the block time",
            )
        heights: list[int] = []
        while self.pending:
            chunk: list[Tx] = []
            while self.pending and len(chunk) < limits.BLOCK_TXS_MAX:
                chunk.append(self.pending.popitem(last=False)[1].tx)
            time_ms = max(marker.time_ms, self.node.head.time_ms + 1)
            last = not self.pending
            self.store.next_cursor = (
                StreamCursor(marker_seq + 1)
                if last
                else StreamCursor(self.segment_start, marker_seq)
            )
            heights.append(
                self.node.produce_block(chunk, time_ms=time_ms, proposer=marker.proposer)
            )
        return heights

"""Solo ordering: one in-process orderer, the embedded default.

It cuts a block when `block_txs_max` transactions wait or `block_interval_ms` has passed since
it saw the first one, whichever comes first, and hands the block to the node to execute and
commit.  Batching many transactions per block is what makes one fsync serve thousands of them.
"""

from __future__ import annotations

import logging
import threading
import time

from zhijin.chain import limits
from zhijin.chain.node import Node

__all__ = ["SoloOrderer"]

log = logging.getLogger("zhijin.chain.solo")

IDLE_WAIT_S = 0.5
FAILURE_BACKOFF_S = 0.5


class SoloOrderer:
    def __init__(
        self,
        node: Node,
        *,
        block_txs_max: int = limits.BLOCK_TXS_MAX,
        block_interval_ms: int = limits.BLOCK_INTERVAL_MS,
    ) -> None:
        if not 0 < block_txs_max <= limits.BLOCK_TXS_MAX:
            raise ValueError(f"block_txs_max must be 1..{limits.BLOCK_TXS_MAX}")
        if not 0 <= block_interval_ms <= 60_000:
            raise ValueError("block_interval_ms must be 0..60000")
        self.node = node
        self.block_txs_max = block_txs_max
        self.block_interval_s = block_interval_ms / 1000
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("orderer already started")
        self._thread = threading.Thread(target=self._run, name="zhijin-solo-orderer", daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Stop after committing what is already in the mempool."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            self.node.wait_for(1, deadline=time.monotonic() + (0 if stopping else IDLE_WAIT_S))
            if self.node.mempool_size() == 0:
                if stopping:
                    self._drain()
                    return
                continue
            if not stopping:
                self.node.wait_for(
                    self.block_txs_max, deadline=time.monotonic() + self.block_interval_s
                )
            self._cut()

    def cut_once(self) -> int | None:
        """Cut and commit one block from the mempool now; returns its height, if any.

        The block is durable when this returns, also with the node's pipeline on (the loop
        leaves the last block in flight while it cuts the next)."""
        height = self._cut()
        self._drain()
        return height

    def _drain(self) -> None:
        try:
            self.node.drain()
        except Exception:  # its waiters were failed; the next block starts from the store
            log.exception("the block in flight did not commit")

    def _cut(self) -> int | None:
        txs = self.node.take(self.block_txs_max, timeout_s=0)
        if not txs:
            return None
        try:
            return self.node.produce_block(txs)
        except Exception:
            # The node has failed the block's waiters; back off so a broken database does not
            # spin, and keep serving once it is back.
            log.exception("block production failed; %d txs refused", len(txs))
            time.sleep(FAILURE_BACKOFF_S)
            return None

"""Reading a stream in order, through an ordered consumer re-created whenever it stalls.

The ordered consumer lives on one server: when that server dies the consumer goes with it, so a
reader that hears nothing while the stream has more re-creates it from the next sequence it
needs.  A jump in sequence is fine only if the messages in between are gone from the stream
(retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import nats
from nats.js import JetStreamContext, api

from zhijin.chain.ordering.jetstream.limits import (
    APPLY_QUEUE_MAX,
    FAILURE_BACKOFF_S,
    IDLE_HEARTBEAT_S,
    STALL_S,
    VOTE_LOCATE_S,
)

__all__ = ["StreamReader", "first_seq_since"]

log = logging.getLogger("zhijin.chain.jetstream")


class StreamReader:
    """Reads one stream in order; `handle(msg)` returns the next sequence it wants.

    `on_hole(next_seq, seq)`, if given, is called when messages `next_seq..seq - 1` (not the
    stream's first) are past retention, and reading ends there.
    """

    def __init__(
        self,
        js: Callable[[], JetStreamContext],
        *,
        subject: str,
        stream: str,
        stopping: threading.Event,
        on_hole: Callable[[int, int], None] | None = None,
    ) -> None:
        self._js = js
        self.subject = subject
        self.stream = stream
        self._stopping = stopping
        self._on_hole = on_hole
        self.resubscribes = 0
        self.last_seq = 0  # the stream's last sequence when this reader last asked

    async def _subscribe(self, start_seq: int) -> Any:
        js = self._js()
        return await js.subscribe(
            self.subject,
            stream=self.stream,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT_S,
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
            config=api.ConsumerConfig(opt_start_seq=start_seq),
            pending_msgs_limit=APPLY_QUEUE_MAX,
        )

    async def run(
        self, start: Callable[[], int], handle: Callable[[Any], Coroutine[Any, Any, int]]
    ) -> None:
        """Read from `start()` until the peer stops, re-subscribing when the reader stalls."""
        stream = self.stream
        next_seq = start()
        while not self._stopping.is_set():
            try:
                sub = await self._subscribe(next_seq)
            except Exception as exc:
                log.info("subscribe to %s failed (%r); retrying", stream, exc)
                await asyncio.sleep(FAILURE_BACKOFF_S)
                continue
            log.info("reading %s from %d", stream, next_seq)
            quiet_since = time.monotonic()
            try:
                while not self._stopping.is_set():
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except nats.errors.TimeoutError:
                        if time.monotonic() - quiet_since > STALL_S and await self._behind(
                            next_seq
                        ):
                            self.resubscribes += 1
                            log.info("reader of %s stalled at %d: re-subscribing", stream, next_seq)
                            break
                        continue
                    quiet_since = time.monotonic()
                    seq = msg.metadata.sequence.stream
                    if seq < next_seq:
                        continue  # a redelivery after a reset
                    if seq > next_seq:
                        if not await self._gap_is_purged(next_seq, seq):
                            break  # a message went missing: re-read from the one we need
                        if self._on_hole is not None and next_seq > 1:
                            self._on_hole(next_seq, seq)
                            return
                    next_seq = await handle(msg)
            except Exception:
                # A reader that died here would leave this peer deaf to the stream with no
                # sign but a stalled height: log it and read again from where it stood.
                log.exception("reading %s failed at %d; re-subscribing", stream, next_seq)
                await asyncio.sleep(FAILURE_BACKOFF_S)
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _behind(self, next_seq: int) -> bool:
        try:
            info = await self._js().stream_info(self.stream)
        except Exception:
            return True
        self.last_seq = info.state.last_seq
        return bool(info.state.last_seq >= next_seq)

    async def _gap_is_purged(self, next_seq: int, seq: int) -> bool:
        """A jump in sequence is fine only if the messages in between are gone from the stream
        (retention); then the chain must come from another peer (cluster.py's catch-up)."""
        try:
            info = await self._js().stream_info(self.stream)
        except Exception:
            return False
        if info.state.first_seq > next_seq:
            log.error(
                "%s: messages %d..%d are past the stream's retention",
                self.stream,
                next_seq,
                seq - 1,
            )
            return True
        return False


async def first_seq_since(
    js: JetStreamContext, *, subject: str, stream: str, start_time: datetime
) -> int:
    """The first sequence of `stream` at or after `start_time` (past its last if none is)."""
    info = await js.stream_info(stream)
    after_last = int(info.state.last_seq) + 1
    if info.state.messages == 0:
        return after_last
    sub = await js.subscribe(
        subject,
        stream=stream,
        ordered_consumer=True,
        deliver_policy=api.DeliverPolicy.BY_START_TIME,
        config=api.ConsumerConfig(opt_start_time=start_time),
    )
    try:
        msg = await sub.next_msg(timeout=VOTE_LOCATE_S)
        return int(msg.metadata.sequence.stream)
    except nats.errors.TimeoutError:
        return after_last  # nothing since then: read only what comes next
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()

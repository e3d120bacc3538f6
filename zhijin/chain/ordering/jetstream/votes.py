"""This peer's own votes, published until the signature stream acknowledges them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from zhijin.chain.ordering.jetstream.limits import (
    UNACKED_VOTES_MAX,
    VOTE_PUBLISH_PARALLEL_MAX,
    VOTE_RETRY_FIRST_S,
    VOTE_RETRY_MAX_S,
)
from zhijin.chain.ordering.jetstream.messages import BlockVote

__all__ = ["VotePublisher"]

log = logging.getLogger("zhijin.chain.jetstream")


@dataclass(slots=True)
class _Unacked:
    vote: BlockVote
    attempts: int = 0
    due: float = 0.0  # monotonic time of the next attempt


class VotePublisher:
    """This peer's votes, each published until the signature stream acknowledges it.

    Finality *here* is no reason to stop: while the stream elects a new leader it refuses
    publishes (`NoStreamResponseError`), and this peer may meanwhile finalise a block with the
    other members' votes while its own never reached the stream; the others may then need
    exactly that vote, and would wait for it forever.  A vote the stream acknowledged (a
    duplicate acknowledgement included) is stored on a quorum of its servers, so every peer
    reads it; only then is it dropped here.  Retries back off per vote from
    `VOTE_RETRY_FIRST_S` to `VOTE_RETRY_MAX_S`, at most `VOTE_PUBLISH_PARALLEL_MAX` are in
    flight, and a reconnect makes every waiting vote due at once.

    `add` and `retry_now` may be called from any thread; `run` runs on the NATS loop.
    """

    def __init__(
        self,
        publish: Callable[[BlockVote], Awaitable[Any]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._lock = threading.Lock()
        self._unacked: OrderedDict[str, _Unacked] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.acked = 0

    def add(self, vote: BlockVote) -> None:
        with self._lock:
            if vote.msg_id in self._unacked:
                return
            if len(self._unacked) >= UNACKED_VOTES_MAX:
                _, dropped = self._unacked.popitem(last=False)
                log.error("too many unacknowledged votes: giving up on %d", dropped.vote.height)
            self._unacked[vote.msg_id] = _Unacked(vote, due=self._clock())
        self._wake_up()

    def retry_now(self) -> None:
        now = self._clock()
        with self._lock:
            for entry in self._unacked.values():
                entry.due = now
        self._wake_up()

    def pending(self) -> int:
        with self._lock:
            return len(self._unacked)

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(wake.set)

    async def run(self, stopping: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stopping.is_set():
            if not await self.publish_due():
                await self._sleep_until_due()

    async def publish_due(self) -> bool:
        """One round: publish the votes that are due; returns whether there were any."""
        now = self._clock()
        with self._lock:
            due = [e for e in self._unacked.values() if e.due <= now][:VOTE_PUBLISH_PARALLEL_MAX]
        if not due:
            return False
        outcomes = await asyncio.gather(
            *(self._publish(e.vote) for e in due), return_exceptions=True
        )
        now = self._clock()
        with self._lock:
            for entry, outcome in zip(due, outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    self._unacked.pop(entry.vote.msg_id, None)
                    self.acked += 1
                    continue
                entry.attempts += 1
                entry.due = now + min(
                    VOTE_RETRY_MAX_S, VOTE_RETRY_FIRST_S * 2 ** min(entry.attempts - 1, 16)
                )
                if entry.attempts == 1 or entry.attempts % 10 == 0:
                    log.info(
                        "vote for %d not stored yet after %d attempt(s) (%r); retrying",
                        entry.vote.height,
                        entry.attempts,
                        outcome,
                    )
        return True

    async def _sleep_until_due(self) -> None:
        assert self._wake is not None
        with self._lock:
            next_due = min((e.due for e in self._unacked.values()), default=None)
        wait_s = 0.5 if next_due is None else min(0.5, max(0.0, next_due - self._clock()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=wait_s)

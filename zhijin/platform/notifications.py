"""Live notifications: what each committed block means to a reader, pushed as it is projected.

The hub follows the projections (not the commits), so a client told of height h can read h
from the query tables at once.  For every projected block it asks each domain's notifier what
the block means to each subscriber (the payments notifier: entries on the subscriber's own
accounts), and hands the answers to the subscribers' queues; the HTTP layer turns them into
server-sent events (`GET /api/v1/events`).  Everyone, signed in or not, gets a `block` notice
per block, as the explorer shows.

A subscriber is a queue on the event loop that serves its connection.  One that falls
`QUEUE_BLOCKS_MAX` blocks behind is dropped with a final `reset` notice rather than holding
the node's memory hostage; the browser reconnects, naming the last height it saw, and the
missed blocks are replayed from the chain store (at most `REPLAY_BLOCKS_MAX`; beyond that a
`reset` tells it to reload).  Nothing here writes: a notice is a hint to re-read, never the
record.  Each notice carries a `text` for people, in the subscriber's language (the request's
locale when it subscribed), beside the data programs read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from zhijin.chain.errors import ZhijinError
from zhijin.chain.store import ChainStore
from zhijin.platform.i18n import DEFAULT_LOCALE, gettext
from zhijin.platform.projections import BlockView, ProjectionRunner, load_block

__all__ = [
    "Notice",
    "NotificationHub",
    "Notifier",
    "Subscriber",
    "TooManySubscribers",
    "reset_notice",
    "session_ended_notice",
]

log = logging.getLogger("zhijin.notifications")

QUEUE_BLOCKS_MAX = 256  # blocks a subscriber may fall behind before it is dropped
REPLAY_BLOCKS_MAX = 200  # blocks replayed to a reconnecting subscriber
SUBSCRIBERS_MAX = 1_000
SUBSCRIBERS_PER_USER_MAX = 5  # per signed-in user, or per client address for anyone else
WAIT_S = 1.0  # how often the hub's thread looks at the projected height unwoken
RETRY_MS = 5_000  # what a browser waits before reconnecting a stream that ended


@dataclass(frozen=True, slots=True)
class Notice:
    """One server-sent event: `event` names its kind, `height` is its id."""

    height: int
    event: str
    data: dict[str, Any]


@dataclass(slots=True)
class Audience:
    """Who a subscriber is, as notifiers see it: `owner` is the signed-in end user's DID (None
    for anyone else); `locale` the language its texts are in; `keys` is what notifiers remember
    for them (the payments notifier keeps the ids of the owner's accounts there)."""

    owner: str | None
    keys: dict[str, set[str]] = field(default_factory=dict)
    locale: str = DEFAULT_LOCALE


class Notifier(Protocol):
    name: str

    def prepare(self, audience: Audience) -> None:
        """Fill in what `notices` needs to know about a new subscriber (read the projections)."""
        ...

    def notices(self, block: BlockView, audience: Audience) -> list[Notice]:
        """What the block means to this audience; may update `audience.keys`."""
        ...


class TooManySubscribers(ZhijinError):
    code = "too_many_streams"
    http_status = 429


class Subscriber:
    """A connection's queue.  The hub's thread offers; the connection's loop consumes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, audience: Audience, holder: str | None):
        self.loop = loop
        self.audience = audience
        self.holder = holder  # whose stream it is, for the per-holder bound
        self.queue: asyncio.Queue[list[Notice] | None] = asyncio.Queue()
        self.start_height = -1  # live from the next height on; `replay` gives up to this one
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, notices: list[Notice] | None) -> None:
        """From any thread: queue a block's notices, or None to end the stream."""
        try:
            self.loop.call_soon_threadsafe(self._put, notices)
        except RuntimeError:  # the loop is closed: the connection is gone
            self._closed = True

    def _put(self, notices: list[Notice] | None) -> None:
        if self._closed:
            return
        if notices is not None and self.queue.qsize() >= QUEUE_BLOCKS_MAX:
            self._closed = True
            notices = [reset_notice(self.start_height, "too_slow", self.audience.locale)]
            self.queue.put_nowait(notices)
            self.queue.put_nowait(None)
            return
        if notices is None:
            self._closed = True
        self.queue.put_nowait(notices)


class NotificationHub:
    """Follows the projected height and fans each block's notices out to subscribers."""

    def __init__(
        self,
        store: ChainStore,
        projections: ProjectionRunner,
        notifiers: Sequence[Notifier],
    ) -> None:
        self.store = store
        self.projections = projections
        self.notifiers = list(notifiers)
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.height = projections.projected_height
        projections.add_listener(self._wake.set)

    # -- subscribers ------------------------------------------------------------------------
    def subscribe(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        owner: str | None,
        holder: str | None,
        locale: str = DEFAULT_LOCALE,
    ) -> Subscriber:
        """A new subscriber, live from the current height on (see `replay` for before)."""
        audience = Audience(owner, locale=locale)
        for notifier in self.notifiers:
            notifier.prepare(audience)
        subscriber = Subscriber(loop, audience, holder)
        with self._lock:
            if len(self._subscribers) >= SUBSCRIBERS_MAX:
                raise TooManySubscribers(
                    message="the node serves as many live streams as it can",
                    retry_after_ms=RETRY_MS,
                )
            if holder is not None and (
                sum(1 for s in self._subscribers if s.holder == holder) >= SUBSCRIBERS_PER_USER_MAX
            ):
                raise TooManySubscribers(
                    message="as many live streams are open for this user or address as allowed",
                    retry_after_ms=RETRY_MS,
                )
            subscriber.start_height = self.height
            self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def replay(self, subscriber: Subscriber, after: int) -> list[list[Notice]] | None:
        """The notices of heights (after, the subscriber's start], oldest first; None when that
        is more than REPLAY_BLOCKS_MAX blocks (the client should reload instead)."""
        end = subscriber.start_height
        if end - after > REPLAY_BLOCKS_MAX:
            return None
        replayed = []
        for height in range(max(after, -1) + 1, end + 1):
            block = load_block(self.store, height)
            if block is not None:
                replayed.append(self._notices(block, subscriber.audience))
        return replayed

    # -- following the projections ----------------------------------------------------------
    def start(self) -> NotificationHub:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="zhijin-notifications", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following and end every stream."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscriber in subscribers:
            subscriber.offer(None)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(WAIT_S)
            self._wake.clear()
            height = self.projections.projected_height
            if height <= self.height:
                continue
            try:
                self._fan_out(self.height + 1, height)
            except Exception:
                # A notifier bug must not stop the node: the streams miss these blocks, and
                # their readers still see them on their next read.
                log.exception("notifications for heights %d..%d failed", self.height + 1, height)
                with self._lock:
                    self.height = height

    def _fan_out(self, start: int, end: int) -> None:
        """Offer heights start..end; `self.height` moves under the lock with each, so a new
        subscriber starts exactly after the last height offered to the others."""
        height = start
        while height <= end:
            with self._lock:
                if not self._subscribers:  # nobody listens: nothing to load
                    self.height = height
                    height += 1
                    continue
            block = load_block(self.store, height)
            if block is None:
                return  # not stored yet (a projected height always is): retried next round
            with self._lock:
                for subscriber in self._subscribers:
                    subscriber.offer(self._notices(block, subscriber.audience))
                # Streams that ended without unsubscribing (dropped as too slow, or closed
                # before they began) are let go here.
                self._subscribers = [s for s in self._subscribers if not s.closed]
                self.height = height
            height += 1

    def _notices(self, block: BlockView, audience: Audience) -> list[Notice]:
        notices = [
            notice for notifier in self.notifiers for notice in notifier.notices(block, audience)
        ]
        summary: dict[str, Any] = {
            "height": block.height,
            "time_ms": block.time_ms,
            "txs": len(block.txs),
        }
        summary["text"] = gettext(audience.locale, "notice.block", **summary)
        notices.append(Notice(block.height, "block", summary))
        return notices


def reset_notice(height: int, reason: str, locale: str) -> Notice:
    """The last notice of a stream the client must reload after (`too_slow`, `too_far_behind`)."""
    texts = {
        "too_slow": gettext(locale, "notice.reset.too_slow"),
        "too_far_behind": gettext(locale, "notice.reset.too_far_behind"),
    }
    return Notice(height, "reset", {"reason": reason, "text": texts[reason]})


def session_ended_notice(height: int, locale: str) -> Notice:
    reason = "the session expired or was revoked"
    text = gettext(locale, "notice.session_invalid")
    return Notice(height, "session_invalid", {"reason": reason, "text": text})


NotifierFactory = Callable[[], Sequence[Notifier]]

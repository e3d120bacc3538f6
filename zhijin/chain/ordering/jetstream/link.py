"""The NATS connection, on its own event loop thread, and the two streams it sets up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api
from nats.js.errors import Error as JetStreamError

from zhijin.chain.errors import Unavailable
from zhijin.chain.ordering.jetstream.limits import (
    CONNECT_TIMEOUT_S,
    DUPLICATE_WINDOW_S,
    FAILURE_BACKOFF_S,
    MESSAGE_BYTES_MAX,
    PUBLISH_TIMEOUT_S,
    STREAM_MAX_BYTES,
    STREAM_SETUP_S_MAX,
)
from zhijin.chain.ordering.jetstream.settings import OrderingSettings, StreamNames

__all__ = ["NatsLink", "OrderingUnavailable", "ensure_streams"]

log = logging.getLogger("zhijin.chain.jetstream")

T = TypeVar("T")


class OrderingUnavailable(Unavailable):
    code = "ordering_unavailable"


class NatsLink:
    """One NATS connection driven by an asyncio loop on a daemon thread.

    The chain's work (parsing, executing, committing) runs on ordinary threads; they hand
    coroutines to this loop with `call` (wait for the answer) or `spawn` (fire and forget).
    """

    def __init__(self, urls: Sequence[str], name: str) -> None:
        self.urls = list(urls)
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"nats-{name}", daemon=True)
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        # Called on the loop after every reconnect (e.g. to retry what failed meanwhile).
        self.reconnect_listeners: list[Callable[[], None]] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self, *, timeout_s: float = STREAM_SETUP_S_MAX) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.call(self._connect(), timeout_s=CONNECT_TIMEOUT_S * 2 + 1)
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise OrderingUnavailable(
                        message=f"cannot reach any NATS server of {self.urls}: {exc}"
                    ) from exc
                time.sleep(FAILURE_BACKOFF_S)

    async def _connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            log.debug("nats %s: %s", self.name, exc)

        async def on_disconnect() -> None:
            log.info("nats %s: disconnected, reconnecting", self.name)

        async def on_reconnect() -> None:
            log.info("nats %s: reconnected", self.name)
            for listener in self.reconnect_listeners:
                listener()

        self.nc = await nats.connect(
            servers=self.urls,
            name=self.name,
            connect_timeout=CONNECT_TIMEOUT_S,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
        )
        self.js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT_S)

    def call(self, coro: Coroutine[Any, Any, T], *, timeout_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                self.call(self.nc.close(), timeout_s=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def ensure_streams(
    js: JetStreamContext, names: StreamNames, ordering: OrderingSettings
) -> None:
    """Create the ordering and signature streams if they do not exist (idempotent)."""
    for name, subjects in (
        (names.order_stream, [names.tx_subject, names.cut_subject]),
        (names.sig_stream, [names.sig_subject]),
    ):
        try:
            await js.stream_info(name)
            continue
        except JetStreamError:
            pass
        await js.add_stream(
            api.StreamConfig(
                name=name,
                subjects=subjects,
                storage=api.StorageType.FILE,
                num_replicas=ordering.stream_replicas,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=ordering.stream_max_age_s,
                max_bytes=STREAM_MAX_BYTES,
                max_msgs=ordering.stream_max_msgs,
                max_msg_size=MESSAGE_BYTES_MAX,
                discard=api.DiscardPolicy.OLD,
            )
        )

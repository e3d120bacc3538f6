"""`GET /api/v1/events`: the live notification stream, as server-sent events.

Anyone may listen and hears a `block` event per projected block (what the explorer shows):
its height, time and tx count only, never a transaction body (the chain's read policy,
zhijin/platform/chain_read.py).  A signed-in end user (session cookie or bearer token) also
hears `payments` events for their own accounts.  Each event's `id` is its block height: a browser that reconnects sends the last one
(`Last-Event-ID`, or `?after=`) and gets the blocks it missed, or a `reset` event when it
missed too many (reload instead).  The stream re-checks the session every
SESSION_CHECK_S without counting as activity, and ends with a `session_invalid` event when
the session has expired or was revoked; a comment line every HEARTBEAT_S keeps proxies from
closing an idle stream.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from zhijin.identity.guard import get_guard
from zhijin.identity.rbac import Principal
from zhijin.identity.service import IdentityService
from zhijin.identity.web import get_identity, request_source
from zhijin.platform.errors import InvalidInput
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.http_limits import HEIGHT_MAX
from zhijin.platform.i18n import request_locale
from zhijin.platform.notifications import (
    RETRY_MS,
    Notice,
    NotificationHub,
    Subscriber,
    reset_notice,
    session_ended_notice,
)
from zhijin.platform.params import ResumeHeight

__all__ = ["router"]

router = APIRouter(tags=["events"], route_class=EdgeRoute)

HEARTBEAT_S = 15.0
SESSION_CHECK_S = 30.0


def _sse(notice: Notice) -> str:
    data = json.dumps(notice.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {notice.height}\nevent: {notice.event}\ndata: {data}\n\n"


def _resume_after(last_event_id: str | None, after: int | None) -> int | None:
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return None
    text = last_event_id.strip()
    # The bounds of `after` (ResumeHeight); ASCII digits only ("²" is a digit int() refuses),
    # counted first so that int() never parses a huge number.
    digits = text.removeprefix("-")
    if (
        digits.isascii()
        and digits.isdigit()
        and len(digits) <= len(str(HEIGHT_MAX))
        and -1 <= int(text) <= HEIGHT_MAX
    ):
        return int(text)
    raise InvalidInput("last_event_id_invalid", "Last-Event-ID is a block height")


@router.get(
    "/api/v1/events",
    summary="Live notifications (server-sent events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    after: Annotated[ResumeHeight | None, Query(description="resume after this height")] = None,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    platform = request.app.state.platform
    hub: NotificationHub = platform.notifications
    identity = get_identity(request)
    resume = _resume_after(last_event_id, after)
    principal = await run_in_threadpool(get_guard(request).optional_principal, request)
    owner = None
    if principal is not None and principal.member_did is None:
        owner = await run_in_threadpool(identity.user_did, principal=principal)
    loop = asyncio.get_running_loop()
    # Streams are counted per user, or per client address for readers who are not signed in,
    # so that nobody holds all of a node's streams.
    holder = (
        f"user:{principal.user_id}"
        if principal is not None
        else f"address:{request_source(request).ip}"
    )
    subscriber = await run_in_threadpool(
        functools.partial(
            hub.subscribe, loop, owner=owner, holder=holder, locale=request_locale(request)
        )
    )
    return StreamingResponse(
        _stream(hub, subscriber, identity, principal, resume),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    hub: NotificationHub,
    subscriber: Subscriber,
    identity: IdentityService,
    principal: Principal | None,
    resume: int | None,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if resume is not None:
            replayed = await run_in_threadpool(hub.replay, subscriber, resume)
            if replayed is None:
                locale = subscriber.audience.locale
                yield _sse(reset_notice(subscriber.start_height, "too_far_behind", locale))
                return
            for notices in replayed:
                for notice in notices:
                    yield _sse(notice)
        checked = loop.time()
        while True:
            try:
                item = await asyncio.wait_for(subscriber.queue.get(), timeout=HEARTBEAT_S)
            except TimeoutError:
                item = []
                yield ": keep-alive\n\n"
            if item is None:
                return
            for notice in item:
                yield _sse(notice)
            if principal is not None and loop.time() - checked >= SESSION_CHECK_S:
                checked = loop.time()
                if not await run_in_threadpool(identity.session_live, principal=principal):
                    yield _sse(session_ended_notice(hub.height, subscriber.audience.locale))
                    return
    finally:
        hub.unsubscribe(subscriber)

"""`GET /api/v1/events` against a real server: who hears what, resuming, ending, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.platform.live_server import LiveServer, free_port
from tests.platform.sse import Event, read_until
from tests.platform.users import login_with_token, new_password
from zhijin.identity.service import RequestSource
from zhijin.node import events_api
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform import notifications
from zhijin.platform.http_limits import HEIGHT_MAX
from zhijin.platform.notifications import Audience, Notice, Subscriber

EVENTS = "/api/v1/events"
READ_S = 20.0


class Server(LiveServer):
    def __init__(self, data: Path) -> None:
        super().__init__(data)
        self.client = httpx.Client(base_url=self.base, timeout=READ_S)
        self.operator = {"Authorization": f"Bearer {self.operator_token}"}

    def op(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/api/v1" + path, json=body, headers=self.operator)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    def customer(self) -> tuple[dict[str, str], str]:
        """A registered customer's bearer headers and DID."""
        login, password = f"events-{time.monotonic_ns()}", new_password()
        user = self.platform.identity.register(
            login=login, password=password, kind="individual", source=RequestSource(ip="t")
        )
        assert user.did is not None
        return login_with_token(self.client, login, password), user.did  # type: ignore[arg-type]

    def stop(self) -> None:
        super().stop()
        self.client.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def account(account_id: str, owner: str, kind: str = "customer") -> dict[str, Any]:
    return {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}


def move(transfer_id: str, debit: str, credit: str, amount: int) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "CNY",
    }


def block_seen(height: int) -> Callable[[list[Event]], bool]:
    return lambda events: any(
        e["event"] == "block" and e["data"]["height"] >= height for e in events
    )


def test_anyone_hears_blocks_and_an_owner_hears_only_their_own_payments(server: Server) -> None:
    member = server.platform.node.key.did
    alice, alice_did = server.customer()
    bob, bob_did = server.customer()
    server.op("/accounts", account("settle", member, "settlement"))
    server.op("/accounts", account("bob-cny", bob_did))
    with (
        server.client.stream("GET", EVENTS, headers=alice) as mine,
        server.client.stream("GET", EVENTS, headers=bob) as bobs,
        server.client.stream("GET", EVENTS) as anyone,
    ):
        assert mine.status_code == 200 and mine.headers["content-type"].startswith(
            "text/event-stream"
        )
        assert mine.headers["cache-control"] == "no-store"
        # Opened after she subscribed: her stream learns the account from its opening.
        server.op("/accounts", account("alice-cny", alice_did))
        server.op("/transfers", move("t-1", "settle", "alice-cny", 1_234))
        head = server.platform.node.head.height
        heard = read_until(mine, block_seen(head))
        payments = [e["data"] for e in heard if e["event"] == "payments"]
        assert [p["type"] for p in payments] == ["account_created", "transfer_created"]
        transfer = payments[1]["attrs"]
        assert transfer["id"] == "t-1" and transfer["amount"] == 1_234
        assert transfer["credit_account_id"] == "alice-cny"
        # Said for people too, in the stream's language (zh-CN when the request names none).
        assert payments[0]["text"] == "您的 CNY 账户 alice-cny 已开立"
        assert payments[1]["text"] == "账户 alice-cny 收到 ¥12.34"
        blocks = [e["data"] for e in heard if e["event"] == "block"]
        assert blocks[-1]["text"].startswith(f"第 {blocks[-1]['height']} 个区块已提交")
        assert all(e["id"] == str(e["data"]["height"]) for e in heard)
        # Bob and an anonymous reader hear the same blocks and none of Alice's payments.
        for other in (bobs, anyone):
            events = read_until(other, block_seen(head))
            assert {e["event"] for e in events} == {"block"}
        # Bob hears his own.
        server.op("/transfers", move("t-2", "settle", "bob-cny", 5))
        events = read_until(bobs, lambda es: any(e["event"] == "payments" for e in es))
        assert [e["data"]["attrs"]["id"] for e in events if e["event"] == "payments"] == ["t-2"]


def test_a_reconnecting_stream_gets_what_it_missed(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = server.platform.node.key.did
    alice, alice_did = server.customer()
    server.op("/accounts", account("settle", member, "settlement"))
    server.op("/accounts", account("alice-cny", alice_did))
    server.platform.projections.wait_for(server.platform.node.head.height)
    seen = server.platform.node.head.height
    for n in range(3):
        server.op("/transfers", move(f"r-{n}", "settle", "alice-cny", 10 + n))
    head = server.platform.node.head.height
    server.platform.projections.wait_for(head)
    resumed = {**alice, "Last-Event-ID": str(seen)}
    with server.client.stream("GET", EVENTS, headers=resumed) as stream:
        events = read_until(stream, block_seen(head))
    heights = sorted({int(e["id"]) for e in events})
    assert heights == list(range(seen + 1, head + 1))
    ids = [e["data"]["attrs"]["id"] for e in events if e["event"] == "payments"]
    assert ids == ["r-0", "r-1", "r-2"]
    # The same by query parameter; and too far behind: a reset, then the stream ends.
    with server.client.stream("GET", EVENTS, params={"after": head - 1}, headers=alice) as s:
        assert [e["id"] for e in read_until(s, block_seen(head))] == [str(head)] * 2
    monkeypatch.setattr(notifications, "REPLAY_BLOCKS_MAX", 1)
    with server.client.stream("GET", EVENTS, params={"after": seen}, headers=alice) as s:
        events = read_until(s, lambda es: False)  # to the end of the stream
    assert [e["event"] for e in events] == ["reset"]
    bad = server.client.get(EVENTS, headers={"Last-Event-ID": "eleven"})
    assert bad.status_code == 422 and bad.json()["code"] == "last_event_id_invalid"
    assert server.client.get(EVENTS, params={"after": -2}).status_code == 422
    assert server.client.get(EVENTS, params={"after": HEIGHT_MAX + 1}).status_code == 422


def test_a_revoked_token_ends_its_stream(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_api, "SESSION_CHECK_S", 0.0)
    member = server.platform.node.key.did
    alice, _did = server.customer()
    tokens = server.client.get("/api/v1/identity/tokens", headers=alice).json()["items"]
    with server.client.stream("GET", EVENTS, headers=alice) as stream:
        revoked = server.client.delete(f"/api/v1/identity/tokens/{tokens[0]['id']}", headers=alice)
        assert revoked.status_code == 204
        server.op("/accounts", account("any", member, "settlement"))  # something to hear
        events = read_until(stream, lambda es: False)
    assert events[-1]["event"] == "session_invalid"
    refused = server.client.get(EVENTS, headers=alice)
    assert refused.status_code == 401 and refused.json()["code"] == "session_invalid"
    forged = server.client.get(EVENTS, headers={"Authorization": "Bearer zjs_forged"})
    assert forged.status_code == 401
    # A stale session cookie is served as anyone (its page shows the sign-in form already).
    stale = {"Cookie": "__Host-zhijin_session=zjs_long_gone"}
    with server.client.stream("GET", EVENTS, headers=stale) as anyone:
        assert anyone.status_code == 200
        server.op("/accounts", account("other", member, "settlement"))
        events = read_until(anyone, block_seen(server.platform.node.head.height))
        assert {e["event"] for e in events} == {"block"}


def test_streams_per_user_are_bounded_and_end_when_the_node_stops(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications, "SUBSCRIBERS_PER_USER_MAX", 1)
    alice, _did = server.customer()
    with server.client.stream("GET", EVENTS, headers=alice) as first:
        assert first.status_code == 200
        second = server.client.get(EVENTS, headers=alice)
        assert second.status_code == 429 and second.json()["code"] == "too_many_streams"
        assert second.headers["retry-after"] == "5"
        assert server.platform.notifications.subscriber_count == 1
        with server.client.stream("GET", EVENTS) as anonymous:  # counted by address
            assert anonymous.status_code == 200
            again = server.client.get(EVENTS)
            assert again.status_code == 429 and again.json()["code"] == "too_many_streams"
        server.platform.notifications.stop()
        assert read_until(first, lambda es: False) == []  # the stream ended
    deadline = time.monotonic() + 5
    while server.platform.notifications.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.platform.notifications.subscriber_count == 0


def test_a_subscriber_that_falls_behind_is_dropped_with_a_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notifications, "QUEUE_BLOCKS_MAX", 2)
    loop = asyncio.new_event_loop()
    try:
        subscriber = Subscriber(loop, Audience(None), None)
        for height in range(5):
            subscriber.offer([Notice(height, "block", {"height": height})])
        loop.run_until_complete(asyncio.sleep(0))
        queued = []
        while not subscriber.queue.empty():
            queued.append(subscriber.queue.get_nowait())
    finally:
        loop.close()
    assert subscriber.closed
    assert [None if q is None else [n.event for n in q] for q in queued] == [
        ["block"],
        ["block"],
        ["reset"],
        None,
    ]


def test_ctrl_c_ends_open_streams_and_stops_the_server_promptly(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    init_data_dir(Settings(data=tmp_path), members=1)
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zhijin", "serve", "--data", str(tmp_path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=READ_S)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        with client.stream("GET", EVENTS) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "retry: 5000"
            os.kill(proc.pid, signal.SIGINT)
            stopped = time.monotonic()
            assert list(lines) == [""]  # the stream ended cleanly, with nothing more
        # uvicorn re-raises the signal once it has shut down: 130 is Ctrl-C's exit status.
        assert proc.wait(15) in (0, 128 + signal.SIGINT, -signal.SIGINT)
        assert time.monotonic() - stopped < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in output and "ERROR" not in output, output


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("  ", None),
        ("-1", -1),
        ("0", 0),
        (" 42 ", 42),
        (str(HEIGHT_MAX), HEIGHT_MAX),
        (str(HEIGHT_MAX + 1), "invalid"),
        ("9" * 19, "invalid"),
        ("1" + "0" * 40, "invalid"),
        ("-2", "invalid"),
        ("--1", "invalid"),
        ("4²", "invalid"),
        ("١٢", "invalid"),  # Arabic-Indic digits: int() reads them, a height is ASCII
        ("12a", "invalid"),
    ],
)
def test_last_event_id_has_the_bounds_of_after(header: str | None, expected: object) -> None:
    from zhijin.platform.errors import InvalidInput

    if expected != "invalid":
        assert events_api._resume_after(header, None) == expected
        return
    with pytest.raises(InvalidInput) as caught:
        events_api._resume_after(header, None)
    assert caught.value.code == "last_event_id_invalid"


def test_the_after_parameter_declares_the_height_bounds() -> None:
    from zhijin.node.app import create_app

    params = create_app(Settings()).openapi()["paths"][EVENTS]["get"]["parameters"]
    after = next(p for p in params if p["name"] == "after")
    bounds = next(s for s in after["schema"]["anyOf"] if s.get("type") == "integer")
    assert (bounds["minimum"], bounds["maximum"]) == (-1, HEIGHT_MAX)

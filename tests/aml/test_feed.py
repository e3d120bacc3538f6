"""The live feed (`GET /api/v1/aml/feed`, server-sent events) over a real server on loopback:
who may open it (signed in; the regulator, the compliance officer, the auditor; never a risk
analyst or a bank officer), events in the stream's order (blocks ascending, a block's
transactions in their order, then its alerts), and a reconnect with Last-Event-ID, anywhere in
the stream (inside a block too), resumes with no event lost and none repeated.

The stream never ends: each read takes exactly the events the test expects, from a count the
API gives (every movement and every alert once, from the start), with a read timeout so a
missing event fails instead of hanging."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from tests.platform.live_server import LiveServer
from zhijin.aml.workdays import BEIJING
from zhijin.identity import totp
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource

FEED = "/api/v1/aml/feed"
YUAN = 100
READ_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    kind: str
    data: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.data.get("transfer_id") or self.data["alert_id"])


def _staff(server: LiveServer, *roles: Role) -> dict[str, str]:
    identity = server.platform.identity
    member = server.platform.node.key.did
    admin = identity.bootstrap_admin(
        login=f"admin-{secrets.token_hex(4)}", password="pw-" + secrets.token_hex(8),
        member_did=member,
    )  # fmt: skip
    principal = Principal(user_id=admin.id, roles=frozenset({Role.ADMIN}), member_did=member)
    login, password = f"staff-{secrets.token_hex(4)}", "pw-" + secrets.token_hex(8)
    identity.create_staff(
        principal=principal, login=login, password=password, roles=frozenset(roles),
        member_did=member,
    )  # fmt: skip
    issued = identity.login(login=login, password=password, source=RequestSource(ip="feed"))
    enrolment = identity.begin_totp_enrolment(principal=issued.principal)
    code = pyotp.TOTP(totp.secret_text(enrolment.secret)).now()
    identity.confirm_totp_enrolment(principal=issued.principal, code=code)
    token = identity.create_api_token(
        principal=identity.authenticate(token=issued.token), name="feed"
    )
    return {"Authorization": f"Bearer {token.token}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(Path(tmp_path_factory.mktemp("aml-feed")))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> dict[str, Any]:
    """Payments in three blocks (a batch is one transaction, so one block): funding from the
    settlement account (cash: large-value reports), then transfers between customers, with
    several movements and alerts in one block."""
    operator = httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {server.operator_token}"},
        timeout=30,
    )  # fmt: skip
    member = server.platform.node.key.did
    people = {name: f"did:key:z6MkFeed{name.title()}" for name in ("alice", "bob", "carol")}
    accounts = [("feed-settle", member, "settlement")] + [
        (f"feed-{name}", did, "customer") for name, did in people.items()
    ]
    for account_id, owner, kind in accounts:
        body = {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}
        assert operator.post("/api/v1/accounts", json=body).status_code in (200, 201)
    batches = [
        [("f1", "feed-settle", "feed-alice", 600_000), ("f2", "feed-settle", "feed-bob", 80_000),
         ("f3", "feed-settle", "feed-carol", 70_000)],
        [("p1", "feed-alice", "feed-bob", 500_000), ("p2", "feed-bob", "feed-carol", 1_000)],
        [("p3", "feed-carol", "feed-alice", 2_000)],
    ]  # fmt: skip
    for batch in batches:
        transfers = [
            {"id": tid, "debit_account_id": debit, "credit_account_id": credit,
             "amount": amount * YUAN, "currency": "CNY"}
            for tid, debit, credit, amount in batch
        ]  # fmt: skip
        answer = operator.post("/api/v1/transfers/batch", json={"transfers": transfers})
        assert answer.status_code in (200, 201), answer.text
    server.platform.projections.wait_for(
        server.platform.store.head_height() or 0, projection=["aml"]
    )
    operator.close()
    regulator = _staff(server, Role.REGULATOR)
    return {
        "regulator": regulator,
        "compliance": _staff(server, Role.COMPLIANCE_OFFICER),
        "analyst": _staff(server, Role.RISK_ANALYST),
        "officer": _staff(server, Role.BANK_OFFICER),
        "expected": _expected_count(server, regulator),
    }


def _expected_count(server: LiveServer, headers: dict[str, str]) -> int:
    """Every movement and every alert, once each: what the feed sends from the start."""
    import datetime as dt

    today = dt.datetime.now(BEIJING).date()
    days = {"day_from": (today - dt.timedelta(days=1)).isoformat(), "day_to": today.isoformat()}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        moves = client.get("/api/v1/aml/transactions", params={**days, "limit": 500})
        alerts = client.get("/api/v1/aml/alerts", params={"limit": 500})
    assert moves.status_code == 200 and alerts.status_code == 200, moves.text + alerts.text
    return len(moves.json()["movements"]) + len(alerts.json()["alerts"])


def _read(
    server: LiveServer, headers: dict[str, str], count: int, params: dict[str, Any] | None = None
) -> list[Event]:
    """Open the feed and read exactly `count` events, then close it."""
    events: list[Event] = []
    timeout = httpx.Timeout(30.0, read=READ_TIMEOUT_S)
    with (
        httpx.Client(base_url=server.base, headers=headers, timeout=timeout) as client,
        client.stream("GET", FEED, params=params or {"after": -1}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "event" in fields:
                    events.append(Event(fields["id"], fields["event"], json.loads(fields["data"])))
                    if len(events) == count:
                        break
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events


def _position(event_id: str) -> tuple[int, int]:
    height, _, index = event_id.partition(":")
    return int(height), int(index)


def test_the_feed_needs_a_session(server: LiveServer, world: dict[str, Any]) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as client:
        answer = client.get(FEED)
    assert answer.status_code == 401
    assert answer.json()["code"] == "session_invalid"


@pytest.mark.parametrize("who", ["analyst", "officer"])
def test_only_the_regulator_compliance_and_auditor_may_open_it(
    server: LiveServer, world: dict[str, Any], who: str
) -> None:
    with httpx.Client(base_url=server.base, headers=world[who], timeout=10) as client:
        answer = client.get(FEED)
    assert (answer.status_code, answer.json()["code"]) == (403, "permission_denied")


def test_events_arrive_in_the_stream_order(server: LiveServer, world: dict[str, Any]) -> None:
    events = _read(server, world["regulator"], world["expected"])
    positions = [_position(e.id) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # Within a block: its transactions in stream order, then its alerts.
    for height in {h for h, _ in positions}:
        block = [e for e in events if _position(e.id)[0] == height]
        kinds = [e.kind for e in block]
        assert kinds == sorted(kinds, key=lambda k: k != "transaction")
        seqs = [e.data["seq"] for e in block if e.kind == "transaction"]
        assert seqs == sorted(seqs)
        assert [_position(e.id)[1] for e in block] == list(range(len(block)))
    transfers = [e.data["transfer_id"] for e in events if e.kind == "transaction"]
    for tid in ("f1", "f2", "f3", "p1", "p2", "p3"):
        assert tid in transfers
    assert transfers.index("f3") < transfers.index("p1") < transfers.index("p3")
    assert any(e.kind == "alert" and e.data["typology"] == "large_value" for e in events)
    # Some block holds several events, so the reconnect below can cut one in two.
    assert max(index for _, index in positions) >= 1


def test_the_compliance_officer_reads_the_same_stream(
    server: LiveServer, world: dict[str, Any]
) -> None:
    mine = _read(server, world["compliance"], world["expected"])
    theirs = _read(server, world["regulator"], world["expected"])
    assert [e.key for e in mine] == [e.key for e in theirs]


def test_a_reconnect_with_last_event_id_resumes_without_loss_or_repeats(
    server: LiveServer, world: dict[str, Any]
) -> None:
    total = world["expected"]
    whole = _read(server, world["regulator"], total)
    # Cut inside a block (after an event that is not its block's last) and at a block's end.
    inside = next(i for i in range(total - 1) if _position(whole[i + 1].id)[1] > 0)
    ends = [i for i in range(total - 1) if _position(whole[i + 1].id)[1] == 0]
    for cut in {inside, ends[0]}:
        first = _read(server, world["regulator"], cut + 1)
        assert [e.key for e in first] == [e.key for e in whole[: cut + 1]]
        # As EventSource does: the same URL (the first `after`), Last-Event-ID the last id.
        rest = _read(server, {**world["regulator"], "Last-Event-ID": first[-1].id}, total - cut - 1)
        joined = [e.key for e in first + rest]
        assert joined == [e.key for e in whole]
        assert len(set(joined)) == len(joined)


def test_a_last_event_id_that_is_not_ours_is_ignored(
    server: LiveServer, world: dict[str, Any]
) -> None:
    events = _read(server, {**world["regulator"], "Last-Event-ID": "not-an-id"}, world["expected"])
    assert len(events) == world["expected"]

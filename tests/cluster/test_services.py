"""A cluster peer runs the same platform services as a solo node: identity over HTTP, with its
chain operations ordered by the consortium's stream; `zhijin reindex` on a stopped peer rebuilds
its query tables over final blocks only, as the running peer projects them."""

from __future__ import annotations

import secrets

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.cluster.conftest import NetworkFactory
from tests.cluster.helpers import anchor_envelope, document_hash, peer_store, submit
from tests.platform.sse import read_until
from zhijin.chain.crypto import KeyPair
from zhijin.cli import app as cli_app

pytestmark = pytest.mark.slow

API = "/api/v1/identity"
CSRF_HEADER = "X-CSRF-Token"


def _session_cookie(response: httpx.Response) -> str:
    """`name=value` of the session cookie (read from Set-Cookie: a client's jar would hold a
    Secure cookie back over plain http)."""
    for header in response.headers.get_list("set-cookie"):
        pair = header.split(";", 1)[0]
        if pair.split("=", 1)[0] in ("__Host-zhijin_session", "zhijin_session"):
            return pair
    raise AssertionError(f"login set no session cookie: {response.headers}")


def test_identity_routes_answer_on_a_peer(
    make_network: NetworkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIJIN_PASSWORD_HASHING", "test")  # cheap Argon2 in the peers
    network = make_network(3)
    url = network.urls[1]
    login, password = f"customer-{secrets.token_hex(4)}", "pw-" + secrets.token_urlsafe(18)
    with httpx.Client(base_url=url, timeout=30) as client:
        registered = client.post(
            f"{API}/register", json={"login": login, "password": password, "kind": "individual"}
        )
        assert registered.status_code == 201, registered.text
        answer = client.post(f"{API}/login", json={"login": login, "password": password})
        assert answer.status_code == 200, answer.text
        auth = {"Cookie": _session_cookie(answer)}
        client.cookies.clear()
        me = client.get(f"{API}/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["user_id"] == registered.json()["user_id"]
        assert me.json()["did"] == registered.json()["did"]
        # An identity chain operation: the user's DID, ordered and signed by the consortium.
        did = client.post(
            f"{API}/did/register",
            headers={**auth, CSRF_HEADER: answer.json()["csrf_token"]},
        )
        assert did.status_code == 200, did.text
        height = did.json()["height"]
        assert did.json()["did"].startswith("did:zhijin:")
    for peer in network.urls:
        final = httpx.get(f"{peer}/api/v1/cluster/final/{height}", timeout=20).json()
        assert final["final"], (peer, final)
    # Every peer's live stream tells of that block (projected once final there).
    for peer in network.urls:
        with (
            httpx.Client(base_url=peer, timeout=30) as client,
            client.stream("GET", "/api/v1/events", params={"after": height - 1}) as stream,
        ):
            events = read_until(stream, lambda es: any(e["event"] == "block" for e in es))
            assert events[-1]["data"]["height"] == height, (peer, events)
    # Personal data stays with the member that holds it: another peer does not know the user.
    elsewhere = httpx.post(
        f"{network.urls[0]}{API}/login", json={"login": login, "password": password}, timeout=30
    )
    assert elsewhere.status_code == 401
    assert elsewhere.json()["code"] == "invalid_credentials"


def test_reindex_of_a_stopped_peer_projects_only_final_blocks(
    make_network: NetworkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIJIN_AUDIT_ANCHOR_INTERVAL_S", "0")  # no blocks but the test's
    network = make_network(1)
    key = KeyPair.generate()
    heights = []
    for nonce in (1, 2):
        envelope = anchor_envelope(network, key, nonce, document_hash("reindex", nonce))
        response = submit(network.urls[0], envelope, wait=True)
        assert response.is_success, response.text
        heights.append(response.json()["height"])
    network.stop_peer(0)
    data = network.root / "peer0"
    # The last anchor's block loses its signature: as if the consortium had not signed it.
    store, _ = peer_store(network, 0)
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE chain_blocks SET signatures = '[]' WHERE height = :h"),
                {"h": heights[1]},
            )
        head = store.head_height()
    finally:
        store.close()
    assert head == heights[1]
    result = CliRunner().invoke(cli_app, ["reindex", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert f"up to final block {heights[0]}" in result.output
    engine = create_engine(f"sqlite:///{data / 'platform.db'}")
    try:
        with engine.connect() as conn:
            anchored = {r[0] for r in conn.execute(text("SELECT hash FROM notary_anchors"))}
            cursors = dict(conn.execute(text("SELECT name, height FROM projection_cursors")).all())
    finally:
        engine.dispose()
    assert anchored == {document_hash("reindex", 1)}
    assert set(cursors.values()) == {heights[0]}


def test_a_stopping_peer_anchors_its_audit_head_and_projects_it(
    make_network: NetworkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zhijin.platform.audit import AuditLog

    monkeypatch.setenv("ZHIJIN_PASSWORD_HASHING", "test")
    network = make_network(3)
    registered = httpx.post(
        f"{network.urls[1]}{API}/register",
        json={"login": f"c-{secrets.token_hex(4)}", "password": "pw-" + secrets.token_urlsafe(18)},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    network.stop_peer(1)  # SIGTERM: the peer's own stop, with its shutdown anchor
    engine = create_engine(f"sqlite:///{network.root / 'peer1' / 'platform.db'}")
    try:
        head = AuditLog(engine).head()
        assert head.size >= 1
        with engine.connect() as conn:
            anchored = conn.execute(
                text("SELECT title FROM notary_anchors WHERE hash = :h"), {"h": head.entry_hash}
            ).scalar()
    finally:
        engine.dispose()
    assert anchored == f"zhijin identity audit head {head.size}"  # final and projected at stop

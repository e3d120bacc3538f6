"""The HTTP edge (zhijin/platform/http_edge.py): body limits, strict JSON, bounded integers.

Every refusal is a problem+json with a stable code, never a 500, and the refused request
changes nothing: each test shows the same request, without the fault, taking effect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from zhijin.chain.crypto import KeyPair
from zhijin.chain.tx import make_body, sign_tx
from zhijin.node.app import create_app, include_edge_router
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform.http_edge import BODY_LIMIT_KEY
from zhijin.platform.http_limits import BODY_BYTES_MAX, ENVELOPE_BYTES_MAX, INT64_MAX

from .live_server import LiveServer
from .users import register_and_login

JSON = {"content-type": "application/json"}
TOO_BIG = INT64_MAX + 1


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data=tmp_path, block_interval_ms=5, password_hashing="test")
    init_data_dir(settings, members=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        token = (tmp_path / "operator-token").read_text().strip()
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def _platform(client: TestClient) -> Platform:
    return client.app.state.platform  # type: ignore[attr-defined,no-any-return]


def _envelope(client: TestClient, args: dict[str, Any]) -> dict[str, Any]:
    platform = _platform(client)
    body = make_body(
        chain_id=platform.genesis.chain_id,
        sender=(key := KeyPair.generate()).did,
        nonce=1,
        contract="notary",
        method="anchor",
        args=args,
        valid_until=platform.node.clock() + 60_000,
    )
    return sign_tx(key, body)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _books(client: TestClient) -> None:
    member = _platform(client).node.key.did
    for account_id, owner, kind in (
        ("settle-cny", member, "settlement"),
        ("alice-cny", "did:key:z6MkEdgeAlice", "customer"),
    ):
        body = {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}
        assert client.post("/api/v1/accounts", json=body).status_code == 200


def _transfer(transfer_id: str) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": "settle-cny",
        "credit_account_id": "alice-cny",
        "amount": 500,
        "currency": "CNY",
    }


def _balance(client: TestClient) -> int:
    balance: int = client.get("/api/v1/accounts/alice-cny").json()["balance_posted"]
    return balance


# -- lone surrogates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"TITLE"', '"\\ud800"'),  # an args value
        ('"title"', '"\\udfff"'),  # an args key
        ('"chain_id": "', '"chain_id": "\\ud800'),
        ('"signer": "', '"signer": "\\ud800'),
    ],
)
def test_a_lone_surrogate_in_a_chain_tx_is_bad_string(
    client: TestClient, old: str, new: str
) -> None:
    envelope = _envelope(client, {"hash": "a" * 64, "title": "TITLE"})
    raw = json.dumps(envelope)
    assert old in raw
    response = client.post("/api/v1/chain/txs?wait=true", content=raw.replace(old, new))
    _problem(response, 400, "bad_string")
    assert client.get(f"/api/v1/notary/anchors/{'a' * 64}").status_code == 404
    fine = client.post("/api/v1/chain/txs?wait=true", json=envelope)
    assert fine.status_code == 200 and fine.json()["status"] == "committed"


@pytest.mark.parametrize(
    "content",
    [
        b'{"hash": "' + b"b" * 64 + b'", "title": "x\\ud800"}',  # escaped
        b'{"hash": "' + b"b" * 64 + b'", "title": "x\xed\xa0\x80"}',  # CESU-style bytes
        b'{"hash": "' + b"b" * 64 + b'", "\\udc00": 1}',  # in a key
    ],
)
def test_a_lone_surrogate_in_a_rest_body_is_bad_string(client: TestClient, content: bytes) -> None:
    response = client.post("/api/v1/notary/anchors", content=content, headers=JSON)
    _problem(response, 400, "bad_string")
    assert client.get(f"/api/v1/notary/anchors/{'b' * 64}").status_code == 404


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine(client: TestClient) -> None:
    content = b'{"hash": "' + b"c" * 64 + b'", "title": "\\ud83d\\ude00 \\\\ud800"}'
    response = client.post("/api/v1/notary/anchors", content=content, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["record"]["title"] == "\U0001f600 \\ud800"


# -- bounded integers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/chain/blocks/{TOO_BIG}",
        f"/api/v1/chain/blocks/{10**30}",
        f"/api/v1/notary/anchors?before_height={TOO_BIG}",
        f"/api/v1/chain/proofs/consistency?from=1&to={TOO_BIG}",
        f"/api/v1/chain/proofs/inclusion/{'0' * 64}?size={TOO_BIG}",
        f"/api/v1/accounts/alice-cny/statement?after_entry={TOO_BIG}",
        f"/api/v1/accounts/alice-cny/camt053?from_ms=0&to_ms={TOO_BIG}",
        f"/api/v1/identity/audit?after_seq={TOO_BIG}",
    ],
)
def test_integers_past_64_bits_are_422_not_500(client: TestClient, url: str) -> None:
    if "/identity/" in url:  # identity routes take a user, not the operator
        del client.headers["Authorization"]
        client.headers.update(register_and_login(client))
    body = _problem(client.get(url), 422, "invalid_request")
    assert body["errors"] and body["errors"][0]["loc"][0] in ("path", "query")


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/api/v1/chain/blocks/{INT64_MAX}", 404),
        (f"/api/v1/notary/anchors?before_height={INT64_MAX}", 200),
    ],
)
def test_the_largest_64_bit_integer_reaches_the_database(
    client: TestClient, url: str, status: int
) -> None:
    assert client.get(url).status_code == status


def test_an_integer_past_64_bits_in_a_rest_body_is_422(client: TestClient) -> None:
    content = b'{"hash": "' + b"d" * 64 + b'", "expires_at": ' + str(TOO_BIG).encode() + b"}"
    response = client.post("/api/v1/notary/anchors", content=content, headers=JSON)
    _problem(response, 422, "invalid_request")


def test_every_integer_parameter_is_bounded_in_the_openapi(client: TestClient) -> None:
    """Guards new routes: an integer path or query parameter without a 64-bit maximum could
    reach a database column and overflow."""
    unbounded = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                for option in schema.get("anyOf", [schema]):
                    if option.get("type") == "integer" and not (
                        option.get("maximum", TOO_BIG) <= INT64_MAX
                    ):
                        unbounded.append(f"{method} {path} {parameter['name']}")
    assert unbounded == []


# -- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        '{{"hash": "{a}", "hash": "{b}"}}',
        '{{"hash": "{a}", "title": "t", "title": "u"}}',
    ],
)
def test_duplicate_keys_in_a_rest_body_are_refused(client: TestClient, template: str) -> None:
    first, second = "e" * 64, "f" * 64
    content = template.format(a=first, b=second)
    response = client.post("/api/v1/notary/anchors", content=content, headers=JSON)
    _problem(response, 400, "duplicate_key")
    for digest in (first, second):
        assert client.get(f"/api/v1/notary/anchors/{digest}").status_code == 404


def test_duplicate_keys_are_refused_before_authentication(client: TestClient) -> None:
    """Parsing comes first, so a caller learns nothing else; nested objects count too."""
    content = b'{"transfers": [{"id": "x", "id": "y"}]}'
    response = client.post(
        "/api/v1/transfers/batch", content=content, headers={**JSON, "Authorization": ""}
    )
    _problem(response, 400, "duplicate_key")


def test_duplicate_keys_in_a_transfer_book_nothing(client: TestClient) -> None:
    _books(client)
    raw = json.dumps(_transfer("dup")).replace('"amount": 500', '"amount": 500, "amount": 9')
    _problem(client.post("/api/v1/transfers", content=raw, headers=JSON), 400, "duplicate_key")
    assert client.get("/api/v1/transfers/dup").status_code == 404
    assert _balance(client) == 0


def test_duplicate_keys_in_a_chain_tx_are_refused(client: TestClient) -> None:
    envelope = _envelope(client, {"hash": "1" * 64})
    raw = json.dumps(envelope).replace('"nonce": 1', '"nonce": 1, "nonce": 2')
    _problem(client.post("/api/v1/chain/txs", content=raw, headers=JSON), 400, "duplicate_key")


# -- body limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_over_limit_transfer_is_413_and_books_nothing(client: TestClient, chunked: bool) -> None:
    _books(client)
    raw = json.dumps(_transfer("big")).encode()
    padded = raw + b" " * (BODY_BYTES_MAX + 1 - len(raw))  # valid JSON, one byte too long
    content: Any = _chunks(padded) if chunked else padded
    response = client.post("/api/v1/transfers", content=content, headers=JSON)
    body = _problem(response, 413, "body_too_large")
    assert body["limit_bytes"] == BODY_BYTES_MAX
    assert client.get("/api/v1/transfers/big").status_code == 404
    assert _balance(client) == 0
    at_limit = padded[:-1]
    content = _chunks(at_limit) if chunked else at_limit
    assert client.post("/api/v1/transfers", content=content, headers=JSON).status_code == 200
    assert _balance(client) == 500


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_over_limit_chain_envelope_is_413_and_submits_nothing(
    client: TestClient, chunked: bool
) -> None:
    envelope = _envelope(client, {"hash": "2" * 64})
    raw = json.dumps(envelope).encode()
    padded = raw + b" " * (ENVELOPE_BYTES_MAX + 1 - len(raw))
    content: Any = _chunks(padded, 256 * 1024) if chunked else padded
    response = client.post("/api/v1/chain/txs?wait=true", content=content, headers=JSON)
    assert _problem(response, 413, "body_too_large")["limit_bytes"] == ENVELOPE_BYTES_MAX
    assert client.get(f"/api/v1/notary/anchors/{'2' * 64}").status_code == 404
    # The envelope route declares more than the default: a 100 KiB envelope is taken.
    roomy = raw + b" " * (100 * 1024)
    answer = client.post("/api/v1/chain/txs?wait=true", content=roomy, headers=JSON)
    assert answer.status_code == 200 and answer.json()["status"] == "committed"


def test_every_route_taking_a_body_shows_its_limit(client: TestClient) -> None:
    limits = {}
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if method in ("post", "put", "patch"):
                limits[f"{method} {path}"] = operation.get(BODY_LIMIT_KEY)
    assert None not in limits.values()
    assert limits["post /api/v1/chain/txs"] == ENVELOPE_BYTES_MAX
    assert limits["post /api/v1/payments/iso20022/pain001"] == 8 * 1024 * 1024
    assert limits["post /api/v1/notary/anchors"] == BODY_BYTES_MAX


def test_a_router_outside_the_edge_is_refused() -> None:
    plain = APIRouter()

    @plain.post("/unbounded")
    def unbounded(body: dict[str, Any]) -> dict[str, Any]:
        return body

    with pytest.raises(TypeError, match="EdgeRoute"):
        include_edge_router(FastAPI(), plain)


# -- found by probing what the fuzzer reaches -------------------------------------------------


@pytest.mark.parametrize(
    "receipt",
    [{"tx": []}, {"tx": {"envelope": "x"}}, {"tx": {"envelope": {"body": {"args": 5}}}}],
)
def test_a_malformed_receipt_with_a_document_hash_is_not_ok(
    client: TestClient, receipt: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/notary/verify", json={"receipt": receipt, "document_sha256": "a" * 64}
    )
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_uvicorn_answers_an_over_limit_body_with_the_problem(tmp_path: Path, chunked: bool) -> None:
    """Through a real server the 413 is the same problem+json, also while the client is still
    sending, and nothing is anchored."""
    live = LiveServer(tmp_path)
    try:
        headers = {**JSON, "Authorization": f"Bearer {live.operator_token}"}
        body = b'{"hash": "' + b"9" * 64 + b'"}' + b" " * (3 * BODY_BYTES_MAX)
        content: Any = _chunks(body, 8192) if chunked else body
        url = f"{live.base}/api/v1/notary/anchors"
        response = httpx.post(url, content=content, headers=headers, timeout=10)
        assert _problem(response, 413, "body_too_large")["limit_bytes"] == BODY_BYTES_MAX
        assert httpx.get(f"{url}/{'9' * 64}", timeout=10).status_code == 404
    finally:
        live.stop()

"""The HTTP API: submit, wait, read, proofs, notary; errors are problem+json with codes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from zhijin.chain.crypto import KeyPair
from zhijin.chain.merkle import verify_consistency_json, verify_inclusion_json
from zhijin.chain.tx import make_body, sign_tx
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data=tmp_path, block_interval_ms=5)
    init_data_dir(settings, members=3)
    with TestClient(create_app(settings)) as test_client:
        test_client.token = (tmp_path / "operator-token").read_text().strip()  # type: ignore[attr-defined]
        yield test_client


def _platform(client: TestClient) -> Platform:
    return client.app.state.platform  # type: ignore[attr-defined]


def _envelope(client: TestClient, key: KeyPair, nonce: int, args: dict) -> dict:
    platform = _platform(client)
    body = make_body(
        chain_id=platform.genesis.chain_id,
        sender=key.did,
        nonce=nonce,
        contract="notary",
        method="anchor",
        args=args,
        valid_until=platform.node.clock() + 60_000,
    )
    return sign_tx(key, body)


def test_submit_and_wait_then_read_back(client: TestClient) -> None:
    key = KeyPair.generate()
    digest = hashlib.sha256(b"x").hexdigest()
    response = client.post(
        "/api/v1/chain/txs?wait=true", json=_envelope(client, key, 1, {"hash": digest})
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "committed" and answer["height"] >= 1
    operator = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
    tx = client.get(f"/api/v1/chain/txs/{answer['tx_hash']}", headers=operator).json()
    assert tx["envelope"]["signer"] == key.did and tx["result"]["status"] == "ok"
    public = client.get(f"/api/v1/chain/txs/{answer['tx_hash']}").json()
    assert public["visibility"] == "redacted" and public["envelope"] is None
    block = client.get(f"/api/v1/chain/blocks/{answer['height']}").json()
    assert answer["tx_hash"] in block["txs"]
    head = client.get("/api/v1/chain/head").json()
    assert head["height"] >= answer["height"] and head["tree_head"]["tree_size"] >= 1
    proof = client.get(f"/api/v1/chain/proofs/inclusion/{answer['tx_hash']}").json()
    verify_inclusion_json(proof)
    anchor = client.get(f"/api/v1/notary/anchors/{digest}", headers=operator).json()
    assert anchor["owner"] == key.did and anchor["status"] == "valid"


def test_consistency_proof_endpoint(client: TestClient) -> None:
    key = KeyPair.generate()
    for nonce in range(1, 5):
        envelope = _envelope(client, key, nonce, {"hash": f"{nonce:064x}"})
        assert client.post("/api/v1/chain/txs?wait=true", json=envelope).status_code == 200
    proof = client.get("/api/v1/chain/proofs/consistency", params={"from": 1, "to": 4}).json()
    verify_consistency_json(proof)
    bad = client.get("/api/v1/chain/proofs/consistency", params={"from": 3, "to": 99})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_size"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b'{"body": {', "malformed_json"),
        (b'{"body": {"a": 1.5}, "signer": "x", "signature": "y"}', "float_not_allowed"),
        (b"[]", "bad_envelope"),
    ],
)
def test_bad_envelopes_are_problem_json(client: TestClient, content: bytes, code: str) -> None:
    response = client.post(
        "/api/v1/chain/txs", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def test_forged_signature_is_refused_and_nothing_is_stored(client: TestClient) -> None:
    envelope = _envelope(client, KeyPair.generate(), 1, {"hash": "a" * 64})
    envelope["signature"] = "0" * 128
    response = client.post("/api/v1/chain/txs?wait=true", json=envelope)
    assert response.status_code == 400 and response.json()["code"] == "bad_signature"
    assert client.get(f"/api/v1/notary/anchors/{'a' * 64}").status_code == 404


def test_unknown_things_are_404_with_codes(client: TestClient) -> None:
    assert client.get("/api/v1/chain/blocks/999").json()["code"] == "block_not_found"
    assert client.get(f"/api/v1/chain/txs/{'0' * 64}").json()["code"] == "tx_not_found"
    assert client.get("/api/v1/chain/txs/zz").json()["code"] == "bad_hash"
    assert client.get(f"/api/v1/notary/anchors/{'0' * 64}").json()["code"] == "not_anchored"


def test_operator_anchor_needs_the_token(client: TestClient) -> None:
    digest = hashlib.sha256(b"contract").hexdigest()
    body = {"hash": digest, "title": "contract"}
    refused = client.post("/api/v1/notary/anchors", json=body)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    wrong = client.post(
        "/api/v1/notary/anchors", json=body, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
    created = client.post("/api/v1/notary/anchors", json=body, headers=headers)
    assert created.status_code == 200 and created.json()["created"] is True
    again = client.post("/api/v1/notary/anchors", json={**body, "title": "retry"}, headers=headers)
    assert again.json() == {"created": False, "record": created.json()["record"]}
    receipt = client.get(f"/api/v1/notary/anchors/{digest}/receipt", headers=headers).json()
    check = client.post(
        "/api/v1/notary/verify", json={"receipt": receipt, "document_sha256": digest}
    )
    assert check.json()["ok"] is True
    receipt["tree_head"]["root"] = "00" * 32
    assert client.post("/api/v1/notary/verify", json={"receipt": receipt}).json()["ok"] is False


def test_a_receipt_waits_for_finality(client: TestClient) -> None:
    """A cluster peer has committed blocks no quorum signed yet: their receipts could not be
    verified offline, so the API answers 503 `not_final` with Retry-After instead."""
    digest = hashlib.sha256(b"early").hexdigest()
    headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
    created = client.post("/api/v1/notary/anchors", json={"hash": digest}, headers=headers)
    assert created.status_code == 200
    platform = _platform(client)
    height = created.json()["record"]["height"]
    platform.final_height = lambda: height - 1  # type: ignore[method-assign]
    early = client.get(f"/api/v1/notary/anchors/{digest}/receipt", headers=headers)
    assert early.status_code == 503 and early.json()["code"] == "not_final"
    assert "Retry-After" in early.headers
    platform.final_height = lambda: height  # type: ignore[method-assign]
    final = client.get(f"/api/v1/notary/anchors/{digest}/receipt", headers=headers)
    assert final.status_code == 200 and final.json()["block"]["header"]["height"] == height


def test_anchor_request_validation(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
    for body in (
        {"hash": "xyz"},
        {"hash": "a" * 64, "title": 5},
        {"hash": "a" * 64, "extra": 1},
        {},
    ):
        response = client.post("/api/v1/notary/anchors", json=body, headers=headers)
        assert response.status_code == 422 and response.json()["code"] == "invalid_request"


def test_web_shell_and_openapi(client: TestClient) -> None:
    assert "zhijin" in client.get("/").text
    assert "/api/v1/chain/txs" in client.get("/openapi.json").json()["paths"]


def test_anchor_listing_is_a_paginated_projection(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}  # type: ignore[attr-defined]
    digests = [hashlib.sha256(f"doc {n}".encode()).hexdigest() for n in range(5)]
    for digest in digests:
        assert (
            client.post(
                "/api/v1/notary/anchors", json={"hash": digest}, headers=headers
            ).status_code
            == 200
        )
    platform = _platform(client)
    assert platform.projections.wait_for(platform.node.head.height)
    first = client.get("/api/v1/notary/anchors", params={"limit": 3}).json()
    assert [a["hash"] for a in first["anchors"]] == digests[::-1][:3]
    second = client.get(
        "/api/v1/notary/anchors", params={"limit": 3, "before_height": first["next_before_height"]}
    ).json()
    assert [a["hash"] for a in second["anchors"]] == digests[::-1][3:]
    assert second["next_before_height"] is None
    mine = client.get(
        "/api/v1/notary/anchors", params={"owner": "did:key:nobody"}, headers=headers
    ).json()
    assert mine["anchors"] == []
    assert client.get("/api/v1/notary/anchors", params={"limit": 0}).status_code == 422


def test_many_envelopes_in_one_request_are_each_answered(client: TestClient) -> None:
    """POST /txs/many: sound, forged and replayed envelopes and a member batch in one
    request; each gets its own answer, in order, and only the sound ones reach the chain."""
    from zhijin.chain.tx import sign_batch

    platform = _platform(client)
    keys = [KeyPair.generate() for _ in range(4)]
    sound = [
        _envelope(client, keys[i % 4], i, {"hash": hashlib.sha256(b"m%d" % i).hexdigest()})
        for i in range(100)
    ]
    forged = dict(sound[0], signature="00" * 64)
    bodies = [
        make_body(
            chain_id=platform.genesis.chain_id,
            sender=keys[0].did,
            nonce=1_000 + i,
            contract="notary",
            method="anchor",
            args={"hash": hashlib.sha256(b"b%d" % i).hexdigest()},
            valid_until=platform.node.clock() + 60_000,
        )
        for i in range(3)
    ]
    batch = sign_batch(platform.node.key, bodies)
    envelopes = [*sound[:50], forged, batch, sound[7], *sound[50:]]
    response = client.post("/api/v1/chain/txs/many?wait=true", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == len(envelopes)
    assert {r["status"] for r in results[:50] + results[53:]} == {"committed"}
    assert results[50]["status"] == "rejected" and results[50]["code"] == "bad_signature"
    assert [t["status"] for t in results[51]["txs"]] == ["committed"] * 3
    assert results[52]["status"] == "rejected" and results[52]["code"] == "nonce_used"
    for answer in (results[0], results[99], results[51]["txs"][2]):
        stored = client.get(f"/api/v1/chain/txs/{answer['tx_hash']}")
        assert stored.status_code == 200 and stored.json()["height"] == answer["height"]
    # The same request again: every envelope is a replay, nothing new is admitted.
    again = client.post("/api/v1/chain/txs/many", json={"envelopes": envelopes})
    assert again.status_code == 202
    assert all(
        a["status"] == "rejected" for r in again.json()["results"] for a in r.get("txs", [r])
    )


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"[]", "bad_envelope"),
        (b'{"envelopes": []}', "bad_envelope"),
        (b'{"envelopes": {}}', "bad_envelope"),
        (b'{"envelopes": [{}], "extra": 1}', "bad_envelope"),
        (b'{"envelopes": [1.5]}', "float_not_allowed"),
        (b'{"envelopes": [{"a": 1, "a": 2}]}', "duplicate_key"),
        (b'{"envelopes": [', "malformed_json"),
        (b'{"envelopes": [' + b"{}," * 5_000 + b"{}]}", "bad_envelope"),  # over the count
    ],
)
def test_a_malformed_many_request_is_refused_whole(
    client: TestClient, content: bytes, code: str
) -> None:
    response = client.post(
        "/api/v1/chain/txs/many", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert _platform(client).node.mempool_size() == 0


def test_many_request_garbage_envelopes_are_refused_one_by_one(client: TestClient) -> None:
    key = KeyPair.generate()
    good = _envelope(client, key, 1, {"hash": hashlib.sha256(b"g").hexdigest()})
    response = client.post(
        "/api/v1/chain/txs/many?wait=true",
        json={"envelopes": [{}, "text", good, {"body": {}, "signer": "x", "signature": "y"}]},
    )
    assert response.status_code == 200, response.text
    codes = [r.get("code") or r["status"] for r in response.json()["results"]]
    assert codes == ["bad_envelope", "bad_envelope", "committed", "bad_signature"]

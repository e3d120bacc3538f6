"""Who reads what of the chain: headers, hashes and proofs for anyone; bodies and results for
members, their authorised staff, auditors, the regulator, and the customers they name."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.platform.users import create_staff, me, register_and_login
from zhijin.identity.rbac import Role
from zhijin.node.app import create_app
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.notary.receipt import verify_receipt

AMOUNT = 76_543  # distinctive, so its digits in a response can only come from the tx (and
# under the step-up floors)
REFERENCE = "INV-77-QUARTZ"
TITLE = "lease-contract-Q9"


@dataclass
class Chain:
    client: TestClient
    operator: dict[str, str]
    payment_tx: str  # Alice pays Bob
    deposit_tx: str  # the member credits Alice (sender: the member)
    secrets: tuple[str, ...]  # what must never reach a reader who may not see the bodies
    alice: dict[str, str]
    bob: dict[str, str]

    @property
    def platform(self) -> Platform:
        return self.client.app.state.platform  # type: ignore[attr-defined,no-any-return]

    def ok(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        response = self.client.post(path, json=body, headers=headers or self.operator)
        assert response.status_code == 200, response.text
        return response.json()


def _account(account_id: str, owner: str, kind: str = "customer") -> dict[str, Any]:
    return {"id": account_id, "owner": owner, "currency": "CNY", "kind": kind}


def _move(transfer_id: str, debit: str, credit: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "CNY",
        **extra,
    }


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    settings = Settings(data=tmp_path, block_interval_ms=5, password_hashing="test")
    init_data_dir(settings, members=1)
    token = (tmp_path / "operator-token").read_text().strip()
    operator = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        alice, bob = register_and_login(client), register_and_login(client)
        alice_did, bob_did = me(client, alice)["did"], me(client, bob)["did"]
        member = client.app.state.platform.node.key.did  # type: ignore[attr-defined]
        setup = Chain(client, operator, "", "", (), alice, bob)
        setup.ok("/api/v1/accounts", _account("settle-cny", member, "settlement"))
        setup.ok("/api/v1/accounts", _account("acct-alice-77", alice_did))
        setup.ok("/api/v1/accounts", _account("acct-bob-88", bob_did))
        deposit = setup.ok(
            "/api/v1/transfers", _move("dep-1", "settle-cny", "acct-alice-77", 9_000_000)
        )
        paid = setup.ok(
            "/api/v1/transfers",
            _move("pay-1", "acct-alice-77", "acct-bob-88", AMOUNT, reference=REFERENCE),
            headers=alice,
        )
        setup.payment_tx = paid["transfer"]["tx_hash"]
        setup.deposit_tx = deposit["transfer"]["tx_hash"]
        setup.secrets = (
            "acct-alice-77",
            "acct-bob-88",
            f":{AMOUNT}",  # as a JSON value: a hex hash may hold the digits
            REFERENCE,
            alice_did,
            bob_did,
        )
        yield setup


def _assert_nothing_of(text: str, secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked"


def _tx(chain: Chain, tx_hash: str, headers: dict[str, str] | None) -> dict[str, Any]:
    response = chain.client.get(f"/api/v1/chain/txs/{tx_hash}", headers=headers or {})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _assert_redacted(chain: Chain, tx_hash: str, headers: dict[str, str] | None) -> None:
    response = chain.client.get(f"/api/v1/chain/txs/{tx_hash}", headers=headers or {})
    assert response.status_code == 200, response.text
    _assert_nothing_of(response.text, chain.secrets)
    view = response.json()
    assert view["visibility"] == "redacted" and view["tx_hash"] == tx_hash
    assert view["envelope"] is None and view["result"] is None and view["redacted_detail"]
    stored = chain.platform.store.get_tx(bytes.fromhex(tx_hash))
    assert stored is not None
    assert (view["height"], view["position"]) == (stored.height, stored.position)


def _assert_full(chain: Chain, tx_hash: str, headers: dict[str, str] | None) -> None:
    view = _tx(chain, tx_hash, headers)
    assert view["visibility"] == "full" and view["redacted_detail"] is None
    assert view["envelope"]["body"]["contract"] == "payments"
    assert view["result"]["status"] == "ok"


def test_anyone_reads_tx_hashes_and_positions_but_no_body(chain: Chain) -> None:
    _assert_redacted(chain, chain.payment_tx, None)
    _assert_redacted(chain, chain.deposit_tx, None)


def test_blocks_head_and_proofs_carry_no_body_for_anyone(chain: Chain) -> None:
    client = chain.client
    head = client.get("/api/v1/chain/head")
    assert head.status_code == 200
    _assert_nothing_of(head.text, chain.secrets)
    for height in range(head.json()["height"] + 1):
        block = client.get(f"/api/v1/chain/blocks/{height}")
        assert block.status_code == 200
        _assert_nothing_of(block.text, chain.secrets)
    proof = client.get(f"/api/v1/chain/proofs/inclusion/{chain.payment_tx}")
    assert proof.status_code == 200
    _assert_nothing_of(proof.text, chain.secrets)


def test_another_customer_sees_no_body(chain: Chain) -> None:
    carol = register_and_login(chain.client)
    _assert_redacted(chain, chain.payment_tx, carol)
    _assert_redacted(chain, chain.deposit_tx, carol)


def test_a_customer_sees_what_they_sent_and_what_names_their_accounts(chain: Chain) -> None:
    view = _tx(chain, chain.payment_tx, chain.alice)
    assert view["envelope"]["body"]["sender"] == me(chain.client, chain.alice)["did"]
    assert view["envelope"]["body"]["args"]["transfers"][0]["reference"] == REFERENCE
    _assert_full(chain, chain.deposit_tx, chain.alice)  # sent by the member, names her account
    _assert_full(chain, chain.payment_tx, chain.bob)  # the payee
    _assert_redacted(chain, chain.deposit_tx, chain.bob)  # someone else's deposit


def test_the_operator_staff_auditor_and_regulator_see_every_body(chain: Chain) -> None:
    readers = [chain.operator] + [
        create_staff(chain.client, roles={role})
        for role in (Role.BANK_OFFICER, Role.AUDITOR, Role.REGULATOR, Role.COMPLIANCE_OFFICER)
    ]
    for headers in readers:
        _assert_full(chain, chain.payment_tx, headers)
        _assert_full(chain, chain.deposit_tx, headers)


def test_staff_without_transaction_read_and_other_members_staff_see_no_body(chain: Chain) -> None:
    admin = create_staff(chain.client, roles={Role.ADMIN})
    _assert_redacted(chain, chain.payment_tx, admin)
    stranger = create_staff(chain.client, roles={Role.AUDITOR}, member_did="did:key:z6MkOther")
    _assert_redacted(chain, chain.payment_tx, stranger)


def test_a_bad_bearer_token_is_refused_not_read_as_anyone(chain: Chain) -> None:
    response = chain.client.get(
        f"/api/v1/chain/txs/{chain.payment_tx}", headers={"Authorization": "Bearer zjt_nope"}
    )
    assert response.status_code == 401
    _assert_nothing_of(response.text, chain.secrets)


def test_block_events_carry_no_body_to_anyone(chain: Chain) -> None:
    """What the live stream sends a reader who is not signed in, for every block so far."""
    hub = chain.platform.notifications
    loop = asyncio.new_event_loop()
    try:
        subscriber = hub.subscribe(loop, owner=None, holder=None)
        try:
            replayed = hub.replay(subscriber, -1)
        finally:
            hub.unsubscribe(subscriber)
    finally:
        loop.close()
    assert replayed
    notices = [notice for block in replayed for notice in block]
    assert {notice.event for notice in notices} == {"block"}
    for notice in notices:
        assert set(notice.data) == {"height", "time_ms", "txs", "text"}
        # The text is made of those figures only (zh-CN, as no language was asked for).
        assert notice.data["text"] == (
            f"第 {notice.data['height']} 个区块已提交，含 {notice.data['txs']} 笔交易"
        )
    _assert_nothing_of(json.dumps([n.data for n in notices]), chain.secrets)


def _anchor(chain: Chain) -> str:
    digest = hashlib.sha256(b"the lease").hexdigest()
    chain.ok("/api/v1/notary/anchors", {"hash": digest, "title": TITLE})
    platform = chain.platform
    assert platform.projections.wait_for(platform.node.head.height)
    return digest


def test_anyone_learns_where_a_hash_was_anchored_not_its_title_or_owner(chain: Chain) -> None:
    digest = _anchor(chain)
    member = chain.platform.node.key.did
    client = chain.client
    for headers in ({}, chain.alice):
        looked = client.get(f"/api/v1/notary/anchors/{digest}", headers=headers)
        assert looked.status_code == 200 and looked.json()["visibility"] == "redacted"
        assert looked.json()["hash"] == digest and looked.json()["status"] == "valid"
        _assert_nothing_of(looked.text, (TITLE, member))
        listed = client.get("/api/v1/notary/anchors", headers=headers)
        assert listed.status_code == 200 and digest in listed.text
        _assert_nothing_of(listed.text, (TITLE, member))
        by_owner = client.get("/api/v1/notary/anchors", params={"owner": member}, headers=headers)
        assert by_owner.status_code == 403 and by_owner.json()["code"] == "chain_body_restricted"
    full = client.get(f"/api/v1/notary/anchors/{digest}", headers=chain.operator).json()
    assert full["title"] == TITLE and full["owner"] == member and full["visibility"] == "full"


def test_a_receipt_is_for_its_owner_and_still_verifies_offline(chain: Chain) -> None:
    digest = _anchor(chain)
    client = chain.client
    path = f"/api/v1/notary/anchors/{digest}/receipt"
    for headers in ({}, chain.alice):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "chain_body_restricted"
        _assert_nothing_of(refused.text, (TITLE,))
    receipt = client.get(path, headers=chain.operator)
    assert receipt.status_code == 200
    # Offline: only the genesis file, no node.
    assert verify_receipt(receipt.json(), chain.platform.genesis).ok
    # And anyone holding it may have this node check it.
    checked = client.post(
        "/api/v1/notary/verify", json={"receipt": receipt.json(), "document_sha256": digest}
    )
    assert checked.status_code == 200 and checked.json()["ok"] is True


def test_free_text_going_on_chain_is_bounded(chain: Chain) -> None:
    """References and titles stay on chain forever: each has one bound, at the API edge."""
    from zhijin.notary import limits as notary_limits
    from zhijin.payments import limits as payments_limits

    title = "x" * (notary_limits.TITLE_CHARS_MAX + 1)
    digest = hashlib.sha256(b"long title").hexdigest()
    refused = chain.client.post(
        "/api/v1/notary/anchors", json={"hash": digest, "title": title}, headers=chain.operator
    )
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_request"
    reference = "R" * (payments_limits.REFERENCE_CHARS_MAX + 1)
    too_long = chain.client.post(
        "/api/v1/transfers",
        json=_move("pay-long", "acct-alice-77", "acct-bob-88", 10, reference=reference),
        headers=chain.alice,
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_request"
    html = chain.client.get("/pay", headers=chain.alice).text  # the pay page, as alice
    assert f'name="reference" maxlength="{payments_limits.REFERENCE_CHARS_MAX}"' in html
    assert "请勿填写姓名" in html  # the warning, in her language
    english = chain.client.get("/pay", headers={**chain.alice, "Accept-Language": "en"}).text
    assert "never put personal data" in english


def _audited(chain: Chain, target: str) -> list[Any]:
    from tests.platform.users import identity_of

    entries = identity_of(chain.client).audit.entries(limit=10_000)
    return [e for e in entries if e.target == target]


def test_a_staff_read_of_a_body_is_in_the_access_audit_log(chain: Chain) -> None:
    target = f"chain_tx:{chain.payment_tx}"
    _assert_full(chain, chain.payment_tx, chain.alice)  # her own: not a privileged read
    _assert_full(chain, chain.payment_tx, chain.operator)  # the member itself, like its CLI
    assert _audited(chain, target) == []
    auditor = create_staff(chain.client, roles={Role.AUDITOR})
    _assert_full(chain, chain.payment_tx, auditor)
    (entry,) = _audited(chain, target)
    assert entry.actor == f"user:{me(chain.client, auditor)['user_id']}"
    assert entry.action == "transaction.read" and entry.outcome == "granted"

"""The node end to end on SQLite and PostgreSQL: admission, execution, commit, bad input."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from zhijin.chain import limits
from zhijin.chain.crypto import KeyPair
from zhijin.chain.merkle import leaf_hash, verify_consistency, verify_inclusion
from zhijin.chain.tx import sign_batch, sign_tx
from zhijin.notary.contract import record_key

from .helpers import ChainHarness, open_chain


@pytest.fixture(params=[False, True], ids=["sync", "pipeline"])
def chain(db_url: str, request: pytest.FixtureRequest) -> ChainHarness:
    chain = open_chain(db_url, pipeline=request.param)
    yield chain
    chain.node.close()
    chain.store.close()


@pytest.fixture
def sync_chain(db_url: str) -> ChainHarness:
    """Without the commit pipeline, for what only the synchronous path has."""
    chain = open_chain(db_url, pipeline=False)
    yield chain
    chain.node.close()
    chain.store.close()


def doc(n: int) -> str:
    return hashlib.sha256(f"document {n}".encode()).hexdigest()


def anchor(chain: ChainHarness, key: KeyPair, n: int, **over) -> dict:
    return chain.envelope(key, "notary", "anchor", {"hash": doc(n), "title": f"doc {n}"}, **over)


def assert_nothing_stored(chain: ChainHarness, height_before: int) -> None:
    assert chain.node.mempool_size() == 0
    assert chain.commit() is None
    assert chain.store.head_height() == height_before


def test_anchor_commits_and_changes_state(chain: ChainHarness) -> None:
    user = chain.users[0]
    result = chain.run(anchor(chain, user, 1))
    assert result["status"] == "ok"
    assert result["height"] == 1
    record = result["return"]["record"]
    assert result["return"]["created"] is True
    assert record["owner"] == user.did
    assert chain.node.state_get(record_key(doc(1))) == record
    stored = chain.store.get_tx(bytes.fromhex(result["tx_hash"]))
    assert stored is not None and stored.height == 1


def test_anchoring_twice_returns_the_first_record(chain: ChainHarness) -> None:
    first = chain.run(anchor(chain, chain.users[0], 7))
    second = chain.run(anchor(chain, chain.users[1], 7))
    assert second["status"] == "ok"
    assert second["return"] == {"created": False, "record": first["return"]["record"]}
    assert chain.node.state_get(record_key(doc(7)))["owner"] == chain.users[0].did


def test_blocks_link_and_tree_heads_follow(chain: ChainHarness) -> None:
    for n in range(3):
        chain.run(anchor(chain, chain.users[0], n))
    hashes = [chain.store.get_block(h).block_hash for h in range(4)]
    for height in range(1, 4):
        header = chain.store.get_block(height).header_json()
        assert header["prev_hash"] == hashes[height - 1].hex()
        head = chain.store.tree_head(height)
        assert head["tree_size"] == height and head["block_hash"] == hashes[height].hex()


def test_proofs_from_the_store_verify(chain: ChainHarness) -> None:
    from zhijin.chain.merkle import LogTree

    results = [chain.run(anchor(chain, chain.users[n % 3], n)) for n in range(6)]
    tree = LogTree(chain.store, chain.node.head.log_size)
    for index, result in enumerate(results):
        proof = tree.inclusion_proof(index, 6)
        verify_inclusion(
            leaf_index=index,
            tree_size=6,
            leaf_hash=leaf_hash(bytes.fromhex(result["tx_hash"])),
            proof=proof,
            root=tree.root(6),
        )
    verify_consistency(
        size1=2, size2=6, root1=tree.root(2), root2=tree.root(6), proof=tree.consistency_proof(2, 6)
    )


def test_a_failing_tx_is_recorded_and_changes_nothing(chain: ChainHarness) -> None:
    envelope = chain.envelope(chain.users[0], "notary", "anchor", {"hash": "not-hex"})
    result = chain.run(envelope)
    assert result["status"] == "failed"
    assert result["code"] == "invalid_hash"
    assert chain.store.get_tx(bytes.fromhex(result["tx_hash"])) is not None
    assert chain.store.state_rows_at(1) == []
    # The nonce is spent: the same envelope cannot come back.
    (again,) = chain.submit(envelope)
    assert not again.accepted and again.code == "nonce_used"


def _forged(chain: ChainHarness) -> dict:
    envelope = anchor(chain, chain.users[0], 1)
    signature = bytearray.fromhex(envelope["signature"])
    signature[5] ^= 0x40
    envelope["signature"] = signature.hex()
    return envelope


def _wrong_key(chain: ChainHarness) -> dict:
    envelope = anchor(chain, chain.users[0], 1)
    envelope["signature"] = chain.users[1].sign(json.dumps(envelope["body"]).encode()).hex()
    return envelope


def _other_signer(chain: ChainHarness) -> dict:
    body = chain.body(chain.users[0], "notary", "anchor", {"hash": doc(1)})
    return sign_tx(chain.users[1], body)  # signs validly, but is neither sender nor member


def _expired(chain: ChainHarness) -> dict:
    return anchor(chain, chain.users[0], 1, valid_until=chain.clock() - 1)


def _too_far(chain: ChainHarness) -> dict:
    return anchor(chain, chain.users[0], 1, valid_until=chain.clock() + limits.VALIDITY_MS_MAX + 1)


def _wrong_chain(chain: ChainHarness) -> dict:
    return anchor(chain, chain.users[0], 1, chain_id="another-chain")


def _unknown_contract(chain: ChainHarness) -> dict:
    return chain.envelope(chain.users[0], "casino", "bet", {})


def _unknown_method(chain: ChainHarness) -> dict:
    return chain.envelope(chain.users[0], "notary", "erase", {})


def _float_args(chain: ChainHarness) -> bytes:
    envelope = anchor(chain, chain.users[0], 1)
    text = json.dumps(envelope).replace('"title": "doc 1"', '"title": 1.5')
    assert "1.5" in text
    return text.encode()


def _huge_int(chain: ChainHarness) -> dict:
    envelope = anchor(chain, chain.users[0], 1)
    envelope["body"]["args"]["expires_at"] = 2**70
    return envelope


def _oversize(chain: ChainHarness) -> dict:
    return chain.envelope(
        chain.users[0], "notary", "anchor", {"hash": doc(1), "title": "x" * limits.TX_BYTES_MAX}
    )


def _missing_field(chain: ChainHarness) -> dict:
    envelope = anchor(chain, chain.users[0], 1)
    del envelope["body"]["nonce"]
    return envelope


def _negative_nonce(chain: ChainHarness) -> dict:
    return anchor(chain, chain.users[0], 1, nonce=-5)


BAD_INPUT = [
    (_forged, "bad_signature"),
    (_wrong_key, "bad_signature"),
    (_other_signer, "unauthorized_signer"),
    (_expired, "expired"),
    (_too_far, "valid_until_too_far"),
    (_wrong_chain, "wrong_chain"),
    (_unknown_contract, "unknown_contract"),
    (_unknown_method, "unknown_method"),
    (_float_args, "float_not_allowed"),
    (_huge_int, "integer_out_of_range"),
    (_oversize, "tx_too_large"),
    (_missing_field, "bad_body"),
    (_negative_nonce, "bad_body"),
    (lambda chain: b'{"body": {', "malformed_json"),
    (lambda chain: b"[1, 2]", "bad_envelope"),
    (lambda chain: {"body": {}, "signer": "did:web:x", "signature": "00" * 64}, "bad_signer"),
]


@pytest.mark.parametrize(
    ("make", "code"), BAD_INPUT, ids=[code + str(i) for i, (_, code) in enumerate(BAD_INPUT)]
)
def test_bad_input_is_rejected_with_a_stable_code(chain: ChainHarness, make, code: str) -> None:
    (admission,) = chain.submit(make(chain))
    assert not admission.accepted
    assert admission.code == code
    assert_nothing_stored(chain, 0)
    # The node keeps serving.
    assert chain.run(anchor(chain, chain.users[2], 99))["status"] == "ok"


def test_replayed_envelope_is_rejected_while_pending_and_after_commit(chain: ChainHarness) -> None:
    envelope = anchor(chain, chain.users[0], 1)
    (first,) = chain.submit(envelope)
    (pending_replay,) = chain.submit(envelope)
    assert first.accepted and not pending_replay.accepted
    assert pending_replay.code == "nonce_used"
    chain.commit()
    (late_replay,) = chain.submit(envelope)
    assert late_replay.code == "nonce_used"
    # Same nonce, different body: still a replay of the nonce.
    (other_body,) = chain.submit(anchor(chain, chain.users[0], 2, nonce=envelope["body"]["nonce"]))
    assert other_body.code == "nonce_used"
    assert chain.commit() is None


def test_racing_submissions_of_one_nonce_admit_exactly_one(chain: ChainHarness) -> None:
    user = chain.users[0]
    body = chain.body(user, "notary", "anchor", {"hash": doc(1)})
    variants = [
        sign_tx(user, {**body, "args": {"hash": doc(1), "title": f"v{i}"}}) for i in range(16)
    ]
    answers: list = []
    barrier = threading.Barrier(8)

    def submit(part: list) -> None:
        barrier.wait()
        for envelope in part:
            answers.extend(chain.submit(envelope))

    threads = [threading.Thread(target=submit, args=(variants[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a.accepted for a in answers) == 1
    assert {a.code for a in answers if not a.accepted} == {"nonce_used"}
    chain.commit()
    assert len(chain.store.txs_at(1)) == 1


def test_tx_that_expires_in_the_mempool_is_recorded_as_expired(chain: ChainHarness) -> None:
    envelope = anchor(chain, chain.users[0], 1, valid_until=chain.clock() + 5)
    (admission,) = chain.submit(envelope)
    assert admission.accepted
    chain.clock.advance(100)
    chain.commit()
    result = admission.future.result(timeout=5)
    assert result["status"] == "failed" and result["code"] == "expired"
    assert chain.node.state_get(record_key(doc(1))) is None


def test_member_batch_commits_every_body_as_its_own_tx(chain: ChainHarness) -> None:
    member = chain.members[0]
    bodies = [
        chain.body(chain.users[i % 3], "notary", "anchor", {"hash": doc(i)}) for i in range(5)
    ]
    admissions = chain.submit(sign_batch(member, bodies))
    assert all(a.accepted and a.batch for a in admissions)
    chain.commit()
    results = [a.future.result(timeout=5) for a in admissions]
    assert [r["status"] for r in results] == ["ok"] * 5
    owners = {chain.node.state_get(record_key(doc(i)))["owner"] for i in range(5)}
    assert owners == {u.did for u in chain.users}
    assert all(t.batch_hash is not None for t in chain.store.txs_at(1))


def test_batch_from_a_non_member_or_with_one_bad_body_is_refused_whole(chain: ChainHarness) -> None:
    bodies = [chain.body(chain.users[0], "notary", "anchor", {"hash": doc(i)}) for i in range(3)]
    outsider = chain.submit(sign_batch(KeyPair.generate(), bodies))
    assert {a.code for a in outsider} == {"unauthorized_signer"}
    bad = [*bodies[:2], {**bodies[2], "chain_id": "elsewhere"}]
    refused = chain.submit(sign_batch(chain.members[0], bad))
    assert not any(a.accepted for a in refused)
    assert refused[2].code == "wrong_chain"
    assert refused[0].code == refused[1].code == "batch_refused"
    assert "wrong_chain" not in (refused[0].message or "") and "this chain is" in (
        refused[0].message or ""
    )
    tampered = sign_batch(chain.members[0], bodies)
    tampered["bodies"][1]["args"]["title"] = "changed after signing"
    (forged,) = chain.submit(tampered)
    assert forged.code == "bad_signature"
    assert_nothing_stored(chain, 0)


def test_mempool_bound_refuses_with_mempool_full(db_url: str) -> None:
    chain = open_chain(db_url)
    chain.node.mempool_txs_max = 2
    answers = [chain.submit(anchor(chain, chain.users[0], n))[0] for n in range(3)]
    assert [a.accepted for a in answers] == [True, True, False]
    assert answers[2].code == "mempool_full"
    chain.commit()
    assert chain.submit(anchor(chain, chain.users[0], 3))[0].accepted
    chain.store.close()


def test_restart_resumes_from_the_stored_head(db_url: str) -> None:
    chain = open_chain(db_url)
    chain.run(anchor(chain, chain.users[0], 1))
    head = chain.node.head
    from zhijin.chain.node import Node

    again = Node(
        store=chain.store,
        genesis=chain.genesis,
        registry=chain.node.registry,
        key=chain.members[0],
        clock=chain.clock,
    )
    assert again.head == head
    assert again.log_tree.root() == chain.node.log_tree.root()
    chain.store.close()


def test_a_failure_after_the_database_commit_keeps_the_block_and_answers_its_txs(
    sync_chain: ChainHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block is durable once the database committed it: a failure in the bookkeeping after
    that (caches, members, head) must neither report it lost nor wedge the next height.  The
    synchronous path only: with the pipeline, members apply when the block is sealed
    (tests/chain/test_pipeline.py covers its failures)."""
    chain = sync_chain
    (admission,) = chain.submit(anchor(chain, chain.users[0], 1))
    assert admission.future is not None

    def broken(*_args: object) -> None:
        raise RuntimeError("bookkeeping failed")

    monkeypatch.setattr(chain.node.membership, "apply_writes", broken)
    height = chain.commit()
    assert height == 1 == chain.store.head_height() == chain.node.head.height
    result = admission.future.result(timeout=5)
    assert result["status"] == "ok" and result["height"] == 1
    assert chain.node.state_get(record_key(doc(1)))["owner"] == chain.users[0].did
    # The node goes on from the committed block: the next one is height 2.
    monkeypatch.undo()
    second = chain.run(anchor(chain, chain.users[1], 2))
    assert second["status"] == "ok" and second["height"] == 2


@pytest.mark.parametrize("threads", [0, 2])
def test_many_envelopes_are_each_answered_alone_and_a_batch_as_a_whole(
    db_url: str, threads: int
) -> None:
    """submit_envelopes: singles, forged ones, garbage, a replay inside the same call and
    batch envelopes (one sound, one with a bad body) in one call, on the pool or inline."""
    chain = open_chain(db_url)
    chain.node.verifier.threads = threads
    try:
        singles = [anchor(chain, chain.users[i % 3], 100 + i) for i in range(80)]
        forged = _forged(chain)
        bodies = [
            chain.body(chain.users[0], "notary", "anchor", {"hash": doc(i)}) for i in range(3)
        ]
        batch = sign_batch(chain.members[0], bodies)
        bad_bodies = [chain.body(chain.users[1], "notary", "anchor", {"hash": doc(9)})] * 1 + [
            {**chain.body(chain.users[1], "notary", "anchor", {"hash": doc(10)}), "chain_id": "x"}
        ]
        bad_batch = sign_batch(chain.members[0], bad_bodies)
        envelopes = [
            *singles[:40],
            forged,
            b"[1, 2]",
            batch,
            singles[0],  # the same envelope again in the same call: its nonce is pending
            bad_batch,
            json.dumps(singles[40]).encode(),  # bytes on the wire
            *singles[41:],
        ]
        groups = chain.node.submit_envelopes(envelopes)
        assert len(groups) == len(envelopes)
        assert all(len(g) == 1 and g[0].accepted for g in groups[:40])
        assert groups[40][0].code == "bad_signature"
        assert groups[41][0].code == "bad_envelope"
        assert [a.accepted and a.batch for a in groups[42]] == [True] * 3
        assert groups[43][0].code == "nonce_used"
        assert [a.code for a in groups[44]] == ["batch_refused", "wrong_chain"]
        assert all(len(g) == 1 and g[0].accepted for g in groups[45:])
        assert chain.node.mempool_size() == 80 + 3
        chain.commit()
        stored = {t.tx_hash.hex() for t in chain.store.txs_at(1)}
        accepted = {a.tx_hash for g in groups for a in g if a.accepted}
        assert stored == accepted and len(stored) == 83
        # submit_many is the same admission, flattened: a replay of the whole call is refused.
        again = chain.node.submit_many(envelopes)
        assert not any(a.accepted for a in again)
        assert {a.code for a in again} >= {"nonce_used", "bad_signature", "bad_envelope"}
    finally:
        chain.node.verifier.close()
        chain.store.close()

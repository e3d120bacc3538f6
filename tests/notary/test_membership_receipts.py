"""Receipts after membership changes: the verifier replays the governance history from genesis.

A 4-member cluster-mode chain (weights 1, quorum 3; blocks are final when 3 members sign).  A
fifth member is admitted, then an original one removed, then a document is anchored in a block
signed by two original members and the newcomer: its receipt must verify with only the genesis
file, and no history the receipt merely asserts may make a forged block pass.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zhijin.chain.block import BlockHeader
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.crypto import KeyPair
from zhijin.chain.governance import approve, governance_args, make_proposal
from zhijin.chain.merkle import inclusion_proof_in, leaf_hash, merkle_root
from zhijin.notary.receipt import build_receipt, verify_receipt

from .helpers import CONTENT, DIGEST, HOUR_MS, OLD_DIGEST, Consortium, consortium_chain

REPLAY = "membership history replays from genesis"
SIGNED = "block signed by consortium members"


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[Consortium]:
    with consortium_chain(tmp_path) as built:
        yield built


def failed(report: Any) -> set[str]:
    return {c.name for c in report.checks if not c.ok}


def test_receipt_after_an_admission_and_a_removal_verifies(consortium: Consortium) -> None:
    chain = consortium.chain
    receipt = build_receipt(chain.store, DIGEST)
    assert receipt["version"] == 2
    assert [e["block"]["header"]["height"] for e in receipt["membership"]] == consortium.changes
    signers = {s["signer"] for s in receipt["block"]["signatures"]}
    assert consortium.newcomer.did in signers and consortium.leaving.did not in signers
    report = verify_receipt(receipt, chain.genesis, document=CONTENT)
    assert report.ok, failed(report)
    replay = next(c for c in report.checks if c.name == REPLAY)
    assert "4 members, quorum weight 3" in replay.detail


def test_genesis_members_alone_do_not_accept_that_block(consortium: Consortium) -> None:
    receipt = build_receipt(consortium.chain.store, DIGEST)
    receipt["membership"] = []  # a verifier that trusted genesis only
    assert SIGNED in failed(verify_receipt(receipt, consortium.chain.genesis))
    receipt["version"] = 1
    del receipt["membership"]
    assert SIGNED in failed(verify_receipt(receipt, consortium.chain.genesis))


def test_receipts_from_before_the_changes_still_verify(consortium: Consortium) -> None:
    chain = consortium.chain
    receipt = build_receipt(chain.store, OLD_DIGEST)
    assert receipt["membership"] == []
    assert verify_receipt(receipt, chain.genesis).ok
    legacy = {k: v for k, v in receipt.items() if k != "membership"} | {"version": 1}
    report = verify_receipt(legacy, chain.genesis)
    assert report.ok, failed(report)


def test_a_history_missing_a_change_is_refused(consortium: Consortium) -> None:
    genesis = consortium.chain.genesis
    receipt = build_receipt(consortium.chain.store, DIGEST)
    forged = copy.deepcopy(receipt)
    del forged["membership"][0]  # the newcomer, who signed the removal block, never admitted
    report = verify_receipt(forged, genesis)
    assert REPLAY in failed(report)
    assert "not a member" in next(c.detail for c in report.checks if c.name == REPLAY)
    forged = copy.deepcopy(receipt)
    forged["membership"].reverse()
    assert REPLAY in failed(verify_receipt(forged, genesis))


def test_a_history_cut_short_is_judged_by_the_older_set_it_proves(
    consortium: Consortium,
) -> None:
    """The documented limit: a receipt cannot prove its history is complete, so leaving out
    the latest change makes the verifier judge by the set before it (5 members here).  That
    set is still one the chain really had: a forgery would need a quorum of it."""
    receipt = build_receipt(consortium.chain.store, DIGEST)
    del receipt["membership"][1]
    report = verify_receipt(receipt, consortium.chain.genesis)
    assert report.ok, failed(report)
    replay = next(c for c in report.checks if c.name == REPLAY)
    assert "5 members, quorum weight 3" in replay.detail


def _forged_admission(consortium: Consortium, attacker: list[KeyPair]) -> dict[str, Any]:
    """A self-consistent governance block (proofs and all) admitting the attackers, signed by
    whoever the forger controls: the block's roots and proofs are right, only authority lacks."""
    genesis = consortium.chain.genesis
    real = build_receipt(consortium.chain.store, DIGEST)["membership"][0]
    changes = []
    bodies = []
    for index, key in enumerate(attacker):
        proposal = make_proposal(
            chain_id=genesis.chain_id,
            action="add_member",
            params={"did": key.did, "name": f"Shadow {index}", "role": "bank", "weight": 1},
            proposal_id=f"forged-admission-{index}",
            valid_until_ms=real["block"]["header"]["time_ms"] + HOUR_MS,
        )
        args = governance_args(proposal, [approve(k, proposal) for k in attacker])
        bodies.append(
            {
                "chain_id": genesis.chain_id,
                "sender": key.did,
                "nonce": index + 1,
                "contract": "governance",
                "method": "add_member",
                "args": args,
                "valid_until": real["block"]["header"]["time_ms"] + HOUR_MS,
            }
        )
    results = [
        {
            "tx_hash": sha256(canonical(body)).hex(),
            "status": "ok",
            "return": {
                "proposal_id": body["args"]["proposal"]["proposal_id"],
                "action": "add_member",
                "members": 5 + i,
                "total_weight": 5 + i,
                "quorum_weight": 3,
            },
            "events": [],
        }
        for i, body in enumerate(bodies)
    ]
    leaves = [leaf_hash(sha256(canonical(b))) for b in bodies]
    result_leaves = [leaf_hash(sha256(canonical(r))) for r in [*results, {"end": []}]]
    header = BlockHeader.from_json(
        {
            **real["block"]["header"],
            "tx_count": len(bodies),
            "tx_root": merkle_root(leaves).hex(),
            "results_root": merkle_root(result_leaves).hex(),
        }
    )
    for i, (body, result) in enumerate(zip(bodies, results, strict=True)):
        changes.append(
            {
                "body": body,
                "result": result,
                "tx_proof": {
                    "leaf_index": i,
                    "tree_size": len(leaves),
                    "proof": [p.hex() for p in inclusion_proof_in(leaves, i)],
                },
                "result_proof": {
                    "leaf_index": i,
                    "tree_size": len(result_leaves),
                    "proof": [p.hex() for p in inclusion_proof_in(result_leaves, i)],
                },
            }
        )
    signatures = [{"signer": k.did, "signature": k.sign(header.encoded()).hex()} for k in attacker]
    return {"block": {"header": header.to_json(), "signatures": signatures}, "txs": changes}


def test_a_forged_admission_is_refused(consortium: Consortium) -> None:
    """Outsiders who fabricate a governance block admitting themselves get nowhere: neither
    their block signatures nor their approvals come from the members in force."""
    genesis = consortium.chain.genesis
    attackers = [KeyPair.generate() for _ in range(3)]
    forged_entry = _forged_admission(consortium, attackers)
    receipt = build_receipt(consortium.chain.store, DIGEST)
    forged = copy.deepcopy(receipt)
    forged["membership"] = [forged_entry]
    report = verify_receipt(forged, genesis)
    assert REPLAY in failed(report)
    assert "not signed by the members in force" in next(
        c.detail for c in report.checks if c.name == REPLAY
    )
    # Even with one real member's block signature bought, approvals below quorum fail.
    bought = consortium.chain.members[3]
    entry = copy.deepcopy(forged_entry)
    header = BlockHeader.from_json(entry["block"]["header"])
    entry["block"]["signatures"] = [
        {"signer": k.did, "signature": k.sign(header.encoded()).hex()}
        for k in consortium.chain.members[:3]
    ]
    forged["membership"] = [entry]
    detail = next(c.detail for c in verify_receipt(forged, genesis).checks if c.name == REPLAY)
    assert "approver_not_member" in detail
    assert bought.did != consortium.leaving.did


@pytest.mark.parametrize(
    "path",
    [
        (0, "txs", 0, "body", "args", "approvals"),
        (0, "txs", 0, "result", "status"),
        (1, "block", "signatures"),
        (1, "block", "header", "time_ms"),
        (1, "txs", 0, "result_proof", "proof"),
        (0, "txs"),
    ],
    ids=lambda p: ".".join(map(str, p)),
)
def test_a_tampered_history_entry_is_refused(consortium: Consortium, path: tuple[Any, ...]) -> None:
    receipt = build_receipt(consortium.chain.store, DIGEST)
    target: Any = receipt["membership"]
    for part in path[:-1]:
        target = target[part]
    last = path[-1]
    value = target[last]
    if last == "approvals":
        target[last] = value[:1]  # one approval: below the quorum, and another tx hash
    elif last == "status":
        target[last] = "failed"
    elif last == "time_ms":
        target[last] = value + 1
    else:
        target[last] = []
    assert not verify_receipt(receipt, consortium.chain.genesis).ok

"""Cluster governance and peer life cycle: a member joins by a quorum-approved tx and its votes
count; refused proposals change nothing; a restarted peer rebuilds finality from the vote
stream; query tables on every peer follow the final chain.  Bounded, and every process started
here is stopped by the fixtures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.cluster.conftest import NetworkFactory
from tests.cluster.helpers import (
    anchor_envelope,
    chain_id,
    document_hash,
    member_key,
    peer_store,
    statuses,
    submit,
    verify_peer,
    wait_converged,
    wait_until,
)
from zhijin.chain.crypto import KeyPair
from zhijin.chain.governance import Approval, approve, governance_args, make_proposal
from zhijin.chain.tx import make_body, sign_tx
from zhijin.cli import app
from zhijin.node.cluster import LocalNetwork

pytestmark = pytest.mark.slow


def _governance_tx(
    network: LocalNetwork, action: str, params: dict[str, Any], approvers: list[KeyPair]
) -> dict[str, Any]:
    proposal = make_proposal(
        chain_id=chain_id(network),
        action=action,
        params=params,
        proposal_id=f"p-{time.time_ns()}",
        valid_until_ms=int(time.time() * 1000) + 600_000,
    )
    approvals = [approve(k, proposal) for k in approvers]
    return _envelope(network, proposal, approvals)


def _envelope(network: LocalNetwork, proposal: Any, approvals: list[Approval]) -> dict[str, Any]:
    submitter = KeyPair.generate()
    body = make_body(
        chain_id=chain_id(network),
        sender=submitter.did,
        nonce=time.time_ns() // 1000,
        contract="governance",
        method=proposal.action,
        args=governance_args(proposal, approvals),
        valid_until=int(time.time() * 1000) + 120_000,
    )
    return sign_tx(submitter, body)


def _refused(network: LocalNetwork, envelope: dict[str, Any], code: str) -> None:
    response = submit(network.urls[0], envelope, wait=True)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "failed" and response.json()["code"] == code


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["cluster", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_member_joins_by_governance_and_its_votes_count(
    make_network: NetworkFactory, tmp_path: Path
) -> None:
    network = make_network(3)  # weights 1, quorum 2
    members = [member_key(network, i) for i in range(3)]
    newcomer_index, newcomer = network.add_peer()
    params = {"did": newcomer.did, "name": "Coastal Trust", "role": "bank", "weight": 1}

    # Refused: too little weight, a forged approval, a non-member approver.  Nothing changes.
    _refused(
        network,
        _governance_tx(network, "add_member", params, members[:1]),
        "approval_below_quorum",
    )
    outsider = KeyPair.generate()
    _refused(
        network,
        _governance_tx(network, "add_member", params, [members[0], outsider]),
        "approver_not_member",
    )
    proposal = make_proposal(
        chain_id=chain_id(network),
        action="add_member",
        params=params,
        proposal_id="p-forged-1",
        valid_until_ms=int(time.time() * 1000) + 600_000,
    )
    forged = Approval(members[1].did, outsider.sign(proposal.signed_bytes()))
    _refused(
        network,
        _envelope(network, proposal, [approve(members[0], proposal), forged]),
        "bad_approval_signature",
    )
    assert {r["members"] for r in statuses(network, [0, 1, 2])} == {3}

    # The operator flow: propose (raising the quorum to 3 of 4), two members approve, submit.
    genesis = Path(network.root / "peer0" / "genesis.json")
    document = tmp_path / "proposal.json"
    _cli(
        "propose-member",
        *("--genesis", str(genesis), "--out", str(document), "--did", newcomer.did),
        *("--name", "Coastal Trust", "--role", "bank", "--weight", "1", "--quorum-weight", "3"),
    )
    for index in (0, 1):
        config = json.loads(Path(network.layout["peers"][index]["config"]).read_text())
        _cli("approve", str(document), "--key", config["member_key"])
    output = _cli("submit", str(document), "--key", config["member_key"], "--peer", network.urls[1])
    admitted_at = json.loads(output)["height"]

    def all_see_four() -> list[dict[str, Any]] | None:
        rows = statuses(network, [0, 1, 2])
        return rows if all(r.get("members") == 4 for r in rows) else None

    rows = wait_until(all_see_four, what="every peer to see 4 members")
    assert {r["quorum_weight"] for r in rows} == {3}

    # The new member's peer starts from genesis, catches up, and votes.
    network.start_peer(newcomer_index)
    log_size = rows[0]["log_size"]
    wait_converged(network, log_size=log_size)
    # One original peer stops: 2 originals + the newcomer make the quorum of 3.
    network.stop_peer(2)
    user = KeyPair.generate()
    response = submit(
        network.urls[newcomer_index],
        anchor_envelope(network, user, 1, document_hash("join", 1)),
        wait=True,
    )
    assert response.json()["status"] == "committed", response.text
    height = response.json()["height"]
    alive = [0, 1, newcomer_index]
    final = wait_converged(network, log_size=log_size + 1, indices=alive)
    assert final[0]["final_height"] >= height
    store, _ = peer_store(network, 0)
    try:
        after, at = store.get_block(height), store.get_block(admitted_at)
        assert after is not None and at is not None
        signers_after = {s["signer"] for s in after.signatures}
        signers_at = {s["signer"] for s in at.signatures}
    finally:
        store.close()
    assert newcomer.did in signers_after and members[2].did not in signers_after
    assert newcomer.did not in signers_at, "a member's votes count from the block after"
    for index in (0, newcomer_index):
        report = verify_peer(network, index)
        assert report.ok, report.reason


def _anchored(url: str) -> set[str]:
    response = httpx.get(f"{url}/api/v1/notary/anchors", params={"limit": 500}, timeout=10)
    assert response.status_code == 200, response.text
    return {row["hash"] for row in response.json()["anchors"]}


def test_restart_rebuilds_finality_from_the_vote_stream(make_network: NetworkFactory) -> None:
    """Peer 2 commits a block it cannot finalise alone, dies; peer 0's vote for it is published
    while peer 2 is down; restarted, peer 2 reads it back from the stream: the block is final,
    and only then do its query tables show the block's anchor."""
    network = make_network(3, start=False)
    network.start_nats()
    network.start_peer(0)
    network.start_peer(2)
    user = KeyPair.generate()
    first, second = document_hash("vote", 1), document_hash("vote", 2)
    assert submit(network.urls[0], anchor_envelope(network, user, 1, first), wait=True).is_success
    wait_converged(network, log_size=1, indices=[0, 2])
    wait_until(lambda: first in _anchored(network.urls[2]), what="peer 2's anchor listing")

    network.stop_peer(0)
    response = submit(network.urls[2], anchor_envelope(network, user, 2, second), wait=True)
    assert response.json()["status"] == "committed", response.text
    height = response.json()["height"]
    time.sleep(1.0)
    (row,) = statuses(network, [2])
    assert row["height"] == height and row["final_height"] == height - 1
    assert second not in _anchored(network.urls[2]), "a block that is not final is not projected"
    network.kill_peer(2)

    network.start_peer(0)  # applies the block; peer 2's vote from the stream makes it final
    wait_until(
        lambda: statuses(network, [0])[0].get("final_height") == height, what="final on peer 0"
    )
    time.sleep(1.5)  # peer 0 stops re-voting once final: its vote now lives only in the stream
    network.start_peer(2)
    answer = httpx.get(
        f"{network.urls[2]}/api/v1/cluster/final/{height}", params={"timeout_s": 20}, timeout=30
    ).json()
    assert answer["final"] is True and answer["final_height"] >= height
    wait_until(lambda: second in _anchored(network.urls[2]), what="the anchor to be projected")
    store, _ = peer_store(network, 2)
    try:
        block = store.get_block(height)
        assert block is not None and len(block.signatures) == 2
    finally:
        store.close()


def test_every_peer_lists_anchors_submitted_through_another(make_network: NetworkFactory) -> None:
    network = make_network(3)
    user = KeyPair.generate()
    hashes = {document_hash("list", n) for n in range(1, 6)}
    for nonce, document in enumerate(sorted(hashes), start=1):
        envelope = anchor_envelope(network, user, nonce, document)
        assert submit(network.urls[0], envelope).status_code == 202
    wait_converged(network, log_size=len(hashes))
    for url in network.urls[1:]:
        wait_until(lambda u=url: hashes <= _anchored(u), what=f"anchors listed by {url}")
    rows = statuses(network)
    assert all(r["projected_height"] <= r["final_height"] for r in rows)

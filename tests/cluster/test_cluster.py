"""A 3-member network on a 3-server JetStream cluster: the peers cut the same blocks, agree on
every hash and state root, finalise by signatures, and stay sound under hostile input."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import nats
import pytest

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
from zhijin.chain.block import BlockHeader, Signature
from zhijin.chain.codec import canonical
from zhijin.chain.crypto import KeyPair
from zhijin.chain.ordering.jetstream import BlockVote, CutMarker, StreamNames
from zhijin.node.cluster import LocalNetwork


def _publish(network: LocalNetwork, messages: list[tuple[str, bytes, str | None]]) -> list[Any]:
    """Publish raw messages to the network's streams, as a (possibly hostile) gateway would."""

    async def run() -> list[Any]:
        nc = await nats.connect(servers=network.nats_urls or _config_urls(network))
        try:
            js = nc.jetstream(timeout=5)
            acks = []
            for subject, data, msg_id in messages:
                headers = {"Nats-Msg-Id": msg_id} if msg_id else None
                acks.append(await js.publish(subject, data, headers=headers))
            return acks
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(run(), 30))


def _config_urls(network: LocalNetwork) -> list[str]:
    import json
    from pathlib import Path

    config = json.loads(Path(network.layout["peers"][0]["config"]).read_text())
    return list(config["nats_urls"])


def test_peers_cut_the_same_blocks_and_finalise(make_network: NetworkFactory) -> None:
    network = make_network(3)
    users = [KeyPair.generate() for _ in range(6)]
    per_user = 25
    errors: list[str] = []

    def client(index: int) -> None:
        key = users[index]
        for nonce in range(per_user):
            url = network.urls[(index + nonce) % 3]  # every peer's gateway takes txs
            response = submit(
                url, anchor_envelope(network, key, nonce, document_hash(f"u{index}", nonce))
            )
            if response.status_code != 202:
                errors.append(response.text)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    rows = wait_converged(network, log_size=len(users) * per_user)
    assert rows[0]["height"] >= 1
    assert {r["rejected_votes"] for r in rows} == {0}
    for index in range(3):
        report = verify_peer(network, index)
        assert report.ok, report.reason
        assert report.not_final == []
    # Every block holds signatures of a quorum, and the proposer is the marker's signer.
    store, genesis = peer_store(network, 1)
    try:
        block = store.get_block(rows[0]["height"])
        assert block is not None
        assert len(block.signatures) >= genesis.quorum_weight
        assert block.header_json()["proposer"] in genesis.member_weights()
    finally:
        store.close()


def test_duplicates_and_reordering_commit_each_tx_once(make_network: NetworkFactory) -> None:
    network = make_network(3)
    names = StreamNames(chain_id(network))
    key = KeyPair.generate()
    first = anchor_envelope(network, key, 7, document_hash("dup", 1))
    rival = anchor_envelope(network, key, 7, document_hash("dup", 2))  # same (sender, nonce)
    later = [anchor_envelope(network, key, n, document_hash("ord", n)) for n in (5, 3, 9, 1)]
    data = canonical(first)
    messages: list[tuple[str, bytes, str | None]] = [
        (names.tx_subject, data, "tx:a"),
        (names.tx_subject, data, "tx:a"),  # inside JetStream's duplicate window: dropped there
        (names.tx_subject, data, "tx:b"),  # past the window (another id): dropped by the peers
        (names.tx_subject, canonical(rival), None),  # a different tx reusing the nonce
        (names.tx_subject, b'{"not": "an envelope"}', None),
        *[(names.tx_subject, canonical(e), None) for e in later],  # nonces out of order
    ]
    acks = _publish(network, messages)
    assert acks[1].duplicate and not acks[0].duplicate
    # Through the gateways too: the same envelope to two peers, and a resubmission.
    for url in network.urls[:2]:
        assert submit(url, later[0]).status_code in (202, 400)
    rows = wait_converged(network, log_size=5)
    assert {r["log_size"] for r in rows} == {5}
    store, _ = peer_store(network, 2)
    try:
        committed = [tx for h in range(1, rows[0]["height"] + 1) for tx in store.txs_at(h)]
    finally:
        store.close()
    assert sorted(tx.nonce for tx in committed) == [1, 3, 5, 7, 9]
    assert [tx.tx_hash.hex() for tx in committed if tx.nonce == 7] == [_hash(first)], (
        "the first copy in stream order wins"
    )
    assert all(verify_peer(network, i).ok for i in range(3))


def _hash(envelope: dict[str, Any]) -> str:
    from zhijin.chain.codec import sha256

    return sha256(canonical(envelope["body"])).hex()


def test_forged_votes_and_markers_never_count(make_network: NetworkFactory) -> None:
    """One of three members runs: its blocks commit but cannot be final (quorum is 2), and
    votes from non-members, bad signatures or over another header never make them final."""
    network = make_network(3, start=False)
    network.start_nats()
    network.start_peer(0)
    names = StreamNames(chain_id(network))
    user = KeyPair.generate()
    assert (
        submit(
            network.urls[0], anchor_envelope(network, user, 1, document_hash("f", 1))
        ).status_code
        == 202
    )
    wait_until(lambda: statuses(network, [0])[0]["height"] == 1, what="block 1")
    store, genesis = peer_store(network, 0)
    try:
        block = store.get_block(1)
        assert block is not None
        header = block.header
    finally:
        store.close()
    outsider = KeyPair.generate()
    member = member_key(network, 1)
    other_header = BlockHeader.from_json({**block.header_json(), "time_ms": 1}).encoded()
    votes = [
        BlockVote(1, header, Signature(outsider.did, outsider.sign(header))),  # non-member
        BlockVote(1, header, Signature(member.did, outsider.sign(header))),  # forged signature
        BlockVote(1, other_header, Signature(member.did, member.sign(other_header))),  # other hash
    ]
    forged_marker = CutMarker.make(
        outsider, chain_id=chain_id(network), height=2, time_ms=1, first_seq=1
    )
    _publish(
        network,
        [(names.sig_subject, v.encode(), None) for v in votes]
        + [
            (
                names.tx_subject,
                canonical(anchor_envelope(network, user, 2, document_hash("f", 2))),
                None,
            ),
            (names.cut_subject, forged_marker.encode(), None),
        ],
    )
    wait_until(lambda: statuses(network, [0])[0]["rejected_votes"] >= 2, what="rejected votes")
    row = wait_until(lambda: (r := statuses(network, [0])[0])["log_size"] == 2 and r, what="tx 2")
    assert row["final_height"] == 0, "nothing is final without a quorum of real members"
    assert row["markers_ignored"] >= 1
    report = verify_peer(network, 0)
    assert report.ok and report.not_final == list(range(1, row["height"] + 1))
    # The real member's vote over the real header makes block 1 final.
    genuine = BlockVote(1, header, Signature(member.did, member.sign(header)))
    _publish(network, [(names.sig_subject, genuine.encode(), None)])
    wait_until(lambda: statuses(network, [0])[0]["final_height"] >= 1, what="block 1 final")
    assert genesis.quorum_weight == 2


@pytest.mark.slow
def test_cluster_cli_up_status_down(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from zhijin.cli import app

    runner = CliRunner()
    directory = tmp_path / "net"
    result = runner.invoke(
        app, ["cluster", "up", "--dir", str(directory), "--members", "3", "--nats", "3", "--detach"]
    )
    try:
        assert result.exit_code == 0, result.output
        assert "peer 2" in result.output
        status = runner.invoke(app, ["cluster", "status", "--dir", str(directory)])
        assert status.exit_code == 0 and status.output.count("http://127.0.0.1") == 3
        assert "down" not in status.output
    finally:
        down = runner.invoke(app, ["cluster", "down", "--dir", str(directory)])
        assert down.exit_code == 0 and "stopped 6" in down.output

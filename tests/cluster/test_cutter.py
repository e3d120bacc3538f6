"""The deterministic cutter without NATS: the same stream gives every peer the same blocks,
however the messages are batched on their way in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.chain.helpers import GENESIS_TIME_MS, Clock, make_genesis
from zhijin.chain.codec import canonical
from zhijin.chain.crypto import KeyPair
from zhijin.chain.ordering.jetstream import (
    ClusterNode,
    ClusterStore,
    CutMarker,
    StreamCursor,
    StreamCutter,
    StreamMessage,
)
from zhijin.chain.tx import make_body, sign_tx
from zhijin.node.modules import default_registry


def _peer(path: Path, members: list[KeyPair], index: int) -> tuple[ClusterNode, StreamCutter]:
    genesis = replace(make_genesis(members), ordering="jetstream")
    store = ClusterStore(f"sqlite:///{path}")
    node = ClusterNode(
        store=store, genesis=genesis, registry=default_registry(), key=members[index], clock=Clock()
    )
    return node, StreamCutter(node, store, StreamCursor(1), chain_id=genesis.chain_id)


def _stream(members: list[KeyPair]) -> list[StreamMessage]:
    user = KeyPair.generate()
    messages: list[StreamMessage] = []

    def tx(nonce: int, document: int, **over: int) -> bytes:
        body = make_body(
            chain_id="zhijin-test",
            sender=user.did,
            nonce=nonce,
            contract="notary",
            method="anchor",
            args={"hash": f"{document:064x}"},
            valid_until=over.get("valid_until", GENESIS_TIME_MS + 600_000),
        )
        return canonical(sign_tx(user, body))

    def marker(key: KeyPair, height: int, time_ms: int) -> bytes:
        return CutMarker.make(
            key, chain_id="zhijin-test", height=height, time_ms=time_ms, first_seq=0
        ).encode()

    outsider = KeyPair.generate()
    items = [
        ("tx", tx(3, 1)),
        ("tx", tx(1, 2)),
        ("tx", tx(3, 9)),  # reuses nonce 3: skipped by everyone
        ("tx", b"not json"),
        ("cut", marker(outsider, 1, GENESIS_TIME_MS + 10)),  # not a member: ignored
        ("cut", marker(members[1], 1, GENESIS_TIME_MS + 20)),  # wins height 1
        ("cut", marker(members[0], 1, GENESIS_TIME_MS + 30)),  # late for height 1: ignored
        ("tx", tx(2, 3)),
        ("tx", tx(5, 4, valid_until=GENESIS_TIME_MS + 10**9)),  # too far ahead at the cut
        ("cut", marker(members[2], 3, GENESIS_TIME_MS + 40)),  # wrong height: ignored
        ("cut", marker(members[2], 2, GENESIS_TIME_MS + 5)),  # older time: block time adjusts
        ("tx", tx(1, 5)),  # a committed nonce
        ("cut", marker(members[0], 3, GENESIS_TIME_MS + 50)),  # empty segment: cuts nothing
    ]
    for seq, (kind, data) in enumerate(items, start=1):
        messages.append(StreamMessage(seq, kind, data, len(items) - seq))
    return messages


def _feed(
    node: ClusterNode, cutter: StreamCutter, messages: list[StreamMessage], step: int
) -> None:
    weights = node.genesis.member_weights()
    for start in range(0, len(messages), step):
        run: list[StreamMessage] = []
        for message in messages[start : start + step]:
            if message.kind == "tx":
                run.append(message)
                continue
            if run:
                cutter.add_txs(run)
                run = []
            cutter.on_marker(message, weights)
        if run:
            cutter.add_txs(run)


def test_same_stream_same_blocks_whatever_the_batching(tmp_path: Path) -> None:
    members = [KeyPair.generate() for _ in range(3)]
    messages = _stream(members)
    heads = []
    for index, step in enumerate((1, 3, 100)):
        node, cutter = _peer(tmp_path / f"peer{index}.db", members, index)
        _feed(node, cutter, messages, step)
        heads.append(node.head)
        assert cutter.markers_ignored == 3  # the last marker wins but cuts nothing
        blocks = [node.store.get_block(h) for h in (1, 2)]
        assert [b.header_json()["proposer"] for b in blocks if b] == [
            members[1].did,
            members[2].did,
        ]
        assert [len(node.store.txs_at(h)) for h in (1, 2)] == [2, 1]
        assert node.store.cursor_at(2) == StreamCursor(12)
    assert len({(h.height, h.block_hash, h.state_root) for h in heads}) == 1
    assert heads[0].height == 2
    assert heads[0].time_ms == GENESIS_TIME_MS + 21  # max(marker time, previous + 1)

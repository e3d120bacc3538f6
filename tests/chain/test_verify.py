"""`chain verify` re-derives everything; a single flipped byte anywhere names its height."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, update

from zhijin.chain import store as tables
from zhijin.chain.tx import sign_batch
from zhijin.chain.verify import verify_chain
from zhijin.node.modules import default_registry

from .helpers import ChainHarness, open_chain

BLOCKS = 4


@pytest.fixture
def chain(db_url: str) -> ChainHarness:
    chain = open_chain(db_url, members=3)
    for height in range(1, BLOCKS + 1):
        for n in range(3):
            key = chain.users[n]
            chain.submit(
                chain.envelope(key, "notary", "anchor", {"hash": _doc(height, n), "title": "t"})
            )
        # One failing tx per block: failures must verify too.
        chain.submit(chain.envelope(chain.users[0], "notary", "anchor", {"hash": "bad"}))
        if height == 2:
            bodies = [
                chain.body(chain.users[1], "notary", "anchor", {"hash": _doc(99, i)})
                for i in range(2)
            ]
            chain.submit(sign_batch(chain.members[1], bodies))
        chain.commit()
    yield chain
    chain.store.close()


def _doc(height: int, n: int) -> str:
    return hashlib.sha256(f"{height}/{n}".encode()).hexdigest()


def _verify(chain: ChainHarness):
    return verify_chain(chain.store, chain.genesis, default_registry())


def _flip(value: bytes, at: int = 10) -> bytes:
    data = bytearray(value)
    data[at] ^= 0x01
    return bytes(data)


def _tamper(chain: ChainHarness, table, where, column: str, at: int = 10) -> None:
    with chain.store.engine.begin() as conn:
        value = conn.execute(select(table.c[column]).where(where)).scalar_one()
        conn.execute(update(table).where(where).values({column: _flip(value, at)}))


def test_an_untouched_chain_verifies(chain: ChainHarness) -> None:
    report = _verify(chain)
    assert report.ok, report.reason
    assert report.blocks == BLOCKS + 1
    assert report.txs == BLOCKS * 4 + 2


def test_flipped_tx_body_byte_names_its_height(chain: ChainHarness) -> None:
    tx = chain.store.txs_at(3)[1]
    _tamper(chain, tables.txs, tables.txs.c.hash == tx.tx_hash, "body", at=40)
    report = _verify(chain)
    assert not report.ok and report.bad_height == 3


def test_flipped_tx_signature_names_its_height(chain: ChainHarness) -> None:
    tx = chain.store.txs_at(2)[0]
    _tamper(chain, tables.txs, tables.txs.c.hash == tx.tx_hash, "signature", at=3)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 2)
    assert "signature" in report.reason


def test_flipped_result_names_its_height(chain: ChainHarness) -> None:
    tx = chain.store.txs_at(4)[0]
    _tamper(chain, tables.txs, tables.txs.c.hash == tx.tx_hash, "result", at=12)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 4)


def test_flipped_header_byte_names_its_height(chain: ChainHarness) -> None:
    _tamper(chain, tables.blocks, tables.blocks.c.height == 2, "header", at=30)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 2)


def test_flipped_state_history_row_names_its_height(chain: ChainHarness) -> None:
    key, _ = chain.store.state_rows_at(3)[0]
    where = (tables.state_history.c.key == key) & (tables.state_history.c.height == 3)
    _tamper(chain, tables.state_history, where, "value", at=20)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 3)


def test_flipped_current_state_row_names_the_height_that_wrote_it(chain: ChainHarness) -> None:
    key, _ = chain.store.state_rows_at(2)[0]
    _tamper(chain, tables.state_current, tables.state_current.c.key == key, "value", at=20)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 2)


def test_flipped_log_node_names_its_height(chain: ChainHarness) -> None:
    # Leaf 5 (the second tx of block 2) is written by block 2.
    where = (tables.log_nodes.c.level == 0) & (tables.log_nodes.c.idx == 5)
    _tamper(chain, tables.log_nodes, where, "hash", at=0)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 2)


def test_flipped_batch_signature_names_its_height(chain: ChainHarness) -> None:
    batch_hash = next(t.batch_hash for t in chain.store.txs_at(2) if t.batch_hash)
    _tamper(chain, tables.batches, tables.batches.c.hash == batch_hash, "signature", at=1)
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 2)


def test_deleted_block_is_named(chain: ChainHarness) -> None:
    with chain.store.engine.begin() as conn:
        conn.execute(tables.blocks.delete().where(tables.blocks.c.height == 3))
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 3)


def test_a_block_signed_by_a_non_member_is_refused(chain: ChainHarness) -> None:
    import json

    from zhijin.chain.block import BlockHeader, sign_header
    from zhijin.chain.crypto import KeyPair

    block = chain.store.get_block(1)
    header = BlockHeader.from_json(block.header_json())
    forged = [sign_header(KeyPair.generate(), header).to_json()]
    with chain.store.engine.begin() as conn:
        conn.execute(
            update(tables.blocks)
            .where(tables.blocks.c.height == 1)
            .values(signatures=json.dumps(forged))
        )
    report = _verify(chain)
    assert (report.ok, report.bad_height) == (False, 1)
    assert "not a member" in report.reason

"""Notary receipts: everything needed to prove an anchoring offline with only the genesis file.

A receipt holds the transaction envelope, its recorded result, the block header with the
members' signatures, Merkle proofs of the tx in the block's tx root and of its result in the
results root, an inclusion proof of the tx in the global log tree, and the signed tree head
that the proof leads to, plus the anchored `record` for reading (the verifier holds each of its
fields to the proven result: zhijin/notary/verify.py).

Version 2 adds the **membership history** the block's signatures are judged by: for every block
below its own that executed a governance change, that block's header and signatures and each
successful governance tx in it with its Merkle proofs (replayed by zhijin/notary/replay.py).
Version 1 receipts (no history) are judged by the genesis members.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zhijin.chain.block import result_leaves
from zhijin.chain.codec import decode
from zhijin.chain.errors import NotFound
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.merkle import LogTree, inclusion_proof_in, leaf_hash
from zhijin.chain.store import ChainStore
from zhijin.notary.contract import record_key
from zhijin.notary.verify import ReceiptCheck, ReceiptReport, verify_receipt

__all__ = [
    "RECEIPT_VERSION",
    "ReceiptCheck",
    "ReceiptReport",
    "build_receipt",
    "build_tx_receipt",
    "verify_receipt",
]

RECEIPT_VERSION = 2


def build_receipt(store: ChainStore, document_hash: str) -> dict[str, Any]:
    """The receipt of the transaction that first anchored `document_hash`."""
    with store.read() as conn:
        record = store.state_get(conn, record_key(document_hash))
    if record is None:
        raise NotFound("not_anchored", f"no anchor for hash {document_hash}")
    return build_tx_receipt(store, bytes.fromhex(record["tx_hash"]), record=record)


def build_tx_receipt(
    store: ChainStore, tx_hash: bytes, *, record: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    tx = store.get_tx(tx_hash)
    if tx is None:
        raise NotFound("tx_not_found", f"no committed tx {tx_hash.hex()}")
    block = store.get_block(tx.height)
    head = store.tree_head(tx.height)
    if block is None or head is None:
        raise NotFound("block_not_found", f"block {tx.height} is missing")
    header = block.header_json()
    block_txs = store.txs_at(tx.height)
    results = [decode(t.result) for t in block_txs]
    results.append({"end_block_events": decode(block.end_block_events)})
    log_index = header["log_size"] - header["tx_count"] + tx.position
    log_proof = LogTree(store, head["tree_size"]).inclusion_proof(log_index, head["tree_size"])
    tx_leaves = [leaf_hash(t.tx_hash) for t in block_txs]
    return {
        "version": RECEIPT_VERSION,
        "chain_id": header["chain_id"],
        "membership": membership_history(store, tx.height),
        "record": dict(record) if record is not None else _recorded(decode(tx.result)),
        "tx": {
            "hash": tx.tx_hash.hex(),
            "envelope": tx.envelope(),
            "batch_hash": None if tx.batch_hash is None else tx.batch_hash.hex(),
            "result": decode(tx.result),
        },
        "block": {"header": header, "signatures": block.signatures},
        "tx_proof": _proof_json(
            tx.position, len(tx_leaves), inclusion_proof_in(tx_leaves, tx.position)
        ),
        "result_proof": _proof_json(
            tx.position, len(results), inclusion_proof_in(result_leaves(results), tx.position)
        ),
        "log_proof": _proof_json(log_index, head["tree_size"], log_proof),
        "tree_head": head,
    }


def membership_history(store: ChainStore, height: int) -> list[dict[str, Any]]:
    """Every governance change below block `height`, oldest first, with what proves it.

    One entry per block that wrote `governance/` state: its header and signatures, and each
    governance tx of that block that succeeded (body, result, proofs in the tx and results
    roots).  A verifier replays these from genesis to learn who judges block `height`.
    """
    heights = [h for h in MembershipHistory.load(store, up_to=height - 1).change_heights() if h > 0]
    entries: list[dict[str, Any]] = []
    for change_height in heights:
        block = store.get_block(change_height)
        if block is None:
            raise NotFound("block_not_found", f"governance block {change_height} is missing")
        block_txs = store.txs_at(change_height)
        results = [decode(t.result) for t in block_txs]
        results.append({"end_block_events": decode(block.end_block_events)})
        tx_leaves = [leaf_hash(t.tx_hash) for t in block_txs]
        result_tree = result_leaves(results)
        changes = []
        # `results` ends with the end-block leaf, which is no tx: zip stops before it.
        for stored, result in zip(block_txs, results, strict=False):
            body = decode(stored.body)
            if body["contract"] != "governance" or result.get("status") != "ok":
                continue
            position = stored.position
            changes.append(
                {
                    "body": body,
                    "result": result,
                    "tx_proof": _proof_json(
                        position, len(tx_leaves), inclusion_proof_in(tx_leaves, position)
                    ),
                    "result_proof": _proof_json(
                        position, len(results), inclusion_proof_in(result_tree, position)
                    ),
                }
            )
        entries.append(
            {
                "block": {"header": block.header_json(), "signatures": block.signatures},
                "txs": changes,
            }
        )
    return entries


def _proof_json(index: int, size: int, proof: list[bytes]) -> dict[str, Any]:
    return {"leaf_index": index, "tree_size": size, "proof": [p.hex() for p in proof]}


def _recorded(result: Mapping[str, Any]) -> dict[str, Any]:
    """The record a notary anchor's result says it wrote (empty for any other tx)."""
    value = result.get("return")
    record = value.get("record") if isinstance(value, Mapping) else None
    return dict(record) if isinstance(record, Mapping) else {}

"""Notary receipts: everything needed to prove an anchoring offline with only the genesis file.

A receipt holds the transaction envelope, its recorded result, the block header with the
members' signatures, Merkle proofs of the tx in the block's tx root and of its result in the
results root, an inclusion proof of the tx in the global log tree, and the signed tree head
that the proof leads to.  `verify_receipt` checks each link and reports every check by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.block import BlockHeader, Signature, TreeHead, result_leaves, valid_signatures
from zhijin.chain.codec import canonical, decode, sha256
from zhijin.chain.crypto import BadKey, public_key_from_did, verify
from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.chain.genesis import Genesis
from zhijin.chain.merkle import (
    LogTree,
    ProofError,
    inclusion_proof_in,
    leaf_hash,
    verify_inclusion,
)
from zhijin.chain.store import ChainStore
from zhijin.notary.contract import record_key

__all__ = ["RECEIPT_VERSION", "ReceiptCheck", "build_receipt", "verify_receipt"]

RECEIPT_VERSION = 1


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
        "record": dict(record) if record is not None else None,
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


def _proof_json(index: int, size: int, proof: list[bytes]) -> dict[str, Any]:
    return {"leaf_index": index, "tree_size": size, "proof": [p.hex() for p in proof]}


@dataclass(slots=True)
class ReceiptCheck:
    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class ReceiptReport:
    checks: list[ReceiptCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(ReceiptCheck(name, ok, detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def verify_receipt(
    receipt: Mapping[str, Any], genesis: Genesis, *, document: bytes | None = None
) -> ReceiptReport:
    """Check a receipt offline; the report names each check and why one failed."""
    report = ReceiptReport()
    try:
        _verify(receipt, genesis, document, report)
    except (KeyError, TypeError, ValueError, ZhijinError) as exc:
        report.add("receipt is well-formed", False, f"{type(exc).__name__}: {exc}")
    return report


def _verify(
    receipt: Mapping[str, Any], genesis: Genesis, document: bytes | None, report: ReceiptReport
) -> None:
    report.add("receipt version", receipt["version"] == RECEIPT_VERSION, str(receipt["version"]))
    report.add("chain id matches genesis", receipt["chain_id"] == genesis.chain_id)
    tx = receipt["tx"]
    body = tx["envelope"]["body"]
    body_bytes = canonical(body)
    tx_hash = sha256(body_bytes)
    report.add("tx hash is SHA-256 of the canonical body", tx_hash.hex() == tx["hash"])
    _check_tx_signature(tx, body_bytes, report)
    document_hash = body["args"].get("hash")
    report.add(
        "tx anchors a document",
        body["contract"] == "notary"
        and body["method"] == "anchor"
        and isinstance(document_hash, str),
    )
    record = receipt.get("record")
    if record is not None:
        report.add("record names this document", record.get("hash") == document_hash)
        report.add("record names this tx", record.get("tx_hash") == tx["hash"])
    header = BlockHeader.from_json(receipt["block"]["header"])
    header_hash = header.hash()
    _check_block(receipt, genesis, header, report)
    _check_merkle(receipt, header, tx_hash, tx["result"], report)
    _check_tree_head(receipt, genesis, header, header_hash, tx_hash, report)
    result = tx["result"]
    report.add("tx succeeded", result.get("status") == "ok", str(result.get("code") or ""))
    if document is not None:
        digest = sha256(document).hex()
        report.add("file hash matches the anchored hash", digest == document_hash, digest)


def _check_tx_signature(tx: Mapping[str, Any], body_bytes: bytes, report: ReceiptReport) -> None:
    envelope = tx["envelope"]
    if tx.get("batch_hash"):
        # A batch signature covers all of its bodies; the block signature vouches for this one.
        report.add("tx signature", True, "in a member batch: authenticated by the block signature")
        return
    try:
        public_key = public_key_from_did(envelope["signer"])
    except BadKey as exc:
        report.add("tx signature", False, exc.message)
        return
    good = verify(public_key, body_bytes, bytes.fromhex(envelope["signature"]))
    report.add("tx signature", good, envelope["signer"])


def _check_block(
    receipt: Mapping[str, Any], genesis: Genesis, header: BlockHeader, report: ReceiptReport
) -> None:
    signatures = [Signature.from_json(s) for s in receipt["block"]["signatures"]]
    weight, problems = valid_signatures(header.encoded(), signatures, genesis.member_weights())
    if genesis.ordering == "solo":
        enough = any(s.signer == genesis.orderer for s in signatures) and not problems
    else:
        enough = weight >= genesis.quorum_weight and not problems
    report.add(
        "block signed by consortium members", enough, "; ".join(problems) or f"weight {weight}"
    )
    report.add("block is on this chain", header.chain_id == genesis.chain_id)


def _check_merkle(
    receipt: Mapping[str, Any],
    header: BlockHeader,
    tx_hash: bytes,
    result: Mapping[str, Any],
    report: ReceiptReport,
) -> None:
    tx_proof = receipt["tx_proof"]
    report.add(
        "tx is in the block's tx root",
        _inclusion_ok(tx_proof, leaf_hash(tx_hash), header.tx_root)
        and tx_proof["tree_size"] == header.tx_count,
    )
    result_proof = receipt["result_proof"]
    result_leaf = leaf_hash(sha256(canonical(result)))
    report.add(
        "result is in the block's results root",
        _inclusion_ok(result_proof, result_leaf, header.results_root)
        and result_proof["leaf_index"] == tx_proof["leaf_index"],
    )


def _check_tree_head(
    receipt: Mapping[str, Any],
    genesis: Genesis,
    header: BlockHeader,
    header_hash: bytes,
    tx_hash: bytes,
    report: ReceiptReport,
) -> None:
    head = TreeHead.from_json(genesis.chain_id, receipt["tree_head"])
    weight, problems = valid_signatures(
        head.signed_bytes(), head.signatures, genesis.member_weights()
    )
    report.add("tree head signed by a member", weight > 0 and not problems, "; ".join(problems))
    report.add(
        "tree head commits to this block",
        head.block_hash == header_hash
        and head.root == header.log_root
        and head.tree_size == header.log_size,
    )
    log_proof = receipt["log_proof"]
    report.add(
        "tx is in the global log tree",
        _inclusion_ok(log_proof, leaf_hash(tx_hash), head.root)
        and log_proof["tree_size"] == head.tree_size,
    )


def _inclusion_ok(proof: Mapping[str, Any], leaf: bytes, root: bytes) -> bool:
    try:
        verify_inclusion(
            leaf_index=proof["leaf_index"],
            tree_size=proof["tree_size"],
            leaf_hash=leaf,
            proof=[bytes.fromhex(p) for p in proof["proof"]],
            root=root,
        )
    except ProofError:
        return False
    return True

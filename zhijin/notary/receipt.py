"""Notary receipts: everything needed to prove an anchoring offline with only the genesis file.

A receipt holds the transaction envelope, its recorded result, the block header with the
members' signatures, Merkle proofs of the tx in the block's tx root and of its result in the
results root, an inclusion proof of the tx in the global log tree, and the signed tree head
that the proof leads to.  `verify_receipt` checks each link and reports every check by name.

Version 2 adds the **membership history** the block's signatures are judged by.  Members and
the quorum change by governance transactions (zhijin/chain/governance.py), so the signers of a
block may be members the genesis file never heard of.  The receipt therefore carries, for every
block below its own that executed a governance change, that block's header and signatures and
each successful governance tx in it with its Merkle proofs.  The verifier never takes a member
list from the receipt: it starts from genesis and replays each change with the contract's own
pure rules (the approvals must verify and reach the quorum in force, the action must apply),
after checking that a quorum of the members in force *before* that block signed it and that the
tx and its `ok` result are in that block's roots.  Version 1 receipts (no history) are judged
by the genesis members, as before.
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
from zhijin.chain.governance import (
    ACTIONS,
    Approval,
    GovernanceError,
    Proposal,
    apply_action,
    approval_weight,
)
from zhijin.chain.membership import MemberSet, MembershipHistory, member_set_from_state
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

RECEIPT_VERSION = 2
RECEIPT_VERSIONS_READ = (1, 2)  # version 1: no membership history, genesis members judge
MEMBERSHIP_CHANGES_MAX = 10_000  # governance blocks one receipt may replay (bounded work)


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
    version = receipt["version"]
    report.add("receipt version", version in RECEIPT_VERSIONS_READ, str(version))
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
    # Version 1 receipts carry no history: the genesis members judge their block.
    history = receipt["membership"] if version >= 2 else []
    members = _replay_membership(history, genesis, header.height, report)
    _check_block(receipt, genesis, members, header, report)
    _check_merkle(receipt, header, tx_hash, tx["result"], report)
    _check_tree_head(receipt, genesis, members, header, header_hash, tx_hash, report)
    result = tx["result"]
    report.add("tx succeeded", result.get("status") == "ok", str(result.get("code") or ""))
    if document is not None:
        digest = sha256(document).hex()
        report.add("file hash matches the anchored hash", digest == document_hash, digest)


def genesis_member_set(genesis: Genesis) -> MemberSet:
    """The members and quorum block 0 writes: where every replay starts."""
    return member_set_from_state(dict(genesis.write_set()))


def _replay_membership(
    history: Any, genesis: Genesis, height: int, report: ReceiptReport
) -> MemberSet:
    """The member set that judges block `height`, replayed from genesis through `history`.

    Adds one check, "membership history replays from genesis"; on any failure it returns the
    genesis set, so the block check that follows cannot pass on a half-replayed history.
    """
    name = "membership history replays from genesis"
    members = genesis_member_set(genesis)
    if not isinstance(history, list) or len(history) > MEMBERSHIP_CHANGES_MAX:
        report.add(name, False, f"a list of at most {MEMBERSHIP_CHANGES_MAX} governance blocks")
        return members
    try:
        replayed = _replay(history, genesis, members, height)
    except _HistoryRefused as exc:
        report.add(name, False, str(exc))
        return members
    changes = sum(len(entry["txs"]) for entry in history)
    report.add(
        name,
        True,
        f"{changes} change(s) in {len(history)} block(s); {len(replayed.members)} members, "
        f"quorum weight {replayed.quorum_weight}",
    )
    return replayed


class _HistoryRefused(Exception):
    """A membership history entry that does not prove what it claims."""


def _replay(history: list[Any], genesis: Genesis, start: MemberSet, height: int) -> MemberSet:
    members = start
    solo_orderer = genesis.orderer if genesis.ordering == "solo" else None
    previous = 0
    used: set[str] = set()
    for entry in history:
        header = BlockHeader.from_json(entry["block"]["header"])
        where = f"governance block {header.height}"
        if header.chain_id != genesis.chain_id:
            raise _HistoryRefused(f"{where} is on another chain")
        if not previous < header.height < height:
            raise _HistoryRefused(f"{where} is out of order (after {previous}, before {height})")
        previous = header.height
        signatures = [Signature.from_json(s) for s in entry["block"]["signatures"]]
        signed, detail = _block_signed(header, signatures, members, genesis)
        if not signed:
            raise _HistoryRefused(f"{where} is not signed by the members in force: {detail}")
        txs = entry["txs"]
        if not isinstance(txs, list) or not txs:
            raise _HistoryRefused(f"{where} carries no governance tx")
        last_index = -1
        for change in txs:
            members = _replay_change(change, header, members, solo_orderer, used, where)
            index = change["tx_proof"]["leaf_index"]
            if index <= last_index:
                raise _HistoryRefused(f"{where}: its txs are not in block order")
            last_index = index
    return members


def _replay_change(
    change: Mapping[str, Any],
    header: BlockHeader,
    members: MemberSet,
    solo_orderer: str | None,
    used: set[str],
    where: str,
) -> MemberSet:
    """One governance tx: proven in its block, succeeded there, and re-applied by the rules."""
    body = change["body"]
    tx_hash = sha256(canonical(body))
    tx_proof, result_proof = change["tx_proof"], change["result_proof"]
    result = change["result"]
    in_block = (
        _inclusion_ok(tx_proof, leaf_hash(tx_hash), header.tx_root)
        and tx_proof["tree_size"] == header.tx_count
        and _inclusion_ok(result_proof, leaf_hash(sha256(canonical(result))), header.results_root)
        and result_proof["leaf_index"] == tx_proof["leaf_index"]
        and result_proof["tree_size"] == header.tx_count + 1
    )
    if not in_block:
        raise _HistoryRefused(f"{where}: a governance tx or its result is not in the block")
    if result.get("status") != "ok" or result.get("tx_hash") != tx_hash.hex():
        raise _HistoryRefused(f"{where}: the governance tx {tx_hash.hex()} did not succeed")
    if body.get("chain_id") != header.chain_id or body.get("contract") != "governance":
        raise _HistoryRefused(f"{where}: tx {tx_hash.hex()} is not a governance tx of this chain")
    action = body.get("method")
    args = body.get("args")
    if (
        action not in ACTIONS
        or not isinstance(args, Mapping)
        or not isinstance(args.get("approvals"), list)
    ):
        raise _HistoryRefused(f"{where}: tx {tx_hash.hex()} is not a governance action")
    try:
        proposal = Proposal.from_json(args.get("proposal"))
        approvals = [Approval.from_json(a) for a in args["approvals"]]
        if proposal.action != action or proposal.chain_id != header.chain_id:
            raise GovernanceError("bad_proposal", "the proposal names another action or chain")
        if proposal.valid_until_ms < header.time_ms:
            raise GovernanceError("proposal_expired", "valid_until_ms is before the block time")
        if proposal.proposal_id in used:
            raise GovernanceError("proposal_used", f"proposal {proposal.proposal_id} was used")
        weight = approval_weight(proposal, approvals, members)
        if weight < members.quorum_weight:
            raise GovernanceError("approval_below_quorum", f"approvals weigh {weight}")
        after = apply_action(action, proposal.params, members, solo_orderer=solo_orderer)
    except GovernanceError as exc:
        raise _HistoryRefused(f"{where}: replaying {action} refused: {exc.code}") from exc
    used.add(proposal.proposal_id)
    # The chain recorded the set it computed; a history missing an earlier change shows here.
    recorded = result.get("return") or {}
    if (recorded.get("members"), recorded.get("total_weight"), recorded.get("quorum_weight")) != (
        len(after.members),
        after.total_weight,
        after.quorum_weight,
    ):
        raise _HistoryRefused(f"{where}: the replayed member set differs from the recorded one")
    return after


def _block_signed(
    header: BlockHeader, signatures: list[Signature], members: MemberSet, genesis: Genesis
) -> tuple[bool, str]:
    """Whether `members` (those in force after the previous block) make this block valid:
    signed by the solo orderer, or by a quorum in cluster mode, with no stray signature."""
    weight, problems = valid_signatures(header.encoded(), signatures, members.weights)
    if genesis.ordering == "solo":
        enough = any(s.signer == genesis.orderer for s in signatures) and not problems
    else:
        enough = weight >= members.quorum_weight and not problems
    return enough, "; ".join(problems) or f"weight {weight} of quorum {members.quorum_weight}"


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
    receipt: Mapping[str, Any],
    genesis: Genesis,
    members: MemberSet,
    header: BlockHeader,
    report: ReceiptReport,
) -> None:
    signatures = [Signature.from_json(s) for s in receipt["block"]["signatures"]]
    enough, detail = _block_signed(header, signatures, members, genesis)
    report.add("block signed by consortium members", enough, detail)
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
    members: MemberSet,
    header: BlockHeader,
    header_hash: bytes,
    tx_hash: bytes,
    report: ReceiptReport,
) -> None:
    head = TreeHead.from_json(genesis.chain_id, receipt["tree_head"])
    weight, problems = valid_signatures(head.signed_bytes(), head.signatures, members.weights)
    # As in `chain verify`: in cluster mode a tree head may be unsigned (a peer signs only
    # while it is a member); everything it states is committed to by the quorum-signed header.
    unsigned_ok = genesis.ordering == "jetstream" and not head.signatures
    report.add(
        "tree head signed by a member",
        (weight > 0 or unsigned_ok) and not problems,
        "; ".join(problems) or ("unsigned (cluster mode)" if unsigned_ok else ""),
    )
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

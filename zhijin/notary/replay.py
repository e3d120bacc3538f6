"""The membership history a receipt carries, replayed from the genesis file.

Members and the quorum change by governance transactions (zhijin/chain/governance.py), so the
signers of a block may be members the genesis file never heard of.  A receipt therefore carries,
for every block below its own that executed a governance change, that block's header and
signatures and each successful governance tx in it with its Merkle proofs.  The replay never
takes a member list from the receipt: it starts from genesis and re-applies each change with
the contract's own pure rules (the approvals must verify and reach the quorum in force, the
action must apply), after checking that a quorum of the members in force *before* that block
signed it and that the tx and its `ok` result are in that block's roots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zhijin.chain.block import BlockHeader, Signature, valid_signatures
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.errors import ZhijinError
from zhijin.chain.genesis import Genesis
from zhijin.chain.governance import (
    ACTIONS,
    Approval,
    GovernanceError,
    Proposal,
    apply_action,
    approval_weight,
)
from zhijin.chain.membership import MemberSet, member_set_from_state
from zhijin.chain.merkle import ProofError, leaf_hash, verify_inclusion_json
from zhijin.notary import limits

__all__ = [
    "HistoryRefused",
    "block_signed",
    "genesis_member_set",
    "inclusion_ok",
    "replay_membership",
    "signatures_from_json",
    "strict_header",
]


def replay_membership(history: Any, genesis: Genesis, height: int) -> MemberSet:
    """The member set that judges block `height`, replayed from genesis through `history`.

    Raises HistoryRefused, naming the entry, on anything that does not prove what it claims.
    """
    if not isinstance(history, list) or len(history) > limits.MEMBERSHIP_CHANGES_MAX:
        raise HistoryRefused(f"a list of at most {limits.MEMBERSHIP_CHANGES_MAX} governance blocks")
    try:
        return _replay(history, genesis, height)
    except (KeyError, TypeError, ValueError, AttributeError, ZhijinError) as exc:
        # A malformed entry proves nothing; say what broke rather than crash the verifier.
        raise HistoryRefused(f"a malformed entry ({type(exc).__name__}: {exc})") from exc


def strict_header(data: Any) -> BlockHeader:
    """A header whose JSON is exactly its wire form: `from_json` alone would read "5" or true
    as a height and uppercase hex as bytes, so a receipt could show one value and sign
    another."""
    header = BlockHeader.from_json(data)
    if canonical(data) != header.encoded():
        raise ValueError("the header is not in its canonical wire form")
    return header


def genesis_member_set(genesis: Genesis) -> MemberSet:
    """The members and quorum block 0 writes: where every replay starts."""
    return member_set_from_state(dict(genesis.write_set()))


class HistoryRefused(Exception):
    """A membership history entry that does not prove what it claims."""


def _replay(history: list[Any], genesis: Genesis, height: int) -> MemberSet:
    members = genesis_member_set(genesis)
    solo_orderer = genesis.orderer if genesis.ordering == "solo" else None
    previous = 0
    used: set[str] = set()
    for entry in history:
        header = strict_header(entry["block"]["header"])
        where = f"governance block {header.height}"
        if header.chain_id != genesis.chain_id:
            raise HistoryRefused(f"{where} is on another chain")
        if not previous < header.height < height:
            raise HistoryRefused(f"{where} is out of order (after {previous}, before {height})")
        previous = header.height
        signatures = signatures_from_json(entry["block"]["signatures"])
        signed, detail = block_signed(header, signatures, members, genesis)
        if not signed:
            raise HistoryRefused(f"{where} is not signed by the members in force: {detail}")
        txs = entry["txs"]
        if not isinstance(txs, list) or not txs:
            raise HistoryRefused(f"{where} carries no governance tx")
        last_index = -1
        for change in txs:
            members = _replay_change(change, header, members, solo_orderer, used, where)
            index = change["tx_proof"]["leaf_index"]
            if index <= last_index:
                raise HistoryRefused(f"{where}: its txs are not in block order")
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
        inclusion_ok(tx_proof, leaf_hash(tx_hash), header.tx_root)
        and tx_proof["tree_size"] == header.tx_count
        and inclusion_ok(result_proof, leaf_hash(sha256(canonical(result))), header.results_root)
        and result_proof["leaf_index"] == tx_proof["leaf_index"]
        and result_proof["tree_size"] == header.tx_count + 1
    )
    if not in_block:
        raise HistoryRefused(f"{where}: a governance tx or its result is not in the block")
    if result.get("status") != "ok" or result.get("tx_hash") != tx_hash.hex():
        raise HistoryRefused(f"{where}: the governance tx {tx_hash.hex()} did not succeed")
    if body.get("chain_id") != header.chain_id or body.get("contract") != "governance":
        raise HistoryRefused(f"{where}: tx {tx_hash.hex()} is not a governance tx of this chain")
    action = body.get("method")
    args = body.get("args")
    if (
        action not in ACTIONS
        or not isinstance(args, Mapping)
        or not isinstance(args.get("approvals"), list)
    ):
        raise HistoryRefused(f"{where}: tx {tx_hash.hex()} is not a governance action")
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
        raise HistoryRefused(f"{where}: replaying {action} refused: {exc.code}") from exc
    used.add(proposal.proposal_id)
    # The chain recorded the set it computed; a history missing an earlier change shows here.
    recorded = result.get("return") or {}
    if (recorded.get("members"), recorded.get("total_weight"), recorded.get("quorum_weight")) != (
        len(after.members),
        after.total_weight,
        after.quorum_weight,
    ):
        raise HistoryRefused(f"{where}: the replayed member set differs from the recorded one")
    return after


def block_signed(
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


def signatures_from_json(data: Any) -> list[Signature]:
    """Block signatures read strictly: each exactly {"signer", "signature"} in wire form."""
    if not isinstance(data, list) or len(data) > limits.SIGNATURES_MAX:
        raise ValueError(f"signatures are a list of at most {limits.SIGNATURES_MAX}")
    signatures = []
    for item in data:
        signature = Signature.from_json(item)
        if item != signature.to_json():
            raise ValueError("a signature is not {signer, signature as lowercase hex}")
        signatures.append(signature)
    return signatures


def inclusion_ok(proof: Any, leaf: bytes, root: bytes) -> bool:
    """Whether the receipt's `{leaf_index, tree_size, proof}` shows `leaf` under `root`; read
    strictly (integers, lowercase hex, no other keys), so what is shown is what was proven."""
    if not isinstance(proof, Mapping):
        return False
    try:
        verify_inclusion_json({**proof, "leaf_hash": leaf.hex(), "root": root.hex()})
    except ProofError:
        return False
    return True

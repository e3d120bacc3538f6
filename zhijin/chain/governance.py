"""Governance: the consortium's members and quorum, changed only by quorum-approved proposals.

Genesis writes the members (`governance/member/<did>`) and the config (`governance/config`:
quorum weight and, in solo mode, the orderer) in block 0.  After that they change only through
this contract's methods, one per action:

| method | params | effect |
|---|---|---|
| `add_member` | `did, name, role, weight[, quorum_weight]` | a new member |
| `remove_member` | `did[, quorum_weight]` | the member is gone |
| `set_weight` | `did, weight[, quorum_weight]` | the member's voting weight |
| `set_quorum` | `quorum_weight` | the signed weight that makes a block final |
| `activate_contract` | `name, version, activation_height` | a contract in force from that height |

Each tx carries `{"proposal": {...}, "approvals": [...]}`.  The proposal is the canonical object
`{chain_id, action, params, proposal_id, valid_until_ms}`; an approval is `{signer, signature}`,
an Ed25519 signature by a member over the proposal's canonical bytes (no other signed object of
the chain has these keys, so an approval can never be replayed as anything else).  The tx's own
sender and signer do not matter: the approvals are the authority.

The tx succeeds only when, against the state before it (never genesis, never a clock):

1. the proposal is well formed and names this method (`bad_proposal`) and this chain
   (`wrong_chain`);
2. `valid_until_ms` is not before the block time (`proposal_expired`) nor more than
   `PROPOSAL_VALIDITY_MS_MAX` after it (`proposal_validity_too_long`);
3. the proposal id was never used (`proposal_used`);
4. every approval is well formed (`bad_approval`), from a distinct signer
   (`duplicate_approver`) who is a member now (`approver_not_member`), and verifies
   (`bad_approval_signature`);
5. the approvers' weight reaches the current quorum weight (`approval_below_quorum`);
6. the action applies: `member_exists`, `unknown_member`, `bad_member`, `too_many_members`,
   `member_is_orderer` (the solo orderer signs every block and cannot be removed); for
   `activate_contract`: `bad_contract`, `activation_height_passed` (it must be above this
   block's height), `activation_too_far`, `contract_exists` (in force or scheduled already:
   a new version of an active contract is refused, there is no upgrade),
   `too_many_contracts`.  Whether a node's code has the contract is no rule of the chain (a
   result must not depend on which code a node runs): a node refuses to admit an activation
   its code lacks (`contract_code_missing`, `activation_code_problem`), and a node whose code
   lacks an activated contract refuses to start;
7. afterwards the quorum is still reachable and still more than half of the total weight
   (`quorum_unreachable`, `quorum_too_low`): any two quorums must share a member, or two
   different blocks could both become final.

The codes are listed in precedence order: a tx failing several checks reports the first.
Each success records the proposal id (`governance/proposal/<id>`) and emits events for
projections: `governance.member_added`, `governance.member_removed`,
`governance.weight_changed`, `governance.quorum_changed`, `governance.contract_activated`
(which writes `governance/contract/<name>`, see zhijin/chain/contract_set.py; members stay as
they were).  A block's signatures and finality
are judged by the members in force after the previous block (see zhijin/chain/membership.py),
so a change made by block h counts from block h+1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhijin.chain.codec import canonical
from zhijin.chain.contract import (
    CONTRACT_PREFIX,
    GOVERNANCE_CONFIG_KEY,
    MEMBER_PREFIX,
    Context,
    Contract,
    ContractRegistry,
    Member,
)
from zhijin.chain.contract_set import ACTIVATIONS_MAX, Activation
from zhijin.chain.crypto import BadKey, KeyPair, public_key_from_did, verify
from zhijin.chain.errors import ContractError
from zhijin.chain.genesis import MEMBER_WEIGHT_MAX, MEMBERS_MAX, member_problems
from zhijin.chain.membership import MemberSet

__all__ = [
    "ACTIONS",
    "ACTIVATION_DELAY_BLOCKS_MAX",
    "GOVERNANCE_CONTRACT",
    "PROPOSAL_PREFIX",
    "Approval",
    "GovernanceError",
    "Proposal",
    "activation_code_problem",
    "apply_action",
    "approval_weight",
    "approve",
    "current_member_set",
    "governance_args",
    "make_proposal",
]

ACTIONS = ("add_member", "remove_member", "set_weight", "set_quorum", "activate_contract")
PROPOSAL_PREFIX = "governance/proposal/"
PROPOSAL_VALIDITY_MS_MAX = 7 * 24 * 3600 * 1000  # approvals are gathered within a week
APPROVALS_MAX = MEMBERS_MAX
# How far ahead an activation may be scheduled: ~1 week of blocks at one block per second.
ACTIVATION_DELAY_BLOCKS_MAX = 7 * 24 * 3600
_CONTRACT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CONTRACT_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_PROPOSAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{7,127}$")
_PARAMS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # required, optional
    "add_member": (frozenset({"did", "name", "role", "weight"}), frozenset({"quorum_weight"})),
    "remove_member": (frozenset({"did"}), frozenset({"quorum_weight"})),
    "set_weight": (frozenset({"did", "weight"}), frozenset({"quorum_weight"})),
    "set_quorum": (frozenset({"quorum_weight"}), frozenset()),
    "activate_contract": (frozenset({"name", "version", "activation_height"}), frozenset()),
}


class GovernanceError(ContractError):
    code = "governance_refused"


# -- the signed objects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    chain_id: str
    action: str
    params: Mapping[str, Any]
    proposal_id: str
    valid_until_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "action": self.action,
            "params": dict(self.params),
            "proposal_id": self.proposal_id,
            "valid_until_ms": self.valid_until_ms,
        }

    def signed_bytes(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: Any) -> Proposal:
        """Parse and check the shape (GovernanceError `bad_proposal` if anything is off)."""
        if not isinstance(data, Mapping) or set(data) != {
            "chain_id",
            "action",
            "params",
            "proposal_id",
            "valid_until_ms",
        }:
            raise GovernanceError("bad_proposal", "proposal fields do not match the format")
        action, params = data["action"], data["params"]
        if action not in ACTIONS:
            raise GovernanceError("bad_proposal", f"action must be one of {list(ACTIONS)}")
        if not isinstance(data["chain_id"], str) or type(data["valid_until_ms"]) is not int:
            raise GovernanceError("bad_proposal", "chain_id is a string, valid_until_ms an integer")
        if not isinstance(data["proposal_id"], str) or not _PROPOSAL_ID.match(data["proposal_id"]):
            raise GovernanceError("bad_proposal", "proposal_id: 8-128 letters, digits, . _ -")
        required, optional = _PARAMS[action]
        if not isinstance(params, Mapping) or not required <= set(params) <= required | optional:
            raise GovernanceError(
                "bad_proposal",
                f"{action} takes {sorted(required)} and optionally {sorted(optional)}",
            )
        return cls(
            chain_id=data["chain_id"],
            action=action,
            params=dict(params),
            proposal_id=data["proposal_id"],
            valid_until_ms=data["valid_until_ms"],
        )


@dataclass(frozen=True, slots=True)
class Approval:
    signer: str
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {"signer": self.signer, "signature": self.signature.hex()}

    @classmethod
    def from_json(cls, data: Any) -> Approval:
        try:
            if not isinstance(data, Mapping) or set(data) != {"signer", "signature"}:
                raise ValueError("fields")
            signer, signature = data["signer"], data["signature"]
            if not isinstance(signer, str) or not isinstance(signature, str):
                raise ValueError("types")
            raw = bytes.fromhex(signature)
            if len(raw) != 64 or raw.hex() != signature:
                raise ValueError("signature")
        except ValueError as exc:
            raise GovernanceError(
                "bad_approval", "an approval is {signer, signature (128 lowercase hex)}"
            ) from exc
        return cls(signer, raw)


def approve(key: KeyPair, proposal: Proposal) -> Approval:
    """A member's approval: its signature over the proposal's canonical bytes."""
    return Approval(key.did, key.sign(proposal.signed_bytes()))


def make_proposal(
    *,
    chain_id: str,
    action: str,
    params: Mapping[str, Any],
    proposal_id: str,
    valid_until_ms: int,
) -> Proposal:
    """A checked proposal (the same shape checks the contract applies)."""
    return Proposal.from_json(
        {
            "chain_id": chain_id,
            "action": action,
            "params": dict(params),
            "proposal_id": proposal_id,
            "valid_until_ms": valid_until_ms,
        }
    )


def governance_args(proposal: Proposal, approvals: Sequence[Approval]) -> dict[str, Any]:
    """The args of the governance tx that carries a proposal and its approvals."""
    return {"proposal": proposal.to_json(), "approvals": [a.to_json() for a in approvals]}


# -- pure rules ---------------------------------------------------------------------------------


def approval_weight(proposal: Proposal, approvals: Sequence[Approval], members: MemberSet) -> int:
    """The approvers' total weight; refuses duplicates, non-members and bad signatures."""
    message = proposal.signed_bytes()
    seen: set[str] = set()
    weight = 0
    for approval in approvals:
        if approval.signer in seen:
            raise GovernanceError("duplicate_approver", f"{approval.signer} approved twice")
        seen.add(approval.signer)
        if not members.is_member(approval.signer):
            raise GovernanceError("approver_not_member", f"{approval.signer} is not a member")
        try:
            public_key = public_key_from_did(approval.signer)
        except BadKey as exc:  # a member's did is checked when admitted: cannot happen
            raise GovernanceError("approver_not_member", exc.message) from exc
        if not verify(public_key, message, approval.signature):
            raise GovernanceError(
                "bad_approval_signature", f"the approval by {approval.signer} does not verify"
            )
        weight += members.weights[approval.signer]
    return weight


def apply_action(
    action: str, params: Mapping[str, Any], current: MemberSet, *, solo_orderer: str | None
) -> MemberSet:
    """The member set after `action`, or GovernanceError; checks the quorum rule at the end.

    `activate_contract` leaves the members as they are (its rules need state: `_activate`).
    """
    members = dict(current.members)
    quorum = current.quorum_weight
    if action == "add_member":
        member = _member_from_params(params)
        if member.did in members:
            raise GovernanceError("member_exists", f"{member.did} is a member already")
        if len(members) >= MEMBERS_MAX:
            raise GovernanceError("too_many_members", f"at most {MEMBERS_MAX} members")
        members[member.did] = member
    elif action == "remove_member":
        did = _existing(params, members)
        if did == solo_orderer:
            raise GovernanceError("member_is_orderer", "the solo orderer cannot be removed")
        del members[did]
    elif action == "set_weight":
        did = _existing(params, members)
        weight = params["weight"]
        if type(weight) is not int or not 0 < weight <= MEMBER_WEIGHT_MAX:
            raise GovernanceError("bad_member", f"weight must be 1-{MEMBER_WEIGHT_MAX}")
        old = members[did]
        members[did] = Member(did=old.did, name=old.name, role=old.role, weight=weight)
    if "quorum_weight" in params:
        quorum = params["quorum_weight"]
        if type(quorum) is not int:
            raise GovernanceError("bad_proposal", "quorum_weight is an integer")
    total = sum(m.weight for m in members.values())
    if quorum > total:
        raise GovernanceError(
            "quorum_unreachable", f"the members' total weight {total} cannot reach {quorum}"
        )
    if quorum <= total // 2:
        raise GovernanceError(
            "quorum_too_low", f"quorum {quorum} must be more than half of the total weight {total}"
        )
    return MemberSet(members, quorum)


def _member_from_params(params: Mapping[str, Any]) -> Member:
    did, name, role, weight = (params[k] for k in ("did", "name", "role", "weight"))
    if not all(isinstance(v, str) for v in (did, name, role)) or type(weight) is not int:
        raise GovernanceError("bad_member", "did, name and role are strings, weight an integer")
    member = Member(did=did, name=name, role=role, weight=weight)
    problems = member_problems(member)
    if problems:
        raise GovernanceError("bad_member", "; ".join(problems))
    return member


def _existing(params: Mapping[str, Any], members: Mapping[str, Member]) -> str:
    did = params["did"]
    if not isinstance(did, str) or did not in members:
        raise GovernanceError("unknown_member", f"{did!r} is not a member")
    return did


# -- the contract -------------------------------------------------------------------------------


def current_member_set(ctx: Context) -> tuple[MemberSet, str | None]:
    """Members and quorum as of this point of the block (state, never genesis)."""
    rows = ctx.scan(MEMBER_PREFIX, limit=MEMBERS_MAX + 1)
    members = {value["did"]: Member.from_json(value) for _, value in rows}
    config = ctx.get(GOVERNANCE_CONFIG_KEY)
    if config is None:
        raise GovernanceError("no_governance_config", "this chain's genesis has no config")
    return MemberSet(members, config["quorum_weight"]), config.get("solo_orderer")


def _parse_args(args: Mapping[str, Any], action: str) -> tuple[Proposal, list[Approval]]:
    if set(args) != {"proposal", "approvals"}:
        raise GovernanceError("bad_proposal", "args are {proposal, approvals}")
    proposal = Proposal.from_json(args["proposal"])
    if proposal.action != action:
        raise GovernanceError(
            "bad_proposal", f"this is {action}; the proposal is {proposal.action}"
        )
    raw = args["approvals"]
    if not isinstance(raw, list) or not 0 < len(raw) <= APPROVALS_MAX:
        raise GovernanceError("bad_approval", f"approvals: a list of 1 to {APPROVALS_MAX}")
    return proposal, [Approval.from_json(item) for item in raw]


def _execute(ctx: Context, args: dict[str, Any], action: str) -> dict[str, Any]:
    proposal, approvals = _parse_args(args, action)
    if proposal.chain_id != ctx.block.chain_id:
        raise GovernanceError("wrong_chain", f"the proposal is for chain {proposal.chain_id}")
    if proposal.valid_until_ms < ctx.block.time_ms:
        raise GovernanceError("proposal_expired", "valid_until_ms is before the block time")
    if proposal.valid_until_ms > ctx.block.time_ms + PROPOSAL_VALIDITY_MS_MAX:
        raise GovernanceError(
            "proposal_validity_too_long", "valid_until_ms is more than 7 days after the block time"
        )
    record_key = PROPOSAL_PREFIX + proposal.proposal_id
    if ctx.get(record_key) is not None:
        raise GovernanceError("proposal_used", f"proposal {proposal.proposal_id} was used")
    current, solo_orderer = current_member_set(ctx)
    weight = approval_weight(proposal, approvals, current)
    if weight < current.quorum_weight:
        raise GovernanceError(
            "approval_below_quorum",
            f"approvals weigh {weight}; the quorum weight is {current.quorum_weight}",
        )
    after = apply_action(action, proposal.params, current, solo_orderer=solo_orderer)
    approvers = sorted(a.signer for a in approvals)
    result: dict[str, Any] = {
        "proposal_id": proposal.proposal_id,
        "action": action,
        "members": len(after.members),
        "total_weight": after.total_weight,
        "quorum_weight": after.quorum_weight,
    }
    if action == "activate_contract":
        activation = _activate(ctx, proposal, approvers)
        result["activation"] = activation.to_json()
    else:
        _write(ctx, current, after, solo_orderer, proposal.proposal_id, approvers)
    ctx.put(
        record_key,
        {"action": action, "height": ctx.block.height, "tx_hash": ctx.tx.tx_hash},
    )
    return result


def _activate(ctx: Context, proposal: Proposal, approvers: list[str]) -> Activation:
    """Check and write one contract activation (the rules are in the module docstring)."""
    activation = _activation_from_params(proposal)
    height = activation.activation_height
    if height <= ctx.block.height:
        raise GovernanceError(
            "activation_height_passed",
            f"activation_height {height} must be above this block's height {ctx.block.height}",
        )
    if height > ctx.block.height + ACTIVATION_DELAY_BLOCKS_MAX:
        raise GovernanceError(
            "activation_too_far",
            f"activation_height may be at most {ACTIVATION_DELAY_BLOCKS_MAX} blocks ahead",
        )
    key = CONTRACT_PREFIX + activation.name
    if ctx.registry.get(activation.name) is not None or ctx.get(key) is not None:
        raise GovernanceError(
            "contract_exists",
            f"{activation.name} is in force or scheduled already; versions cannot be upgraded",
        )
    if len(ctx.scan(CONTRACT_PREFIX, limit=ACTIVATIONS_MAX)) >= ACTIVATIONS_MAX:
        raise GovernanceError("too_many_contracts", f"at most {ACTIVATIONS_MAX} activations")
    ctx.put(key, activation.to_json())
    ctx.emit("contract_activated", **activation.to_json(), approvers=approvers)
    return activation


def activation_code_problem(
    args: Mapping[str, Any], code: ContractRegistry
) -> tuple[str, str] | None:
    """Admission's check of an `activate_contract` tx: this node's code must have the named
    contract at the named version.  A malformed proposal passes: the contract refuses it with
    the precise code (`bad_contract`, `bad_proposal`)."""
    proposal = args.get("proposal") if isinstance(args, Mapping) else None
    params = proposal.get("params") if isinstance(proposal, Mapping) else None
    if not isinstance(params, Mapping):
        return None
    name, version = params.get("name"), params.get("version")
    if not isinstance(name, str) or not _CONTRACT_NAME.match(name):
        return None
    if not isinstance(version, str) or not _CONTRACT_VERSION.match(version):
        return None
    contract = code.get(name)
    if contract is None or contract.version != version:
        running = contract.version if contract is not None else "not at all"
        return (
            "contract_code_missing",
            f"this node's code has no {name} version {version} (it runs {name} {running}): "
            "install that code on every member's node before activating it",
        )
    return None


def _activation_from_params(proposal: Proposal) -> Activation:
    params = proposal.params
    name, version, height = params["name"], params["version"], params["activation_height"]
    if not isinstance(name, str) or not _CONTRACT_NAME.match(name):
        raise GovernanceError("bad_contract", "name: a lowercase letter, then a-z 0-9 _ (max 64)")
    if not isinstance(version, str) or not _CONTRACT_VERSION.match(version):
        raise GovernanceError("bad_contract", "version: 1-32 letters, digits, . _ -")
    if type(height) is not int:
        raise GovernanceError("bad_contract", "activation_height is an integer")
    return Activation(name, version, height, proposal.proposal_id)


def _write(
    ctx: Context,
    before: MemberSet,
    after: MemberSet,
    solo_orderer: str | None,
    proposal_id: str,
    approvers: list[str],
) -> None:
    """Stage the differences between two member sets and emit one event per change."""
    for did in sorted(set(before.members) | set(after.members)):
        old, new = before.members.get(did), after.members.get(did)
        if old == new:
            continue
        if new is None:
            ctx.delete(MEMBER_PREFIX + did)
            ctx.emit("member_removed", did=did, proposal_id=proposal_id, approvers=approvers)
            continue
        ctx.put(MEMBER_PREFIX + did, new.to_json())
        if old is None:
            ctx.emit("member_added", **new.to_json(), proposal_id=proposal_id, approvers=approvers)
        else:
            ctx.emit(
                "weight_changed",
                did=did,
                old_weight=old.weight,
                weight=new.weight,
                proposal_id=proposal_id,
                approvers=approvers,
            )
    if after.quorum_weight != before.quorum_weight:
        ctx.put(
            GOVERNANCE_CONFIG_KEY,
            {"quorum_weight": after.quorum_weight, "solo_orderer": solo_orderer},
        )
        ctx.emit(
            "quorum_changed",
            old_quorum_weight=before.quorum_weight,
            quorum_weight=after.quorum_weight,
            proposal_id=proposal_id,
            approvers=approvers,
        )


def _method(action: str) -> Any:
    def method(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        return _execute(ctx, args, action)

    method.__name__ = action
    return method


GOVERNANCE_CONTRACT = Contract(
    name="governance",
    version="2",
    methods={action: _method(action) for action in ACTIONS},
)

"""The AML contract: each member's monitoring rules, versioned on chain under maker-checker.

| method | args | returns |
|---|---|---|
| propose_rules | {version, rules, officer, reason} | {"rule_set", "exists"} |
| decide_rules | {version, officer, approve, reason} | {"rule_set", "exists"} |

The monitor (monitor.py) is a projection: whatever it applies must be what every member's
reindex applies, from a known height.  So a rule set a member's officers edit is saved here,
not in a node's files: one officer proposes a version (the whole rule set, validated exactly as
a rules file is), another approves or rejects it (`aml_rules_self_approval` for the proposer), and an
approved version judges the member's customers from the block after its approval.  Every
member's version history stays on chain; the default rules file judges members that never
approved one.

Signed by the member in its own name (a vouched user is not a member: `not_member`); a member
decides only its own versions (they are kept under its DID).  A retry with the same body answers as the
first time (`exists: true`); the same version with another body is refused
(`aml_rule_set_exists_with_different_fields`); the codes and their
precedence are in codes.py.  Deterministic: block height and time only, no I/O, no floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, NoReturn, Self

from pydantic import ValidationError

from zhijin.aml import limits
from zhijin.aml.codes import Code
from zhijin.aml.rules import parse_rules
from zhijin.chain.codec import canonical, sha256
from zhijin.chain.contract import Context, Contract, TxInfo
from zhijin.chain.errors import ContractError

__all__ = [
    "AML_CONTRACT",
    "CONTRACT_NAME",
    "EVENT_RULE_SET",
    "RuleSetRecord",
    "RuleSetStatus",
    "keys",
]

CONTRACT_NAME = "aml"
CONTRACT_VERSION = "1"
EVENT_RULE_SET = "rule_set"  # proposed, approved or rejected: the record as it now stands
_VERSION = re.compile(limits.RULES_VERSION_PATTERN)
_OFFICER = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class keys:  # a namespace of key builders, read as `keys.rule_set(member, version)`
    RULE_SET = "aml/rule_set/"

    @staticmethod
    def rule_set(member: str, version: str) -> str:
        return f"{keys.RULE_SET}{member}/{version}"


class RuleSetStatus:
    PROPOSED = "proposed"  # waiting for a second officer
    APPROVED = "approved"  # in force from the block after `decided_height`, until the next one
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class RuleSetRecord:
    member: str
    version: str
    rules: dict[str, Any]  # the rule set's JSON (rules.RuleSet), validated when proposed
    sha256: str  # of the rules' canonical bytes
    proposer: str  # the officer (staff user id) who proposed it
    reason: str
    status: str
    decider: str | None
    decision_reason: str | None
    proposed_height: int
    proposed_ms: int
    decided_height: int | None
    decided_ms: int | None
    tx_hash: str  # of the proposal

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "version": self.version,
            "rules": self.rules,
            "sha256": self.sha256,
            "proposer": self.proposer,
            "reason": self.reason,
            "status": self.status,
            "decider": self.decider,
            "decision_reason": self.decision_reason,
            "proposed_height": self.proposed_height,
            "proposed_ms": self.proposed_ms,
            "decided_height": self.decided_height,
            "decided_ms": self.decided_ms,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


def _refuse(code: Code, message: str) -> NoReturn:
    raise ContractError(code.value, message)


def _member(ctx: Context) -> str:
    if ctx.tx.vouched or ctx.member(ctx.tx.sender) is None:
        _refuse(Code.NOT_MEMBER, "a consortium member signs in its own name")
    return ctx.tx.sender


def _args(args: dict[str, Any], required: set[str]) -> dict[str, Any]:
    if not isinstance(args, dict) or set(args) != required:
        _refuse(Code.RULES_ARGS_INVALID, f"expected exactly {sorted(required)}")
    return args


def _text(value: Any, pattern: re.Pattern[str], code: Code) -> str:
    if type(value) is not str or not pattern.fullmatch(value):
        _refuse(code, f"{code.value}: {value!r}"[:200])
    return str(value)


def _reason(value: Any) -> str:
    if type(value) is not str or not value.strip() or len(value) > limits.REASON_CHARS_MAX:
        _refuse(Code.REASON_INVALID, f"a reason of 1-{limits.REASON_CHARS_MAX} characters")
    return str(value).strip()


def propose_rules(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = _args(args, {"version", "rules", "officer", "reason"})
    member = _member(ctx)
    version = _text(data["version"], _VERSION, Code.RULES_VERSION_INVALID)
    officer = _text(data["officer"], _OFFICER, Code.OFFICER_INVALID)
    reason = _reason(data["reason"])
    try:
        rules = parse_rules(data["rules"])
    except (ValidationError, ValueError, TypeError) as exc:
        _refuse(Code.RULES_INVALID, str(exc)[:500])
    if rules.version != version:
        _refuse(Code.RULES_INVALID, f"the rules name version {rules.version!r}, not {version!r}")
    body = rules.model_dump(mode="json")
    digest = sha256(canonical(body)).hex()
    existing = ctx.get_record(keys.rule_set(member, version), RuleSetRecord)
    if existing is not None:
        if (existing.sha256, existing.proposer, existing.reason) != (digest, officer, reason):
            _refuse(Code.RULE_SET_EXISTS, f"version {version} exists")
        return {"rule_set": existing.to_json(), "exists": True}
    record = RuleSetRecord(
        member=member, version=version, rules=body, sha256=digest, proposer=officer,
        reason=reason, status=RuleSetStatus.PROPOSED, decider=None, decision_reason=None,
        proposed_height=ctx.block.height, proposed_ms=ctx.block.time_ms, decided_height=None,
        decided_ms=None, tx_hash=ctx.tx.tx_hash,
    )  # fmt: skip
    ctx.put_record(keys.rule_set(member, version), record, event=EVENT_RULE_SET)
    return {"rule_set": record.to_json(), "exists": False}


def decide_rules(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = _args(args, {"version", "officer", "approve", "reason"})
    member = _member(ctx)
    version = _text(data["version"], _VERSION, Code.RULES_VERSION_INVALID)
    officer = _text(data["officer"], _OFFICER, Code.OFFICER_INVALID)
    if type(data["approve"]) is not bool:
        _refuse(Code.RULES_ARGS_INVALID, "approve is true or false")
    reason = _reason(data["reason"])
    record = ctx.get_record(keys.rule_set(member, version), RuleSetRecord)
    if record is None:
        _refuse(Code.RULE_SET_NOT_FOUND, f"no version {version} of this member's rules")
    if officer == record.proposer:
        _refuse(Code.RULES_SELF_APPROVAL, "the officer who proposed a rule set does not decide it")
    status = RuleSetStatus.APPROVED if data["approve"] else RuleSetStatus.REJECTED
    if record.status != RuleSetStatus.PROPOSED:
        if (record.status, record.decider, record.decision_reason) == (status, officer, reason):
            return {"rule_set": record.to_json(), "exists": True}
        _refuse(Code.RULE_SET_DECIDED, f"version {version} is {record.status} already")
    decided = replace(
        record, status=status, decider=officer, decision_reason=reason,
        decided_height=ctx.block.height, decided_ms=ctx.block.time_ms,
    )  # fmt: skip
    ctx.put_record(keys.rule_set(member, version), decided, event=EVENT_RULE_SET)
    return {"rule_set": decided.to_json(), "exists": False}


def _prefetch(tx: TxInfo, args: dict[str, Any]) -> list[str]:
    version = args.get("version") if isinstance(args, dict) else None
    if type(version) is str and _VERSION.fullmatch(version):
        return [keys.rule_set(tx.signer, version)]
    return []


AML_CONTRACT = Contract(
    name=CONTRACT_NAME,
    version=CONTRACT_VERSION,
    methods={"propose_rules": propose_rules, "decide_rules": decide_rules},
    prefetch=_prefetch,
)

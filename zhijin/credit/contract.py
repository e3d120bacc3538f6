"""The credit contract: the model registry, policies, decision anchors and repayment facts.

| method | args | returns |
|---|---|---|
| register_model | {sha256, name, version, card_sha256, trainer} | {"model", "exists"} |
| approve_model | {sha256, approver} | {"model", "exists"} |
| retire_model | {sha256, officer} | {"model", "exists"} |
| set_policy | {policy_id, version, rules, officer} | {"policy", "exists"} |
| anchor_decision | {decision_id, record_sha256, model_sha256, policy_id, policy_version} | {"anchor", "exists"} |
| record_repayment | {id, subject, due_at_ms, paid_at_ms} | {"repayment", "exists"} |
| get_anchor (ctx.call only) | {decision_id} | the decision anchor, or null |

Every method is signed by a consortium member in its own name (a vouched user is not a
member: `not_member`).  The member names its officers by their staff user ids; the contract
holds it to maker-checker: the officer who trained a model is never the one who approves it
(`self_approval`), and only the model's own member approves, retires or decides with it.  A
model decides only while approved; a decision anchor is refused for any other model
(`model_not_approved`), so the chain itself proves which approved model decided.

Ids come from the client: a retry with the same body answers as the first time with
`exists: true`; the same id with another body is refused (`exists_with_different_fields`).
Deterministic: block time only, no I/O, no floats.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from zhijin.chain.contract import Context, Contract, TxInfo
from zhijin.credit import limits
from zhijin.credit.codes import Code, refuse
from zhijin.credit.records import (
    DecisionAnchor,
    ModelRecord,
    ModelStatus,
    PolicyRecord,
    Repayment,
    keys,
)
from zhijin.credit.requests import (
    parse_anchor,
    parse_approve,
    parse_policy_request,
    parse_register,
    parse_repayment,
    parse_retire,
)

__all__ = [
    "CONTRACT_NAME",
    "CREDIT_CONTRACT",
    "EVENT_DECISION_ANCHORED",
    "EVENT_MODEL",
    "EVENT_POLICY_SAVED",
    "EVENT_REPAYMENT",
]

_ID = re.compile(limits.ID_PATTERN)
CONTRACT_NAME = "credit"
CONTRACT_VERSION = "1"
EVENT_MODEL = "model"  # registered, approved or retired: the record as it now stands
EVENT_POLICY_SAVED = "policy_saved"
EVENT_DECISION_ANCHORED = "decision_anchored"
EVENT_REPAYMENT = "repayment"


def _member(ctx: Context) -> str:
    if ctx.tx.vouched or ctx.member(ctx.tx.sender) is None:
        refuse(Code.NOT_MEMBER)
    return ctx.tx.sender


def _model(ctx: Context, sha256: str) -> ModelRecord:
    model = ctx.get_record(keys.model(sha256), ModelRecord)
    if model is None:
        refuse(Code.MODEL_NOT_FOUND)
    return model


def register_model(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_register(args)
    member = _member(ctx)
    existing = ctx.get_record(keys.model(request.sha256), ModelRecord)
    if existing is not None:
        same = (existing.name, existing.version, existing.card_sha256, existing.trainer)
        if same != (request.name, request.version, request.card_sha256, request.trainer) or (
            existing.member != member
        ):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"model": existing.to_json(), "exists": True}
    model = ModelRecord(
        sha256=request.sha256,
        name=request.name,
        version=request.version,
        card_sha256=request.card_sha256,
        member=member,
        trainer=request.trainer,
        status=ModelStatus.REGISTERED,
        approver=None,
        registered_height=ctx.block.height,
        registered_ms=ctx.block.time_ms,
        approved_height=None,
        approved_ms=None,
        retired_height=None,
        retired_ms=None,
        tx_hash=ctx.tx.tx_hash,
    )
    ctx.put_record(keys.model(model.sha256), model, event=EVENT_MODEL)
    return {"model": model.to_json(), "exists": False}


def approve_model(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_approve(args)
    member = _member(ctx)
    model = _model(ctx, request.sha256)
    if model.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if request.officer == model.trainer:
        refuse(Code.SELF_APPROVAL)
    if model.status == ModelStatus.RETIRED:
        refuse(Code.MODEL_RETIRED)
    if model.status == ModelStatus.APPROVED:
        if model.approver != request.officer:
            refuse(Code.MODEL_ALREADY_APPROVED)
        return {"model": model.to_json(), "exists": True}
    approved = replace(
        model,
        status=ModelStatus.APPROVED,
        approver=request.officer,
        approved_height=ctx.block.height,
        approved_ms=ctx.block.time_ms,
    )
    ctx.put_record(keys.model(model.sha256), approved, event=EVENT_MODEL)
    return {"model": approved.to_json(), "exists": False}


def retire_model(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_retire(args)
    member = _member(ctx)
    model = _model(ctx, request.sha256)
    if model.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if model.status == ModelStatus.RETIRED:
        return {"model": model.to_json(), "exists": True}
    retired = replace(
        model,
        status=ModelStatus.RETIRED,
        retired_height=ctx.block.height,
        retired_ms=ctx.block.time_ms,
    )
    ctx.put_record(keys.model(model.sha256), retired, event=EVENT_MODEL)
    return {"model": retired.to_json(), "exists": False}


def set_policy(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_policy_request(args)
    member = _member(ctx)
    existing = ctx.get_record(keys.policy(request.policy_id, request.version), PolicyRecord)
    if existing is not None:
        if (existing.rules, existing.member, existing.officer) != (
            request.rules,
            member,
            request.officer,
        ):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"policy": existing.to_json(), "exists": True}
    head = ctx.get(keys.policy_head(request.policy_id))
    if head is not None and head["member"] != member:
        refuse(Code.NOT_AUTHORIZED)
    latest = 0 if head is None else head["version"]
    if request.version != latest + 1:
        refuse(
            Code.POLICY_VERSION_OUT_OF_ORDER,
            f"the latest version is {latest}: the next is {latest + 1}",
        )
    record = PolicyRecord(
        policy_id=request.policy_id,
        version=request.version,
        member=member,
        officer=request.officer,
        rules=request.rules,
        saved_height=ctx.block.height,
        saved_ms=ctx.block.time_ms,
        tx_hash=ctx.tx.tx_hash,
    )
    ctx.put_record(keys.policy(record.policy_id, record.version), record, event=EVENT_POLICY_SAVED)
    ctx.put(keys.policy_head(record.policy_id), {"member": member, "version": record.version})
    return {"policy": record.to_json(), "exists": False}


def anchor_decision(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_anchor(args)
    member = _member(ctx)
    existing = ctx.get_record(keys.decision(request.decision_id), DecisionAnchor)
    if existing is not None:
        fields = (
            existing.record_sha256,
            existing.model_sha256,
            existing.policy_id,
            existing.policy_version,
            existing.member,
        )
        if fields != (
            request.record_sha256,
            request.model_sha256,
            request.policy_id,
            request.policy_version,
            member,
        ):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        return {"anchor": existing.to_json(), "exists": True}
    model = _model(ctx, request.model_sha256)
    if model.member != member:
        refuse(Code.NOT_AUTHORIZED)
    if model.status != ModelStatus.APPROVED:
        refuse(Code.MODEL_NOT_APPROVED)
    policy = ctx.get_record(keys.policy(request.policy_id, request.policy_version), PolicyRecord)
    if policy is None or policy.member != member:
        refuse(Code.POLICY_NOT_FOUND)
    anchor = DecisionAnchor(
        decision_id=request.decision_id,
        record_sha256=request.record_sha256,
        model_sha256=request.model_sha256,
        policy_id=request.policy_id,
        policy_version=request.policy_version,
        member=member,
        height=ctx.block.height,
        time_ms=ctx.block.time_ms,
        tx_hash=ctx.tx.tx_hash,
    )
    ctx.put_record(keys.decision(anchor.decision_id), anchor, event=EVENT_DECISION_ANCHORED)
    return {"anchor": anchor.to_json(), "exists": False}


def record_repayment(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    request = parse_repayment(args)
    member = _member(ctx)
    existing = ctx.get_record(keys.repayment(request.id), Repayment)
    if existing is not None:
        same = (existing.subject, existing.member, existing.due_at_ms)
        if same != (request.subject, member, request.due_at_ms):
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
        # An instalment recorded as unpaid may be paid later, once; a paid one never changes.
        if existing.paid_at_ms == request.paid_at_ms or request.paid_at_ms is None:
            return {"repayment": existing.to_json(), "exists": True}
        if existing.paid_at_ms is not None:
            refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS)
    repayment = Repayment(
        id=request.id,
        subject=request.subject,
        member=member,
        due_at_ms=request.due_at_ms,
        paid_at_ms=request.paid_at_ms,
        height=ctx.block.height,
        tx_hash=ctx.tx.tx_hash,
    )
    ctx.put_record(keys.repayment(repayment.id), repayment, event=EVENT_REPAYMENT)
    return {"repayment": repayment.to_json(), "exists": False}


def get_anchor(ctx: Context, args: dict[str, Any]) -> dict[str, Any] | None:
    """The anchor of a decision, or None (a read for other contracts, `ctx.call` only: lending
    checks that an application's decision digest is the one this member anchored)."""
    decision_id = args.get("decision_id") if type(args) is dict else None
    if type(decision_id) is not str or _ID.fullmatch(decision_id) is None:
        refuse(Code.ID_INVALID)
    anchor = ctx.get_record(keys.decision(decision_id), DecisionAnchor)
    return None if anchor is None else anchor.to_json()


def _prefetch(_tx: TxInfo, args: dict[str, Any]) -> list[str]:
    wanted: list[str] = []
    for field, key in (
        ("sha256", keys.model),
        ("model_sha256", keys.model),
        ("decision_id", keys.decision),
        ("id", keys.repayment),
        ("policy_id", keys.policy_head),
    ):
        value = args.get(field)
        if type(value) is str and len(value) <= 64:
            wanted.append(key(value))
    return wanted


CREDIT_CONTRACT = Contract(
    name=CONTRACT_NAME,
    version=CONTRACT_VERSION,
    methods={
        "register_model": register_model,
        "approve_model": approve_model,
        "retire_model": retire_model,
        "set_policy": set_policy,
        "anchor_decision": anchor_decision,
        "record_repayment": record_repayment,
        "get_anchor": get_anchor,
    },
    readonly_methods=frozenset({"get_anchor"}),
    prefetch=_prefetch,
)

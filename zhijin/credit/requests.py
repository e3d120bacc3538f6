"""Request parsing: the contract's JSON args in, a small immutable request out, or a refusal,
checked in the order of the method's precedence table (codes.py).  No state is read here;
`type(x) is int`, so a bool or a float is never a number."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from zhijin.credit import limits
from zhijin.credit.codes import Code, refuse
from zhijin.credit.policy import parse_policy

__all__ = [
    "AnchorRequest",
    "ApproveRequest",
    "PolicyRequest",
    "RegisterRequest",
    "RepaymentRequest",
    "parse_anchor",
    "parse_approve",
    "parse_policy_request",
    "parse_register",
    "parse_repayment",
    "parse_retire",
]

_ID = re.compile(limits.ID_PATTERN)
_SHA256 = re.compile(limits.SHA256_PATTERN)
_NAME = re.compile(limits.MODEL_NAME_PATTERN)
_VERSION = re.compile(limits.MODEL_VERSION_PATTERN)


def _args(args: object, fields: set[str]) -> dict[str, Any]:
    if type(args) is not dict or set(args) != fields:
        refuse(Code.ARGS_INVALID, f"args are an object of {sorted(fields)}")
    return args


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return type(value) is str and pattern.fullmatch(value) is not None


def _id(value: object, code: Code) -> str:
    if not _matches(_ID, value):
        refuse(code)
    assert isinstance(value, str)
    return value


def _sha(value: object, code: Code = Code.SHA256_INVALID) -> str:
    if not _matches(_SHA256, value):
        refuse(code)
    assert isinstance(value, str)
    return value


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    sha256: str
    name: str
    version: str
    card_sha256: str
    trainer: str


def parse_register(args: object) -> RegisterRequest:
    data = _args(args, {"sha256", "name", "version", "card_sha256", "trainer"})
    sha256 = _sha(data["sha256"])
    if not _matches(_NAME, data["name"]):
        refuse(Code.MODEL_NAME_INVALID)
    if not _matches(_VERSION, data["version"]):
        refuse(Code.MODEL_VERSION_INVALID)
    card = _sha(data["card_sha256"], Code.CARD_SHA256_INVALID)
    trainer = _id(data["trainer"], Code.OFFICER_INVALID)
    return RegisterRequest(sha256, data["name"], data["version"], card, trainer)


@dataclass(frozen=True, slots=True)
class ApproveRequest:
    sha256: str
    officer: str


def parse_approve(args: object) -> ApproveRequest:
    data = _args(args, {"sha256", "approver"})
    return ApproveRequest(_sha(data["sha256"]), _id(data["approver"], Code.OFFICER_INVALID))


def parse_retire(args: object) -> ApproveRequest:
    data = _args(args, {"sha256", "officer"})
    return ApproveRequest(_sha(data["sha256"]), _id(data["officer"], Code.OFFICER_INVALID))


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    policy_id: str
    version: int
    rules: dict[str, Any]
    officer: str


def _version(value: object) -> int:
    if type(value) is not int or not 1 <= value <= limits.POLICY_VERSION_MAX:
        refuse(Code.POLICY_VERSION_INVALID)
    assert isinstance(value, int)
    return value


def parse_policy_request(args: object) -> PolicyRequest:
    data = _args(args, {"policy_id", "version", "rules", "officer"})
    policy_id = _id(data["policy_id"], Code.POLICY_ID_INVALID)
    version = _version(data["version"])
    parse_policy(data["rules"])  # policy_invalid / policy_contradictory, saying what
    officer = _id(data["officer"], Code.OFFICER_INVALID)
    return PolicyRequest(policy_id, version, data["rules"], officer)


@dataclass(frozen=True, slots=True)
class AnchorRequest:
    decision_id: str
    record_sha256: str
    model_sha256: str
    policy_id: str
    policy_version: int


def parse_anchor(args: object) -> AnchorRequest:
    data = _args(
        args, {"decision_id", "record_sha256", "model_sha256", "policy_id", "policy_version"}
    )
    decision_id = _id(data["decision_id"], Code.ID_INVALID)
    record = _sha(data["record_sha256"])
    model = _sha(data["model_sha256"])
    policy_id = _id(data["policy_id"], Code.POLICY_ID_INVALID)
    return AnchorRequest(decision_id, record, model, policy_id, _version(data["policy_version"]))


@dataclass(frozen=True, slots=True)
class RepaymentRequest:
    id: str
    subject: str
    due_at_ms: int
    paid_at_ms: int | None


def _time(value: object) -> bool:
    return type(value) is int and 0 <= value <= limits.TIME_MS_MAX


def parse_repayment(args: object) -> RepaymentRequest:
    data = _args(args, {"id", "subject", "due_at_ms", "paid_at_ms"})
    repayment_id = _id(data["id"], Code.ID_INVALID)
    subject = data["subject"]
    if (
        type(subject) is not str
        or not subject.startswith("did:")
        or not 4 < len(subject) <= limits.MEMBER_CHARS_MAX
    ):
        refuse(Code.SUBJECT_INVALID)
    if not _time(data["due_at_ms"]):
        refuse(Code.DUE_AT_INVALID)
    paid = data["paid_at_ms"]
    if paid is not None and not _time(paid):
        refuse(Code.PAID_AT_INVALID)
    return RepaymentRequest(repayment_id, subject, data["due_at_ms"], paid)

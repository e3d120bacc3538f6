"""Result codes of the credit contract, their precedence per method, and their messages.

A refused request gets the first applicable code of its method's precedence table, so the same
request always gets the same answer: shape first (no state read), then the sender, then the
idempotency check ("exists" answers like "ok"), then the checks that read state.  Codes never
change once released; each has an English message (the problem's `detail`) and a zh-CN one,
side by side in `MESSAGES`.  A refusal may carry a more specific `message` (a contradictory
policy says which cut-offs contradict each other), with the code unchanged.

| method | precedence |
|---|---|
| register_model | args_invalid, sha256_invalid, model_name_invalid, model_version_invalid, card_sha256_invalid, officer_invalid, not_member, exists_with_different_fields |
| approve_model | args_invalid, sha256_invalid, officer_invalid, not_member, model_not_found, not_authorized, self_approval, model_retired, model_already_approved |
| retire_model | args_invalid, sha256_invalid, officer_invalid, not_member, model_not_found, not_authorized |
| set_policy | args_invalid, policy_id_invalid, policy_version_invalid, policy_invalid, policy_contradictory, officer_invalid, not_member, exists_with_different_fields, not_authorized, policy_version_out_of_order |
| anchor_decision | args_invalid, id_invalid, sha256_invalid, policy_id_invalid, policy_version_invalid, not_member, exists_with_different_fields, model_not_found, not_authorized, model_not_approved, policy_not_found |
| record_repayment | args_invalid, id_invalid, subject_invalid, due_at_invalid, paid_at_invalid, not_member, exists_with_different_fields |
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

from zhijin.chain.errors import ContractError

__all__ = [
    "ANCHOR_PRECEDENCE",
    "APPROVE_PRECEDENCE",
    "MESSAGES",
    "POLICY_PRECEDENCE",
    "REGISTER_PRECEDENCE",
    "REPAYMENT_PRECEDENCE",
    "RETIRE_PRECEDENCE",
    "Code",
    "CreditError",
    "http_status_for",
    "refuse",
]


class Code(StrEnum):
    ARGS_INVALID = "args_invalid"
    ID_INVALID = "id_invalid"
    SHA256_INVALID = "sha256_invalid"
    MODEL_NAME_INVALID = "model_name_invalid"
    MODEL_VERSION_INVALID = "model_version_invalid"
    CARD_SHA256_INVALID = "card_sha256_invalid"
    OFFICER_INVALID = "officer_invalid"
    NOT_MEMBER = "not_member"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_AUTHORIZED = "not_authorized"
    SELF_APPROVAL = "self_approval"
    MODEL_RETIRED = "model_retired"
    MODEL_ALREADY_APPROVED = "model_already_approved"
    MODEL_NOT_APPROVED = "model_not_approved"
    POLICY_ID_INVALID = "policy_id_invalid"
    POLICY_VERSION_INVALID = "policy_version_invalid"
    POLICY_INVALID = "policy_invalid"
    POLICY_CONTRADICTORY = "policy_contradictory"
    POLICY_VERSION_OUT_OF_ORDER = "policy_version_out_of_order"
    POLICY_NOT_FOUND = "policy_not_found"
    SUBJECT_INVALID = "subject_invalid"
    DUE_AT_INVALID = "due_at_invalid"
    PAID_AT_INVALID = "paid_at_invalid"


C = Code

REGISTER_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.SHA256_INVALID,
    C.MODEL_NAME_INVALID,
    C.MODEL_VERSION_INVALID,
    C.CARD_SHA256_INVALID,
    C.OFFICER_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
)
APPROVE_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.SHA256_INVALID,
    C.OFFICER_INVALID,
    C.NOT_MEMBER,
    C.MODEL_NOT_FOUND,
    C.NOT_AUTHORIZED,
    C.SELF_APPROVAL,
    C.MODEL_RETIRED,
    C.MODEL_ALREADY_APPROVED,
)
RETIRE_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.SHA256_INVALID,
    C.OFFICER_INVALID,
    C.NOT_MEMBER,
    C.MODEL_NOT_FOUND,
    C.NOT_AUTHORIZED,
)
POLICY_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.POLICY_ID_INVALID,
    C.POLICY_VERSION_INVALID,
    C.POLICY_INVALID,
    C.POLICY_CONTRADICTORY,
    C.OFFICER_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.NOT_AUTHORIZED,
    C.POLICY_VERSION_OUT_OF_ORDER,
)
ANCHOR_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.SHA256_INVALID,
    C.POLICY_ID_INVALID,
    C.POLICY_VERSION_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.MODEL_NOT_FOUND,
    C.NOT_AUTHORIZED,
    C.MODEL_NOT_APPROVED,
    C.POLICY_NOT_FOUND,
)
REPAYMENT_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.SUBJECT_INVALID,
    C.DUE_AT_INVALID,
    C.PAID_AT_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
)

# (zh-CN, English) per code.
MESSAGES: dict[Code, tuple[str, str]] = {
    C.ARGS_INVALID: ("参数不是该方法要求的字段集合", "args are not the fields this method takes"),
    C.ID_INVALID: ("编号须为 1-64 个字母、数字或 ._:-", "id is 1-64 of A-Z a-z 0-9 . _ : -"),
    C.SHA256_INVALID: ("SHA-256 须为 64 位小写十六进制", "a SHA-256 is 64 lowercase hex digits"),
    C.MODEL_NAME_INVALID: (
        "模型名须为 1-48 个小写字母、数字、_ 或 -",
        "model name is 1-48 of a-z 0-9 _ -",
    ),
    C.MODEL_VERSION_INVALID: (
        "模型版本须为 1-32 个字母、数字或 ._-",
        "model version is 1-32 of A-Z a-z 0-9 . _ -",
    ),
    C.CARD_SHA256_INVALID: (
        "模型卡摘要须为 64 位小写十六进制",
        "the model card digest is 64 lowercase hex digits",
    ),
    C.OFFICER_INVALID: (
        "经办人须为 1-64 个字母、数字或 ._:- 组成的员工编号",
        "officer is a staff user id of 1-64 of A-Z a-z 0-9 . _ : -",
    ),
    C.NOT_MEMBER: (
        "只有联盟成员机构可以签署此交易",
        "only a consortium member signs this transaction",
    ),
    C.EXISTS_WITH_DIFFERENT_FIELDS: (
        "该编号已用于内容不同的记录",
        "this id already holds a record with different fields",
    ),
    C.MODEL_NOT_FOUND: ("链上没有登记该模型", "no model with this SHA-256 is registered"),
    C.NOT_AUTHORIZED: (
        "该模型或策略属于另一成员机构",
        "the model or policy belongs to another member",
    ),
    C.SELF_APPROVAL: (
        "训练模型的人不得审批自己的模型（双人复核）",
        "the officer who trained a model may not approve it (maker-checker)",
    ),
    C.MODEL_RETIRED: ("该模型已停用", "the model is retired"),
    C.MODEL_ALREADY_APPROVED: (
        "该模型已由另一位经办人审批",
        "the model was already approved by another officer",
    ),
    C.MODEL_NOT_APPROVED: (
        "该模型未获审批或已停用，不能用于决策",
        "the model is not approved (or is retired) and may not decide",
    ),
    C.POLICY_ID_INVALID: (
        "策略编号须为 1-64 个字母、数字或 ._:-",
        "policy id is 1-64 of A-Z a-z 0-9 . _ : -",
    ),
    C.POLICY_VERSION_INVALID: (
        "策略版本须为 1 到 1000000 的整数",
        "policy version is an integer from 1 to 1000000",
    ),
    C.POLICY_INVALID: ("策略的结构或取值无效", "the policy's shape or values are invalid"),
    C.POLICY_CONTRADICTORY: (
        "策略的阈值或额度档位相互矛盾",
        "the policy's cut-offs or tiers contradict each other",
    ),
    C.POLICY_VERSION_OUT_OF_ORDER: (
        "策略版本须为当前最新版本加一",
        "a policy version is the latest version plus one",
    ),
    C.POLICY_NOT_FOUND: ("链上没有该策略版本", "no such policy version is on chain"),
    C.SUBJECT_INVALID: ("借款人须为 DID", "the subject is a DID"),
    C.DUE_AT_INVALID: ("应还时间须为非负整数（毫秒）", "due_at_ms is a non-negative integer"),
    C.PAID_AT_INVALID: (
        "实还时间须为空或不早于 0 的整数（毫秒）",
        "paid_at_ms is null or a non-negative integer",
    ),
}

_CONFLICTS = frozenset(
    {
        C.EXISTS_WITH_DIFFERENT_FIELDS,
        C.MODEL_ALREADY_APPROVED,
        C.MODEL_RETIRED,
        C.POLICY_VERSION_OUT_OF_ORDER,
    }
)


def http_status_for(code: str) -> int:
    """One HTTP status per code, stable like the code."""
    if code in _CONFLICTS:
        return 409
    if code in (C.MODEL_NOT_FOUND, C.POLICY_NOT_FOUND):
        return 404
    if code in (C.NOT_AUTHORIZED, C.SELF_APPROVAL, C.NOT_MEMBER):
        return 403
    return 422


class CreditError(ContractError):
    """A credit request refused with one stable `Code`; the tx changes no state."""

    def __init__(self, code: Code, message: str = "", **details: object) -> None:
        super().__init__(code.value, message or MESSAGES[code][1], **details)
        self.http_status = http_status_for(code.value)
        self.message_zh = MESSAGES[code][0]


def refuse(code: Code, message: str = "") -> NoReturn:
    """Raise the CreditError for `code`: the request is refused and writes nothing."""
    raise CreditError(code, message)

"""Result codes of the lending contract, their precedence per method, and their messages.

A refused request gets the first applicable code of its method's precedence table, so the same
request always gets the same answer: shape first (no state read), then the sender, then the
idempotency check ("exists" answers like "ok"), then the checks that read state, then the
lifecycle (`illegal_transition`), then money.  Codes never change once released; each has an
English message (the problem's `detail`) and a zh-CN one, side by side in `MESSAGES`, and its
`problem.<code>` template in the messages catalog.

| method | precedence |
|---|---|
| set_lpr | args_invalid, lpr_invalid, not_member, exists_with_different_fields, lpr_out_of_order |
| create_product | args_invalid, id_invalid, officer_invalid, product_invalid, penalty_below_contract_rate, allocation_order_invalid, buckets_invalid, not_member, exists_with_different_fields |
| approve_product | args_invalid, id_invalid, officer_invalid, not_member, product_not_found, not_authorized, self_approval, product_already_approved |
| apply | args_invalid, id_invalid, decision_invalid, amount_invalid, not_member, exists_with_different_fields, product_not_found, not_authorized, product_not_approved, currency_mismatch, amount_out_of_range, decision_not_found, decision_mismatch, collateral_required |
| review | args_invalid, id_invalid, officer_invalid, not_member, loan_not_found, not_authorized, self_approval, illegal_transition |
| withdraw | args_invalid, id_invalid, loan_not_found, not_authorized, illegal_transition |
| disburse | args_invalid, id_invalid, not_member, loan_not_found, not_authorized, illegal_transition, lpr_not_set, rate_above_cap |
| accrue | args_invalid, id_invalid, not_member, loan_not_found, not_authorized, loan_closed |
| collect | args_invalid, id_invalid, instalment_invalid, not_member, loan_not_found, not_authorized, loan_closed, instalment_not_found, collection_not_due, already_collected |
| repay | args_invalid, id_invalid, amount_invalid, repay_mode_invalid, loan_not_found, not_authorized, exists_with_different_fields, loan_closed, illegal_transition, repayment_exceeds_outstanding, funds_insufficient |
| default | args_invalid, id_invalid, not_member, loan_not_found, not_authorized, illegal_transition, default_before_limit |
| liquidate | args_invalid, id_invalid, not_member, loan_not_found, not_authorized, illegal_transition, not_secured |
| write_off | args_invalid, id_invalid, officer_invalid, not_member, loan_not_found, not_authorized, illegal_transition |
| recover | args_invalid, id_invalid, amount_invalid, loan_not_found, not_authorized, exists_with_different_fields, illegal_transition, funds_insufficient |
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

from zhijin.chain.errors import ContractError

__all__ = [
    "APPLY_PRECEDENCE",
    "MESSAGES",
    "PRODUCT_PRECEDENCE",
    "Code",
    "LendingError",
    "http_status_for",
    "refuse",
]


class Code(StrEnum):
    ARGS_INVALID = "args_invalid"
    ID_INVALID = "id_invalid"
    OFFICER_INVALID = "officer_invalid"
    LPR_INVALID = "lpr_invalid"
    LPR_OUT_OF_ORDER = "lpr_out_of_order"
    LPR_NOT_SET = "lpr_not_set"
    PRODUCT_INVALID = "product_invalid"
    PENALTY_BELOW_CONTRACT_RATE = "penalty_below_contract_rate"
    ALLOCATION_ORDER_INVALID = "allocation_order_invalid"
    BUCKETS_INVALID = "buckets_invalid"
    NOT_MEMBER = "not_member"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    PRODUCT_NOT_FOUND = "product_not_found"
    NOT_AUTHORIZED = "not_authorized"
    SELF_APPROVAL = "self_approval"
    PRODUCT_ALREADY_APPROVED = "product_already_approved"
    PRODUCT_NOT_APPROVED = "product_not_approved"
    DECISION_INVALID = "decision_invalid"
    DECISION_NOT_FOUND = "decision_not_found"
    DECISION_MISMATCH = "decision_mismatch"
    AMOUNT_INVALID = "amount_invalid"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    CURRENCY_MISMATCH = "currency_mismatch"
    COLLATERAL_REQUIRED = "collateral_required"
    LOAN_NOT_FOUND = "loan_not_found"
    ILLEGAL_TRANSITION = "illegal_transition"
    RATE_ABOVE_CAP = "rate_above_cap"
    LOAN_CLOSED = "loan_closed"
    INSTALMENT_INVALID = "instalment_invalid"
    INSTALMENT_NOT_FOUND = "instalment_not_found"
    COLLECTION_NOT_DUE = "collection_not_due"
    ALREADY_COLLECTED = "already_collected"
    REPAY_MODE_INVALID = "repay_mode_invalid"
    REPAYMENT_EXCEEDS_OUTSTANDING = "repayment_exceeds_outstanding"
    FUNDS_INSUFFICIENT = "funds_insufficient"
    DEFAULT_BEFORE_LIMIT = "default_before_limit"
    NOT_SECURED = "not_secured"


C = Code

PRODUCT_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.OFFICER_INVALID,
    C.PRODUCT_INVALID,
    C.PENALTY_BELOW_CONTRACT_RATE,
    C.ALLOCATION_ORDER_INVALID,
    C.BUCKETS_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
)
APPLY_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.DECISION_INVALID,
    C.AMOUNT_INVALID,
    C.NOT_MEMBER,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.PRODUCT_NOT_FOUND,
    C.NOT_AUTHORIZED,
    C.PRODUCT_NOT_APPROVED,
    C.CURRENCY_MISMATCH,
    C.AMOUNT_OUT_OF_RANGE,
    C.DECISION_NOT_FOUND,
    C.DECISION_MISMATCH,
    C.COLLATERAL_REQUIRED,
)

# (zh-CN, English) per code.
MESSAGES: dict[Code, tuple[str, str]] = {
    C.ARGS_INVALID: ("参数不是该方法要求的字段集合", "args are not the fields this method takes"),
    C.ID_INVALID: ("编号须为 1-48 个字母、数字或 ._:-", "an id is 1-48 of A-Z a-z 0-9 . _ : -"),
    C.OFFICER_INVALID: (
        "经办人须为 1-64 个字母、数字或 ._:- 组成的员工编号",
        "officer is a staff user id of 1-64 of A-Z a-z 0-9 . _ : -",
    ),
    C.LPR_INVALID: (
        "LPR 须为期限（1y 或 5y）、0 到 2000 个基点的利率和生效日期",
        "an LPR is a tenor (1y or 5y), a rate of 0-2000 bps and an effective day",
    ),
    C.LPR_OUT_OF_ORDER: (
        "新的 LPR 生效日期须晚于当前报价的生效日期",
        "a new LPR takes effect after the current quote's day",
    ),
    C.LPR_NOT_SET: ("该期限的 LPR 尚未在链上发布", "no LPR of this tenor is on chain yet"),
    C.PRODUCT_INVALID: (
        "贷款产品的结构或取值无效",
        "the loan product's shape or values are invalid",
    ),
    C.PENALTY_BELOW_CONTRACT_RATE: (
        "罚息利率不得低于合同利率",
        "the penalty rate may not be below the contract rate",
    ),
    C.ALLOCATION_ORDER_INVALID: (
        "还款冲抵顺序须为罚息、费用、利息、本金各出现一次",
        "the allocation order names penalty, fee, interest and principal once each",
    ),
    C.BUCKETS_INVALID: (
        "逾期分档须按起始天数递增，且违约天数不早于最后一档",
        "delinquency buckets start at rising days and default comes no sooner than the last",
    ),
    C.NOT_MEMBER: (
        "只有联盟成员机构可以签署此交易",
        "only a consortium member signs this transaction",
    ),
    C.EXISTS_WITH_DIFFERENT_FIELDS: (
        "该编号已用于内容不同的记录",
        "this id already holds a record with different fields",
    ),
    C.PRODUCT_NOT_FOUND: ("链上没有该贷款产品", "no such loan product is on chain"),
    C.NOT_AUTHORIZED: (
        "该产品或贷款属于另一机构或另一借款人",
        "the product or loan belongs to another member or borrower",
    ),
    C.SELF_APPROVAL: (
        "经办人不得审批自己创建的产品或自己经手的贷款（双人复核）",
        "an officer may not approve their own product or loan (maker-checker)",
    ),
    C.PRODUCT_ALREADY_APPROVED: (
        "该产品已由另一位经办人审批",
        "the product was already approved by another officer",
    ),
    C.PRODUCT_NOT_APPROVED: ("该产品尚未审批，不能受理申请", "the product is not approved yet"),
    C.DECISION_INVALID: (
        "授信决策须含编号、摘要、评分、负债收入比和实名认证等级",
        "the credit decision has an id, a digest, a score, a debt-to-income and a KYC level",
    ),
    C.DECISION_NOT_FOUND: (
        "链上没有该授信决策的存证",
        "no anchor of this credit decision is on chain",
    ),
    C.DECISION_MISMATCH: (
        "授信决策的摘要或机构与链上存证不符",
        "the credit decision's digest or member differs from its anchor",
    ),
    C.AMOUNT_INVALID: (
        "金额须为 1 到 10^12 之间的整数（最小货币单位）",
        "an amount is an integer of minor units from 1 to 10^12",
    ),
    C.AMOUNT_OUT_OF_RANGE: (
        "申请金额不在该产品的额度范围内",
        "the amount is outside the product's range",
    ),
    C.CURRENCY_MISMATCH: (
        "账户币种与贷款产品币种不一致",
        "an account's currency differs from the product's",
    ),
    C.COLLATERAL_REQUIRED: (
        "该产品须有足额押品：押品账户和金额未达到抵押率",
        "the product is secured: the collateral account and amount must meet its ratio",
    ),
    C.LOAN_NOT_FOUND: ("链上没有该贷款", "no such loan is on chain"),
    C.ILLEGAL_TRANSITION: (
        "贷款当前状态不允许该操作",
        "the loan's state does not allow this step",
    ),
    C.RATE_ABOVE_CAP: (
        "LPR 加点后的利率超过年利率 36% 的上限",
        "LPR plus the spread exceeds the 36 % a year ceiling",
    ),
    C.LOAN_CLOSED: (
        "该贷款已结清或核销，不能再扣款或计息",
        "the loan is closed: no more collection or interest",
    ),
    C.INSTALMENT_INVALID: (
        "期次须为 1 到 360 的整数",
        "an instalment number is an integer from 1 to 360",
    ),
    C.INSTALMENT_NOT_FOUND: ("还款计划中没有该期次", "the schedule has no such instalment"),
    C.COLLECTION_NOT_DUE: ("该期尚未到期，不能扣款", "that instalment is not due yet"),
    C.ALREADY_COLLECTED: (
        "该期今天已扣过款，同一期同一天只扣一次",
        "that instalment was already collected today: once per instalment and day",
    ),
    C.REPAY_MODE_INVALID: (
        "提前还款方式须为全部或部分，部分还款须选择缩期或重新摊还",
        "an early repayment is full or partial, a partial one shortens or re-amortises",
    ),
    C.REPAYMENT_EXCEEDS_OUTSTANDING: (
        "还款金额超过贷款的全部欠款",
        "the repayment exceeds everything the loan owes",
    ),
    C.FUNDS_INSUFFICIENT: (
        "还款账户可用余额不足",
        "the repayment account's available balance is short",
    ),
    C.DEFAULT_BEFORE_LIMIT: (
        "逾期天数尚未达到产品规定的违约天数",
        "the days past due have not reached the product's default limit",
    ),
    C.NOT_SECURED: ("该贷款没有押品可以处置", "the loan has no collateral to liquidate"),
}

_CONFLICTS = frozenset(
    {
        C.EXISTS_WITH_DIFFERENT_FIELDS,
        C.PRODUCT_ALREADY_APPROVED,
        C.LPR_OUT_OF_ORDER,
        C.ILLEGAL_TRANSITION,
        C.ALREADY_COLLECTED,
        C.LOAN_CLOSED,
    }
)
_NOT_FOUND = frozenset(
    {C.PRODUCT_NOT_FOUND, C.LOAN_NOT_FOUND, C.DECISION_NOT_FOUND, C.INSTALMENT_NOT_FOUND}
)
_FORBIDDEN = frozenset({C.NOT_AUTHORIZED, C.SELF_APPROVAL, C.NOT_MEMBER})


def http_status_for(code: str) -> int:
    """One HTTP status per code, stable like the code."""
    if code in _CONFLICTS:
        return 409
    if code in _NOT_FOUND:
        return 404
    if code in _FORBIDDEN:
        return 403
    return 422


class LendingError(ContractError):
    """A lending request refused with one stable `Code`; the tx changes no state."""

    def __init__(self, code: Code, message: str = "", **details: object) -> None:
        super().__init__(code.value, message or MESSAGES[code][1], **details)
        self.http_status = http_status_for(code.value)
        self.message_zh = MESSAGES[code][0]


def refuse(code: Code, message: str = "") -> NoReturn:
    """Raise the LendingError for `code`: the request is refused and writes nothing."""
    raise LendingError(code, message)

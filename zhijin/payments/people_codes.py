"""Stable codes of the people and merchant routes (confirmation of payee, pay by phone,
payment requests, statements, refunds), their HTTP status and their messages.

These are refusals of the off-chain services, not of the contract: the contract's own codes
(`codes.Code`) still come through unchanged when a payment a route makes is refused on chain.
A code never changes once released; each has a zh-CN and an English message side by side
(`MESSAGES`, zh-CN first), for the web app's catalogs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from zhijin.chain.errors import ZhijinError

__all__ = ["HTTP_STATUS", "MESSAGES", "PeopleCode", "PeopleRefused", "refused"]


class Code(StrEnum):
    PAYEE_NOT_FOUND = "payee_not_found"
    PAYEE_UNAVAILABLE = "payee_unavailable"
    MOBILE_NOT_OWNERS = "mobile_not_owners"
    NOT_ACCOUNT_OWNER = "not_account_owner"
    PERIOD_INVALID = "period_invalid"
    PERIOD_TOO_LONG = "period_too_long"
    TIME_ZONE_INVALID = "time_zone_invalid"
    AMOUNT_TEXT_INVALID = "amount_text_invalid"
    STATEMENT_TOO_LARGE = "statement_too_large"
    STATEMENT_TOO_BROAD = "statement_too_broad"
    PAYMENT_REQUEST_NOT_FOUND = "payment_request_not_found"
    PAYMENT_REQUEST_EXPIRED = "payment_request_expired"
    PAYMENT_REQUEST_CANCELLED = "payment_request_cancelled"
    PAYMENT_REQUEST_PAID = "payment_request_paid"
    PAYMENT_REQUEST_AMOUNT_FIXED = "payment_request_amount_fixed"
    PAYMENT_REQUEST_AMOUNT_REQUIRED = "payment_request_amount_required"
    PAYMENT_REQUEST_ID_REQUIRED = "payment_request_id_required"
    PAYMENT_REQUEST_EXPIRY_INVALID = "payment_request_expiry_invalid"
    PAYMENT_REQUEST_ACCOUNT_INVALID = "payment_request_account_invalid"
    REFUND_ORIGINAL_NOT_FOUND = "refund_original_not_found"
    REFUND_ORIGINAL_INVALID = "refund_original_invalid"
    REFUND_EXCEEDS_ORIGINAL = "refund_exceeds_original"
    REFUND_EXISTS_WITH_DIFFERENT_FIELDS = "refund_exists_with_different_fields"
    FX_QUOTE_UNAVAILABLE = "fx_quote_unavailable"
    FX_PAYEE_CURRENCY_MISMATCH = "fx_payee_currency_mismatch"
    FX_CURRENCY_PAIR_INVALID = "fx_currency_pair_invalid"


# The name the services use; `Code` is the shape the catalogs' scan reads (platform/catalogs.py).
PeopleCode = Code

HTTP_STATUS: dict[PeopleCode, int] = {
    PeopleCode.PAYEE_NOT_FOUND: 404,
    PeopleCode.PAYEE_UNAVAILABLE: 422,
    PeopleCode.MOBILE_NOT_OWNERS: 422,
    PeopleCode.NOT_ACCOUNT_OWNER: 403,
    PeopleCode.PERIOD_INVALID: 422,
    PeopleCode.PERIOD_TOO_LONG: 422,
    PeopleCode.TIME_ZONE_INVALID: 422,
    PeopleCode.AMOUNT_TEXT_INVALID: 422,
    PeopleCode.STATEMENT_TOO_LARGE: 422,
    PeopleCode.STATEMENT_TOO_BROAD: 422,
    PeopleCode.PAYMENT_REQUEST_NOT_FOUND: 404,
    PeopleCode.PAYMENT_REQUEST_EXPIRED: 410,
    PeopleCode.PAYMENT_REQUEST_CANCELLED: 410,
    PeopleCode.PAYMENT_REQUEST_PAID: 409,
    PeopleCode.PAYMENT_REQUEST_AMOUNT_FIXED: 422,
    PeopleCode.PAYMENT_REQUEST_AMOUNT_REQUIRED: 422,
    PeopleCode.PAYMENT_REQUEST_ID_REQUIRED: 422,
    PeopleCode.PAYMENT_REQUEST_EXPIRY_INVALID: 422,
    PeopleCode.PAYMENT_REQUEST_ACCOUNT_INVALID: 422,
    PeopleCode.REFUND_ORIGINAL_NOT_FOUND: 404,
    PeopleCode.REFUND_ORIGINAL_INVALID: 422,
    PeopleCode.REFUND_EXCEEDS_ORIGINAL: 409,
    PeopleCode.REFUND_EXISTS_WITH_DIFFERENT_FIELDS: 409,
    PeopleCode.FX_QUOTE_UNAVAILABLE: 422,
    PeopleCode.FX_PAYEE_CURRENCY_MISMATCH: 422,
    PeopleCode.FX_CURRENCY_PAIR_INVALID: 422,
}

# (zh-CN, English) per code.
MESSAGES: dict[PeopleCode, tuple[str, str]] = {
    PeopleCode.PAYEE_NOT_FOUND: (
        "找不到这个收款人：请核对账号、IBAN 或手机号",
        "no payee found: check the account, IBAN or phone number",
    ),
    PeopleCode.PAYEE_UNAVAILABLE: (
        "该账户已冻结或注销，不能收款",
        "this account is frozen or closed and cannot receive payments",
    ),
    PeopleCode.MOBILE_NOT_OWNERS: (
        "只能登记您本人资料中的手机号",
        "only the mobile number in your own personal data can be registered",
    ),
    PeopleCode.NOT_ACCOUNT_OWNER: (
        "这不是您的账户",
        "this is not your account",
    ),
    PeopleCode.PERIOD_INVALID: (
        "开始日期须不晚于结束日期",
        "the first day must not be after the last day",
    ),
    PeopleCode.PERIOD_TOO_LONG: (
        "查询期间最长 366 天",
        "a period is at most 366 days",
    ),
    PeopleCode.TIME_ZONE_INVALID: (
        "时区无效（例如 Asia/Shanghai）",
        "unknown time zone (an IANA name such as Asia/Shanghai)",
    ),
    PeopleCode.AMOUNT_TEXT_INVALID: (
        "金额格式不正确，或小数位数超过该币种",
        "not an amount, or more decimals than the currency has",
    ),
    PeopleCode.STATEMENT_TOO_LARGE: (
        "明细超过 10,000 条：请缩短期间",
        "more than 10,000 entries: shorten the period",
    ),
    PeopleCode.STATEMENT_TOO_BROAD: (
        "该期间的交易对方太多，无法按名称搜索：请缩短期间",
        "too many counterparties in this period to search by name: shorten the period",
    ),
    PeopleCode.PAYMENT_REQUEST_NOT_FOUND: (
        "收款码或付款链接不存在",
        "no such payment request",
    ),
    PeopleCode.PAYMENT_REQUEST_EXPIRED: (
        "收款码已过期：请向收款人索取新的",
        "this payment request has expired: ask the payee for a new one",
    ),
    PeopleCode.PAYMENT_REQUEST_CANCELLED: (
        "收款人已取消此收款码",
        "the payee cancelled this payment request",
    ),
    PeopleCode.PAYMENT_REQUEST_PAID: (
        "此收款码只能付一次，已被支付",
        "this single-use payment request has already been paid",
    ),
    PeopleCode.PAYMENT_REQUEST_AMOUNT_FIXED: (
        "此收款码金额固定，不能修改",
        "this payment request has a fixed amount",
    ),
    PeopleCode.PAYMENT_REQUEST_AMOUNT_REQUIRED: (
        "请输入金额",
        "enter the amount",
    ),
    PeopleCode.PAYMENT_REQUEST_ID_REQUIRED: (
        "可重复使用的收款码需要付款编号（随机生成）",
        "a reusable payment request needs a payment id (a random one)",
    ),
    PeopleCode.PAYMENT_REQUEST_EXPIRY_INVALID: (
        "有效期须在 1 分钟到 366 天之间",
        "the expiry is between one minute and 366 days ahead",
    ),
    PeopleCode.PAYMENT_REQUEST_ACCOUNT_INVALID: (
        "只能为您本人开立中的客户或商户账户收款",
        "collect only into your own open customer or merchant account",
    ),
    PeopleCode.REFUND_ORIGINAL_NOT_FOUND: (
        "找不到要退款的原交易",
        "the payment to refund was not found",
    ),
    PeopleCode.REFUND_ORIGINAL_INVALID: (
        "只能退还收入到本账户的已入账付款",
        "only a posted payment into this account can be refunded",
    ),
    PeopleCode.REFUND_EXCEEDS_ORIGINAL: (
        "退款总额不能超过原付款金额",
        "refunds together cannot exceed the original payment",
    ),
    PeopleCode.REFUND_EXISTS_WITH_DIFFERENT_FIELDS: (
        "该退款编号已用于另一笔退款",
        "this refund id was used for another refund",
    ),
    PeopleCode.FX_QUOTE_UNAVAILABLE: (
        "现在没有能完成这笔汇款的外汇报价：请换一个金额，或稍后再试",
        "no live FX quote can make this payment now: try another amount, or later",
    ),
    PeopleCode.FX_PAYEE_CURRENCY_MISMATCH: (
        "收款账户不是您选择的收款币种",
        "the payee's account is not in the currency you chose to send",
    ),
    PeopleCode.FX_CURRENCY_PAIR_INVALID: (
        "请选择与付款账户不同的收款币种",
        "choose a currency to send other than your account's",
    ),
}


class PeopleRefused(ZhijinError):
    """A people or merchant route refused the request, with its stable code."""

    def __init__(self, code: PeopleCode, **details: Any) -> None:
        super().__init__(code.value, MESSAGES[code][1], **details)
        self.http_status = HTTP_STATUS[code]


def refused(code: PeopleCode, **details: Any) -> PeopleRefused:
    return PeopleRefused(code, **details)

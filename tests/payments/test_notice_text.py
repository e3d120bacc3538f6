"""The sentence each payments notice carries, per locale (zhijin/payments/notifications.py)."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments.notifications import notice_text

MINE = {"mine-1", "mine-2"}


def _transfer(debit: str, credit: str, *flags: str, amount: int = 12_345) -> dict[str, Any]:
    return {
        "id": "t-1",
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "CNY",
        "flags": list(flags),
    }


@pytest.mark.parametrize(
    ("kind", "attrs", "zh", "en"),
    [
        (
            "transfer_created",
            _transfer("other", "mine-1"),
            "账户 mine-1 收到 ¥123.45",
            "Account mine-1 received CN¥123.45",
        ),
        (
            "transfer_created",
            _transfer("mine-1", "other"),
            "账户 mine-1 付出 ¥123.45",
            "Account mine-1 paid CN¥123.45",
        ),
        (
            "transfer_created",
            _transfer("mine-1", "mine-2"),
            "从账户 mine-1 转入账户 mine-2：¥123.45",
            "Moved CN¥123.45 from account mine-1 to account mine-2",
        ),
        (
            "transfer_created",
            _transfer("mine-1", "other", "pending"),
            "账户 mine-1 冻结 ¥123.45",
            "CN¥123.45 held on account mine-1",
        ),
        (
            "transfer_created",
            _transfer("other", "mine-2", "pending"),
            "账户 mine-2 有一笔 ¥123.45 待入账",
            "CN¥123.45 on its way to account mine-2",
        ),
        (
            "transfer_created",
            _transfer("mine-1", "other", "post_pending_transfer"),
            "账户 mine-1 的冻结款项 ¥123.45 已确认付出",
            "A hold of CN¥123.45 on account mine-1 was paid out",
        ),
        (
            "transfer_created",
            _transfer("mine-1", "other", "void_pending_transfer"),
            "账户 mine-1 的冻结款项已撤销",
            "A hold on account mine-1 was released",
        ),
        (
            "pending_expired",
            {**_transfer("mine-1", "other"), "transfer_id": "t-1", "expired_at_ms": 5},
            "账户 mine-1 的冻结款项 ¥123.45 已到期释放",
            "A hold of CN¥123.45 on account mine-1 expired and was released",
        ),
        (
            "account_created",
            {"id": "mine-1", "currency": "USD", "owner": "did:x"},
            "您的 USD 账户 mine-1 已开立",
            "Your USD account mine-1 is open",
        ),
        (
            "account_status_changed",
            {"account_id": "mine-1", "status": "frozen", "previous_status": "open"},
            "账户 mine-1 已冻结",
            "Account mine-1 is frozen",
        ),
        (
            "account_status_changed",
            {"account_id": "mine-1", "status": "open", "previous_status": "frozen"},
            "账户 mine-1 已恢复正常",
            "Account mine-1 is open again",
        ),
        (
            "account_status_changed",
            {"account_id": "mine-1", "status": "closed", "previous_status": "open"},
            "账户 mine-1 已销户",
            "Account mine-1 is closed",
        ),
    ],
)
def test_each_notice_says_what_happened_in_both_languages(
    kind: str, attrs: dict[str, Any], zh: str, en: str
) -> None:
    assert notice_text(kind, attrs, MINE, "zh_CN") == zh
    assert notice_text(kind, attrs, MINE, "en") == en


def test_amounts_follow_the_currency_exponent_and_never_show_minor_units() -> None:
    yen = {**_transfer("other", "mine-1", amount=3_674_737), "currency": "JPY"}
    assert notice_text("transfer_created", yen, MINE, "zh_CN") == "账户 mine-1 收到 JP¥3,674,737"
    dinar = {**_transfer("other", "mine-1", amount=1_234), "currency": "BHD"}
    assert notice_text("transfer_created", dinar, MINE, "en") == "Account mine-1 received BHD1.234"


def test_an_event_of_another_kind_still_gets_a_sentence() -> None:
    assert notice_text("fee_schedule_set", {}, MINE, "zh_CN") == "您的账户有新的变动"

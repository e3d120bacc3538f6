"""The pure helpers for people: masked names, name matching, exact amounts, local days; and
the refund claim that cannot be raced past the original, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from zhijin.node.runtime import Platform
from zhijin.payments import merchant
from zhijin.payments.expected import PartyKind, PartyName
from zhijin.payments.payees import (
    NameMatch,
    day_range_ms,
    format_minor,
    local_date,
    mask_name,
    match_name,
    parse_amount,
    time_zone,
)
from zhijin.payments.people_codes import PeopleRefused

SHANGHAI = time_zone("Asia/Shanghai")


@pytest.mark.parametrize(
    ("kind", "name", "masked"),
    [
        (PartyKind.PERSON, "张三", "张*"),
        (PartyKind.PERSON, "张三丰", "张*丰"),
        (PartyKind.PERSON, "欧阳娜娜", "欧**娜"),
        (PartyKind.PERSON, "买买提·艾力", "买*提·艾*"),
        (PartyKind.PERSON, "Zhang San", "Z**** S**"),
        (PartyKind.PERSON, " Li  Si ", "L* S*"),
        (PartyKind.BUSINESS, "杭州小明科技有限公司", "杭州****有限公司"),
        (PartyKind.BUSINESS, "小明商行", "小*商行"),
        (PartyKind.BUSINESS, "Acme Trading Co. Ltd", "Acme T****** Co. Ltd"),
        (PartyKind.INSTITUTION, "Bank of Zhijin", "Bank of Zhijin"),
    ],
)
def test_names_are_masked_by_kind(kind: PartyKind, name: str, masked: str) -> None:
    assert mask_name(PartyName(kind, name)) == masked


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        ("张三丰", "张三丰", NameMatch.MATCH),
        (" 张三 丰", "张三丰", NameMatch.MATCH),
        ("ＺＨＡＮＧ san", "Zhang San", NameMatch.MATCH),  # full-width, case
        ("San Zhang", "Zhang San", NameMatch.CLOSE_MATCH),  # order
        ("Zhang Sna", "Zhang San", NameMatch.CLOSE_MATCH),  # a typo
        ("John Smith", "John Paul Smith", NameMatch.CLOSE_MATCH),  # a middle name left out
        ("张三峰", "张三丰", NameMatch.CLOSE_MATCH),  # one character of three
        ("张五", "张三", NameMatch.NO_MATCH),  # one of two is another person
        ("张三", "张三丰", NameMatch.NO_MATCH),
        ("李四", "张三丰", NameMatch.NO_MATCH),
        ("Mary Jones", "Zhang San", NameMatch.NO_MATCH),
        ("   ", "Zhang San", NameMatch.NO_MATCH),
    ],
)
def test_expected_names_match_closely_or_not(expected: str, actual: str, result: NameMatch) -> None:
    assert match_name(expected, actual) is result


def test_amounts_are_exact_decimals_both_ways() -> None:
    assert format_minor(123_45, 2) == "123.45"
    assert format_minor(-5, 2) == "-0.05"
    assert format_minor(7, 0) == "7"
    assert format_minor(1_234, 3) == "1.234"
    assert format_minor(2**63 - 1, 2) == "92233720368547758.07"
    assert parse_amount("12.5", 2) == 1_250
    assert parse_amount("1,000.00", 2) == 100_000
    assert parse_amount("12", 0) == 12
    for bad in ("12.345", "0", "0.00", "-1", "1e3", "abc", "", "1.5", "NaN"):
        exponent = 0 if bad == "1.5" else 2
        assert parse_amount(bad, exponent) is None, bad


def test_days_are_the_users_local_days() -> None:
    start, end = day_range_ms(date(2026, 12, 2), date(2026, 12, 2), SHANGHAI)
    assert end - start == 86_400_000
    assert start == 1_796_140_800_000  # 2026-12-01T16:00:00Z
    assert local_date(start, SHANGHAI) == date(2026, 12, 2)
    assert local_date(start - 1, SHANGHAI) == date(2026, 12, 1)
    new_york = time_zone("America/New_York")  # a day of 25 hours when the clocks go back
    start, end = day_range_ms(date(2026, 11, 1), date(2026, 11, 1), new_york)
    assert end - start == 25 * 3_600_000
    with pytest.raises(ValueError, match="unknown time zone"):
        time_zone("Not/AZone")


def test_concurrent_refund_claims_never_pass_the_original(db_platform: Platform) -> None:
    original = {"id": "orig-1", "amount": 1_000}
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            merchant.claim_refund(
                db_platform,
                refund_id=f"claim-{n}",
                original=original,
                account_id="shop",
                amount_minor=300,
            )
            outcomes.append("ok")
        except PeopleRefused as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] * 3 + ["refund_exceeds_original"] * 5
    assert merchant.refunded(db_platform, "orig-1") == 900
    winner = next(n for n in range(8) if _claimed(db_platform, f"claim-{n}"))
    again = merchant.claim_refund(
        db_platform,
        refund_id=f"claim-{winner}",
        original=original,
        account_id="shop",
        amount_minor=300,
    )
    assert again.new is False and merchant.refunded(db_platform, "orig-1") == 900
    merchant.release_refund(db_platform, again)
    merchant.release_refund(db_platform, again)  # a second release gives nothing back twice
    assert merchant.refunded(db_platform, "orig-1") == 600
    with pytest.raises(PeopleRefused, match="refund_exceeds_original"):
        merchant.claim_refund(
            db_platform, refund_id="big", original=original, account_id="shop", amount_minor=401
        )


def _claimed(platform: Platform, refund_id: str) -> bool:
    from sqlalchemy import select

    from zhijin.payments.tables import refunds_table

    with platform.platform_engine.connect() as conn:
        row = conn.execute(select(refunds_table).where(refunds_table.c.id == refund_id)).first()
    return row is not None

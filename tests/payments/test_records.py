"""The stored records' encodings: each record's `canonical()` is exactly `codec.canonical` of its
JSON, that JSON is in the canonical domain for every field within its bounds, and it decodes back
to the same record.  Accounts and transfers write their JSON out without a validation pass
(`records`), so these properties are what makes that safe."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhijin.chain.codec import INT_MAX, canonical, decode, validate_value
from zhijin.chain.errors import InvariantViolation
from zhijin.payments import ledger, limits
from zhijin.payments.records import (
    Account,
    AccountFlag,
    AccountKind,
    AccountStatus,
    FeeSchedule,
    FxDetails,
    FxQuote,
    PendingState,
    PendingStatus,
    Transfer,
    TransferFlag,
    TransferKind,
)

# Any text the records may hold, including what needs escaping and what is not ASCII; lone
# surrogates are refused by every request check and cannot come out of stored JSON.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
IDS = st.from_regex(limits.ID_PATTERN, fullmatch=True)
AMOUNTS = st.integers(0, limits.AMOUNT_MAX)
TIMES = st.integers(0, INT_MAX)


def flags(kind: type[AccountFlag] | type[TransferFlag]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.sets(st.sampled_from([flag.value for flag in kind])).map(lambda f: tuple(sorted(f)))


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


ACCOUNTS = st.builds(
    Account,
    id=IDS,
    owner=TEXT,
    custodian=optional(TEXT),
    currency=st.sampled_from(["CNY", "USD", "JPY", "KWD"]),
    exponent=st.integers(0, 4),
    kind=st.sampled_from([kind.value for kind in AccountKind]),
    flags=flags(AccountFlag),
    credit_limit=AMOUNTS,
    reference=optional(TEXT),
    status=st.sampled_from([status.value for status in AccountStatus]),
    created_at_ms=TIMES,
    created_height=TIMES,
    debits_pending=AMOUNTS,
    debits_posted=AMOUNTS,
    credits_pending=AMOUNTS,
    credits_posted=AMOUNTS,
)
FX_DETAILS = st.builds(
    FxDetails,
    quote_id=IDS,
    requested_side=st.sampled_from(["source", "target"]),
    requested_amount=AMOUNTS,
    credit_account_id=IDS,
    source_currency=st.sampled_from(["CNY", "USD"]),
    target_currency=st.sampled_from(["JPY", "HKD"]),
    rate=st.sampled_from(["7.2201", "0.00673", "1"]),
    spread_bps=st.integers(0, limits.SPREAD_BPS_MAX),
    source_amount=AMOUNTS,
    spread_amount=AMOUNTS,
    target_amount=AMOUNTS,
    rounding=st.sampled_from([ROUND_FLOOR, ROUND_CEILING]),
    spread_transfer_id=optional(IDS),
    target_transfer_id=IDS,
)
TRANSFERS = st.builds(
    Transfer,
    id=IDS,
    debit_account_id=IDS,
    credit_account_id=IDS,
    amount=AMOUNTS,
    currency=st.sampled_from(["CNY", "USD", "JPY"]),
    flags=flags(TransferFlag),
    pending_id=optional(IDS),
    timeout_ms=st.integers(0, limits.PENDING_TIMEOUT_MS_MAX),
    product=optional(st.from_regex(limits.PRODUCT_PATTERN, fullmatch=True)),
    reference=optional(TEXT),
    kind=st.sampled_from([kind.value for kind in TransferKind]),
    parent_id=optional(IDS),
    fee_amount=AMOUNTS,
    fx=optional(FX_DETAILS),
    created_at_ms=TIMES,
    created_height=TIMES,
    tx_hash=st.text("0123456789abcdef", min_size=64, max_size=64),
)
PENDING_STATES = st.builds(
    PendingState,
    transfer_id=IDS,
    status=st.sampled_from([status.value for status in PendingStatus]),
    expires_at_ms=TIMES,
    resolved_by=optional(IDS),
    resolved_at_ms=optional(TIMES),
)
QUOTES = st.builds(
    FxQuote,
    id=IDS,
    provider=TEXT,
    source_currency=st.just("CNY"),
    target_currency=st.just("USD"),
    rate=st.just("0.1385"),
    spread_bps=st.integers(0, limits.SPREAD_BPS_MAX),
    expires_at_ms=TIMES,
    source_liquidity_account_id=IDS,
    target_liquidity_account_id=IDS,
    spread_account_id=IDS,
    max_target_amount=optional(AMOUNTS),
    used_target_amount=AMOUNTS,
    created_at_ms=TIMES,
    created_height=TIMES,
)
FEE_SCHEDULES = st.builds(
    FeeSchedule,
    product=st.from_regex(limits.PRODUCT_PATTERN, fullmatch=True),
    currency=st.just("CNY"),
    fee_account_id=IDS,
    fixed_amount=AMOUNTS,
    rate_bps=st.integers(0, limits.FEE_RATE_BPS_MAX),
    min_amount=AMOUNTS,
    max_amount=optional(AMOUNTS),
    rounding=st.just("ROUND_HALF_EVEN"),
    setter=TEXT,
    version=st.integers(1, 1_000),
    updated_at_ms=TIMES,
)
RECORDS = st.one_of(ACCOUNTS, TRANSFERS, PENDING_STATES, QUOTES, FEE_SCHEDULES)


@settings(max_examples=600, deadline=None)
@given(RECORDS)
def test_a_record_encodes_exactly_as_codec_canonical_and_round_trips(
    record: Account | Transfer | PendingState | FxQuote | FeeSchedule,
) -> None:
    as_json = record.to_json()
    validate_value(as_json)  # in the canonical domain: no floats, 64-bit integers, str keys
    encoded = record.canonical()
    assert encoded == canonical(as_json)
    assert type(record).from_json(decode(encoded)) == record


def test_the_written_out_encodings_cover_the_extremes() -> None:
    account = Account(
        id="a",
        owner='did:key:"quoted"\\',
        custodian=None,
        currency="CNY",
        exponent=2,
        kind="customer",
        flags=("debits_must_not_exceed_credits",),
        credit_limit=limits.AMOUNT_MAX,
        reference="工资\n\u2028",
        status="open",
        created_at_ms=INT_MAX,
        created_height=0,
        debits_pending=limits.AMOUNT_MAX,
        debits_posted=0,
        credits_pending=1,
        credits_posted=limits.AMOUNT_MAX,
    )
    assert account.canonical() == canonical(account.to_json())
    assert account.canonical().decode().startswith('{"created_at_ms":9223372036854775807,')


def zero_account() -> Account:
    return Account("a", "did:key:a", "did:key:b", "CNY", 2, "customer", (), 0, None, "open", 1, 1)


@pytest.mark.parametrize(
    "moves",
    [{"debits_pending": -1}, {"credits_posted": -1}, {"debits_posted": limits.AMOUNT_MAX + 1}],
)
def test_counters_outside_their_range_stop_the_block(moves: dict[str, int]) -> None:
    with pytest.raises(InvariantViolation):
        ledger._moved(zero_account(), **moves)


def test_counters_may_reach_both_ends_of_their_range() -> None:
    moved = ledger._moved(zero_account(), debits_posted=limits.AMOUNT_MAX)
    assert moved.debits_posted == limits.AMOUNT_MAX
    assert ledger._moved(moved, debits_posted=-limits.AMOUNT_MAX).debits_posted == 0

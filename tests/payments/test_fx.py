"""FX quotes and cross-currency payments: linked same-currency legs through the provider's
liquidity accounts, the spread as its own transfer, rounding in the provider's favour."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments.queries import read_quote, read_transfer

from .helpers import ALICE, BANK, BOB, FX_BANK, INSURER, Call, Chain, world

TTL_MS = 60_000


def quote(chain: Chain, quote_id: str = "q-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": quote_id,
        "source_currency": "CNY",
        "target_currency": "USD",
        "rate": "0.1385",
        "spread_bps": 30,
        "expires_at_ms": chain.time_ms + TTL_MS,
        "source_liquidity_account_id": "fx-cny",
        "target_liquidity_account_id": "fx-usd",
        "spread_account_id": "fxfee-cny",
        **fields,
    }


def payment(payment_id: str = "fx-1", **fields: Any) -> dict[str, Any]:
    args = {
        "id": payment_id,
        "quote_id": "q-1",
        "debit_account_id": "alice-cny",
        "credit_account_id": "bob-usd",
        "source_amount": 10_000,
        **fields,
    }
    return {k: v for k, v in args.items() if v is not None}  # None: leave the field out


@pytest.fixture
def chain() -> Chain:
    chain = world()
    assert chain.ok("create_fx_quote", quote(chain), sender=FX_BANK.did) == {
        "id": "q-1",
        "result": "ok",
        "exists": False,
    }
    return chain


def balances(chain: Chain) -> dict[str, int]:
    names = ("alice-cny", "bob-usd", "fx-cny", "fx-usd", "fxfee-cny")
    return {name: chain.balance(name) for name in names}


def test_pay_a_fixed_source_amount(chain: Chain) -> None:
    before = balances(chain)
    result = chain.ok("pay_fx", payment(), sender=ALICE)
    assert result == {
        "id": "fx-1",
        "result": "ok",
        "exists": False,
        "quote_id": "q-1",
        "source_currency": "CNY",
        "target_currency": "USD",
        "source_amount": 10_000,  # CNY 100.00 leaves Alice
        "spread_amount": 30,  # CNY 0.30 to the provider, its own transfer
        "target_amount": 1_380,  # floor(99.70 x 0.1385) = USD 13.80, not 13.81
        "rate": "0.1385",
        "rounding": "ROUND_FLOOR",
        "transfer_ids": ["fx-1", "fx-1~spread", "fx-1~target"],
    }
    after = balances(chain)
    assert {k: after[k] - before[k] for k in after} == {
        "alice-cny": -10_000,
        "bob-usd": 1_380,
        "fx-cny": 9_970,
        "fx-usd": -1_380,
        "fxfee-cny": 30,
    }
    spread = read_transfer(chain.state, "fx-1~spread")
    assert spread is not None and (spread.kind, spread.amount) == ("fx_spread", 30)


def test_pay_a_fixed_target_amount(chain: Chain) -> None:
    result = chain.ok("pay_fx", payment(source_amount=None, target_amount=10_000), sender=ALICE)
    # ceil(100.00 / 0.1385) = CNY 722.03; spread ceil(722.03 x 0.3 %) = CNY 2.17.
    assert (result["source_amount"], result["spread_amount"], result["target_amount"]) == (
        72_420,
        217,
        10_000,
    )
    assert result["rounding"] == "ROUND_CEILING"


def test_exponents_come_from_the_currencies(chain: Chain) -> None:
    chain.ok(
        "create_fx_quote",
        quote(
            chain,
            "q-jpy",
            target_currency="JPY",
            rate="20.5678",
            spread_bps=0,
            target_liquidity_account_id="fx-jpy",
        ),
        sender=FX_BANK.did,
    )
    result = chain.ok(
        "pay_fx", payment(quote_id="q-jpy", credit_account_id="bob-jpy"), sender=ALICE
    )
    # CNY 100.00 x 20.5678 = JPY 2056.78 -> JPY 2056 (JPY has no minor unit).
    assert (result["target_amount"], result["spread_amount"]) == (2_056, 0)
    assert result["transfer_ids"] == ["fx-1", "fx-1~target"]


def test_quote_lock_and_settle_in_one_block() -> None:
    chain = world()
    outcomes = chain.block(
        [
            Call("create_fx_quote", quote(chain, expires_at_ms=chain.time_ms + 5_000), FX_BANK.did),
            Call("pay_fx", payment(), ALICE),
        ]
    )
    assert all(outcome.ok for outcome in outcomes)
    used = read_quote(chain.state, "q-1")
    assert used is not None and used.used_target_amount == 1_380


def test_a_retry_answers_the_same_and_a_changed_one_is_refused(chain: Chain) -> None:
    first = chain.ok("pay_fx", payment(), sender=ALICE)
    before = chain.state.data
    assert chain.ok("pay_fx", payment(), sender=ALICE) == {**first, "exists": True}
    assert chain.state.data == before
    assert chain.fails("pay_fx", payment(source_amount=10_001), sender=ALICE) == (
        "exists_with_different_fields"
    )
    same_id: dict[str, Any] = {
        "id": "fx-1",
        "debit_account_id": "alice-cny",
        "credit_account_id": "fx-cny",
        "amount": 9_970,
        "currency": "CNY",
    }
    assert chain.transfer(sender=ALICE, **same_id)["result"] == "exists_with_different_fields"


def test_an_expired_quote_is_refused_and_nothing_moves(chain: Chain) -> None:
    chain.advance(TTL_MS)
    assert chain.fails("pay_fx", payment(), sender=ALICE) == "quote_expired"


def test_a_quote_has_a_capacity(chain: Chain) -> None:
    chain.ok("create_fx_quote", quote(chain, "q-cap", max_target_amount=2_000), sender=FX_BANK.did)
    assert chain.ok("pay_fx", payment(quote_id="q-cap"), sender=ALICE)["target_amount"] == 1_380
    code = chain.fails("pay_fx", payment("fx-2", quote_id="q-cap"), sender=ALICE)
    assert code == "quote_capacity_exceeded"


def fund_alice(chain: Chain, amount: int) -> None:
    result = chain.transfer(
        sender=BANK.did,
        id="big",
        debit_account_id="settle-cny",
        credit_account_id="alice-cny",
        amount=amount,
        currency="CNY",
    )
    assert result["result"] == "ok"


@pytest.mark.parametrize(
    ("change", "sender", "code"),
    [
        ({"source_amount": 10**9}, ALICE, "exceeds_credits"),
        ({"target_amount": 2 * 10**8, "source_amount": None}, ALICE, "liquidity_insufficient"),
        ({"quote_id": "nope"}, ALICE, "quote_not_found"),
        ({"debit_account_id": "alice-usd"}, ALICE, "currency_mismatch"),
        ({"credit_account_id": "bob-cny"}, ALICE, "currency_mismatch"),
        ({"debit_account_id": "nope"}, ALICE, "debit_account_not_found"),
        ({"credit_account_id": "nope"}, ALICE, "credit_account_not_found"),
        ({}, BOB, "not_authorized"),
        ({"source_amount": 1}, ALICE, "amount_too_small"),
        ({"source_amount": 0}, ALICE, "amount_must_be_positive"),
        ({"source_amount": 100.0}, ALICE, "amount_must_be_integer"),
        ({"source_amount": "100"}, ALICE, "amount_must_be_integer"),
        ({"source_amount": 2**63}, ALICE, "amount_exceeds_maximum"),
        ({"target_amount": 5}, ALICE, "amount_side_invalid"),
        ({"source_amount": None}, ALICE, "amount_side_invalid"),
        ({"quote_id": "q 1"}, ALICE, "quote_id_invalid"),
        ({"id": "fx~1"}, ALICE, "id_invalid"),
        ({"credit_account_id": "alice-cny"}, ALICE, "accounts_must_be_different"),
        ({"debit_account_id": None}, ALICE, "debit_account_id_invalid"),
        ({"reference": ""}, ALICE, "reference_invalid"),
        ({"memo": "x"}, ALICE, "args_invalid"),
        ({"debit_account_id": "fx-cny"}, FX_BANK.did, "liquidity_account_unavailable"),
    ],
)
def test_bad_fx_payments_change_nothing(
    chain: Chain, change: dict[str, Any], sender: str, code: str
) -> None:
    if code == "liquidity_insufficient":
        fund_alice(chain, 10**12)
    args = {k: v for k, v in {**payment(), **change}.items() if v is not None}
    assert chain.fails("pay_fx", args, sender=sender) == code
    used = read_quote(chain.state, "q-1")
    assert used is not None and used.used_target_amount == 0


def test_frozen_liquidity_stops_the_quote(chain: Chain) -> None:
    chain.ok("set_account_status", {"account_id": "fx-usd", "status": "frozen"}, sender=FX_BANK.did)
    assert chain.fails("pay_fx", payment(), sender=ALICE) == "liquidity_account_unavailable"


# -- quotes ---------------------------------------------------------------------------------------


def test_a_quote_retry_is_ok_and_a_changed_one_refused(chain: Chain) -> None:
    stored = read_quote(chain.state, "q-1")
    assert stored is not None
    same = quote(chain, expires_at_ms=stored.expires_at_ms)
    assert chain.ok("create_fx_quote", same, sender=FX_BANK.did)["exists"] is True
    chain.advance(TTL_MS * 2)  # a retry after expiry still answers like the first
    assert chain.ok("create_fx_quote", same, sender=FX_BANK.did)["exists"] is True
    code = chain.fails("create_fx_quote", {**same, "rate": "0.1386"}, sender=FX_BANK.did)
    assert code == "exists_with_different_fields"


@pytest.mark.parametrize(
    ("change", "sender", "code"),
    [
        ({"id": "q/2"}, FX_BANK.did, "id_invalid"),
        ({"target_currency": "ABC"}, FX_BANK.did, "currency_invalid"),
        ({"target_currency": "CNY"}, FX_BANK.did, "currency_pair_invalid"),
        ({"rate": "0"}, FX_BANK.did, "rate_invalid"),
        ({"rate": "-1.2"}, FX_BANK.did, "rate_invalid"),
        ({"rate": "1e3"}, FX_BANK.did, "rate_invalid"),
        ({"rate": "07.1"}, FX_BANK.did, "rate_invalid"),
        ({"rate": "7."}, FX_BANK.did, "rate_invalid"),
        ({"rate": "7.1234567890123"}, FX_BANK.did, "rate_invalid"),
        ({"rate": 7.1}, FX_BANK.did, "rate_invalid"),
        ({"rate": "NaN"}, FX_BANK.did, "rate_invalid"),
        ({"rate": " 7.1"}, FX_BANK.did, "rate_invalid"),
        ({"spread_bps": -1}, FX_BANK.did, "spread_invalid"),
        ({"spread_bps": 1_001}, FX_BANK.did, "spread_invalid"),
        ({"max_target_amount": 0}, FX_BANK.did, "capacity_invalid"),
        ({"target_liquidity_account_id": "a b"}, FX_BANK.did, "account_id_invalid"),
        ({"expires_at_ms": 0}, FX_BANK.did, "quote_expiry_invalid"),
        ({"expires_at_ms": "soon"}, FX_BANK.did, "quote_expiry_invalid"),
        ({"expires_at_ms": 10**15}, FX_BANK.did, "quote_expiry_invalid"),
        ({}, ALICE, "not_authorized"),
        ({}, INSURER.did, "not_authorized"),
        ({}, BANK.did, "liquidity_account_invalid"),  # not its liquidity
        ({"target_liquidity_account_id": "nope"}, FX_BANK.did, "liquidity_account_not_found"),
        ({"target_liquidity_account_id": "fx-jpy"}, FX_BANK.did, "liquidity_account_invalid"),
        ({"target_liquidity_account_id": "fxsettle-usd"}, FX_BANK.did, "liquidity_account_invalid"),
        ({"spread_account_id": "fxfee-usd"}, FX_BANK.did, "liquidity_account_invalid"),
        ({"extra": 1}, FX_BANK.did, "args_invalid"),
    ],
)
def test_bad_quotes(chain: Chain, change: dict[str, Any], sender: str, code: str) -> None:
    args = {**quote(chain, "q-2"), **change}
    assert chain.fails("create_fx_quote", args, sender=sender) == code


def test_a_quote_with_expiry_in_the_past_block_is_refused(chain: Chain) -> None:
    args = quote(chain, "q-2", expires_at_ms=chain.time_ms + 1_000)  # the next block's time
    assert chain.fails("create_fx_quote", args, sender=FX_BANK.did) == "quote_expiry_invalid"


def test_the_spread_account_defaults_to_the_source_liquidity(chain: Chain) -> None:
    args = {k: v for k, v in quote(chain, "q-2").items() if k != "spread_account_id"}
    chain.ok("create_fx_quote", args, sender=FX_BANK.did)
    stored = read_quote(chain.state, "q-2")
    assert stored is not None and stored.spread_account_id == "fx-cny"

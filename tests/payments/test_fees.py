"""Fee schedules per product: who sets them, how a fee is computed and booked as its own transfer."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments.queries import read_transfer

from .helpers import ALICE, BANK, FX_BANK, INSURER, PLATFORM, Chain, account, world


def schedule(**fields: Any) -> dict[str, Any]:
    return {
        "product": "p2p",
        "currency": "CNY",
        "fee_account_id": "fee-cny",
        "fixed_amount": 100,
        "rate_bps": 25,
        "min_amount": 150,
        "max_amount": 5_000,
        **fields,
    }


def pay(transfer_id: str = "t-1", amount: int = 100_000, **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": "alice-cny",
        "credit_account_id": "bob-cny",
        "amount": amount,
        "currency": "CNY",
        "product": "p2p",
        **fields,
    }


@pytest.fixture
def chain() -> Chain:
    chain = world()
    assert chain.ok("set_fee_schedule", schedule(), sender=BANK.did) == {
        "product": "p2p",
        "currency": "CNY",
        "version": 1,
    }
    return chain


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        (100_000, 350),  # 100 + 250
        (1_000, 150),  # 100 + 2.5 -> 2 (half-even) = 102, raised to the minimum
        (10_000_000, 5_000),  # capped at the maximum
        (20_200, 150),  # 100 + 50.5 -> 50 (half-even) = 150
        (20_600, 152),  # 100 + 51.5 -> 52 (half-even)
    ],
)
def test_the_fee_is_booked_as_its_own_transfer(chain: Chain, amount: int, fee: int) -> None:
    alice, bob, fees = (chain.balance(a) for a in ("alice-cny", "bob-cny", "fee-cny"))
    if amount > alice:
        chain.transfer(
            sender=BANK.did,
            id="top-up",
            debit_account_id="settle-cny",
            credit_account_id="alice-cny",
            amount=amount,
            currency="CNY",
        )
        alice += amount
    result = chain.transfer(sender=ALICE, **pay(amount=amount))
    assert result == {
        "id": "t-1",
        "result": "ok",
        "exists": False,
        "fee_amount": fee,
        "fee_transfer_id": "t-1~fee",
    }
    assert chain.balance("alice-cny") == alice - amount - fee
    assert chain.balance("bob-cny") == bob + amount
    assert chain.balance("fee-cny") == fees + fee
    fee_transfer = read_transfer(chain.state, "t-1~fee")
    assert fee_transfer is not None
    assert (fee_transfer.kind, fee_transfer.parent_id, fee_transfer.amount) == ("fee", "t-1", fee)


def test_amount_plus_fee_must_be_covered_or_nothing_moves(chain: Chain) -> None:
    everything = chain.balance("alice-cny")
    before = chain.state.data
    assert chain.transfer(sender=ALICE, **pay(amount=everything))["result"] == "exceeds_credits"
    assert chain.state.data == before


def test_a_retry_answers_with_the_fee_charged_the_first_time(chain: Chain) -> None:
    first = chain.transfer(sender=ALICE, **pay())
    chain.ok("set_fee_schedule", schedule(fixed_amount=999), sender=BANK.did)
    assert chain.transfer(sender=ALICE, **pay()) == {**first, "exists": True}


def test_a_zero_fee_books_no_fee_transfer(chain: Chain) -> None:
    chain.ok(
        "set_fee_schedule",
        schedule(fixed_amount=0, rate_bps=0, min_amount=0, max_amount=None),
        sender=BANK.did,
    )
    assert chain.transfer(sender=ALICE, **pay()) == {"id": "t-1", "result": "ok", "exists": False}
    assert read_transfer(chain.state, "t-1~fee") is None


def test_a_frozen_fee_account_stops_the_product(chain: Chain) -> None:
    chain.ok("set_account_status", {"account_id": "fee-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.transfer(sender=ALICE, **pay())["result"] == "fee_account_unavailable"


def test_the_fee_account_cannot_pay_its_own_fee(chain: Chain) -> None:
    result = chain.transfer(sender=BANK.did, **pay(debit_account_id="fee-cny", amount=1))
    assert result["result"] == "fee_account_unavailable"


def test_updates_bump_the_version_and_only_the_setter_may_update(chain: Chain) -> None:
    assert chain.ok("set_fee_schedule", schedule(rate_bps=30), sender=BANK.did)["version"] == 2
    chain.open_accounts([account("fee2", FX_BANK.did, kind="fee")], by=FX_BANK)
    code = chain.fails("set_fee_schedule", schedule(fee_account_id="fee2"), sender=FX_BANK.did)
    assert code == "not_authorized"


@pytest.mark.parametrize(
    ("args", "sender", "code"),
    [
        ("p2p", BANK.did, "args_invalid"),
        ({**schedule(), "tier": 1}, BANK.did, "args_invalid"),
        (schedule(product="P2P"), BANK.did, "product_invalid"),
        (schedule(currency="XXX"), BANK.did, "currency_invalid"),
        (schedule(fee_account_id="a/b"), BANK.did, "fee_account_id_invalid"),
        (schedule(fixed_amount=-1), BANK.did, "fee_invalid"),
        (schedule(fixed_amount=1.5), BANK.did, "fee_invalid"),
        (schedule(rate_bps=1_001), BANK.did, "fee_invalid"),
        (schedule(min_amount=10, max_amount=9), BANK.did, "fee_invalid"),
        (schedule(max_amount=True), BANK.did, "fee_invalid"),
        (schedule(product="new"), ALICE, "not_authorized"),
        (schedule(product="new"), INSURER.did, "not_authorized"),
        (schedule(product="new"), PLATFORM.did, "fee_account_invalid"),  # not its account
        (schedule(product="new", fee_account_id="nope"), BANK.did, "fee_account_not_found"),
        (schedule(product="new", fee_account_id="settle-cny"), BANK.did, "fee_account_invalid"),
        (schedule(product="new", currency="USD"), BANK.did, "fee_account_invalid"),
    ],
)
def test_bad_fee_schedules(args: Any, sender: str, code: str) -> None:
    assert world().fails("set_fee_schedule", args, sender=sender) == code


def test_vouching_does_not_set_fees() -> None:
    chain = world()
    assert chain.fails("set_fee_schedule", schedule(), sender=ALICE, signer=BANK.did) == (
        "not_authorized"
    )


def test_a_fee_account_in_another_currency_is_unavailable(chain: Chain) -> None:
    # A schedule always names a fee account in its own currency; the check guards the booking.
    assert chain.transfer(sender=ALICE, **pay(product="unknown"))["result"] == (
        "fee_schedule_not_found"
    )
    usd = {
        **pay(),
        "currency": "USD",
        "debit_account_id": "alice-usd",
        "credit_account_id": "bob-usd",
    }
    assert chain.transfer(sender=ALICE, **usd)["result"] == "fee_schedule_not_found"

"""Refunds on chain (`refund_transfer`): the payee returns a payment received, in part or in
full, and the contract refuses any refund past what the payment brought (a stable code), even
when two refunds race in one block; a retry answers `exists`, a replay with another body is
refused, and only the payee (or its custodian) may refund."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments import codes
from zhijin.payments.queries import read_transfer

from .helpers import ALICE, BANK, BOB, SHOP, Call, Chain, world

PAID = 10_000  # 100.00 CNY from alice to the shop


@pytest.fixture
def chain() -> Chain:
    chain = world()
    result = chain.transfer(
        sender=ALICE,
        id="buy-1",
        debit_account_id="alice-cny",
        credit_account_id="shop-cny",
        amount=PAID,
        currency="CNY",
    )
    assert result["result"] == "ok"
    return chain


def refund(refund_id: str = "rf-1", amount: int = 4_000, **fields: Any) -> dict[str, Any]:
    args = {"id": refund_id, "original_transfer_id": "buy-1", "amount": amount, **fields}
    return {k: v for k, v in args.items() if v is not None}


def test_a_refund_returns_part_of_the_payment_and_links_it_on_chain(chain: Chain) -> None:
    alice, shop = chain.balance("alice-cny"), chain.balance("shop-cny")
    value = chain.ok("refund_transfer", refund(reference="RF:buy-1"), sender=SHOP)
    assert value == {
        "id": "rf-1",
        "result": "ok",
        "exists": False,
        "original_transfer_id": "buy-1",
        "amount": 4_000,
        "refunded_amount": 4_000,
        "original_amount": PAID,
    }
    assert chain.balance("alice-cny") == alice + 4_000
    assert chain.balance("shop-cny") == shop - 4_000
    record = read_transfer(chain.state, "rf-1")
    assert record is not None
    assert record.parent_id == "buy-1" and record.kind == "transfer"
    assert (record.debit_account_id, record.credit_account_id) == ("shop-cny", "alice-cny")
    assert chain.state.get("payments/refunded/buy-1") == {
        "refunded_amount": 4_000,
        "refunds": 1,
        "transfer_id": "buy-1",
    }


def test_refunds_together_never_exceed_the_payment(chain: Chain) -> None:
    chain.ok("refund_transfer", refund("rf-1", 6_000), sender=SHOP)
    assert chain.fails("refund_transfer", refund("rf-2", 4_001), sender=SHOP) == (
        "refund_exceeds_original"
    )
    last = chain.ok("refund_transfer", refund("rf-2", 4_000), sender=SHOP)
    assert last["refunded_amount"] == PAID
    assert chain.fails("refund_transfer", refund("rf-3", 1), sender=SHOP) == (
        "refund_exceeds_original"
    )
    assert chain.fails("refund_transfer", refund("rf-4", PAID + 1), sender=SHOP) == (
        "refund_exceeds_original"
    )


def test_two_refunds_racing_in_one_block_cannot_both_pass(chain: Chain) -> None:
    shop = chain.balance("shop-cny")
    first, second = chain.block(
        [
            Call("refund_transfer", refund("rf-a", 7_000), SHOP),
            Call("refund_transfer", refund("rf-b", 7_000), SHOP),
        ]
    )
    assert first.ok and not second.ok
    assert second.code == "refund_exceeds_original"
    assert chain.balance("shop-cny") == shop - 7_000
    assert read_transfer(chain.state, "rf-b") is None  # the refused one wrote nothing


def test_a_retry_answers_exists_and_a_replay_with_another_body_is_refused(chain: Chain) -> None:
    first = chain.ok("refund_transfer", refund(), sender=SHOP)
    shop = chain.balance("shop-cny")
    again = chain.ok("refund_transfer", refund(), sender=SHOP)
    assert again == {**first, "exists": True}
    assert chain.balance("shop-cny") == shop  # nothing moved twice
    assert chain.state.get("payments/refunded/buy-1")["refunds"] == 1  # counted once
    assert chain.fails("refund_transfer", refund(amount=4_001), sender=SHOP) == (
        "exists_with_different_fields"
    )
    # A plain transfer under the refund's id is not that refund either.
    chain.transfer(
        sender=SHOP,
        id="plain-1",
        debit_account_id="shop-cny",
        credit_account_id="alice-cny",
        amount=1,
        currency="CNY",
    )
    assert chain.fails("refund_transfer", refund("plain-1", 1), sender=SHOP) == (
        "exists_with_different_fields"
    )


def test_only_the_payee_may_refund(chain: Chain) -> None:
    assert chain.fails("refund_transfer", refund(), sender=BOB) == "not_authorized"
    assert chain.fails("refund_transfer", refund(), sender=ALICE) == "not_authorized"
    # The custodian bank, acting in its own name, may (rule 4 of the debit authority).
    assert chain.ok("refund_transfer", refund(), sender=BANK.did)["result"] == "ok"


def test_what_is_not_a_refundable_payment_is_refused(chain: Chain) -> None:
    assert chain.fails("refund_transfer", refund(original_transfer_id="nope"), sender=SHOP) == (
        "refund_original_not_found"
    )
    chain.transfer(
        sender=ALICE,
        id="hold-1",
        debit_account_id="alice-cny",
        credit_account_id="shop-cny",
        amount=500,
        currency="CNY",
        flags=["pending"],
    )
    assert chain.fails(
        "refund_transfer", refund(original_transfer_id="hold-1", amount=1), sender=SHOP
    ) == ("refund_original_invalid")
    chain.ok("refund_transfer", refund(), sender=SHOP)
    # A refund is not itself refundable.
    assert chain.fails(
        "refund_transfer", refund("rf-x", 1, original_transfer_id="rf-1"), sender=ALICE
    ) == ("refund_original_invalid")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], "args_invalid"),
        ({"id": "rf-1", "original_transfer_id": "buy-1"}, "args_invalid"),
        ({**refund(), "extra": 1}, "args_invalid"),
        (refund("bad id!"), "id_invalid"),
        (refund(original_transfer_id="x~fee"), "original_id_invalid"),
        (refund(amount=1.5), "amount_must_be_integer"),
        (refund(amount=True), "amount_must_be_integer"),
        (refund(amount=0), "amount_must_be_positive"),
        (refund(amount=2**63), "amount_exceeds_maximum"),
        (refund(reference=""), "reference_invalid"),
    ],
)
def test_malformed_refunds_are_refused_with_their_code(chain: Chain, args: Any, code: str) -> None:
    assert chain.fails("refund_transfer", args, sender=SHOP) == code


def test_a_frozen_payee_account_cannot_refund(chain: Chain) -> None:
    chain.ok("set_account_status", {"account_id": "shop-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.fails("refund_transfer", refund(), sender=SHOP) == "debit_account_frozen"


def test_the_precedence_table_lists_every_code_the_method_uses() -> None:
    names = {code.value for code in codes.REFUND_PRECEDENCE}
    assert {"refund_exceeds_original", "refund_original_invalid", "not_authorized"} <= names

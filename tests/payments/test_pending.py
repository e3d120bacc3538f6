"""Holds: pending transfers posted in full or in part, voided, or expired at a block-time timeout;
each resolved at most once."""

from __future__ import annotations

from typing import Any

import pytest

from zhijin.payments import limits
from zhijin.payments.queries import read_pending

from .helpers import ALICE, BANK, BLOCK_INTERVAL_MS, BOB, MALLORY, SHOP, Call, Chain, world

HOLD = 10_000


def hold(transfer_id: str = "h-1", amount: int = HOLD, **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "debit_account_id": "alice-cny",
        "credit_account_id": "shop-cny",
        "amount": amount,
        "currency": "CNY",
        "flags": ["pending"],
        **fields,
    }


def post(transfer_id: str = "p-1", pending_id: str | None = "h-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "pending_id": pending_id,
        "flags": ["post_pending_transfer"],
        **fields,
    }


def void(transfer_id: str = "v-1", pending_id: str = "h-1", **fields: Any) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "pending_id": pending_id,
        "flags": ["void_pending_transfer"],
        **fields,
    }


@pytest.fixture
def chain() -> Chain:
    chain = world()
    assert chain.transfer(sender=ALICE, **hold(timeout_ms=60_000))["result"] == "ok"
    return chain


def counters(chain: Chain, account_id: str) -> tuple[int, int, int, int]:
    a = chain.account(account_id)
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def test_a_hold_reserves_funds_without_moving_them(chain: Chain) -> None:
    alice = chain.account("alice-cny")
    assert alice.debits_pending == HOLD
    assert alice.available == alice.balance_posted - HOLD
    assert chain.account("shop-cny").credits_pending == HOLD
    assert chain.balance("shop-cny") == 0
    state = read_pending(chain.state, "h-1")
    assert state is not None and state.status == "pending"
    too_much = hold("h-2", alice.available + 1)
    assert chain.transfer(sender=ALICE, **too_much)["result"] == "exceeds_credits"


def test_post_in_full(chain: Chain) -> None:
    assert chain.transfer(sender=SHOP, **post()) == {"id": "p-1", "result": "ok", "exists": False}
    assert counters(chain, "shop-cny") == (0, 0, 0, HOLD)
    assert chain.account("alice-cny").debits_pending == 0
    state = read_pending(chain.state, "h-1")
    assert state is not None and (state.status, state.resolved_by) == ("posted", "p-1")
    assert not any(k.startswith("payments/expiry/") for k in chain.state.data)


def test_post_in_part_releases_the_rest(chain: Chain) -> None:
    alice_before = chain.balance("alice-cny")
    assert chain.transfer(sender=SHOP, **post(amount=2_500))["result"] == "ok"
    assert chain.balance("shop-cny") == 2_500
    assert chain.balance("alice-cny") == alice_before - 2_500
    assert chain.account("alice-cny").debits_pending == 0
    # The rest is released, not still held: a second post finds the hold resolved.
    assert chain.transfer(sender=SHOP, **post("p-2", amount=1))["result"] == (
        "pending_transfer_already_posted"
    )


def test_void_releases_everything(chain: Chain) -> None:
    before = chain.balance("alice-cny")
    assert chain.transfer(sender=SHOP, **void())["result"] == "ok"
    assert chain.balance("alice-cny") == before
    assert counters(chain, "alice-cny")[0] == 0
    assert counters(chain, "shop-cny") == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (void(), void("v-2"), "pending_transfer_already_voided"),
        (void(), post(), "pending_transfer_already_voided"),
        (post(), void(), "pending_transfer_already_posted"),
        (post(), post("p-2"), "pending_transfer_already_posted"),
    ],
)
def test_a_hold_is_resolved_at_most_once(
    chain: Chain, first: dict[str, Any], second: dict[str, Any], code: str
) -> None:
    assert chain.transfer(sender=SHOP, **first)["result"] == "ok"
    before = chain.state.data
    assert chain.transfer(sender=SHOP, **second)["result"] == code
    assert chain.state.data == before


def test_a_post_and_a_void_in_one_batch_resolve_once(chain: Chain) -> None:
    results = chain.transfers([post(), void()], sender=SHOP)
    assert [r["result"] for r in results] == ["ok", "pending_transfer_already_posted"]


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (post(amount=HOLD + 1), "exceeds_pending_transfer_amount"),
        (post(amount=0), "amount_must_be_positive"),
        (post(amount=1.5), "amount_must_be_integer"),
        (void(amount=HOLD - 1), "pending_transfer_has_different_amount"),
        (post(debit_account_id="bob-cny"), "pending_transfer_has_different_debit_account_id"),
        (post(credit_account_id="bob-cny"), "pending_transfer_has_different_credit_account_id"),
        (post(currency="USD"), "pending_transfer_has_different_currency"),
        (post(pending_id="nope"), "pending_transfer_not_found"),
        (post(pending_id="dep-alice-cny"), "pending_transfer_not_pending"),
        (post(pending_id="p-1"), "pending_id_must_be_different"),
        (post(pending_id=None), "pending_id_required"),
        (post(pending_id="a b"), "pending_id_invalid"),
        (post(product="card"), "product_not_allowed"),
        (post(timeout_ms=5), "timeout_reserved_for_pending_transfer"),
        (
            {**post(), "flags": ["post_pending_transfer", "void_pending_transfer"]},
            "flags_are_mutually_exclusive",
        ),
        ({**post(), "flags": ["pending", "post_pending_transfer"]}, "flags_are_mutually_exclusive"),
    ],
)
def test_bad_posts_and_voids(chain: Chain, item: dict[str, Any], code: str) -> None:
    item = {k: v for k, v in item.items() if v is not None}
    before = chain.state.data
    assert chain.transfer(sender=SHOP, **item)["result"] == code
    assert chain.state.data == before


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (hold("h-9", pending_id="h-1"), "pending_id_must_be_absent"),
        (hold("h-9", timeout_ms=-1), "timeout_invalid"),
        (hold("h-9", timeout_ms=1.5), "timeout_invalid"),
        (hold("h-9", timeout_ms=limits.PENDING_TIMEOUT_MS_MAX + 1), "timeout_invalid"),
        (hold("h-9", product="card"), "product_not_allowed"),
        ({**hold("h-9"), "flags": [], "timeout_ms": 5}, "timeout_reserved_for_pending_transfer"),
    ],
)
def test_bad_holds(chain: Chain, item: dict[str, Any], code: str) -> None:
    assert chain.transfer(sender=ALICE, **item)["result"] == code


@pytest.mark.parametrize(
    ("sender", "item", "expected"),
    [
        (SHOP, post(), "ok"),  # the payee captures
        (ALICE, post(), "ok"),  # the payer releases to the payee
        (MALLORY, post(), "not_authorized"),
        (SHOP, void(), "ok"),  # the payee gives the hold up
        (ALICE, void(), "not_authorized"),  # the payer waits for the timeout instead
        (BANK.did, void(), "ok"),  # the payee's custodian bank
    ],
)
def test_who_may_post_or_void(
    chain: Chain, sender: str, item: dict[str, Any], expected: str
) -> None:
    assert chain.transfer(sender=sender, **item)["result"] == expected


def test_a_hold_on_a_frozen_account_can_be_voided_but_not_posted(chain: Chain) -> None:
    chain.ok("set_account_status", {"account_id": "alice-cny", "status": "frozen"}, sender=BANK.did)
    assert chain.transfer(sender=SHOP, **post())["result"] == "debit_account_frozen"
    assert chain.transfer(sender=SHOP, **void())["result"] == "ok"


def test_a_retried_post_answers_the_same_and_a_changed_one_is_refused(chain: Chain) -> None:
    assert chain.transfer(sender=SHOP, **post(amount=100))["result"] == "ok"
    assert chain.transfer(sender=SHOP, **post(amount=100))["exists"] is True
    # Leaving the amount out means "all of the hold", which is not what p-1 posted.
    result = chain.transfer(sender=SHOP, **post())
    assert result["result"] == "exists_with_different_fields"
    assert "amount" in result["message"]


def test_an_omitted_field_on_a_retry_means_the_holds_value(chain: Chain) -> None:
    assert chain.transfer(sender=SHOP, **post())["result"] == "ok"
    explicit = post(
        amount=HOLD, debit_account_id="alice-cny", credit_account_id="shop-cny", currency="CNY"
    )
    assert chain.transfer(sender=SHOP, **explicit)["exists"] is True


# -- expiry ---------------------------------------------------------------------------------------


def test_a_hold_expires_at_its_timeout_in_block_time() -> None:
    chain = world()
    chain.transfer(sender=ALICE, **hold(timeout_ms=10_000))
    created_at = chain.time_ms
    alice_before = counters(chain, "alice-cny")
    chain.advance(10_000 - BLOCK_INTERVAL_MS - 1)  # one ms before the timeout
    assert counters(chain, "alice-cny") == alice_before
    chain.events.clear()
    chain.advance(1)  # block time reaches created_at + timeout
    assert chain.time_ms == created_at + 10_000 - BLOCK_INTERVAL_MS
    chain.advance(BLOCK_INTERVAL_MS)
    assert counters(chain, "alice-cny")[0] == 0
    assert counters(chain, "shop-cny") == (0, 0, 0, 0)
    state = read_pending(chain.state, "h-1")
    assert state is not None and (state.status, state.resolved_by) == ("expired", None)
    assert [e["type"] for e in chain.events] == ["payments.pending_expired"]
    assert chain.transfer(sender=SHOP, **post())["result"] == "pending_transfer_expired"
    assert chain.transfer(sender=SHOP, **void())["result"] == "pending_transfer_expired"


def test_a_post_in_the_block_that_reaches_the_timeout_is_too_late() -> None:
    chain = world()
    chain.transfer(sender=ALICE, **hold(timeout_ms=5_000))
    outcome = chain.block(
        [Call("create_transfers", {"transfers": [post()]}, SHOP)], advance_ms=5_000
    )[0]
    assert outcome.value["results"][0]["result"] == "pending_transfer_expired"
    state = read_pending(chain.state, "h-1")
    assert state is not None and state.status == "expired"


def test_a_hold_without_timeout_waits_forever() -> None:
    chain = world()
    chain.transfer(sender=ALICE, **hold())
    chain.advance(limits.PENDING_TIMEOUT_MS_MAX * 2)
    assert chain.transfer(sender=SHOP, **post())["result"] == "ok"


def test_expiry_is_batched_per_block_oldest_first() -> None:
    chain = world()
    count = limits.EXPIRIES_PER_BLOCK_MAX + 50
    calls = [
        Call(
            "create_transfers",
            {
                "transfers": [
                    hold(f"h-{i:03d}", 1, debit_account_id="bob-cny", timeout_ms=1_000)
                    for i in range(start, min(count, start + limits.TRANSFERS_PER_BATCH_MAX))
                ]
            },
            BOB,
        )
        for start in range(0, count, limits.TRANSFERS_PER_BATCH_MAX)
    ]
    outcomes = chain.block(calls)  # all in one block: they all expire at the same time
    assert all(o.ok and o.value["failed"] == 0 for o in outcomes)
    chain.events.clear()
    chain.advance(5_000)
    assert len(chain.events) == limits.EXPIRIES_PER_BLOCK_MAX
    assert chain.account("bob-cny").debits_pending == 50
    # A due hold the sweep has not reached yet is already refused as expired.
    late = read_pending(chain.state, f"h-{count - 1:03d}")
    assert late is not None and late.status == "pending"
    assert chain.transfer(sender=SHOP, **post(pending_id=f"h-{count - 1:03d}"))["result"] == (
        "pending_transfer_expired"
    )
    chain.advance(BLOCK_INTERVAL_MS)
    assert chain.account("bob-cny").debits_pending == 0

"""Many clients paying from one hot account in one block: it is never overdrawn and nothing is
lost.  The chain executes a block's txs one after another over the staged state, so each sees
every earlier debit; these tests pin that down for the payments contract."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zhijin.payments.queries import trial_balance

from .helpers import ALICE, PLATFORM, Call, world

RECEIVERS = ("bob-cny", "carol-cny", "shop-cny")


def payment(index: int, amount: int) -> Call:
    item = {
        "id": f"hot-{index}",
        "debit_account_id": "alice-cny",
        "credit_account_id": RECEIVERS[index % len(RECEIVERS)],
        "amount": amount,
        "currency": "CNY",
    }
    # Half the clients come through the gateway (vouched), half sign themselves.
    signer = PLATFORM.did if index % 2 else None
    return Call("create_transfers", {"transfers": [item]}, ALICE, signer)


def test_five_hundred_clients_race_for_one_balance() -> None:
    chain = world()
    start = chain.balance("alice-cny")
    received_before = sum(chain.balance(name) for name in RECEIVERS)
    outcomes = chain.block([payment(i, 3_000) for i in range(500)])
    results = [outcome.value["results"][0]["result"] for outcome in outcomes]
    assert results.count("ok") == start // 3_000
    assert set(results) == {"ok", "exceeds_credits"}
    # Every success came before every refusal: the balance ran out once, in order.
    assert results.index("exceeds_credits") == start // 3_000
    assert chain.balance("alice-cny") == start % 3_000
    received = sum(chain.balance(name) for name in RECEIVERS) - received_before
    assert received == start - start % 3_000
    assert all(line.balanced for line in trial_balance(chain.state))


@settings(max_examples=15, deadline=None)
@given(
    amounts=st.lists(st.integers(1, 400_000), min_size=1, max_size=60),
    holds=st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_holds_and_payments_interleaved_never_overdraw(
    amounts: list[int], holds: list[bool]
) -> None:
    chain = world()
    start = chain.balance("alice-cny")
    calls = []
    for index, amount in enumerate(amounts):
        call = payment(index, amount)
        if holds[index]:
            call.args["transfers"][0]["flags"] = ["pending"]
        calls.append(call)
    outcomes = chain.block(calls)
    expected_available = start
    for index, outcome in enumerate(outcomes):
        result = outcome.value["results"][0]["result"]
        # A simple model of the account: each call succeeds exactly when it fits.
        if amounts[index] <= expected_available:
            assert result == "ok"
            expected_available -= amounts[index]
        else:
            assert result == "exceeds_credits"
    alice = chain.account("alice-cny")
    assert alice.available == expected_available >= 0

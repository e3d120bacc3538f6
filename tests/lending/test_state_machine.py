"""Random sequences of lending operations (apply, review, disburse, collect, accrue, skip days,
repay early in full or in part, default, withdraw, drain the borrower's account) over a few
loans: every block keeps every lending, credit and payments invariant (the test chain checks
them after each block), and a refused tx changes nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.lending.helpers import DECISION, application, lending_world
from tests.payments.helpers import ALICE, BANK, BOB, Call
from zhijin.lending.schedule import DAY_MS

LOANS = ("L0", "L1", "L2")
BORROWERS = ((ALICE, "alice"), (BOB, "bob"), (ALICE, "alice-pledge"))

loan = st.integers(0, len(LOANS) - 1)
skip = st.tuples(st.just("skip"), st.sampled_from([1, 5, 29, 31, 45, 95]))
collect = st.tuples(st.just("collect"), loan, st.integers(1, 13))
# Skipping days and collecting weigh more: they are what a loan's life is mostly made of.
operation = st.one_of(
    skip,
    skip,
    skip,
    collect,
    collect,
    collect,
    st.tuples(st.just("apply"), loan, st.integers(500, 800), st.integers(100_000, 25_000_000)),
    st.tuples(st.just("review"), loan, st.booleans()),
    st.tuples(st.just("disburse"), loan),
    st.tuples(st.just("accrue"), loan),
    st.tuples(st.just("repay_full"), loan),
    st.tuples(st.just("repay_partial"), loan, st.integers(1, 2_000_000), st.booleans()),
    st.tuples(st.just("default"), loan),
    st.tuples(st.just("withdraw"), loan),
    st.tuples(st.just("drain"), loan),
)


def _call(op: tuple[Any, ...], step: int, chain: Any) -> Call | None:
    name = op[0]
    if name == "skip":
        return None
    loan_id = LOANS[op[1]]
    borrower, account_id = BORROWERS[op[1]]
    if name == "apply":
        decision = {**DECISION, "score": op[2]}
        args = application(loan_id, borrower=borrower, repayment_account_id=account_id,
                           amount_minor=op[3], decision=decision)  # fmt: skip
        return Call("apply", args, BANK.did, contract="lending")
    if name == "review":
        args = {"loan_id": loan_id, "officer": "u-officer", "approve": op[2], "reason": "checked"}
        return Call("review", args, BANK.did, contract="lending")
    if name in ("disburse", "accrue", "default"):
        return Call(name, {"loan_id": loan_id}, BANK.did, contract="lending")
    if name == "withdraw":
        return Call("withdraw", {"loan_id": loan_id}, borrower, BANK.did, contract="lending")
    if name == "collect":
        # Mostly an instalment already due (the keeper's case), sometimes one in the future.
        record = chain.state.get(f"lending/loan/{loan_id}")
        due = [
            i["number"] for i in (record or {}).get("schedule", []) if i["due_ms"] <= chain.time_ms
        ]
        number = op[2] if op[2] > 12 or not due else due[min(op[2], len(due)) - 1]
        return Call("collect", {"loan_id": loan_id, "instalment": number}, BANK.did,
                    contract="lending")  # fmt: skip
    if name == "repay_full":
        args = {"loan_id": loan_id, "payment_id": f"r{step}", "mode": "full"}
        return Call("repay", args, borrower, BANK.did, contract="lending")
    if name == "repay_partial":
        args = {"loan_id": loan_id, "payment_id": f"r{step}", "mode": "partial",
                "amount_minor": op[2], "then": "shorten" if op[3] else "reamortise"}  # fmt: skip
        return Call("repay", args, borrower, BANK.did, contract="lending")
    balance = chain.balance(account_id)
    transfer = {"id": f"drain-{step}", "debit_account_id": account_id,
                "credit_account_id": "settle", "amount": max(balance // 2, 1), "currency": "CNY"}  # fmt: skip
    return Call("create_transfers", {"transfers": [transfer]}, BANK.did)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(500, 800), min_size=3, max_size=3),
    st.lists(operation, min_size=10, max_size=40),
)
def test_random_lending_keeps_every_invariant(
    scores: list[int], operations: list[tuple[Any, ...]]
) -> None:
    chain = lending_world()
    # Every loan applied for (a low score queues it for review), the first two disbursed if
    # approved, so the random steps meet live loans as often as not.
    prelude: list[tuple[Any, ...]] = [("apply", i, scores[i], 1_200_000) for i in range(3)]
    prelude += [("disburse", 0), ("disburse", 1)]
    for step, op in enumerate([*prelude, *operations]):
        call = _call(op, step, chain)
        if call is None:
            chain.block([], advance_ms=op[1] * DAY_MS)
            continue
        before = dict(chain.state.raw)
        (outcome,) = chain.block([call], advance_ms=3_600_000)
        event(f"{op[0]}: {'ok' if outcome.ok else outcome.code}")
        if not outcome.ok:
            assert chain.state.raw == before, (op, outcome.code)
    for loan_id in LOANS:
        record = chain.state.get(f"lending/loan/{loan_id}")
        if record is not None and record["status"] == "closed":
            assert chain.balance(f"lnp-{loan_id}") == 0

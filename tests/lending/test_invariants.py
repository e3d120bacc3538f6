"""Every named lending invariant can fire: a sound book built by real operations, then one
record corrupted on purpose, must be reported by that invariant, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.lending.helpers import LendingChain, disbursed, lending_world
from tests.payments.helpers import ALICE, BANK
from zhijin.chain.memory import MemoryState
from zhijin.lending import invariants
from zhijin.lending.invariants import INVARIANTS, check_invariants
from zhijin.lending.records import keys
from zhijin.lending.schedule import DAY_MS

State = dict[str, Any]


def _book() -> LendingChain:
    """Three loans: one collected once, one repaid in full, one defaulted."""
    chain = lending_world()
    loan = disbursed(chain)
    chain.block([], advance_ms=loan["schedule"][0]["due_ms"] - chain.time_ms + 3_600_000)
    chain.ok("collect", {"loan_id": "L1", "instalment": 1}, sender=BANK.did)
    disbursed(chain, "L2")
    chain.ok("repay", {"loan_id": "L2", "payment_id": "p-1", "mode": "full"}, sender=ALICE,
             signer=BANK.did)  # fmt: skip
    disbursed(chain, "L3", repayment_account_id="alice-pledge")
    drain = chain.balance("alice-pledge")
    chain.transfer(sender=BANK.did, id="drain", debit_account_id="alice-pledge",
                   credit_account_id="settle", amount=drain, currency="CNY")  # fmt: skip
    chain.block([], advance_ms=130 * DAY_MS)
    chain.ok("default", {"loan_id": "L3"}, sender=BANK.did)
    assert check_invariants(chain.state) == []
    return chain


@pytest.fixture(scope="module")
def book() -> State:
    return _book().state.data


def _loan(state: State, loan_id: str) -> dict[str, Any]:
    loan: dict[str, Any] = state[keys.loan(loan_id)]
    return loan


def _more_principal_repaid(state: State) -> None:
    _loan(state, "L1")["principal_repaid_minor"] += 1


def _schedule_short(state: State) -> None:
    _loan(state, "L1")["schedule"][5]["principal_minor"] -= 1


def _payment_split_wrong(state: State) -> None:
    key = next(k for k in state if k.startswith(keys.PAYMENT + "L1/"))
    state[key]["interest_minor"] += 1


def _transfer_allocated_twice(state: State) -> None:
    first = next(k for k in state if k.startswith(keys.PAYMENT + "L1/"))
    copy = dict(state[first])
    copy["payment_id"] = "again"
    state[keys.payment("L1", "again")] = copy


def _defaulted_early(state: State) -> None:
    history = _loan(state, "L3")["history"]
    step = next(item for item in history if item[0] == "defaulted")
    step[3] = "12 days past due"


def _interest_after_close(state: State) -> None:
    loan = _loan(state, "L2")
    loan["accrued_through_day"] = "2099-01-01"


CASES: dict[str, tuple[Callable[[State], None], ...]] = {
    # A changed counter is also a schedule that no longer adds up? No: the schedule check reads
    # the plan and the prepaid principal only, so each corruption breaks exactly one.
    "outstanding_principal_is_the_loan_account": (_more_principal_repaid,),
    "schedule_principal_is_the_amount": (_schedule_short,),
    "no_payment_allocated_twice": (_payment_split_wrong, _transfer_allocated_twice),
    "default_only_after_its_limit": (_defaulted_early,),
    "no_interest_on_a_closed_loan": (_interest_after_close,),
}


def test_every_registered_invariant_has_a_negative_case() -> None:
    assert set(CASES) == set(INVARIANTS)


@pytest.mark.parametrize(
    ("name", "corrupt"),
    [(name, corrupt) for name, cases in CASES.items() for corrupt in cases],
)
def test_a_corrupted_book_is_reported_by_name(
    book: State, name: str, corrupt: Callable[[State], None]
) -> None:
    state = {key: _deep(value) for key, value in book.items()}
    corrupt(state)
    problems = check_invariants(MemoryState(state))
    assert problems and {problem.split(":", 1)[0] for problem in problems} == {name}


def test_a_negative_case_fails_without_its_invariant(
    book: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, cases in CASES.items():
        monkeypatch.setitem(invariants.INVARIANTS, name, lambda _reader: [])
        for corrupt in cases:
            state = {key: _deep(value) for key, value in book.items()}
            corrupt(state)
            assert check_invariants(MemoryState(state)) == []
        monkeypatch.undo()


def _deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep(v) for v in value]
    return value

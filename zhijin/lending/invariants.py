"""Lending's named invariants over a whole chain state: each a small function returning its
problems (empty when it holds), registered by name in `INVARIANTS`.  Each recomputes from the
records and from payments' balances; none trusts a counter alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from zhijin.chain import limits as chain_limits
from zhijin.chain.contract import StateReader
from zhijin.lending.lifecycle import CLOSED, Status
from zhijin.lending.records import Loan, PaymentRecord, Product, keys, loan_account
from zhijin.payments import read_account

__all__ = ["INVARIANTS", "check_invariants"]

PROBLEMS_MAX = 100  # a report stays readable however broken the state is
_UNDISBURSED = frozenset({Status.REVIEW, Status.APPROVED, Status.REJECTED, Status.WITHDRAWN})


def _scan(reader: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    after = ""
    while page := reader.scan(prefix, after, chain_limits.SCAN_ROWS_MAX):
        yield from page
        after = page[-1][0]


def _loans(reader: StateReader) -> Iterator[Loan]:
    for _, value in _scan(reader, keys.LOAN):
        yield Loan.from_json(value)


def _bounded(problems: Iterator[str]) -> list[str]:
    found: list[str] = []
    for problem in problems:
        found.append(problem)
        if len(found) >= PROBLEMS_MAX:
            break
    return found


def outstanding_principal_is_the_loan_account(reader: StateReader) -> list[str]:
    """A disbursed loan's outstanding principal is exactly its payments account's debit
    balance (the money is the record, not a number kept aside)."""

    def problems() -> Iterator[str]:
        for loan in _loans(reader):
            account = read_account(reader, loan_account(loan.loan_id))
            if loan.status in _UNDISBURSED:
                if account is not None:
                    yield f"loan {loan.loan_id} is {loan.status} but has a loan account"
                continue
            balance = 0 if account is None else account.debits_posted - account.credits_posted
            if balance != loan.outstanding_principal_minor:
                yield (
                    f"loan {loan.loan_id} owes {loan.outstanding_principal_minor} of principal "
                    f"but its account {loan_account(loan.loan_id)} holds {balance}"
                )

    return _bounded(problems())


def schedule_principal_is_the_amount(reader: StateReader) -> list[str]:
    """Σ of a schedule's principal plus what was prepaid outside it is the loan amount, and no
    instalment is paid beyond what it asks."""

    def problems() -> Iterator[str]:
        for loan in _loans(reader):
            if not loan.schedule:
                continue
            planned = sum(item.principal_minor for item in loan.schedule)
            if planned + loan.prepaid_principal_minor != loan.amount_minor:
                yield (
                    f"loan {loan.loan_id}: schedule principal {planned} + prepaid "
                    f"{loan.prepaid_principal_minor} != amount {loan.amount_minor}"
                )
            for item, principal, interest in zip(
                loan.schedule, loan.principal_paid, loan.interest_paid, strict=True
            ):
                if principal > item.principal_minor or interest > item.interest_minor:
                    yield f"loan {loan.loan_id}: instalment {item.number} is paid beyond its plan"

    return _bounded(problems())


def no_payment_allocated_twice(reader: StateReader) -> list[str]:
    """Each payment's parts add up to it, each payments transfer belongs to one payment, and a
    loan's counters are the sum of its payments."""

    def problems() -> Iterator[str]:
        seen: dict[str, str] = {}
        per_loan: dict[str, list[int]] = {}
        for _, value in _scan(reader, keys.PAYMENT):
            payment = PaymentRecord.from_json(value)
            name = f"{payment.loan_id}/{payment.payment_id}"
            parts = (
                payment.penalty_minor
                + payment.fee_minor
                + payment.interest_minor
                + payment.principal_minor
            )
            if payment.kind != "recovery" and parts != payment.amount_minor:
                yield f"payment {name} allocates {parts} of {payment.amount_minor}"
            for transfer_id in payment.transfer_ids:
                if transfer_id in seen:
                    yield f"transfer {transfer_id} is allocated by {seen[transfer_id]} and {name}"
                seen[transfer_id] = name
            if payment.kind in ("collection", "repayment", "liquidation"):
                sums = per_loan.setdefault(payment.loan_id, [0, 0, 0])
                sums[0] += payment.interest_minor
                sums[1] += payment.penalty_minor
                sums[2] += payment.fee_minor
        for loan in _loans(reader):
            interest, penalty, fee = per_loan.get(loan.loan_id, [0, 0, 0])
            counters = (
                loan.interest_collected_minor,
                loan.penalty_collected_minor,
                loan.fee_collected_minor,
            )
            if counters != (interest, penalty, fee):
                yield (
                    f"loan {loan.loan_id} counts {counters} collected but its payments "
                    f"say {(interest, penalty, fee)}"
                )

    return _bounded(problems())


def default_only_after_its_limit(reader: StateReader) -> list[str]:
    """A loan went into default only once its days past due reached the product's limit."""

    def problems() -> Iterator[str]:
        for loan in _loans(reader):
            defaulted = [step for step in loan.history if step[0] == Status.DEFAULTED]
            if not defaulted:
                continue
            raw = reader.get(keys.product(loan.product_id))
            if raw is None:
                yield f"loan {loan.loan_id} names a missing product {loan.product_id}"
                continue
            limit = Product.from_json(raw).default_after_days
            reached = int(defaulted[0][3].split(" ", 1)[0])
            if reached < limit:
                yield f"loan {loan.loan_id} defaulted at {reached} days past due, limit {limit}"

    return _bounded(problems())


def no_interest_on_a_closed_loan(reader: StateReader) -> list[str]:
    """A closed loan accrues nothing after its closing day and owes no penalty or fee."""

    def problems() -> Iterator[str]:
        for loan in _loans(reader):
            if loan.status not in CLOSED:
                continue
            if loan.closed_day is None:
                yield f"loan {loan.loan_id} is {loan.status} without a closing day"
                continue
            through = loan.accrued_through_day
            if through is not None and date.fromisoformat(through) > date.fromisoformat(
                loan.closed_day
            ):
                yield f"loan {loan.loan_id} accrued through {through}, after closing {loan.closed_day}"
            if loan.penalty_due_minor or loan.fee_due_minor:
                yield f"loan {loan.loan_id} is {loan.status} but owes penalty or fees"

    return _bounded(problems())


INVARIANTS: dict[str, Callable[[StateReader], list[str]]] = {
    "outstanding_principal_is_the_loan_account": outstanding_principal_is_the_loan_account,
    "schedule_principal_is_the_amount": schedule_principal_is_the_amount,
    "no_payment_allocated_twice": no_payment_allocated_twice,
    "default_only_after_its_limit": default_only_after_its_limit,
    "no_interest_on_a_closed_loan": no_interest_on_a_closed_loan,
}


def check_invariants(reader: StateReader) -> list[str]:
    """Every broken invariant as "name: problem"; empty when lending's state is sound."""
    return [f"{name}: {problem}" for name, check in INVARIANTS.items() for problem in check(reader)]

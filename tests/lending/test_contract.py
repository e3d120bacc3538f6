"""The lending contract through the real runtime with payments and credit: products with
maker-checker, the lifecycle's transitions and refusals, money in payments' accounts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lending.helpers import (
    DECISION,
    LendingChain,
    anchor,
    application,
    disbursed,
    lending_world,
    product,
)
from tests.payments.helpers import ALICE, BANK, BOB, FX_BANK, Call
from zhijin.lending.codes import MESSAGES, Code
from zhijin.lending.schedule import DAY_MS


@pytest.fixture
def chain() -> LendingChain:
    return lending_world()


def _due_days(chain: LendingChain, loan: dict[str, Any], number: int) -> None:
    """Advance to the day instalment `number` falls due."""
    due = loan["schedule"][number - 1]["due_ms"]
    chain.block([], advance_ms=due - chain.time_ms + 3_600_000)


def test_every_code_has_both_messages() -> None:
    assert set(MESSAGES) == set(Code)
    assert all(zh and en and zh != en for zh, en in MESSAGES.values())


# -- products ----------------------------------------------------------------------------------


def test_a_product_needs_a_second_officer(chain: LendingChain) -> None:
    chain.ok("create_product", product(product_id="p2"), sender=BANK.did)
    args = {"product_id": "p2", "officer": "u-maker"}
    assert chain.fails("approve_product", args, sender=BANK.did) == Code.SELF_APPROVAL
    # Unapproved, it takes no application.
    app = application("L9", product_id="p2")
    assert chain.fails("apply", app, sender=BANK.did) == Code.PRODUCT_NOT_APPROVED
    approved = chain.ok(
        "approve_product", {"product_id": "p2", "officer": "u-two"}, sender=BANK.did
    )
    assert approved["product"]["approved_by"] == "u-two"
    other = {"product_id": "p2", "officer": "u-three"}
    assert chain.fails("approve_product", other, sender=BANK.did) == Code.PRODUCT_ALREADY_APPROVED
    assert chain.fails("approve_product", other, sender=FX_BANK.did) == Code.NOT_AUTHORIZED


def test_a_product_retry_answers_exists_and_a_changed_one_is_refused(chain: LendingChain) -> None:
    assert chain.ok("create_product", product(), sender=BANK.did)["exists"] is True
    changed = product(spread_bps=999)
    assert (
        chain.fails("create_product", changed, sender=BANK.did) == Code.EXISTS_WITH_DIFFERENT_FIELDS
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"penalty_uplift_bps": -1}, Code.PENALTY_BELOW_CONTRACT_RATE),
        ({"allocation_order": ["fee", "penalty", "interest"]}, Code.ALLOCATION_ORDER_INVALID),
        (
            {"allocation_order": ["fee", "fee", "interest", "principal"]},
            Code.ALLOCATION_ORDER_INVALID,
        ),
        (
            {"buckets": [{"name": "M2", "from_days": 31}, {"name": "M1", "from_days": 1}]},
            Code.BUCKETS_INVALID,
        ),
        ({"default_after_days": 30}, Code.BUCKETS_INVALID),
        ({"term_months": 0}, Code.PRODUCT_INVALID),
        ({"term_months": 10**9}, Code.PRODUCT_INVALID),
        ({"term_months": 12.0}, Code.PRODUCT_INVALID),
        ({"spread_bps": True}, Code.PRODUCT_INVALID),
        ({"method": "balloon"}, Code.PRODUCT_INVALID),
        ({"min_amount_minor": 500, "max_amount_minor": 100}, Code.PRODUCT_INVALID),
        ({"auto_approval": {"min_score": 600}}, Code.PRODUCT_INVALID),
        ({"product_id": "bad id!"}, Code.ID_INVALID),
        ({"officer": ""}, Code.OFFICER_INVALID),
    ],
)
def test_absurd_products_are_refused(
    chain: LendingChain, changes: dict[str, Any], code: Code
) -> None:
    assert (
        chain.fails("create_product", product(**{"product_id": "p3", **changes}), sender=BANK.did)
        == code
    )


def test_precedence_shape_before_penalty_before_member(chain: LendingChain) -> None:
    # Both an invalid term and a negative penalty: the shape's code wins; a user is no member.
    args = product(product_id="p4", term_months=0, penalty_uplift_bps=-1)
    assert chain.fails("create_product", args, sender=BANK.did) == Code.PRODUCT_INVALID
    args = product(product_id="p4", penalty_uplift_bps=-1)
    assert (
        chain.fails("create_product", args, sender=ALICE, signer=BANK.did)
        == Code.PENALTY_BELOW_CONTRACT_RATE
    )
    assert (
        chain.fails("create_product", product(product_id="p4"), sender=ALICE, signer=BANK.did)
        == Code.NOT_MEMBER
    )


def test_lpr_moves_forward_only(chain: LendingChain) -> None:
    later = {"tenor": "1y", "rate_bps": 300, "effective_day": "2024-02-20"}
    assert chain.ok("set_lpr", later, sender=BANK.did)["lpr"]["previous_bps"] == 310
    earlier = {"tenor": "1y", "rate_bps": 320, "effective_day": "2024-01-20"}
    assert chain.fails("set_lpr", earlier, sender=BANK.did) == Code.LPR_OUT_OF_ORDER
    assert (
        chain.fails("set_lpr", {**later, "rate_bps": 301}, sender=BANK.did)
        == Code.EXISTS_WITH_DIFFERENT_FIELDS
    )
    assert chain.fails("set_lpr", {**later, "tenor": "3y"}, sender=BANK.did) == Code.LPR_INVALID
    assert (
        chain.fails("set_lpr", {**later, "effective_day": "2024-02-30"}, sender=BANK.did)
        == Code.LPR_INVALID
    )


# -- applications --------------------------------------------------------------------------------


def test_auto_approval_then_disbursement_moves_money_into_the_loan_account(
    chain: LendingChain,
) -> None:
    before = chain.balance("alice")
    loan = disbursed(chain)
    assert loan["status"] == "current" and loan["approval"] == "auto"
    assert loan["rate_bps"] == 310 + 150 and loan["penalty_rate_bps"] == 690
    assert chain.balance("alice") == before + 1_200_000
    assert chain.balance("lnp-L1") == -1_200_000  # outstanding principal IS the balance
    assert sum(i["principal_minor"] for i in loan["schedule"]) == 1_200_000
    assert [step[0] for step in loan["history"]] == ["approved", "current"]


def test_failed_conditions_queue_the_application_with_reasons(chain: LendingChain) -> None:
    decision = {**DECISION, "score": 550, "kyc_level": 1}
    loan = chain.ok("apply", application(decision=decision), sender=BANK.did)["loan"]
    assert loan["status"] == "review"
    assert loan["reasons"] == ["score_below_minimum", "kyc_level_too_low"]
    # Not disbursable from the queue: an illegal transition, with its stable code.
    assert chain.fails("disburse", {"loan_id": "L1"}, sender=BANK.did) == Code.ILLEGAL_TRANSITION
    own = {"loan_id": "L1", "officer": "u-alice", "approve": True, "reason": "ok"}
    assert chain.fails("review", own, sender=BANK.did) == Code.SELF_APPROVAL
    ok = chain.ok(
        "review", {**own, "officer": "u-officer", "reason": "income verified"}, sender=BANK.did
    )
    assert ok["loan"]["status"] == "approved" and ok["loan"]["approval"] == "u-officer"
    assert (
        chain.fails("review", {**own, "officer": "u-officer"}, sender=BANK.did)
        == Code.ILLEGAL_TRANSITION
    )


def test_a_rejected_application_is_closed(chain: LendingChain) -> None:
    chain.ok("apply", application(amount_minor=30_000_000), sender=BANK.did)
    args = {"loan_id": "L1", "officer": "u-officer", "approve": False, "reason": "DTI too high"}
    assert chain.ok("review", args, sender=BANK.did)["loan"]["status"] == "rejected"
    assert (
        chain.fails("withdraw", {"loan_id": "L1"}, sender=ALICE, signer=BANK.did)
        == Code.ILLEGAL_TRANSITION
    )


def test_the_borrower_withdraws_before_disbursement(chain: LendingChain) -> None:
    chain.ok("apply", application(), sender=BANK.did)
    assert (
        chain.fails("withdraw", {"loan_id": "L1"}, sender=BOB, signer=BANK.did)
        == Code.NOT_AUTHORIZED
    )
    loan = chain.ok("withdraw", {"loan_id": "L1"}, sender=ALICE, signer=BANK.did)["loan"]
    assert loan["status"] == "withdrawn"
    assert chain.fails("disburse", {"loan_id": "L1"}, sender=BANK.did) == Code.ILLEGAL_TRANSITION


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_minor": 0}, Code.AMOUNT_INVALID),
        ({"amount_minor": 10**15}, Code.AMOUNT_INVALID),
        ({"amount_minor": "100"}, Code.AMOUNT_INVALID),
        ({"amount_minor": 99_999}, Code.AMOUNT_OUT_OF_RANGE),
        ({"decision": {**DECISION, "score": -1}}, Code.DECISION_INVALID),
        ({"decision": {**DECISION, "record_sha256": "E" * 64}}, Code.DECISION_INVALID),
        ({"decision": {**DECISION, "decision_id": "d-unknown"}}, Code.DECISION_NOT_FOUND),
        ({"decision": {**DECISION, "record_sha256": "f" * 64}}, Code.DECISION_MISMATCH),
        ({"repayment_account_id": "bob"}, Code.NOT_AUTHORIZED),
        ({"product_id": "nope"}, Code.PRODUCT_NOT_FOUND),
        ({"borrower": "alice"}, Code.ID_INVALID),
        ({"collateral_minor": 5}, Code.COLLATERAL_REQUIRED),
    ],
)
def test_bad_applications_are_refused(
    chain: LendingChain, changes: dict[str, Any], code: Code
) -> None:
    assert chain.fails("apply", application(**changes), sender=BANK.did) == code


def test_an_application_retry_is_idempotent(chain: LendingChain) -> None:
    assert chain.ok("apply", application(), sender=BANK.did)["exists"] is False
    assert chain.ok("apply", application(), sender=BANK.did)["exists"] is True
    assert chain.fails("apply", application(amount_minor=1_300_000), sender=BANK.did) == (
        Code.EXISTS_WITH_DIFFERENT_FIELDS
    )
    # Another member may not lend under this bank's product.
    assert chain.fails("apply", application("L2"), sender=FX_BANK.did) == Code.NOT_AUTHORIZED


def test_a_secured_product_needs_its_collateral_and_escrows_it() -> None:
    chain = lending_world(collateral_ratio_bps=5_000)
    short = application(collateral_account_id="alice-pledge", collateral_minor=100_000)
    assert chain.fails("apply", short, sender=BANK.did) == Code.COLLATERAL_REQUIRED
    disbursed(chain, collateral_account_id="alice-pledge", collateral_minor=600_000)
    pledge = chain.account("alice-pledge")
    assert pledge.debits_pending == 600_000  # held, not moved
    assert chain.balance("alice-pledge") == 10_000_000


# -- collections, delinquency ----------------------------------------------------------------------


def test_collection_on_the_due_day_once_per_day(chain: LendingChain) -> None:
    loan = disbursed(chain)
    args = {"loan_id": "L1", "instalment": 1}
    assert chain.fails("collect", args, sender=BANK.did) == Code.COLLECTION_NOT_DUE
    _due_days(chain, loan, 1)
    before = chain.balance("alice")
    paid = chain.ok("collect", args, sender=BANK.did)
    first = loan["schedule"][0]
    assert paid["payment"]["amount_minor"] == first["principal_minor"] + first["interest_minor"]
    assert chain.balance("alice") == before - paid["payment"]["amount_minor"]
    assert chain.balance("lnp-L1") == -(1_200_000 - first["principal_minor"])
    assert chain.balance("bank-income") == first["interest_minor"]
    # Two keepers in one block, or a restarted one the same day: the second is refused.
    outcomes = chain.block([Call("collect", args, BANK.did, contract="lending")] * 2)
    assert [o.code for o in outcomes] == [Code.ALREADY_COLLECTED] * 2
    assert chain.balance("alice") == before - paid["payment"]["amount_minor"]
    assert (
        chain.fails("collect", {"loan_id": "L1", "instalment": 13}, sender=BANK.did)
        == Code.INSTALMENT_NOT_FOUND
    )


def test_two_keepers_in_the_same_block_collect_once(chain: LendingChain) -> None:
    loan = disbursed(chain)
    _due_days(chain, loan, 1)
    args = {"loan_id": "L1", "instalment": 1}
    outcomes = chain.block([Call("collect", args, BANK.did, contract="lending")] * 2)
    assert [o.ok for o in outcomes] == [True, False]
    assert outcomes[1].code == Code.ALREADY_COLLECTED
    assert chain.loan()["payments"] == 1


def _drain(chain: LendingChain, account_id: str, keep: int) -> None:
    amount = chain.balance(account_id) - keep
    chain.transfer(sender=BANK.did, id=f"drain-{chain.height}", debit_account_id=account_id,
                   credit_account_id="settle", amount=amount, currency="CNY")  # fmt: skip


def test_short_funds_collect_in_part_then_penalty_and_buckets(chain: LendingChain) -> None:
    loan = disbursed(chain)
    _drain(chain, "alice", 50_000)
    _due_days(chain, loan, 1)
    paid = chain.ok("collect", {"loan_id": "L1", "instalment": 1}, sender=BANK.did)
    assert paid["payment"]["amount_minor"] == 50_000
    assert paid["payment"]["interest_minor"] == loan["schedule"][0]["interest_minor"]
    assert chain.balance("alice") == 0
    chain.days(3)  # within grace: no penalty yet
    assert chain.ok("accrue", {"loan_id": "L1"}, sender=BANK.did)["loan"]["penalty_due_minor"] == 0
    chain.days(1)
    accrued = chain.ok("accrue", {"loan_id": "L1"}, sender=BANK.did)
    state = accrued["loan"]
    assert state["status"] == "overdue" and state["bucket"] == "M1"
    assert state["days_past_due"] == 4
    assert state["fee_due_minor"] == 2_000
    assert state["penalty_due_minor"] > 0
    again = chain.ok("accrue", {"loan_id": "L1"}, sender=BANK.did)
    assert (
        again["exists"] is True and again["loan"]["penalty_due_minor"] == state["penalty_due_minor"]
    )
    assert chain.fails("default", {"loan_id": "L1"}, sender=BANK.did) == Code.DEFAULT_BEFORE_LIMIT


def test_paying_arrears_allocates_penalty_fee_interest_principal(chain: LendingChain) -> None:
    loan = disbursed(chain)
    _drain(chain, "alice", 0)
    _due_days(chain, loan, 1)
    chain.days(10)
    state = chain.ok("accrue", {"loan_id": "L1"}, sender=BANK.did)["loan"]
    penalty, fee = state["penalty_due_minor"], state["fee_due_minor"]
    chain.transfer(sender=BANK.did, id="topup", debit_account_id="settle", credit_account_id="alice",
                   amount=penalty + fee + 1_000, currency="CNY")  # fmt: skip
    paid = chain.ok("collect", {"loan_id": "L1", "instalment": 1}, sender=BANK.did)["payment"]
    assert (paid["penalty_minor"], paid["fee_minor"], paid["interest_minor"]) == (
        penalty,
        fee,
        1_000,
    )
    assert paid["principal_minor"] == 0


def test_default_after_the_limit_then_collateral_then_write_off_then_recovery() -> None:
    chain = lending_world(collateral_ratio_bps=2_000)
    loan = disbursed(chain, collateral_account_id="alice-pledge", collateral_minor=240_000)
    _drain(chain, "alice", 0)
    _due_days(chain, loan, 1)
    chain.days(89)
    assert chain.fails("default", {"loan_id": "L1"}, sender=BANK.did) == Code.DEFAULT_BEFORE_LIMIT
    chain.days(1)
    defaulted = chain.ok("default", {"loan_id": "L1"}, sender=BANK.did)["loan"]
    assert defaulted["status"] == "defaulted" and defaulted["bucket"] == "M3+"
    taken = chain.ok("liquidate", {"loan_id": "L1"}, sender=BANK.did)
    assert taken["loan"]["status"] == "collateral_liquidated"
    assert taken["payment"]["amount_minor"] == 240_000
    assert chain.balance("alice-pledge") == 10_000_000 - 240_000
    assert chain.account("alice-pledge").debits_pending == 0
    outstanding = taken["loan"]["amount_minor"] - taken["loan"]["principal_repaid_minor"]
    assert chain.balance("lnp-L1") == -outstanding
    income_before = chain.balance("bank-income")
    written = chain.ok("write_off", {"loan_id": "L1", "officer": "u-risk"}, sender=BANK.did)["loan"]
    assert written["status"] == "written_off"
    assert chain.balance("lnp-L1") == 0
    assert chain.balance("bank-income") == income_before - outstanding
    assert (
        chain.fails("collect", {"loan_id": "L1", "instalment": 1}, sender=BANK.did)
        == Code.LOAN_CLOSED
    )
    assert chain.fails("accrue", {"loan_id": "L1"}, sender=BANK.did) == Code.LOAN_CLOSED
    chain.transfer(sender=BANK.did, id="late-money", debit_account_id="settle", credit_account_id="alice",
                   amount=100_000, currency="CNY")  # fmt: skip
    pay = {"loan_id": "L1", "payment_id": "rec-1", "amount_minor": 100_000}
    recovered = chain.ok("recover", pay, sender=ALICE, signer=BANK.did)
    assert (
        recovered["loan"]["status"] == "recovered"
        and recovered["loan"]["recovered_minor"] == 100_000
    )
    assert chain.ok("recover", pay, sender=ALICE, signer=BANK.did)["exists"] is True
    assert chain.balance("alice") == 0
    steps = [step[0] for step in recovered["loan"]["history"]]
    assert steps == ["approved", "current", "overdue", "defaulted", "collateral_liquidated",
                     "written_off", "recovered"]  # fmt: skip


def test_an_unsecured_loan_has_nothing_to_liquidate(chain: LendingChain) -> None:
    loan = disbursed(chain)
    _drain(chain, "alice", 0)
    _due_days(chain, loan, 1)
    chain.days(95)
    chain.ok("default", {"loan_id": "L1"}, sender=BANK.did)
    assert chain.fails("liquidate", {"loan_id": "L1"}, sender=BANK.did) == Code.NOT_SECURED


# -- early repayment ---------------------------------------------------------------------------


def test_full_early_repayment_closes_the_loan(chain: LendingChain) -> None:
    disbursed(chain)
    chain.days(40)
    pay = {"loan_id": "L1", "payment_id": "pay-1", "mode": "full"}
    done = chain.ok("repay", pay, sender=ALICE, signer=BANK.did)
    assert done["loan"]["status"] == "closed"
    assert chain.balance("lnp-L1") == 0
    assert chain.ok("repay", pay, sender=ALICE, signer=BANK.did)["exists"] is True
    again = {**pay, "payment_id": "pay-2"}
    assert chain.fails("repay", again, sender=ALICE, signer=BANK.did) == Code.LOAN_CLOSED
    assert chain.fails("repay", again, sender=BOB, signer=BANK.did) == Code.NOT_AUTHORIZED


@pytest.mark.parametrize("then", ["reamortise", "shorten"])
def test_partial_early_repayment_reschedules(chain: LendingChain, then: str) -> None:
    loan = disbursed(chain)
    payment = loan["schedule"][1]["principal_minor"] + loan["schedule"][1]["interest_minor"]
    chain.days(10)
    pay = {
        "loan_id": "L1",
        "payment_id": "pp-1",
        "mode": "partial",
        "amount_minor": 600_000,
        "then": then,
    }
    after = chain.ok("repay", pay, sender=ALICE, signer=BANK.did)["loan"]
    assert after["status"] == "current"
    assert after["amount_minor"] - after["principal_repaid_minor"] == -chain.balance("lnp-L1")
    future = after["schedule"]
    if then == "shorten":
        assert len(future) < 12
        assert all(i["principal_minor"] + i["interest_minor"] == payment for i in future[1:-1])
    else:
        assert len(future) == 12
        assert future[1]["principal_minor"] + future[1]["interest_minor"] < payment


def test_repayment_refusals(chain: LendingChain) -> None:
    disbursed(chain)
    base = {"loan_id": "L1", "payment_id": "x-1"}
    assert (
        chain.fails(
            "repay", {**base, "mode": "partial", "amount_minor": 10}, sender=ALICE, signer=BANK.did
        )
        == Code.REPAY_MODE_INVALID
    )
    assert (
        chain.fails("repay", {**base, "mode": "partial"}, sender=ALICE, signer=BANK.did)
        == Code.REPAY_MODE_INVALID
    )
    assert (
        chain.fails(
            "repay", {**base, "mode": "full", "amount_minor": 10**11}, sender=ALICE, signer=BANK.did
        )
        == Code.REPAYMENT_EXCEEDS_OUTSTANDING
    )
    _drain(chain, "alice", 100)
    assert (
        chain.fails("repay", {**base, "mode": "full"}, sender=ALICE, signer=BANK.did)
        == Code.FUNDS_INSUFFICIENT
    )


def test_disbursement_needs_the_lpr_and_the_rate_cap() -> None:
    chain = lending_world(spread_bps=3_000, lpr_tenor="5y")
    chain.ok(
        "set_lpr",
        {"tenor": "5y", "rate_bps": 1_000, "effective_day": "2024-01-01"},
        sender=BANK.did,
    )
    chain.ok("apply", application(), sender=BANK.did)
    assert chain.fails("disburse", {"loan_id": "L1"}, sender=BANK.did) == Code.RATE_ABOVE_CAP
    assert (
        chain.fails("disburse", {"loan_id": "L1"}, sender=ALICE, signer=BANK.did) == Code.NOT_MEMBER
    )


def test_a_second_decision_can_be_anchored_and_used(chain: LendingChain) -> None:
    anchor(chain, "d-2", "1" * 64)
    decision = {**DECISION, "decision_id": "d-2", "record_sha256": "1" * 64}
    loan = chain.ok("apply", application("L2", decision=decision), sender=BANK.did)["loan"]
    assert loan["decision_id"] == "d-2"


def test_a_loan_one_day_before_due_is_not_collected(chain: LendingChain) -> None:
    loan = disbursed(chain)
    due = loan["schedule"][0]["due_ms"]
    chain.block([], advance_ms=due - chain.time_ms - DAY_MS)
    assert (
        chain.fails("collect", {"loan_id": "L1", "instalment": 1}, sender=BANK.did)
        == Code.COLLECTION_NOT_DUE
    )

"""A lending test chain: payments, credit and lending over MemoryState, every invariant of the
three after every block; a bank with a funded customer, an approved product, an LPR."""

from __future__ import annotations

import copy
from typing import Any

from tests.credit.helpers import CARD, POLICY, SHA_A
from tests.payments.helpers import ALICE, BANK, BOB, Call, Chain, account
from zhijin.credit.contract import CREDIT_CONTRACT
from zhijin.credit.invariants import check_invariants as credit_invariants
from zhijin.lending.contract import LENDING_CONTRACT
from zhijin.lending.invariants import check_invariants
from zhijin.lending.schedule import DAY_MS

PRODUCT: dict[str, Any] = {
    "product_id": "consumer-12",
    "officer": "u-maker",
    "currency": "CNY",
    "lpr_tenor": "1y",
    "spread_bps": 150,
    "term_months": 12,
    "method": "equal_instalment",
    "day_count": "30_360",
    "grace_days": 3,
    "penalty_uplift_bps": 5_000,
    "compound_overdue_interest": True,
    "late_fee_minor": 2_000,
    "allocation_order": ["penalty", "fee", "interest", "principal"],
    "min_amount_minor": 100_000,
    "max_amount_minor": 50_000_000,
    "auto_approval": {
        "min_score": 600,
        "max_dti_bps": 5_000,
        "max_amount_minor": 20_000_000,
        "min_kyc_level": 2,
    },
    "collateral_ratio_bps": 0,
    "buckets": [
        {"name": "M1", "from_days": 1},
        {"name": "M2", "from_days": 31},
        {"name": "M3+", "from_days": 61},
    ],
    "default_after_days": 90,
    "income_account_id": "bank-income",
}

DECISION = {
    "decision_id": "d-1",
    "record_sha256": "e" * 64,
    "outcome": "approve",
    "score": 700,
    "dti_bps": 3_000,
    "kyc_level": 2,
}


def product(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(PRODUCT)
    data.update(changes)
    return data


class LendingChain(Chain):
    def block(self, calls: Any, *, advance_ms: int = 1_000) -> Any:
        outcomes = super().block(calls, advance_ms=advance_ms)
        if self.check_invariants:
            assert check_invariants(self.state) == []
            assert credit_invariants(self.state) == []
        return outcomes

    def tx(self, method: str, args: Any, *, sender: str, signer: str | None = None) -> Any:
        contract = "payments" if method in ("create_accounts", "create_transfers") else "lending"
        return self.block([Call(method, args, sender, signer, contract=contract)])[0]

    def credit(self, method: str, args: Any) -> Any:
        outcome = self.block([Call(method, args, BANK.did, contract="credit")])[0]
        assert outcome.ok, (outcome.code, outcome.message)
        return outcome.value

    def days(self, count: int) -> None:
        """An empty block `count` days later."""
        self.block([], advance_ms=count * DAY_MS)

    def loan(self, loan_id: str = "L1") -> dict[str, Any]:
        from zhijin.lending.records import Loan, keys

        record = self.state.get(keys.loan(loan_id))
        assert record is not None
        return Loan.from_json(record).to_json()


def anchor(chain: LendingChain, decision_id: str = "d-1", record: str = "e" * 64) -> None:
    chain.credit(
        "anchor_decision",
        {
            "decision_id": decision_id,
            "record_sha256": record,
            "model_sha256": SHA_A,
            "policy_id": "retail",
            "policy_version": 1,
        },
    )


def lending_world(**product_changes: Any) -> LendingChain:
    """The bank, its income account, Alice and Bob with 100,000.00 yuan each, an approved
    model and policy in credit, decision d-1 anchored, the 1Y LPR at 3.10 %, and the product
    created by u-maker and approved by u-checker."""
    chain = LendingChain(contracts=(CREDIT_CONTRACT, LENDING_CONTRACT))
    chain.open_accounts(
        [
            account("settle", BANK.did, "CNY", "settlement"),
            account("bank-income", BANK.did, "CNY", "settlement"),
            account("alice", ALICE),
            account("alice-pledge", ALICE),
            account("bob", BOB),
        ]
    )
    for who in ("alice", "alice-pledge", "bob"):
        result = chain.transfer(
            sender=BANK.did, id=f"dep-{who}", debit_account_id="settle",
            credit_account_id=who, amount=10_000_000, currency="CNY",
        )  # fmt: skip
        assert result["result"] == "ok", result
    chain.credit(
        "register_model",
        {"sha256": SHA_A, "name": "german", "version": "1", "card_sha256": CARD, "trainer": "u-t"},
    )
    chain.credit("approve_model", {"sha256": SHA_A, "approver": "u-a"})
    chain.credit(
        "set_policy", {"policy_id": "retail", "version": 1, "rules": POLICY, "officer": "u-p"}
    )
    anchor(chain)
    chain.ok(
        "set_lpr", {"tenor": "1y", "rate_bps": 310, "effective_day": "2023-10-20"}, sender=BANK.did
    )
    chain.ok(
        "set_lpr", {"tenor": "5y", "rate_bps": 360, "effective_day": "2023-10-20"}, sender=BANK.did
    )
    chain.ok("create_product", product(**product_changes), sender=BANK.did)
    chain.ok(
        "approve_product",
        {"product_id": PRODUCT["product_id"], "officer": "u-checker"},
        sender=BANK.did,
    )
    return chain


def application(loan_id: str = "L1", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "loan_id": loan_id,
        "product_id": PRODUCT["product_id"],
        "borrower": ALICE,
        "applied_by": "u-alice",
        "amount_minor": 1_200_000,
        "decision": dict(DECISION),
        "repayment_account_id": "alice",
    }
    data.update(changes)
    return data


def disbursed(chain: LendingChain, loan_id: str = "L1", **changes: Any) -> dict[str, Any]:
    loan = chain.ok("apply", application(loan_id, **changes), sender=BANK.did)["loan"]
    assert loan["status"] == "approved", loan
    return chain.ok("disburse", {"loan_id": loan_id}, sender=BANK.did)["loan"]

"""Shared values for the credit tests: a coherent policy, a valid applicant, a chain."""

from __future__ import annotations

import copy
from typing import Any

from tests.payments.helpers import BANK, Call, Chain
from zhijin.credit.contract import CREDIT_CONTRACT
from zhijin.credit.invariants import check_invariants

POLICY: dict[str, Any] = {
    "currency": "CNY",
    "approve": {"points_min": 620, "pd_ppm_max": 150_000},
    "decline": {"points_below": 480, "pd_ppm_from": 450_000},
    "tiers": [
        {"points_min": 480, "points_max": 579, "limit_minor": 500_000, "rate_bps": 2_400,
         "price_tier": "C"},
        {"points_min": 580, "points_max": 679, "limit_minor": 2_000_000, "rate_bps": 1_500,
         "price_tier": "B"},
        {"points_min": 680, "points_max": 1_000, "limit_minor": 5_000_000, "rate_bps": 900,
         "price_tier": "A"},
    ],
    "income_multiple": 6,
    "thin_file_behaviour_min": 560,
}  # fmt: skip

APPLICANT: dict[str, Any] = {
    "checking_status": "no_account",
    "duration_months": 12,
    "credit_history": "existing_paid_duly",
    "purpose": "furniture",
    "amount_minor": 300_000,
    "savings": "100_to_500",
    "employment_length": "4_to_7_years",
    "installment_rate": 2,
    "other_debtors": "none",
    "residence_years": 3,
    "property": "real_estate",
    "age_years": 41,
    "other_plans": "none",
    "housing": "own",
    "existing_credits": 1,
    "job": "skilled",
    "dependants": 1,
    "telephone": True,
}

SHA_A = "a" * 64
SHA_B = "b" * 64
CARD = "c" * 64


def policy(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(POLICY)
    data.update(changes)
    return data


class CreditChain(Chain):
    """The payments test chain with the credit contract, checking credit's invariants too."""

    def block(self, calls: Any, *, advance_ms: int = 1_000) -> Any:
        outcomes = super().block(calls, advance_ms=advance_ms)
        assert check_invariants(self.state) == []
        return outcomes

    def tx(self, method: str, args: Any, *, sender: str, signer: str | None = None) -> Any:
        return self.block([Call(method, args, sender, signer, contract="credit")])[0]


def credit_chain() -> CreditChain:
    return CreditChain(contracts=(CREDIT_CONTRACT,))


def register(chain: Chain, sha: str = SHA_A, *, trainer: str = "u-trainer") -> Any:
    return chain.ok(
        "register_model",
        {"sha256": sha, "name": "german", "version": "1", "card_sha256": CARD, "trainer": trainer},
        sender=BANK.did,
    )

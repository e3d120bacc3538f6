"""Demo data for `make run`: the LPR, a consumer product made by the product desk and approved
by the demo bank officer (maker-checker), and loans for the demo customers in the states a new
chain can hold: current (disbursed, schedule running), repaid early (closed), in the officer's
queue, and withdrawn.

Delinquent states (M1, M3+, defaulted with the collateral taken, written off) need months of
block time to pass, and a chain's block time only follows the clock: the test chain and
`bench/lending.py` drive loans through them (docs/lending.md).  Every step is idempotent, so
seeding twice changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from zhijin.chain.errors import ZhijinError
from zhijin.lending import service
from zhijin.lending.lifecycle import Status
from zhijin.platform.gateway import MemberGateway

__all__ = ["DEMO_PRODUCT", "seed_lending_demo"]

log = logging.getLogger("zhijin.demo")

DEMO_MAKER = "demo-product-desk"  # the officer id the product desk creates products under
DEMO_CHECKER_LOGIN = "chen.officer"  # identity's demo bank officer approves them
PRODUCT_ID = "demo-consumer-12"
LPR = (("1y", 300, "2025-05-20"), ("5y", 350, "2025-05-20"))


def demo_product(income_account_id: str) -> dict[str, Any]:
    return {
        "product_id": PRODUCT_ID,
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
        "max_amount_minor": 20_000_000,
        "auto_approval": {
            "min_score": 500,
            "max_dti_bps": 5_000,
            "max_amount_minor": 5_000_000,
            "min_kyc_level": 0,
        },
        "collateral_ratio_bps": 0,
        "buckets": [
            {"name": "M1", "from_days": 1},
            {"name": "M2", "from_days": 31},
            {"name": "M3+", "from_days": 61},
        ],
        "default_after_days": 90,
        "income_account_id": income_account_id,
    }


DEMO_PRODUCT = demo_product("demo-settlement-cny")

# (loan id, customer, amount in fen, monthly income, monthly debt, what happens to it)
_LOANS = (
    ("demo-wang-car", "wang", 3_000_000, 1_800_000, 100_000, "keep"),
    ("demo-wang-sofa", "wang", 500_000, 1_800_000, 100_000, "repay"),
    ("demo-li-1", "li", 4_000_000, 900_000, 200_000, "keep"),
    ("demo-zhao-1", "zhao", 1_000_000, 2_500_000, 0, "withdraw"),
)


def _product(host: Any, gateway: MemberGateway) -> None:
    for tenor, rate, day in LPR:
        service.set_lpr(host, gateway, tenor=tenor, rate_bps=rate, effective_day=day)
    service.create_product(host, gateway, terms=DEMO_PRODUCT, officer=DEMO_MAKER)
    checker = host.identity.store.user_by_login(DEMO_CHECKER_LOGIN)
    if checker is None:
        raise ZhijinError("demo_officer_missing", "identity's demo bank officer is seeded first")
    service.approve_product(host, gateway, product_id=PRODUCT_ID, officer=checker.id)


def _loan(
    host: Any, gateway: MemberGateway, end_users: dict[str, str], spec: tuple[Any, ...]
) -> str:
    loan_id, name, amount, income, debt, fate = spec
    try:
        loan = service.get_loan(host, loan_id=loan_id)
    except ZhijinError:
        loan = service.apply(
            host, gateway, loan_id=loan_id, product_id=PRODUCT_ID, borrower=end_users[name],
            applied_by=f"demo-{name}", amount_minor=amount, decision_id=f"demo-{name}-1",
            monthly_income_minor=income, monthly_debt_minor=debt, kyc_level=2,
            repayment_account_id=f"demo-{name}-cny",
        )["loan"]  # fmt: skip
    if fate == "withdraw" and loan["status"] in (Status.REVIEW, Status.APPROVED):
        loan = service.loan_action(host, gateway, method="withdraw", loan_id=loan_id)["loan"]
    if loan["status"] == Status.APPROVED:
        loan = service.disburse(host, gateway, loan_id=loan_id)["loan"]
    if fate == "repay" and loan["status"] == Status.CURRENT:
        loan = service.repay(
            host, gateway, loan_id=loan_id, payment_id=f"{loan_id}-payoff", mode="full"
        )["loan"]
    return str(loan["status"])


def seed_lending_demo(host: Any, seeded: Any) -> dict[str, Any]:
    """Seed lending's demo; returns each demo loan's state."""
    gateway = MemberGateway(host.node)
    end_users: dict[str, str] = seeded["identity"]["end_users"]
    _product(host, gateway)
    states = {}
    for spec in _LOANS:
        if spec[1] in end_users:
            states[spec[0]] = _loan(host, gateway, end_users, spec)
    log.info("lending demo: %s", states)
    return {"loans": states}

"""Demo data for `make run`: the LPR, two products made by the product desk and approved by
the demo bank officer (maker-checker), and loans for the demo customers in every state a loan
book holds: current, repaid early, part-prepaid with a shortened term, M1, M3+, defaulted with
its collateral taken, written off, and withdrawn.

Delinquency needs months of block time.  On the demo chain (`zhijin chain init --demo`) the
story starts `DEMO_HISTORY_DAYS` ago (zhijin/platform/demo_clock.py): the loans are disbursed
at its start, and this seed then moves the clock on a day at a time, running the collections
keeper each day, as the node's keeper would.  Along the way some borrowers move their money to
another bank (a transfer to the member's settlement account), so the keeper finds too little
on a due date: 赵's two secured loans default after 90 days, the officer takes the collateral
and writes one off; 李's loan is M3+ by the present and 刘's M1.  王 keeps paying, repays one loan
early and prepays part of the other.  Without a clock (a chain whose story starts now) the
loans are seeded in the states a new chain can hold.  Every step is idempotent, so seeding
twice changes nothing.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from zhijin.chain.errors import ZhijinError
from zhijin.lending import service
from zhijin.lending.expected import LendingHost
from zhijin.lending.lifecycle import Status
from zhijin.platform.demo_clock import DAY_MS, DEMO_CLOCK, DemoClock
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.i18n import cli_text as _cli_text

__all__ = ["DEMO_PRODUCT", "DEMO_SECURED_PRODUCT", "seed_lending_demo"]

log = logging.getLogger("zhijin.demo")

DEMO_MAKER = "demo-product-desk"  # the officer id the product desk creates products under
DEMO_CHECKER_LOGIN = "chen.officer"  # identity's demo bank officer approves them
PRODUCT_ID = "demo-consumer-12"
SECURED_PRODUCT_ID = "demo-sme-secured-12"
LPR = (("1y", 300, "2025-05-20"), ("5y", 350, "2025-05-20"))
BUCKETS = [
    {"name": "M1", "from_days": 1},
    {"name": "M2", "from_days": 31},
    {"name": "M3+", "from_days": 61},
]


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
        "buckets": BUCKETS,
        "default_after_days": 90,
        "income_account_id": income_account_id,
    }


def demo_secured_product(income_account_id: str) -> dict[str, Any]:
    """A small-business loan in equal principal, secured by a deposit hold of 20%."""
    return {
        **demo_product(income_account_id),
        "product_id": SECURED_PRODUCT_ID,
        "spread_bps": 250,
        "method": "equal_principal",
        "day_count": "act_365",
        "collateral_ratio_bps": 2_000,
        "auto_approval": {
            "min_score": 520,
            "max_dti_bps": 4_000,
            "max_amount_minor": 3_000_000,
            "min_kyc_level": 2,
        },
    }


# The member's clearing account (payments' demo books): the products' income account, and where
# a borrower's money goes when it leaves for another bank.
SETTLEMENT = "demo-settlement-cny"
DEMO_PRODUCT = demo_product(SETTLEMENT)
DEMO_SECURED_PRODUCT = demo_secured_product(SETTLEMENT)


@dataclass(frozen=True, slots=True)
class DemoLoan:
    loan_id: str
    name: str  # the borrower (identity's demo end user)
    product_id: str
    amount_minor: int
    monthly_income_minor: int
    monthly_debt_minor: int
    fate: str  # prepaid | repaid_early | withdrawn | m3 | m1 | collateral_taken | written_off
    collateral_minor: int = 0


LOANS = (
    DemoLoan("demo-wang-car", "wang", PRODUCT_ID, 3_000_000, 1_800_000, 100_000, "prepaid"),
    DemoLoan("demo-wang-sofa", "wang", PRODUCT_ID, 500_000, 1_800_000, 100_000, "repaid_early"),
    DemoLoan("demo-li-1", "li", PRODUCT_ID, 4_000_000, 900_000, 200_000, "m3"),
    DemoLoan("demo-liu-1", "liu", PRODUCT_ID, 2_000_000, 1_200_000, 150_000, "m1"),
    DemoLoan("demo-zhao-1", "zhao", PRODUCT_ID, 1_000_000, 2_500_000, 0, "withdrawn"),
    DemoLoan("demo-zhao-stock", "zhao", SECURED_PRODUCT_ID, 6_000_000, 2_500_000, 0,
             "collateral_taken", collateral_minor=1_200_000),
    DemoLoan("demo-zhao-van", "zhao", SECURED_PRODUCT_ID, 4_000_000, 2_500_000, 0,
             "written_off", collateral_minor=800_000),
)  # fmt: skip

# The story's days (from its start): who moves their money to another bank, and when the
# borrower prepays.  赵 pays his first instalment, then his business money leaves (day 40): his
# second instalment is missed, and 90 days later the keeper defaults both loans.  李 pays three
# instalments before she leaves (day 100), 刘 five (day 170): M3+ and M1 by the present.
MONEY_LEAVES = {40: "zhao", 100: "li", 170: "liu"}
REPAY_EARLY_DAY = 65  # 王 repays the sofa loan in full ...
# ... and prepays 5,000 yuan of the car loan, keeping the instalment: a shorter term.
PREPAY_DAY = 95
PREPAY_MINOR = 500_000
WRITE_OFF_AFTER_DAYS = 14  # after the collateral is taken, the officer writes the rest off
PROGRESS_EVERY_DAYS = 50  # a line on the terminal while the story is told (about 20 s)


@dataclass
class _Story:
    host: LendingHost
    gateway: MemberGateway
    end_users: dict[str, str]
    officer: str  # the demo bank officer's user id

    def loan(self, loan_id: str) -> dict[str, Any]:
        return service.get_loan(self.host, loan_id=loan_id)

    def act(self, method: str, loan_id: str, **args: Any) -> None:
        service.loan_action(self.host, self.gateway, method=method, loan_id=loan_id, **args)


def _products(story: _Story) -> None:
    host, gateway = story.host, story.gateway
    for tenor, rate, day in LPR:
        service.set_lpr(host, gateway, tenor=tenor, rate_bps=rate, effective_day=day)
    for terms in (DEMO_PRODUCT, DEMO_SECURED_PRODUCT):
        service.create_product(host, gateway, terms=terms, officer=DEMO_MAKER)
        service.approve_product(
            host, gateway, product_id=terms["product_id"], officer=story.officer
        )


def _open(story: _Story, spec: DemoLoan, *, history: bool) -> str:
    """Apply, have the officer review what the product did not approve at once, disburse (or
    withdraw); the loan's status.  Without a `history` to come, the early repayment is now."""
    account = f"demo-{spec.name}-cny"
    try:
        loan = story.loan(spec.loan_id)
    except ZhijinError:
        loan = service.apply(
            story.host, story.gateway, loan_id=spec.loan_id, product_id=spec.product_id,
            borrower=story.end_users[spec.name], applied_by=f"demo-{spec.name}",
            amount_minor=spec.amount_minor, decision_id=f"demo-{spec.name}-1",
            monthly_income_minor=spec.monthly_income_minor,
            monthly_debt_minor=spec.monthly_debt_minor, kyc_level=2,
            repayment_account_id=account,
            collateral_account_id=account if spec.collateral_minor else None,
            collateral_minor=spec.collateral_minor,
        )["loan"]  # fmt: skip
    if spec.fate == "withdrawn":
        if loan["status"] in (Status.REVIEW, Status.APPROVED):
            story.act("withdraw", spec.loan_id)
        return str(story.loan(spec.loan_id)["status"])
    if loan["status"] == Status.REVIEW:
        service.review(
            story.host, story.gateway, loan_id=spec.loan_id, officer=story.officer,
            approve=True, reason="收入与银行流水已核实",
        )  # fmt: skip
        loan = story.loan(spec.loan_id)
    if loan["status"] == Status.APPROVED:
        loan = service.disburse(story.host, story.gateway, loan_id=spec.loan_id)["loan"]
    if spec.fate == "repaid_early" and loan["status"] == Status.CURRENT and not history:
        loan = _repay_early(story, spec.loan_id)
    return str(loan["status"])


def _repay_early(story: _Story, loan_id: str) -> dict[str, Any]:
    return dict(
        service.repay(
            story.host, story.gateway, loan_id=loan_id, payment_id=f"{loan_id}-payoff",
            mode="full",
        )["loan"]
    )  # fmt: skip


def _prepay(story: _Story, loan_id: str) -> None:
    service.repay(
        story.host, story.gateway, loan_id=loan_id, payment_id=f"{loan_id}-prepay",
        mode="partial", amount_minor=PREPAY_MINOR, then="shorten",
    )  # fmt: skip


def _money_leaves(story: _Story, name: str) -> None:
    """The borrower moves what their account can pay to another bank (vouched for them)."""
    owner = story.end_users[name]
    ports = story.host.lending_ports
    if ports.accounts is None:
        return
    height = story.host.node.head.height
    story.host.projections.wait_for(height)  # the balance the transfer reads is current
    for account in ports.accounts.accounts_of(owner, currency="CNY", limit=10):
        if account.account_id != f"demo-{name}-cny" or not account.available_minor:
            continue
        transfer = {
            "id": f"demo-{name}-leaves", "debit_account_id": account.account_id,
            "credit_account_id": SETTLEMENT, "amount": account.available_minor,
            "currency": "CNY", "reference": "转至他行",
        }  # fmt: skip
        result = story.gateway.submit(
            "payments", "create_transfers", {"transfers": [transfer]}, sender=owner
        )
        log.info("lending demo: %s moves %s to another bank (%s)", name,
                 account.available_minor, result["return"])  # fmt: skip


def _collateral_and_write_off(story: _Story, day: int, defaulted_on: dict[str, int]) -> None:
    for spec in LOANS:
        if spec.fate not in ("collateral_taken", "written_off"):
            continue
        status = story.loan(spec.loan_id)["status"]
        if status == Status.DEFAULTED:
            defaulted_on.setdefault(spec.loan_id, day)
            if day > defaulted_on[spec.loan_id]:  # the officer acts the next day
                story.act("liquidate", spec.loan_id)
        elif (
            status == Status.COLLATERAL_LIQUIDATED
            and spec.fate == "written_off"
            and day >= defaulted_on.get(spec.loan_id, day) + WRITE_OFF_AFTER_DAYS
        ):
            story.act("write_off", spec.loan_id, officer=story.officer)


def _history(story: _Story, clock: DemoClock) -> None:
    """The story's days, from its start to the present: each day the events due on it, then
    the keeper's pass, as the node's collections keeper runs it."""
    start = clock()
    defaulted_on: dict[str, int] = {}
    day = 0
    total = clock.days_left()
    sys.stdout.write(_cli_text("cli.demo.lending_history", days=total) + "\n")
    while clock.days_left() > 0:
        day += 1
        if day % PROGRESS_EVERY_DAYS == 0:
            sys.stdout.write(_cli_text("cli.demo.lending_day", day=day, days=total) + "\n")
            sys.stdout.flush()
        clock.advance_to(start + day * DAY_MS)
        if day in MONEY_LEAVES:
            _money_leaves(story, MONEY_LEAVES[day])
        if day == REPAY_EARLY_DAY:
            _repay_early(story, "demo-wang-sofa")
        if day == PREPAY_DAY:
            _prepay(story, "demo-wang-car")
        service.run_keeper_pass(story.host, story.gateway)
        _collateral_and_write_off(story, day, defaulted_on)
    log.info("lending demo: %d days of history up to the present", day)


def seed_lending_demo(host: Any, seeded: Any) -> dict[str, Any]:
    """Seed lending's demo; returns each demo loan's state."""
    checker = host.identity.store.user_by_login(DEMO_CHECKER_LOGIN)
    if checker is None:
        raise ZhijinError("demo_officer_missing", "identity's demo bank officer is seeded first")
    end_users: dict[str, str] = seeded["identity"]["end_users"]
    story = _Story(host, MemberGateway(host.node), end_users, checker.id)
    _products(story)
    clock = seeded.get(DEMO_CLOCK)
    fresh = clock is not None and not any(_exists(story, spec.loan_id) for spec in LOANS)
    for spec in LOANS:
        if spec.name in end_users:
            _open(story, spec, history=fresh)
    if fresh:
        _history(story, clock)
    states = {spec.loan_id: story.loan(spec.loan_id) for spec in LOANS if spec.name in end_users}
    summary = {
        loan_id: f"{loan['status']} {loan.get('bucket') or ''}".strip()
        for loan_id, loan in states.items()
    }
    log.info("lending demo: %s", summary)
    return {"loans": summary}


def _exists(story: _Story, loan_id: str) -> bool:
    try:
        story.loan(loan_id)
    except ZhijinError:
        return False
    return True

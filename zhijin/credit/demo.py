"""Demo data for `make run`: a model trained on German Credit, registered by the demo's
training job and approved by the demo bank officer (maker-checker), the `retail` policy,
repayment facts for two customers, and a decision for each demo customer.

Training runs once per data directory (a few seconds, small: the German Credit file alone);
every later step is idempotent, so seeding twice changes nothing.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from zhijin.chain.errors import ZhijinError
from zhijin.credit import service
from zhijin.credit.records import ModelStatus
from zhijin.platform.gateway import MemberGateway

__all__ = ["DEMO_APPLICANTS", "DEMO_POLICY", "seed_credit_demo"]

log = logging.getLogger("zhijin.demo")

DEMO_TRAINER = "demo-training-job"  # the officer id the demo's training job registers under
DEMO_APPROVER_LOGIN = "chen.officer"  # identity's demo bank officer approves it
DEMO_SEED = 20_240_601
POLICY_ID = "retail"
DAY_MS = 24 * 3600 * 1000

DEMO_POLICY: dict[str, Any] = {
    "currency": "CNY",
    # The scorecard scales 600 points to odds of 50:1 with 20 points to double them: German
    # Credit's applicants mostly score 480-600.
    "approve": {"points_min": 550, "pd_ppm_max": 150_000},
    "decline": {"points_below": 480, "pd_ppm_from": 400_000},
    "tiers": [
        {"points_min": 480, "points_max": 529, "limit_minor": 1_000_000, "rate_bps": 2_400,
         "price_tier": "C"},
        {"points_min": 530, "points_max": 569, "limit_minor": 3_000_000, "rate_bps": 1_500,
         "price_tier": "B"},
        {"points_min": 570, "points_max": 1_000, "limit_minor": 8_000_000, "rate_bps": 900,
         "price_tier": "A"},
    ],
    "income_multiple": 6,
    "thin_file_behaviour_min": 520,
}  # fmt: skip

_COMMON: dict[str, Any] = {
    "purpose": "furniture",
    "installment_rate": 2,
    "other_debtors": "none",
    "residence_years": 3,
    "other_plans": "none",
    "job": "skilled",
    "dependants": 1,
    "telephone": True,
}
# The demo customers (identity's end users, by family name): a settled salaried customer, one
# with a late instalment behind her, and a shop owner who never borrowed (信用白户).
DEMO_APPLICANTS: dict[str, dict[str, Any]] = {
    "wang": {
        **_COMMON,
        "checking_status": "200_or_more",
        "duration_months": 12,
        "credit_history": "existing_paid_duly",
        "amount_minor": 300_000,
        "savings": "1000_or_more",
        "employment_length": "7_years_or_more",
        "property": "real_estate",
        "age_years": 38,
        "housing": "own",
        "existing_credits": 1,
        "monthly_income_minor": 1_800_000,
        "monthly_debt_minor": 100_000,
    },
    "li": {
        **_COMMON,
        "checking_status": "below_200",
        "duration_months": 12,
        "credit_history": "delayed_in_past",
        "amount_minor": 300_000,
        "savings": "below_100",
        "employment_length": "1_to_4_years",
        "property": "car_or_other",
        "age_years": 29,
        "housing": "rent",
        "existing_credits": 2,
        "monthly_income_minor": 900_000,
        "monthly_debt_minor": 200_000,
    },
    "liu": {
        **_COMMON,
        "checking_status": "below_200",
        "duration_months": 12,
        "credit_history": "existing_paid_duly",
        "amount_minor": 300_000,
        "savings": "100_to_500",
        "employment_length": "4_to_7_years",
        "property": "car_or_other",
        "age_years": 33,
        "housing": "own",
        "existing_credits": 1,
        "monthly_income_minor": 1_200_000,
        "monthly_debt_minor": 150_000,
    },
    "zhao": {
        **_COMMON,
        "purpose": "business",
        "checking_status": "no_account",
        "duration_months": 18,
        "credit_history": "no_credits_or_all_paid",
        "amount_minor": 400_000,
        "savings": "unknown_or_none",
        "employment_length": "4_to_7_years",
        "property": "none_known",
        "age_years": 45,
        "housing": "rent",
        "existing_credits": 0,
        "monthly_income_minor": 2_500_000,
    },
}
# (customer, instalments on time, instalments late): what the platform saw them repay.
_REPAYMENTS = (("wang", 6, 0), ("li", 3, 1))


def _approved_model(host: Any) -> str | None:
    models = service.list_models(host, member=host.node.key.did, status=ModelStatus.APPROVED)
    return models["models"][0]["sha256"] if models["models"] else None


def _train_register_approve(host: Any, gateway: MemberGateway) -> str:
    from zhijin.credit.artifact import save_model
    from zhijin.credit.datasets import german_credit
    from zhijin.credit.training import Hyperparameters, train

    # One point of the training grid, not the grid search: the demo starts in seconds, and
    # `zhijin credit train` runs the search for a model that decides for real.
    fast = Hyperparameters(scorecard_c=0.1, gbdt_leaves=4, gbdt_rounds=200)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "german-credit.json"
        model = train(german_credit(), seed=DEMO_SEED, hyperparameters=fast, trainer=DEMO_TRAINER)
        save_model(model, path)
        registered = service.register_model(host, gateway, trainer=DEMO_TRAINER, path=path)
    sha = registered["model"]["sha256"]
    officer = host.identity.store.user_by_login(DEMO_APPROVER_LOGIN)
    if officer is None:
        raise ZhijinError("demo_officer_missing", "identity's demo bank officer is seeded first")
    service.approve_model(host, gateway, sha256_hex=sha, approver=officer.id)
    return str(sha)


def _policy(host: Any, gateway: MemberGateway) -> None:
    try:
        service.get_policy(host, policy_id=POLICY_ID)
    except ZhijinError:
        service.save_policy(
            host, gateway, policy_id=POLICY_ID, version=1, rules=DEMO_POLICY, officer=DEMO_TRAINER
        )


def _repayments(host: Any, gateway: MemberGateway, end_users: dict[str, str]) -> None:
    now = host.node.clock()
    for name, on_time, late in _REPAYMENTS:
        for index in range(on_time + late):
            due = now - (on_time + late - index) * 30 * DAY_MS
            paid = due + DAY_MS if index < on_time else due + 20 * DAY_MS
            service.record_repayment(
                host,
                gateway,
                repayment_id=f"demo-{name}-{index + 1}",
                subject=end_users[name],
                due_at_ms=due,
                paid_at_ms=paid,
            )


def seed_credit_demo(host: Any, identity: dict[str, Any]) -> dict[str, Any]:
    """Seed credit's demo; returns the model's hash and the decisions by customer."""
    gateway = MemberGateway(host.node)
    end_users: dict[str, str] = identity["end_users"]
    sha = _approved_model(host) or _train_register_approve(host, gateway)
    _policy(host, gateway)
    if not service.list_decisions(host, member=None, subject=end_users["wang"], limit=1)[
        "decisions"
    ]:
        _repayments(host, gateway, end_users)  # once: the first seeding
    decisions = {}
    for name, fields in DEMO_APPLICANTS.items():
        decided = service.decide_for(
            host,
            gateway,
            decision_id=f"demo-{name}-1",
            policy_id=POLICY_ID,
            applicant=fields,
            subject=end_users[name],
            requested_by=DEMO_TRAINER,
            model_sha256=sha,
        )
        decisions[name] = decided["decision"]["outcome"]
    log.info("credit demo: model %s, decisions %s", sha, decisions)
    return {"model_sha256": sha, "decisions": decisions}

"""One decision as a pure function: a validated applicant, a scorer and a policy in, the
decision record out.  No database, no chain, no clock (the time is given): the hot path the
bench measures, and the function a replay runs again to the same answer.

The decision record is canonical JSON; its SHA-256 is what the chain anchors.  It names the
applicant only by the digest of their fields (`input_sha256`), so the record proves which
model and which policy version decided what, and the sealed input lets a replay re-run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhijin.chain.codec import canonical, sha256
from zhijin.credit import limits
from zhijin.credit.applicant import Applicant, applicant_digest
from zhijin.credit.policy import Policy, PolicyResult, apply_policy
from zhijin.credit.scoring import Score, Scorer

__all__ = ["DecisionInputs", "decide", "is_thin_file", "record_sha256"]

# Other members' data about the applicant: what the decision did with it (consent).
OTHER_DATA_NONE = "none"  # there was none
OTHER_DATA_USED = "used"  # the applicant consented on chain
OTHER_DATA_NOT_USED = "not_used_no_consent"  # there was some, and it was left out


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """What the decision is about, besides the applicant's fields."""

    decision_id: str
    member: str
    subject: str | None
    model_sha256: str
    policy_id: str
    policy_version: int
    behaviour_score: int | None
    other_members_data: str
    decided_at_ms: int


def is_thin_file(applicant: Applicant) -> bool:
    """信用白户: no credit ever taken, none running: the bureau fields say nothing."""
    return applicant.credit_history == "no_credits_or_all_paid" and applicant.existing_credits == 0


def _reasons(score: Score) -> list[dict[str, str]]:
    return [
        {
            "code": reason.code,
            "feature": reason.feature,
            "text_zh": reason.text_zh[: limits.REASON_TEXT_CHARS_MAX],
            "text_en": reason.text_en[: limits.REASON_TEXT_CHARS_MAX],
        }
        for reason in score.reasons[: limits.REASONS_MAX]
    ]


def build_record(
    inputs: DecisionInputs,
    applicant: Applicant,
    score: Score,
    result: PolicyResult,
    policy: Policy,
) -> dict[str, Any]:
    return {
        "decision_id": inputs.decision_id,
        "member": inputs.member,
        "subject": inputs.subject,
        "input_sha256": applicant_digest(applicant),
        "model_sha256": inputs.model_sha256,
        "policy_id": inputs.policy_id,
        "policy_version": inputs.policy_version,
        "points": score.points,
        "pd_ppm": score.pd_ppm,
        "outcome": result.outcome,
        "rule": result.rule,
        "limit_minor": result.limit_minor,
        "currency": policy.currency,
        "price_tier": result.price_tier,
        "rate_bps": result.rate_bps,
        "reasons": _reasons(score),
        "thin_file": is_thin_file(applicant),
        "behaviour_score": inputs.behaviour_score,
        "other_members_data": inputs.other_members_data,
        "decided_at_ms": inputs.decided_at_ms,
    }


def decide(
    scorer: Scorer, policy: Policy, applicant: Applicant, inputs: DecisionInputs
) -> dict[str, Any]:
    """Score, apply the policy, and return the decision record."""
    score = scorer.score(applicant)
    result = apply_policy(
        policy,
        points=score.points,
        pd_ppm=score.pd_ppm,
        monthly_income_minor=applicant.monthly_income_minor,
        thin_file=is_thin_file(applicant),
        behaviour_score=inputs.behaviour_score,
    )
    return build_record(inputs, applicant, score, result, policy)


def record_sha256(record: dict[str, Any]) -> str:
    """The hash the chain anchors: SHA-256 of the record's canonical JSON (RFC 8785)."""
    return sha256(canonical(record)).hex()

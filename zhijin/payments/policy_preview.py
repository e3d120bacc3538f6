"""What a step-up policy would have asked of recent payments: the admin's preview of a draft
policy against the one in force, before anyone saves it.

A pure calculator over the payments it is given (oldest first): each is put to a policy as the
request guard would have put it (identity/outflows.py), with what the ledger still knows of it:
the amount and currency, the payee's novelty (the payer had paid this payee earlier in the
sample) and the 24 h sums to that payee and overall, also from the sample.  What the ledger
does not keep is assumed the ordinary way, and the page says so: the device was a known one,
the place of the payment is unknown (a rule on it answers its `if_missing`).  So the figures
say how the rules on money and payees bite, not how often a new phone will be asked for a code.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zhijin.identity.stepup import MovedAmount, Outcome, RiskContext, StepUpPolicy, evaluate

__all__ = ["PREVIEW_PAYMENTS_MAX", "PastPayment", "PolicyEffect", "preview"]

PREVIEW_PAYMENTS_MAX = 500
WINDOW_MS = 24 * 3600 * 1000
ACTION = "payment.transfer"


@dataclass(frozen=True, slots=True)
class PastPayment:
    debit_account_id: str
    credit_account_id: str
    amount_minor: int
    currency: str
    exponent: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class PolicyEffect:
    """How many of `payments` a policy lets through, steps up, denies; and by which rules."""

    payments: int
    allowed: int
    stepped_up: int
    denied: int
    rules: tuple[tuple[str, int], ...]  # (rule id, payments it matched), most first

    def to_json(self) -> dict[str, Any]:
        return {
            "payments": self.payments,
            "allowed": self.allowed,
            "stepped_up": self.stepped_up,
            "denied": self.denied,
            "rules": [list(rule) for rule in self.rules],
        }


def _contexts(payments: Sequence[PastPayment]) -> list[RiskContext]:
    contexts = []
    window: deque[PastPayment] = deque()
    paid: dict[str, int] = {}  # "debit>credit" -> the first time it was paid in the sample
    for payment in payments:
        while window and window[0].time_ms <= payment.time_ms - WINDOW_MS:
            window.popleft()
        mine = [p for p in window if p.debit_account_id == payment.debit_account_id]
        moved = MovedAmount(payment.currency, payment.exponent, payment.amount_minor)
        to_payee = [
            MovedAmount(p.currency, p.exponent, p.amount_minor)
            for p in mine
            if p.credit_account_id == payment.credit_account_id
        ]
        overall = [MovedAmount(p.currency, p.exponent, p.amount_minor) for p in mine]
        pair = payment.debit_account_id + ">" + payment.credit_account_id
        contexts.append(
            RiskContext(
                action=ACTION,
                now_ms=payment.time_ms,
                amount_minor=payment.amount_minor,
                currency=payment.currency,
                amount_exponent=payment.exponent,
                payee_known=pair in paid,
                device_known=True,
                moved_to_payee=(*to_payee, moved),
                moved_overall=(*overall, moved),
            )
        )
        paid.setdefault(pair, payment.time_ms)
        window.append(payment)
    return contexts


def preview(policy: StepUpPolicy, payments: Sequence[PastPayment]) -> PolicyEffect:
    """`policy`'s answers to `payments` (oldest first, at most PREVIEW_PAYMENTS_MAX)."""
    payments = payments[-PREVIEW_PAYMENTS_MAX:]
    outcomes: Counter[Outcome] = Counter()
    matched: Counter[str] = Counter()
    for context in _contexts(payments):
        decision = evaluate(policy, context)
        outcomes[decision.outcome] += 1
        for reason in decision.reasons:  # "rule_id: sentence"
            matched[reason.split(":", 1)[0]] += 1
    return PolicyEffect(
        payments=len(payments),
        allowed=outcomes[Outcome.ALLOW],
        stepped_up=outcomes[Outcome.STEP_UP],
        denied=outcomes[Outcome.DENY],
        rules=tuple(sorted(matched.items(), key=lambda item: (-item[1], item[0]))),
    )

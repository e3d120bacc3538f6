"""Payments: accounts, double-entry transfers, holds, fees, FX and cross-border (ISO 20022).

Money moves only through this domain's contract (`PAYMENTS_CONTRACT`); other domains reach it
with `ctx.call("payments", ...)` or through the public functions re-exported here.
"""

from zhijin.payments.codes import Code, PaymentsError
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.payments.expected import PaymentFacts, PaymentScreen, ScreenTier, Verdict
from zhijin.payments.invariants import assert_invariants, check_invariants
from zhijin.payments.queries import read_account

__all__ = [
    "PAYMENTS_CONTRACT",
    "Code",
    "PaymentFacts",
    "PaymentScreen",
    "PaymentsError",
    "ScreenTier",
    "Verdict",
    "assert_invariants",
    "check_invariants",
    "read_account",
]

"""The loan contract's states and the transitions between them, as data.

```
apply ──► review ──(officer approves)──► approved ──disburse──► current ◄──┐
  │         └─(officer rejects)──► rejected        │                │      │ paid up
  └──(conditions hold)──► approved                 │          overdue ─────┘
review / approved ──withdraw──► withdrawn           │                │ days past due ≥ limit
current / overdue ──repay in full / last instalment──► closed       defaulted
defaulted ──liquidate──► collateral_liquidated (or closed when it covers everything)
defaulted / collateral_liquidated ──write_off──► written_off ──recover──► recovered
```

An action the table does not allow from the loan's state is refused with
`illegal_transition`; a loan that is closed, written off or recovered takes no collection and
no interest (`loan_closed`).
"""

from __future__ import annotations

from types import MappingProxyType

from zhijin.lending.codes import Code, refuse

__all__ = ["CLOSED", "LIVE", "TRANSITIONS", "Status", "check_transition"]


class Status:
    REVIEW = "review"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CURRENT = "current"
    OVERDUE = "overdue"
    DEFAULTED = "defaulted"
    COLLATERAL_LIQUIDATED = "collateral_liquidated"
    WRITTEN_OFF = "written_off"
    RECOVERED = "recovered"
    CLOSED = "closed"


S = Status
# A disbursed loan that still owes and earns.
LIVE = frozenset({S.CURRENT, S.OVERDUE, S.DEFAULTED, S.COLLATERAL_LIQUIDATED})
# No collection, no interest, ever again.
CLOSED = frozenset({S.CLOSED, S.WRITTEN_OFF, S.RECOVERED, S.REJECTED, S.WITHDRAWN})

# action -> the states it may start from
TRANSITIONS = MappingProxyType(
    {
        "review": frozenset({S.REVIEW}),
        "withdraw": frozenset({S.REVIEW, S.APPROVED}),
        "disburse": frozenset({S.APPROVED}),
        "accrue": LIVE,
        "collect": LIVE,
        "repay": frozenset({S.CURRENT, S.OVERDUE}),
        "default": frozenset({S.OVERDUE}),
        "liquidate": frozenset({S.DEFAULTED}),
        "write_off": frozenset({S.DEFAULTED, S.COLLATERAL_LIQUIDATED}),
        "recover": frozenset({S.WRITTEN_OFF, S.RECOVERED}),
    }
)


def check_transition(status: str, action: str) -> None:
    """Refuse `action` unless the table allows it from `status`."""
    if status in CLOSED and action in ("accrue", "collect", "repay"):
        refuse(Code.LOAN_CLOSED, f"the loan is {status}")
    if status not in TRANSITIONS[action]:
        refuse(Code.ILLEGAL_TRANSITION, f"{action} is not allowed from {status}")

"""What lending needs from the rest of the platform: small protocols (Cosmos SDK's expected
keepers), implemented by the composition root (zhijin/node/lending_ports.py) and handed to the
domain on the host as `lending_ports`.  Lending never reads another domain's tables or state
keys; money moves only through payments' contract, by `ctx.call` inside lending's own txs.

- `CreditDecisions`: credit's stored decision record by id (with the digest its anchor holds),
  so an application carries the decision's facts and the contract checks the digest on chain.
- `Accounts`: payments' accounts of a borrower in a currency (the application page's choice of
  the account a loan is paid into and collected from), and whether an account paid another
  before a time (the step-up policy's payee novelty for an early repayment).
- `KycLevels`: identity's KYC state of a signed-in customer, as the level a product requires
  (0 none, 1 submitted, 2 verified by a member).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends

from zhijin.platform.deps import get_platform
from zhijin.platform.host import Host

__all__ = [
    "Accounts",
    "CreditDecisions",
    "DecisionFacts",
    "KycLevels",
    "LendingHost",
    "LendingHostDep",
    "LendingPorts",
    "OwnAccount",
]


@dataclass(frozen=True, slots=True)
class DecisionFacts:
    decision_id: str
    record_sha256: str
    member: str
    subject: str | None
    outcome: str  # credit's outcome: approve | refer | decline
    points: int
    limit_minor: int
    currency: str
    reasons: tuple[dict[str, str], ...]
    decided_at_ms: int = 0


class CreditDecisions(Protocol):
    def decision(self, decision_id: str) -> DecisionFacts | None:
        """The decision record credit stored and anchored, or None."""
        ...

    def decisions_of(self, subject: str, *, limit: int) -> list[DecisionFacts]:
        """The subject's decisions (any member's), newest first: what an applicant may apply
        with (the application page offers those of this member)."""
        ...


@dataclass(frozen=True, slots=True)
class OwnAccount:
    account_id: str
    currency: str
    kind: str
    available_minor: int | None = None  # what it can pay now (None: no balance limit)


class Accounts(Protocol):
    def accounts_of(self, owner: str, *, currency: str, limit: int) -> list[OwnAccount]:
        """The owner's open accounts in `currency` at payments (where a loan is paid into and
        collected from), in id order."""
        ...

    def has_paid(self, debit_account_id: str, credit_account_id: str, *, before_ms: int) -> bool:
        """Whether `debit_account_id` paid `credit_account_id` in a block before `before_ms`
        (payments' ledger entries), as payments' own step-up asks it."""
        ...


class KycLevels(Protocol):
    def level(self, principal: Any) -> int:
        """The signed-in user's KYC level (0 for the operator, who acts as the member)."""
        ...


@dataclass(frozen=True, slots=True)
class LendingPorts:
    decisions: CreditDecisions
    kyc: KycLevels
    accounts: Accounts | None = None  # the application page's choice of repayment account


class LendingHost(Host, Protocol):
    lending_ports: LendingPorts


LendingHostDep = Annotated[LendingHost, Depends(get_platform)]

"""What credit needs from the rest of the platform: small protocols (Cosmos SDK's expected
keepers), implemented by the composition root (zhijin/node/credit_ports.py) and handed to the
domain on the host as `credit_ports`.  Credit never reads another domain's tables or state keys.

- `PaymentFacts`: what the ledger shows of a customer's accounts (balances, inflows, when the
  first account opened), per custodian member, so that consent can be applied per member.
  Credit answers it itself (`zhijin.credit.flows.FlowFacts`), from its own consumer of
  payments' committed events, whose wire names it declares here (`PAYMENT_EVENTS`).
- `ConsentRegistry`: identity's consent contract, read from committed chain state: whether the
  applicant consented to this member reading another member's data for credit assessment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends

from zhijin.platform.deps import get_platform
from zhijin.platform.host import Host
from zhijin.platform.vault import Vault

__all__ = [
    "PAYMENT_EVENTS",
    "AccountFacts",
    "ConsentRegistry",
    "CreditHost",
    "CreditHostDep",
    "CreditPorts",
    "PaymentEvents",
    "PaymentFacts",
]

# The consent a decision needs before it reads another member's data (identity's closed lists).
CONSENT_CATEGORY = "transactions"
CONSENT_PURPOSE = "credit_assessment"


@dataclass(frozen=True, slots=True)
class PaymentEvents:
    """The events of payments' contract credit reads from the blocks, as they are on chain
    (the chain's wire: a change there is a new event type, never a silent one)."""

    account_created: str = "payments.account_created"  # attrs: the account's record
    transfer_created: str = "payments.transfer_created"  # attrs: the transfer's record
    flag_pending: str = "pending"  # a hold: reserves, posts nothing
    flag_void: str = "void_pending_transfer"  # releases a hold, posts nothing


PAYMENT_EVENTS = PaymentEvents()


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """One account of the customer, as payments' projection shows it."""

    account_id: str
    custodian: str | None  # the member that holds the account; None: a platform account
    currency: str
    opened_at_ms: int
    balance_minor_now: int
    balance_minor_then: int  # at the start of the window
    inflow_minor: int  # received from others within the window


class PaymentFacts(Protocol):
    def account_facts(self, subject: str, *, since_ms: int, until_ms: int) -> list[AccountFacts]:
        """The subject's accounts (at most a page) with their balances and inflows."""
        ...


class ConsentRegistry(Protocol):
    def allows(self, *, subject: str, grantee: str, category: str, purpose: str) -> bool:
        """A live consent on chain (granted, unrevoked, unexpired at the head's block time)."""
        ...


@dataclass(frozen=True, slots=True)
class CreditPorts:
    payments: PaymentFacts
    consent: ConsentRegistry


class CreditHost(Host, Protocol):
    """The host, with the field vault (the applicant's fields are sealed in it) and credit's
    ports.  Who may call is identity's request guard's to say (the routes use it)."""

    vault: Vault
    credit_ports: CreditPorts


CreditHostDep = Annotated[CreditHost, Depends(get_platform)]

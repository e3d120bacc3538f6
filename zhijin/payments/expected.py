"""What payments needs of the node host beyond the plumbing's `Host`: the ports the composition
root fills (Cosmos SDK's expected keepers).

`PaymentScreen` is the inline fraud check a customer's transfer meets before it goes to the
chain (the root injects zhijin/risk's engine as the host's `payment_screen`; a host without one
submits exactly as before).  Payments never imports the risk domain: it names the facts it
hands over and the verdict it acts on, here.

The field vault (IBANs are sealed there) is the platform's `Vault`; the access audit log is
asked only to append (`AuditSink`).  Who may call a route is identity's request guard
(`zhijin.identity.GuardDep`, `CallerDep`), which the routes ask directly.  The root's host
satisfies `PaymentsHost` structurally; routes receive it through `PaymentsHostDep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Protocol

from fastapi import Depends

from zhijin.identity.personal import PersonalDataService
from zhijin.identity.service import IdentityService
from zhijin.platform.deps import get_platform
from zhijin.platform.host import Host
from zhijin.platform.vault import Vault

__all__ = [
    "AuditSink",
    "LookupBudget",
    "PartyKind",
    "PartyName",
    "PartyNames",
    "PaymentFacts",
    "PaymentScreen",
    "PaymentsHost",
    "PaymentsHostDep",
    "ScreenTier",
    "Verdict",
    "screen_of",
]


class AuditSink(Protocol):
    """The access audit log, as payments writes to it (IBAN registrations and removals)."""

    def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        at_ms: int,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Any: ...


class PartyKind(StrEnum):
    PERSON = "person"
    BUSINESS = "business"
    INSTITUTION = "institution"  # a consortium member: its name is public


@dataclass(frozen=True, slots=True)
class PartyName:
    """An account owner's name in full, as the vault (or the chain, for a member) holds it.
    Payments masks it before it leaves the node (`payees.mask_name`); it never goes on chain."""

    kind: PartyKind
    name: str


class PartyNames(Protocol):
    """Names of account owners (DIDs), read off chain: people and SMEs from identity's
    personal data, members from their membership record.  The caller audits what it shows."""

    def name_of(self, owner: str, *, business: bool) -> PartyName | None:
        """The owner's name: their company's when `business` (a merchant account) and they
        recorded one, else their own; None when no name is on record."""
        ...

    def mobile_of(self, owner: str) -> str | None:
        """The owner's own mobile number (E.164, from their personal data), or None."""
        ...


class LookupBudget(Protocol):
    """A per-requester budget of payee lookups (confirmation of payee), against enumeration."""

    def spend(self, requester: str) -> None:
        """Take one lookup, or raise a 429 problem with `retry_after_ms`."""
        ...


class ScreenTier(StrEnum):
    """What payments does with a screened transfer (risk's tiers map onto these)."""

    ALLOW = "allow"  # submit it as asked
    HOLD = "hold"  # submit it as a hold (a pending transfer) for a reviewer to post or void
    REFUSE = "refuse"  # do not submit it; the customer is told why
    STEP_UP = "step_up"  # a fresh second factor first (the last attempt was refused)


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """A customer's transfer as the screen sees it: the request, both sides, and the session
    it comes from.  None means "not known for this request" (an API client sends no device)."""

    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    payer: str  # the debit account's owner (DID)
    payee_owner: str | None  # the credit account's owner, None when it is not on the books
    currency: str
    exponent: int
    amount_minor: int
    at_ms: int
    user_id: str | None  # identity's user behind the session
    payee_known: bool | None  # paid before this sign-in (the step-up policy's novelty)
    device_known: bool | None
    lat_e6: int | None = None
    lon_e6: int | None = None
    auth_at_ms: int | None = None  # this session's sign-in (password check)
    mfa_at_ms: int | None = None  # this session's last second factor
    account_created_ms: int | None = None  # the debit account's opening


@dataclass(frozen=True, slots=True)
class Verdict:
    """The screen's answer: the tier, one score (basis points, 0-10000), the reasons (each
    "id: English sentence", and per locale for the customer), which rule and model versions
    produced it, and `degraded` when it was made without part of the engine (a refused model
    file, the engine down): said in every such decision."""

    decision_id: str
    tier: ScreenTier
    score_bps: int
    reasons: tuple[str, ...]
    reasons_by_locale: Mapping[str, tuple[str, ...]]
    versions: Mapping[str, str]
    degraded: tuple[str, ...] = ()
    hold_timeout_ms: int = 0  # for HOLD: how long the hold lasts before it voids itself
    notice: Mapping[str, str] = field(default_factory=dict)  # to the customer, per locale


class PaymentScreen(Protocol):
    def screen(self, facts: PaymentFacts) -> Verdict:
        """Score the transfer.  Never raises for a fault of its own: an engine that cannot
        decide answers by its fail-open/closed policy (a `degraded` verdict)."""
        ...

    def settled(self, verdict: Verdict, facts: PaymentFacts, *, outcome: str) -> None:
        """What became of the screened transfer: "submitted" (committed as allowed), "held"
        (committed as a hold), "refused" (not submitted), "ledger_refused" (the ledger said
        no).  The decision is recorded with the payment; features learn from what moved."""
        ...

    def under_review(self, transfer_id: str) -> bool:
        """Whether `transfer_id` is a hold the screen placed whose review is still open: only
        the review posts or voids it (the ledger would let either party post a hold)."""
        ...


def screen_of(host: object) -> PaymentScreen | None:
    """The host's screen, or None: hosts built before the risk domain (and test hosts) carry
    no `payment_screen`, and payments then submits exactly as it always did."""
    screen: PaymentScreen | None = getattr(host, "payment_screen", None)
    return screen


class PaymentsHost(Host, Protocol):
    """The host, with the sealed store (the field vault), the audit sink, the owners' names,
    the payee-lookup budget and identity's personal-data service (its KYC cases and approval
    notices, which the opening policy listens to)."""

    vault: Vault
    audit: AuditSink
    party_names: PartyNames
    payee_lookups: LookupBudget
    personal: PersonalDataService
    # The account-opening queue (payments/opening.py) reads users and KYC cases and
    # authorises through identity's service; a narrower port is owed (issue 11 note).
    identity: IdentityService


PaymentsHostDep = Annotated[PaymentsHost, Depends(get_platform)]

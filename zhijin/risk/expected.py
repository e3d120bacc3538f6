"""What risk needs from the rest of the platform: small protocols the composition root fills
(zhijin/node/risk_ports.py).  Risk never reads another domain's tables.

- `IdentityFacts`: the user's last sign-in (where, when) and the credential changes
  (password, phone number, authenticator) identity and payments wrote to the access audit log.
- `PaymentHistory`: recent payments out of customers' accounts, to rebuild features at start.
- `HoldResolver`: post or void a hold (a held payment's case resolved), in the member's name.
- `RuleAnchors`: the notary, where an approved rule version's SHA-256 is anchored on chain.
- `AuditSink`: the access audit log (every rule, case and model action is written there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zhijin.risk.features import CredentialChange

__all__ = [
    "AuditSink",
    "HistoricPayment",
    "HoldResolver",
    "IdentityFacts",
    "PaymentHistory",
    "RiskPorts",
    "RuleAnchors",
]


class IdentityFacts(Protocol):
    def last_sign_in(self, user_id: str) -> tuple[int | None, int | None, int | None] | None:
        """(lat_e6, lon_e6, at_ms) of the user's last sign-in, or None for no such user."""
        ...

    def credential_changes(
        self, *, after_seq: int, limit: int
    ) -> tuple[list[CredentialChange], int]:
        """Credential changes logged after `after_seq`, and the seq read up to."""
        ...


@dataclass(frozen=True, slots=True)
class HistoricPayment:
    transfer_id: str
    debit_account_id: str
    credit_account_id: str
    amount_minor: int
    currency: str
    exponent: int
    at_ms: int


class PaymentHistory(Protocol):
    def recent_payments(self, *, since_ms: int, limit: int) -> list[HistoricPayment]:
        """Single-phase payments out of customers' and merchants' accounts, oldest first."""
        ...


class HoldResolver(Protocol):
    def resolve(self, *, pending_id: str, transfer_id: str, post: bool) -> dict[str, Any]:
        """Post or void the hold in this member's name; raises the ledger's refusal."""
        ...


class RuleAnchors(Protocol):
    def anchor(self, *, document_hash: str, title: str, timeout_s: float) -> int: ...


class AuditSink(Protocol):
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


@dataclass(frozen=True)
class RiskPorts:
    member_did: str
    clock: Callable[[], int]
    identity: IdentityFacts
    payments: PaymentHistory
    holds: HoldResolver
    anchors: RuleAnchors | None
    audit: AuditSink
    model_dir: Path

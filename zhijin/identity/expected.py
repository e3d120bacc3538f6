"""What identity needs of other domains: the ports the composition root fills (Cosmos SDK's
expected keepers).  Identity never imports another domain's modules or reads its tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from zhijin.platform.host import Host

if TYPE_CHECKING:
    from zhijin.identity.rbac import Principal

__all__ = ["AccountOpenings", "IdentityHost", "NotaryAnchors"]


class NotaryAnchors(Protocol):
    """The notary, where the access audit log's head is anchored (anchoring.py); the root
    injects `zhijin.notary.NotaryService`."""

    def anchor(self, *, document_hash: str, title: str, timeout_s: float) -> int:
        """Anchor a hash in this member's name; the block height that holds it.  Raises
        ContractError when the contract refuses it."""
        ...

    def anchor_record(self, document_hash: str) -> Mapping[str, Any] | None:
        """The anchor record of a hash as the chain holds it (owner, title, ...), or None."""
        ...

    def anchors_titled(self, *, owner: str, title_prefix: str, limit: int) -> list[tuple[str, str]]:
        """(title, hash) of an owner's anchors whose title starts with a prefix, from the
        notary's query table: unvouched, to be checked with `anchor_record`."""
        ...


class AccountOpenings(Protocol):
    """Payments' account requests as the onboarding pages use them (web/onboarding.py); the
    composition root injects its adapter.  Each call authorises the principal (RBAC
    with scope) and audits, exactly as `/api/v1/account-requests` does; a request is the
    API's `AccountRequestView` as a mapping."""

    def currencies(self) -> tuple[str, ...]:
        """The currencies a customer may ask for, the policy's first."""
        ...

    def request(
        self, *, principal: Principal, currency: str, kind: str, purpose: str
    ) -> Mapping[str, Any]:
        """Ask for an account (idempotent: the same currency and kind is the same request)."""
        ...

    def mine(self, *, principal: Principal) -> list[Mapping[str, Any]]:
        """The caller's own requests, oldest first (one page: a user has a bounded number)."""
        ...

    def one(self, *, principal: Principal, user_id: str, request_id: str) -> Mapping[str, Any]:
        """One request; refused (`out_of_scope` / `permission_denied`) if not the caller's."""
        ...

    def holds_accounts(self, owner_did: str) -> bool:
        """Whether this DID owns any account (opened by a request or otherwise)."""
        ...


class IdentityHost(Host, Protocol):
    """The node host as identity's routes use it: with the notary's anchors and payments'
    account requests."""

    notary_anchors: NotaryAnchors
    account_openings: AccountOpenings

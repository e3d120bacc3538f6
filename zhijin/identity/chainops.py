"""The identity domain's on-chain operations for authenticated users: DIDs, consents, and the
member's KYC credentials with their status list.

DID and consent changes are signed with the user's own custodial key (keys.py), because the
`did` and `consent` contracts refuse a member vouching for them.  Credentials are issued by the
node's member and revoked through its on-chain status list (created on first use).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from zhijin.chain.crypto import KeyPair
from zhijin.chain.node import Node
from zhijin.identity import limits
from zhijin.identity.contracts import DATA_CATEGORIES, PURPOSES, status_list_record
from zhijin.identity.did import (
    did_key_document,
    multikey_from_public_key,
    registry_record,
)
from zhijin.identity.keys import UserKeys
from zhijin.identity.personal import IssuingMember, PersonalDataService
from zhijin.identity.rbac import Permission, Principal, Resource
from zhijin.identity.service import IdentityService
from zhijin.identity.setup import ChainReader, GatewayWriter, submit_signed
from zhijin.identity.vc import VerifiedCredential
from zhijin.platform.errors import InvalidInput

__all__ = ["DEFAULT_STATUS_LIST_ID", "IdentityChain"]

DEFAULT_STATUS_LIST_ID = "kyc-revocation-1"


class IdentityChain:
    def __init__(
        self,
        *,
        identity: IdentityService,
        personal: PersonalDataService,
        node: Node,
        gateway: Any,
        status_list_id: str = DEFAULT_STATUS_LIST_ID,
    ) -> None:
        self.identity = identity
        self.personal = personal
        self.node = node
        self.gateway = gateway
        self.status_list_id = status_list_id
        self._status_list_lock = threading.Lock()

    @property
    def state(self) -> ChainReader:
        return ChainReader(self.node)

    def _nonce(self) -> Callable[[], int]:
        nonce: Callable[[], int] = self.gateway.next_nonce
        return nonce

    def _submit_as(self, key: KeyPair, method: str, args: dict[str, Any], contract: str) -> Any:
        return submit_signed(self.node, key, contract, method, args, next_nonce=self._nonce())

    def _keys(self, principal: Principal) -> UserKeys:
        self.identity.user_did(principal=principal)  # end users only; creates a missing did:key
        return self.identity.user_keys(user_id=principal.user_id)

    def _audit(self, principal: Principal, action: str, target: str, **extra: Any) -> None:
        self.identity.record(
            actor=f"user:{principal.user_id}", action=action, target=target, outcome="ok", **extra
        )

    # -- DIDs ---------------------------------------------------------------------------------
    def did_info(self, *, principal: Principal) -> dict[str, Any]:
        keys = self._keys(principal)
        registered = (
            None
            if keys.registered_did is None
            else registry_record(self.state, keys.registered_did)
        )
        return {
            "did": keys.did_key.did,
            "document": did_key_document(keys.did_key.did),
            "registered_did": keys.registered_did,
            "registered": registered,
        }

    def register_did(self, *, principal: Principal) -> dict[str, Any]:
        """Register did:zhijin:<multikey of the user's did:key> (idempotent)."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("did", owner_id=principal.user_id),
        )
        keys = self._keys(principal)
        result = self._submit_as(keys.did_key, "register", {}, "did")
        did = result["return"]["did"]
        if keys.registered_did is None:
            self.identity.save_user_keys(
                user_id=principal.user_id,
                keys=UserKeys(keys.did_key, did, "key-1", keys.did_key),
            )
        self._audit(principal, "did.register", f"did:{did}")
        return {"did": did, "created": result["return"]["created"], "height": result["height"]}

    def _registered(self, principal: Principal) -> UserKeys:
        self.identity.authorize(
            principal=principal,
            permission=Permission.PROFILE_UPDATE,
            resource=Resource("did", owner_id=principal.user_id),
        )
        keys = self._keys(principal)
        if keys.registered_did is None or keys.registered_key is None:
            raise InvalidInput("no_registered_did", "register a did:zhijin first")
        return keys

    def rotate_did(self, *, principal: Principal, compromised: bool = False) -> dict[str, Any]:
        """A new current key for the user's did:zhijin.  The vault keeps the new key only
        after the chain accepted it, so a failed rotation leaves the old key in charge."""
        keys = self._registered(principal)
        assert keys.registered_did is not None and keys.registered_key is not None
        new_key = KeyPair.generate()
        result = self._submit_as(
            keys.registered_key,
            "rotate_key",
            {
                "did": keys.registered_did,
                "public_key_multibase": multikey_from_public_key(new_key.public_key),
                "compromised": compromised,
            },
            "did",
        )
        key_id = result["return"]["key_id"]
        self.identity.save_user_keys(
            user_id=principal.user_id,
            keys=UserKeys(keys.did_key, keys.registered_did, key_id, new_key),
        )
        self._audit(
            principal, "did.rotate_key", f"did:{keys.registered_did}", compromised=compromised
        )
        return {"did": keys.registered_did, "key_id": key_id, "height": result["height"]}

    def deactivate_did(self, *, principal: Principal) -> dict[str, Any]:
        keys = self._registered(principal)
        assert keys.registered_did is not None and keys.registered_key is not None
        result = self._submit_as(
            keys.registered_key, "deactivate", {"did": keys.registered_did}, "did"
        )
        self._audit(principal, "did.deactivate", f"did:{keys.registered_did}")
        return {**result["return"], "height": result["height"]}

    # -- consents -----------------------------------------------------------------------------
    def _consent_args(
        self, principal: Principal, grantee: str, category: str, purpose: str
    ) -> KeyPair:
        self.identity.authorize(
            principal=principal,
            permission=Permission.CONSENT_MANAGE,
            resource=Resource("consent", owner_id=principal.user_id),
        )
        if category not in DATA_CATEGORIES or purpose not in PURPOSES:
            raise InvalidInput(
                "invalid_consent",
                f"category is one of {sorted(DATA_CATEGORIES)}, purpose one of {sorted(PURPOSES)}",
            )
        return self._keys(principal).did_key

    def grant_consent(
        self, *, principal: Principal, grantee: str, category: str, purpose: str, until_ms: int
    ) -> dict[str, Any]:
        key = self._consent_args(principal, grantee, category, purpose)
        args = {"grantee": grantee, "category": category, "purpose": purpose, "until_ms": until_ms}
        result = self._submit_as(key, "grant", args, "consent")
        self._audit(
            principal, "consent.grant", f"did:{grantee}", category=category, purpose=purpose
        )
        return {**result["return"], "height": result["height"]}

    def revoke_consent(
        self, *, principal: Principal, grantee: str, category: str, purpose: str
    ) -> dict[str, Any]:
        key = self._consent_args(principal, grantee, category, purpose)
        args = {"grantee": grantee, "category": category, "purpose": purpose}
        result = self._submit_as(key, "revoke", args, "consent")
        self._audit(
            principal, "consent.revoke", f"did:{grantee}", category=category, purpose=purpose
        )
        return {**result["return"], "height": result["height"]}

    def list_consents(
        self, *, principal: Principal, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """A page of the user's consents (read from chain state), by consent hash."""
        self.identity.authorize(
            principal=principal,
            permission=Permission.CONSENT_MANAGE,
            resource=Resource("consent", owner_id=principal.user_id),
        )
        did = self._keys(principal).did_key.did
        prefix = f"consent/by_subject/{did}/"
        limit = max(1, min(limit, limits.PAGE_ROWS_MAX))
        rows = self.state.scan(prefix, prefix + (after or ""), limit)
        page = []
        for key, _flag in rows:
            digest = key.removeprefix(prefix)
            record = self.state.get(f"consent/grant/{digest}")
            if record is not None:
                page.append({"consent": digest, **record})
        return page

    # -- credentials --------------------------------------------------------------------------
    def issuing_member(self) -> IssuingMember:
        """This node's member as issuer, with its revocation list created on first use."""
        member = IssuingMember(key=self.node.key, list_id=self.status_list_id)
        with self._status_list_lock:
            if status_list_record(self.state, member.did, member.list_id) is None:
                GatewayWriter(self.gateway).submit(
                    "status_list",
                    "create",
                    {"list_id": member.list_id, "purpose": "revocation", "size": member.list_size},
                )
        return member

    def issue_credential(self, *, principal: Principal, subject_user_id: str) -> dict[str, Any]:
        return self.personal.issue_kyc_credential(
            principal=principal, subject_user_id=subject_user_id, issuer=self.issuing_member()
        )

    def revoke_credential(self, *, principal: Principal, credential_id: str, reason: str) -> None:
        self.personal.revoke_credential(
            principal=principal,
            credential_id=credential_id,
            issuer=self.issuing_member(),
            reason=reason,
        )

    def verify_credential(self, credential: dict[str, Any]) -> VerifiedCredential:
        return self.personal.verify_kyc_credential(credential)

"""Names of account owners for payments (`zhijin.payments.expected.PartyNames`): the root joins
payments' need to identity's vault and the chain's membership, so neither domain reaches into
the other.

A person's name and mobile come from their personal-data record, a company's name from the
business record an SME owner saved (both sealed in identity's vault); a consortium member's
name from its membership record on chain (an institution's name is public).  Payments masks
what it shows and audits every lookup; this adapter only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zhijin.chain.contract import MEMBER_PREFIX
from zhijin.identity.kyc import BUSINESS_SCHEMA, PERSON_SCHEMA
from zhijin.identity.ratelimit import Bucket, RateLimitStore, check
from zhijin.identity.service import IdentityService
from zhijin.payments import limits as payments_limits
from zhijin.payments.expected import PartyKind, PartyName
from zhijin.platform.vault import RecordSchema, text_value

__all__ = ["PAYEE_LOOKUP_BUCKET", "IdentityPartyNames", "PayeeLookupBudget"]

PAYEE_LOOKUP_BUCKET = Bucket(
    "payee-lookup", payments_limits.PAYEE_LOOKUPS_BURST, payments_limits.PAYEE_LOOKUP_REFILL_MS
)


class PayeeLookupBudget:
    """Payments' `LookupBudget`: a token bucket per requester in identity's rate-limit table
    (so it holds across processes and restarts); over it, 429 `rate_limited` with the wait."""

    def __init__(self, store: RateLimitStore, *, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    def spend(self, requester: str) -> None:
        check(self.store, requester, PAYEE_LOOKUP_BUCKET, now_ms=self.clock())


class IdentityPartyNames:
    def __init__(self, identity: IdentityService, state_get: Callable[[str], Any]) -> None:
        self.identity = identity
        self.state_get = state_get  # committed chain state (the node's `state_get`)

    def _field(self, schema: RecordSchema, user_id: str, name: str) -> str | None:
        record = self.identity.vault_store.get(schema.name, user_id)
        if record is None:
            return None
        value = self.identity.vault.open(schema, record, [name]).get(name)
        return None if value is None else text_value(value)

    def name_of(self, owner: str, *, business: bool) -> PartyName | None:
        member = self.state_get(MEMBER_PREFIX + owner)
        if isinstance(member, dict) and isinstance(member.get("name"), str):
            return PartyName(PartyKind.INSTITUTION, member["name"])
        user = self.identity.store.user_by_did(owner)
        if user is None:
            return None
        if business:
            company = self._field(BUSINESS_SCHEMA, user.id, "company_name")
            if company:
                return PartyName(PartyKind.BUSINESS, company)
        person = self._field(PERSON_SCHEMA, user.id, "name")
        return None if not person else PartyName(PartyKind.PERSON, person)

    def mobile_of(self, owner: str) -> str | None:
        user = self.identity.store.user_by_did(owner)
        return None if user is None else self._field(PERSON_SCHEMA, user.id, "mobile")

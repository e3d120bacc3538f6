"""Identity's `AccountOpenings` port (zhijin/identity/expected.py), implemented by the
composition root over payments' account requests and put on each host as `account_openings`.

The onboarding pages (identity/web/onboarding.py) ask through it; every call goes through
payments' own `AccountOpening` (RBAC with scope, audit, idempotency) exactly as
`/api/v1/account-requests` does, and answers the API's view of a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zhijin.identity.rbac import Principal
from zhijin.payments import currency
from zhijin.payments import limits as payments_limits
from zhijin.payments import service as payments
from zhijin.payments.opening import AccountOpening
from zhijin.payments.opening_models import request_json
from zhijin.platform.gateway import MemberGateway

__all__ = ["OFFERED_CURRENCIES", "build_onboarding_ports"]

# What the onboarding form offers after the opening policy's currencies (ISO 4217; the
# request itself accepts any valid code, as the API does).
OFFERED_CURRENCIES = ("CNY", "HKD", "USD", "EUR", "GBP", "JPY")


@dataclass(frozen=True, slots=True)
class _AccountOpenings:
    host: Any

    def _opening(self) -> AccountOpening:
        # Stateless over the host's tables and settings (a malformed policy already stopped
        # the node at start: payments' OpeningPolicyService parses it first).
        return AccountOpening(self.host, MemberGateway(self.host.node))

    def currencies(self) -> tuple[str, ...]:
        policy = [rule.currency for rule in self._opening().policy]
        offered = [*policy, *OFFERED_CURRENCIES]
        return tuple(dict.fromkeys(code for code in offered if currency.is_valid(code)))

    def request(
        self, *, principal: Principal, currency: str, kind: str, purpose: str
    ) -> Mapping[str, Any]:
        decision = self._opening().request(
            principal=principal,
            request_id=None,  # `<kind>-<currency>`: asking twice is the same request
            currency_code=currency,
            kind=kind,
            purpose=purpose,
        )
        return request_json(decision.request)

    def mine(self, *, principal: Principal) -> list[Mapping[str, Any]]:
        rows = self._opening().page(
            principal=principal,
            user_id=principal.user_id,
            status=None,
            after=None,
            limit=payments_limits.ACCOUNT_REQUESTS_PER_USER_MAX,
        )
        return [request_json(row) for row in rows]

    def one(self, *, principal: Principal, user_id: str, request_id: str) -> Mapping[str, Any]:
        row = self._opening().get(principal=principal, user_id=user_id, request_id=request_id)
        return request_json(row)

    def holds_accounts(self, owner_did: str) -> bool:
        return bool(payments.list_accounts(self.host, owner=owner_did, limit=1)["accounts"])


def build_onboarding_ports(host: Any) -> _AccountOpenings:
    return _AccountOpenings(host)

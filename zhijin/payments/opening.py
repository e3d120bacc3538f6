"""Account opening for customers: requests, the officer's decision, and the opening policy.

The journey (docs/payments.md, "Opening an account"): a customer who has submitted KYC asks
for an account (currency, kind, purpose); an officer of the bank approves it, which opens the
account on chain through payments' own open path (`service.open_account`, signed by the
member as custodian), or rejects it with a reason the customer reads.  When the customer's KYC
is approved, the opening policy (`PaymentsSettings.account_auto_open`, data not code) opens the
accounts it names at once, with no officer.

Rules, each with its stable code:

- only an end user with a KYC case (pending or approved) may ask: `kyc_required`;
- an account is opened only for an approved KYC case: `kyc_not_approved`;
- the officer who opens it is not the one who approved the KYC, nor its owner:
  `sod_self_approval` (rbac.APPROVALS), so no one insider onboards a person alone.  The
  policy's automatic opening is the institution's declared exception for the accounts it
  lists, decided when the policy was set, and is audited as `policy`;
- a decision is idempotent on the request: approving an opened request again answers the same
  account (`replayed`), two officers racing open one account (the status moves by conditional
  update, and the account id is fixed by the request, so the chain answers the loser `exists`);
  rejecting a decided request, or approving a rejected one, is `account_request_decided`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.identity.rbac import Permission, Principal, Resource, Scope, require
from zhijin.identity.service import IdentityService
from zhijin.payments import currency, limits, service
from zhijin.payments.expected import PaymentsHost
from zhijin.payments.opening_store import (
    AccountRequest,
    AccountRequestStore,
    RequestStatus,
)
from zhijin.payments.settings import PaymentsSettings
from zhijin.platform.errors import Conflict, Forbidden, InvalidInput
from zhijin.platform.gateway import MemberGateway

__all__ = [
    "POLICY_ACTOR",
    "AccountOpening",
    "AutoOpenRule",
    "Decision",
    "PolicyInvalid",
    "account_id_for",
    "parse_policy",
]

log = logging.getLogger("zhijin.payments")

POLICY_ACTOR = "policy"
# Which account kinds each kind of end user may hold.
_ACCOUNT_KINDS = {"individual": ("customer",), "sme_owner": ("customer", "merchant")}


class PolicyInvalid(ZhijinError):
    code = "invalid_opening_policy"


@dataclass(frozen=True, slots=True)
class AutoOpenRule:
    """One account the policy opens for a verified customer of `user_kind`."""

    user_kind: str
    currency: str
    account_kind: str = "customer"

    @property
    def request_id(self) -> str:
        return f"{self.account_kind}-{self.currency.lower()}"


def parse_policy(text: str) -> tuple[AutoOpenRule, ...]:
    """`individual:CNY, sme_owner:CNY:merchant` -> rules; empty text -> no automatic opening."""
    rules = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        parts = [part.strip() for part in entry.split(":")]
        user_kind, code = parts[0], parts[1] if len(parts) > 1 else ""
        account_kind = parts[2] if len(parts) == 3 else "customer"
        if (
            len(parts) not in (2, 3)
            or user_kind not in _ACCOUNT_KINDS
            or account_kind not in _ACCOUNT_KINDS[user_kind]
        ):
            raise PolicyInvalid(
                message=f"opening policy entry {entry!r}: <individual|sme_owner>:<currency>"
                "[:<customer|merchant>] (merchant for sme_owner only)"
            )
        if not currency.is_valid(code):
            raise PolicyInvalid(message=f"opening policy entry {entry!r}: unknown currency")
        rules.append(AutoOpenRule(user_kind, code, account_kind))
    if len(rules) > limits.ACCOUNT_AUTO_OPEN_RULES_MAX:
        raise PolicyInvalid(message=f"at most {limits.ACCOUNT_AUTO_OPEN_RULES_MAX} policy entries")
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class Decision:
    """A request after a decision, and whether the decision had been taken before."""

    request: AccountRequest
    replayed: bool


def account_id_for(user_id: str, request_id: str) -> str:
    """The account a request opens: fixed by the request, so every retry names the same one
    (a digest: a customer's own ids never become another's account id)."""
    digest = hashlib.sha256(f"zhijin/account-request/v1\x00{user_id}\x00{request_id}".encode())
    return "acct-" + digest.hexdigest()[:24]


class AccountOpening:
    """Account requests over the host's platform database, deciding with the host's identity
    service (RBAC, audit) and opening through the member's gateway."""

    def __init__(
        self,
        platform: PaymentsHost,
        gateway: MemberGateway,
        *,
        policy: tuple[AutoOpenRule, ...] | None = None,
    ) -> None:
        self.platform = platform
        self.gateway = gateway
        self.store = AccountRequestStore(platform.platform_engine)
        self.policy = (
            parse_policy(PaymentsSettings.of(platform.settings).account_auto_open)
            if policy is None
            else policy
        )

    @property
    def _identity(self) -> IdentityService:
        return self.platform.identity

    def _now(self) -> int:
        return self._identity.clock()

    def _audit(
        self, actor: str, action: str, request: AccountRequest, outcome: str, **extra: Any
    ) -> None:
        self._identity.audit.append(
            actor=actor,
            action=action,
            target=f"account_request:{request.user_id}/{request.request_id}",
            outcome=outcome,
            at_ms=self._now(),
            reason=extra.pop("reason", None),
            details={"account_id": request.account_id, "currency": request.currency, **extra},
        )

    # -- the customer ---------------------------------------------------------------------------
    def request(
        self,
        *,
        principal: Principal,
        request_id: str | None,
        currency_code: str,
        kind: str,
        purpose: str,
    ) -> Decision:
        """A customer's ask (idempotent on the request id); `replayed` when it existed."""
        identity = self._identity
        identity.authorize(
            principal=principal,
            permission=Permission.ACCOUNT_REQUEST,
            resource=Resource("account_request", owner_id=principal.user_id),
        )
        user = identity.store.user_by_id(principal.user_id)
        code = _valid_request(user.kind if user else "", currency_code, kind, purpose)
        case = identity.store.kyc_case(principal.user_id)
        if case is None or case["status"] == "rejected":
            raise InvalidInput("kyc_required", "submit your KYC (identity check) first")
        wanted = AccountRequest(
            user_id=principal.user_id,
            request_id=request_id or f"{kind}-{code.lower()}",
            owner_did=identity.user_did(principal=principal),
            member_did=self.platform.node.key.did,
            currency=code,
            kind=kind,
            purpose=purpose,
            status=RequestStatus.PENDING,
            account_id="",
            created_ms=self._now(),
        )
        return self._store_new(wanted, actor=f"user:{principal.user_id}")

    def _store_new(self, wanted: AccountRequest, *, actor: str) -> Decision:
        wanted = _with_account_id(wanted)
        existing = self.store.get(wanted.user_id, wanted.request_id)
        if existing is None:
            if self.store.count_for_user(wanted.user_id) >= limits.ACCOUNT_REQUESTS_PER_USER_MAX:
                raise InvalidInput(
                    "too_many_account_requests",
                    f"at most {limits.ACCOUNT_REQUESTS_PER_USER_MAX} account requests per user",
                )
            if self.store.insert(wanted):
                self._audit(actor, "account.request", wanted, "ok", kind=wanted.kind)
                return Decision(wanted, replayed=False)
            existing = self.store.get(wanted.user_id, wanted.request_id)  # lost a race: reread
            if existing is None:
                raise Conflict("account_request_changed", "the request changed meanwhile; retry")
        differs = [
            name
            for name in ("currency", "kind", "purpose", "owner_did")
            if getattr(existing, name) != getattr(wanted, name)
        ]
        if differs:
            raise Conflict(
                "account_request_exists_with_different_fields",
                f"request {wanted.request_id} exists with other values: {', '.join(differs)}",
                fields=differs,
            )
        return Decision(existing, replayed=True)

    # -- reads ------------------------------------------------------------------------------------
    def page(
        self,
        *,
        principal: Principal,
        user_id: str | None,
        status: RequestStatus | None,
        after: str | None,
        limit: int,
    ) -> list[AccountRequest]:
        """Requests the caller may see: their own (customers), their member's (bank staff,
        the officer's queue), or all (auditors); oldest first."""
        grant = self._identity.authorize(principal=principal, permission=Permission.ACCOUNT_READ)
        member = None
        if grant.scope is Scope.OWN:
            if user_id not in (None, principal.user_id):
                raise Forbidden("out_of_scope", "customers see their own requests only")
            user_id = principal.user_id
        elif grant.scope is Scope.MEMBER:
            if principal.member_did is None:
                raise Forbidden("out_of_scope", "the queue is for staff of a member")
            member = principal.member_did
        return self.store.page(
            user_id=user_id,
            member_did=member,
            status=status,
            after=_parse_cursor(after),
            limit=max(1, min(limit, limits.PAGE_SIZE_MAX)),
        )

    def get(self, *, principal: Principal, user_id: str, request_id: str) -> AccountRequest:
        self._identity.authorize_permission(
            principal=principal,
            permission=Permission.ACCOUNT_READ,
            target=f"account_request:{user_id}/{request_id}",
        )
        request = self._find(user_id, request_id)
        self._identity.authorize(
            principal=principal, permission=Permission.ACCOUNT_READ, resource=_resource(request)
        )
        return request

    def _find(self, user_id: str, request_id: str) -> AccountRequest:
        request = self.store.get(user_id, request_id)
        if request is None:
            raise NotFound("account_request_not_found", "no such account request")
        return request

    # -- the officer ------------------------------------------------------------------------------
    def approve(self, *, principal: Principal, user_id: str, request_id: str) -> Decision:
        """Open the requested account (idempotent: see the module's rules)."""
        identity = self._identity
        target = f"account_request:{user_id}/{request_id}"
        identity.authorize_permission(
            principal=principal, permission=Permission.ACCOUNT_OPEN, target=target
        )
        request = self._find(user_id, request_id)
        case = identity.store.kyc_case(user_id)
        reviewer = None if case is None else case["reviewed_by"]
        identity.authorize(
            principal=principal,
            permission=Permission.ACCOUNT_OPEN,
            resource=_resource(request, created_by=reviewer),
        )
        if case is None or case["status"] != "approved":
            raise InvalidInput("kyc_not_approved", "the customer's KYC is not approved yet")
        return self._open(request, actor=f"user:{principal.user_id}")

    def approval_blocker(self, *, principal: Principal, request: AccountRequest) -> str | None:
        """Why `approve` would refuse this principal this request, as its stable code, or
        None: what a page checks to offer the button or say why not.  It decides by the same
        rules (rbac.require on the same resource, the KYC case's status) but writes nothing:
        the refusal a click would still get is the one that is audited."""
        case = self._identity.store.kyc_case(request.user_id)
        reviewer = None if case is None else case["reviewed_by"]
        try:
            require(
                principal,
                Permission.ACCOUNT_OPEN,
                resource=_resource(request, created_by=reviewer),
            )
        except Forbidden as exc:
            return exc.code
        if case is None or case["status"] != "approved":
            return "kyc_not_approved"
        return None

    def _open(self, request: AccountRequest, *, actor: str) -> Decision:
        if request.status is RequestStatus.REJECTED:
            raise Conflict("account_request_decided", "the request was rejected")
        if request.status is RequestStatus.OPENED:
            self._audit(actor, "account.open_request", request, "replayed")
            return Decision(request, replayed=True)
        replayed = request.status is RequestStatus.APPROVED
        if not replayed and not self.store.claim(
            request.user_id, request.request_id, decided_by=actor, now_ms=self._now()
        ):
            replayed = True  # another decision claimed it first: carry it on, opening once
        claimed = self._find(request.user_id, request.request_id)
        if claimed.status is RequestStatus.REJECTED:
            raise Conflict("account_request_decided", "the request was rejected meanwhile")
        if claimed.status is RequestStatus.APPROVED:
            self._open_on_chain(claimed)
            self.store.mark_opened(claimed.user_id, claimed.request_id, now_ms=self._now())
        opened = self._find(request.user_id, request.request_id)
        self._audit(actor, "account.open_request", opened, "replayed" if replayed else "opened")
        return Decision(opened, replayed=replayed)

    def _open_on_chain(self, request: AccountRequest) -> None:
        # The member opens it as custodian; a retry of the same account is the contract's
        # `exists`, so racing deciders and crash recovery open it once.
        service.open_account(
            self.platform,
            self.gateway,
            account={
                "id": request.account_id,
                "owner": request.owner_did,
                "currency": request.currency,
                "kind": request.kind,
            },
        )

    def reject(
        self, *, principal: Principal, user_id: str, request_id: str, reason: str
    ) -> Decision:
        identity = self._identity
        target = f"account_request:{user_id}/{request_id}"
        identity.authorize_permission(
            principal=principal, permission=Permission.ACCOUNT_OPEN, target=target
        )
        request = self._find(user_id, request_id)
        identity.authorize(
            principal=principal, permission=Permission.ACCOUNT_OPEN, resource=_resource(request)
        )
        text = reason.strip()
        if not 0 < len(text) <= limits.ACCOUNT_REQUEST_REASON_CHARS_MAX:
            raise InvalidInput(
                "invalid_reason",
                f"a reason is 1 to {limits.ACCOUNT_REQUEST_REASON_CHARS_MAX} characters",
            )
        actor = f"user:{principal.user_id}"
        if not self.store.reject(
            user_id, request_id, decided_by=actor, reason=text, now_ms=self._now()
        ):
            current = self._find(user_id, request_id)
            if current.status is RequestStatus.REJECTED and current.reason == text:
                return Decision(current, replayed=True)
            raise Conflict("account_request_decided", f"the request is {current.status} already")
        rejected = self._find(user_id, request_id)
        self._audit(actor, "account.reject_request", rejected, "rejected", reason=text)
        return Decision(rejected, replayed=False)

    # -- the policy -------------------------------------------------------------------------------
    def kyc_approved(self, *, user_id: str, member_did: str, reviewer_id: str) -> None:
        """Identity's KYC listener: open what the policy gives this kind of customer.  A
        failure is logged and leaves the request in the officer's queue (pending or approved),
        where any approval carries it on."""
        if member_did != self.platform.node.key.did:
            return  # another member's customer: that member's node decides
        user = self._identity.store.user_by_id(user_id)
        rules = [r for r in self.policy if user is not None and r.user_kind == user.kind]
        if user is None or user.did is None or not rules:
            return
        for rule in rules:
            try:
                request = self._policy_request(user_id, user.did, rule)
                if request.status in (RequestStatus.PENDING, RequestStatus.APPROVED):
                    self._open(request, actor=POLICY_ACTOR)
            except ZhijinError as exc:
                log.warning(
                    "opening policy: %s %s for user %s not opened: %s",
                    rule.currency,
                    rule.account_kind,
                    user_id,
                    exc.code,
                )

    def _policy_request(self, user_id: str, owner_did: str, rule: AutoOpenRule) -> AccountRequest:
        """The customer's own pending request for the same account if they made one (so they
        do not get two), else the policy's request `<kind>-<currency>`."""
        for mine in self.store.page(
            user_id=user_id,
            member_did=None,
            status=RequestStatus.PENDING,
            after=None,
            limit=limits.ACCOUNT_REQUESTS_PER_USER_MAX,
        ):
            if mine.currency == rule.currency and mine.kind == rule.account_kind:
                return mine
        wanted = AccountRequest(
            user_id=user_id,
            request_id=rule.request_id,
            owner_did=owner_did,
            member_did=self.platform.node.key.did,
            currency=rule.currency,
            kind=rule.account_kind,
            purpose="daily",
            status=RequestStatus.PENDING,
            account_id="",
            created_ms=self._now(),
        )
        try:
            return self._store_new(wanted, actor=POLICY_ACTOR).request
        except Conflict:
            # The customer holds that id for another request (another purpose): leave theirs.
            existing = self.store.get(user_id, rule.request_id)
            if existing is None:
                raise
            return existing


def _with_account_id(request: AccountRequest) -> AccountRequest:
    return replace(request, account_id=account_id_for(request.user_id, request.request_id))


def _resource(request: AccountRequest, *, created_by: str | None = None) -> Resource:
    return Resource(
        "account_request",
        id=f"{request.user_id}/{request.request_id}",
        owner_id=request.user_id,
        member_did=request.member_did,
        created_by=created_by,
    )


def _valid_request(user_kind: str, currency_code: str, kind: str, purpose: str) -> str:
    """The request's checks, all at once (per-field `errors`, as identity's forms)."""
    errors = []
    if not currency.is_valid(currency_code):
        errors.append(
            {"field": "currency", "code": "currency_invalid", "message": "not an ISO 4217 code"}
        )
    if kind not in _ACCOUNT_KINDS.get(user_kind, ()):
        errors.append(
            {
                "field": "kind",
                "code": "account_kind_not_allowed",
                "message": "customers ask for customer accounts; SME owners also for merchant",
            }
        )
    if purpose not in limits.ACCOUNT_REQUEST_PURPOSES:
        errors.append(
            {
                "field": "purpose",
                "code": "invalid_purpose",
                "message": f"purpose is one of {', '.join(limits.ACCOUNT_REQUEST_PURPOSES)}",
            }
        )
    if errors:
        raise InvalidInput(errors[0]["code"], errors[0]["message"], errors=errors)
    return currency_code


def _parse_cursor(after: str | None) -> tuple[int, str, str] | None:
    if after is None:
        return None
    created, _, rest = after.partition(":")
    user_id, _, request_id = rest.partition(":")
    if not created.isdigit() or not user_id or not request_id:
        raise InvalidInput("invalid_cursor", "after is the `cursor` of the last item of a page")
    return int(created), user_id, request_id

"""The request guard every domain's routes use: who is calling, whether they may, whether they
must step up first, with every decision in the access audit log.

A route asks two dependencies and one service object, never identity's internals:

    @router.post("/loans/{loan_id}/drawdowns")
    def draw(loan_id: str, body: DrawIn, caller: CallerDep, guard: GuardDep) -> ...:
        loan = service.get_loan(...)
        guard.authorize_owned(caller, permission=Permission.LOAN_APPLY, kind="loan",
                              id=loan_id, owner=loan["borrower"], member_did=loan["lender"])
        reservation = guard.put_to_policy(caller, action="loan.drawdown", outflows=[...],
                                          has_paid=..., floor_ref_minor=limits.STEP_UP_FROM_MINOR)
        with guard.releasing(reservation, refusals=(LoanRefused,)):
            return service.draw(..., sender=caller.sender)

Who is calling (`CallerDep`, `Guard.caller`): the node operator's bearer token acts as this
node's member (`Caller()`, no principal; it is never asked to step up); otherwise identity's
session cookie (with its CSRF token on unsafe methods) or API token names a principal.  An end
user's requests are submitted with `sender` = the user's DID, which the member vouches for, so
the contract's own authorisation applies on top of RBAC; staff of this node's member act
through the member (`sender` None) within their roles' scope; staff of another member are
refused (`other_member`): they act through their own member's node.

May they (`authorize`, `authorize_owned`, `list_scope`): the RBAC matrix with its scopes (own /
member / all) and separation of duties, through `IdentityService.authorize`, which writes every
refusal and every privileged grant to the access audit log.  The operator may do whatever the
member may.  A resource is the caller's own when its owner DID is the caller's DID.

Must they step up (`put_to_policy`): a customer's request that moves money is put to the
step-up policy as one request, with its risk context (the amount per payee, whether the payee is
new, the device, where the request comes from against the last sign-in, and the 24 h counters of
what the user moved, this request included: outflows.py).  The amounts are reserved as the
policy admits them; `releasing` gives them back when the ledger definitely refused the request.

The chain's read policy (zhijin/platform/chain_read.py) asks the same guard who may read a
transaction body (`ReadPolicy`, installed by the composition root).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from zhijin.identity.counters import Reservation
from zhijin.identity.errors import SessionInvalid
from zhijin.identity.outflows import Outflow, put_to_policy, record_moved
from zhijin.identity.rbac import (
    Grant,
    Permission,
    Principal,
    Resource,
    Scope,
    permissions_of,
    require,
)
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.web import current_user, optional_user, request_source
from zhijin.platform.chain_read import ANYONE, MEMBERS, ChainReader, PartyFinder
from zhijin.platform.data_dir import check_operator_token
from zhijin.platform.errors import Forbidden
from zhijin.platform.settings import CoreSettings

__all__ = [
    "Caller",
    "CallerDep",
    "Guard",
    "GuardDep",
    "ListScope",
    "Outflow",
    "ReadPolicy",
    "get_guard",
    "resolve_caller",
]

OPERATOR_ACTOR = "operator"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks.  No principal: the operator, acting as this node's member.  An end user has
    `sender` = their DID; staff of this node's member have `sender` None."""

    sender: str | None = None
    principal: Principal | None = None
    source: RequestSource | None = None  # the client's address and device, for step-up

    @property
    def is_operator(self) -> bool:
        return self.principal is None

    @property
    def is_end_user(self) -> bool:
        return self.principal is not None and self.principal.member_did is None

    @property
    def actor(self) -> str:
        """The caller as the access audit log names them."""
        return OPERATOR_ACTOR if self.principal is None else f"user:{self.principal.user_id}"

    def owns(self, owner: str) -> bool:
        """Whether `owner` (a DID) is this caller's own DID."""
        return self.sender is not None and owner == self.sender


@dataclass(frozen=True, slots=True)
class ListScope:
    """What a listing may show the caller: everything (both None), one member's resources
    (`member_did`) or one owner's (`owner`, the caller's DID).  A listing filters its query by
    the fields that are set."""

    owner: str | None = None
    member_did: str | None = None


class Guard:
    """The authorisation service of one node: identity's service, this node's member and its
    operator token.  Built once by the composition root; every method is keyword-only past the
    caller, and does nothing for the operator but what the member itself would be refused."""

    def __init__(
        self,
        *,
        identity: IdentityService,
        settings: CoreSettings,
        member_did: str,
        clock: Callable[[], int],
    ) -> None:
        self.identity = identity
        self._settings = settings
        self.member_did = member_did
        self.clock = clock  # the node's clock: the local hour and travel speed of step-up

    # -- who is calling ----------------------------------------------------------------------
    def is_operator_request(self, request: Request) -> bool:
        """Whether the request carries this node's operator token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and check_operator_token(self._settings, token.strip())

    def caller(self, request: Request) -> Caller:
        """The operator, or the authenticated principal (401 `session_invalid`, 403
        `csrf_failed`; 403 `other_member` for staff of another member)."""
        if self.is_operator_request(request):
            return Caller()
        principal = current_user(request, self.identity)
        source = request_source(request)
        if principal.member_did is None:
            return Caller(self.identity.user_did(principal=principal), principal, source)
        if principal.member_did != self.member_did:
            raise Forbidden("other_member", "staff act through their own member's node")
        return Caller(None, principal, source)

    def optional_principal(self, request: Request) -> Principal | None:
        """The signed-in caller, or None.  A bad bearer token is refused (an API client must
        hear of it); a stale session cookie is not: the page that sent it shows the sign-in
        form, and what it reads is read as anyone's."""
        try:
            return optional_user(request, self.identity)
        except SessionInvalid:
            if request.headers.get("authorization"):
                raise
            return None

    # -- may they ----------------------------------------------------------------------------
    def authorize(
        self,
        caller: Caller,
        *,
        permission: str,
        resource: Resource | None = None,
        justification: str | None = None,
    ) -> Grant | None:
        """RBAC with scope, audited; None for the operator (who acts as the member)."""
        if caller.principal is None:
            return None
        return self.identity.authorize(
            principal=caller.principal,
            permission=permission,
            resource=resource,
            justification=justification,
        )

    def owned(
        self, caller: Caller, *, kind: str, id: str, owner: str, member_did: str | None
    ) -> Resource:
        """A resource owned by the DID `owner` and held by the member `member_did`: the
        caller's own (scope `own`) exactly when `owner` is the caller's DID."""
        principal = caller.principal
        mine = principal is not None and caller.owns(owner)
        owner_id = principal.user_id if principal is not None and mine else None
        return Resource(kind=kind, id=id, owner_id=owner_id, member_did=member_did)

    def authorize_owned(
        self,
        caller: Caller,
        *,
        permission: str,
        kind: str,
        id: str,
        owner: str,
        member_did: str | None,
    ) -> Grant | None:
        """`authorize` on a resource owned by `owner` (a DID) and held by `member_did`."""
        resource = self.owned(caller, kind=kind, id=id, owner=owner, member_did=member_did)
        return self.authorize(caller, permission=permission, resource=resource)

    def may(self, caller: Caller, *, permission: str, resource: Resource) -> bool:
        """`authorize` as a question (the refusal is audited all the same)."""
        try:
            self.authorize(caller, permission=permission, resource=resource)
        except Forbidden:
            return False
        return True

    def list_scope(self, caller: Caller, *, permission: str) -> ListScope:
        """The caller's widest grant of `permission` as a listing's filter (audited; Forbidden
        without any grant).  The operator and `all` grants see everything."""
        grant = self.authorize(caller, permission=permission)
        if caller.principal is None or grant is None:
            return ListScope()
        grants = permissions_of(caller.principal.roles).get(permission, ())
        scopes = {scope for _role, scope in grants}
        if Scope.ALL in scopes:
            return ListScope()
        if Scope.MEMBER in scopes:
            return ListScope(member_did=caller.principal.member_did)
        return ListScope(owner=caller.sender)  # an end user lists their own only

    def require_member_side(self, caller: Caller) -> None:
        """Operator or staff of this member only (bulk files, books)."""
        if caller.is_end_user:
            raise Forbidden("permission_denied", "this is for the member's operator and staff")

    # -- must they step up -------------------------------------------------------------------
    def put_to_policy(
        self,
        caller: Caller,
        *,
        action: str,
        outflows: Sequence[Outflow | None],
        has_paid: Callable[[str, str, int], bool],
        floor_ref_minor: int,
    ) -> Reservation | None:
        """A customer's outflows (None items: nothing to judge, such as posting a hold) to the
        step-up policy as one request for `action`, with their risk context; the amounts are
        reserved.  Raises StepUpRequired or Forbidden (audited) when the policy refuses it now;
        None for the operator, who is not asked, or when nothing moves.  `has_paid(debit,
        credit, before_ms)`: whether that account paid that payee before `before_ms`; a payee
        is new unless paid before this sign-in (a stolen session cannot make its own payee
        known by paying it a little first)."""
        principal = caller.principal
        wanted = [o for o in outflows if o is not None]
        if principal is None or not wanted:
            return None

        def paid_before_sign_in(debit_account_id: str, credit_account_id: str) -> bool:
            return has_paid(debit_account_id, credit_account_id, principal.auth_at_ms)

        return put_to_policy(
            self.identity,
            principal,
            action=action,
            outflows=wanted,
            source=caller.source,
            has_paid=paid_before_sign_in,
            floor_ref_minor=floor_ref_minor,
            context_now_ms=self.clock(),
        )

    def release(self, reservation: Reservation | None, keys: Sequence[str] | None = None) -> None:
        """Give back what a reservation counted (only `keys` of it, when given): the ledger
        definitely refused it, nothing moved."""
        if reservation is not None:
            self.identity.counters.release(reservation, keys)

    @contextmanager
    def releasing(
        self,
        reservation: Reservation | None,
        *,
        refusals: tuple[type[BaseException], ...],
    ) -> Iterator[None]:
        """Run the submission; a definite refusal (one of `refusals`) gives the reserved
        amounts back, any other failure keeps them, as the tx may still commit."""
        try:
            yield
        except refusals:
            self.release(reservation)
            raise

    def record_moved(self, caller: Caller, outflow: Outflow) -> None:
        """Count an outflow whose amount became known only once it executed."""
        if caller.principal is not None:
            record_moved(self.identity, caller.principal, outflow)

    # -- who reads a tx body -----------------------------------------------------------------
    def chain_reader(
        self, principal: Principal | None, finders: Sequence[PartyFinder] = ()
    ) -> ChainReader:
        """The chain's read policy for a principal (None: anyone); `finders` say whom each
        domain's transactions name."""
        if principal is None:
            return ANYONE
        if principal.member_did is not None:
            own_member = principal.member_did == self.member_did
            if not (own_member and _reads_every_transaction(principal)):
                return ANYONE
            return ChainReader(members=True, audit=self._staff_audit(principal))
        try:
            return ChainReader(did=self.identity.user_did(principal=principal), finders=finders)
        except Forbidden:  # an account that owns no DID (no_user_did) reads as anyone
            return ANYONE

    def _staff_audit(self, principal: Principal) -> Callable[[str, str], None]:
        def audit(kind: str, resource_id: str) -> None:
            resource = Resource(kind=kind, id=resource_id, member_did=principal.member_did)
            self.identity.authorize(
                principal=principal, permission=Permission.TRANSACTION_READ, resource=resource
            )

        return audit


def _reads_every_transaction(principal: Principal) -> bool:
    """Staff whose roles grant `transaction.read` for their member or for all (not only their
    own).  `require` also refuses a principal holding roles that must never meet."""
    try:
        grant = require(principal, Permission.TRANSACTION_READ)
    except Forbidden:
        return False
    return grant.scope is not Scope.OWN


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """The chain's read policy as the plumbing asks it (`chain_read.ReadPolicy`): the
    operator's token reads as the member, anyone else by the guard."""

    guard: Guard
    finders: tuple[PartyFinder, ...] = ()

    def reader(self, request: Request) -> ChainReader:
        if self.guard.is_operator_request(request):
            return MEMBERS
        return self.guard.chain_reader(self.guard.optional_principal(request), self.finders)


def get_guard(request: Request) -> Guard:
    """The node's guard, put on the app's state by the composition root."""
    guard: Guard = request.app.state.guard
    return guard


GuardDep = Annotated[Guard, Depends(get_guard)]


def resolve_caller(request: Request, guard: GuardDep) -> Caller:
    return guard.caller(request)


CallerDep = Annotated[Caller, Depends(resolve_caller)]

"""Who asks, whether they may, and the service call: the one place the API's routes and the web
pages go through, so a page never allows (or shows) more than the API would the same viewer.

`Acting` bundles the host, the member gateway, the caller and identity's guard (FastAPI builds it
for a route with `ActingDep`; a page with `Acting.of(request)`).  Each action authorises with the
permissions lending's manifest declares, then calls `service`:

- the operator acts as this node's member (officer "operator"); staff act within their member;
- a customer applies for, withdraws and repays their own loans only, the member vouching for
  them on chain; staff keying an application do not vouch for the customer's KYC (level 0, so
  an application that needs KYC goes to the queue);
- maker-checker: RBAC refuses an officer approving a product they made, or a loan they applied
  for or borrow (`sod_self_approval`); the contract refuses the same officer again;
- an early repayment is money out of the borrower's account, so it meets identity's step-up
  policy exactly as a payment does (`_put_to_policy`): one outflow from the repayment account
  to the loan's account at payments (`lnp-<loan id>`), of what the contract would debit now
  (its own preview: for a full repayment, the payoff), 401 `step_up_required` when the policy
  asks for a fresh second factor, nothing moved; the amount reserved in the 24 h counters and
  given back when the contract refuses the repayment.  As in payments, the operator is not
  asked; everyone signed in (a customer, or staff repaying for them) is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import babel.numbers
from fastapi import Depends, Request

from zhijin.chain.errors import ContractError
from zhijin.identity import Caller, CallerDep, Guard, GuardDep, Outflow, Reservation, Resource
from zhijin.identity.guard import get_guard
from zhijin.lending import limits, permissions, records, service
from zhijin.lending.expected import LendingHost, LendingHostDep
from zhijin.lending.schedule import INTEREST_ROUNDING
from zhijin.lending.schemas import ApplicationIn, RepaymentIn
from zhijin.platform.deps import GatewayDep, get_gateway, get_platform
from zhijin.platform.errors import Forbidden
from zhijin.platform.gateway import MemberGateway

__all__ = ["OPERATOR", "STEP_UP_ACTION", "Acting", "ActingDep"]

OPERATOR = "operator"
# The step-up policy's name for moving money out, the one payments uses: a stored policy names
# the actions its amount rules cover, so a name of lending's own would meet none of them (and
# an early repayment would slip past every threshold) until a compliance officer added it.
STEP_UP_ACTION = "payment.transfer"
# A definite no of the contract (lending's codes, or payments' through `ctx.call`): nothing
# moved, so the amount reserved in the step-up counters is given back.
_REFUSALS = (ContractError,)


@dataclass(frozen=True, slots=True)
class Acting:
    platform: LendingHost
    gateway: MemberGateway
    caller: Caller
    guard: Guard

    @classmethod
    def of(cls, request: Request) -> Acting:
        guard = get_guard(request)
        platform: Any = get_platform(request)
        return cls(platform, get_gateway(request), guard.caller(request), guard)

    # -- who ---------------------------------------------------------------------------------
    @property
    def officer(self) -> str:
        """The officer (or applicant) the chain records: the user's id, or "operator"."""
        principal = self.caller.principal
        return OPERATOR if principal is None else principal.user_id

    @property
    def member(self) -> str:
        return self.platform.node.key.did

    @property
    def vouched_sender(self) -> str | None:
        """The customer the member vouches for on chain, or None when the member acts."""
        return self.caller.sender if self.caller.is_end_user else None

    def staff(self, permission: str, resource: Resource | None = None) -> None:
        """Operator or this member's staff holding `permission` (on `resource`)."""
        self.guard.require_member_side(self.caller)
        self.guard.authorize(self.caller, permission=permission, resource=resource)

    def _owned_loan(self, loan: dict[str, Any], permission: str) -> None:
        self.guard.authorize_owned(
            self.caller, permission=permission, kind="loan", id=loan["loan_id"],
            owner=loan["borrower"], member_did=loan["member"],
        )  # fmt: skip

    def _borrower_or_staff(self, loan_id: str) -> dict[str, Any]:
        """The borrower themselves (`loan.apply`, own), or the member's staff (`loan.approve`)."""
        loan = service.get_loan(self.platform, loan_id=loan_id)
        if not self.caller.is_end_user:
            self.guard.require_member_side(self.caller)
        self._owned_loan(
            loan, permissions.LOAN_APPLY if self.caller.is_end_user else permissions.LOAN_APPROVE
        )
        return loan

    # -- LPR and products --------------------------------------------------------------------
    def set_lpr(self, *, tenor: str, rate_bps: int, effective_day: str) -> dict[str, Any]:
        self.staff(permissions.PRODUCT_CREATE)
        return service.set_lpr(
            self.platform, self.gateway, tenor=tenor, rate_bps=rate_bps,
            effective_day=effective_day,
        )  # fmt: skip

    def list_products(self, *, status: str | None, after: str | None, limit: int) -> dict[str, Any]:
        if self.caller.is_end_user:  # customers see the approved products they may apply for
            return service.list_products(
                self.platform, member=self.member, status="approved", after=after, limit=limit
            )
        scope = self.guard.list_scope(self.caller, permission=permissions.LOAN_READ)
        return service.list_products(
            self.platform, member=scope.member_did, status=status, after=after, limit=limit
        )

    def create_product(self, terms: dict[str, Any]) -> dict[str, Any]:
        self.staff(permissions.PRODUCT_CREATE)
        return service.create_product(
            self.platform, self.gateway, terms=terms, officer=self.officer
        )

    def may_approve_product(self, product: dict[str, Any]) -> bool:
        """Whether `approve_product` would pass RBAC for this caller (the page's button)."""
        if self.caller.is_end_user:
            return False
        resource = product_resource(product)
        return self.guard.may(
            self.caller, permission=permissions.PRODUCT_APPROVE, resource=resource
        )

    def approve_product(self, product_id: str) -> dict[str, Any]:
        product = service.get_product(self.platform, product_id=product_id)
        self.staff(permissions.PRODUCT_APPROVE, product_resource(product))
        return service.approve_product(
            self.platform, self.gateway, product_id=product_id, officer=self.officer
        )

    # -- applications ------------------------------------------------------------------------
    def apply(self, body: ApplicationIn) -> dict[str, Any]:
        caller = self.caller
        if caller.is_end_user:
            if caller.sender is None or body.borrower not in (None, caller.sender):
                raise Forbidden("out_of_scope", "a customer applies for themselves")
            borrower = caller.sender
            self.guard.authorize_owned(
                caller, permission=permissions.LOAN_APPLY, kind="loan", id=body.loan_id,
                owner=borrower, member_did=self.member,
            )  # fmt: skip
            kyc = self.platform.lending_ports.kyc.level(caller.principal)
        else:
            if body.borrower is None:
                raise Forbidden("out_of_scope", "staff name the borrower")
            borrower = body.borrower
            self.staff(permissions.LOAN_APPROVE)
            kyc = 0
        return service.apply(
            self.platform,
            self.gateway,
            loan_id=body.loan_id,
            product_id=body.product_id,
            borrower=borrower,
            applied_by=self.officer,
            amount_minor=body.amount_minor,
            decision_id=body.decision_id,
            monthly_income_minor=body.monthly_income_minor,
            monthly_debt_minor=body.monthly_debt_minor,
            kyc_level=kyc,
            repayment_account_id=body.repayment_account_id,
            collateral_account_id=body.collateral_account_id,
            collateral_minor=body.collateral_minor,
            vouch=caller.is_end_user,
        )

    def queue(self, *, after: str | None, limit: int) -> dict[str, Any]:
        self.guard.require_member_side(self.caller)
        scope = self.guard.list_scope(self.caller, permission=permissions.LOAN_APPROVE)
        return service.queue(self.platform, member=scope.member_did, after=after, limit=limit)

    def review_blocker(self, loan: dict[str, Any]) -> str | None:
        """Why this caller may not review `loan` (a problem code), or None: the queue's
        button is offered only when the route would not refuse it."""
        if self.caller.is_end_user:
            return "permission_denied"
        if self.caller.sender is not None and self.caller.sender == loan["borrower"]:
            return "sod_self_approval"
        principal = self.caller.principal
        if principal is not None and principal.user_id == loan["applied_by"]:
            return "sod_self_approval"
        allowed = self.guard.may(
            self.caller, permission=permissions.LOAN_APPROVE, resource=loan_resource(loan)
        )
        return None if allowed else "permission_denied"

    def review(self, loan_id: str, *, approve: bool, reason: str) -> dict[str, Any]:
        loan = service.get_loan(self.platform, loan_id=loan_id)
        # The applicant is the resource's creator and the borrower its owner: RBAC refuses both
        # (sod_self_approval); the contract refuses the same officer again (self_approval).
        self.staff(permissions.LOAN_APPROVE, loan_resource(loan))
        if self.caller.sender is not None and self.caller.sender == loan["borrower"]:
            raise Forbidden("sod_self_approval", "an officer never approves their own loan")
        return service.review(
            self.platform, self.gateway, loan_id=loan_id, officer=self.officer, approve=approve,
            reason=reason,
        )  # fmt: skip

    def disburse(self, loan_id: str) -> dict[str, Any]:
        loan = service.get_loan(self.platform, loan_id=loan_id)
        self.staff(permissions.LOAN_APPROVE, loan_resource(loan))
        return service.disburse(self.platform, self.gateway, loan_id=loan_id)

    def withdraw(self, loan_id: str) -> dict[str, Any]:
        self._borrower_or_staff(loan_id)
        return service.loan_action(
            self.platform, self.gateway, method="withdraw", loan_id=loan_id,
            sender=self.vouched_sender,
        )  # fmt: skip

    def repay(self, loan_id: str, body: RepaymentIn) -> dict[str, Any]:
        """An early repayment: RBAC, the step-up policy (StepUpRequired when it asks for a
        fresh second factor), then the contract; a refusal gives the reserved amount back."""
        loan = self._borrower_or_staff(loan_id)
        reservation = self._put_to_policy(loan, body)
        with self.guard.releasing(reservation, refusals=_REFUSALS):
            return service.repay(
                self.platform, self.gateway, loan_id=loan_id, payment_id=body.payment_id,
                mode=body.mode, amount_minor=body.amount_minor, then=body.then,
                sender=self.vouched_sender,
            )  # fmt: skip

    def repayment_outflow(self, loan: dict[str, Any], body: RepaymentIn) -> Outflow | None:
        """What this repayment would move out of the borrower's account now, as the step-up
        policy sees it: the contract's own preview (a refusal is raised as the contract would
        answer it); None for a retry of a repayment already made, which moves nothing."""
        preview = service.preview_repayment(
            self.platform, loan_id=loan["loan_id"], payment_id=body.payment_id, mode=body.mode,
            amount_minor=body.amount_minor, then=body.then, sender=self.vouched_sender,
        )  # fmt: skip
        payment = preview.get("payment")
        if preview.get("exists") or payment is None:
            return None
        currency = loan["currency"]
        return Outflow(
            key=f"loan_repayment:{loan['loan_id']}:{body.payment_id}",  # a retry: the same key
            debit_owner=loan["borrower"],
            debit_account_id=loan["repayment_account_id"],
            payee=records.loan_account(loan["loan_id"]),
            currency=currency,
            exponent=babel.numbers.get_currency_precision(currency),
            amount_minor=int(payment["amount_minor"]),
        )

    def _put_to_policy(self, loan: dict[str, Any], body: RepaymentIn) -> Reservation | None:
        if self.caller.is_operator:
            return None  # the operator acts as the member and is never asked (as in payments)
        accounts = self.platform.lending_ports.accounts

        def has_paid(debit_account_id: str, credit_account_id: str, before_ms: int) -> bool:
            if accounts is None:  # no ledger to ask: a new payee, the stricter answer
                return False
            return accounts.has_paid(debit_account_id, credit_account_id, before_ms=before_ms)

        return self.guard.put_to_policy(
            self.caller,
            action=STEP_UP_ACTION,
            outflows=[self.repayment_outflow(loan, body)],
            has_paid=has_paid,
            floor_ref_minor=limits.STEP_UP_FROM_MINOR,
        )

    def preview_repayment(self, loan_id: str, body: RepaymentIn) -> dict[str, Any]:
        """What `repay` would do now (the new schedule and the allocation), written nowhere."""
        self._borrower_or_staff(loan_id)
        return service.preview_repayment(
            self.platform, loan_id=loan_id, payment_id=body.payment_id, mode=body.mode,
            amount_minor=body.amount_minor, then=body.then, sender=self.vouched_sender,
        )  # fmt: skip

    # -- reads -------------------------------------------------------------------------------
    def read_loan(self, loan_id: str) -> dict[str, Any]:
        loan = service.get_loan(self.platform, loan_id=loan_id)
        self._owned_loan(loan, permissions.LOAN_READ)
        return loan

    def schedule(self, loan_id: str) -> dict[str, Any]:
        return schedule_of(self.platform, self.read_loan(loan_id))

    def history(self, loan_id: str) -> dict[str, Any]:
        self.read_loan(loan_id)
        return service.history(self.platform, loan_id=loan_id)

    def list_loans(
        self, *, status: str | None, borrower: str | None, after: str | None, limit: int
    ) -> dict[str, Any]:
        scope = self.guard.list_scope(self.caller, permission=permissions.LOAN_READ)
        if scope.owner is not None:
            borrower = scope.owner
        return service.list_loans(
            self.platform, member=scope.member_did, borrower=borrower, status=status,
            after=after, limit=limit,
        )  # fmt: skip

    def book(self) -> dict[str, Any]:
        self.guard.require_member_side(self.caller)
        scope = self.guard.list_scope(self.caller, permission=permissions.LOAN_READ)
        # `every_member`: the regulator's (or the operator's) view of every member's book.
        book = service.book(self.platform, member=scope.member_did)
        return {**book, "every_member": scope.member_did is None}


def _acting(
    platform: LendingHostDep, gateway: GatewayDep, caller: CallerDep, guard: GuardDep
) -> Acting:
    return Acting(platform, gateway, caller, guard)


ActingDep = Annotated[Acting, Depends(_acting)]


def loan_resource(loan: dict[str, Any]) -> Resource:
    return Resource(
        kind="loan", id=loan["loan_id"], owner_id=loan["borrower"], member_did=loan["member"],
        created_by=loan["applied_by"],
    )  # fmt: skip


def product_resource(product: dict[str, Any]) -> Resource:
    return Resource(
        kind="loan_product", id=product["product_id"], member_did=product["member"],
        created_by=product["created_by"],
    )  # fmt: skip


def schedule_of(platform: LendingHost, loan: dict[str, Any]) -> dict[str, Any]:
    """The schedule with what was paid of each instalment (the API's `ScheduleOut`)."""
    product = service.get_product(platform, product_id=loan["product_id"])
    return {
        "loan_id": loan["loan_id"],
        "currency": loan["currency"],
        "rate_bps": loan["rate_bps"],
        "method": product["method"],
        "rounding": f"{INTEREST_ROUNDING}; the last instalment absorbs the remainder",
        "instalments": [
            {
                **item,
                "principal_paid_minor": loan["principal_paid"][index],
                "interest_paid_minor": loan["interest_paid"][index],
            }
            for index, item in enumerate(loan["schedule"])
        ],
    }

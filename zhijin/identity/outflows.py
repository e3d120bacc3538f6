"""Step-up for requests that move money: what a customer's request really moves, put to the
step-up policy together with what they moved before.  Every domain whose customers move money
(payments, lending's drawdowns, wealth's purchases, insurance's premiums) asks this through the
request guard (`guard.Guard.put_to_policy`), never the policy and the counters one by one.

A request (payments: one transfer, a batch, an FX payment) is a list of `Outflow`s.  They are
grouped by (debit account's owner, payee, currency): each group is one context for the policy,
whose `amount_ref_minor` is the group's total, so 51 transfers of 999.99 CNY to one payee in one
batch are judged as one of 50,999.49.  Every context also carries the user's durable counters
over the last 24 h (`payee_24h_ref_minor`, `total_24h_ref_minor`), this request included, so
the same split over many requests is caught as well.

The amounts are reserved in the counters when the policy admits the request, under the user's
lock, so two concurrent requests cannot both slip under a threshold.  Below the caller's
`floor_ref_minor` (the whole 24 h total, in the policy's reference currency; payments':
`payments.limits.STEP_UP_FROM_MINOR`) no rule is asked; the amounts are recorded all the same.

What happens to a reservation afterwards (the routes do it, through the guard):

- the ledger definitely refused the payment (a contract refusal: no funds, a 409, a failed
  linked chain): released, since nothing moved;
- the outcome is unknown (a timeout; the tx may still commit): kept, to fail safe;
- a hold: counted when it is placed; posting it adds nothing, voiding or expiry does not give
  it back (the window forgets it after 24 h);
- a retry of the same request (same id, same body) is counted once however often it comes.

An FX payment sized by its target has no source amount before it executes: the policy fails
closed on it (a fresh second factor), and its source amount is recorded once it is known
(`record_moved`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from zhijin.identity.counters import Movement, Reservation, WindowTotals
from zhijin.identity.rbac import Principal
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.stepup import (
    Decision,
    GeoPoint,
    RiskContext,
    StepUpPolicy,
    evaluate_all,
    permits,
    screening_total,
)

__all__ = ["Outflow", "put_to_policy", "record_moved"]

# (debit account's owner, payee account, currency, exponent)
_GroupKey = tuple[str, str, str, int]


@dataclass(frozen=True, slots=True)
class Outflow:
    """What one item of a request moves out of an account, validated and authorised."""

    key: str  # "<kind>:<client id>" ("transfer:<id>", "fx:<id>"): a retry has the same key
    debit_owner: str
    debit_account_id: str
    payee: str  # the credit account
    currency: str  # the debit account's
    exponent: int
    amount_minor: int | None  # None: not known before it executes (FX sized by its target)

    def movement(self) -> Movement | None:
        if self.amount_minor is None:
            return None
        return Movement(self.key, self.payee, self.currency, self.exponent, self.amount_minor)


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the policy needs besides the amounts: read before the lock is taken."""

    device_known: bool | None
    location: GeoPoint | None
    last_location: GeoPoint | None
    last_login_ms: int | None
    payee_known: Mapping[_GroupKey, bool]


@dataclass(frozen=True, slots=True)
class _Request:
    principal: Principal
    action: str  # the step-up policy's action name ("payment.transfer")
    policy: StepUpPolicy
    floor_ref_minor: int  # below this 24 h total (reference currency) no rule is asked
    groups: Mapping[_GroupKey, tuple[Outflow, ...]]
    context_now_ms: int  # the node's clock: local hour, travel speed
    now_ms: int  # the identity clock: second-factor freshness, counters


def _groups(outflows: Sequence[Outflow]) -> dict[_GroupKey, tuple[Outflow, ...]]:
    groups: dict[_GroupKey, list[Outflow]] = {}
    for p in outflows:
        groups.setdefault((p.debit_owner, p.payee, p.currency, p.exponent), []).append(p)
    return {key: tuple(items) for key, items in groups.items()}


def _facts(
    identity: IdentityService,
    request: _Request,
    source: RequestSource | None,
    has_paid: Callable[[str, str], bool],
) -> _Facts:
    principal = request.principal
    device_known = (
        None if source is None else identity.device_known(principal=principal, source=source)
    )
    # Where the payment comes from against where the user last signed in: a session used from
    # the other side of the world minutes after its login is someone else's.
    last_location, last_login_ms = identity.last_login(principal=principal)
    # A payee is known to the group when every debit account in it paid them before.
    payee_known = {
        key: all(has_paid(debit, key[1]) for debit in sorted({p.debit_account_id for p in items}))
        for key, items in request.groups.items()
    }
    return _Facts(
        device_known=device_known,
        location=None if source is None else source.location,
        last_location=last_location,
        last_login_ms=last_login_ms,
        payee_known=payee_known,
    )


def _contexts(request: _Request, facts: _Facts, totals: WindowTotals) -> tuple[RiskContext, ...]:
    contexts = []
    for key, items in request.groups.items():
        amounts = [p.amount_minor for p in items]
        contexts.append(
            RiskContext(
                action=request.action,
                now_ms=request.context_now_ms,
                amount_minor=None if None in amounts else sum(a for a in amounts if a),
                currency=key[2],
                amount_exponent=key[3],
                payee_known=facts.payee_known[key],
                device_known=facts.device_known,
                location=facts.location,
                last_location=facts.last_location,
                last_login_ms=facts.last_login_ms,
                moved_to_payee=totals.by_payee.get(key[1], ()),
                moved_overall=totals.overall,
            )
        )
    return tuple(contexts)


def _judge(
    request: _Request, facts: _Facts | None, totals: WindowTotals
) -> tuple[Decision | None, bool]:
    """(None, True) below the floor; (None, False) above it without the facts yet; else the
    policy's decision and whether it lets the request through now."""
    sized = all(p.amount_minor is not None for items in request.groups.values() for p in items)
    screened = screening_total(request.policy, totals.overall)
    if sized and screened is not None and screened < request.floor_ref_minor:
        return None, True
    if facts is None:
        return None, False
    decision = evaluate_all(request.policy, _contexts(request, facts, totals))
    mfa_at_ms = request.principal.mfa_at_ms
    return decision, permits(decision, mfa_at_ms=mfa_at_ms, now_ms=request.now_ms)


def put_to_policy(
    identity: IdentityService,
    principal: Principal,
    *,
    action: str,
    outflows: Sequence[Outflow],
    source: RequestSource | None,
    has_paid: Callable[[str, str], bool],
    floor_ref_minor: int,
    context_now_ms: int,
) -> Reservation:
    """Judge a user's request for `action` with its 24 h history and reserve its amounts;
    raises StepUpRequired or Forbidden (audited) when the policy refuses it now.
    `has_paid(debit, credit)`: whether the payer paid this payee before this sign-in."""
    request = _Request(
        principal=principal,
        action=action,
        policy=identity.current_policy(),  # read once for the floor and the decision
        floor_ref_minor=floor_ref_minor,
        groups=_groups(outflows),
        context_now_ms=context_now_ms,
        now_ms=identity.clock(),
    )
    movements = [m for m in (p.movement() for p in outflows) if m is not None]
    payees = sorted({p.payee for p in outflows})
    facts: _Facts | None = None
    # Small payments need no facts: a first pass without them, a second one with them when
    # the amounts are above the floor (at most two passes).
    for _ in range(2):
        decision, reservation = identity.counters.reserve(
            user_id=principal.user_id,
            movements=movements,
            payees=payees,
            now_ms=request.now_ms,
            judge=partial(_judge, request, facts),
        )
        if decision is not None:
            identity.enforce_decision(
                principal=principal, decision=decision, action=action, now_ms=request.now_ms
            )
            return reservation
        if reservation.admitted:
            return reservation  # below the floor
        facts = _facts(identity, request, source, has_paid)
    raise AssertionError("unreachable: the second pass has the facts")


def record_moved(identity: IdentityService, principal: Principal, outflow: Outflow) -> None:
    """Count an outflow whose amount is known only after it executed (an FX payment sized by
    its target, which the policy already stepped up)."""
    movement = outflow.movement()
    if movement is None:
        return
    identity.counters.reserve(
        user_id=principal.user_id,
        movements=[movement],
        payees=[],
        now_ms=identity.clock(),
        judge=_admit,
    )


def _admit(_totals: WindowTotals) -> tuple[None, bool]:
    return None, True

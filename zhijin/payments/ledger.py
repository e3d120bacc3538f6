"""The ledger's state transitions: accounts, transfers, holds, fees and expiries.

Each operation is a function over a `Book` (the tx's working set of records), an `Actor` (who is
asking) and an `Env` (block time, height, tx hash).  An operation either returns its result or
raises `PaymentsError`; the caller wraps each atomic group (one item, or one linked chain) in
`Book.begin`/`commit`/`rollback`, so a refused item leaves nothing behind.  Validation that needs
no state happened before, in `requests`.  FX lives in `fx`, on top of the helpers here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zhijin.chain.errors import invariant
from zhijin.payments import calc, currency, limits
from zhijin.payments.authorization import FEE_SETTER_ROLES, Actor
from zhijin.payments.book import (
    EVENT_ACCOUNT_CREATED,
    EVENT_ACCOUNT_STATUS_CHANGED,
    EVENT_FEE_SCHEDULE_SET,
    EVENT_PENDING_EXPIRED,
    Book,
    Env,
)
from zhijin.payments.codes import Code, differs_in, refuse
from zhijin.payments.records import (
    Account,
    AccountKind,
    AccountStatus,
    FeeSchedule,
    FxDetails,
    PendingState,
    PendingStatus,
    Transfer,
    TransferKind,
    keys,
)
from zhijin.payments.requests import (
    AccountRequest,
    FeeScheduleRequest,
    StatusRequest,
    TransferRequest,
)

__all__ = [
    "FEE_LEG_SUFFIX",
    "book_leg",
    "check_parties_open",
    "create_account",
    "create_transfer",
    "expire_due",
    "load_parties",
    "new_transfer",
    "ok_result",
    "refuse_if_different",
    "set_account_status",
    "set_fee_schedule",
]

FEE_LEG_SUFFIX = "~fee"

# Read once: on Python 3.11 each enum member access costs an attribute hook (see `records`), and
# these are read for every transfer.
_OPEN = AccountStatus.OPEN.value
_OK = Code.OK.value


# -- balances -------------------------------------------------------------------------------------


def _moved(
    account: Account,
    *,
    debits_pending: int = 0,
    debits_posted: int = 0,
    credits_pending: int = 0,
    credits_posted: int = 0,
) -> Account:
    """The account with the given amounts added to (or, negative, taken from) its counters.

    The only place counters change.  Each stays in [0, AMOUNT_MAX]: `book_leg` refuses a sum
    that would pass AMOUNT_MAX, and a hold's amount is taken back at most once.  Asserted here
    because the account's JSON is written without a validation pass (`records.Account`).
    """
    debits_pending += account.debits_pending
    debits_posted += account.debits_posted
    credits_pending += account.credits_pending
    credits_posted += account.credits_posted
    amount_max = limits.AMOUNT_MAX
    invariant(
        0 <= debits_pending <= amount_max
        and 0 <= debits_posted <= amount_max
        and 0 <= credits_pending <= amount_max
        and 0 <= credits_posted <= amount_max,
        "an account's counters stay within 0..AMOUNT_MAX",
    )
    return account.with_balances(
        debits_pending=debits_pending,
        debits_posted=debits_posted,
        credits_pending=credits_pending,
        credits_posted=credits_posted,
    )


def _check_open(account: Account, frozen: Code, closed: Code) -> None:
    if account.status == AccountStatus.FROZEN:
        refuse(frozen, f"account {account.id} is frozen")
    if account.status == AccountStatus.CLOSED:
        refuse(closed, f"account {account.id} is closed")


def load_parties(
    book: Book, debit_account_id: str, credit_account_id: str
) -> tuple[Account, Account]:
    """The debit and credit accounts of a movement of money, or refuse with the side's
    not-found code (debit first: the documented precedence)."""
    debit = book.account(debit_account_id)
    if debit is None:
        refuse(Code.DEBIT_ACCOUNT_NOT_FOUND, f"no account {debit_account_id}")
    credit = book.account(credit_account_id)
    if credit is None:
        refuse(Code.CREDIT_ACCOUNT_NOT_FOUND, f"no account {credit_account_id}")
    return debit, credit


def check_parties_open(debit: Account, credit: Account) -> None:
    """Refuse with the side's code unless both accounts are open (for a new movement of
    money): frozen or closed, debit side first."""
    if debit.status != _OPEN:
        _check_open(debit, Code.DEBIT_ACCOUNT_FROZEN, Code.DEBIT_ACCOUNT_CLOSED)
    if credit.status != _OPEN:
        _check_open(credit, Code.CREDIT_ACCOUNT_FROZEN, Code.CREDIT_ACCOUNT_CLOSED)


def book_leg(
    book: Book,
    transfer: Transfer,
    *,
    exceeds_credits: Code = Code.EXCEEDS_CREDITS,
) -> None:
    """Check balances and book one transfer between its two (loaded, distinct) accounts.

    Existence, currency, authority and status were checked by the caller; this is the part
    every leg shares: no counter may pass 2**63 - 1 and the accounts' limit flags must hold.
    """
    debit = book.account(transfer.debit_account_id)
    credit = book.account(transfer.credit_account_id)
    invariant(debit is not None and credit is not None, "a leg's accounts were checked")
    assert debit is not None and credit is not None
    invariant(debit.id != credit.id, "a leg moves money between two accounts")
    amount = transfer.amount
    if amount > limits.AMOUNT_MAX - debit.debits_pending - debit.debits_posted:
        refuse(Code.OVERFLOWS_DEBITS, f"account {debit.id}'s debits would overflow")
    if amount > limits.AMOUNT_MAX - credit.credits_pending - credit.credits_posted:
        refuse(Code.OVERFLOWS_CREDITS, f"account {credit.id}'s credits would overflow")
    if debit.debits_must_not_exceed_credits and amount > debit.available:
        refuse(exceeds_credits, f"account {debit.id} has {debit.available} available")
    if (
        credit.credits_must_not_exceed_debits
        and credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
    ):
        refuse(Code.EXCEEDS_DEBITS, f"account {credit.id}'s credits may not exceed its debits")
    if transfer.is_pending:
        book.put_account(_moved(debit, debits_pending=amount))
        book.put_account(_moved(credit, credits_pending=amount))
    else:
        book.put_account(_moved(debit, debits_posted=amount))
        book.put_account(_moved(credit, credits_posted=amount))
    book.put_transfer(transfer)


# -- accounts -------------------------------------------------------------------------------------


def refuse_if_different(pairs: tuple[tuple[str, object, object], ...]) -> None:
    """The idempotency check: (field, stored, asked) triples; refuse naming every difference."""
    differing = [name for name, stored, asked in pairs if stored != asked]
    if differing:
        refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS, differs_in(differing))


def ok_result(item_id: str, *, exists: bool, **extra: Any) -> dict[str, Any]:
    """The answer to a request that succeeded now (exists=False) or before (exists=True)."""
    return {"id": item_id, "result": _OK, "exists": exists, **extra}


def create_account(book: Book, actor: Actor, env: Env, request: AccountRequest) -> dict[str, Any]:
    existing = book.account(request.id)
    if existing is not None:
        refuse_if_different(
            (
                ("owner", existing.owner, request.owner),
                ("currency", existing.currency, request.currency),
                ("kind", existing.kind, request.kind),
                ("flags", existing.flags, request.flags),
                ("credit_limit", existing.credit_limit, request.credit_limit),
                ("reference", existing.reference, request.reference),
            )
        )
        return ok_result(request.id, exists=True)
    refusal, custodian = actor.opening_refusal(request.owner, request.kind)
    if refusal is not None:
        refuse(refusal, f"may not open a {request.kind} account for {request.owner}")
    account = Account(
        id=request.id,
        owner=request.owner,
        custodian=custodian,
        currency=request.currency,
        exponent=currency.exponent(request.currency),
        kind=request.kind,
        flags=request.flags,
        credit_limit=request.credit_limit,
        reference=request.reference,
        status=AccountStatus.OPEN.value,
        created_at_ms=env.time_ms,
        created_height=env.height,
    )
    book.put_account(account)
    book.emit(EVENT_ACCOUNT_CREATED, account.to_json())
    return ok_result(request.id, exists=False)


def set_account_status(
    book: Book, actor: Actor, env: Env, request: StatusRequest
) -> dict[str, Any]:
    account = book.account(request.account_id)
    if account is None:
        refuse(Code.ACCOUNT_NOT_FOUND, f"no account {request.account_id}")
    if not actor.may_administer(account):
        refuse(Code.NOT_AUTHORIZED, "only the custodian, a regulator or the owning contract")
    previous = account.status
    result = {"account_id": account.id, "status": request.status, "previous_status": previous}
    if previous == request.status:
        return {**result, "changed": False}
    if previous == AccountStatus.CLOSED:
        refuse(Code.ACCOUNT_CLOSED, "a closed account stays closed")
    if request.status == AccountStatus.CLOSED:
        if account.debits_pending or account.credits_pending:
            refuse(Code.ACCOUNT_HAS_PENDING_BALANCE, "post or void its holds first")
        if account.debits_posted != account.credits_posted:
            refuse(Code.ACCOUNT_BALANCE_NOT_ZERO, "move its balance out first")
    book.put_account(replace(account, status=request.status))
    book.emit(
        EVENT_ACCOUNT_STATUS_CHANGED,
        {
            "account_id": account.id,
            "status": request.status,
            "previous_status": previous,
            "at_ms": env.time_ms,
        },
    )
    return {**result, "changed": True}


# -- transfers ------------------------------------------------------------------------------------


def _transfer_result(transfer: Transfer, *, exists: bool) -> dict[str, Any]:
    if transfer.fee_amount:
        return ok_result(
            transfer.id,
            exists=exists,
            fee_amount=transfer.fee_amount,
            fee_transfer_id=transfer.id + FEE_LEG_SUFFIX,
        )
    return ok_result(transfer.id, exists=exists)


def _existing_transfer(book: Book, request: TransferRequest, existing: Transfer) -> dict[str, Any]:
    """Same id: "ok" flagged exists if the body is the same, else exists_with_different_fields.

    A post or void may leave out the accounts, currency and amount: those mean "the hold's",
    so they are compared as the hold's values (an omitted amount on a post is the full hold).
    """
    debit, credit = request.debit_account_id, request.credit_account_id
    amount, code = request.amount, request.currency
    if (request.is_post or request.is_void) and request.pending_id is not None:
        held = book.transfer(request.pending_id)
        if held is not None:
            debit = held.debit_account_id if debit is None else debit
            credit = held.credit_account_id if credit is None else credit
            code = held.currency if code is None else code
            amount = held.amount if amount is None else amount
    refuse_if_different(
        (
            ("kind", existing.kind, TransferKind.TRANSFER),
            ("debit_account_id", existing.debit_account_id, debit),
            ("credit_account_id", existing.credit_account_id, credit),
            ("amount", existing.amount, amount),
            ("currency", existing.currency, code),
            ("flags", existing.flags, request.flags),
            ("pending_id", existing.pending_id, request.pending_id),
            ("timeout_ms", existing.timeout_ms, request.timeout_ms),
            ("product", existing.product, request.product),
            ("reference", existing.reference, request.reference),
        )
    )
    return _transfer_result(existing, exists=True)


def create_transfer(book: Book, actor: Actor, env: Env, request: TransferRequest) -> dict[str, Any]:
    """One create_transfers item: a single-phase transfer, a hold, or a post or void of one."""
    existing = book.transfer(request.id)
    if existing is not None:
        return _existing_transfer(book, request, existing)
    if request.is_post or request.is_void:
        return _resolve_pending(book, actor, env, request)
    return _create_single(book, actor, env, request)


def new_transfer(
    env: Env,
    *,
    transfer_id: str,
    debit: str,
    credit: str,
    amount: int,
    code: str,
    flags: tuple[str, ...] = (),
    pending_id: str | None = None,
    timeout_ms: int = 0,
    product: str | None = None,
    reference: str | None = None,
    kind: str = TransferKind.TRANSFER.value,
    parent_id: str | None = None,
    fee_amount: int = 0,
    fx: FxDetails | None = None,
) -> Transfer:
    """A transfer record stamped with this block's time and height and this tx's hash.

    Built positionally, in field order: every transfer makes one, and a keyword call costs a
    quarter more.
    """
    return Transfer(
        transfer_id,
        debit,
        credit,
        amount,
        code,
        flags,
        pending_id,
        timeout_ms,
        product,
        reference,
        kind,
        parent_id,
        fee_amount,
        fx,
        env.time_ms,
        env.height,
        env.tx_hash,
    )


def _fee_for(book: Book, request: TransferRequest, debit: Account) -> tuple[int, str | None]:
    """(fee, fee account id) of the request's product; (0, None) without a product."""
    if request.product is None:
        return 0, None
    schedule = book.fee_schedule(request.product, debit.currency)
    if schedule is None:
        refuse(
            Code.FEE_SCHEDULE_NOT_FOUND,
            f"no fee schedule for {request.product} in {debit.currency}",
        )
    assert request.amount is not None
    fee = calc.fee_amount(
        amount=request.amount,
        fixed_amount=schedule.fixed_amount,
        rate_bps=schedule.rate_bps,
        min_amount=schedule.min_amount,
        max_amount=schedule.max_amount,
        rounding=schedule.rounding,
    )
    if fee == 0:
        return 0, None
    fee_account = book.account(schedule.fee_account_id)
    if (
        fee_account is None
        or fee_account.status != AccountStatus.OPEN
        or fee_account.id == debit.id
        or fee_account.currency != debit.currency
    ):
        refuse(Code.FEE_ACCOUNT_UNAVAILABLE, f"fee account {schedule.fee_account_id} unavailable")
    return fee, fee_account.id


def _create_single(book: Book, actor: Actor, env: Env, request: TransferRequest) -> dict[str, Any]:
    assert request.debit_account_id and request.credit_account_id and request.amount
    assert request.currency is not None
    debit, credit = load_parties(book, request.debit_account_id, request.credit_account_id)
    if debit.currency != request.currency or credit.currency != request.currency:
        refuse(
            Code.CURRENCY_MISMATCH,
            f"{request.currency} transfer between {debit.currency} and {credit.currency} accounts",
        )
    if not actor.may_debit(debit):
        refuse(Code.NOT_AUTHORIZED, f"the sender may not debit account {debit.id}")
    check_parties_open(debit, credit)
    fee, fee_account_id = _fee_for(book, request, debit)
    transfer = new_transfer(
        env,
        transfer_id=request.id,
        debit=debit.id,
        credit=credit.id,
        amount=request.amount,
        code=request.currency,
        flags=request.flags,
        timeout_ms=request.timeout_ms,
        product=request.product,
        reference=request.reference,
        fee_amount=fee,
    )
    book_leg(book, transfer)
    if fee_account_id is not None:
        book_leg(
            book,
            new_transfer(
                env,
                transfer_id=request.id + FEE_LEG_SUFFIX,
                debit=debit.id,
                credit=fee_account_id,
                amount=fee,
                code=request.currency,
                product=request.product,
                kind=TransferKind.FEE.value,
                parent_id=request.id,
            ),
        )
    if transfer.is_pending:
        expires_at_ms = env.time_ms + request.timeout_ms if request.timeout_ms else 0
        book.put_pending(
            PendingState(
                transfer_id=transfer.id,
                status=PendingStatus.PENDING.value,
                expires_at_ms=expires_at_ms,
                resolved_by=None,
                resolved_at_ms=None,
            )
        )
        if expires_at_ms:
            book.put_expiry(expires_at_ms, transfer.id)
    return _transfer_result(transfer, exists=False)


def _resolve_pending(
    book: Book, actor: Actor, env: Env, request: TransferRequest
) -> dict[str, Any]:
    assert request.pending_id is not None
    held = book.transfer(request.pending_id)
    if held is None:
        refuse(Code.PENDING_TRANSFER_NOT_FOUND, f"no transfer {request.pending_id}")
    if not held.is_pending:
        refuse(Code.PENDING_TRANSFER_NOT_PENDING, f"transfer {held.id} is not a pending transfer")
    debit = book.account(held.debit_account_id)
    credit = book.account(held.credit_account_id)
    invariant(debit is not None and credit is not None, "accounts are never deleted")
    assert debit is not None and credit is not None
    posting = request.is_post
    authorised = actor.may_debit(credit) or (posting and actor.may_debit(debit))
    if not authorised:
        refuse(Code.NOT_AUTHORIZED, f"the sender may not {'post' if posting else 'void'} it")
    _check_matches(request, held)
    amount = held.amount if request.amount is None else request.amount
    if posting and amount > held.amount:
        refuse(Code.EXCEEDS_PENDING_TRANSFER_AMOUNT, f"the hold is {held.amount}")
    if not posting and amount != held.amount:
        refuse(Code.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT, f"a void releases all {held.amount}")
    state = book.pending(held.id)
    invariant(state is not None, f"pending transfer {held.id} has a pending state")
    assert state is not None
    if state.status == PendingStatus.POSTED:
        refuse(Code.PENDING_TRANSFER_ALREADY_POSTED, f"posted by {state.resolved_by}")
    if state.status == PendingStatus.VOIDED:
        refuse(Code.PENDING_TRANSFER_ALREADY_VOIDED, f"voided by {state.resolved_by}")
    if state.status == PendingStatus.EXPIRED or (
        state.expires_at_ms and env.time_ms >= state.expires_at_ms
    ):
        refuse(Code.PENDING_TRANSFER_EXPIRED, f"expired at {state.expires_at_ms}")
    if posting:
        check_parties_open(debit, credit)
    # Releasing the hold and posting at most its amount never raises a counter's sum, so no
    # overflow or limit check can fail here.
    posted = amount if posting else 0
    book.put_account(_moved(debit, debits_pending=-held.amount, debits_posted=posted))
    book.put_account(_moved(credit, credits_pending=-held.amount, credits_posted=posted))
    resolution = new_transfer(
        env,
        transfer_id=request.id,
        debit=held.debit_account_id,
        credit=held.credit_account_id,
        amount=amount,
        code=held.currency,
        flags=request.flags,
        pending_id=held.id,
        reference=request.reference,
    )
    book.put_transfer(resolution)
    book.put_pending(
        replace(
            state,
            status=(PendingStatus.POSTED if posting else PendingStatus.VOIDED).value,
            resolved_by=request.id,
            resolved_at_ms=env.time_ms,
        )
    )
    if state.expires_at_ms:
        book.delete_expiry(state.expires_at_ms, held.id)
    return _transfer_result(resolution, exists=False)


def _check_matches(request: TransferRequest, held: Transfer) -> None:
    if request.debit_account_id not in (None, held.debit_account_id):
        refuse(Code.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID, "not the hold's debit account")
    if request.credit_account_id not in (None, held.credit_account_id):
        refuse(
            Code.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID, "not the hold's credit account"
        )
    if request.currency not in (None, held.currency):
        refuse(Code.PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY, f"the hold is in {held.currency}")


def expire_due(book: Book, env: Env) -> int:
    """Release holds whose timeout has passed (block time), oldest first; returns how many.

    At most EXPIRIES_PER_BLOCK_MAX per block: the rest stay due and go in the next block, and a
    post or void of a due hold is refused as expired meanwhile, so the outcome does not depend
    on when the sweep reaches it.
    """
    released = 0
    prefix_length = len(keys.EXPIRY)
    for key, transfer_id in book.due_expiries(limits.EXPIRIES_PER_BLOCK_MAX):
        expires_at_ms = int(key[prefix_length : prefix_length + keys.EXPIRY_TIME_DIGITS])
        if expires_at_ms > env.time_ms:
            break
        held = book.transfer(transfer_id)
        state = book.pending(transfer_id)
        invariant(
            held is not None
            and state is not None
            and state.status == PendingStatus.PENDING
            and state.expires_at_ms == expires_at_ms,
            f"expiry index entry {key} points at a live hold",
        )
        assert held is not None and state is not None
        debit = book.account(held.debit_account_id)
        credit = book.account(held.credit_account_id)
        assert debit is not None and credit is not None
        book.put_account(_moved(debit, debits_pending=-held.amount))
        book.put_account(_moved(credit, credits_pending=-held.amount))
        book.put_pending(
            replace(state, status=PendingStatus.EXPIRED.value, resolved_at_ms=env.time_ms)
        )
        book.delete_expiry(expires_at_ms, transfer_id)
        book.emit(
            EVENT_PENDING_EXPIRED,
            {
                "transfer_id": held.id,
                "debit_account_id": held.debit_account_id,
                "credit_account_id": held.credit_account_id,
                "amount": held.amount,
                "currency": held.currency,
                "expired_at_ms": env.time_ms,
            },
        )
        released += 1
    return released


# -- fee schedules --------------------------------------------------------------------------------


def set_fee_schedule(
    book: Book, actor: Actor, env: Env, request: FeeScheduleRequest
) -> dict[str, Any]:
    member = actor.own_member
    existing = book.fee_schedule(request.product, request.currency)
    if (
        member is None
        or member.role not in FEE_SETTER_ROLES
        or (existing is not None and existing.setter != member.did)
    ):
        refuse(Code.NOT_AUTHORIZED, "fee schedules are set by their bank or platform member")
    fee_account = book.account(request.fee_account_id)
    if fee_account is None:
        refuse(Code.FEE_ACCOUNT_NOT_FOUND, f"no account {request.fee_account_id}")
    if (
        fee_account.kind != AccountKind.FEE
        or fee_account.currency != request.currency
        or not actor.owns(member, fee_account)
        or fee_account.status != AccountStatus.OPEN
    ):
        refuse(
            Code.FEE_ACCOUNT_INVALID,
            f"the fee account must be an open {request.currency} fee account the setter owns",
        )
    schedule = FeeSchedule(
        product=request.product,
        currency=request.currency,
        fee_account_id=fee_account.id,
        fixed_amount=request.fixed_amount,
        rate_bps=request.rate_bps,
        min_amount=request.min_amount,
        max_amount=request.max_amount,
        rounding=calc.FEE_ROUNDING,
        setter=member.did,
        version=1 if existing is None else existing.version + 1,
        updated_at_ms=env.time_ms,
    )
    book.put_fee_schedule(schedule)
    book.emit(EVENT_FEE_SCHEDULE_SET, schedule.to_json())
    return {"product": schedule.product, "currency": schedule.currency, "version": schedule.version}

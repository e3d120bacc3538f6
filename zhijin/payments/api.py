"""HTTP API of payments: accounts, transfers, holds, FX, trial balance, ISO 20022.

Routes are thin: they check the request's shape (strict pydantic models: amounts are JSON
integers, never floats, bools or strings, then the contract's own stateless checks), decide who
is asking (`Caller`), put a customer's payments to the step-up policy as one request
(`stepup.put_to_policy`: per payee and with the 24 h counters), and call `service`.
Refusals are problem+json with the contract's stable code (`service.http_status_for`).

Who may call: the node operator (the operator's bearer token), acting as this node's member.
Transfers are idempotent by the client's id: a retry with the same body gets the same body back
(with `Idempotent-Replayed: true`), the same id with another body 409
`exists_with_different_fields` naming the fields, or 409 `transfer_id_taken` (nothing more) when
the transfer holding the id is one the caller may not read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from zhijin.chain.errors import NotFound
from zhijin.identity import (
    Caller,
    CallerDep,
    Guard,
    GuardDep,
    Outflow,
    Permission,
    Reservation,
    Resource,
    StepUpRequired,
)
from zhijin.payments import api_models, fx_offers, limits, service
from zhijin.payments.codes import Code, PaymentsError
from zhijin.payments.expected import PaymentFacts, PaymentsHost, PaymentsHostDep, screen_of
from zhijin.payments.projection import PaymentsProjection
from zhijin.payments.records import AccountFlag, AccountKind, AccountStatus, TransferFlag
from zhijin.payments.requests import (
    TARGET_SIDE,
    is_valid_transfer_id,
    parse_fx_payment,
    parse_refund,
    parse_transfer,
)
from zhijin.payments.types import AmountMinor, ClientId
from zhijin.platform import i18n
from zhijin.platform.deps import GatewayDep, OperatorDep
from zhijin.platform.errors import Forbidden
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Cursor, TimeMs
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES, problem_detail
from zhijin.platform.projections import CommittedNotYetVisible

__all__ = [
    "REPLAYED_HEADER",
    "Caller",
    "TransferIn",
    "authorized_account",
    "router",
    "submit_refund",
    "submit_transfer",
]

router = APIRouter(tags=["payments"], route_class=EdgeRoute)

REPLAYED_HEADER = "Idempotent-Replayed"
XML = "application/xml"

Id = Annotated[ClientId, Field(description="client id, 1-64 characters")]
IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
# The id of any transfer, including the legs the contract books (`<id>~fee`).  Checked by the
# contract's own rule (`_transfer_id`), so that one too long is refused with the contract's
# code, `id_invalid`; the pattern is the alphabet ids are made of.
TransferIdPath = Annotated[
    str,
    Path(
        description=f"1-{limits.TRANSFER_ID_CHARS_MAX} characters",
        json_schema_extra={"pattern": limits.TRANSFER_ID_PATTERN},
    ),
]
Amount = Annotated[AmountMinor, Field(description="integer minor units")]
CurrencyCode = Annotated[str, Field(pattern=limits.CURRENCY_PATTERN, description="ISO 4217")]
Reference = Annotated[str, Field(min_length=1, max_length=limits.REFERENCE_CHARS_MAX)]
Bps = Annotated[int, Field(strict=True, ge=0, le=limits.BPS_PER_UNIT)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
Bic = Annotated[str, Query(pattern=limits.BIC_PATTERN, description="BIC (ISO 9362)")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    def args(self) -> dict[str, Any]:
        """The contract's args: the fields that were given (None means "not given")."""
        return self.model_dump(exclude_none=True)


class AccountIn(_Strict):
    id: Id
    owner: str = Field(
        max_length=limits.OWNER_CHARS_MAX, description="DID, role:<r> or contract:<n>"
    )
    currency: CurrencyCode
    kind: Annotated[AccountKind, Field(strict=False)]
    flags: list[Annotated[AccountFlag, Field(strict=False)]] | None = Field(
        default=None, max_length=len(AccountFlag)
    )
    credit_limit: int | None = Field(default=None, ge=0, le=limits.AMOUNT_MAX)
    reference: Reference | None = None

    def args(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, mode="json")


class TransferIn(_Strict):
    id: Id
    debit_account_id: Id | None = None
    credit_account_id: Id | None = None
    amount: Amount | None = None
    currency: CurrencyCode | None = None
    flags: list[Annotated[TransferFlag, Field(strict=False)]] = Field(
        default_factory=list, max_length=len(TransferFlag)
    )
    pending_id: Id | None = None
    timeout_ms: int | None = Field(default=None, ge=0, le=limits.PENDING_TIMEOUT_MS_MAX)
    product: str | None = Field(default=None, pattern=limits.PRODUCT_PATTERN)
    reference: Reference | None = None

    def args(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True, mode="json")
        if not data["flags"]:
            del data["flags"]
        return data


class TransferBatchIn(_Strict):
    transfers: list[TransferIn] = Field(
        min_length=1,
        max_length=limits.TRANSFERS_PER_BATCH_MAX,
        description="flag items `linked` to make a chain that succeeds or fails as a whole",
    )


class ResolveIn(_Strict):
    id: Id = Field(description="the id of the post or void transfer itself")
    amount: Amount | None = Field(default=None, description="post only: part of the hold")
    reference: Reference | None = None


class StatusIn(_Strict):
    status: Annotated[AccountStatus, Field(strict=False)]

    def args(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IbanIn(_Strict):
    iban: str = Field(
        min_length=limits.IBAN_INPUT_CHARS_MIN,
        max_length=limits.IBAN_INPUT_CHARS_MAX,
        description="ISO 13616, spaces allowed",
    )


class FeeScheduleIn(_Strict):
    product: str = Field(pattern=limits.PRODUCT_PATTERN)
    currency: CurrencyCode
    fee_account_id: Id
    fixed_amount: int = Field(default=0, ge=0, le=limits.AMOUNT_MAX)
    rate_bps: int = Field(default=0, ge=0, le=limits.FEE_RATE_BPS_MAX)
    min_amount: int = Field(default=0, ge=0, le=limits.AMOUNT_MAX)
    max_amount: int | None = Field(default=None, ge=0, le=limits.AMOUNT_MAX)


class FxQuoteIn(_Strict):
    id: Id
    source_currency: CurrencyCode
    target_currency: CurrencyCode
    rate: str = Field(
        pattern=limits.RATE_PATTERN,
        description="target major units per source major unit, a decimal string",
    )
    spread_bps: int = Field(default=0, ge=0, le=limits.SPREAD_BPS_MAX)
    expires_at_ms: int = Field(ge=0, description="block time, at most 24 h ahead")
    source_liquidity_account_id: Id
    target_liquidity_account_id: Id
    spread_account_id: Id | None = None
    max_target_amount: Amount | None = None


class FxPaymentIn(_Strict):
    id: Id
    quote_id: Id
    debit_account_id: Id
    credit_account_id: Id
    source_amount: Amount | None = None
    target_amount: Amount | None = None
    reference: Reference | None = None


# -- who may: identity's request guard (zhijin/identity/guard.py) ---------------------------------

STEP_UP_ACTION = "payment.transfer"  # the step-up policy's name for moving money out
# A definite no, of the ledger or of the fraud screen before anything was submitted: nothing
# moved, so the amounts reserved under the step-up policy are given back.
_REFUSALS = (
    service.PaymentRefused,
    service.PaymentRefusedByRisk,
    service.PaymentNeedsReview,
    StepUpRequired,
)


def _authorize(
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    account_id: str,
    permission: Permission,
) -> dict[str, Any]:
    """RBAC on one account for users and staff (the operator may do anything the member may);
    returns the account."""
    account = service.get_account(platform, account_id=account_id)
    _authorize_account(guard, caller, account, permission)
    return account


def authorized_account(
    guard: Guard, caller: Caller, platform: PaymentsHost, account_id: str, permission: Permission
) -> dict[str, Any]:
    """The account, if the caller holds `permission` on it (the rule of the account routes,
    which the pages apply too); Forbidden or NotFound otherwise."""
    return _authorize(guard, caller, platform, account_id, permission)


def _authorize_account(
    guard: Guard, caller: Caller, account: dict[str, Any], permission: Permission
) -> None:
    """An account is its owner's (the owner DID) and its custodian member's."""
    guard.authorize_owned(
        caller,
        permission=permission,
        kind="account",
        id=account["id"],
        owner=account["owner"],
        member_did=account["custodian"],
    )


def _validated(parse: Callable[[object], object], args: dict[str, Any], **where: Any) -> None:
    """The contract's own stateless checks, before any authorisation or policy: a malformed
    request is a 422 with the contract's code, never a step-up prompt."""
    try:
        parse(args)
    except PaymentsError as exc:
        raise service.PaymentRefused(exc.code, exc.message, **where) from None


def _outflow(
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    *,
    key: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: int | None,
) -> Outflow:
    """RBAC on the debit account; the payment as the step-up policy sees it."""
    account = _authorize(guard, caller, platform, debit_account_id, Permission.PAYMENT_TRANSFER)
    return Outflow(
        key=key,
        debit_owner=account["owner"],
        debit_account_id=debit_account_id,
        payee=credit_account_id,
        currency=account["currency"],
        exponent=account["exponent"],
        amount_minor=amount,
    )


def _authorize_transfer_request(
    guard: Guard, caller: Caller, platform: PaymentsHost, body: TransferIn
) -> Outflow | None:
    """RBAC for one (validated) transfer item; the payment it makes, None for a post or void
    (the hold was judged and counted when it was placed)."""
    if caller.is_operator:
        return None
    if body.pending_id is not None:
        held = service.get_transfer(platform, transfer_id=body.pending_id)
        # Whoever may move money out of either side of a hold may ask to post or void it;
        # the contract then applies its own rule (only the payee voids).
        side = held["credit_account_id"]
        if caller.sender is not None:
            debit = service.get_account(platform, account_id=held["debit_account_id"])
            if caller.owns(debit["owner"]):
                side = held["debit_account_id"]
        _authorize(guard, caller, platform, side, Permission.PAYMENT_TRANSFER)
        return None
    # Validation refuses these first; kept so that no path reaches the policy without them.
    if body.debit_account_id is None:
        raise service.PaymentRefused("debit_account_id_invalid", "debit_account_id is required")
    if body.credit_account_id is None:
        raise service.PaymentRefused("credit_account_id_invalid", "credit_account_id is required")
    return _outflow(
        guard,
        caller,
        platform,
        key=f"transfer:{body.id}",
        debit_account_id=body.debit_account_id,
        credit_account_id=body.credit_account_id,
        amount=body.amount,
    )


def _put_to_policy(
    guard: Guard, caller: Caller, platform: PaymentsHost, outflows: list[Outflow | None]
) -> Reservation | None:
    """A user's payments to the step-up policy as one request; None for the operator."""

    def has_paid(debit_account_id: str, credit_account_id: str, before_ms: int) -> bool:
        return service.has_paid(
            platform,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            before_ms=before_ms,
        )

    return guard.put_to_policy(
        caller,
        action=STEP_UP_ACTION,
        outflows=outflows,
        has_paid=has_paid,
        floor_ref_minor=limits.STEP_UP_FROM_MINOR,
    )


def _authorize_party(
    guard: Guard, caller: Caller, platform: PaymentsHost, record: dict[str, Any]
) -> None:
    """A transfer is visible to whoever may read either of its accounts' transactions."""
    if caller.is_operator:
        return
    side = record["debit_account_id"]
    if caller.sender is not None:
        credit = service.get_account(platform, account_id=record["credit_account_id"])
        if caller.owns(credit["owner"]):
            side = credit["id"]
    _authorize(guard, caller, platform, side, Permission.TRANSACTION_READ)


def _may_read_transfer(
    guard: Guard, caller: Caller, platform: PaymentsHost, transfer_id: str
) -> bool:
    """Whether the caller may read the transfer `transfer_id` (the rule of GET /transfers/{id});
    a transfer the projection does not hold yet counts as not readable."""
    try:
        record = service.get_transfer(platform, transfer_id=transfer_id)
    except NotFound:
        return False
    return _may_read_record(guard, caller, platform, record)


def _may_read_record(
    guard: Guard, caller: Caller, platform: PaymentsHost, record: dict[str, Any]
) -> bool:
    """Whether the caller may read this transfer record (projected, or committed)."""
    try:
        _authorize_party(guard, caller, platform, record)
    except (Forbidden, NotFound):
        return False
    return True


def _settled_as(
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    reservation: Reservation | None,
    transfer_id: str,
    submit: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Submit one client id's payment: a definite refusal gives the reserved amounts back
    (`Guard.releasing`), and a conflict with a transfer the caller may not read says only that
    the id is taken (`_taken`)."""
    try:
        with guard.releasing(reservation, refusals=_REFUSALS):
            return submit()
    except service.PaymentRefused as error:
        raise _taken(error, guard, caller, platform, transfer_id) from None


def _taken(
    error: service.PaymentRefused,
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    transfer_id: str,
) -> service.PaymentRefused:
    """An id conflict with a transfer the caller may not read says only that the id is taken:
    "differs in: amount, reference" would confirm another customer's payee, amount and
    reference to whoever guessed them.  Whoever may read the transfer keeps the precise answer."""
    if error.code != Code.EXISTS_WITH_DIFFERENT_FIELDS or _may_read_transfer(
        guard, caller, platform, transfer_id
    ):
        return error
    return service.PaymentRefused(
        service.TRANSFER_ID_TAKEN, service.TRANSFER_ID_TAKEN_MESSAGE, id=transfer_id
    )


def _hide_foreign_conflicts(
    guard: Guard, caller: Caller, platform: PaymentsHost, summary: dict[str, Any]
) -> dict[str, Any]:
    """`_taken` for each item of a batch's answer (at most TRANSFERS_PER_BATCH_MAX)."""
    results = []
    for item in summary["results"]:
        if item["result"] == Code.EXISTS_WITH_DIFFERENT_FIELDS and not _may_read_transfer(
            guard, caller, platform, item["id"]
        ):
            message = service.TRANSFER_ID_TAKEN_MESSAGE
            item = {"id": item["id"], "result": service.TRANSFER_ID_TAKEN, "message": message}
        results.append(item)
    return {**summary, "results": results}


def _transfer_id(transfer_id: str) -> str:
    if not is_valid_transfer_id(transfer_id):
        raise service.PaymentRefused(Code.ID_INVALID, "transfer_id is not a valid id")
    return transfer_id


def _replayed(response: Response, result: dict[str, Any]) -> dict[str, Any]:
    """Move `exists` to a header, so a retry's body is byte-for-byte the first answer's."""
    exists = bool(result.pop("exists", False))
    result.pop("height", None)
    response.headers[REPLAYED_HEADER] = "true" if exists else "false"
    return result


# -- accounts -------------------------------------------------------------------------------------


@router.post(
    "/api/v1/accounts",
    summary="Open an account (idempotent by id)",
    response_model=api_models.AccountOpenedOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def open_account(
    body: AccountIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    # Bank staff open accounts in their member's name (the member is the custodian); an end
    # user has no `account.open` grant, and the refusal is audited like any other.
    guard.authorize(
        caller,
        permission=Permission.ACCOUNT_OPEN,
        resource=Resource(kind="account", id=body.id, member_did=guard.member_did),
    )
    result = service.open_account(platform, gateway, account=body.args())
    return _replayed(response, result)


@router.get(
    "/api/v1/accounts",
    summary="Accounts in id order (paginated)",
    response_model=api_models.AccountListOut,
)
def list_accounts(
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    owner: Annotated[str | None, Query(max_length=limits.OWNER_CHARS_MAX)] = None,
    currency: Annotated[str | None, Query(pattern=limits.CURRENCY_PATTERN)] = None,
    after_id: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    scope = guard.list_scope(caller, permission=Permission.ACCOUNT_READ)
    return service.list_accounts(
        platform,
        owner=scope.owner or owner,  # an end user lists their own accounts only
        custodian=scope.member_did,
        currency=currency,
        after_id=after_id,
        limit=limit,
    )


@router.get(
    "/api/v1/accounts/{account_id}",
    summary="An account with its balances",
    response_model=api_models.AccountView,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def get_account(
    account_id: IdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    try:
        return _authorize(guard, caller, platform, account_id, Permission.ACCOUNT_READ)
    except NotFound:
        committed = service.not_yet_visible(platform, account_id=account_id)
        if committed is not None:
            _authorize_account(guard, caller, committed, Permission.ACCOUNT_READ)
            raise _not_yet_visible(committed) from None
        raise


@router.get(
    "/api/v1/accounts/{account_id}/statement",
    summary="Posted entries (paginated)",
    response_model=api_models.StatementOut,
)
def get_statement(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    after_entry: Annotated[Cursor, Query(description="next page: the last entry_no")] = 0,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    _authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    return service.statement(platform, account_id=account_id, after_entry=after_entry, limit=limit)


@router.get(
    "/api/v1/accounts/{account_id}/camt053",
    summary="A camt.053.001.08 statement of [from_ms, to_ms)",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def get_camt053(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_ms: TimeMs,
    to_ms: Annotated[TimeMs, Query(ge=1)],
    iban: Annotated[str | None, Query(max_length=limits.IBAN_CHARS_MAX)] = None,
    servicer_bic: Annotated[str | None, Query(pattern=limits.BIC_PATTERN)] = None,
) -> Response:
    _authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    document = service.export_camt053(
        platform,
        account_id=account_id,
        from_ms=from_ms,
        to_ms=to_ms,
        iban=iban,
        servicer_bic=servicer_bic,
    )
    return Response(document, media_type=XML)


@router.post(
    "/api/v1/accounts/{account_id}/status",
    summary="Freeze, unfreeze or close",
    response_model=api_models.AccountStatusOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def set_status(
    account_id: IdPath,
    body: StatusIn,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    _authorize(guard, caller, platform, account_id, Permission.ACCOUNT_STATUS)
    result = service.set_account_status(
        platform, gateway, account_id=account_id, status=body.status.value
    )
    result.pop("height", None)
    return result


@router.put(
    "/api/v1/accounts/{account_id}/iban",
    summary="Name the account by an IBAN",
    response_model=api_models.IbanRegisteredOut,
)
def put_iban(
    account_id: IdPath, body: IbanIn, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    """For pain.001 imports and camt.053 exports; off-chain, sealed in the vault (idempotent)."""
    _authorize(guard, caller, platform, account_id, Permission.ACCOUNT_OPEN)
    return service.register_iban(
        platform, account_id=account_id, iban=body.iban, actor=caller.actor
    )


@router.delete(
    "/api/v1/accounts/{account_id}/iban",
    summary="Forget the account's IBAN",
    response_model=api_models.IbanRemovedOut,
)
def delete_iban(
    account_id: IdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _authorize(guard, caller, platform, account_id, Permission.ACCOUNT_OPEN)
    return service.remove_iban(platform, account_id=account_id, actor=caller.actor)


@router.get(
    "/api/v1/accounts/{account_id}/iban",
    summary="The account's IBAN, masked",
    response_model=api_models.AccountIbanOut,
)
def get_iban(
    account_id: IdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _authorize(guard, caller, platform, account_id, Permission.ACCOUNT_READ)
    return service.account_iban(platform, account_id=account_id)


# -- transfers ------------------------------------------------------------------------------------


@router.post(
    "/api/v1/transfers",
    summary="One transfer, hold, post or void (idempotent by id)",
    response_model=api_models.TransferCreatedOut,
    response_model_exclude_unset=True,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def create_transfer(
    body: TransferIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    return _replayed(response, submit_transfer(guard, caller, platform, gateway, body))


def submit_transfer(
    guard: Guard, caller: Caller, platform: PaymentsHost, gateway: MemberGateway, body: TransferIn
) -> dict[str, Any]:
    """One transfer as `POST /transfers` makes it: the contract's checks, RBAC, the step-up
    policy (`StepUpRequired` when it asks for a fresh code), then the ledger.  The pay page
    goes through it too, so the page and the API cannot judge a payment differently."""
    _validated(parse_transfer, body.args(), id=body.id)
    payment = _authorize_transfer_request(guard, caller, platform, body)
    reservation = _put_to_policy(guard, caller, platform, [payment])
    return _settled_as(
        guard,
        caller,
        platform,
        reservation,
        body.id,
        lambda: service.screened_transfer(
            platform,
            gateway,
            request=body.args(),
            sender=caller.sender,
            facts=_transfer_facts(guard, caller, platform, body, payment),
        ),
    )


def _transfer_facts(
    guard: Guard, caller: Caller, platform: PaymentsHost, body: TransferIn, payment: Outflow | None
) -> PaymentFacts | None:
    """A customer's new transfer (alone or a batch item) as the fraud screen sees it."""
    return _screen_facts(
        guard, caller, platform, payment_id=body.id, payment=payment, amount=body.amount
    )


def _screens(caller: Caller, platform: PaymentsHost, payment: Outflow | None) -> bool:
    """Whether this payment meets the fraud screen: an end user's new payment on a host with
    a screen.  Not the operator's or staff's (the member's own books), not a hold's post or
    void (judged when the hold was placed: `payment` None)."""
    return (
        payment is not None
        and caller.principal is not None
        and caller.is_end_user
        and screen_of(platform) is not None
    )


def _screen_facts(
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    *,
    payment_id: str,
    payment: Outflow | None,
    amount: int | None,
) -> PaymentFacts | None:
    """A customer's new payment as the fraud screen sees it, `amount` in the debit account's
    currency (for FX, the source amount); None when it does not meet the screen (`_screens`)."""
    principal = caller.principal
    if not _screens(caller, platform, payment) or amount is None:
        return None
    assert payment is not None and principal is not None  # `_screens` said so
    try:
        payee_owner: str | None = service.get_account(platform, account_id=payment.payee)["owner"]
    except NotFound:
        payee_owner = None
    debit = service.get_account(platform, account_id=payment.debit_account_id)
    source = caller.source
    location = None if source is None else source.location
    return PaymentFacts(
        transfer_id=payment_id,
        debit_account_id=payment.debit_account_id,
        credit_account_id=payment.payee,
        payer=payment.debit_owner,
        payee_owner=payee_owner,
        currency=payment.currency,
        exponent=payment.exponent,
        amount_minor=amount,
        at_ms=guard.clock(),
        user_id=principal.user_id,
        payee_known=service.has_paid(
            platform,
            debit_account_id=payment.debit_account_id,
            credit_account_id=payment.payee,
            before_ms=principal.auth_at_ms,
        ),
        device_known=None
        if source is None
        else guard.identity.device_known(principal=principal, source=source),
        lat_e6=None if location is None else location.lat_e6,
        lon_e6=None if location is None else location.lon_e6,
        auth_at_ms=principal.auth_at_ms,
        mfa_at_ms=principal.mfa_at_ms,
        account_created_ms=debit.get("created_at_ms"),
    )


def submit_refund(
    guard: Guard,
    caller: Caller,
    platform: PaymentsHost,
    gateway: MemberGateway,
    *,
    refund: dict[str, Any],
    payee_account_id: str,
    payer_account_id: str,
) -> dict[str, Any]:
    """A refund as the contract books it (`refund_transfer`, which refuses one past what the
    payment brought): its stateless checks, RBAC on the payee's account, the step-up policy (a
    refund is money out of it), then the ledger, as `submit_transfer` does for a transfer."""
    _validated(parse_refund, refund, id=refund["id"])
    outflow = None
    if not caller.is_operator:
        outflow = _outflow(
            guard,
            caller,
            platform,
            key=f"refund:{refund['id']}",
            debit_account_id=payee_account_id,
            credit_account_id=payer_account_id,
            amount=refund["amount"],
        )
    reservation = _put_to_policy(guard, caller, platform, [outflow])
    return _settled_as(
        guard,
        caller,
        platform,
        reservation,
        refund["id"],
        lambda: service.refund_transfer(platform, gateway, refund=refund, sender=caller.sender),
    )


@router.post(
    "/api/v1/transfers/batch",
    responses=NOT_YET_VISIBLE_RESPONSES,
    summary="1-100 transfers; linked chains all or nothing",
    response_model=api_models.TransferBatchOut,
    response_model_exclude_unset=True,
    openapi_extra=body_limit(limits.TRANSFER_BATCH_BODY_BYTES_MAX),
)
def create_transfer_batch(
    body: TransferBatchIn,
    request: Request,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    transfers = [t.args() for t in body.transfers]
    if not caller.is_operator:
        # A user's batch is judged as a whole, so every item must be well formed first (the
        # operator's batch is not put to the policy and keeps the contract's per-item answers).
        for index, args in enumerate(transfers):
            _validated(parse_transfer, args, index=index, id=args["id"])
    outflows = [_authorize_transfer_request(guard, caller, platform, t) for t in body.transfers]
    reservation = _put_to_policy(guard, caller, platform, outflows)
    # Each of an end user's new payments meets the fraud screen, as it would alone.
    facts = [
        _transfer_facts(guard, caller, platform, item, outflow)
        for item, outflow in zip(body.transfers, outflows, strict=True)
    ]
    with guard.releasing(reservation, refusals=_REFUSALS):
        summary = service.screened_transfers(
            platform, gateway, transfers=transfers, sender=caller.sender, facts=facts
        )
    result = _hide_foreign_conflicts(guard, caller, platform, summary)
    refused = [f"transfer:{r['id']}" for r in result["results"] if r["result"] != Code.OK]
    guard.release(reservation, refused)  # nothing moved for these
    return _said(i18n.request_locale(request), result)


def _said(locale: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The items the fraud screen refused, with the customer's sentence in their language
    (`detail`, the code's template, as a single payment's problem says it)."""
    results = []
    for item in summary["results"]:
        details = item.pop(service.REFUSAL_DETAILS, None)
        if details is not None:
            item["detail"] = problem_detail(locale, item["result"], details, item["message"])
        results.append(item)
    return {**summary, "results": results}


@router.get(
    "/api/v1/transfers/{transfer_id}",
    summary="A transfer, and a hold's status",
    response_model=api_models.TransferView,
    response_model_exclude_unset=True,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def get_transfer(
    transfer_id: TransferIdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    try:
        record = service.get_transfer(platform, transfer_id=_transfer_id(transfer_id))
    except NotFound:
        committed = service.not_yet_visible(platform, transfer_id=transfer_id)
        if committed is None or not _may_read_record(guard, caller, platform, committed):
            raise
        raise _not_yet_visible(committed) from None
    _authorize_party(guard, caller, platform, record)
    return record


def _not_yet_visible(committed: dict[str, Any]) -> CommittedNotYetVisible:
    """A read that meets a committed record before the payments table shows it: 202 (with
    Retry-After), for a caller who may read it, never a 404 for what was committed."""
    return CommittedNotYetVisible(
        tx_hash=committed.get("tx_hash"),
        height=committed["created_height"],
        projections=[PaymentsProjection.name],
    )


def _resolve(
    pending_id: str,
    body: ResolveIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: Caller,
    guard: Guard,
    *,
    post: bool,
) -> dict[str, Any]:
    if not caller.is_operator:
        request = TransferIn(id=body.id, pending_id=pending_id, amount=body.amount)
        _authorize_transfer_request(guard, caller, platform, request)
    screen = screen_of(platform)
    if caller.is_end_user and screen is not None and screen.under_review(pending_id):
        # The ledger lets the payer (and the payee) post a hold: a held payment would
        # otherwise be one request away from moving without its review.
        raise service.PaymentUnderReview(
            message="this payment is under review: the review posts or voids it", id=pending_id
        )
    try:
        result = service.resolve_pending(
            platform,
            gateway,
            pending_id=pending_id,
            transfer_id=body.id,
            post=post,
            amount=body.amount,
            reference=body.reference,
            sender=caller.sender,
        )
    except service.PaymentRefused as error:
        raise _taken(error, guard, caller, platform, body.id) from None
    return _replayed(response, result)


@router.post(
    "/api/v1/transfers/{pending_id}/post",
    summary="Post a hold (all or part)",
    response_model=api_models.TransferCreatedOut,
    response_model_exclude_unset=True,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def post_pending(
    pending_id: IdPath,
    body: ResolveIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    return _resolve(pending_id, body, response, platform, gateway, caller, guard, post=True)


@router.post(
    "/api/v1/transfers/{pending_id}/void",
    summary="Void a hold",
    response_model=api_models.TransferCreatedOut,
    response_model_exclude_unset=True,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def void_pending(
    pending_id: IdPath,
    body: ResolveIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    return _resolve(pending_id, body, response, platform, gateway, caller, guard, post=False)


@router.get(
    "/api/v1/transfers/{transfer_id}/pacs008",
    summary="A cross-border (FX) payment as pacs.008.001.08",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def get_pacs008(
    transfer_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    debtor_agent_bic: Bic,
    creditor_agent_bic: Bic,
    debtor_name: Annotated[
        str | None, Query(min_length=1, max_length=limits.PARTY_NAME_CHARS_MAX)
    ] = None,
    creditor_name: Annotated[
        str | None, Query(min_length=1, max_length=limits.PARTY_NAME_CHARS_MAX)
    ] = None,
    debtor_iban: Annotated[str | None, Query(max_length=limits.IBAN_CHARS_MAX)] = None,
    creditor_iban: Annotated[str | None, Query(max_length=limits.IBAN_CHARS_MAX)] = None,
) -> Response:
    _authorize_party(
        guard, caller, platform, service.get_transfer(platform, transfer_id=transfer_id)
    )
    document = service.export_pacs008(
        platform,
        transfer_id=transfer_id,
        debtor_agent_bic=debtor_agent_bic,
        creditor_agent_bic=creditor_agent_bic,
        debtor_name=debtor_name,
        creditor_name=creditor_name,
        debtor_iban=debtor_iban,
        creditor_iban=creditor_iban,
    )
    return Response(document, media_type=XML)


# -- FX -------------------------------------------------------------------------------------------


@router.post(
    "/api/v1/fx/quotes",
    summary="Publish a firm FX quote (this node's member)",
    response_model=api_models.FxQuoteCreatedOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def create_fx_quote(
    body: FxQuoteIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    _operator: OperatorDep,
) -> dict[str, Any]:
    result = service.create_fx_quote(platform, gateway, quote=body.args())
    return _replayed(response, result)


@router.get(
    "/api/v1/fx/quotes/{quote_id}",
    summary="A quote and its used capacity",
    response_model=api_models.FxQuoteView,
)
def get_fx_quote(quote_id: IdPath, platform: PaymentsHostDep, _caller: CallerDep) -> dict[str, Any]:
    return service.get_fx_quote(platform, quote_id=quote_id)


@router.post(
    "/api/v1/fx/payments",
    summary="Pay across currencies under a quote",
    response_model=api_models.FxPaymentOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def pay_fx(
    body: FxPaymentIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    _validated(parse_fx_payment, body.args(), id=body.id)
    outflow = None
    if not caller.is_operator:
        # The target side is in another currency: only a source amount is comparable with
        # the policy's thresholds (None makes the policy fail closed).
        outflow = _outflow(
            guard,
            caller,
            platform,
            key=f"fx:{body.id}",
            debit_account_id=body.debit_account_id,
            credit_account_id=body.credit_account_id,
            amount=body.source_amount,
        )
    reservation = _put_to_policy(guard, caller, platform, [outflow])
    facts = _screen_facts(
        guard,
        caller,
        platform,
        payment_id=body.id,
        payment=outflow,
        amount=_fx_source_amount(caller, platform, body, outflow),
    )
    result = _settled_as(
        guard,
        caller,
        platform,
        reservation,
        body.id,
        lambda: service.screened_fx_payment(
            platform, gateway, payment=body.args(), sender=caller.sender, facts=facts
        ),
    )
    if outflow is not None and outflow.amount_minor is None:
        sized = replace(outflow, amount_minor=result["source_amount"])
        guard.record_moved(caller, sized)  # known now that it has executed
    return _replayed(response, result)


def _fx_source_amount(
    caller: Caller, platform: PaymentsHost, body: FxPaymentIn, outflow: Outflow | None
) -> int | None:
    """What an FX payment takes from the payer, in the source currency (principal and
    spread), as the screen's features are per currency: the request's own source amount, or
    for a fixed target amount what the quote makes of it now (`fx_offers.preview`, the
    contract's arithmetic).  A quote that does not exist is the contract's own 404."""
    if body.source_amount is not None or not _screens(caller, platform, outflow):
        return body.source_amount
    assert body.target_amount is not None  # parse_fx_payment: one side or the other
    quote = service.get_fx_quote(platform, quote_id=body.quote_id)
    preview = fx_offers.preview(platform, quote, side=TARGET_SIDE, amount_minor=body.target_amount)
    return preview.amounts.source_amount


# -- books ----------------------------------------------------------------------------------------


@router.post(
    "/api/v1/payments/fee-schedules",
    summary="Set a product's fee schedule",
    response_model=api_models.FeeScheduleSetOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def set_fee_schedule(
    body: FeeScheduleIn, platform: PaymentsHostDep, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    schedule = body.model_dump()
    result = service.set_fee_schedule(platform, gateway, schedule=schedule)
    result.pop("height", None)
    return result


@router.get(
    "/api/v1/payments/trial-balance",
    summary="Per currency: debits equal credits",
    response_model=api_models.TrialBalanceOut,
)
def trial_balance(
    platform: PaymentsHostDep,
    _operator: OperatorDep,
    source: Literal["projection", "chain"] = "projection",
) -> dict[str, Any]:
    return service.trial_balance(platform, source=source)


@router.post(
    "/api/v1/payments/iso20022/pain001",
    responses=NOT_YET_VISIBLE_RESPONSES,
    summary="Import a pain.001.001.09 file (body: the XML)",
    response_model=api_models.Pain001ImportOut,
    openapi_extra={
        **body_limit(limits.PAIN001_BYTES_MAX),
        "requestBody": {"content": {XML: {"schema": {"type": "string"}}}},
    },
)
async def import_pain001(
    request: Request,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
    linked: Annotated[bool, Query(description="all accepted transfers, all or nothing")] = False,
) -> dict[str, Any]:
    """A MsgId is accepted once per initiating party: any second file under it, even the same
    bytes, is 409 `msg_id_reused` (with `same_file`) and books nothing."""
    guard.require_member_side(caller)
    guard.authorize(caller, permission=Permission.PAYMENT_TRANSFER)
    # The edge refused a body over PAIN001_BYTES_MAX before the route ran (413).
    xml = await request.body()
    return await run_in_threadpool(
        lambda: service.import_pain001(
            platform, gateway, xml=xml, linked=linked, sender=caller.sender
        )
    )

"""HTTP API of payments: accounts, transfers, holds, FX, trial balance, ISO 20022.

Routes are thin: they check the request's shape (strict pydantic models: amounts are JSON
integers, never floats, bools or strings), decide who is asking (`Caller`), and call `service`.
Refusals are problem+json with the contract's stable code (`service.http_status_for`).

Who may call: the node operator (the operator's bearer token), acting as this node's member.
Transfers are idempotent by the client's id: a retry with the same body gets the same body back
(with `Idempotent-Replayed: true`), the same id with another body 409
`exists_with_different_fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from zhijin.identity.errors import Forbidden
from zhijin.identity.rbac import Permission, Principal, Resource, Scope, permissions_of
from zhijin.identity.service import IdentityService, RequestSource
from zhijin.identity.stepup import RiskContext, screening_amount
from zhijin.identity.web import current_user, get_identity, request_source, user_did
from zhijin.payments import limits, service
from zhijin.payments.records import AccountFlag, AccountKind, AccountStatus, TransferFlag
from zhijin.platform.deps import GatewayDep, OperatorDep, PlatformDep
from zhijin.platform.http_edge import EdgeRoute, body_limit
from zhijin.platform.params import Cursor, TimeMs
from zhijin.platform.runtime import Platform, check_operator_token

__all__ = ["REPLAYED_HEADER", "router"]

router = APIRouter(tags=["payments"], route_class=EdgeRoute)

REPLAYED_HEADER = "Idempotent-Replayed"
XML = "application/xml"
STEP_UP_ACTION = "payment.transfer"
DEFAULT_PAGE_SIZE = 50

Id = Annotated[str, Field(pattern=limits.ID_PATTERN, description="client id, 1-64 characters")]
IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
# The id of any transfer, including the legs the contract books (`<id>~fee`).
TransferIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:~-]{0,79}$")]
Amount = Annotated[
    int, Field(strict=True, ge=1, le=limits.AMOUNT_MAX, description="integer minor units")
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
Reference = Annotated[str, Field(min_length=1, max_length=limits.REFERENCE_CHARS_MAX)]
Bps = Annotated[int, Field(strict=True, ge=0, le=limits.BPS_PER_UNIT)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
BIC_PATTERN = r"^[A-Z0-9]{8}([A-Z0-9]{3})?$"
Bic = Annotated[str, Query(pattern=BIC_PATTERN, description="BIC (ISO 9362)")]


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
    iban: str = Field(min_length=15, max_length=42, description="ISO 13616, spaces allowed")


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
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,12})?$",
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


# -- callers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks.  The operator (principal None) acts as this node's member.  An end user's
    requests are submitted with `sender` = the user's DID, vouched for by the member, so the
    contract's authorisation applies on top of RBAC; staff of this node's member act through
    the member (`sender` None), within their roles' scope."""

    sender: str | None = None
    principal: Principal | None = None
    identity: IdentityService | None = None
    source: RequestSource | None = None  # the client's address and device, for step-up


def resolve_caller(request: Request, platform: PlatformDep) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and check_operator_token(platform.settings, token.strip()):
        return Caller()
    identity = get_identity(request)
    principal = current_user(request, identity)
    source = request_source(request)
    if principal.member_did is None:
        return Caller(user_did(identity, principal), principal, identity, source)
    if principal.member_did != platform.node.key.did:
        raise Forbidden("other_member", "staff act through their own member's node")
    return Caller(None, principal, identity, source)


CallerDep = Annotated[Caller, Depends(resolve_caller)]


def _authorize(
    caller: Caller, platform: Platform, account_id: str, permission: Permission
) -> dict[str, Any]:
    """RBAC on one account for users and staff (the operator may do anything the member may);
    returns the account.  An account is its owner's when the owner DID is the caller's."""
    account = service.get_account(platform, account_id=account_id)
    if caller.principal is not None and caller.identity is not None:
        mine = caller.sender is not None and account["owner"] == caller.sender
        resource = Resource(
            kind="account",
            id=account_id,
            owner_id=caller.principal.user_id if mine else None,
            member_did=account["custodian"],
        )
        caller.identity.authorize(
            principal=caller.principal, permission=permission, resource=resource
        )
    return account


def _step_up(
    caller: Caller,
    platform: Platform,
    *,
    amount: int | None,
    currency: str,
    exponent: int,
    payee_known: Callable[[], bool] | None,
) -> None:
    """Ask the step-up policy about a user's payment from STEP_UP_FROM_MINOR up, counted in the
    policy's reference currency (the policy holds the real thresholds and may deny or ask for a
    fresh second factor).  An amount not known yet (an FX payment sized by its target) or in a
    currency the policy has no rate for is asked about too: the policy then fails closed on its
    amount rules."""
    if caller.principal is None or caller.identity is None:
        return
    policy = caller.identity.current_policy()  # read once for the floor and the decision
    if amount is not None:
        screened = screening_amount(
            policy,
            amount_minor=amount,
            currency=currency,
            exponent=exponent,
        )
        if screened is not None and screened < limits.STEP_UP_FROM_MINOR:
            return
    device_known = (
        None
        if caller.source is None
        else caller.identity.device_known(principal=caller.principal, source=caller.source)
    )
    # Where the payment comes from against where the user last signed in: a session used from
    # the other side of the world minutes after its login is someone else's.
    last_location, last_login_ms = caller.identity.last_login(principal=caller.principal)
    context = RiskContext(
        action=STEP_UP_ACTION,
        now_ms=platform.node.clock(),
        amount_minor=amount,
        currency=currency,
        amount_exponent=exponent,
        payee_known=None if payee_known is None else payee_known(),
        device_known=device_known,
        location=None if caller.source is None else caller.source.location,
        last_location=last_location,
        last_login_ms=last_login_ms,
    )
    caller.identity.check_action(principal=caller.principal, context=context, policy=policy)


def _authorize_payment(
    caller: Caller,
    platform: Platform,
    debit_account_id: str,
    amount: int | None,
    credit_account_id: str | None,
) -> None:
    account = _authorize(caller, platform, debit_account_id, Permission.PAYMENT_TRANSFER)
    principal = caller.principal
    payee_known = (
        None
        if credit_account_id is None or principal is None
        else lambda: service.has_paid(
            platform,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            before_ms=principal.auth_at_ms,
        )
    )
    _step_up(
        caller,
        platform,
        amount=amount,
        currency=account["currency"],
        exponent=account["exponent"],
        payee_known=payee_known,
    )


def _authorize_transfer_request(caller: Caller, platform: Platform, body: TransferIn) -> None:
    if caller.principal is None:
        return
    if body.pending_id is not None:
        held = service.get_transfer(platform, transfer_id=body.pending_id)
        # Whoever may move money out of either side of a hold may ask to post or void it;
        # the contract then applies its own rule (only the payee voids).
        side = held["credit_account_id"]
        if caller.sender is not None:
            debit = service.get_account(platform, account_id=held["debit_account_id"])
            if debit["owner"] == caller.sender:
                side = held["debit_account_id"]
        _authorize(caller, platform, side, Permission.PAYMENT_TRANSFER)
        return
    if body.debit_account_id is None:
        raise service.PaymentRefused("debit_account_id_invalid", "debit_account_id is required")
    _authorize_payment(caller, platform, body.debit_account_id, body.amount, body.credit_account_id)


def _authorize_party(caller: Caller, platform: Platform, record: dict[str, Any]) -> None:
    """A transfer is visible to whoever may read either of its accounts' transactions."""
    if caller.principal is None:
        return
    side = record["debit_account_id"]
    if caller.sender is not None:
        credit = service.get_account(platform, account_id=record["credit_account_id"])
        if credit["owner"] == caller.sender:
            side = credit["id"]
    _authorize(caller, platform, side, Permission.TRANSACTION_READ)


def _require_member_side(caller: Caller) -> None:
    """Operator or staff of this member only (bulk files, books)."""
    if caller.principal is not None and caller.principal.member_did is None:
        raise Forbidden("permission_denied", "this is for the member's operator and staff")


def _replayed(response: Response, result: dict[str, Any]) -> dict[str, Any]:
    """Move `exists` to a header, so a retry's body is byte-for-byte the first answer's."""
    exists = bool(result.pop("exists", False))
    result.pop("height", None)
    response.headers[REPLAYED_HEADER] = "true" if exists else "false"
    return result


# -- accounts -------------------------------------------------------------------------------------


@router.post("/api/v1/accounts", summary="Open an account (idempotent by id)")
def open_account(
    body: AccountIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    if caller.principal is not None and caller.identity is not None:
        # Bank staff open accounts in their member's name (the member is the custodian); an
        # end user has no `account.open` grant, and the refusal is audited like any other.
        caller.identity.authorize(
            principal=caller.principal,
            permission=Permission.ACCOUNT_OPEN,
            resource=Resource(kind="account", id=body.id, member_did=platform.node.key.did),
        )
    result = service.open_account(platform, gateway, account=body.args())
    return _replayed(response, result)


@router.get("/api/v1/accounts", summary="Accounts in id order (paginated)")
def list_accounts(
    platform: PlatformDep,
    caller: CallerDep,
    owner: Annotated[str | None, Query(max_length=limits.OWNER_CHARS_MAX)] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    after_id: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    custodian = None
    if caller.principal is not None and caller.identity is not None:
        grants = permissions_of(caller.principal.roles).get(Permission.ACCOUNT_READ, ())
        scopes = {scope for _, scope in grants}
        caller.identity.authorize(principal=caller.principal, permission=Permission.ACCOUNT_READ)
        if Scope.ALL not in scopes:
            if Scope.MEMBER in scopes:
                custodian = caller.principal.member_did
            else:
                owner = caller.sender  # an end user lists their own accounts only
    return service.list_accounts(
        platform,
        owner=owner,
        custodian=custodian,
        currency=currency,
        after_id=after_id,
        limit=limit,
    )


@router.get("/api/v1/accounts/{account_id}", summary="An account with its balances")
def get_account(account_id: IdPath, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    return _authorize(caller, platform, account_id, Permission.ACCOUNT_READ)


@router.get("/api/v1/accounts/{account_id}/statement", summary="Posted entries (paginated)")
def get_statement(
    account_id: IdPath,
    platform: PlatformDep,
    caller: CallerDep,
    after_entry: Annotated[Cursor, Query(description="next page: the last entry_no")] = 0,
    limit: PageSize = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    _authorize(caller, platform, account_id, Permission.TRANSACTION_READ)
    return service.statement(platform, account_id=account_id, after_entry=after_entry, limit=limit)


@router.get(
    "/api/v1/accounts/{account_id}/camt053",
    summary="A camt.053.001.08 statement of [from_ms, to_ms)",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def get_camt053(
    account_id: IdPath,
    platform: PlatformDep,
    caller: CallerDep,
    from_ms: TimeMs,
    to_ms: Annotated[TimeMs, Query(ge=1)],
    iban: Annotated[str | None, Query(max_length=34)] = None,
    servicer_bic: Annotated[str | None, Query(pattern=BIC_PATTERN)] = None,
) -> Response:
    _authorize(caller, platform, account_id, Permission.TRANSACTION_READ)
    document = service.export_camt053(
        platform,
        account_id=account_id,
        from_ms=from_ms,
        to_ms=to_ms,
        iban=iban,
        servicer_bic=servicer_bic,
    )
    return Response(document, media_type=XML)


@router.post("/api/v1/accounts/{account_id}/status", summary="Freeze, unfreeze or close")
def set_status(
    account_id: IdPath,
    body: StatusIn,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    _authorize(caller, platform, account_id, Permission.ACCOUNT_STATUS)
    result = service.set_account_status(
        platform, gateway, account_id=account_id, status=body.status.value
    )
    result.pop("height", None)
    return result


def _actor(caller: Caller) -> str:
    return "operator" if caller.principal is None else f"user:{caller.principal.user_id}"


@router.put("/api/v1/accounts/{account_id}/iban", summary="Name the account by an IBAN")
def put_iban(
    account_id: IdPath, body: IbanIn, platform: PlatformDep, caller: CallerDep
) -> dict[str, Any]:
    """For pain.001 imports and camt.053 exports; off-chain, sealed in the vault (idempotent)."""
    _authorize(caller, platform, account_id, Permission.ACCOUNT_OPEN)
    return service.register_iban(
        platform, account_id=account_id, iban=body.iban, actor=_actor(caller)
    )


@router.delete("/api/v1/accounts/{account_id}/iban", summary="Forget the account's IBAN")
def delete_iban(account_id: IdPath, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    _authorize(caller, platform, account_id, Permission.ACCOUNT_OPEN)
    return service.remove_iban(platform, account_id=account_id, actor=_actor(caller))


@router.get("/api/v1/accounts/{account_id}/iban", summary="The account's IBAN, masked")
def get_iban(account_id: IdPath, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    _authorize(caller, platform, account_id, Permission.ACCOUNT_READ)
    return service.account_iban(platform, account_id=account_id)


# -- transfers ------------------------------------------------------------------------------------


@router.post("/api/v1/transfers", summary="One transfer, hold, post or void (idempotent by id)")
def create_transfer(
    body: TransferIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    _authorize_transfer_request(caller, platform, body)
    result = service.transfer(platform, gateway, request=body.args(), sender=caller.sender)
    return _replayed(response, result)


@router.post(
    "/api/v1/transfers/batch",
    summary="1-100 transfers; linked chains all or nothing",
    openapi_extra=body_limit(limits.TRANSFER_BATCH_BODY_BYTES_MAX),
)
def create_transfer_batch(
    body: TransferBatchIn, platform: PlatformDep, gateway: GatewayDep, caller: CallerDep
) -> dict[str, Any]:
    for item in body.transfers:
        _authorize_transfer_request(caller, platform, item)
    return service.create_transfers(
        platform, gateway, transfers=[t.args() for t in body.transfers], sender=caller.sender
    )


@router.get("/api/v1/transfers/{transfer_id}", summary="A transfer, and a hold's status")
def get_transfer(
    transfer_id: TransferIdPath, platform: PlatformDep, caller: CallerDep
) -> dict[str, Any]:
    record = service.get_transfer(platform, transfer_id=transfer_id)
    _authorize_party(caller, platform, record)
    return record


def _resolve(
    pending_id: str,
    body: ResolveIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: Caller,
    *,
    post: bool,
) -> dict[str, Any]:
    if caller.principal is not None:
        request = TransferIn(id=body.id, pending_id=pending_id, amount=body.amount)
        _authorize_transfer_request(caller, platform, request)
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
    return _replayed(response, result)


@router.post("/api/v1/transfers/{pending_id}/post", summary="Post a hold (all or part)")
def post_pending(
    pending_id: IdPath,
    body: ResolveIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return _resolve(pending_id, body, response, platform, gateway, caller, post=True)


@router.post("/api/v1/transfers/{pending_id}/void", summary="Void a hold")
def void_pending(
    pending_id: IdPath,
    body: ResolveIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    return _resolve(pending_id, body, response, platform, gateway, caller, post=False)


@router.get(
    "/api/v1/transfers/{transfer_id}/pacs008",
    summary="A cross-border (FX) payment as pacs.008.001.08",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def get_pacs008(
    transfer_id: IdPath,
    platform: PlatformDep,
    caller: CallerDep,
    debtor_agent_bic: Bic,
    creditor_agent_bic: Bic,
    debtor_name: Annotated[str | None, Query(min_length=1, max_length=140)] = None,
    creditor_name: Annotated[str | None, Query(min_length=1, max_length=140)] = None,
    debtor_iban: Annotated[str | None, Query(max_length=34)] = None,
    creditor_iban: Annotated[str | None, Query(max_length=34)] = None,
) -> Response:
    _authorize_party(caller, platform, service.get_transfer(platform, transfer_id=transfer_id))
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


@router.post("/api/v1/fx/quotes", summary="Publish a firm FX quote (this node's member)")
def create_fx_quote(
    body: FxQuoteIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    _operator: OperatorDep,
) -> dict[str, Any]:
    result = service.create_fx_quote(platform, gateway, quote=body.args())
    return _replayed(response, result)


@router.get("/api/v1/fx/quotes/{quote_id}", summary="A quote and its used capacity")
def get_fx_quote(quote_id: IdPath, platform: PlatformDep, caller: CallerDep) -> dict[str, Any]:
    return service.get_fx_quote(platform, quote_id=quote_id)


@router.post("/api/v1/fx/payments", summary="Pay across currencies under a quote")
def pay_fx(
    body: FxPaymentIn,
    response: Response,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
) -> dict[str, Any]:
    if caller.principal is not None:
        # The target side is in another currency: only a source amount is comparable with
        # the policy's thresholds (None makes the policy fail closed).
        _authorize_payment(
            caller, platform, body.debit_account_id, body.source_amount, body.credit_account_id
        )
    result = service.pay_fx(platform, gateway, payment=body.args(), sender=caller.sender)
    return _replayed(response, result)


# -- books ----------------------------------------------------------------------------------------


@router.post("/api/v1/payments/fee-schedules", summary="Set a product's fee schedule")
def set_fee_schedule(
    body: FeeScheduleIn, platform: PlatformDep, gateway: GatewayDep, _operator: OperatorDep
) -> dict[str, Any]:
    schedule = body.model_dump()
    result = service.set_fee_schedule(platform, gateway, schedule=schedule)
    result.pop("height", None)
    return result


@router.get("/api/v1/payments/trial-balance", summary="Per currency: debits equal credits")
def trial_balance(
    platform: PlatformDep,
    _operator: OperatorDep,
    source: Literal["projection", "chain"] = "projection",
) -> dict[str, Any]:
    return service.trial_balance(platform, source=source)


@router.post(
    "/api/v1/payments/iso20022/pain001",
    summary="Import a pain.001.001.09 file (body: the XML)",
    openapi_extra={
        **body_limit(limits.PAIN001_BYTES_MAX),
        "requestBody": {"content": {XML: {"schema": {"type": "string"}}}},
    },
)
async def import_pain001(
    request: Request,
    platform: PlatformDep,
    gateway: GatewayDep,
    caller: CallerDep,
    linked: Annotated[bool, Query(description="all accepted transfers, all or nothing")] = False,
) -> dict[str, Any]:
    _require_member_side(caller)
    if caller.principal is not None and caller.identity is not None:
        caller.identity.authorize(
            principal=caller.principal, permission=Permission.PAYMENT_TRANSFER
        )
    xml = await _read_limited(request, limits.PAIN001_BYTES_MAX)
    return await run_in_threadpool(
        lambda: service.import_pain001(
            platform, gateway, xml=xml, linked=linked, sender=caller.sender
        )
    )


async def _read_limited(request: Request, limit_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise service.PaymentRefused("pain001_too_large", f"at most {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

"""HTTP routes for people and merchants: confirmation of payee, pay by phone number, recent
payees, payment requests (collection QR codes and links), statements with names, search, local
days, CSV and camt.053, and the SME owner's incoming payments, daily totals, refunds and
settlement report.

Thin, like `api.py`: shape (the models of `people_schemas`), who asks (identity's `CallerDep` and `GuardDep`, RBAC on
the account), the service (`people`, `collect`, `merchant`).  Every payment a route here makes
(paying a request, a refund) goes through `api.create_transfer`, the normal transfer path with
its step-up policy, so nothing here is a way around it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from zhijin.chain.errors import NotFound
from zhijin.identity import Caller, CallerDep, Guard, GuardDep, Permission, StepUpRequired
from zhijin.payments import api, collect, fx_offers, limits, merchant, people, service
from zhijin.payments import people_schemas as schemas
from zhijin.payments.api_models import TransferCreatedOut
from zhijin.payments.codes import Code
from zhijin.payments.expected import PaymentsHost, PaymentsHostDep
from zhijin.payments.payees import local_date, time_zone
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.platform.deps import GatewayDep
from zhijin.platform.errors import Forbidden
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.params import Cursor
from zhijin.platform.problems import NOT_YET_VISIBLE_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["payments: people"], route_class=EdgeRoute)

CSV = "text/csv; charset=utf-8"
SVG = "image/svg+xml"
XML = "application/xml"
DEFAULT_STATEMENT_DAYS = 30

IdPath = Annotated[str, Path(pattern=limits.ID_PATTERN)]
RequestIdPath = Annotated[str, Path(pattern=limits.PAYMENT_REQUEST_ID_PATTERN)]
TokenPath = Annotated[str, Path(pattern=limits.PAYMENT_REQUEST_TOKEN_PATTERN)]
PageSize = Annotated[int, Query(ge=1, le=limits.PAGE_SIZE_MAX)]
FirstDay = Annotated[
    date | None, Query(description="first day (included), local; default: 30 days ago")
]
LastDay = Annotated[date | None, Query(description="last day (included), local; default: today")]
TimeZone = Annotated[
    str,
    Query(max_length=limits.TIME_ZONE_CHARS_MAX, description="IANA time zone of the days"),
]
Language = Annotated[Literal["zh-CN", "en"] | None, Query(description="CSV headings")]
SearchText = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=limits.STATEMENT_QUERY_CHARS_MAX,
        description="memo, counterparty name or account id, or an amount",
    ),
]
CounterpartyId = Annotated[str | None, Query(pattern=limits.ID_PATTERN)]
AmountText = Annotated[
    str | None,
    Query(max_length=limits.AMOUNT_TEXT_CHARS_MAX, description="exact decimal amount: 12.50"),
]
BeforeEntry = Annotated[Cursor | None, Query(description="next page: next_before_entry")]
CurrencyQuery = Annotated[str, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
_CONFLICTS = frozenset({Code.EXISTS_WITH_DIFFERENT_FIELDS.value, service.TRANSFER_ID_TAKEN})


def _own(guard: Guard, caller: Caller, platform: PaymentsHost, account_id: str) -> dict[str, Any]:
    """An account the caller (an end user) owns: payment requests, phone numbers and refunds
    are the owner's own business, not staff's."""
    account = api._authorize(guard, caller, platform, account_id, Permission.ACCOUNT_READ)
    if not caller.owns(account["owner"]):
        raise refused(PeopleCode.NOT_ACCOUNT_OWNER)
    return account


def _search(
    platform: PaymentsHost,
    first: date | None,
    last: date | None,
    tz: str,
    **search: Any,
) -> people.StatementFilter:
    try:
        zone = time_zone(tz)
    except ValueError:
        raise refused(PeopleCode.TIME_ZONE_INVALID, time_zone=tz) from None
    last = last or local_date(platform.node.clock(), zone)
    first = first or last - timedelta(days=DEFAULT_STATEMENT_DAYS - 1)
    return people.StatementFilter(first=first, last=last, zone=zone, **search)


def _language(request: Request, lang: str | None) -> str:
    if lang is not None:
        return lang
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "en" if accepted.startswith("en") else "zh-CN"


def _download(body: bytes, media_type: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


# -- confirmation of payee and pay by phone ---------------------------------------------------------


@router.post(
    "/api/v1/payees/confirm",
    summary="Confirmation of payee: the masked name behind an account, IBAN or phone number",
    response_model=schemas.PayeeConfirmationOut,
    responses={429: {"description": "the lookup budget is spent: see Retry-After"}},
)
def confirm_payee(
    body: schemas.PayeeConfirmIn, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    """Rate-limited per user and audited; a frozen or closed account is `payee_unavailable`
    with no name.  A POST, so IBANs and phone numbers stay out of URLs and access logs."""
    guard.authorize(caller, permission=Permission.PAYMENT_TRANSFER)
    return people.confirm_payee(
        platform,
        requester=caller.actor,
        account_id=body.account_id,
        iban=body.iban,
        mobile=body.mobile,
        expected_name=body.expected_name,
    )


@router.get(
    "/api/v1/payees/recent",
    summary="Whom I paid lately, most recent first, with masked names",
    response_model=schemas.RecentPayeesOut,
)
def recent_payees(
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    account_id: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
    after: Annotated[str | None, Query(max_length=2 * limits.ID_CHARS_MAX)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    if caller.sender is None:
        raise Forbidden("permission_denied", "recent payees are an end user's own")
    if account_id is not None:
        _own(guard, caller, platform, account_id)
    return people.recent_payees(
        platform, owner=caller.sender, account_id=account_id, after=after, limit=limit
    )


@router.put(
    "/api/v1/accounts/{account_id}/mobile",
    summary="Be paid by my mobile number into this account",
    response_model=schemas.MobileRegisteredOut,
)
def put_mobile(
    account_id: IdPath,
    body: schemas.MobileIn,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    account = _own(guard, caller, platform, account_id)
    return people.register_mobile(platform, account=account, mobile=body.mobile, actor=caller.actor)


@router.delete(
    "/api/v1/accounts/{account_id}/mobile",
    summary="Stop being paid by mobile number into this account",
    response_model=schemas.MobileRemovedOut,
)
def delete_mobile(
    account_id: IdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _own(guard, caller, platform, account_id)
    return people.remove_mobile(platform, account_id=account_id, actor=caller.actor)


@router.get(
    "/api/v1/accounts/{account_id}/mobile",
    summary="The mobile number that names this account, masked",
    response_model=schemas.MobileOut,
)
def get_mobile(
    account_id: IdPath, platform: PaymentsHostDep, caller: CallerDep, guard: GuardDep
) -> dict[str, Any]:
    _own(guard, caller, platform, account_id)
    return people.account_mobile(platform, account_id=account_id)


# -- statements -----------------------------------------------------------------------------------


@router.get(
    "/api/v1/accounts/{account_id}/entries",
    summary="Statement for people: names, search, local days (newest first)",
    response_model=schemas.PeopleStatementOut,
)
def people_statement(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
    q: SearchText = None,
    counterparty: CounterpartyId = None,
    amount: AmountText = None,
    before_entry: BeforeEntry = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    account = api._authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    search = _search(
        platform, from_date, to_date, tz, query=q, counterparty_id=counterparty, amount=amount
    )
    return people.people_statement(
        platform,
        account=account,
        search=search,
        actor=caller.actor,
        before_entry=before_entry,
        limit=limit,
    )


@router.get(
    "/api/v1/accounts/{account_id}/statement.csv",
    summary="Statement as CSV (UTF-8 with BOM, exact decimal amounts)",
    response_class=Response,
    responses={200: {"content": {CSV: {}}}},
)
def statement_csv(
    request: Request,
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
    q: SearchText = None,
    counterparty: CounterpartyId = None,
    amount: AmountText = None,
    lang: Language = None,
) -> Response:
    account = api._authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    search = _search(
        platform, from_date, to_date, tz, query=q, counterparty_id=counterparty, amount=amount
    )
    body = people.statement_csv(
        platform,
        account=account,
        search=search,
        actor=caller.actor,
        language=_language(request, lang),
    )
    name = f"statement-{account_id}-{search.first.isoformat()}-{search.last.isoformat()}.csv"
    return _download(body, CSV, name)


@router.get(
    "/api/v1/accounts/{account_id}/statement.camt053",
    summary="Statement as camt.053.001.08 for local days (validated against its XSD)",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def statement_camt053(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
) -> Response:
    api._authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    search = _search(platform, from_date, to_date, tz)
    from_ms, to_ms = search.period_ms()
    document = service.export_camt053(platform, account_id=account_id, from_ms=from_ms, to_ms=to_ms)
    name = f"camt053-{account_id}-{search.first.isoformat()}-{search.last.isoformat()}.xml"
    return _download(document, XML, name)


# -- payment requests -----------------------------------------------------------------------------


def _base_url(request: Request) -> str:
    return str(request.base_url)


def _own_request(
    guard: Guard, caller: Caller, platform: PaymentsHost, request_id: str
) -> dict[str, Any]:
    row = collect.read_request(platform, request_id=request_id)
    try:
        _own(guard, caller, platform, row["account_id"])
    except (Forbidden, NotFound):
        raise refused(PeopleCode.PAYMENT_REQUEST_NOT_FOUND) from None  # not theirs to know of
    return row


@router.post(
    "/api/v1/payment-requests",
    summary="A collection QR code or payment link for my account",
    response_model=schemas.PaymentRequestView,
)
def create_payment_request(
    request: Request,
    body: schemas.PaymentRequestIn,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    account = _own(guard, caller, platform, body.account_id)
    row = collect.create_request(
        platform,
        account=account,
        amount_minor=body.amount,
        memo=body.memo,
        ttl_ms=body.expires_in_ms,
        single_use=body.single_use,
        show_name_public=body.show_name_public,
    )
    return collect.owner_view(platform, row, _base_url(request))


@router.get(
    "/api/v1/payment-requests",
    summary="My payment requests for an account, newest first",
    response_model=schemas.PaymentRequestPageOut,
)
def list_payment_requests(
    request: Request,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    account_id: Annotated[str, Query(pattern=limits.ID_PATTERN)],
    before: Annotated[str | None, Query(max_length=64)] = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    _own(guard, caller, platform, account_id)
    return collect.list_requests(
        platform, account_id=account_id, base_url=_base_url(request), before=before, limit=limit
    )


@router.get(
    "/api/v1/payment-requests/{request_id}",
    summary="One of my payment requests, with its status",
    response_model=schemas.PaymentRequestView,
)
def get_payment_request(
    request: Request,
    request_id: RequestIdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    row = _own_request(guard, caller, platform, request_id)
    return collect.owner_view(platform, row, _base_url(request))


@router.get(
    "/api/v1/payment-requests/{request_id}/qr.svg",
    summary="The payment link as a QR code (SVG)",
    response_class=Response,
    responses={200: {"content": {SVG: {}}}},
)
def payment_request_qr(
    request: Request,
    request_id: RequestIdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
) -> Response:
    row = _own_request(guard, caller, platform, request_id)
    return Response(collect.qr_svg(collect.link(_base_url(request), row)), media_type=SVG)


@router.post(
    "/api/v1/payment-requests/{request_id}/cancel",
    summary="Stop a payment request taking payments",
    response_model=schemas.PaymentRequestView,
)
def cancel_payment_request(
    request: Request,
    request_id: RequestIdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    row = _own_request(guard, caller, platform, request_id)
    cancelled = collect.cancel_request(platform, request=row)
    return collect.owner_view(platform, cancelled, _base_url(request))


@router.get(
    "/api/v1/pay/{token}",
    summary="What a payment link asks for (signing in shows the payee's masked name)",
    response_model=schemas.PayerRequestView,
)
def open_payment_link(
    token: TokenPath, request: Request, platform: PaymentsHostDep, guard: GuardDep
) -> dict[str, Any]:
    row = collect.request_by_token(platform, token=token)
    signed_in = guard.is_operator_request(request) or guard.optional_principal(request) is not None
    return collect.view_for_payer(platform, row, signed_in=signed_in)


@router.post(
    "/api/v1/pay/{token}",
    summary="Pay a payment link (the normal transfer path, step-up as usual)",
    response_model=TransferCreatedOut,
    response_model_exclude_unset=True,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def pay_payment_link(
    token: TokenPath,
    body: schemas.PayRequestIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    row = collect.request_by_token(platform, token=token)
    collect.check_payable(platform, row)
    fixed = row["amount_minor"]
    if fixed is not None and body.amount is not None and body.amount != fixed:
        raise refused(PeopleCode.PAYMENT_REQUEST_AMOUNT_FIXED, amount_minor=fixed)
    amount = fixed if fixed is not None else body.amount
    if amount is None:
        raise refused(PeopleCode.PAYMENT_REQUEST_AMOUNT_REQUIRED)
    if row["single_use"]:
        transfer_id = collect.single_use_transfer_id(row["id"])
    elif body.id is None:
        raise refused(PeopleCode.PAYMENT_REQUEST_ID_REQUIRED)
    else:
        transfer_id = body.id
    transfer = api.TransferIn(
        id=transfer_id,
        debit_account_id=body.debit_account_id,
        credit_account_id=row["account_id"],
        amount=amount,
        currency=row["currency"],
        reference=row["id"],
    )
    try:
        return api.create_transfer(transfer, response, platform, gateway, caller, guard)
    except service.PaymentRefused as error:
        if row["single_use"] and error.code in _CONFLICTS:
            raise refused(PeopleCode.PAYMENT_REQUEST_PAID) from None
        raise


# -- merchant -------------------------------------------------------------------------------------


@router.get(
    "/api/v1/merchant/accounts/{account_id}/incoming",
    summary="Payments received, with payers' masked names and refunds (newest first)",
    response_model=schemas.IncomingOut,
)
def merchant_incoming(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
    before_entry: BeforeEntry = None,
    limit: PageSize = limits.PAGE_SIZE_DEFAULT,
) -> dict[str, Any]:
    account = api._authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    search = _search(platform, from_date, to_date, tz)
    return merchant.incoming(
        platform, account=account, search=search, before_entry=before_entry, limit=limit
    )


@router.get(
    "/api/v1/merchant/accounts/{account_id}/daily",
    summary="Per local day: payments received, refunds, net",
    response_model=schemas.DailyTotalsOut,
)
def merchant_daily(
    account_id: IdPath,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
) -> dict[str, Any]:
    account = api._authorize(guard, caller, platform, account_id, Permission.TRANSACTION_READ)
    return merchant.daily_totals(
        platform, account=account, search=_search(platform, from_date, to_date, tz)
    )


@router.get(
    "/api/v1/merchant/settlement.csv",
    summary="Settlement report per day and currency of my collection accounts (CSV)",
    response_class=Response,
    responses={200: {"content": {CSV: {}}}},
)
def merchant_settlement(
    request: Request,
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    account_id: Annotated[str | None, Query(pattern=limits.ID_PATTERN)] = None,
    from_date: FirstDay = None,
    to_date: LastDay = None,
    tz: TimeZone = limits.DEFAULT_TIME_ZONE,
    lang: Language = None,
) -> Response:
    if caller.sender is None:
        raise Forbidden("permission_denied", "the settlement report is an end user's own")
    if account_id is not None:
        accounts = [_own(guard, caller, platform, account_id)]
    else:
        page = service.list_accounts(platform, owner=caller.sender, limit=limits.PAGE_SIZE_MAX)
        accounts = [a for a in page["accounts"] if a["kind"] in collect.PAYABLE_KINDS]
    search = _search(platform, from_date, to_date, tz)
    body = merchant.settlement_csv(
        platform, accounts=accounts, search=search, language=_language(request, lang)
    )
    name = f"settlement-{search.first.isoformat()}-{search.last.isoformat()}.csv"
    return _download(body, CSV, name)


# Refusals after which nothing moved: the refund's claim is given back.
_NOTHING_MOVED = (service.PaymentRefused, StepUpRequired, Forbidden, NotFound)


@router.post(
    "/api/v1/merchant/refunds",
    summary="Refund a payment received, in part or in full (never more than it)",
    response_model=schemas.RefundOut,
    responses=NOT_YET_VISIBLE_RESPONSES,
)
def refund(
    body: schemas.RefundIn,
    response: Response,
    platform: PaymentsHostDep,
    gateway: GatewayDep,
    caller: CallerDep,
    guard: GuardDep,
) -> dict[str, Any]:
    try:
        original = service.get_transfer(platform, transfer_id=body.original_transfer_id)
    except NotFound:
        raise refused(PeopleCode.REFUND_ORIGINAL_NOT_FOUND) from None
    account = _own(guard, caller, platform, original["credit_account_id"])
    merchant.check_original(original, account["id"])
    amount = body.amount
    if amount is None:
        amount = original["amount"] - merchant.refunded(platform, original["id"])
        if amount <= 0:
            raise refused(PeopleCode.REFUND_EXCEEDS_ORIGINAL, original_id=original["id"])
    claim = merchant.claim_refund(
        platform,
        refund_id=body.id,
        original=original,
        account_id=account["id"],
        amount_minor=amount,
    )
    reference = f"RF:{original['id']}"
    # The claim above is the friendly early answer; the contract holds the cap itself
    # (`refund_transfer`: never more than the payment brought, whoever submits the refund).
    args: dict[str, Any] = {"id": body.id, "original_transfer_id": original["id"], "amount": amount}
    if len(reference) <= limits.REFERENCE_CHARS_MAX:
        args["reference"] = reference
    try:
        result = api.submit_refund(
            guard,
            caller,
            platform,
            gateway,
            refund=args,
            payee_account_id=account["id"],
            payer_account_id=original["debit_account_id"],
        )
    except _NOTHING_MOVED:
        merchant.release_refund(platform, claim)
        raise
    response.headers[api.REPLAYED_HEADER] = "true" if result.get("exists") else "false"
    refunded = merchant.refunded(platform, original["id"])
    return {
        "id": body.id,
        "original_transfer_id": original["id"],
        "amount_minor": amount,
        "refunded_minor": refunded,
        "original_amount_minor": original["amount"],
        "transfer": result["transfer"],
    }


# -- FX quotes, as a customer sees them ------------------------------------------------------------


def fx_quotes_for(
    platform: PaymentsHost,
    caller: Caller,
    guard: Guard,
    *,
    source_currency: str,
    target_currency: str,
    source_amount: int | None = None,
    target_amount: int | None = None,
) -> dict[str, Any]:
    """The live quotes of a pair (`fx_quote.read`), each with what it would do with the amount
    if one is given, and the one that serves the payer best.  The pay-abroad page calls this."""
    guard.authorize(caller, permission=Permission.FX_QUOTE_READ)
    if source_amount is not None and target_amount is not None:
        raise service.PaymentRefused(
            Code.AMOUNT_SIDE_INVALID, "give source_amount or target_amount, not both"
        )
    listing = fx_offers.live_quotes(
        platform, source_currency=source_currency, target_currency=target_currency
    )
    side = "source" if source_amount is not None else "target"
    amount = source_amount if source_amount is not None else target_amount
    previews = []
    if amount is not None:
        for quote in listing["quotes"]:
            found = fx_offers.preview(platform, quote, side=side, amount_minor=amount)
            quote["preview"] = found.to_json()
            previews.append(found)
    chosen = fx_offers.best(previews)
    return {**listing, "best_quote_id": None if chosen is None else chosen.quote["id"]}


@router.get(
    "/api/v1/fx/quotes",
    summary="The live firm FX quotes of a currency pair, with what each does with an amount",
    response_model=schemas.LiveQuotesOut,
)
def list_fx_quotes(
    platform: PaymentsHostDep,
    caller: CallerDep,
    guard: GuardDep,
    source_currency: CurrencyQuery,
    target_currency: CurrencyQuery,
    source_amount: Annotated[
        int | None, Query(ge=1, le=limits.AMOUNT_MAX, description="minor units the payer pays")
    ] = None,
    target_amount: Annotated[
        int | None, Query(ge=1, le=limits.AMOUNT_MAX, description="minor units the payee gets")
    ] = None,
) -> dict[str, Any]:
    """Quotes not expired at the head's block time and with capacity left.  With an amount,
    each quote carries `preview`: principal, spread (the fee) and target exactly as `pay_fx`
    would book them, with the rounding it names, and `refusal` if it would refuse."""
    return fx_quotes_for(
        platform,
        caller,
        guard,
        source_currency=source_currency,
        target_currency=target_currency,
        source_amount=source_amount,
        target_amount=target_amount,
    )

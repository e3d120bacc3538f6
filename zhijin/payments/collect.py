"""Collection QR codes and payment links: a payee asks to be paid, a payer opens the link.

A payee (a person or an SME) creates a payment request for one of their own open accounts:
an optional fixed amount, a memo (off chain only), an expiry, single-use or reusable, and
whether the link shows their masked name to someone not signed in.  They get a link
`/pay/<token>` and a QR code (segno SVG) of the same URL.  The token is
`secrets.token_urlsafe(24)` (192 bits): it cannot be guessed, and it grants only seeing the
request and paying it.

Paying is the normal transfer path (RBAC, the step-up policy, the contract's checks).  The
transfer's `reference` is the request's id, so the payee's statement links each payment to
its request, and no personal data goes on chain.  A single-use request is paid by the
transfer `pr.<request id>`: the chain's idempotency makes that id one payment, so two payers
racing for it cannot both pay (the second is told `payment_request_paid`), and whether it was
paid is the chain's answer, not a flag that could disagree with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import segno
from sqlalchemy import and_, insert, or_, select, update

from zhijin.chain.errors import NotFound
from zhijin.payments import limits, projection
from zhijin.payments.expected import PaymentsHost
from zhijin.payments.payees import format_minor, mask_name
from zhijin.payments.people_codes import PeopleCode, refused
from zhijin.payments.tables import payment_requests_table
from zhijin.platform.errors import InvalidInput

__all__ = [
    "PAY_PATH",
    "cancel_request",
    "create_request",
    "list_requests",
    "qr_svg",
    "read_request",
    "request_by_token",
    "single_use_transfer_id",
    "view_for_payer",
]

PAY_PATH = "/pay/"  # the web app's page for a payment link; the API reads /api/v1/pay/<token>
PAYABLE_KINDS = frozenset({"customer", "merchant"})


def single_use_transfer_id(request_id: str) -> str:
    """The one transfer that pays a single-use request (`pr.` + its id: 19 characters)."""
    return f"pr.{request_id}"


def _row_json(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def create_request(
    platform: PaymentsHost,
    *,
    account: Mapping[str, Any],
    amount_minor: int | None,
    memo: str | None,
    ttl_ms: int,
    single_use: bool,
    show_name_public: bool,
) -> dict[str, Any]:
    """A new payment request for `account` (its owner's, checked by the route)."""
    if account["kind"] not in PAYABLE_KINDS or account["status"] != "open":
        raise refused(PeopleCode.PAYMENT_REQUEST_ACCOUNT_INVALID)
    if not limits.PAYMENT_REQUEST_TTL_MS_MIN <= ttl_ms <= limits.PAYMENT_REQUEST_TTL_MS_MAX:
        raise refused(PeopleCode.PAYMENT_REQUEST_EXPIRY_INVALID)
    now = platform.node.clock()
    row = {
        "id": f"pr_{secrets.token_hex(8)}",
        "token": secrets.token_urlsafe(limits.PAYMENT_REQUEST_TOKEN_BYTES),
        "account_id": account["id"],
        "owner": account["owner"],
        "currency": account["currency"],
        "exponent": account["exponent"],
        "amount_minor": amount_minor,
        "memo": memo,
        "single_use": single_use,
        "show_name_public": show_name_public,
        "created_at_ms": now,
        "expires_at_ms": now + ttl_ms,
        "cancelled_at_ms": None,
    }
    with platform.platform_engine.begin() as conn:
        conn.execute(insert(payment_requests_table).values(**row))
    return row


def read_request(platform: PaymentsHost, *, request_id: str) -> dict[str, Any]:
    with platform.platform_engine.connect() as conn:
        row = conn.execute(
            select(payment_requests_table).where(payment_requests_table.c.id == request_id)
        ).first()
    if row is None:
        raise refused(PeopleCode.PAYMENT_REQUEST_NOT_FOUND)
    return _row_json(row)


def request_by_token(platform: PaymentsHost, *, token: str) -> dict[str, Any]:
    with platform.platform_engine.connect() as conn:
        row = conn.execute(
            select(payment_requests_table).where(payment_requests_table.c.token == token)
        ).first()
    if row is None:
        raise refused(PeopleCode.PAYMENT_REQUEST_NOT_FOUND)
    return _row_json(row)


def _paid_by(platform: PaymentsHost, request: Mapping[str, Any]) -> str | None:
    """For a single-use request, the transfer that paid it (from the chain's query table)."""
    if not request["single_use"]:
        return None
    transfer_id = single_use_transfer_id(request["id"])
    with platform.platform_engine.connect() as conn:
        return transfer_id if projection.read_transfer(conn, transfer_id) is not None else None


def status_of(platform: PaymentsHost, request: Mapping[str, Any]) -> str:
    if request["cancelled_at_ms"] is not None:
        return "cancelled"
    if _paid_by(platform, request) is not None:
        return "paid"
    if request["expires_at_ms"] <= platform.node.clock():
        return "expired"
    return "open"


def check_payable(platform: PaymentsHost, request: Mapping[str, Any]) -> None:
    """Refuse a request that is cancelled or expired (a paid single-use one is refused by the
    chain itself: its transfer id is taken)."""
    if request["cancelled_at_ms"] is not None:
        raise refused(PeopleCode.PAYMENT_REQUEST_CANCELLED)
    if request["expires_at_ms"] <= platform.node.clock():
        raise refused(PeopleCode.PAYMENT_REQUEST_EXPIRED, expires_at_ms=request["expires_at_ms"])


def link(base_url: str, request: Mapping[str, Any]) -> str:
    return base_url.rstrip("/") + PAY_PATH + request["token"]


def qr_svg(url: str) -> bytes:
    """The link as a QR code (SVG, error correction M: survives a smudged print)."""
    buffer = segno.make(url, error="m")
    out: bytes = buffer.svg_inline(scale=4, border=2).encode("utf-8")
    return out


def owner_view(platform: PaymentsHost, request: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    """What the payee sees of their request: everything, with its link and status."""
    amount = request["amount_minor"]
    return {
        "id": request["id"],
        "account_id": request["account_id"],
        "currency": request["currency"],
        "exponent": request["exponent"],
        "amount_minor": amount,
        "amount": None if amount is None else format_minor(amount, request["exponent"]),
        "memo": request["memo"],
        "single_use": request["single_use"],
        "show_name_public": request["show_name_public"],
        "created_at_ms": request["created_at_ms"],
        "expires_at_ms": request["expires_at_ms"],
        "status": status_of(platform, request),
        "paid_by_transfer_id": _paid_by(platform, request),
        "link": link(base_url, request),
    }


def view_for_payer(
    platform: PaymentsHost, request: Mapping[str, Any], *, signed_in: bool
) -> dict[str, Any]:
    """What whoever opens the link sees: the amount, memo and expiry the payee set, and the
    payee's masked name, which someone not signed in sees only if the payee chose to show it."""
    name = None
    name_kind = None
    if signed_in or request["show_name_public"]:
        with platform.platform_engine.connect() as conn:
            account = projection.read_account(conn, request["account_id"])
        if account is None:  # the request was made for a projected account
            raise NotFound(PeopleCode.PAYMENT_REQUEST_NOT_FOUND.value, "no such payment request")
        party = platform.party_names.name_of(
            account["owner"], business=account["kind"] == "merchant"
        )
        if party is not None:
            name, name_kind = mask_name(party), party.kind.value
    amount = request["amount_minor"]
    return {
        "payee_name": name,
        "payee_name_kind": name_kind,
        "payee_account_id": request["account_id"] if signed_in else None,
        "currency": request["currency"],
        "exponent": request["exponent"],
        "amount_minor": amount,
        "amount": None if amount is None else format_minor(amount, request["exponent"]),
        "memo": request["memo"],
        "single_use": request["single_use"],
        "expires_at_ms": request["expires_at_ms"],
        "status": status_of(platform, request),
    }


def list_requests(
    platform: PaymentsHost,
    *,
    account_id: str,
    base_url: str,
    before: str | None,
    limit: int,
) -> dict[str, Any]:
    """The account's payment requests, newest first; `before` is the previous page's
    `next_before` ("<created_at_ms>:<id>")."""
    table = payment_requests_table
    query = (
        select(table)
        .where(table.c.account_id == account_id)
        .order_by(table.c.created_at_ms.desc(), table.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        at_text, _, last_id = before.partition(":")
        if not at_text.isdigit() or not last_id:
            raise InvalidInput("cursor_invalid", "before is the next_before of the previous page")
        at_ms = int(at_text)
        query = query.where(
            or_(
                table.c.created_at_ms < at_ms,
                and_(table.c.created_at_ms == at_ms, table.c.id < last_id),
            )
        )
    with platform.platform_engine.connect() as conn:
        rows = [_row_json(row) for row in conn.execute(query)]
    views = [owner_view(platform, row, base_url) for row in rows]
    last = rows[-1] if len(rows) == limit else None
    return {
        "requests": views,
        "next_before": None if last is None else f"{last['created_at_ms']}:{last['id']}",
    }


def cancel_request(platform: PaymentsHost, *, request: Mapping[str, Any]) -> dict[str, Any]:
    """Stop a request taking payments (idempotent); a paid single-use one stays paid."""
    if request["cancelled_at_ms"] is None:
        with platform.platform_engine.begin() as conn:
            conn.execute(
                update(payment_requests_table)
                .where(
                    payment_requests_table.c.id == request["id"],
                    payment_requests_table.c.cancelled_at_ms.is_(None),
                )
                .values(cancelled_at_ms=platform.node.clock())
            )
    return read_request(platform, request_id=request["id"])

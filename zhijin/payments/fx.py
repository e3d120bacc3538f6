"""FX quotes and cross-currency payments: quote, lock and settle in one tx.

A payment is three linked same-currency transfers through the quoting provider's accounts:
payer -> source liquidity (the principal, carrying the pricing), payer -> spread account (the
spread, its own transfer), target liquidity -> beneficiary.  The amounts come from `calc`, whose
rounding always favours the liquidity provider and is named at each step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from zhijin.chain.errors import invariant
from zhijin.payments import calc, limits
from zhijin.payments.authorization import FX_PROVIDER_ROLES, Actor
from zhijin.payments.book import EVENT_FX_QUOTE_CREATED, Book, Env
from zhijin.payments.codes import Code, differs_in, refuse
from zhijin.payments.ledger import (
    book_leg,
    check_parties_open,
    load_parties,
    new_transfer,
    ok_result,
    refuse_if_different,
)
from zhijin.payments.records import (
    AccountKind,
    AccountStatus,
    FxDetails,
    FxQuote,
    Transfer,
    TransferKind,
)
from zhijin.payments.requests import SOURCE_SIDE, FxPaymentRequest, FxQuoteRequest

__all__ = ["SPREAD_LEG_SUFFIX", "TARGET_LEG_SUFFIX", "create_fx_quote", "pay_fx"]

SPREAD_LEG_SUFFIX = "~spread"
TARGET_LEG_SUFFIX = "~target"


def create_fx_quote(book: Book, actor: Actor, env: Env, request: FxQuoteRequest) -> dict[str, Any]:
    existing = book.quote(request.id)
    if existing is not None:
        refuse_if_different(
            (
                ("source_currency", existing.source_currency, request.source_currency),
                ("target_currency", existing.target_currency, request.target_currency),
                ("rate", existing.rate, request.rate),
                ("spread_bps", existing.spread_bps, request.spread_bps),
                ("expires_at_ms", existing.expires_at_ms, request.expires_at_ms),
                (
                    "source_liquidity_account_id",
                    existing.source_liquidity_account_id,
                    request.source_liquidity_account_id,
                ),
                (
                    "target_liquidity_account_id",
                    existing.target_liquidity_account_id,
                    request.target_liquidity_account_id,
                ),
                ("spread_account_id", existing.spread_account_id, request.spread_account_id),
                ("max_target_amount", existing.max_target_amount, request.max_target_amount),
            )
        )
        return ok_result(request.id, exists=True)
    expires_at_ms = request.expires_at_ms
    if (
        type(expires_at_ms) is not int
        or not env.time_ms < expires_at_ms <= env.time_ms + limits.QUOTE_TTL_MS_MAX
    ):
        refuse(
            Code.QUOTE_EXPIRY_INVALID,
            f"expires_at_ms is a block time within {limits.QUOTE_TTL_MS_MAX} ms from now",
        )
    member = actor.own_member
    if member is None or member.role not in FX_PROVIDER_ROLES:
        refuse(Code.NOT_AUTHORIZED, "only an FX liquidity provider member may quote")
    accounts = []
    for account_id, code, allowed_kinds in (
        (
            request.source_liquidity_account_id,
            request.source_currency,
            (AccountKind.FX_LIQUIDITY,),
        ),
        (
            request.target_liquidity_account_id,
            request.target_currency,
            (AccountKind.FX_LIQUIDITY,),
        ),
        (
            request.spread_account_id,
            request.source_currency,
            (AccountKind.FX_LIQUIDITY, AccountKind.FEE),
        ),
    ):
        account = book.account(account_id)
        if account is None:
            refuse(Code.LIQUIDITY_ACCOUNT_NOT_FOUND, f"no account {account_id}")
        accounts.append((account, code, allowed_kinds))
    for account, code, allowed_kinds in accounts:
        if (
            account.kind not in allowed_kinds
            or account.currency != code
            or not actor.owns(member, account)
            or account.status != AccountStatus.OPEN
        ):
            refuse(
                Code.LIQUIDITY_ACCOUNT_INVALID,
                f"account {account.id} must be an open {code} "
                f"{'/'.join(allowed_kinds)} account the provider owns",
            )
    quote = FxQuote(
        id=request.id,
        provider=member.did,
        source_currency=request.source_currency,
        target_currency=request.target_currency,
        rate=request.rate,
        spread_bps=request.spread_bps,
        expires_at_ms=expires_at_ms,
        source_liquidity_account_id=request.source_liquidity_account_id,
        target_liquidity_account_id=request.target_liquidity_account_id,
        spread_account_id=request.spread_account_id,
        max_target_amount=request.max_target_amount,
        used_target_amount=0,
        created_at_ms=env.time_ms,
        created_height=env.height,
    )
    book.put_quote(quote)
    book.emit(EVENT_FX_QUOTE_CREATED, quote.to_json())
    return ok_result(request.id, exists=False)


def _fx_result(principal: Transfer, *, exists: bool) -> dict[str, Any]:
    fx = principal.fx
    invariant(fx is not None, "an FX payment's principal leg carries its pricing")
    assert fx is not None
    transfer_ids = [principal.id]
    if fx.spread_transfer_id is not None:
        transfer_ids.append(fx.spread_transfer_id)
    transfer_ids.append(fx.target_transfer_id)
    return ok_result(
        principal.id,
        exists=exists,
        quote_id=fx.quote_id,
        source_currency=fx.source_currency,
        target_currency=fx.target_currency,
        source_amount=fx.source_amount,
        spread_amount=fx.spread_amount,
        target_amount=fx.target_amount,
        rate=fx.rate,
        rounding=fx.rounding,
        transfer_ids=transfer_ids,
    )


def _existing_fx(request: FxPaymentRequest, existing: Transfer) -> dict[str, Any]:
    fx = existing.fx
    differing = ["kind"] if fx is None or existing.kind != TransferKind.FX_SOURCE else []
    if fx is not None:
        differing += [
            name
            for name, stored, asked in (
                ("quote_id", fx.quote_id, request.quote_id),
                ("debit_account_id", existing.debit_account_id, request.debit_account_id),
                ("credit_account_id", fx.credit_account_id, request.credit_account_id),
                ("side", fx.requested_side, request.side),
                ("amount", fx.requested_amount, request.amount),
                ("reference", existing.reference, request.reference),
            )
            if stored != asked
        ]
    if differing:
        refuse(Code.EXISTS_WITH_DIFFERENT_FIELDS, differs_in(differing))
    return _fx_result(existing, exists=True)


def pay_fx(book: Book, actor: Actor, env: Env, request: FxPaymentRequest) -> dict[str, Any]:
    """Quote, lock and settle a cross-currency payment in this one tx.

    Three linked same-currency transfers: payer -> source liquidity (principal), payer ->
    spread account (the spread, its own transfer), target liquidity -> beneficiary.  The legs
    are booked in that order; the caller's atomic group undoes all of them if one fails.
    """
    existing = book.transfer(request.id)
    if existing is not None:
        return _existing_fx(request, existing)
    quote = book.quote(request.quote_id)
    if quote is None:
        refuse(Code.QUOTE_NOT_FOUND, f"no quote {request.quote_id}")
    if env.time_ms >= quote.expires_at_ms:
        refuse(Code.QUOTE_EXPIRED, f"quote {quote.id} expired at {quote.expires_at_ms}")
    payer, beneficiary = load_parties(book, request.debit_account_id, request.credit_account_id)
    if payer.currency != quote.source_currency or beneficiary.currency != quote.target_currency:
        refuse(
            Code.CURRENCY_MISMATCH,
            f"quote {quote.id} sells {quote.target_currency} for {quote.source_currency}",
        )
    if not actor.may_debit(payer):
        refuse(Code.NOT_AUTHORIZED, f"the sender may not debit account {payer.id}")
    check_parties_open(payer, beneficiary)
    source_liquidity = book.account(quote.source_liquidity_account_id)
    target_liquidity = book.account(quote.target_liquidity_account_id)
    spread_account = book.account(quote.spread_account_id)
    for account in (source_liquidity, target_liquidity, spread_account):
        if account is None or account.status != AccountStatus.OPEN:
            refuse(Code.LIQUIDITY_ACCOUNT_UNAVAILABLE, f"quote {quote.id}'s accounts are not open")
    assert source_liquidity is not None and target_liquidity is not None
    if payer.id in (source_liquidity.id, quote.spread_account_id) or (
        beneficiary.id == target_liquidity.id
    ):
        refuse(
            Code.LIQUIDITY_ACCOUNT_UNAVAILABLE,
            "the payer and beneficiary cannot be the quote's own accounts",
        )
    amounts = _fx_amounts(request, quote, source_liquidity.exponent, target_liquidity.exponent)
    if amounts.principal_amount <= 0 or amounts.target_amount <= 0:
        refuse(Code.AMOUNT_TOO_SMALL, "the amount converts to nothing at this rate")
    used = quote.used_target_amount + amounts.target_amount
    if quote.max_target_amount is not None and used > quote.max_target_amount:
        refuse(
            Code.QUOTE_CAPACITY_EXCEEDED,
            f"quote {quote.id} has {quote.max_target_amount - quote.used_target_amount} left",
        )
    book.put_quote(replace(quote, used_target_amount=used))
    _book_fx_legs(book, env, request, quote, amounts)
    principal = book.transfer(request.id)
    assert principal is not None
    return _fx_result(principal, exists=False)


def _fx_amounts(
    request: FxPaymentRequest, quote: FxQuote, source_exponent: int, target_exponent: int
) -> calc.FxAmounts:
    rate = calc.parse_rate(quote.rate)
    invariant(rate is not None, f"quote {quote.id} has a valid rate")
    assert rate is not None
    if request.side == SOURCE_SIDE:
        return calc.fx_from_source(
            source_amount=request.amount,
            rate=rate,
            spread_bps=quote.spread_bps,
            source_exponent=source_exponent,
            target_exponent=target_exponent,
        )
    return calc.fx_from_target(
        target_amount=request.amount,
        rate=rate,
        spread_bps=quote.spread_bps,
        source_exponent=source_exponent,
        target_exponent=target_exponent,
    )


def _book_fx_legs(
    book: Book,
    env: Env,
    request: FxPaymentRequest,
    quote: FxQuote,
    amounts: calc.FxAmounts,
) -> None:
    spread_id = request.id + SPREAD_LEG_SUFFIX if amounts.spread_amount else None
    target_id = request.id + TARGET_LEG_SUFFIX
    details = FxDetails(
        quote_id=quote.id,
        requested_side=request.side,
        requested_amount=request.amount,
        credit_account_id=request.credit_account_id,
        source_currency=quote.source_currency,
        target_currency=quote.target_currency,
        rate=quote.rate,
        spread_bps=quote.spread_bps,
        source_amount=amounts.source_amount,
        spread_amount=amounts.spread_amount,
        target_amount=amounts.target_amount,
        rounding=(
            calc.FX_TARGET_ROUNDING if request.side == SOURCE_SIDE else calc.FX_PRINCIPAL_ROUNDING
        ),
        spread_transfer_id=spread_id,
        target_transfer_id=target_id,
    )
    book_leg(
        book,
        new_transfer(
            env,
            transfer_id=request.id,
            debit=request.debit_account_id,
            credit=quote.source_liquidity_account_id,
            amount=amounts.principal_amount,
            code=quote.source_currency,
            reference=request.reference,
            kind=TransferKind.FX_SOURCE.value,
            fx=details,
        ),
    )
    if spread_id is not None:
        book_leg(
            book,
            new_transfer(
                env,
                transfer_id=spread_id,
                debit=request.debit_account_id,
                credit=quote.spread_account_id,
                amount=amounts.spread_amount,
                code=quote.source_currency,
                kind=TransferKind.FX_SPREAD.value,
                parent_id=request.id,
            ),
        )
    book_leg(
        book,
        new_transfer(
            env,
            transfer_id=target_id,
            debit=quote.target_liquidity_account_id,
            credit=request.credit_account_id,
            amount=amounts.target_amount,
            code=quote.target_currency,
            reference=request.reference,
            kind=TransferKind.FX_TARGET.value,
            parent_id=request.id,
        ),
        exceeds_credits=Code.LIQUIDITY_INSUFFICIENT,
    )

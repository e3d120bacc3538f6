"""Refunds on chain: a payment received is returned, in part or in full, by its payee, and the
refunds of one payment never return more than it brought.

`refund_transfer` books a single-phase client transfer from the original's credit account back
to its debit account, with `parent_id` naming the original (so the link is on chain, in the
record every member keeps), and keeps the payment's running total under
`payments/refunded/<original id>` (`{"refunded_amount", "refunds", "transfer_id"}`).  Because a
block executes its txs one after another against the state the previous ones left, two refunds
racing for the same remainder cannot both pass: the second sees the first's total.  A retry
with the same id and body answers `exists`, like any transfer; the same id with another body is
`exists_with_different_fields`.  Precedence: `codes.REFUND_PRECEDENCE`.
"""

from __future__ import annotations

from typing import Any

from zhijin.payments.authorization import Actor
from zhijin.payments.book import Book, Env
from zhijin.payments.codes import Code, refuse
from zhijin.payments.ledger import (
    book_leg,
    check_parties_open,
    load_parties,
    new_transfer,
    ok_result,
    refuse_if_different,
)
from zhijin.payments.records import Transfer, TransferFlag, TransferKind
from zhijin.payments.requests import RefundRequest

__all__ = ["REFUNDABLE_FLAGS", "refund_transfer"]

# A payment that moved money once and for all: single-phase (perhaps in a linked chain) or the
# posting of a hold.  A hold itself, a void, a fee or FX leg and a refund are not refundable.
REFUNDABLE_FLAGS = frozenset({TransferFlag.LINKED.value, TransferFlag.POST_PENDING_TRANSFER.value})
_TRANSFER = TransferKind.TRANSFER.value


def _refundable(original: Transfer) -> bool:
    return (
        original.kind == _TRANSFER
        and original.parent_id is None
        and REFUNDABLE_FLAGS.issuperset(original.flags)
    )


def _result(refund: Transfer, *, exists: bool, refunded: int, original: Transfer) -> dict[str, Any]:
    return ok_result(
        refund.id,
        exists=exists,
        original_transfer_id=original.id,
        amount=refund.amount,
        refunded_amount=refunded,
        original_amount=original.amount,
    )


def _existing(book: Book, request: RefundRequest, existing: Transfer) -> dict[str, Any]:
    refuse_if_different(
        (
            ("kind", existing.kind, _TRANSFER),
            ("original_transfer_id", existing.parent_id, request.original_id),
            ("amount", existing.amount, request.amount),
            ("reference", existing.reference, request.reference),
        )
    )
    original = book.transfer(request.original_id)
    assert original is not None  # a refund's original is written before it, forever
    refunded, _ = book.refund_total(original.id)
    return _result(existing, exists=True, refunded=refunded, original=original)


def refund_transfer(book: Book, actor: Actor, env: Env, request: RefundRequest) -> dict[str, Any]:
    """Return `request.amount` of the original payment to its payer, never past what it brought."""
    existing = book.transfer(request.id)
    if existing is not None:
        return _existing(book, request, existing)
    original = book.transfer(request.original_id)
    if original is None:
        refuse(Code.REFUND_ORIGINAL_NOT_FOUND, f"no transfer {request.original_id}")
    if not _refundable(original):
        refuse(
            Code.REFUND_ORIGINAL_INVALID,
            f"transfer {original.id} is not a posted single-phase client payment",
        )
    # The payee pays back: the original's credit account is debited, its debit account credited.
    payee, payer = load_parties(book, original.credit_account_id, original.debit_account_id)
    if not actor.may_debit(payee):
        refuse(Code.NOT_AUTHORIZED, f"the sender may not debit account {payee.id}")
    check_parties_open(payee, payer)
    refunded, refunds = book.refund_total(original.id)
    if refunded + request.amount > original.amount:
        refuse(
            Code.REFUND_EXCEEDS_ORIGINAL,
            f"transfer {original.id} has {original.amount - refunded} left to refund",
        )
    refund = new_transfer(
        env,
        transfer_id=request.id,
        debit=payee.id,
        credit=payer.id,
        amount=request.amount,
        code=original.currency,
        reference=request.reference,
        parent_id=original.id,
    )
    book_leg(book, refund)
    book.put_refund_total(original.id, refunded + request.amount, refunds + 1)
    return _result(refund, exists=False, refunded=refunded + request.amount, original=original)

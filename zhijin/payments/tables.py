"""Payments' own off-chain tables in the platform database (not projections: `zhijin reindex`
does not rebuild them, and they hold nothing the chain must vouch for).

- `payments_payment_requests`: collection QR codes and payment links.  What a payment request
  asks for is the payee's choice and lives here; whether a single-use request was paid is the
  chain's answer (the transfer `pr.<id>` exists), never a flag here that could race.
- `payments_refund_totals` and `payments_refunds`: how much of a payment was refunded, claimed
  by one conditional UPDATE before the refund is submitted, so two refunds at once can never
  together pass the original amount (see `merchant.claim_refund`).

Created at node start by the manifest's `PaymentsTables` service (idempotent).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from zhijin.payments import limits

__all__ = [
    "PaymentsTables",
    "metadata",
    "payment_requests_table",
    "refund_totals_table",
    "refunds_table",
]

metadata = MetaData()

payment_requests_table = Table(
    "payments_payment_requests",
    metadata,
    Column("id", String(20), primary_key=True),  # pr_<16 hex>: names the request in the API
    # The link's secret part.  Kept as it is: the link is meant to be printed on a QR code and
    # shown again to its payee; it grants no more than seeing the request and paying it.
    Column("token", String(64), nullable=False, unique=True),
    Column("account_id", String(limits.ID_CHARS_MAX), nullable=False),
    Column("owner", String(limits.OWNER_CHARS_MAX), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("exponent", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=True),  # None: the payer enters the amount
    Column("memo", String(limits.PAYMENT_REQUEST_MEMO_CHARS_MAX), nullable=True),
    Column("single_use", Boolean, nullable=False),
    Column("show_name_public", Boolean, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("cancelled_at_ms", BigInteger, nullable=True),
    Index("ix_payments_payment_requests_account", "account_id", "created_at_ms"),
)

refund_totals_table = Table(
    "payments_refund_totals",
    metadata,
    Column("original_id", String(limits.TRANSFER_ID_CHARS_MAX), primary_key=True),
    Column("original_amount", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),  # claimed or booked
)

refunds_table = Table(
    "payments_refunds",
    metadata,
    Column("id", String(limits.ID_CHARS_MAX), primary_key=True),  # the refund transfer's id
    Column("original_id", String(limits.TRANSFER_ID_CHARS_MAX), nullable=False),
    Column("account_id", String(limits.ID_CHARS_MAX), nullable=False),  # the merchant's
    Column("amount_minor", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_payments_refunds_original", "original_id"),
    Index("ix_payments_refunds_account", "account_id", "created_at_ms"),
)


class PaymentsTables:
    """The node service that creates these tables when the node starts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self) -> None:
        metadata.create_all(self.engine)

    def stop(self) -> int | None:
        return None

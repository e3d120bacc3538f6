"""The ledger's stored records: small immutable types with their canonical-JSON form.

Each record lives under one state key (see `keys`), so a transfer touches few keys: the account
record carries its four balance counters, and a transfer record is written once and never edited
(a pending transfer's resolution lives in its own `PendingState` record).

Accounts and transfers are written on every payment, so they write their canonical JSON out
field by field, in JCS key order, without a validation pass (`canonical`); the other records
(and a transfer carrying FX pricing, whose amounts are derived) are encoded and validated by
`codec.canonical`.  The written-out JSON is in the canonical domain because:

- every string is a plain `str`: ids, owners, currencies and references were checked with
  `type(x) is str` by `requests`, kinds, statuses and flags are enum `.value`s, and the rest
  (custodians, a hold's fields) were decoded from stored JSON; none holds a lone surrogate
  (ids and currencies are ASCII, references printable, the rest valid UTF-8 when stored), and
  `codec.utf8` refuses one as `canonical` would;
- a record reaches the state only through `Book.flush`, so only if every check of its item
  passed: an amount and a fee were booked by `ledger.book_leg`, whose overflow checks keep each
  at most AMOUNT_MAX (and a post or void moves at most its hold's amount); timeouts, credit
  limits and amounts asked for are bounded by `requests`; exponents are a currency's (0 to 4);
  the counters change only in `ledger._moved`, which asserts each stays within 0..AMOUNT_MAX;
- times and heights are the block's, which its header (canonical JSON) bounds;
- integers are plain `int`s (amounts and limits were checked with `type(x) is int`, the rest are
  sums of those or the block's), so `{n}` prints exactly what the canonical encoder prints.

Tests check `r.canonical() == codec.canonical(r.to_json())` over records with every field at its
bounds and strings that need escaping, and every test chain decodes every written value
strictly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from zhijin.chain.codec import canonical, json_string_text, utf8
from zhijin.chain.errors import invariant

__all__ = [
    "Account",
    "AccountFlag",
    "AccountKind",
    "AccountStatus",
    "FeeSchedule",
    "FxDetails",
    "FxQuote",
    "PendingState",
    "PendingStatus",
    "Transfer",
    "TransferFlag",
    "TransferKind",
    "keys",
]


class AccountKind(StrEnum):
    CUSTOMER = "customer"
    MERCHANT = "merchant"
    SETTLEMENT = "settlement"  # the platform's side of money entering or leaving (nostro)
    FEE = "fee"
    FX_LIQUIDITY = "fx_liquidity"
    LOAN = "loan"
    ESCROW = "escrow"


# Accounts holding someone's money must never be overdrawn (beyond an explicit credit limit).
# Settlement and loan accounts are debit-normal: their balance is the platform's claim, so
# they carry no such flag.
OVERDRAFT_PROTECTED_KINDS = frozenset(
    {
        AccountKind.CUSTOMER,
        AccountKind.MERCHANT,
        AccountKind.ESCROW,
        AccountKind.FEE,
        AccountKind.FX_LIQUIDITY,
    }
)
# Accounts that only a member may own: the platform's own books.
PLATFORM_KINDS = frozenset({AccountKind.SETTLEMENT, AccountKind.FEE, AccountKind.FX_LIQUIDITY})


class AccountFlag(StrEnum):
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class AccountStatus(StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class TransferFlag(StrEnum):
    LINKED = "linked"
    PENDING = "pending"
    POST_PENDING_TRANSFER = "post_pending_transfer"
    VOID_PENDING_TRANSFER = "void_pending_transfer"


class TransferKind(StrEnum):
    """Who asked for a transfer: the client, or the contract booking a leg of the client's."""

    TRANSFER = "transfer"
    FEE = "fee"
    FX_SOURCE = "fx_source"  # payer -> source liquidity (principal)
    FX_SPREAD = "fx_spread"  # payer -> provider's spread account
    FX_TARGET = "fx_target"  # target liquidity -> beneficiary


class PendingStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


# The flags every transfer's checks test, read once: on Python 3.11 reading an enum member
# (`TransferFlag.PENDING`) goes through EnumType's `__getattr__` hook, about 150 ns, which each
# transfer would pay a dozen times.  Stored flags are these plain strings.
_DEBITS_MUST_NOT_EXCEED_CREDITS = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value
_CREDITS_MUST_NOT_EXCEED_DEBITS = AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS.value
_PENDING = TransferFlag.PENDING.value
_POST_PENDING_TRANSFER = TransferFlag.POST_PENDING_TRANSFER.value
_VOID_PENDING_TRANSFER = TransferFlag.VOID_PENDING_TRANSFER.value


def _quoted_or_null(text: str | None) -> str:
    return "null" if text is None else json_string_text(text)


def _quoted_list(texts: tuple[str, ...]) -> str:
    return "[" + ",".join(map(json_string_text, texts)) + "]"


class keys:  # lower case: a namespace of key builders, read as `keys.account(id)`
    """The state key layout: every key of this domain is under `payments/`."""

    ACCOUNT = "payments/account/"
    TRANSFER = "payments/transfer/"
    PENDING = "payments/pending/"
    EXPIRY = "payments/expiry/"
    QUOTE = "payments/quote/"
    REFUNDED = "payments/refunded/"
    FEE = "payments/fee/"
    MESSAGE = "payments/message/"
    EXPIRY_TIME_DIGITS = 20  # zero-padded block time, so key order is time order

    @staticmethod
    def account(account_id: str) -> str:
        return keys.ACCOUNT + account_id

    @staticmethod
    def transfer(transfer_id: str) -> str:
        return keys.TRANSFER + transfer_id

    @staticmethod
    def pending(transfer_id: str) -> str:
        return keys.PENDING + transfer_id

    @staticmethod
    def expiry(expires_at_ms: int, transfer_id: str) -> str:
        return f"{keys.EXPIRY}{expires_at_ms:0{keys.EXPIRY_TIME_DIGITS}d}/{transfer_id}"

    @staticmethod
    def quote(quote_id: str) -> str:
        return keys.QUOTE + quote_id

    @staticmethod
    def refunded(transfer_id: str) -> str:
        return keys.REFUNDED + transfer_id

    @staticmethod
    def fee(product: str, currency: str) -> str:
        return f"{keys.FEE}{product}/{currency}"

    @staticmethod
    def message(sender: str, message_key: str) -> str:
        """A file's message id (the hashed pain.001 MsgId per party) as claimed by `sender`:
        hashed again with the sender, so each sender claims in its own name only."""
        return keys.MESSAGE + hashlib.sha256(canonical([sender, message_key])).hexdigest()


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    owner: str  # a DID, "role:<member role>" or "contract:<contract name>"
    custodian: str | None  # the member that opened it, None for a contract's own account
    currency: str
    exponent: int  # the currency's minor-unit digits when the account was opened
    kind: str
    flags: tuple[str, ...]  # sorted AccountFlag values
    credit_limit: int  # how far a debits_must_not_exceed_credits account may go below zero
    reference: str | None
    status: str
    created_at_ms: int
    created_height: int
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def debits_must_not_exceed_credits(self) -> bool:
        return _DEBITS_MUST_NOT_EXCEED_CREDITS in self.flags

    @property
    def credits_must_not_exceed_debits(self) -> bool:
        return _CREDITS_MUST_NOT_EXCEED_DEBITS in self.flags

    @property
    def balance_posted(self) -> int:
        """Credits minus debits, posted only: what a customer sees as their balance."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What a debit may still take: posted credits less all debits, plus the credit limit."""
        return self.credits_posted + self.credit_limit - self.debits_posted - self.debits_pending

    def with_balances(
        self,
        *,
        debits_pending: int,
        debits_posted: int,
        credits_pending: int,
        credits_posted: int,
    ) -> Account:
        """This account with new counters; built directly since it is on every transfer's path
        (dataclasses.replace costs several times more), and positionally, in field order (a
        keyword call costs a quarter more)."""
        return Account(
            self.id,
            self.owner,
            self.custodian,
            self.currency,
            self.exponent,
            self.kind,
            self.flags,
            self.credit_limit,
            self.reference,
            self.status,
            self.created_at_ms,
            self.created_height,
            debits_pending,
            debits_posted,
            credits_pending,
            credits_posted,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "custodian": self.custodian,
            "currency": self.currency,
            "exponent": self.exponent,
            "kind": self.kind,
            "flags": list(self.flags),
            "credit_limit": self.credit_limit,
            "reference": self.reference,
            "status": self.status,
            "created_at_ms": self.created_at_ms,
            "created_height": self.created_height,
            "debits_pending": self.debits_pending,
            "debits_posted": self.debits_posted,
            "credits_pending": self.credits_pending,
            "credits_posted": self.credits_posted,
        }

    def canonical(self) -> bytes:
        """`codec.canonical(self.to_json())`, written out: no dict, no sorting, no validation.

        Every transfer writes two accounts, and this costs about a third of the generic path.
        The keys are in JCS order; the module docstring says why the values are in the domain.
        """
        return utf8(
            f'{{"created_at_ms":{self.created_at_ms},"created_height":{self.created_height},'
            f'"credit_limit":{self.credit_limit},"credits_pending":{self.credits_pending},'
            f'"credits_posted":{self.credits_posted},"currency":{json_string_text(self.currency)},'
            f'"custodian":{_quoted_or_null(self.custodian)},'
            f'"debits_pending":{self.debits_pending},"debits_posted":{self.debits_posted},'
            f'"exponent":{self.exponent},"flags":{_quoted_list(self.flags)},'
            f'"id":{json_string_text(self.id)},"kind":{json_string_text(self.kind)},'
            f'"owner":{json_string_text(self.owner)},'
            f'"reference":{_quoted_or_null(self.reference)},'
            f'"status":{json_string_text(self.status)}}}'
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        # Positional and field by field: every transfer reads two accounts, and building a
        # keyword dict first costs more than the record itself.
        invariant(len(data) == _ACCOUNT_JSON_FIELDS, "an account record has its 16 fields")
        return cls(
            data["id"],
            data["owner"],
            data["custodian"],
            data["currency"],
            data["exponent"],
            data["kind"],
            tuple(data["flags"]),
            data["credit_limit"],
            data["reference"],
            data["status"],
            data["created_at_ms"],
            data["created_height"],
            data["debits_pending"],
            data["debits_posted"],
            data["credits_pending"],
            data["credits_posted"],
        )


@dataclass(frozen=True, slots=True)
class FxDetails:
    """How a cross-currency payment was priced; carried by its principal (fx_source) leg."""

    quote_id: str
    requested_side: str  # "source" or "target": which amount the payer fixed
    requested_amount: int
    credit_account_id: str  # the beneficiary, paid by the fx_target leg
    source_currency: str
    target_currency: str
    rate: str
    spread_bps: int
    source_amount: int  # debited from the payer in total: principal + spread
    spread_amount: int
    target_amount: int
    rounding: str  # the decimal.ROUND_* mode used for the conversion
    spread_transfer_id: str | None
    target_transfer_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote_id,
            "requested_side": self.requested_side,
            "requested_amount": self.requested_amount,
            "credit_account_id": self.credit_account_id,
            "source_currency": self.source_currency,
            "target_currency": self.target_currency,
            "rate": self.rate,
            "spread_bps": self.spread_bps,
            "source_amount": self.source_amount,
            "spread_amount": self.spread_amount,
            "target_amount": self.target_amount,
            "rounding": self.rounding,
            "spread_transfer_id": self.spread_transfer_id,
            "target_transfer_id": self.target_transfer_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FxDetails:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Transfer:
    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    flags: tuple[str, ...]  # sorted TransferFlag values, as requested
    pending_id: str | None
    timeout_ms: int  # 0: a pending transfer that never expires, or not pending
    product: str | None
    reference: str | None
    kind: str
    parent_id: str | None  # for a leg the contract booked: the client's transfer id
    fee_amount: int  # booked as the `<id>~fee` transfer; 0 when no fee
    fx: FxDetails | None
    created_at_ms: int
    created_height: int
    tx_hash: str

    @property
    def is_pending(self) -> bool:
        return _PENDING in self.flags

    @property
    def is_post(self) -> bool:
        return _POST_PENDING_TRANSFER in self.flags

    @property
    def is_void(self) -> bool:
        return _VOID_PENDING_TRANSFER in self.flags

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "amount": self.amount,
            "currency": self.currency,
            "flags": list(self.flags),
            "pending_id": self.pending_id,
            "timeout_ms": self.timeout_ms,
            "product": self.product,
            "reference": self.reference,
            "kind": self.kind,
            "parent_id": self.parent_id,
            "fee_amount": self.fee_amount,
            "fx": None if self.fx is None else self.fx.to_json(),
            "created_at_ms": self.created_at_ms,
            "created_height": self.created_height,
            "tx_hash": self.tx_hash,
        }

    def canonical(self) -> bytes:
        """`codec.canonical(self.to_json())`, written out like `Account.canonical`.

        A transfer carrying FX pricing takes the generic, validating path: its amounts are
        derived by `calc`, and FX payments are rare.
        """
        if self.fx is not None:
            return canonical(self.to_json())
        return utf8(
            f'{{"amount":{self.amount},"created_at_ms":{self.created_at_ms},'
            f'"created_height":{self.created_height},'
            f'"credit_account_id":{json_string_text(self.credit_account_id)},'
            f'"currency":{json_string_text(self.currency)},'
            f'"debit_account_id":{json_string_text(self.debit_account_id)},'
            f'"fee_amount":{self.fee_amount},"flags":{_quoted_list(self.flags)},"fx":null,'
            f'"id":{json_string_text(self.id)},"kind":{json_string_text(self.kind)},'
            f'"parent_id":{_quoted_or_null(self.parent_id)},'
            f'"pending_id":{_quoted_or_null(self.pending_id)},'
            f'"product":{_quoted_or_null(self.product)},'
            f'"reference":{_quoted_or_null(self.reference)},"timeout_ms":{self.timeout_ms},'
            f'"tx_hash":{json_string_text(self.tx_hash)}}}'
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transfer:
        invariant(len(data) == _TRANSFER_JSON_FIELDS, "a transfer record has its 17 fields")
        fx = data["fx"]
        return cls(
            data["id"],
            data["debit_account_id"],
            data["credit_account_id"],
            data["amount"],
            data["currency"],
            tuple(data["flags"]),
            data["pending_id"],
            data["timeout_ms"],
            data["product"],
            data["reference"],
            data["kind"],
            data["parent_id"],
            data["fee_amount"],
            None if fx is None else FxDetails.from_json(fx),
            data["created_at_ms"],
            data["created_height"],
            data["tx_hash"],
        )


@dataclass(frozen=True, slots=True)
class PendingState:
    """Where a pending transfer (a hold) stands; resolved at most once."""

    transfer_id: str
    status: str
    expires_at_ms: int  # 0: never
    resolved_by: str | None  # the post or void transfer's id; None while pending or if expired
    resolved_at_ms: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "status": self.status,
            "expires_at_ms": self.expires_at_ms,
            "resolved_by": self.resolved_by,
            "resolved_at_ms": self.resolved_at_ms,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())  # validated: see the module docstring

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingState:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class FxQuote:
    """A liquidity provider's firm offer: target units per source unit, until expires_at_ms."""

    id: str
    provider: str  # the quoting member's DID
    source_currency: str
    target_currency: str
    rate: str  # decimal string: target major units per source major unit, before the spread
    spread_bps: int
    expires_at_ms: int
    source_liquidity_account_id: str
    target_liquidity_account_id: str
    spread_account_id: str
    max_target_amount: int | None  # capacity over all payments under this quote; None: no cap
    used_target_amount: int
    created_at_ms: int
    created_height: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "source_currency": self.source_currency,
            "target_currency": self.target_currency,
            "rate": self.rate,
            "spread_bps": self.spread_bps,
            "expires_at_ms": self.expires_at_ms,
            "source_liquidity_account_id": self.source_liquidity_account_id,
            "target_liquidity_account_id": self.target_liquidity_account_id,
            "spread_account_id": self.spread_account_id,
            "max_target_amount": self.max_target_amount,
            "used_target_amount": self.used_target_amount,
            "created_at_ms": self.created_at_ms,
            "created_height": self.created_height,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())  # validated: see the module docstring

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FxQuote:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The fee of one product in one currency: fixed + amount x rate, clamped to [min, max]."""

    product: str
    currency: str
    fee_account_id: str
    fixed_amount: int
    rate_bps: int
    min_amount: int
    max_amount: int | None
    rounding: str  # decimal.ROUND_* applied to amount x rate
    setter: str  # the member that set it; only it may change it
    version: int
    updated_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "currency": self.currency,
            "fee_account_id": self.fee_account_id,
            "fixed_amount": self.fixed_amount,
            "rate_bps": self.rate_bps,
            "min_amount": self.min_amount,
            "max_amount": self.max_amount,
            "rounding": self.rounding,
            "setter": self.setter,
            "version": self.version,
            "updated_at_ms": self.updated_at_ms,
        }

    def canonical(self) -> bytes:
        return canonical(self.to_json())  # validated: see the module docstring

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeeSchedule:
        return cls(**data)


_ACCOUNT_JSON_FIELDS = len(Account.__slots__)
_TRANSFER_JSON_FIELDS = len(Transfer.__slots__)

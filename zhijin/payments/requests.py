"""Request validation: JSON args in, small immutable request types out, or a `PaymentsError`.

These checks need no state, so they run first (see the precedence tables in `codes`).  Each
parser checks in exactly its table's order.  Types are checked with `type(x) is int`, so a bool
is never an amount and a float or a numeric string is refused, whatever the wire allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from zhijin.chain.genesis import MEMBER_ROLES
from zhijin.payments import calc, currency, limits
from zhijin.payments.codes import Code, refuse
from zhijin.payments.records import (
    OVERDRAFT_PROTECTED_KINDS,
    AccountFlag,
    AccountKind,
    AccountStatus,
    TransferFlag,
)

__all__ = [
    "AccountRequest",
    "FeeScheduleRequest",
    "FxPaymentRequest",
    "FxQuoteRequest",
    "RefundRequest",
    "StatusRequest",
    "TransferRequest",
    "check_amount",
    "is_valid_id",
    "is_valid_transfer_id",
    "parse_account",
    "parse_fee_schedule",
    "parse_fx_payment",
    "parse_fx_quote",
    "parse_refund",
    "parse_status",
    "parse_transfer",
    "raw_linked",
]

_ID = re.compile(limits.ID_PATTERN)
_PRODUCT = re.compile(limits.PRODUCT_PATTERN)
# DID syntax (W3C DID Core): did:<method>:<method-specific id>.
_DID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%-]+")
_CONTRACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TRANSFER_FLAGS = frozenset(flag.value for flag in TransferFlag)
_ACCOUNT_FLAGS = frozenset(flag.value for flag in AccountFlag)
_ACCOUNT_KINDS = frozenset(kind.value for kind in AccountKind)
_STATUSES = frozenset(status.value for status in AccountStatus)
# Read once: on Python 3.11 each enum member access costs an attribute hook (see `records`).
_LINKED = TransferFlag.LINKED.value
_PENDING = TransferFlag.PENDING.value
_POST_PENDING_TRANSFER = TransferFlag.POST_PENDING_TRANSFER.value
_VOID_PENDING_TRANSFER = TransferFlag.VOID_PENDING_TRANSFER.value
_TWO_PHASE = frozenset({_PENDING, _POST_PENDING_TRANSFER, _VOID_PENDING_TRANSFER})


def is_valid_id(value: object) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def is_valid_transfer_id(value: object) -> TypeGuard[str]:
    """The id of any transfer, a client's or a leg the contract booked (`<id>~fee`): what the
    contract's `get_transfer` accepts, and the API's transfer paths with it."""
    return type(value) is str and 0 < len(value) <= limits.TRANSFER_ID_CHARS_MAX


def check_amount(value: object, *, name: str = "amount") -> int:
    """A strictly positive integer number of minor units, at most 2**63 - 1."""
    if type(value) is not int:
        refuse(Code.AMOUNT_MUST_BE_INTEGER, f"{name} must be an integer number of minor units")
    if value <= 0:
        refuse(Code.AMOUNT_MUST_BE_POSITIVE, f"{name} must be positive")
    if value > limits.AMOUNT_MAX:
        refuse(Code.AMOUNT_EXCEEDS_MAXIMUM, f"{name} must be at most {limits.AMOUNT_MAX}")
    return value


def _optional_reference(value: object) -> str | None:
    if value is None:
        return None
    if (
        type(value) is not str
        or not 0 < len(value) <= limits.REFERENCE_CHARS_MAX
        or not value.isprintable()
    ):
        refuse(
            Code.REFERENCE_INVALID,
            f"reference is 1 to {limits.REFERENCE_CHARS_MAX} printable characters",
        )
    return value


def _flags(value: object, known: frozenset[str]) -> tuple[str, ...]:
    if type(value) is not list or any(type(flag) is not str or flag not in known for flag in value):
        refuse(Code.FLAGS_INVALID, f"flags is a list of: {', '.join(sorted(known))}")
    if len(set(value)) != len(value):
        refuse(Code.FLAGS_INVALID, "flags must not repeat")
    return tuple(sorted(value))


def _fields(item: object, known: frozenset[str], not_object: Code) -> dict[str, Any]:
    if type(item) is not dict:
        refuse(not_object, "expected a JSON object")
    if not known.issuperset(item):
        unknown = item.keys() - known
        refuse(
            Code.FIELDS_UNKNOWN if not_object is Code.ITEM_MUST_BE_OBJECT else Code.ARGS_INVALID,
            f"unknown fields: {', '.join(sorted(unknown))}",
        )
    return item


def raw_linked(item: object) -> bool:
    """Whether a batch item asks to be linked to the next, judged before any validation.

    Chain boundaries must not depend on whether an item is otherwise valid: an invalid item
    that says `linked` still fails its whole chain.
    """
    if type(item) is not dict:
        return False
    flags = item.get("flags")
    return type(flags) is list and _LINKED in flags


# -- transfers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferRequest:
    id: str
    debit_account_id: str | None  # None only on a post or void: the hold's account
    credit_account_id: str | None
    amount: int | None  # None only on a post (all of the hold) or void
    currency: str | None
    flags: tuple[str, ...]
    pending_id: str | None
    timeout_ms: int
    product: str | None
    reference: str | None

    @property
    def linked(self) -> bool:
        return _LINKED in self.flags

    @property
    def is_pending(self) -> bool:
        return _PENDING in self.flags

    @property
    def is_post(self) -> bool:
        return _POST_PENDING_TRANSFER in self.flags

    @property
    def is_void(self) -> bool:
        return _VOID_PENDING_TRANSFER in self.flags


_TRANSFER_FIELDS = frozenset(
    {
        "id",
        "debit_account_id",
        "credit_account_id",
        "amount",
        "currency",
        "flags",
        "pending_id",
        "timeout_ms",
        "product",
        "reference",
    }
)


def parse_transfer(item: object) -> TransferRequest:
    """Validate one create_transfers item in TRANSFER_PRECEDENCE order."""
    fields = _fields(item, _TRANSFER_FIELDS, Code.ITEM_MUST_BE_OBJECT)
    transfer_id = fields.get("id")
    if not is_valid_id(transfer_id):
        refuse(Code.ID_INVALID, "id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    transfer_id = str(transfer_id)
    # Most transfers carry no flags: skip the flag rules then (they cannot apply).
    flags = _flags(fields["flags"], _TRANSFER_FLAGS) if "flags" in fields else ()
    if flags:
        if len(_TWO_PHASE.intersection(flags)) > 1:
            refuse(
                Code.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
                "at most one of pending, post_pending_transfer, void_pending_transfer",
            )
        resolving = _POST_PENDING_TRANSFER in flags or _VOID_PENDING_TRANSFER in flags
        pending = _PENDING in flags
    else:
        resolving = pending = False
    pending_id = _pending_id(fields.get("pending_id"), resolving=resolving, own_id=transfer_id)
    timeout_ms = _timeout(fields.get("timeout_ms"), pending=pending)
    debit = _account_id(fields.get("debit_account_id"), resolving, Code.DEBIT_ACCOUNT_ID_INVALID)
    credit = _account_id(fields.get("credit_account_id"), resolving, Code.CREDIT_ACCOUNT_ID_INVALID)
    if debit is not None and debit == credit:
        refuse(Code.ACCOUNTS_MUST_BE_DIFFERENT, "debit and credit account must differ")
    amount = fields.get("amount")
    if amount is not None or not resolving:
        amount = check_amount(amount)
    code = fields.get("currency")
    if code is not None or not resolving:
        code = _currency(code)
    product = fields.get("product")
    if product is not None:
        if type(product) is not str or _PRODUCT.fullmatch(product) is None:
            refuse(Code.PRODUCT_INVALID, "product is 1-32 characters of a-z 0-9 _ -")
        if pending or resolving:
            refuse(Code.PRODUCT_NOT_ALLOWED, "fees apply to single-phase transfers only")
    # Positional, in field order: every transfer is parsed, and a keyword call costs more.
    return TransferRequest(
        transfer_id,
        debit,
        credit,
        amount,
        code,
        flags,
        pending_id,
        timeout_ms,
        product,
        _optional_reference(fields.get("reference")),
    )


def _pending_id(value: object, *, resolving: bool, own_id: str) -> str | None:
    if not resolving:
        if value is not None:
            refuse(Code.PENDING_ID_MUST_BE_ABSENT, "pending_id is only for post and void")
        return None
    if value is None:
        refuse(Code.PENDING_ID_REQUIRED, "a post or void names the pending transfer")
    if not is_valid_id(value):
        refuse(Code.PENDING_ID_INVALID, "pending_id is not a valid transfer id")
    if value == own_id:
        refuse(Code.PENDING_ID_MUST_BE_DIFFERENT, "a transfer cannot post or void itself")
    return str(value)


def _timeout(value: object, *, pending: bool) -> int:
    if value is None or (type(value) is int and value == 0):
        return 0  # a hold without a timeout waits for a post or void
    if not pending:
        refuse(Code.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER, "timeout_ms is only for pending")
    if type(value) is not int or not 0 < value <= limits.PENDING_TIMEOUT_MS_MAX:
        refuse(
            Code.TIMEOUT_INVALID,
            f"timeout_ms is an integer from 0 to {limits.PENDING_TIMEOUT_MS_MAX}",
        )
    return value


def _account_id(value: object, optional: bool, code: Code) -> str | None:
    if value is None and optional:
        return None
    if not is_valid_id(value):
        refuse(code, "an account id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    return str(value)


def _currency(value: object) -> str:
    if not currency.is_valid(value):
        refuse(Code.CURRENCY_INVALID, f"{value!r} is not an ISO 4217 currency code in use")
    return str(value)


# -- accounts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountRequest:
    id: str
    owner: str
    currency: str
    kind: str
    flags: tuple[str, ...]
    credit_limit: int
    reference: str | None


_ACCOUNT_FIELDS = frozenset(
    {"id", "owner", "currency", "kind", "flags", "credit_limit", "reference"}
)


def _valid_owner(value: object) -> bool:
    if type(value) is not str or len(value) > limits.OWNER_CHARS_MAX:
        return False
    if value.startswith("role:"):
        return value[len("role:") :] in MEMBER_ROLES
    if value.startswith("contract:"):
        return _CONTRACT_NAME.fullmatch(value[len("contract:") :]) is not None
    return _DID.fullmatch(value) is not None


def parse_account(item: object) -> AccountRequest:
    """Validate one create_accounts item in ACCOUNT_PRECEDENCE order."""
    fields = _fields(item, _ACCOUNT_FIELDS, Code.ITEM_MUST_BE_OBJECT)
    account_id = fields.get("id")
    if not is_valid_id(account_id):
        refuse(Code.ID_INVALID, "id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    owner = fields.get("owner")
    if not _valid_owner(owner):
        refuse(Code.OWNER_INVALID, "owner is a DID, role:<member role> or contract:<name>")
    code = _currency(fields.get("currency"))
    kind = fields.get("kind")
    if kind not in _ACCOUNT_KINDS:
        refuse(Code.KIND_INVALID, f"kind is one of: {', '.join(sorted(_ACCOUNT_KINDS))}")
    protected = kind in OVERDRAFT_PROTECTED_KINDS
    default_flags = [AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS.value] if protected else []
    flags = _flags(fields.get("flags", default_flags), _ACCOUNT_FLAGS)
    if len(flags) > 1:
        refuse(
            Code.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
            "an account cannot limit both its debits and its credits",
        )
    dmnec = AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS in flags
    if protected and not dmnec:
        refuse(
            Code.FLAGS_INVALID_FOR_KIND,
            f"a {kind} account holds someone's money: it needs debits_must_not_exceed_credits",
        )
    credit_limit = fields.get("credit_limit", 0)
    if type(credit_limit) is not int or not 0 <= credit_limit <= limits.AMOUNT_MAX:
        refuse(Code.CREDIT_LIMIT_INVALID, "credit_limit is an integer number of minor units")
    if credit_limit and not dmnec:
        refuse(Code.CREDIT_LIMIT_INVALID, "a credit limit needs debits_must_not_exceed_credits")
    return AccountRequest(
        id=str(account_id),
        owner=str(owner),
        currency=code,
        kind=str(kind),
        flags=flags,
        credit_limit=credit_limit,
        reference=_optional_reference(fields.get("reference")),
    )


# -- account status -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRequest:
    account_id: str
    status: str


def parse_status(args: object) -> StatusRequest:
    fields = _fields(args, frozenset({"account_id", "status"}), Code.ARGS_INVALID)
    account_id = fields.get("account_id")
    if not is_valid_id(account_id):
        refuse(Code.ACCOUNT_ID_INVALID, "account_id is not a valid id")
    status = fields.get("status")
    if status not in _STATUSES:
        refuse(Code.STATUS_INVALID, f"status is one of: {', '.join(sorted(_STATUSES))}")
    return StatusRequest(account_id=str(account_id), status=str(status))


# -- fee schedules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeScheduleRequest:
    product: str
    currency: str
    fee_account_id: str
    fixed_amount: int
    rate_bps: int
    min_amount: int
    max_amount: int | None


_FEE_FIELDS = frozenset(
    {
        "product",
        "currency",
        "fee_account_id",
        "fixed_amount",
        "rate_bps",
        "min_amount",
        "max_amount",
    }
)


def _non_negative(value: object, upper: int) -> bool:
    return type(value) is int and 0 <= value <= upper


def parse_fee_schedule(args: object) -> FeeScheduleRequest:
    fields = _fields(args, _FEE_FIELDS, Code.ARGS_INVALID)
    product = fields.get("product")
    if type(product) is not str or _PRODUCT.fullmatch(product) is None:
        refuse(Code.PRODUCT_INVALID, "product is 1-32 characters of a-z 0-9 _ -")
    code = _currency(fields.get("currency"))
    fee_account_id = fields.get("fee_account_id")
    if not is_valid_id(fee_account_id):
        refuse(Code.FEE_ACCOUNT_ID_INVALID, "fee_account_id is not a valid id")
    fixed = fields.get("fixed_amount", 0)
    rate_bps = fields.get("rate_bps", 0)
    minimum = fields.get("min_amount", 0)
    maximum = fields.get("max_amount")
    if not (
        _non_negative(fixed, limits.AMOUNT_MAX)
        and _non_negative(rate_bps, limits.FEE_RATE_BPS_MAX)
        and _non_negative(minimum, limits.AMOUNT_MAX)
        and (maximum is None or (_non_negative(maximum, limits.AMOUNT_MAX) and maximum >= minimum))
    ):
        refuse(
            Code.FEE_INVALID,
            "fixed_amount, min_amount, max_amount are integers >= 0 with max >= min; "
            f"rate_bps is 0 to {limits.FEE_RATE_BPS_MAX}",
        )
    return FeeScheduleRequest(
        product=product,
        currency=code,
        fee_account_id=str(fee_account_id),
        fixed_amount=fixed,
        rate_bps=rate_bps,
        min_amount=minimum,
        max_amount=maximum,
    )


# -- FX -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FxQuoteRequest:
    id: str
    source_currency: str
    target_currency: str
    rate: str
    spread_bps: int
    expires_at_ms: object  # checked against block time after the idempotency check
    source_liquidity_account_id: str
    target_liquidity_account_id: str
    spread_account_id: str
    max_target_amount: int | None


_QUOTE_FIELDS = frozenset(
    {
        "id",
        "source_currency",
        "target_currency",
        "rate",
        "spread_bps",
        "expires_at_ms",
        "source_liquidity_account_id",
        "target_liquidity_account_id",
        "spread_account_id",
        "max_target_amount",
    }
)


def parse_fx_quote(args: object) -> FxQuoteRequest:
    fields = _fields(args, _QUOTE_FIELDS, Code.ARGS_INVALID)
    quote_id = fields.get("id")
    if not is_valid_id(quote_id):
        refuse(Code.ID_INVALID, "id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    source = _currency(fields.get("source_currency"))
    target = _currency(fields.get("target_currency"))
    if source == target:
        refuse(Code.CURRENCY_PAIR_INVALID, "source and target currency must differ")
    rate = fields.get("rate")
    if calc.parse_rate(rate) is None:
        refuse(
            Code.RATE_INVALID,
            "rate is a positive plain decimal string, at most 12 integer and 12 fraction digits",
        )
    spread_bps = fields.get("spread_bps", 0)
    if not _non_negative(spread_bps, limits.SPREAD_BPS_MAX):
        refuse(Code.SPREAD_INVALID, f"spread_bps is an integer from 0 to {limits.SPREAD_BPS_MAX}")
    capacity = fields.get("max_target_amount")
    if capacity is not None and (
        type(capacity) is not int or not 0 < capacity <= limits.AMOUNT_MAX
    ):
        refuse(Code.CAPACITY_INVALID, "max_target_amount is a positive integer of minor units")
    source_liquidity = fields.get("source_liquidity_account_id")
    target_liquidity = fields.get("target_liquidity_account_id")
    spread_account = fields.get("spread_account_id", source_liquidity)
    if not all(is_valid_id(v) for v in (source_liquidity, target_liquidity, spread_account)):
        refuse(Code.ACCOUNT_ID_INVALID, "liquidity and spread account ids must be valid ids")
    return FxQuoteRequest(
        id=str(quote_id),
        source_currency=source,
        target_currency=target,
        rate=str(rate),
        spread_bps=spread_bps,
        expires_at_ms=fields.get("expires_at_ms"),
        source_liquidity_account_id=str(source_liquidity),
        target_liquidity_account_id=str(target_liquidity),
        spread_account_id=str(spread_account),
        max_target_amount=capacity,
    )


@dataclass(frozen=True, slots=True)
class FxPaymentRequest:
    id: str
    quote_id: str
    debit_account_id: str
    credit_account_id: str
    side: str  # "source": the payer fixed what leaves; "target": what the beneficiary gets
    amount: int
    reference: str | None


_FX_PAYMENT_FIELDS = frozenset(
    {
        "id",
        "quote_id",
        "debit_account_id",
        "credit_account_id",
        "source_amount",
        "target_amount",
        "reference",
    }
)
SOURCE_SIDE = "source"
TARGET_SIDE = "target"


def parse_fx_payment(args: object) -> FxPaymentRequest:
    fields = _fields(args, _FX_PAYMENT_FIELDS, Code.ARGS_INVALID)
    payment_id = fields.get("id")
    if not is_valid_id(payment_id):
        refuse(Code.ID_INVALID, "id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    quote_id = fields.get("quote_id")
    if not is_valid_id(quote_id):
        refuse(Code.QUOTE_ID_INVALID, "quote_id is not a valid id")
    debit = _account_id(fields.get("debit_account_id"), False, Code.DEBIT_ACCOUNT_ID_INVALID)
    credit = _account_id(fields.get("credit_account_id"), False, Code.CREDIT_ACCOUNT_ID_INVALID)
    if debit == credit:
        refuse(Code.ACCOUNTS_MUST_BE_DIFFERENT, "debit and credit account must differ")
    sides = [side for side in (SOURCE_SIDE, TARGET_SIDE) if f"{side}_amount" in fields]
    if len(sides) != 1:
        refuse(Code.AMOUNT_SIDE_INVALID, "give exactly one of source_amount and target_amount")
    side = sides[0]
    amount = check_amount(fields[f"{side}_amount"], name=f"{side}_amount")
    return FxPaymentRequest(
        id=str(payment_id),
        quote_id=str(quote_id),
        debit_account_id=str(debit),
        credit_account_id=str(credit),
        side=side,
        amount=amount,
        reference=_optional_reference(fields.get("reference")),
    )


@dataclass(frozen=True, slots=True)
class RefundRequest:
    id: str
    original_id: str
    amount: int
    reference: str | None


_REFUND_FIELDS = frozenset({"id", "original_transfer_id", "amount", "reference"})


def parse_refund(args: object) -> RefundRequest:
    """{"id", "original_transfer_id", "amount", "reference"?}: a refund of a payment received."""
    fields = _fields(args, _REFUND_FIELDS, Code.ARGS_INVALID)
    if not {"id", "original_transfer_id", "amount"} <= fields.keys():
        refuse(Code.ARGS_INVALID, "args are {id, original_transfer_id, amount, reference?}")
    refund_id = fields["id"]
    if not is_valid_id(refund_id):
        refuse(Code.ID_INVALID, "id is 1-64 characters of A-Z a-z 0-9 . _ : -")
    original_id = fields["original_transfer_id"]
    if not is_valid_id(original_id):
        refuse(Code.ORIGINAL_ID_INVALID, "original_transfer_id is not a valid client id")
    return RefundRequest(
        id=str(refund_id),
        original_id=str(original_id),
        amount=check_amount(fields["amount"]),
        reference=_optional_reference(fields.get("reference")),
    )

"""Result codes of the payments contract and their documented precedence.

Every failure has one stable snake_case code, which the API maps one to one to a problem+json
response.  When a request is wrong in several ways, the code reported is the first applicable one
in its operation's precedence table below, so the same request always gets the same answer.
Checks that need no state come first, then the idempotency check ("exists"), then the checks that
read accounts and balances: a retry of a transfer that succeeded answers "ok" (flagged `exists`)
even if an account has since been frozen.

Success is `"result": "ok"`; a retry with the same id and the same body is also `"ok"` with
`"exists": true`, exactly like TigerBeetle's "exists is ok".

create_transfers, per item (`TRANSFER_PRECEDENCE`):

| # | code | when |
|---|---|---|
| 1 | linked_event_failed | another transfer of the same linked chain failed, so this one was not applied |
| 2 | linked_event_chain_open | the batch's last transfer carries the `linked` flag |
| 3 | item_must_be_object | the item is not a JSON object |
| 4 | fields_unknown | the item has a field the operation does not know |
| 5 | id_invalid | the id is missing or not 1-64 of `A-Za-z0-9._:-` |
| 6 | flags_invalid | flags is not a list of distinct known flag names |
| 7 | flags_are_mutually_exclusive | more than one of pending, post_pending_transfer, void_pending_transfer |
| 8 | pending_id_must_be_absent | pending_id on a transfer that neither posts nor voids |
| 9 | pending_id_required | a post or void without pending_id |
| 10 | pending_id_invalid | pending_id is not a valid id |
| 11 | pending_id_must_be_different | pending_id equals the transfer's own id |
| 12 | timeout_reserved_for_pending_transfer | timeout_ms on a transfer that is not pending |
| 13 | timeout_invalid | timeout_ms is not an integer from 1 to the limit |
| 14 | debit_account_id_invalid | missing (where required) or not a valid id |
| 15 | credit_account_id_invalid | missing (where required) or not a valid id |
| 16 | accounts_must_be_different | debit and credit account are the same |
| 17 | amount_must_be_integer | amount is missing (where required) or not an integer (bool, float, string) |
| 18 | amount_must_be_positive | amount is zero or negative |
| 19 | amount_exceeds_maximum | amount is above 2**63 - 1 |
| 20 | currency_invalid | currency missing (where required) or not an ISO 4217 code in use |
| 21 | product_invalid | product is not a valid product name |
| 22 | product_not_allowed | a product (fee) on a pending, post or void transfer |
| 23 | reference_invalid | reference is not 1-35 printable characters |
| 24 | exists_with_different_fields | the id exists with a different body |
| 25 | pending_transfer_not_found | post/void: no transfer has pending_id |
| 26 | pending_transfer_not_pending | post/void: the transfer pending_id names is not a pending transfer |
| 27 | debit_account_not_found | no account has debit_account_id |
| 28 | credit_account_not_found | no account has credit_account_id |
| 29 | currency_mismatch | the transfer's currency differs from an account's |
| 30 | not_authorized | the sender may not debit the account (or post/void the hold) |
| 31 | pending_transfer_has_different_debit_account_id | post/void names another debit account |
| 32 | pending_transfer_has_different_credit_account_id | post/void names another credit account |
| 33 | pending_transfer_has_different_currency | post/void names another currency |
| 34 | exceeds_pending_transfer_amount | post: amount above the held amount |
| 35 | pending_transfer_has_different_amount | void: amount given and not the held amount |
| 36 | pending_transfer_already_posted | the hold was posted before |
| 37 | pending_transfer_already_voided | the hold was voided before |
| 38 | pending_transfer_expired | the hold's timeout has passed (block time) |
| 39 | debit_account_frozen | the debit account is frozen (voids are still allowed) |
| 40 | debit_account_closed | the debit account is closed |
| 41 | credit_account_frozen | the credit account is frozen (voids are still allowed) |
| 42 | credit_account_closed | the credit account is closed |
| 43 | fee_schedule_not_found | no fee schedule for the product in this currency |
| 44 | fee_account_unavailable | the schedule's fee account is not open or is the debit account |
| 45 | overflows_debits | the debit account's debits would pass 2**63 - 1 |
| 46 | overflows_credits | the credit account's (or fee account's) credits would pass 2**63 - 1 |
| 47 | exceeds_credits | debits_must_not_exceed_credits: not enough balance (plus credit limit) |
| 48 | exceeds_debits | credits_must_not_exceed_debits on the credit account |

create_accounts, per item (`ACCOUNT_PRECEDENCE`):

| # | code | when |
|---|---|---|
| 1 | item_must_be_object | the item is not a JSON object |
| 2 | fields_unknown | the item has a field the operation does not know |
| 3 | id_invalid | the id is missing or not 1-64 of `A-Za-z0-9._:-` |
| 4 | owner_invalid | owner is not a DID, `role:<member role>` or `contract:<name>` |
| 5 | currency_invalid | currency is not an ISO 4217 code in use |
| 6 | kind_invalid | kind is not one of the account kinds |
| 7 | flags_invalid | flags is not a list of distinct known flag names |
| 8 | flags_are_mutually_exclusive | both debits_must_not_exceed_credits and credits_must_not_exceed_debits |
| 9 | flags_invalid_for_kind | a customer, merchant, escrow, fee or fx-liquidity account without debits_must_not_exceed_credits |
| 10 | credit_limit_invalid | not an integer from 0 to 2**63 - 1, or set without debits_must_not_exceed_credits |
| 11 | reference_invalid | reference is not 1-35 printable characters |
| 12 | exists_with_different_fields | the id exists with a different body |
| 13 | not_authorized | the signer may not open this account (see the authorisation rule) |
| 14 | platform_account_owner_must_be_member | a settlement, fee or fx-liquidity account not owned by the opening member |

The single-request methods (set_account_status, set_fee_schedule, create_fx_quote, pay_fx, the
whole-tx checks of import_transfers (`FILE_PART_PRECEDENCE`), refund_transfer
(`REFUND_PRECEDENCE`) and the contract-to-contract
helpers) raise `PaymentsError` with the first applicable code of their tables, which
`docs/payments.md` lists; their codes are the members of `Code`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NoReturn

from zhijin.chain.errors import ContractError

__all__ = [
    "ACCOUNT_PRECEDENCE",
    "ACCOUNT_STATUS_PRECEDENCE",
    "FEE_SCHEDULE_PRECEDENCE",
    "FILE_PART_PRECEDENCE",
    "FX_PAYMENT_PRECEDENCE",
    "FX_QUOTE_PRECEDENCE",
    "REFUND_PRECEDENCE",
    "TRANSFER_PRECEDENCE",
    "Code",
    "PaymentsError",
    "differs_in",
    "fields_differing",
    "refuse",
]


class Code(StrEnum):
    OK = "ok"
    # shape of a request
    ARGS_INVALID = "args_invalid"
    BATCH_INVALID = "batch_invalid"
    ITEM_MUST_BE_OBJECT = "item_must_be_object"
    FIELDS_UNKNOWN = "fields_unknown"
    ID_INVALID = "id_invalid"
    FLAGS_INVALID = "flags_invalid"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    REFERENCE_INVALID = "reference_invalid"
    CURRENCY_INVALID = "currency_invalid"
    # linked chains
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    # transfers
    PENDING_ID_MUST_BE_ABSENT = "pending_id_must_be_absent"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_INVALID = "pending_id_invalid"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    TIMEOUT_INVALID = "timeout_invalid"
    DEBIT_ACCOUNT_ID_INVALID = "debit_account_id_invalid"
    CREDIT_ACCOUNT_ID_INVALID = "credit_account_id_invalid"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    AMOUNT_MUST_BE_INTEGER = "amount_must_be_integer"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    AMOUNT_EXCEEDS_MAXIMUM = "amount_exceeds_maximum"
    PRODUCT_INVALID = "product_invalid"
    PRODUCT_NOT_ALLOWED = "product_not_allowed"
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    NOT_AUTHORIZED = "not_authorized"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY = "pending_transfer_has_different_currency"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    DEBIT_ACCOUNT_FROZEN = "debit_account_frozen"
    DEBIT_ACCOUNT_CLOSED = "debit_account_closed"
    CREDIT_ACCOUNT_FROZEN = "credit_account_frozen"
    CREDIT_ACCOUNT_CLOSED = "credit_account_closed"
    FEE_SCHEDULE_NOT_FOUND = "fee_schedule_not_found"
    FEE_ACCOUNT_UNAVAILABLE = "fee_account_unavailable"
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"
    # accounts
    OWNER_INVALID = "owner_invalid"
    KIND_INVALID = "kind_invalid"
    FLAGS_INVALID_FOR_KIND = "flags_invalid_for_kind"
    CREDIT_LIMIT_INVALID = "credit_limit_invalid"
    PLATFORM_ACCOUNT_OWNER_MUST_BE_MEMBER = "platform_account_owner_must_be_member"
    ACCOUNT_ID_INVALID = "account_id_invalid"
    ACCOUNT_NOT_FOUND = "account_not_found"
    STATUS_INVALID = "status_invalid"
    ACCOUNT_CLOSED = "account_closed"
    ACCOUNT_HAS_PENDING_BALANCE = "account_has_pending_balance"
    ACCOUNT_BALANCE_NOT_ZERO = "account_balance_not_zero"
    # fees
    FEE_INVALID = "fee_invalid"
    FEE_ACCOUNT_ID_INVALID = "fee_account_id_invalid"
    FEE_ACCOUNT_NOT_FOUND = "fee_account_not_found"
    FEE_ACCOUNT_INVALID = "fee_account_invalid"
    # FX
    CURRENCY_PAIR_INVALID = "currency_pair_invalid"
    RATE_INVALID = "rate_invalid"
    SPREAD_INVALID = "spread_invalid"
    QUOTE_EXPIRY_INVALID = "quote_expiry_invalid"
    CAPACITY_INVALID = "capacity_invalid"
    LIQUIDITY_ACCOUNT_NOT_FOUND = "liquidity_account_not_found"
    LIQUIDITY_ACCOUNT_INVALID = "liquidity_account_invalid"
    QUOTE_ID_INVALID = "quote_id_invalid"
    AMOUNT_SIDE_INVALID = "amount_side_invalid"
    QUOTE_NOT_FOUND = "quote_not_found"
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_CAPACITY_EXCEEDED = "quote_capacity_exceeded"
    AMOUNT_TOO_SMALL = "amount_too_small"
    LIQUIDITY_ACCOUNT_UNAVAILABLE = "liquidity_account_unavailable"
    LIQUIDITY_INSUFFICIENT = "liquidity_insufficient"
    # contract-to-contract helpers
    TRANSFER_NOT_FOUND = "transfer_not_found"
    # refunds: a refund never returns more than its payment received
    ORIGINAL_ID_INVALID = "original_id_invalid"
    REFUND_ORIGINAL_NOT_FOUND = "refund_original_not_found"
    REFUND_ORIGINAL_INVALID = "refund_original_invalid"
    REFUND_EXCEEDS_ORIGINAL = "refund_exceeds_original"
    # files (pain.001 imports): one message id per initiating party
    MESSAGE_INVALID = "message_invalid"
    MSG_ID_REUSED = "msg_id_reused"


C = Code

TRANSFER_PRECEDENCE: tuple[Code, ...] = (
    C.LINKED_EVENT_FAILED,
    C.LINKED_EVENT_CHAIN_OPEN,
    C.ITEM_MUST_BE_OBJECT,
    C.FIELDS_UNKNOWN,
    C.ID_INVALID,
    C.FLAGS_INVALID,
    C.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    C.PENDING_ID_MUST_BE_ABSENT,
    C.PENDING_ID_REQUIRED,
    C.PENDING_ID_INVALID,
    C.PENDING_ID_MUST_BE_DIFFERENT,
    C.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER,
    C.TIMEOUT_INVALID,
    C.DEBIT_ACCOUNT_ID_INVALID,
    C.CREDIT_ACCOUNT_ID_INVALID,
    C.ACCOUNTS_MUST_BE_DIFFERENT,
    C.AMOUNT_MUST_BE_INTEGER,
    C.AMOUNT_MUST_BE_POSITIVE,
    C.AMOUNT_EXCEEDS_MAXIMUM,
    C.CURRENCY_INVALID,
    C.PRODUCT_INVALID,
    C.PRODUCT_NOT_ALLOWED,
    C.REFERENCE_INVALID,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.PENDING_TRANSFER_NOT_FOUND,
    C.PENDING_TRANSFER_NOT_PENDING,
    C.DEBIT_ACCOUNT_NOT_FOUND,
    C.CREDIT_ACCOUNT_NOT_FOUND,
    C.CURRENCY_MISMATCH,
    C.NOT_AUTHORIZED,
    C.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID,
    C.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID,
    C.PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY,
    C.EXCEEDS_PENDING_TRANSFER_AMOUNT,
    C.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT,
    C.PENDING_TRANSFER_ALREADY_POSTED,
    C.PENDING_TRANSFER_ALREADY_VOIDED,
    C.PENDING_TRANSFER_EXPIRED,
    C.DEBIT_ACCOUNT_FROZEN,
    C.DEBIT_ACCOUNT_CLOSED,
    C.CREDIT_ACCOUNT_FROZEN,
    C.CREDIT_ACCOUNT_CLOSED,
    C.FEE_SCHEDULE_NOT_FOUND,
    C.FEE_ACCOUNT_UNAVAILABLE,
    C.OVERFLOWS_DEBITS,
    C.OVERFLOWS_CREDITS,
    C.EXCEEDS_CREDITS,
    C.EXCEEDS_DEBITS,
)

ACCOUNT_PRECEDENCE: tuple[Code, ...] = (
    C.ITEM_MUST_BE_OBJECT,
    C.FIELDS_UNKNOWN,
    C.ID_INVALID,
    C.OWNER_INVALID,
    C.CURRENCY_INVALID,
    C.KIND_INVALID,
    C.FLAGS_INVALID,
    C.FLAGS_ARE_MUTUALLY_EXCLUSIVE,
    C.FLAGS_INVALID_FOR_KIND,
    C.CREDIT_LIMIT_INVALID,
    C.REFERENCE_INVALID,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.NOT_AUTHORIZED,
    C.PLATFORM_ACCOUNT_OWNER_MUST_BE_MEMBER,
)

ACCOUNT_STATUS_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ACCOUNT_ID_INVALID,
    C.STATUS_INVALID,
    C.ACCOUNT_NOT_FOUND,
    C.NOT_AUTHORIZED,
    C.ACCOUNT_CLOSED,
    C.ACCOUNT_HAS_PENDING_BALANCE,
    C.ACCOUNT_BALANCE_NOT_ZERO,
)

FEE_SCHEDULE_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.PRODUCT_INVALID,
    C.CURRENCY_INVALID,
    C.FEE_ACCOUNT_ID_INVALID,
    C.FEE_INVALID,
    C.NOT_AUTHORIZED,
    C.FEE_ACCOUNT_NOT_FOUND,
    C.FEE_ACCOUNT_INVALID,
)

FX_QUOTE_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.CURRENCY_INVALID,
    C.CURRENCY_PAIR_INVALID,
    C.RATE_INVALID,
    C.SPREAD_INVALID,
    C.CAPACITY_INVALID,
    C.ACCOUNT_ID_INVALID,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.QUOTE_EXPIRY_INVALID,
    C.NOT_AUTHORIZED,
    C.LIQUIDITY_ACCOUNT_NOT_FOUND,
    C.LIQUIDITY_ACCOUNT_INVALID,
)

FX_PAYMENT_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.QUOTE_ID_INVALID,
    C.DEBIT_ACCOUNT_ID_INVALID,
    C.CREDIT_ACCOUNT_ID_INVALID,
    C.ACCOUNTS_MUST_BE_DIFFERENT,
    C.AMOUNT_SIDE_INVALID,
    C.AMOUNT_MUST_BE_INTEGER,
    C.AMOUNT_MUST_BE_POSITIVE,
    C.AMOUNT_EXCEEDS_MAXIMUM,
    C.REFERENCE_INVALID,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.QUOTE_NOT_FOUND,
    C.QUOTE_EXPIRED,
    C.DEBIT_ACCOUNT_NOT_FOUND,
    C.CREDIT_ACCOUNT_NOT_FOUND,
    C.CURRENCY_MISMATCH,
    C.NOT_AUTHORIZED,
    C.DEBIT_ACCOUNT_FROZEN,
    C.DEBIT_ACCOUNT_CLOSED,
    C.CREDIT_ACCOUNT_FROZEN,
    C.CREDIT_ACCOUNT_CLOSED,
    C.LIQUIDITY_ACCOUNT_UNAVAILABLE,
    C.AMOUNT_TOO_SMALL,
    C.QUOTE_CAPACITY_EXCEEDED,
    C.OVERFLOWS_DEBITS,
    C.OVERFLOWS_CREDITS,
    C.EXCEEDS_CREDITS,
    C.LIQUIDITY_INSUFFICIENT,
)


REFUND_PRECEDENCE: tuple[Code, ...] = (
    C.ARGS_INVALID,
    C.ID_INVALID,
    C.ORIGINAL_ID_INVALID,
    C.AMOUNT_MUST_BE_INTEGER,
    C.AMOUNT_MUST_BE_POSITIVE,
    C.AMOUNT_EXCEEDS_MAXIMUM,
    C.REFERENCE_INVALID,
    C.EXISTS_WITH_DIFFERENT_FIELDS,
    C.REFUND_ORIGINAL_NOT_FOUND,
    C.REFUND_ORIGINAL_INVALID,
    C.NOT_AUTHORIZED,
    C.DEBIT_ACCOUNT_FROZEN,
    C.DEBIT_ACCOUNT_CLOSED,
    C.CREDIT_ACCOUNT_FROZEN,
    C.CREDIT_ACCOUNT_CLOSED,
    C.REFUND_EXCEEDS_ORIGINAL,
    C.OVERFLOWS_DEBITS,
    C.OVERFLOWS_CREDITS,
    C.EXCEEDS_CREDITS,
    C.EXCEEDS_DEBITS,
)


# import_transfers (one part of a file): the whole tx fails with the first of these.
FILE_PART_PRECEDENCE: tuple[Code, ...] = (
    C.BATCH_INVALID,
    C.MESSAGE_INVALID,
    C.MSG_ID_REUSED,
)


class PaymentsError(ContractError):
    """A payments request refused with one stable `Code`; the tx changes no state."""

    def __init__(self, code: Code, message: str = "", **details: Any) -> None:
        super().__init__(code.value, message, **details)


def refuse(code: Code, message: str) -> NoReturn:
    """Raise the PaymentsError for `code`: the request is refused and writes nothing."""
    raise PaymentsError(code, message)


# exists_with_different_fields names the fields in its message, the one text a failed tx keeps
# on chain; the API reads them back (`fields_differing`) to name them in every language.
_DIFFERS_IN = "differs in: "


def differs_in(fields: list[str]) -> str:
    """The message of exists_with_different_fields (its bytes are part of the tx result)."""
    return _DIFFERS_IN + ", ".join(fields)


def fields_differing(message: str) -> list[str]:
    """The field names a `differs_in` message lists; [] for any other text."""
    if not message.startswith(_DIFFERS_IN):
        return []
    return [name for name in message.removeprefix(_DIFFERS_IN).split(", ") if name]

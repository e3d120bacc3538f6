"""The payments contract: the only way money moves on zhijin.

Double-entry accounts and transfers in the TigerBeetle model: accounts are never deleted, a
transfer is never edited (a correction is a new transfer), ids come from the client so a retry is
safe, holds (pending transfers) are posted in full or in part, voided, or expire at a block-time
timeout, and every failure has a stable code with a documented precedence (`codes`).  Amounts
are integer minor units of the account's currency; no float ever touches money.

Methods (a tx may call the first eight; the helpers are reachable only through `ctx.call`):

| method | args | returns |
|---|---|---|
| create_accounts | {"accounts": [account, ...]} (1-100) | {"results": [item result, ...], "ok": n, "failed": n} |
| create_transfers | {"transfers": [transfer, ...]} (1-100) | {"results": [item result, ...], "ok": n, "failed": n} |
| set_account_status | {"account_id", "status": open/frozen/closed} | {"account_id", "status", "previous_status", "changed"} |
| set_fee_schedule | {"product", "currency", "fee_account_id", "fixed_amount", "rate_bps", "min_amount", "max_amount"} | {"product", "currency", "version"} |
| create_fx_quote | {"id", "source_currency", "target_currency", "rate", "spread_bps", "expires_at_ms", "source_liquidity_account_id", "target_liquidity_account_id", "spread_account_id"?, "max_target_amount"?} | {"id", "result": "ok", "exists"} |
| pay_fx | {"id", "quote_id", "debit_account_id", "credit_account_id", "source_amount" or "target_amount", "reference"?} | {"id", "result": "ok", "exists", "quote_id", "source_amount", "spread_amount", "target_amount", "rate", "rounding", "transfer_ids", ...} |
| refund_transfer | {"id", "original_transfer_id", "amount", "reference"?} | {"id", "result": "ok", "exists", "original_transfer_id", "amount", "refunded_amount", "original_amount"} |
| import_transfers | {"message": {"key", "digest", "plan", "part", "parts"}, "transfers": [transfer, ...]} (0-100) | create_transfers' answer plus {"part", "parts"} |
| transfer (helper) | one transfer, without `linked` | its item result; raises PaymentsError if refused |
| get_account (helper) | {"account_id"} | the account record with its balances |
| get_transfer (helper) | {"transfer_id"} | the transfer record, and "pending" state for a hold |

account = {"id", "owner", "currency", "kind", "flags"?, "credit_limit"?, "reference"?}.
transfer = {"id", "debit_account_id", "credit_account_id", "amount", "currency", "flags"?,
"pending_id"?, "timeout_ms"?, "product"?, "reference"?}; flags from linked, pending,
post_pending_transfer, void_pending_transfer.  A post or void may leave out the accounts,
currency and amount (meaning the hold's; a post without amount posts all of it).

An item result is {"id", "result": "ok", "exists": false} the first time and the same with
"exists": true for a retry with the same id and body; a refused item is {"id", "result":
<code>, "message"} and writes nothing.  Batch items are independent unless linked: a chain of
items each flagged `linked` (up to and including the first one without the flag) succeeds or
fails as a whole.  A malformed batch (not a list, empty, too long) fails the whole tx with
`batch_invalid`; the single-request methods fail the tx with their code.

At the end of every block `expire_pending` releases the holds whose timeout has passed.

State keys (all under "payments/"; see `records.keys`): account/<id> (record and its four
balance counters), transfer/<id> (immutable), pending/<id> (a hold's status), expiry/<20-digit
block time>/<id> (holds by expiry), quote/<id>, refunded/<transfer id> (a payment's refunded
total), fee/<product>/<currency>, message/<hash> (a file's message id, claimed by its first
part).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from zhijin.chain.contract import MEMBER_PREFIX, Context, Contract, TxInfo
from zhijin.payments import fx, ledger, limits, refunds
from zhijin.payments.authorization import Actor
from zhijin.payments.book import Book, Env
from zhijin.payments.codes import Code, PaymentsError
from zhijin.payments.records import keys
from zhijin.payments.requests import (
    is_valid_id,
    is_valid_transfer_id,
    parse_account,
    parse_fee_schedule,
    parse_fx_payment,
    parse_fx_quote,
    parse_refund,
    parse_status,
    parse_transfer,
    raw_linked,
)

__all__ = ["CONTRACT_NAME", "PAYMENTS_CONTRACT", "expire_pending"]

CONTRACT_NAME = "payments"
CONTRACT_VERSION = "1"

_Request = TypeVar("_Request")


def _env(ctx: Context) -> Env:
    return Env(time_ms=ctx.block.time_ms, height=ctx.block.height, tx_hash=ctx.tx.tx_hash)


def _batch(args: object, name: str, maximum: int) -> list[Any]:
    if type(args) is not dict or len(args) != 1 or name not in args:
        raise PaymentsError(Code.BATCH_INVALID, f'args are {{"{name}": [...]}}')
    items = args[name]
    if type(items) is not list or not 0 < len(items) <= maximum:
        raise PaymentsError(Code.BATCH_INVALID, f"{name} is a list of 1 to {maximum} items")
    return items


def _refused(item: object, code: str, message: str) -> dict[str, Any]:
    item_id = item.get("id") if type(item) is dict else None
    return {
        "id": item_id if is_valid_id(item_id) else None,
        "result": Code(code).value,  # a plain str: canonical JSON refuses str subclasses
        "message": message,
    }


_OK = Code.OK.value  # read once: an enum member access costs an attribute hook on Python 3.11


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(1 for result in results if result["result"] == _OK)
    return {"results": results, "ok": ok, "failed": len(results) - ok}


def _run_chains(
    book: Book,
    items: list[Any],
    apply: Callable[[Any], dict[str, Any]],
    *,
    linkable: bool,
) -> list[dict[str, Any]]:
    """Apply items chain by chain; a chain is all-or-nothing (an unlinked item is a chain of 1).

    Linked-chain semantics follow TigerBeetle: the failing item gets its own code, the other
    items of its chain `linked_event_failed`; a chain still open at the end of the batch fails
    with `linked_event_chain_open` on its last item.
    """
    results: list[dict[str, Any]] = []
    start = 0
    while start < len(items):
        end = start
        while linkable and end < len(items) - 1 and raw_linked(items[end]):
            end += 1
        chain = items[start : end + 1]
        if linkable and raw_linked(chain[-1]):
            results.extend(
                _refused(item, Code.LINKED_EVENT_FAILED, "its linked chain is not closed")
                for item in chain[:-1]
            )
            results.append(
                _refused(chain[-1], Code.LINKED_EVENT_CHAIN_OPEN, "the last item is linked")
            )
            break
        results.extend(_run_chain(book, chain, apply))
        start = end + 1
    return results


def _run_chain(
    book: Book, chain: list[Any], apply: Callable[[Any], dict[str, Any]]
) -> list[dict[str, Any]]:
    book.begin()
    done: list[dict[str, Any]] = []
    for index, item in enumerate(chain):
        try:
            done.append(apply(item))
        except PaymentsError as error:
            book.rollback()
            failed = [
                _refused(other, Code.LINKED_EVENT_FAILED, "another item of its chain failed")
                for other in chain
            ]
            failed[index] = _refused(item, error.code, error.message)
            return failed
    book.commit()
    return done


def create_accounts(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    items = _batch(args, "accounts", limits.ACCOUNTS_PER_BATCH_MAX)
    book, actor, env = Book(ctx), Actor(ctx), _env(ctx)
    results = _run_chains(
        book,
        items,
        lambda item: ledger.create_account(book, actor, env, parse_account(item)),
        linkable=False,
    )
    book.flush()
    return _summary(results)


def create_transfers(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    items = _batch(args, "transfers", limits.TRANSFERS_PER_BATCH_MAX)
    book, actor, env = Book(ctx), Actor(ctx), _env(ctx)
    results = _run_chains(
        book,
        items,
        lambda item: ledger.create_transfer(book, actor, env, parse_transfer(item)),
        linkable=True,
    )
    book.flush()
    return _summary(results)


def _single(
    ctx: Context,
    request: _Request,
    operation: Callable[[Book, Actor, Env, _Request], dict[str, Any]],
) -> dict[str, Any]:
    """One request that fails the whole tx when refused; nothing is staged until it succeeded."""
    book = Book(ctx)
    result = operation(book, Actor(ctx), _env(ctx), request)
    book.flush()
    return result


def set_account_status(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return _single(ctx, parse_status(args), ledger.set_account_status)


def set_fee_schedule(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return _single(ctx, parse_fee_schedule(args), ledger.set_fee_schedule)


def create_fx_quote(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return _single(ctx, parse_fx_quote(args), fx.create_fx_quote)


def pay_fx(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return _single(ctx, parse_fx_payment(args), fx.pay_fx)


def refund_transfer(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return _single(ctx, parse_refund(args), refunds.refund_transfer)


# -- files: one message id per sender and initiating party ----------------------------------------


def _file_part(args: object) -> tuple[dict[str, Any], list[Any]]:
    """{"message": {"key", "digest", "plan", "part", "parts"}, "transfers": [0-100 items]}."""
    if type(args) is not dict or set(args) != {"message", "transfers"}:
        raise PaymentsError(Code.BATCH_INVALID, 'args are {"message": {...}, "transfers": [...]}')
    message, items = args["message"], args["transfers"]
    if type(items) is not list or len(items) > limits.TRANSFERS_PER_BATCH_MAX:
        raise PaymentsError(
            Code.BATCH_INVALID, f"transfers is a list of 0 to {limits.TRANSFERS_PER_BATCH_MAX}"
        )
    if (
        type(message) is not dict
        or set(message) != {"key", "digest", "plan", "part", "parts"}
        or not all(_is_sha256_hex(message[name]) for name in ("key", "digest", "plan"))
        or type(message["parts"]) is not int
        or type(message["part"]) is not int
        or not 0 <= message["part"] < message["parts"] <= limits.FILE_PARTS_MAX
        or (not items and message["parts"] != 1)
    ):
        raise PaymentsError(
            Code.MESSAGE_INVALID,
            "message is {key, digest, plan: sha-256 hex, part: 0 <= part < parts <= "
            f"{limits.FILE_PARTS_MAX}}}; only a file of one part may have no transfers",
        )
    return message, items


def _is_sha256_hex(value: object) -> bool:
    return type(value) is str and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_claim(claim: dict[str, Any] | None, message: dict[str, Any]) -> None:
    """A message id is the first file's: its parts, in order, once each; nothing else."""
    part = message["part"]
    if claim is None:
        if part != 0:
            raise PaymentsError(Code.MESSAGE_INVALID, f"part {part} of a file not begun")
        return
    if any(claim[name] != message[name] for name in ("digest", "plan", "parts")):
        raise PaymentsError(
            Code.MSG_ID_REUSED,
            f"the message id was used by another file, first booked at height {claim['height']}",
        )
    if part < claim["parts_booked"]:
        raise PaymentsError(
            Code.MSG_ID_REUSED,
            f"this file was booked at height {claim['height']}; a message id is accepted once",
        )
    if part > claim["parts_booked"]:
        raise PaymentsError(Code.MESSAGE_INVALID, f"part {part} before {claim['parts_booked']}")


def import_transfers(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """One part of a file's transfers (a pain.001), booked like create_transfers, and the claim
    of its message id in the same tx: so two files under one message id can never both book,
    whatever their content, on every member and across restarts.

    The claim is keyed by the tx's sender and the message key (a hash of the initiating party
    and the MsgId, which stay off chain), so one sender cannot take another's message ids.  The
    first part (0) claims; parts 1.. of the same file (same digest: its bytes, and plan: all its
    parts' transfers) follow in order, once each.
    """
    message, items = _file_part(args)
    key = keys.message(ctx.tx.sender, message["key"])
    claim = ctx.get(key)
    _check_claim(claim, message)
    summary = _summary([])
    if items:
        summary = create_transfers(ctx, {"transfers": items})
    height = ctx.block.height if claim is None else claim["height"]
    tx_hashes = [] if claim is None else claim["tx_hashes"]
    ctx.put(
        key,
        {
            "digest": message["digest"],
            "plan": message["plan"],
            "parts": message["parts"],
            "parts_booked": message["part"] + 1,
            "height": height,  # of the first part
            "tx_hashes": [*tx_hashes, ctx.tx.tx_hash],  # one per part: their results stay
        },
    )
    return {**summary, "part": message["part"], "parts": message["parts"]}


# -- helpers for other contracts (ctx.call only) --------------------------------------------------


def transfer(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """One transfer for a calling contract (lending, escrow...): raises if refused.

    Raising fails the caller's tx unless it catches the error; either way this helper stages
    nothing unless the transfer was booked, so a caught refusal leaves no trace.
    """
    summary = create_transfers(ctx, {"transfers": [args]})
    result: dict[str, Any] = summary["results"][0]
    if result["result"] != Code.OK:
        raise PaymentsError(Code(result["result"]), result["message"])
    return result


def get_account(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    account_id = args.get("account_id") if type(args) is dict else None
    if not is_valid_id(account_id):
        raise PaymentsError(Code.ACCOUNT_ID_INVALID, "account_id is not a valid id")
    record = ctx.get(keys.account(str(account_id)))
    if record is None:
        raise PaymentsError(Code.ACCOUNT_NOT_FOUND, f"no account {account_id}")
    return dict(record)


def get_transfer(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    transfer_id = args.get("transfer_id") if type(args) is dict else None
    if not is_valid_transfer_id(transfer_id):
        raise PaymentsError(Code.ID_INVALID, "transfer_id is not a valid id")
    record = ctx.get(keys.transfer(transfer_id))
    if record is None:
        raise PaymentsError(Code.TRANSFER_NOT_FOUND, f"no transfer {transfer_id}")
    pending = ctx.get(keys.pending(transfer_id))
    return {**record, "pending": pending}


def expire_pending(ctx: Context) -> None:
    """End-of-block hook: release holds whose timeout (block time) has passed."""
    book = Book(ctx)
    ledger.expire_due(book, _env(ctx))
    book.flush()


_DEBITING_METHODS = frozenset({"create_transfers", "import_transfers", "pay_fx", "refund_transfer"})


def _prefetch(tx: TxInfo, args: dict[str, Any]) -> list[str]:
    """Keys a tx will probably read, for the node to fetch a block's worth in one query.

    Only a speed hint: it never affects the outcome, so it guesses generously and ignores
    anything malformed (the method itself will refuse it).
    """
    if type(args) is not dict:
        return []
    wanted: list[str] = []

    def add(builder: Callable[[str], str], value: object) -> None:
        if isinstance(value, str) and len(value) <= limits.ID_CHARS_MAX:
            wanted.append(builder(value))

    method = tx.method
    if tx.vouched and method in _DEBITING_METHODS:
        # When a member vouches for the sender (a member batch, the gateway), the debit rule
        # asks whether the sender is itself a member: a key per sender that is usually absent,
        # so without the hint each new sender costs the block a query of its own.  A tx the
        # sender signed itself reads a member key only when the sender is a member acting in
        # its own name, and members' keys stay in the node's cache.
        wanted.append(MEMBER_PREFIX + tx.sender)
    if method in ("create_transfers", "import_transfers") and type(args.get("transfers")) is list:
        for item in args["transfers"][: limits.TRANSFERS_PER_BATCH_MAX]:
            if type(item) is dict:
                add(keys.transfer, item.get("id"))
                add(keys.account, item.get("debit_account_id"))
                add(keys.account, item.get("credit_account_id"))
                add(keys.transfer, item.get("pending_id"))
                add(keys.pending, item.get("pending_id"))
    elif method == "create_accounts" and type(args.get("accounts")) is list:
        for item in args["accounts"][: limits.ACCOUNTS_PER_BATCH_MAX]:
            if type(item) is dict:
                add(keys.account, item.get("id"))
    elif method == "pay_fx":
        add(keys.transfer, args.get("id"))
        add(keys.quote, args.get("quote_id"))
        add(keys.account, args.get("debit_account_id"))
        add(keys.account, args.get("credit_account_id"))
    elif method == "refund_transfer":
        add(keys.transfer, args.get("id"))
        add(keys.transfer, args.get("original_transfer_id"))
        add(keys.refunded, args.get("original_transfer_id"))
    return wanted


PAYMENTS_CONTRACT = Contract(
    name=CONTRACT_NAME,
    version=CONTRACT_VERSION,
    methods={
        "create_accounts": create_accounts,
        "create_transfers": create_transfers,
        "set_account_status": set_account_status,
        "set_fee_schedule": set_fee_schedule,
        "create_fx_quote": create_fx_quote,
        "pay_fx": pay_fx,
        "refund_transfer": refund_transfer,
        "import_transfers": import_transfers,
        "transfer": transfer,
        "get_account": get_account,
        "get_transfer": get_transfer,
    },
    end_block=expire_pending,
    readonly_methods=frozenset({"transfer", "get_account", "get_transfer"}),
    prefetch=_prefetch,
)

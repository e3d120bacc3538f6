"""What the monitor reads of the committed stream: payments' events turned into movements.

Payments' events are the chain's published stream (their `type` and `attrs` are the records the
contract emits), so AML reads them as any consumer of the chain would; it imports nothing of
payments.  `tests/aml/test_facts.py` pins these names to payments' own constants.

A movement is one posted transfer between two parties as AML sees it: the customer on each side
(the account's owner), which member holds each account (its custodian, the institution that
reports), the kind of party (a natural person's customer account, an entity's merchant or escrow
account, or the platform's own books), and the channel and scope the PBOC rules distinguish:

- cash: one side is a member's settlement account (money entering or leaving the platform);
- cross-border: an FX payment's legs (payments books a cross-border payment as FX legs through
  the members' liquidity accounts), so its counterparty is the FX book, not the beneficiary;
- otherwise a domestic transfer.

Holds count when posted (the post carries the amount), voids and expiries move nothing, fee and
FX-spread legs are the platform's income, not the customer's flows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from zhijin.aml.rules import Channel, Party, Scope
from zhijin.aml.workdays import beijing_day

__all__ = [
    "ACCOUNT_CREATED",
    "TRANSFER_CREATED",
    "AccountFact",
    "Movement",
    "account_fact",
    "movement",
    "payment_events",
]

EVENT_PREFIX = "payments."
ACCOUNT_CREATED = EVENT_PREFIX + "account_created"
TRANSFER_CREATED = EVENT_PREFIX + "transfer_created"

_ENTITY_KINDS = frozenset({"merchant", "escrow"})
_INDIVIDUAL_KINDS = frozenset({"customer"})
_SETTLEMENT = "settlement"
_SKIPPED_TRANSFER_KINDS = frozenset({"fee", "fx_spread"})
_FX_KINDS = frozenset({"fx_source", "fx_target"})
_PENDING, _VOID = "pending", "void_pending_transfer"
# The movement's sequence number: block height, then the event's place in the block.
SEQ_PER_BLOCK = 1_000_000
_DAY_MS = 24 * 3600 * 1000
_BEIJING_OFFSET_MS = 8 * 3600 * 1000


@functools.lru_cache(maxsize=4096)
def _day_text(day_number: int) -> str:
    """The Beijing date of a day number (days since 1970-01-01 in UTC+8), as ISO text."""
    return beijing_day(day_number * _DAY_MS).isoformat()


@dataclass(frozen=True, slots=True)
class AccountFact:
    account_id: str
    owner: str
    custodian: str | None
    currency: str
    party: str  # Party
    opened_at_ms: int
    is_settlement: bool


@dataclass(frozen=True, slots=True)
class Movement:
    transfer_id: str
    seq: int  # strictly increasing along the stream
    time_ms: int  # block time
    payer: str
    payee: str
    payer_account: str
    payee_account: str
    payer_party: str
    payee_party: str
    payer_member: str
    payee_member: str
    amount_minor: int
    currency: str
    channel: str  # Channel
    scope: str  # Scope

    @property
    def day(self) -> str:
        return _day_text((self.time_ms + _BEIJING_OFFSET_MS) // _DAY_MS)

    def side_of(self, party: str, member: str) -> str | None:
        """ "out" when (party, member) pays, "in" when it receives, None otherwise."""
        if self.payer == party and self.payer_member == member:
            return "out"
        if self.payee == party and self.payee_member == member:
            return "in"
        return None

    def counterparty(self, direction: str) -> tuple[str, str]:
        """(party, its kind) on the other side of `direction`."""
        if direction == "out":
            return self.payee, self.payee_party
        return self.payer, self.payer_party


def payment_events(
    block_txs: Iterable[Any], end_block_events: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The block's payments events in order: those of successful txs, then the block's end."""
    for tx in block_txs:
        if tx.ok:
            for event in tx.events:
                if str(event.get("type", "")).startswith(EVENT_PREFIX):
                    yield event
    for event in end_block_events:
        if str(event.get("type", "")).startswith(EVENT_PREFIX):
            yield event


def _party_of(kind: str) -> str:
    if kind in _INDIVIDUAL_KINDS:
        return Party.INDIVIDUAL
    if kind in _ENTITY_KINDS:
        return Party.ENTITY
    return Party.PLATFORM


def account_fact(attrs: dict[str, Any]) -> AccountFact:
    return AccountFact(
        account_id=attrs["id"],
        owner=attrs["owner"],
        custodian=attrs.get("custodian"),
        currency=attrs["currency"],
        party=_party_of(attrs["kind"]),
        opened_at_ms=attrs["created_at_ms"],
        is_settlement=attrs["kind"] == _SETTLEMENT,
    )


def movement(
    record: dict[str, Any], *, seq: int, account: Callable[[str], AccountFact | None]
) -> Movement | None:
    """The movement a transfer record makes, or None when it moves no customer's money."""
    flags = record.get("flags", ())
    if _PENDING in flags or _VOID in flags or record.get("kind") in _SKIPPED_TRANSFER_KINDS:
        return None
    debit, credit = account(record["debit_account_id"]), account(record["credit_account_id"])
    if debit is None or credit is None:  # an account the monitor never saw open: not a payment
        return None
    if debit.party == Party.PLATFORM and credit.party == Party.PLATFORM:
        return None  # the members' own books moving between themselves
    cash = debit.is_settlement or credit.is_settlement
    cross_border = record.get("kind") in _FX_KINDS
    return Movement(
        transfer_id=record["id"],
        seq=seq,
        time_ms=record["created_at_ms"],
        payer=debit.owner,
        payee=credit.owner,
        payer_account=debit.account_id,
        payee_account=credit.account_id,
        payer_party=debit.party,
        payee_party=credit.party,
        payer_member=debit.custodian or "",
        payee_member=credit.custodian or "",
        amount_minor=int(record["amount"]),
        currency=record["currency"],
        channel=Channel.CASH if cash else Channel.TRANSFER,
        scope=Scope.CROSS_BORDER if cross_border else Scope.DOMESTIC,
    )

"""Whom a payments transaction names: the owners of the accounts it touches.

The chain's read policy (zhijin/platform/chain_read.py) lets a signed-in customer read the body
of a transaction that names one of their accounts, so a customer paid by someone else sees
that payment on the chain too.  Owners are read from chain state (the account records), so the
answer does not wait for the projections.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

from zhijin.chain.store import ChainStore
from zhijin.payments import limits
from zhijin.payments.records import keys

__all__ = ["account_owners"]

CONTRACT = "payments"
_ACCOUNT_FIELDS = ("debit_account_id", "credit_account_id", "account_id")


def _items(args: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The request objects of a tx: the batch items, or the args themselves."""
    yield args
    for name in ("transfers", "accounts"):
        batch = args.get(name)
        if type(batch) is list:
            bound = max(limits.TRANSFERS_PER_BATCH_MAX, limits.ACCOUNTS_PER_BATCH_MAX)
            yield from (item for item in islice(batch, bound) if type(item) is dict)


def _named(args: Mapping[str, Any]) -> tuple[set[str], set[str], set[str]]:
    """(account ids, hold ids, owners written in the args) a payments tx names."""
    accounts: set[str] = set()
    holds: set[str] = set()
    owners: set[str] = set()
    for item in _items(args):
        for name in _ACCOUNT_FIELDS:
            if type(item.get(name)) is str:
                accounts.add(item[name])
        if type(item.get("pending_id")) is str:
            holds.add(item["pending_id"])  # a post or void may leave the hold's accounts out
        if item is not args and type(item.get("owner")) is str:
            owners.add(item["owner"])  # an account being opened names its owner
    return accounts, holds, owners


def account_owners(store: ChainStore, body: Mapping[str, Any]) -> frozenset[str]:
    """The owners of every account a payments tx body names (empty for other contracts)."""
    args = body.get("args")
    if body.get("contract") != CONTRACT or type(args) is not dict:
        return frozenset()
    accounts, holds, owners = _named(args)
    with store.read() as conn:
        for hold_id in holds:
            hold = store.state_get(conn, keys.transfer(hold_id))
            if isinstance(hold, dict):
                accounts.update(hold.get(f, "") for f in _ACCOUNT_FIELDS[:2])
        for account_id in accounts:
            account = store.state_get(conn, keys.account(account_id))
            if isinstance(account, dict) and type(account.get("owner")) is str:
                owners.add(account["owner"])
    return frozenset(owners)

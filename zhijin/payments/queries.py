"""Reads over committed (or block-staged) state: records by id, whole-ledger scans, trial balance.

These read the chain state directly.  The API's statements and listings read projection
tables fed by the contract's events instead (projection.py); the trial balance and the invariants read state
because they must not trust a projection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zhijin.chain import limits as chain_limits
from zhijin.chain.contract import StateReader
from zhijin.payments.records import Account, FxQuote, PendingState, Transfer, keys

__all__ = [
    "TrialBalanceLine",
    "read_account",
    "read_pending",
    "read_quote",
    "read_transfer",
    "scan_all",
    "trial_balance",
]


def scan_all(reader: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every (key, value) under `prefix` in key order, page by page."""
    start_after = ""
    while True:
        rows = reader.scan(prefix, start_after, chain_limits.SCAN_ROWS_MAX)
        yield from rows
        if len(rows) < chain_limits.SCAN_ROWS_MAX:
            return
        start_after = rows[-1][0]


def read_account(reader: StateReader, account_id: str) -> Account | None:
    data = reader.get(keys.account(account_id))
    return None if data is None else Account.from_json(data)


def read_transfer(reader: StateReader, transfer_id: str) -> Transfer | None:
    data = reader.get(keys.transfer(transfer_id))
    return None if data is None else Transfer.from_json(data)


def read_pending(reader: StateReader, transfer_id: str) -> PendingState | None:
    data = reader.get(keys.pending(transfer_id))
    return None if data is None else PendingState.from_json(data)


def read_quote(reader: StateReader, quote_id: str) -> FxQuote | None:
    data = reader.get(keys.quote(quote_id))
    return None if data is None else FxQuote.from_json(data)


@dataclass(frozen=True, slots=True)
class TrialBalanceLine:
    """One currency's totals over all its accounts; balanced when debits equal credits."""

    currency: str
    accounts: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def balanced(self) -> bool:
        return (
            self.debits_posted == self.credits_posted
            and self.debits_pending == self.credits_pending
        )


def trial_balance(reader: StateReader) -> tuple[TrialBalanceLine, ...]:
    totals: dict[str, list[int]] = {}
    for _, data in scan_all(reader, keys.ACCOUNT):
        line = totals.setdefault(data["currency"], [0, 0, 0, 0, 0])
        line[0] += 1
        line[1] += data["debits_posted"]
        line[2] += data["credits_posted"]
        line[3] += data["debits_pending"]
        line[4] += data["credits_pending"]
    return tuple(
        TrialBalanceLine(
            currency=code,
            accounts=numbers[0],
            debits_posted=numbers[1],
            credits_posted=numbers[2],
            debits_pending=numbers[3],
            credits_pending=numbers[4],
        )
        for code, numbers in sorted(totals.items())
    )

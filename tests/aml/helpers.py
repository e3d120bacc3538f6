"""Synthetic committed blocks of payments' events, for the monitor's tests: the events as the
payments contract emits them (account and transfer records), in TxViews of BlockViews."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, create_engine, select

from zhijin.aml.alerts import Alert
from zhijin.aml.monitor import AmlProjection, alert_from_row, alerts_table, metadata
from zhijin.platform.projections import BlockView, TxView

BANK = "did:key:z6MkBankOne"
BANK2 = "did:key:z6MkBankTwo"
DAY_MS = 24 * 3600 * 1000
# 2026-06-01 10:00 Beijing time (02:00 UTC): a Monday, a working day.
T0 = 1_780_279_200_000
CNY = "CNY"


def account(account_id: str, owner: str, *, kind: str = "customer", currency: str = CNY,
            custodian: str | None = BANK, at_ms: int = T0 - 400 * DAY_MS) -> dict[str, Any]:  # fmt: skip
    return {
        "type": "payments.account_created",
        "attrs": {
            "id": account_id, "owner": owner, "custodian": custodian, "currency": currency,
            "exponent": 2, "kind": kind, "flags": [], "credit_limit": 0, "reference": None,
            "status": "open", "created_at_ms": at_ms, "created_height": 1,
            "debits_pending": 0, "debits_posted": 0, "credits_pending": 0, "credits_posted": 0,
        },
    }  # fmt: skip


_ids = itertools.count(1)


def transfer(debit: str, credit: str, amount: int, *, at_ms: int, transfer_id: str | None = None,
             currency: str = CNY, kind: str = "transfer", flags: Sequence[str] = ()) -> dict[str, Any]:  # fmt: skip
    return {
        "type": "payments.transfer_created",
        "attrs": {
            "id": transfer_id or f"t{next(_ids)}", "debit_account_id": debit,
            "credit_account_id": credit, "amount": amount, "currency": currency,
            "flags": list(flags), "pending_id": None, "timeout_ms": 0, "product": None,
            "reference": None, "kind": kind, "parent_id": None, "fee_amount": 0, "fx": None,
            "created_at_ms": at_ms, "created_height": 0, "tx_hash": "00" * 32,
        },
    }  # fmt: skip


def block(height: int, time_ms: int, events: Iterable[dict[str, Any]]) -> BlockView:
    tx = TxView(
        tx_hash=f"{height:064x}", position=0, sender=BANK, signer=BANK, contract="payments",
        method="create_transfers", args={}, result={"status": "ok", "events": list(events)},
    )  # fmt: skip
    return BlockView(height, time_ms, [tx], [])


@dataclass
class Monitor:
    """The projection over an in-memory SQLite database, applied block by block like the runner
    does (one transaction per block)."""

    engine: Engine = field(default_factory=lambda: create_engine("sqlite://"))
    projection: AmlProjection = field(default_factory=AmlProjection)

    def __post_init__(self) -> None:
        metadata.create_all(self.engine)

    def apply(self, *blocks: BlockView) -> None:
        for view in blocks:
            with self.engine.begin() as conn:
                self.projection.apply(conn, view)

    def alerts(self, typology: str | None = None) -> list[Alert]:
        query = select(alerts_table).order_by(alerts_table.c.alert_id)
        if typology is not None:
            query = query.where(alerts_table.c.typology == typology)
        with self.engine.connect() as conn:
            return [alert_from_row(row) for row in conn.execute(query)]

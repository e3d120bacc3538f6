"""Payments' committed events as credit's flows consumer reads them (their wire form), in
synthetic blocks: for the tests of the projection and of its verifier."""

from __future__ import annotations

from typing import Any

from zhijin.platform.projections import BlockView, TxView

DAY_MS = 86_400_000
NOW_MS = 200 * DAY_MS
WINDOW_MS = 90 * DAY_MS
AMY, BOB, BANK = "did:key:zAmy", "did:key:zBob", "did:key:zBank"


def account_event(account_id: str, owner: str, *, at_ms: int = DAY_MS) -> dict[str, Any]:
    return {
        "type": "payments.account_created",
        "attrs": {"id": account_id, "owner": owner, "custodian": BANK, "currency": "CNY",
                  "created_at_ms": at_ms, "kind": "customer", "flags": []},
    }  # fmt: skip


def transfer_event(
    transfer_id: str, debit: str, credit: str, amount: int, *, at_ms: int, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "payments.transfer_created",
        "attrs": {"id": transfer_id, "debit_account_id": debit, "credit_account_id": credit,
                  "amount": amount, "currency": "CNY", "flags": extra.get("flags", []),
                  "pending_id": extra.get("pending_id"), "created_at_ms": at_ms},
    }  # fmt: skip


def block_of(height: int, *events: dict[str, Any], ok: bool = True) -> BlockView:
    tx = TxView(
        tx_hash=f"{height:064x}",
        position=0,
        sender=BANK,
        signer=BANK,
        contract="payments",
        method="batch",
        args={},
        result={"status": "ok" if ok else "failed", "events": list(events)},
    )
    return BlockView(height, NOW_MS, [tx], [])

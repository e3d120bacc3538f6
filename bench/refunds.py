"""What the refund cap on chain costs: the payments contract alone (execute_tx over in-memory
state), a `refund_transfer` against the baseline of a plain single-transfer `create_transfers`
between the same accounts, measured in the same run.  One JSON line per case; the figure of
record is the ratio.

    .venv/bin/python bench/refunds.py        (well under a minute)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zhijin.chain.contract import (
    MEMBER_PREFIX,
    BlockInfo,
    BlockState,
    ContractRegistry,
    Member,
    TxInfo,
    execute_tx,
)
from zhijin.chain.memory import MemoryState
from zhijin.payments.contract import PAYMENTS_CONTRACT

PAYMENTS = 5_000  # payments into the shop, each refunded once, in part
ROUNDS = 3  # best of, alternating baseline and case


def _runner() -> tuple[Callable[[str, dict[str, Any]], Any], str]:
    bank = Member(did="did:key:z6MkBenchBank", name="Bank", role="bank", weight=1)
    state = MemoryState({MEMBER_PREFIX + bank.did: bank.to_json()})
    registry = ContractRegistry([PAYMENTS_CONTRACT])
    block = BlockInfo(chain_id="bench", height=1, time_ms=1_700_000_000_000)
    staged = BlockState(state)
    counter = [0]

    def run(method: str, args: dict[str, Any]) -> Any:
        counter[0] += 1
        tx = TxInfo(
            tx_hash=hashlib.sha256(counter[0].to_bytes(8, "big")).hexdigest(),
            sender=bank.did,
            signer=bank.did,
            nonce=counter[0],
            contract="payments",
            method=method,
            vouched=False,
        )
        outcome = execute_tx(registry, staged, tx, block, args)
        assert outcome.ok, outcome.message
        return outcome.value

    return run, bank.did


def _setup(tag: str) -> Callable[[str, dict[str, Any]], Any]:
    run, bank = _runner()
    accounts = [
        {"id": "settle", "owner": bank, "currency": "CNY", "kind": "settlement"},
        {"id": "payer", "owner": bank, "currency": "CNY", "kind": "customer"},
        {"id": "shop", "owner": bank, "currency": "CNY", "kind": "merchant"},
    ]
    run("create_accounts", {"accounts": accounts})
    deposit = {"id": "dep", "debit_account_id": "settle", "credit_account_id": "payer"}
    run("create_transfers", {"transfers": [{**deposit, "amount": 10**15, "currency": "CNY"}]})
    for start in range(0, PAYMENTS, 100):
        batch = [
            {
                "id": f"{tag}-buy-{i}",
                "debit_account_id": "payer",
                "credit_account_id": "shop",
                "amount": 1_000,
                "currency": "CNY",
            }
            for i in range(start, start + 100)
        ]
        run("create_transfers", {"transfers": batch})
    return run


def _plain(run: Callable[[str, dict[str, Any]], Any], tag: str) -> float:
    started = time.perf_counter()
    for i in range(PAYMENTS):
        transfer = {
            "id": f"{tag}-back-{i}",
            "debit_account_id": "shop",
            "credit_account_id": "payer",
            "amount": 400,
            "currency": "CNY",
        }
        run("create_transfers", {"transfers": [transfer]})
    return time.perf_counter() - started


def _refunds(run: Callable[[str, dict[str, Any]], Any], tag: str) -> float:
    started = time.perf_counter()
    for i in range(PAYMENTS):
        refund = {"id": f"{tag}-rf-{i}", "original_transfer_id": f"{tag}-buy-{i}", "amount": 400}
        run("refund_transfer", refund)
    return time.perf_counter() - started


def main() -> None:
    plain_s, refund_s = [], []
    for round_no in range(ROUNDS):
        run = _setup(f"p{round_no}")
        plain_s.append(_plain(run, f"p{round_no}"))
        run = _setup(f"r{round_no}")
        refund_s.append(_refunds(run, f"r{round_no}"))
    plain_us = min(plain_s) / PAYMENTS * 1e6
    refund_us = min(refund_s) / PAYMENTS * 1e6
    print(
        json.dumps(
            {
                "case": "contract_only_plain_transfer",
                "txs": PAYMENTS,
                "us_per_tx": round(plain_us, 1),
            }
        )
    )
    print(
        json.dumps(
            {
                "case": "contract_only_refund_transfer",
                "txs": PAYMENTS,
                "us_per_tx": round(refund_us, 1),
                "ratio_vs_plain_transfer": round(refund_us / plain_us, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

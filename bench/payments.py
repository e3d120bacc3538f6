"""Payments benchmark: committed transfers per second between 10,000 accounts.

    .venv/bin/python bench/payments.py

One JSON line per case: SQLite and PostgreSQL (a scratch schema, dropped afterwards) x uniform
traffic or one hot account (every transfer debits it) x per-tx-signed (each tx signed by its
sender, the account owner, as a wallet would) or member-batched (the bank signs batches of
bodies vouching for its customers).  Each tx carries one transfer; a tx's latency runs from its
submission to the commit of its block.  A last line measures the contract alone (in memory, no
signatures, no database), to separate the payments code from the chain's costs.

Reference points: a plain PostgreSQL double-entry ledger does ~10k transfers/s; Fabric 2.5
~3k tx/s.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import tempfile
import time
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
from zhijin.chain.crypto import KeyPair
from zhijin.chain.memory import MemoryState
from zhijin.chain.tx import make_body, sign_batch, sign_tx
from zhijin.payments import service
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.platform.bench import _run_case, _scratch_schema
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.runtime import Platform, init_data_dir
from zhijin.platform.settings import Settings

ACCOUNTS = 10_000
TRANSFERS_PER_CASE = 4_000
BATCH_BODIES = 500
SETUP_ITEMS = 100  # accounts or deposits per setup tx
DEPOSIT_MINOR = 10_000_000
HOT_DEPOSIT_MINOR = 10**15
PG_URL = os.environ.get("ZHIJIN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _setup(platform: Platform, owners: list[str]) -> None:
    """Open and fund the accounts through the contract, in member batches of 100 items."""
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    service.open_accounts(
        platform,
        gateway,
        accounts=[{"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"}],
    )
    accounts = [
        {"id": f"a{i}", "owner": owner, "currency": "CNY", "kind": "customer"}
        for i, owner in enumerate(owners)
    ]
    deposits = [
        {
            "id": f"dep{i}",
            "debit_account_id": "settle",
            "credit_account_id": f"a{i}",
            "amount": HOT_DEPOSIT_MINOR if i == 0 else DEPOSIT_MINOR,
            "currency": "CNY",
        }
        for i in range(len(owners))
    ]
    for method, name, items in (
        ("create_accounts", "accounts", accounts),
        ("create_transfers", "transfers", deposits),
    ):
        bodies = [
            make_body(
                chain_id=platform.genesis.chain_id,
                sender=member,
                nonce=gateway.next_nonce(),
                contract="payments",
                method=method,
                args={name: items[start : start + SETUP_ITEMS]},
                valid_until=platform.node.clock() + 3_600_000,
            )
            for start in range(0, len(items), SETUP_ITEMS)
        ]
        admissions = platform.node.submit(sign_batch(platform.node.key, bodies))
        for admission in admissions:
            assert admission.future is not None, admission.code
            result = admission.future.result(timeout=300)
            assert result["status"] == "ok" and result["return"]["failed"] == 0, result


def _transfer_bodies(
    platform: Platform, owners: list[str], *, hot: bool, seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    valid_until = platform.node.clock() + 3_600_000
    bodies = []
    for index in range(TRANSFERS_PER_CASE):
        debit = 0 if hot else rng.randrange(len(owners))
        credit = rng.randrange(1, len(owners))
        if credit == debit:
            credit = credit % (len(owners) - 1) + 1
        transfer = {
            "id": f"t{seed}-{index}",
            "debit_account_id": f"a{debit}",
            "credit_account_id": f"a{credit}",
            "amount": rng.randint(1, 1_000),
            "currency": "CNY",
        }
        bodies.append(
            make_body(
                chain_id=platform.genesis.chain_id,
                sender=owners[debit],
                nonce=index + 1,
                contract="payments",
                method="create_transfers",
                args={"transfers": [transfer]},
                valid_until=valid_until,
            )
        )
    return bodies


def _booked(platform: Platform, bodies: list[dict[str, Any]]) -> int:
    """How many of the case's transfers the chain holds (each must be there exactly once)."""
    booked = 0
    with platform.store.read() as conn:
        for body in bodies:
            transfer_id = body["args"]["transfers"][0]["id"]
            if platform.store.state_get(conn, f"payments/transfer/{transfer_id}") is not None:
                booked += 1
    return booked


def run_case(database: str, traffic: str, signing: str, keys: list[KeyPair]) -> dict[str, Any]:
    base_url = PG_URL if database == "postgresql" else None
    with (
        tempfile.TemporaryDirectory(prefix="zhijin-paybench-") as tmp,
        _scratch_schema(base_url) as case_url,
    ):
        settings = Settings(data=Path(tmp), database_url=case_url, platform_database_url=case_url)
        init_data_dir(settings, members=1, chain_id=f"paybench-{os.getpid()}")
        with Platform(settings) as platform:
            owners = [key.did for key in keys]
            started = time.perf_counter()
            _setup(platform, owners)
            setup_s = time.perf_counter() - started
            bodies = _transfer_bodies(
                platform, owners, hot=traffic == "hot_account", seed=len(signing)
            )
            if signing == "per_tx_signed":
                by_did = {key.did: key for key in keys}
                envelopes: list[Any] = [sign_tx(by_did[b["sender"]], b) for b in bodies]
                figures = _run_case(platform, envelopes, platform.node.submit_many)
            else:
                member = platform.node.key
                envelopes = [
                    sign_batch(member, bodies[i : i + BATCH_BODIES])
                    for i in range(0, len(bodies), BATCH_BODIES)
                ]
                figures = _run_case(
                    platform,
                    envelopes,
                    lambda chunk: [a for e in chunk for a in platform.node.submit(e)],
                )
            booked = _booked(platform, bodies)
            books = service.trial_balance(platform, source="chain")
            assert books["balanced"], books
    return {
        "bench": "payments",
        "database": database,
        "traffic": traffic,
        "signing": signing,
        "accounts": ACCOUNTS,
        "transfers": len(bodies),
        "booked": booked,
        "committed_transfers_per_s": figures["committed_tx_per_s"],
        "p50_commit_ms": figures["p50_commit_ms"],
        "p99_commit_ms": figures["p99_commit_ms"],
        "seconds": figures["seconds"],
        "blocks": figures["blocks"],
        "setup_s": round(setup_s, 2),
        "cores": os.cpu_count(),
    }


def contract_only(transfers: int = 20_000) -> dict[str, Any]:
    """The payments contract alone: execute_tx over in-memory state, one transfer per tx."""
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

    accounts = [{"id": "settle", "owner": bank.did, "currency": "CNY", "kind": "settlement"}] + [
        {"id": f"a{i}", "owner": bank.did, "currency": "CNY", "kind": "customer"}
        for i in range(1_000)
    ]
    for start in range(0, len(accounts), 100):
        run("create_accounts", {"accounts": accounts[start : start + 100]})
    run(
        "create_transfers",
        {
            "transfers": [
                {
                    "id": f"d{i}",
                    "debit_account_id": "settle",
                    "credit_account_id": f"a{i}",
                    "amount": 10**12,
                    "currency": "CNY",
                }
                for i in range(100)
            ]
        },
    )
    rng = random.Random(7)
    started = time.perf_counter()
    for index in range(transfers):
        debit = rng.randrange(100)
        run(
            "create_transfers",
            {
                "transfers": [
                    {
                        "id": f"t{index}",
                        "debit_account_id": f"a{debit}",
                        "credit_account_id": f"a{debit + 100}",
                        "amount": 1 + index % 999,
                        "currency": "CNY",
                    }
                ]
            },
        )
    seconds = time.perf_counter() - started
    return {
        "bench": "payments",
        "case": "contract_only",
        "transfers": transfers,
        "transfers_per_s": round(transfers / seconds),
        "us_per_transfer": round(seconds / transfers * 1e6, 1),
    }


def main() -> None:
    keys = [KeyPair.generate() for _ in range(ACCOUNTS)]
    for database in ("sqlite", "postgresql"):
        for traffic in ("uniform", "hot_account"):
            for signing in ("per_tx_signed", "member_batch"):
                print(json.dumps(run_case(database, traffic, signing, keys)), flush=True)
    print(json.dumps(contract_only()), flush=True)


if __name__ == "__main__":
    main()

"""The anchor for bench/payments.py: a minimal double-entry ledger in plain PostgreSQL.

    .venv/bin/python bench/pg_ledger.py      # alone: one JSON line per traffic case

What a competent team writes without a chain: an accounts table holding balances, a transfers
table, and per database transaction (READ COMMITTED, fsync and synchronous_commit as the
server has them, on by default) 100 transfers: lock the touched accounts with
`SELECT ... FOR UPDATE` in id order (no deadlocks), refuse a transfer that would overdraw,
update the balances and insert the transfer rows.  8 client connections, each on its own thread
(psycopg releases the GIL while it waits on the server).  It runs in a scratch schema, dropped
afterwards, of the same database as the payments bench.

Same traffic as the payments bench: ACCOUNTS accounts, uniform (random debit and credit) or one
hot account (every transfer debits account 0).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

ACCOUNTS = 5_000  # halved with bench/payments.py (which takes this figure) on 2026-12-03
TRANSFERS = 10_000
TRANSFERS_PER_DB_TX = 100
CLIENTS = 8
DEPOSIT_MINOR = 10_000_000
HOT_DEPOSIT_MINOR = 10**15
PG_URL = os.environ.get("ZHIJIN_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

SCHEMA_SQL = """
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
    id bigint PRIMARY KEY,
    debit_account_id bigint NOT NULL REFERENCES accounts (id),
    credit_account_id bigint NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL CHECK (amount > 0)
);
"""


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL the benches share, as libpq reads it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def _scratch(url: str) -> Iterator[str]:
    schema = f"pgledger_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _transfers(count: int, *, hot: bool, seed: int) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        debit = 0 if hot else rng.randrange(ACCOUNTS)
        credit = rng.randrange(1, ACCOUNTS)
        if credit == debit:
            credit = credit % (ACCOUNTS - 1) + 1
        rows.append((index + 1, debit, credit, rng.randint(1, 1_000)))
    return rows


def _book(conn: psycopg.Connection[Any], batch: list[tuple[int, int, int, int]]) -> int:
    """One database transaction of transfers; returns how many were booked."""
    with conn.transaction(), conn.cursor() as cur:
        touched = sorted({account for _, d, c, _ in batch for account in (d, c)})
        cur.execute(
            "SELECT id, balance FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            (touched,),
        )
        balances = dict(cur.fetchall())
        booked = []
        for transfer in batch:
            _, debit, credit, amount = transfer
            if balances[debit] < amount:
                continue  # refused: would overdraw
            balances[debit] -= amount
            balances[credit] += amount
            booked.append(transfer)
        cur.execute(
            "UPDATE accounts SET balance = v.balance FROM unnest(%s::bigint[], %s::bigint[])"
            " AS v(id, balance) WHERE accounts.id = v.id",
            (touched, [balances[a] for a in touched]),
        )
        cur.executemany(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount)"
            " VALUES (%s, %s, %s, %s)",
            booked,
        )
    return len(booked)


def run(traffic: str, *, url: str = PG_URL, transfers: int = TRANSFERS) -> dict[str, Any]:
    """Book `transfers` transfers from CLIENTS connections; committed transfers per second."""
    libpq = _libpq_url(url)
    hot = traffic == "hot_account"
    with _scratch(libpq) as schema:
        options = f"-csearch_path={schema}"
        with psycopg.connect(libpq, options=options, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)
            conn.execute(
                "INSERT INTO accounts SELECT i, CASE WHEN i = 0 THEN %s ELSE %s END"
                " FROM generate_series(0, %s) AS i",
                (HOT_DEPOSIT_MINOR, DEPOSIT_MINOR, ACCOUNTS - 1),
            )
            conn.execute("ANALYZE accounts")
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings"
                    " WHERE name IN ('fsync', 'synchronous_commit', 'default_transaction_isolation')"
                ).fetchall()
            )
        rows = _transfers(transfers, hot=hot, seed=7)
        batches = [
            rows[i : i + TRANSFERS_PER_DB_TX] for i in range(0, len(rows), TRANSFERS_PER_DB_TX)
        ]
        booked = [0] * CLIENTS
        connections = [psycopg.connect(libpq, options=options) for _ in range(CLIENTS)]
        try:

            def client(worker: int) -> None:
                conn = connections[worker]
                for batch in batches[worker::CLIENTS]:
                    booked[worker] += _book(conn, batch)

            threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
        finally:
            for conn in connections:
                conn.close()
        with psycopg.connect(libpq, options=options) as conn:
            total, stored = conn.execute(
                "SELECT (SELECT sum(balance) FROM accounts), (SELECT count(*) FROM transfers)"
            ).fetchone() or (0, 0)
    expected_total = HOT_DEPOSIT_MINOR + DEPOSIT_MINOR * (ACCOUNTS - 1)
    assert total == expected_total, f"the ledger does not balance: {total} != {expected_total}"
    assert stored == sum(booked), (stored, booked)
    return {
        "bench": "pg_ledger",
        "traffic": traffic,
        "transfers": transfers,
        "booked": sum(booked),
        "transfers_per_db_tx": TRANSFERS_PER_DB_TX,
        "clients": CLIENTS,
        "seconds": round(seconds, 3),
        "committed_transfers_per_s": round(sum(booked) / seconds),
        "fsync": settings.get("fsync"),
        "synchronous_commit": settings.get("synchronous_commit"),
        "isolation": settings.get("default_transaction_isolation"),
    }


if __name__ == "__main__":
    for case in sys.argv[1:] or ["uniform", "hot_account"]:
        print(json.dumps(run(case)), flush=True)

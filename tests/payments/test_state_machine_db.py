"""The ledger state machine (test_state_machine.py) with its state in a real database: the
same random operation sequences and invariant checks after every block, on SQLite and on the
PostgreSQL server, so key order, scans and stored bytes are the database's, not a dict's.

Fewer examples than the in-memory run: each step costs real database round trips."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.payments.store_state import StoreChain
from tests.payments.test_state_machine import LedgerMachine

DB_SETTINGS = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class SqliteLedgerMachine(LedgerMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = StoreChain(engine_name="sqlite")

    def teardown(self) -> None:
        self.chain.close()  # type: ignore[attr-defined]


class PostgresLedgerMachine(LedgerMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = StoreChain(engine_name="postgresql")

    def teardown(self) -> None:
        self.chain.close()  # type: ignore[attr-defined]


SqliteLedgerMachine.TestCase.settings = DB_SETTINGS
PostgresLedgerMachine.TestCase.settings = DB_SETTINGS
TestSqliteLedgerMachine = SqliteLedgerMachine.TestCase
TestPostgresLedgerMachine = PostgresLedgerMachine.TestCase

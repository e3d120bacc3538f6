"""Verifying projections against the chain: every query-table row recomputed from chain state.

A projection is a function of the blocks, but its tables live in the platform database, where
anyone with write access can change a row: add 1,000,000 CNY to an account and `chain verify`
still passes (the chain is untouched), the chain-side trial balance still balances, and the
customer sees the false balance.  `verify_projections` closes that gap: each domain's
`ProjectionVerifier` reads what its rows should hold from the committed state (the chain's state
history at the height the projection's cursor says it applied, so a projection that is merely
behind is not reported) and names every row, field and value that differs.  The platform database is
read in one snapshot, so the cursor and the rows agree while the projector applies blocks; the
chain's state history up to a committed height never changes.

Each domain names its verifiers in its manifest (`projection_verifiers` in its module.py),
beside the projections they check; `zhijin.node.modules.default_projection_verifiers` collects
them in manifest order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, and_, func, inspect, select

from zhijin.chain.codec import decode_trusted
from zhijin.chain.store import ChainStore, state_history
from zhijin.platform.projections import BlockView, cursors, load_block

__all__ = [
    "MISMATCHES_MAX",
    "KeyedTable",
    "Mismatch",
    "ProjectionReport",
    "ProjectionVerifier",
    "StateAt",
    "compare_keyed_rows",
    "compare_page",
    "rows_without_records",
    "snapshot",
    "verify_projections",
]

MISMATCHES_MAX = 1_000  # reported per run; the count says how many more there were
STATE_PAGE_KEYS = 1_000  # state keys (and rows) compared per page
_KEY_END = "\U0010ffff"  # above every real key character (as in ChainStore.state_scan)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One projected value that is not what the chain says it must be."""

    domain: str
    table: str
    key: str
    field: str
    expected: Any  # None with field "row": the row should not exist
    found: Any  # None with field "row": the row is missing

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "table": self.table,
            "key": self.key,
            "field": self.field,
            "expected": self.expected,
            "found": self.found,
        }


class StateAt:
    """Committed chain state as it stood after block `height`, read from the state history
    (the rows each block wrote), never from a projection; and, for a projection of events
    rather than state, the committed blocks up to that height."""

    def __init__(self, conn: Connection, height: int, *, store: ChainStore) -> None:
        self.conn = conn
        self.height = height
        self.store = store

    def blocks(self) -> Iterator[BlockView]:
        """Every committed block from genesis to `height`, in order, exactly as the projection
        runner feeds them to a projection (one at a time: memory stays bounded)."""
        for height in range(self.height + 1):
            block = load_block(self.store, height)
            if block is None:  # the cursor is never past the committed head
                raise LookupError(f"block {height} is not committed")
            yield block

    def _latest(self, *conditions: Any) -> Iterator[tuple[str, Any]]:
        newest = (
            select(state_history.c.key, func.max(state_history.c.height).label("height"))
            .where(state_history.c.height <= self.height, *conditions)
            .group_by(state_history.c.key)
            .subquery()
        )
        rows = self.conn.execute(
            select(state_history.c.key, state_history.c.value)
            .join(
                newest,
                and_(
                    state_history.c.key == newest.c.key,
                    state_history.c.height == newest.c.height,
                ),
            )
            .order_by(state_history.c.key)
        )
        for row in rows:
            if row.value is not None:  # NULL: deleted by that block
                # State values were validated canonical JSON when their block committed.
                yield row.key, decode_trusted(row.value)

    def scan(
        self, prefix: str, *, page_keys: int = STATE_PAGE_KEYS
    ) -> Iterator[list[tuple[str, Any]]]:
        """Every live key under `prefix`, in key order, a page at a time."""
        after = ""
        while True:
            keys = list(
                self.conn.execute(
                    select(state_history.c.key)
                    .where(
                        state_history.c.key >= prefix,
                        state_history.c.key > after,
                        state_history.c.key < prefix + _KEY_END,
                        state_history.c.height <= self.height,
                    )
                    .group_by(state_history.c.key)
                    .order_by(state_history.c.key)
                    .limit(page_keys)
                ).scalars()
            )
            if not keys:
                return
            yield list(self._latest(state_history.c.key.in_(keys)))
            after = keys[-1]

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The live values of `keys` (absent keys are left out)."""
        return dict(self._latest(state_history.c.key.in_(list(keys)))) if keys else {}


class ProjectionVerifier(Protocol):
    """A domain's check of its query tables.  `name` is the projection whose cursor gives the
    height to compare at; `verify` returns every mismatch it finds (it may stop early once it
    has `MISMATCHES_MAX`)."""

    domain: str
    name: str

    def verify(self, state: StateAt, conn: Connection) -> list[Mismatch]: ...


@dataclass(frozen=True, slots=True)
class ProjectionReport:
    heights: Mapping[str, int]  # the height each projection was checked at
    mismatches: tuple[Mismatch, ...]
    mismatches_total: int

    @property
    def ok(self) -> bool:
        return self.mismatches_total == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "heights": dict(self.heights),
            "mismatches_total": self.mismatches_total,
            "mismatches": [m.to_json() for m in self.mismatches],
        }


def _cursor(conn: Connection, name: str) -> int:
    if not inspect(conn).has_table(cursors.name):
        return -1
    height = conn.execute(select(cursors.c.height).where(cursors.c.name == name)).scalar()
    return -1 if height is None else int(height)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A platform-database connection that sees one snapshot throughout, so the cursor and the
    rows it read agree while the projector keeps applying blocks: REPEATABLE READ on
    PostgreSQL, an explicit read transaction on SQLite (WAL fixes its view at the first read)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite would not open one for reads
        yield conn


def verify_projections(
    store: ChainStore, engine: Engine, verifiers: Sequence[ProjectionVerifier]
) -> ProjectionReport:
    """Run each verifier at its projection's cursor.  The report keeps the first
    `MISMATCHES_MAX` mismatches and counts what the verifiers found (each stops looking once it
    has about that many, so a total at or above it means "at least")."""
    heights: dict[str, int] = {}
    mismatches: list[Mismatch] = []
    total = 0
    for verifier in verifiers:
        with snapshot(engine) as conn, store.read() as chain:
            height = _cursor(conn, verifier.name)
            found = verifier.verify(StateAt(chain, height, store=store), conn)
        heights[verifier.name] = height
        total += len(found)
        mismatches += found[: max(0, MISMATCHES_MAX - len(mismatches))]
    return ProjectionReport(heights, tuple(mismatches), total)


# -- a helper most verifiers share ---------------------------------------------------------------


ExpectedRow = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class KeyedTable:
    """A table with one row per chain record under `prefix`: the row's key column holds the
    record key without the prefix, and `expected(record)` is the row the projection must hold
    (only the columns it names are compared)."""

    domain: str
    table: Table
    key_column: str
    prefix: str
    expected: ExpectedRow


def compare_keyed_rows(state: StateAt, conn: Connection, spec: KeyedTable) -> list[Mismatch]:
    """Both ways: every record has its row with the expected values, and every row has its
    record (a row added to the table is as false as a changed one)."""
    found: list[Mismatch] = []
    for page in state.scan(spec.prefix):
        if len(found) >= MISMATCHES_MAX:
            return found
        found += compare_page(conn, spec, page)
    return found + rows_without_records(state, conn, spec)


def compare_page(
    conn: Connection, spec: KeyedTable, page: Sequence[tuple[str, Any]]
) -> list[Mismatch]:
    """One page of (state key, record) against the rows of those keys."""
    key_column = spec.table.c[spec.key_column]
    ids = [key[len(spec.prefix) :] for key, _ in page]
    rows = {
        row._mapping[spec.key_column]: dict(row._mapping)
        for row in conn.execute(select(spec.table).where(key_column.in_(ids)))
    }
    found: list[Mismatch] = []
    for row_key, (_, record) in zip(ids, page, strict=True):
        found += _compare_row(spec, row_key, spec.expected(record), rows.get(row_key))
    return found


def _compare_row(
    spec: KeyedTable, key: str, expected: dict[str, Any], row: Mapping[str, Any] | None
) -> list[Mismatch]:
    name = spec.table.name
    if row is None:
        return [Mismatch(spec.domain, name, key, "row", "present", None)]
    return [
        Mismatch(spec.domain, name, key, column, value, row[column])
        for column, value in expected.items()
        if row[column] != value
    ]


def rows_without_records(state: StateAt, conn: Connection, spec: KeyedTable) -> list[Mismatch]:
    """Rows whose record is not on chain at the checked height."""
    found: list[Mismatch] = []
    key_column = spec.table.c[spec.key_column]
    after: str | None = None
    while len(found) < MISMATCHES_MAX:
        query = select(key_column).order_by(key_column).limit(STATE_PAGE_KEYS)
        if after is not None:
            query = query.where(key_column > after)
        ids = list(conn.execute(query).scalars())
        if not ids:
            break
        present = state.get_many([spec.prefix + row_key for row_key in ids])
        found += [
            Mismatch(spec.domain, spec.table.name, row_key, "row", None, "present")
            for row_key in ids
            if spec.prefix + row_key not in present
        ]
        after = ids[-1]
    return found

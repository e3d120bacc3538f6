"""The payments state machine's state on a real database: `MemoryState`'s interface over a
`ChainStore`'s state tables, on SQLite or PostgreSQL.

Reads go through the store's own `state_get` / `state_scan` (the queries the node executes
blocks against: key order under the "C" collation, canonical bytes in and out) and each block's
write set is committed in one database transaction by the store's state writer, so the ledger's
invariants are checked against what the database really returns.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import pg_base_url
from tests.payments.helpers import Chain
from zhijin.chain.codec import canonical
from zhijin.chain.contract import BlockState
from zhijin.chain.store import ChainStore
from zhijin.platform.scratch import scratch_schema

__all__ = ["StoreChain", "StoreState", "open_store"]


class ScratchDatabase:
    """A fresh SQLite file or PostgreSQL schema, removed by `drop()`."""

    def __init__(self, engine_name: str) -> None:
        self._cleanup = ExitStack()
        if engine_name == "sqlite":
            directory = self._cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="zj-ledger-")
            )
            self.url = f"sqlite:///{Path(directory) / 'chain.db'}"
            return
        url = self._cleanup.enter_context(scratch_schema(pg_base_url(), prefix="zt"))
        assert url is not None
        self.url = url

    def drop(self) -> None:
        self._cleanup.close()


class StoreState:
    """Committed state in a ChainStore; `commit` writes one block's write set."""

    def __init__(self, store: ChainStore, data: dict[str, Any] | None = None) -> None:
        self.store = store
        self.height = 0
        if data:
            with store.engine.begin() as conn:
                store._write_state(conn, 0, sorted((k, canonical(v)) for k, v in data.items()))

    @property
    def raw(self) -> dict[str, bytes]:
        return {key: bytes(value) for key, value, _height in self.store.iter_state()}

    @property
    def data(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self.raw.items()}

    def get(self, key: str) -> Any | None:
        with self.store.read() as conn:
            return self.store.state_get(conn, key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        with self.store.read() as conn:
            return self.store.state_scan(conn, prefix, start_after, limit)

    def commit(self, block_state: BlockState) -> None:
        self.height += 1
        writes = block_state.write_set()
        if writes:
            with self.store.engine.begin() as conn:
                self.store._write_state(conn, self.height, writes)


def open_store(engine_name: str) -> tuple[ChainStore, ScratchDatabase]:
    database = ScratchDatabase(engine_name)
    store = ChainStore(database.url)
    store.create_schema()
    return store, database


@dataclass
class StoreChain(Chain):
    """`Chain` whose committed state lives in a real database."""

    engine_name: str = "sqlite"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.store, self._database = open_store(self.engine_name)
        self.state = StoreState(self.store, self.state.data)  # type: ignore[assignment]

    def close(self) -> None:
        self.store.close()
        self._database.drop()

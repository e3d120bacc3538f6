"""An in-memory StateReader: for contract unit tests and property tests without a database."""

from __future__ import annotations

import bisect
from typing import Any

from zhijin.chain.contract import BlockState


class MemoryState:
    """Committed key-value state held in a dict, with ordered keys for prefix scans."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self._keys = sorted(self.data)

    def get(self, key: str) -> Any | None:
        return self.data.get(key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        start = max(prefix, start_after)
        index = (
            bisect.bisect_right(self._keys, start)
            if start == start_after
            else bisect.bisect_left(self._keys, start)
        )
        rows: list[tuple[str, Any]] = []
        while index < len(self._keys) and len(rows) < limit:
            key = self._keys[index]
            if not key.startswith(prefix):
                break
            rows.append((key, self.data[key]))
            index += 1
        return rows

    def commit(self, block_state: BlockState) -> None:
        for key, value in block_state.write_set():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        self._keys = sorted(self.data)

"""An in-memory StateReader: for contract unit tests, property tests and `chain verify`."""

from __future__ import annotations

import bisect
from typing import Any

from zhijin.chain.codec import canonical, decode_trusted
from zhijin.chain.contract import BlockState


class MemoryState:
    """Committed key-value state held as canonical bytes, with ordered keys for prefix scans.

    Reads decode a fresh value each time, exactly like the database-backed reader; values were
    canonical when written, so they are decoded without the strict decoder's checks.
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.raw: dict[str, bytes] = {k: canonical(v) for k, v in (data or {}).items()}
        self._keys = sorted(self.raw)

    @property
    def data(self) -> dict[str, Any]:
        """A decoded copy of the whole state (for assertions in tests)."""
        return {key: decode_trusted(value) for key, value in self.raw.items()}

    def get(self, key: str) -> Any | None:
        value = self.raw.get(key)
        return None if value is None else decode_trusted(value)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        if start_after >= prefix:
            index = bisect.bisect_right(self._keys, start_after)
        else:
            index = bisect.bisect_left(self._keys, prefix)
        rows: list[tuple[str, Any]] = []
        while index < len(self._keys) and len(rows) < limit:
            key = self._keys[index]
            if not key.startswith(prefix):
                break
            rows.append((key, decode_trusted(self.raw[key])))
            index += 1
        return rows

    def commit(self, block_state: BlockState) -> None:
        for key, value in block_state.write_set():
            if value is None:
                if self.raw.pop(key, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, key)]
            else:
                if key not in self.raw:
                    bisect.insort(self._keys, key)
                self.raw[key] = value

"""The guestbook's named invariants over a whole chain state: each a small function returning
its problems (empty when it holds), registered by name in `INVARIANTS`."""

from __future__ import annotations

from collections.abc import Callable

from tests.node.example_domain.records import keys
from zhijin.chain import limits as chain_limits
from zhijin.chain.contract import StateReader

__all__ = ["INVARIANTS", "check_invariants"]


def _entry_count(reader: StateReader) -> int:
    """Entries on chain, counted page by page (a bounded loop per page)."""
    count, after = 0, ""
    while page := reader.scan(keys.ENTRY, after, chain_limits.SCAN_ROWS_MAX):
        count += len(page)
        after = page[-1][0]
    return count


def count_matches_entries(reader: StateReader) -> list[str]:
    """The count record says how many entries there are."""
    recorded = (reader.get(keys.COUNT) or {"entries": 0})["entries"]
    found = _entry_count(reader)
    return [] if recorded == found else [f"count says {recorded} entries, chain holds {found}"]


INVARIANTS: tuple[tuple[str, Callable[[StateReader], list[str]]], ...] = (
    ("count_matches_entries", count_matches_entries),
)


def check_invariants(reader: StateReader) -> list[str]:
    """Every broken invariant as "name: problem"."""
    return [f"{name}: {problem}" for name, check in INVARIANTS for problem in check(reader)]

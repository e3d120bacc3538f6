"""Who the members are at each height: the member set and quorum in force after every block.

Members and the quorum live in state under `governance/` (genesis writes them in block 0;
governance transactions change them).  The block at height h is judged, for signatures and
finality, by the set in force after block h-1.  Reading that from the database for every vote
would be wasteful and membership rarely changes, so `MembershipHistory` keeps the change points
(height, set) in memory: loaded once from the state history, extended on commit when a block's
write set touches `governance/`, and answered by binary search.
"""

from __future__ import annotations

import bisect
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select

from zhijin.chain.contract import GOVERNANCE_CONFIG_KEY, GOVERNANCE_PREFIX, MEMBER_PREFIX, Member
from zhijin.chain.errors import invariant

__all__ = ["MemberSet", "MembershipHistory", "member_set_from_state"]


@dataclass(frozen=True, slots=True)
class MemberSet:
    """The consortium as of one height: members by DID and the weight that makes a quorum."""

    members: Mapping[str, Member]
    quorum_weight: int
    weights: Mapping[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", MappingProxyType(dict(self.members)))
        weights = {did: member.weight for did, member in self.members.items()}
        object.__setattr__(self, "weights", MappingProxyType(weights))

    @property
    def total_weight(self) -> int:
        return sum(self.weights.values())

    def is_member(self, did: str) -> bool:
        return did in self.members


def member_set_from_state(rows: Mapping[str, Any]) -> MemberSet:
    """Build the set from decoded `governance/` state rows (key -> value)."""
    members: dict[str, Member] = {}
    quorum = 0
    for key, value in rows.items():
        if key.startswith(MEMBER_PREFIX):
            member = Member.from_json(value)
            members[member.did] = member
        elif key == GOVERNANCE_CONFIG_KEY:
            quorum = int(value["quorum_weight"])
    invariant(quorum > 0, "governance state holds no quorum weight")
    return MemberSet(members, quorum)


class MembershipHistory:
    """Member sets by height, as change points; safe to read from any thread.

    Writers (the block-committing thread) append a new change point after committing a block
    that wrote `governance/` keys; readers see either the old or the new tuple, never a half.
    """

    def __init__(self, state: Mapping[str, Any], *, height: int = 0) -> None:
        self._rows: dict[str, Any] = dict(state)  # latest decoded governance/ rows
        self._lock = threading.Lock()
        self._points: tuple[tuple[int, ...], tuple[MemberSet, ...]] = (
            (height,),
            (member_set_from_state(self._rows),),
        )

    # -- reads -----------------------------------------------------------------------------------
    def after(self, height: int) -> MemberSet:
        """The set in force after block `height` (so: the judge of block `height + 1`)."""
        heights, sets = self._points
        index = bisect.bisect_right(heights, height) - 1
        invariant(index >= 0, f"no member set known at height {height}")
        return sets[index]

    def latest(self) -> MemberSet:
        return self._points[1][-1]

    def change_heights(self) -> tuple[int, ...]:
        return self._points[0]

    # -- writes ----------------------------------------------------------------------------------
    def apply_writes(self, height: int, writes: Sequence[tuple[str, bytes | None]]) -> bool:
        """Record block `height`'s sorted write set; returns whether membership changed."""
        start = bisect.bisect_left(writes, (GOVERNANCE_PREFIX,))
        changed = False
        with self._lock:
            for key, raw in writes[start:]:
                if not key.startswith(GOVERNANCE_PREFIX):
                    break
                if raw is None:
                    self._rows.pop(key, None)
                else:
                    self._rows[key] = json.loads(raw)
                changed = True
            if not changed:
                return False
            heights, sets = self._points
            invariant(height > heights[-1], "membership changes are recorded in height order")
            self._points = ((*heights, height), (*sets, member_set_from_state(self._rows)))
        return True

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Any, *, up_to: int | None = None) -> MembershipHistory:
        """Replay every `governance/` write in the state history (a few rows per change)."""
        from zhijin.chain.store import state_history

        query = (
            select(state_history.c.height, state_history.c.key, state_history.c.value)
            # A key range rather than LIKE: it uses the key index on SQLite and PostgreSQL.
            .where(state_history.c.key >= GOVERNANCE_PREFIX)
            .where(state_history.c.key < GOVERNANCE_PREFIX[:-1] + chr(ord("/") + 1))
            .order_by(state_history.c.height, state_history.c.key)
        )
        if up_to is not None:
            query = query.where(state_history.c.height <= up_to)
        with store.read() as conn:
            rows = [(int(r.height), r.key, r.value) for r in conn.execute(query)]
        return cls.from_rows(rows)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, str, bytes | None]]) -> MembershipHistory:
        """Build from (height, key, canonical value or None) rows in height order."""
        by_height: dict[int, list[tuple[str, bytes | None]]] = {}
        for height, key, value in rows:
            by_height.setdefault(height, []).append((key, value))
        invariant(0 in by_height, "block 0 wrote no governance state")
        genesis_rows = {k: json.loads(v) for k, v in by_height.pop(0) if v is not None}
        history = cls(genesis_rows, height=0)
        for height in sorted(by_height):
            history.apply_writes(height, sorted(by_height[height]))
        return history

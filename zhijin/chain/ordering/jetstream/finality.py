"""Finality: members' votes make a block final; a peer whose block they did not sign halts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from zhijin.chain.block import Signature, valid_signatures
from zhijin.chain.errors import invariant
from zhijin.chain.membership import MembershipHistory
from zhijin.chain.ordering.jetstream.limits import VOTE_BUFFER_HEIGHTS_MAX
from zhijin.chain.ordering.jetstream.messages import BlockVote
from zhijin.chain.ordering.jetstream.store import ClusterStore
from zhijin.chain.store import ChainStore

__all__ = ["Divergence", "FinalityTracker", "stored_final_height"]

log = logging.getLogger("zhijin.chain.jetstream")


@dataclass(frozen=True, slots=True)
class Divergence:
    """Why a peer halted: at `height` its block differs from what the consortium signed."""

    height: int
    local_hash: str
    reason: str
    other_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "local_hash": self.local_hash,
            "other_hash": self.other_hash,
            "reason": self.reason,
        }


@dataclass(slots=True)
class _HeightVotes:
    by_hash: dict[bytes, dict[str, Signature]] = field(default_factory=dict)
    headers: dict[bytes, bytes] = field(default_factory=dict)


class FinalityTracker:
    """Collects votes; decides finality per block; detects a divergent local chain.

    Only the finality thread calls `on_vote`/`on_commit`; readers use `final_height` and
    `wait_final`, guarded by the condition.
    """

    def __init__(
        self,
        store: ClusterStore,
        membership: MembershipHistory,
        *,
        start_height: int,
        listeners: list[Callable[[int], None]] | None = None,
    ) -> None:
        self.store = store
        self.membership = membership
        # Called with the new final height whenever it advances (projections follow it).
        self.listeners = listeners if listeners is not None else []
        self._cond = threading.Condition()
        self.final_height = start_height  # every block up to here is final on this peer
        self._final_above: set[int] = set()
        self._votes: dict[int, _HeightVotes] = {}
        self._future: dict[int, list[BlockVote]] = {}  # votes for blocks not committed here yet
        self.rejected_votes = 0
        self.halted: Divergence | None = None

    def weights_after(self, height: int) -> Mapping[str, int]:
        """Member weights in force after block `height` (the judges of block height + 1)."""
        return self.membership.after(height).weights

    def quorum_for(self, height: int) -> int:
        """The signed weight that makes block `height` final."""
        return self.membership.after(height - 1).quorum_weight

    def on_vote(self, vote: BlockVote, local_head: int) -> None:
        if vote.height <= self.final_height or vote.height in self._final_above:
            return
        if vote.height > local_head:
            if vote.height not in self._future and len(self._future) >= VOTE_BUFFER_HEIGHTS_MAX:
                log.warning("vote buffer full: vote for height %d dropped", vote.height)
                return
            self._future.setdefault(vote.height, []).append(vote)
            return
        weights = self.weights_after(vote.height - 1)
        weight, problems = valid_signatures(vote.header, [vote.signature], weights)
        if weight == 0 or problems:
            self.rejected_votes += 1
            log.warning(
                "vote for height %d rejected: %s", vote.height, "; ".join(problems) or "no weight"
            )
            return
        entry = self._votes.setdefault(vote.height, _HeightVotes())
        entry.by_hash.setdefault(vote.block_hash, {})[vote.signature.signer] = vote.signature
        entry.headers[vote.block_hash] = vote.header
        self._evaluate(vote.height, weights)

    def on_commit(self, height: int) -> None:
        """The local block at `height` committed: count the votes that waited for it."""
        for vote in self._future.pop(height, []):
            self.on_vote(vote, height)
        if height in self._votes:
            self._evaluate(height, self.weights_after(height - 1))

    def _evaluate(self, height: int, weights: Mapping[str, int]) -> None:
        if self.halted is not None:
            return
        block = self.store.get_block(height)
        if block is None:
            return
        entry = self._votes.get(height, _HeightVotes())
        local = block.block_hash
        # The local signature is in the block row already; count it with the received ones.
        own = {s["signer"]: Signature.from_json(s) for s in block.signatures}
        signers = {**own, **entry.by_hash.get(local, {})}
        weight = sum(weights.get(signer, 0) for signer in signers)
        others = {h: sum(weights.get(s, 0) for s in sigs) for h, sigs in entry.by_hash.items()}
        others.pop(local, None)
        quorum = self.quorum_for(height)
        if weight >= quorum:
            new = [s.to_json() for signer, s in signers.items() if signer not in own]
            if new:
                self.store.add_block_signatures(height, new)
            self._mark_final(height)
            return
        for other_hash, other_weight in others.items():
            if other_weight >= quorum:
                self._halt(height, local, "a quorum of members signed another block", other_hash)
                return
        total = sum(weights.values())
        if total - sum(others.values()) < quorum:
            other_hash = max(others, key=lambda h: others[h])
            self._halt(height, local, "this peer's block can no longer reach a quorum", other_hash)

    def halt_for(self, height: int, local: bytes, reason: str) -> None:
        """Halt for a reason other than votes (a broken database, a hole in the stream)."""
        self._halt(height, local, reason, None)

    def _halt(self, height: int, local: bytes, reason: str, other: bytes | None) -> None:
        self.halted = Divergence(
            height, local.hex(), reason, None if other is None else other.hex()
        )
        log.error(
            "DIVERGENCE at height %d: local block %s, consortium %s: %s; this peer halts",
            height,
            local.hex(),
            None if other is None else other.hex(),
            reason,
        )
        with self._cond:
            self._cond.notify_all()

    def _mark_final(self, height: int) -> None:
        self._votes.pop(height, None)
        with self._cond:
            before = self.final_height
            self._final_above.add(height)
            while self.final_height + 1 in self._final_above:
                self.final_height += 1
                self._final_above.discard(self.final_height)
            self._cond.notify_all()
            advanced = self.final_height > before
        if advanced:
            for listener in self.listeners:
                try:
                    listener(self.final_height)
                except Exception:  # a projection's failure must not stop finality
                    log.exception("finality listener failed at height %d", self.final_height)

    def wait_final(self, height: int, *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not (height <= self.final_height or height in self._final_above):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.halted is not None:
                    return False
                self._cond.wait(remaining)
            return True


def stored_final_height(store: ChainStore, membership: MembershipHistory, head: int) -> int:
    """The highest stored block that already holds a quorum of signatures.

    Blocks become final in order, so only the tail after it can be non-final: the scan walks
    down from `head` and stops at the first final block (bounded by the tail).
    """
    for height in range(head, 0, -1):
        block = store.get_block(height)
        invariant(block is not None, f"block {height} is missing below the head")
        assert block is not None
        members = membership.after(height - 1)
        signatures = [Signature.from_json(s) for s in block.signatures]
        weight, _ = valid_signatures(block.header, signatures, members.weights)
        if weight >= members.quorum_weight:
            return height
    return 0

"""Which contracts are in force at each height: genesis's from block 0, each activated one from
the height its quorum-approved governance action named.

Genesis lists the contracts a chain starts with (`Genesis.contracts`, never written to state, so
block 0 of every existing chain stays as it was).  The governance action `activate_contract`
writes one record per contract under `governance/contract/<name>`:
`{"name", "version", "activation_height", "proposal_id"}`.  Its activation height is always
above the height of the block that wrote it, and a record is never changed or deleted (version
upgrades are refused), so the set in force at height h is genesis plus every record with
`activation_height <= h`: a deterministic function of genesis and the committed governance txs,
which the node and `chain verify` both replay (like the member set, zhijin/chain/membership.py).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zhijin.chain.contract import CONTRACT_PREFIX
from zhijin.chain.errors import invariant

__all__ = ["ACTIVATIONS_MAX", "Activation", "ContractSchedule"]

ACTIVATIONS_MAX = 256  # contracts governance may ever activate on one chain


@dataclass(frozen=True, slots=True)
class Activation:
    """A contract governance put in force: from `activation_height` on, at `version`."""

    name: str
    version: str
    activation_height: int
    proposal_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "activation_height": self.activation_height,
            "proposal_id": self.proposal_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Activation:
        return cls(
            name=data["name"],
            version=data["version"],
            activation_height=data["activation_height"],
            proposal_id=data["proposal_id"],
        )


class ContractSchedule:
    """Genesis contracts plus activations, answering "what is in force at height h".

    The block-committing thread adds activations (`apply_writes`) by replacing one tuple, so a
    reader on another thread sees the old or the new schedule, never a half.
    """

    def __init__(
        self, genesis_contracts: Mapping[str, str], activations: Iterable[Activation] = ()
    ) -> None:
        self._genesis = dict(genesis_contracts)
        self._activations: tuple[Activation, ...] = ()
        self._known: dict[str, str] = dict(self._genesis)  # replaced whole, never mutated
        for activation in activations:
            self._add(activation)

    # -- reads -----------------------------------------------------------------------------------
    def in_force(self, height: int) -> dict[str, str]:
        """Name -> version of every contract in force for the block at `height`."""
        versions = dict(self._genesis)
        for activation in self._activations:
            if activation.activation_height <= height:
                versions[activation.name] = activation.version
        return versions

    def known(self) -> Mapping[str, str]:
        """Every contract in force now or scheduled: what a node's code must provide."""
        return self._known

    def activations(self) -> tuple[Activation, ...]:
        return self._activations

    def is_genesis(self, name: str) -> bool:
        return name in self._genesis

    # -- writes ----------------------------------------------------------------------------------
    def apply_writes(self, height: int, writes: Sequence[tuple[str, bytes | None]]) -> bool:
        """Record the activations block `height`'s sorted write set holds; returns whether any."""
        start = bisect.bisect_left(writes, (CONTRACT_PREFIX,))
        added = False
        for key, raw in writes[start:]:
            if not key.startswith(CONTRACT_PREFIX):
                break
            invariant(raw is not None, f"activation record {key} deleted")
            assert raw is not None
            activation = Activation.from_json(json.loads(raw))
            invariant(
                activation.activation_height > height,
                f"{key} activates at {activation.activation_height}, not after block {height}",
            )
            self._add(activation)
            added = True
        return added

    def _add(self, activation: Activation) -> None:
        names = {a.name for a in self._activations} | set(self._genesis)
        invariant(activation.name not in names, f"contract {activation.name} activated twice")
        self._activations = (*self._activations, activation)
        self._known = {**self._known, activation.name: activation.version}

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Any, genesis_contracts: Mapping[str, str]) -> ContractSchedule:
        """From the committed state: every activation record (a few rows per chain)."""
        with store.read() as conn:
            rows = store.state_scan(conn, CONTRACT_PREFIX, "", ACTIVATIONS_MAX + 1)
        invariant(len(rows) <= ACTIVATIONS_MAX, "more activation records than governance allows")
        return cls(genesis_contracts, (Activation.from_json(value) for _, value in rows))

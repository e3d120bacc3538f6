"""Genesis: the chain id, the consortium's members and the contracts the chain starts with.

Genesis is validated when loaded and round-trips through JSON; its hash is the previous hash of
block 0, whose only writes are the member records and the governance config (quorum weight and,
in solo mode, the orderer), so membership lives in state, where governance transactions change
it (zhijin/chain/governance.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.contract import GOVERNANCE_CONFIG_KEY, MEMBER_PREFIX, Member
from zhijin.chain.crypto import BadKey, public_key_from_did
from zhijin.chain.errors import ZhijinError
from zhijin.chain.files import write_private

__all__ = [
    "MEMBERS_MAX",
    "MEMBER_ROLES",
    "MEMBER_WEIGHT_MAX",
    "Genesis",
    "GenesisError",
    "member_problems",
]

MEMBER_ROLES = frozenset(
    {"bank", "insurer", "fund", "enterprise", "regulator", "auditor", "platform"}
)
ORDERING_MODES = frozenset({"solo", "jetstream"})
_CHAIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
MEMBERS_MAX = 256
MEMBER_WEIGHT_MAX = 1000


class GenesisError(ZhijinError):
    code = "bad_genesis"


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    time_ms: int
    members: tuple[Member, ...]
    quorum_weight: int  # signed weight that makes a block final in cluster mode
    ordering: str  # "solo" or "jetstream"
    orderer: str  # did of the member whose node orders and signs in solo mode
    contracts: Mapping[str, str]  # name -> version

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "time_ms": self.time_ms,
            "members": [m.to_json() for m in self.members],
            "quorum_weight": self.quorum_weight,
            "ordering": self.ordering,
            "orderer": self.orderer,
            "contracts": dict(sorted(self.contracts.items())),
        }

    def hash(self) -> bytes:
        return sha256(canonical(self.to_json()))

    def member_weights(self) -> dict[str, int]:
        return {m.did: m.weight for m in self.members}

    def write_set(self) -> list[tuple[str, Any]]:
        """Block 0's writes: the member records and the governance config (quorum, orderer)."""
        config = {
            "quorum_weight": self.quorum_weight,
            "solo_orderer": self.orderer if self.ordering == "solo" else None,
        }
        members = [(MEMBER_PREFIX + m.did, m.to_json()) for m in self.members]
        return sorted([(GOVERNANCE_CONFIG_KEY, config), *members])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Genesis:
        try:
            members = tuple(Member.from_json(m) for m in data["members"])
            genesis = cls(
                chain_id=data["chain_id"],
                time_ms=data["time_ms"],
                members=members,
                quorum_weight=data["quorum_weight"],
                ordering=data["ordering"],
                orderer=data["orderer"],
                contracts=dict(data["contracts"]),
            )
        except (KeyError, TypeError) as exc:
            raise GenesisError(message=f"genesis is missing or mistypes a field: {exc}") from exc
        genesis.validate()
        return genesis

    def validate(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise GenesisError(message="; ".join(problems))

    def save(self, path: Path) -> None:
        # Public within the consortium, but it sits with the keys: owner-only like them.
        write_private(path, json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GenesisError(message=f"cannot read genesis {path}: {exc}") from exc
        return cls.from_json(data)


def _problems(genesis: Genesis) -> list[str]:
    problems: list[str] = []
    if not isinstance(genesis.chain_id, str) or not _CHAIN_ID.match(genesis.chain_id):
        problems.append("chain_id must be 3-64 lowercase letters, digits or dashes")
    if type(genesis.time_ms) is not int or genesis.time_ms < 0:
        problems.append("time_ms must be a non-negative integer")
    if not 0 < len(genesis.members) <= MEMBERS_MAX:
        problems.append(f"there must be 1 to {MEMBERS_MAX} members")
    dids = [m.did for m in genesis.members]
    if len(set(dids)) != len(dids):
        problems.append("a member is listed twice")
    for member in genesis.members:
        problems.extend(member_problems(member))
    total = sum(m.weight for m in genesis.members if type(m.weight) is int)
    if type(genesis.quorum_weight) is not int or not total // 2 < genesis.quorum_weight <= total:
        problems.append(f"quorum_weight must be more than half of the total weight {total}")
    if genesis.ordering not in ORDERING_MODES:
        problems.append(f"ordering must be one of {sorted(ORDERING_MODES)}")
    if genesis.orderer not in dids:
        problems.append("orderer must be a member")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in genesis.contracts.items()):
        problems.append("contracts maps names to version strings")
    return problems


def member_problems(member: Member) -> list[str]:
    """What is wrong with one member record (genesis and governance apply the same rules)."""
    problems = []
    try:
        public_key_from_did(member.did)
    except BadKey:
        problems.append(f"member {member.did!r} is not an Ed25519 did:key")
    if not isinstance(member.name, str) or not 0 < len(member.name) <= 128:
        problems.append(f"member {member.did} needs a name of 1-128 characters")
    if member.role not in MEMBER_ROLES:
        problems.append(f"member {member.name} has unknown role {member.role!r}")
    if type(member.weight) is not int or not 0 < member.weight <= MEMBER_WEIGHT_MAX:
        problems.append(f"member {member.name} weight must be 1-{MEMBER_WEIGHT_MAX}")
    return problems

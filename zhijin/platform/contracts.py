"""The one place where the chain's contracts are wired, in a fixed order (Cosmos-style app)."""

from __future__ import annotations

from zhijin.chain.contract import ContractRegistry
from zhijin.chain.governance import GOVERNANCE_CONTRACT
from zhijin.notary.contract import NOTARY_CONTRACT

__all__ = ["default_registry"]


def default_registry() -> ContractRegistry:
    return ContractRegistry([GOVERNANCE_CONTRACT, NOTARY_CONTRACT])

"""The one place where the chain's contracts are wired, in a fixed order (Cosmos-style app)."""

from __future__ import annotations

from zhijin.chain.contract import ContractRegistry
from zhijin.chain.governance import GOVERNANCE_CONTRACT
from zhijin.identity.contracts import IDENTITY_CONTRACTS
from zhijin.notary.contract import NOTARY_CONTRACT
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.platform.projections import Projection

__all__ = ["default_projections", "default_registry"]


def default_registry() -> ContractRegistry:
    return ContractRegistry(
        [GOVERNANCE_CONTRACT, NOTARY_CONTRACT, PAYMENTS_CONTRACT, *IDENTITY_CONTRACTS]
    )


def default_projections() -> list[Projection]:
    from zhijin.notary.projection import NotaryProjection
    from zhijin.payments.projection import PaymentsProjection

    return [NotaryProjection(), PaymentsProjection()]

"""The one place where the chain's contracts are wired, in a fixed order (Cosmos-style app),
with the projections fed by their blocks and the vault schemas every domain seals records in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine

from zhijin.chain.contract import ContractRegistry
from zhijin.chain.governance import GOVERNANCE_CONTRACT
from zhijin.identity.contracts import IDENTITY_CONTRACTS
from zhijin.identity.setup import VAULT_SCHEMAS
from zhijin.identity.vault import RecordSchema
from zhijin.notary.contract import NOTARY_CONTRACT
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.platform.notifications import Notifier
from zhijin.platform.projection_verify import ProjectionVerifier
from zhijin.platform.projections import Projection

if TYPE_CHECKING:  # chain_read imports the runtime, which imports this module
    from zhijin.platform.chain_read import PartyFinder

__all__ = [
    "default_notifiers",
    "default_party_finders",
    "default_projection_verifiers",
    "default_projections",
    "default_registry",
    "vault_schemas",
]


def default_registry() -> ContractRegistry:
    return ContractRegistry(
        [GOVERNANCE_CONTRACT, NOTARY_CONTRACT, PAYMENTS_CONTRACT, *IDENTITY_CONTRACTS]
    )


def default_projections() -> list[Projection]:
    from zhijin.notary.projection import NotaryProjection
    from zhijin.payments.projection import PaymentsProjection

    return [NotaryProjection(), PaymentsProjection()]


def default_projection_verifiers() -> list[ProjectionVerifier]:
    """Each projection's check against chain state (`zhijin projections verify`, the trial
    balance): one per domain, beside its projection, until the domain manifests hold them."""
    from zhijin.notary.projection_verify import NotaryProjectionVerifier
    from zhijin.payments.projection_verify import PaymentsProjectionVerifier

    return [NotaryProjectionVerifier(), PaymentsProjectionVerifier()]


def default_notifiers(platform_engine: Engine) -> list[Notifier]:
    """What each domain tells a live subscriber about a block (`GET /api/v1/events`)."""
    from zhijin.payments.notifications import PaymentsNotifier

    return [PaymentsNotifier(platform_engine)]


def default_party_finders() -> list[PartyFinder]:
    """Whom each domain's transactions name, for the chain's read policy (chain_read.py)."""
    from zhijin.payments.parties import account_owners

    return [account_owners]


def vault_schemas() -> dict[str, RecordSchema]:
    """Every schema the platform seals vault records in, by name: an index-secret rotation
    must know each one to recompute its blind indexes (it stops on a record of another)."""
    from zhijin.payments.directory import IBAN_SCHEMA

    return {**VAULT_SCHEMAS, IBAN_SCHEMA.name: IBAN_SCHEMA}

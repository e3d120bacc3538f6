"""The payments domain's manifest: what it brings to a node (see zhijin/platform/module.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from zhijin.chain.contract import StateReader
from zhijin.identity.rbac import Permission
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.platform.module import DomainModule, NavEntry, Seeded

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.chain_read import PartyFinder
    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = ["MODULE"]


def _projections() -> tuple[Projection, ...]:
    from zhijin.payments.projection import PaymentsProjection

    return (PaymentsProjection(),)


def _verifiers() -> tuple[ProjectionVerifier, ...]:
    from zhijin.payments.projection_verify import PaymentsProjectionVerifier

    return (PaymentsProjectionVerifier(),)


def _notifiers(platform_engine: Engine) -> tuple[Notifier, ...]:
    from zhijin.payments.notifications import PaymentsNotifier

    return (PaymentsNotifier(platform_engine),)


def _party_finders() -> tuple[PartyFinder, ...]:
    from zhijin.payments.parties import account_owners

    return (account_owners,)


def _router() -> APIRouter:
    from zhijin.payments.api import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.payments.cli import pay_app

    return (("pay", pay_app),)


def _vault_schemas() -> dict[str, Any]:
    from zhijin.payments.directory import IBAN_SCHEMA

    return {IBAN_SCHEMA.name: IBAN_SCHEMA}


def _invariants(reader: StateReader) -> list[str]:
    from zhijin.payments.invariants import check_invariants

    return check_invariants(reader)


def _demo(host: Any, seeded: Seeded) -> Any:
    from zhijin.payments.demo import seed_payments_demo

    # The accounts belong to identity's demo end users (who must be seeded first).
    return seed_payments_demo(host, seeded["identity"]["end_users"])


MODULE = DomainModule(
    name="payments",
    contracts=(PAYMENTS_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    notifiers=_notifiers,
    party_finders=_party_finders,
    routers=(_router,),
    cli=_cli,
    vault_schemas=_vault_schemas,
    invariants=_invariants,
    permissions=(
        Permission.ACCOUNT_READ,
        Permission.ACCOUNT_OPEN,
        Permission.ACCOUNT_STATUS,
        Permission.TRANSACTION_READ,
        Permission.PAYMENT_TRANSFER,
    ),
    demo=_demo,
    pages=(NavEntry("money", "My money"),),
)

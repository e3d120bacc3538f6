"""The credit domain's manifest: what it brings to a node (see zhijin/platform/module.py).

Everything but the contract is built lazily, when the composition root asks: importing the
manifest never imports LightGBM, FastAPI routes or SQLAlchemy tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.chain.contract import StateReader
from zhijin.credit.contract import CREDIT_CONTRACT
from zhijin.credit.permissions import CREDIT_PERMISSIONS, MODEL_READ
from zhijin.identity.rbac import Role
from zhijin.platform.module import DomainModule, NavEntry, Seeded, with_permission, with_roles

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = ["CREDIT_PERMISSIONS", "DECISIONS", "MODELS", "MODULE", "MY_CREDIT"]

# The pages (credit/web/pages.py).  "My credit" is the end user's own score and decisions
# (staff hold `credit_report.read` on the member's customers, never a score of their own); the
# decisions console is the member's credit staff's (the regulator reads the registry, not a
# member's applicants); the registry admits whoever may read models: the member's staff, the
# auditor and, derived, the regulator, who sees every member's.
MY_CREDIT = NavEntry("/credit", "page.credit", with_roles(Role.CUSTOMER, Role.SME_OWNER), order=40)
DECISIONS = NavEntry(
    "/credit/decisions", "page.credit_decisions", with_roles(Role.BANK_OFFICER, Role.RISK_ANALYST),
    order=45,
)  # fmt: skip
MODELS = NavEntry("/credit/models", "page.credit_models", with_permission(MODEL_READ), order=46)


def _projections() -> tuple[Projection, ...]:
    from zhijin.credit.flows import CreditFlowsProjection
    from zhijin.credit.projection import CreditProjection

    # The registry's tables, and the consumer of payments' events the behavioural score reads.
    return (CreditProjection(), CreditFlowsProjection())


def _verifiers() -> tuple[ProjectionVerifier, ...]:
    from zhijin.credit.flows_verify import CreditFlowsVerifier
    from zhijin.credit.projection_verify import CreditProjectionVerifier

    return (CreditProjectionVerifier(), CreditFlowsVerifier())


def _router() -> APIRouter:
    from zhijin.credit.api import router

    return router


def _web_router() -> APIRouter:
    from zhijin.credit.web.pages import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.credit.cli import credit_app

    return (("credit", credit_app),)


def _vault_schemas() -> dict[str, Any]:
    from zhijin.credit.tables import APPLICANT_SCHEMA

    return {APPLICANT_SCHEMA.name: APPLICANT_SCHEMA}


def _invariants(reader: StateReader) -> list[str]:
    from zhijin.credit.invariants import check_invariants

    return check_invariants(reader)


def _demo(host: Any, seeded: Seeded) -> Any:
    from zhijin.credit.demo import seed_credit_demo

    # Decisions for identity's demo customers, whose money payments seeded.
    return seed_credit_demo(host, seeded["identity"])


MODULE = DomainModule(
    name="credit",
    contracts=(CREDIT_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    routers=(_router,),
    cli=_cli,
    vault_schemas=_vault_schemas,
    invariants=_invariants,
    permissions=CREDIT_PERMISSIONS,
    demo=_demo,
    pages=(MY_CREDIT, DECISIONS, MODELS),
    web_routers=(_web_router,),
    templates="zhijin.credit.web",
)

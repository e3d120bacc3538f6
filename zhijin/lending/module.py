"""The lending domain's manifest: what it brings to a node (see zhijin/platform/module.py).

Everything but the contract and the permissions is built lazily, when the composition root
asks: importing the manifest never imports FastAPI routes, typer or SQLAlchemy tables."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.chain.contract import StateReader
from zhijin.identity.rbac import Role
from zhijin.lending.contract import LENDING_CONTRACT
from zhijin.lending.permissions import LENDING_PERMISSIONS, LOAN_READ
from zhijin.lending.settings import LendingSettings
from zhijin.platform.module import (
    DomainModule,
    NavEntry,
    NodeService,
    Seeded,
    with_permission,
    with_roles,
)

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from sqlalchemy import Engine

    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = [
    "APPLY",
    "LENDING_PERMISSIONS",
    "LOAN",
    "LOAN_BOOK",
    "LOAN_LPR",
    "LOAN_PRODUCTS",
    "LOAN_QUEUE",
    "MODULE",
    "MY_LOANS",
]

# The pages (lending/web/pages.py).  "My loans" and the application are the end user's own; a
# loan's page admits whoever may read loans (the borrower, the member's staff, the auditor and,
# derived, the regulator: the route authorises the loan itself); the loan console is the
# member's lending staff's, one entry in the navigation (the book) whose pages link each other;
# the book also admits the regulator, who sees every member's.
_END_USERS = with_roles(Role.CUSTOMER, Role.SME_OWNER)
_LENDING_STAFF = with_roles(Role.BANK_OFFICER, Role.RISK_ANALYST)
MY_LOANS = NavEntry("/loans", "page.loans", _END_USERS, order=42)
APPLY = NavEntry("/loans/apply", "page.loan_apply", _END_USERS, in_nav=False)
LOAN = NavEntry("/loans/{loan_id}", "page.loan", with_permission(LOAN_READ), in_nav=False)
# The regulator reads every member's book (its reads are derived, scope all); it writes nothing.
LOAN_BOOK = NavEntry(
    "/staff/loans", "page.loan_book",
    with_roles(Role.BANK_OFFICER, Role.RISK_ANALYST, Role.REGULATOR), order=47,
)  # fmt: skip
LOAN_QUEUE = NavEntry("/staff/loans/queue", "page.loan_queue", _LENDING_STAFF, in_nav=False)
LOAN_PRODUCTS = NavEntry(
    "/staff/loans/products", "page.loan_products", _LENDING_STAFF, in_nav=False
)
LOAN_LPR = NavEntry("/staff/loans/lpr", "page.loan_lpr", _LENDING_STAFF, in_nav=False)


def _projections() -> tuple[Projection, ...]:
    from zhijin.lending.projection import LendingProjection

    return (LendingProjection(),)


def _verifiers() -> tuple[ProjectionVerifier, ...]:
    from zhijin.lending.projection_verify import LendingProjectionVerifier

    # Every query-table row recomputed from the chain (`zhijin projections verify`).
    return (LendingProjectionVerifier(),)


def _notifiers(platform_engine: Engine) -> tuple[Notifier, ...]:
    from zhijin.lending.notifications import LendingNotifier

    # The keeper's reminders and a loan's transitions, to its borrower's live stream.
    return (LendingNotifier(platform_engine),)


def _web_router() -> APIRouter:
    from zhijin.lending.web.pages import router

    return router


def _router() -> APIRouter:
    from zhijin.lending.api import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.lending.cli import lending_app

    return (("lending", lending_app),)


def _invariants(reader: StateReader) -> list[str]:
    from zhijin.lending.invariants import check_invariants

    return check_invariants(reader)


def _services(host: Any) -> tuple[NodeService, ...]:
    from zhijin.lending.service import CollectionsKeeper

    # The collections keeper: due collections, overdue, 罚息, reminders, in block time.
    return (CollectionsKeeper(host),)


def _demo(host: Any, seeded: Seeded) -> Any:
    from zhijin.lending.demo import seed_lending_demo

    # Loans for identity's demo customers, on payments' accounts and credit's decisions.
    return seed_lending_demo(host, seeded)


MODULE = DomainModule(
    name="lending",
    contracts=(LENDING_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    notifiers=_notifiers,
    routers=(_router,),
    cli=_cli,
    invariants=_invariants,
    permissions=LENDING_PERMISSIONS,
    settings=LendingSettings,
    services=_services,
    demo=_demo,
    pages=(MY_LOANS, APPLY, LOAN, LOAN_BOOK, LOAN_QUEUE, LOAN_PRODUCTS, LOAN_LPR),
    web_routers=(_web_router,),
    templates="zhijin.lending.web",
)

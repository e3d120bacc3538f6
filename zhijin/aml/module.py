"""The AML domain's manifest: what it brings to a node (see zhijin/platform/module.py).

AML reads the committed payment stream as a projection (monitor.py) and keeps its cases and
filings off chain, anchoring each filing's hash through the notary; its contract holds only each
member's monitoring rules, versioned under maker-checker (contract.py).
Everything is built lazily, when the composition root asks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zhijin.aml.contract import AML_CONTRACT
from zhijin.aml.permissions import AML_PERMISSIONS, FEED_READ
from zhijin.identity.rbac import Role
from zhijin.platform.module import DomainModule, NavEntry, with_permission, with_roles

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.projections import Projection

__all__ = ["AML_PERMISSIONS", "CASES", "FEED", "FLOWS", "MODULE", "QUEUE", "RULES"]

# The pages (aml/web/pages.py).  The analyst's console is the member's risk analysts' and
# compliance officers' (the auditor holds the read permissions with scope `all`, the regulator
# derives them: their pages are the feed and the flows, which admit whoever may read the feed:
# the compliance officer, the auditor and, derived, the regulator, who sees every member's).
_ANALYSTS = with_roles(Role.RISK_ANALYST, Role.COMPLIANCE_OFFICER)
QUEUE = NavEntry("/aml/alerts", "page.aml_alerts", _ANALYSTS, order=50)
CASES = NavEntry("/aml/cases", "page.aml_cases", _ANALYSTS, order=51)
RULES = NavEntry("/aml/rules", "page.aml_rules", _ANALYSTS, order=52)
FEED = NavEntry("/aml/feed", "page.aml_feed", with_permission(FEED_READ), order=53)
FLOWS = NavEntry("/aml/flows", "page.aml_flows", with_permission(FEED_READ), order=54)


def _projections() -> tuple[Projection, ...]:
    from zhijin.aml.monitor import AmlProjection

    return (AmlProjection(),)


def _router() -> APIRouter:
    from zhijin.aml.api import router

    return router


def _web_router() -> APIRouter:
    from zhijin.aml.web.pages import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.aml.cli import aml_app

    return (("aml", aml_app),)


MODULE = DomainModule(
    name="aml",
    contracts=(AML_CONTRACT,),
    projections=_projections,
    routers=(_router,),
    cli=_cli,
    permissions=AML_PERMISSIONS,
    pages=(QUEUE, CASES, RULES, FEED, FLOWS),
    web_routers=(_web_router,),
    templates="zhijin.aml.web",
)

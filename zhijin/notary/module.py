"""The notary domain's manifest: what it brings to a node (see zhijin/platform/module.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.notary.contract import NOTARY_CONTRACT
from zhijin.platform.module import (
    ANYONE,
    DomainModule,
    NavEntry,
    PermissionSpec,
    Seeded,
    with_permission,
)

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = ["ANCHOR_PERMISSION", "DOCUMENTS", "MODULE", "NOTARISE"]

ANCHOR_PERMISSION = "document.anchor"
# Check a document, verify a receipt (notary/web/pages.py): anyone may.  Notarising one's own
# file (its hash anchored in the user's name, vouched for by this member) is for end users.
DOCUMENTS = NavEntry("/documents", "page.documents", ANYONE, order=60)
NOTARISE = NavEntry(
    "/documents/anchor", "page.notarise", with_permission(ANCHOR_PERMISSION), in_nav=False
)
NOTARY_PERMISSIONS = (
    PermissionSpec(
        ANCHOR_PERMISSION,
        {"customer": "own", "sme_owner": "own"},
        label_zh="存证自己的文件",
        label_en="Notarise one's own files",
    ),
)


def _projections() -> tuple[Projection, ...]:
    from zhijin.notary.projection import NotaryProjection

    return (NotaryProjection(),)


def _verifiers() -> tuple[ProjectionVerifier, ...]:
    from zhijin.notary.projection_verify import NotaryProjectionVerifier

    return (NotaryProjectionVerifier(),)


def _router() -> APIRouter:
    from zhijin.notary.api import router

    return router


def _web_router() -> APIRouter:
    from zhijin.notary.web.pages import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.notary.cli import notary_app

    return (("notary", notary_app),)


def _demo(host: Any, _seeded: Seeded) -> tuple[str, ...]:
    from zhijin.notary.demo import seed_notary_demo

    return seed_notary_demo(host)


MODULE = DomainModule(
    name="notary",
    contracts=(NOTARY_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    routers=(_router,),
    cli=_cli,
    demo=_demo,
    permissions=NOTARY_PERMISSIONS,
    pages=(DOCUMENTS, NOTARISE),
    web_routers=(_web_router,),
    templates="zhijin.notary.web",
)

"""The guestbook's manifest: what it brings to a node (see zhijin/platform/module.py).

Everything but the contract is built lazily, when the composition root asks: importing a
manifest never imports FastAPI routes or SQLAlchemy tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.node.example_domain.contract import GUESTBOOK_CONTRACT
from zhijin.chain.contract import StateReader
from zhijin.platform.module import DomainModule

if TYPE_CHECKING:
    from fastapi import APIRouter

    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = ["MODULE"]


def _projections() -> tuple[Projection, ...]:
    from tests.node.example_domain.projection import GuestbookProjection

    return (GuestbookProjection(),)


def _verifiers() -> tuple[ProjectionVerifier, ...]:
    from tests.node.example_domain.projection_verify import GuestbookProjectionVerifier

    return (GuestbookProjectionVerifier(),)


def _router() -> APIRouter:
    from tests.node.example_domain.api import router

    return router


def _invariants(reader: StateReader) -> list[str]:
    from tests.node.example_domain.invariants import check_invariants

    return check_invariants(reader)


MODULE = DomainModule(
    name="guestbook",
    contracts=(GUESTBOOK_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    routers=(_router,),
    invariants=_invariants,
)

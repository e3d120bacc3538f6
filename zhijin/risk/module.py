"""The risk domain's manifest: what it brings to a node (see zhijin/platform/module.py).

Risk has no contract: its engine is payments' `PaymentScreen` (put on the host by the
composition root, zhijin/node/risk_ports.py), a node service (started with the node: tables,
rules, models, features rebuilt), an API and a CLI group.  Built lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.platform.module import DomainModule, NodeService
from zhijin.risk.permissions import RISK_PERMISSIONS
from zhijin.risk.settings import RiskSettings

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

__all__ = ["MODULE", "RISK_PERMISSIONS"]


def _router() -> APIRouter:
    from zhijin.risk.api import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.risk.cli import risk_app

    return (("risk", risk_app),)


def _services(host: Any) -> tuple[NodeService, ...]:
    risk = getattr(host, "risk", None)
    return () if risk is None else (risk,)


MODULE = DomainModule(
    name="risk",
    routers=(_router,),
    cli=_cli,
    permissions=RISK_PERMISSIONS,
    settings=RiskSettings,
    services=_services,
)

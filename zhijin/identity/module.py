"""The identity domain's manifest: what it brings to a node (see zhijin/platform/module.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.identity.contracts import IDENTITY_CONTRACTS
from zhijin.identity.rbac import Permission
from zhijin.platform.module import DomainModule, NavEntry, NodeService, Seeded

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.identity.anchoring import AuditAnchorer

__all__ = ["MODULE"]


class AnchorService:
    """The audit anchorer as a node service: its stop anchors the audit head one last time,
    which needs the orderer still running, and names the block the node must see final."""

    def __init__(self, anchorer: AuditAnchorer) -> None:
        self._anchorer = anchorer

    def start(self) -> None:
        self._anchorer.start()

    def stop(self) -> int | None:
        self._anchorer.stop()
        if self._anchorer.anchor_at_shutdown() is None:
            return None
        return self._anchorer.last_anchor_height


def _router() -> APIRouter:
    from zhijin.identity.api import router

    return router


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.identity.cli import audit_app, identity_app

    return (("identity", identity_app), ("audit", audit_app))


def _vault_schemas() -> dict[str, Any]:
    from zhijin.identity.setup import VAULT_SCHEMAS

    return dict(VAULT_SCHEMAS)


def _services(host: Any) -> tuple[NodeService, ...]:
    return (AnchorService(host.audit_anchorer),)


def _demo(host: Any, _seeded: Seeded) -> dict[str, Any]:
    from zhijin.identity.demo import demo_end_users, seed_identity_demo

    users = seed_identity_demo(host)
    return {"users": users, "end_users": demo_end_users(users)}


MODULE = DomainModule(
    name="identity",
    contracts=tuple(IDENTITY_CONTRACTS),
    routers=(_router,),
    cli=_cli,
    vault_schemas=_vault_schemas,
    permissions=(
        Permission.USER_READ,
        Permission.USER_MANAGE,
        Permission.ROLE_ASSIGN,
        Permission.PROFILE_UPDATE,
        Permission.PERSONAL_DATA_READ,
        Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE,
        Permission.KYC_REVIEW,
        Permission.CREDENTIAL_ISSUE,
        Permission.CREDENTIAL_REVOKE,
        Permission.CONSENT_MANAGE,
        Permission.POLICY_READ,
        Permission.POLICY_UPDATE,
        Permission.AUDIT_LOG_READ,
        Permission.AUDIT_LOG_VERIFY,
    ),
    settings_fields=(
        "vault_key",
        "vault_key_file",
        "cookie_secure",
        "password_hashing",
        "geoip_db",
        "audit_anchor_interval_s",
    ),
    services=_services,
    demo=_demo,
    pages=(NavEntry("security", "Security"),),
)

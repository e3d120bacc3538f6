"""The identity domain's manifest: what it brings to a node (see zhijin/platform/module.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zhijin.identity.contracts import IDENTITY_CONTRACTS
from zhijin.identity.permissions import IDENTITY_PERMISSIONS
from zhijin.identity.rbac import Role
from zhijin.identity.settings import IdentitySettings
from zhijin.platform.module import (
    SIGNED_IN,
    SIGNED_OUT,
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

    from zhijin.identity.anchoring import AuditAnchorer

__all__ = [
    "AUDIT_LOG",
    "KYC_QUEUE",
    "MODULE",
    "ONBOARDING",
    "PERSONAL_DATA",
    "REGISTER",
    "SECURITY",
    "SIGN_IN",
    "STAFF_ADMIN",
    "STAFF_HOME",
    "STAFF_ROLES",
    "STEP_UP_POLICY",
]

# The pages (identity/web/pages.py): the institution's people get a staff home that names
# their console; everyone signed in gets the security page; the signed-out, sign in and register.
STAFF_ROLES = tuple(role for role in Role if role not in (Role.CUSTOMER, Role.SME_OWNER))
STAFF_HOME = NavEntry("/staff", "page.staff_home", with_roles(*STAFF_ROLES), order=10, home=True)
SECURITY = NavEntry("/security", "page.security", SIGNED_IN, order=800)
# The consoles' pages (identity/web/consoles.py): each admits exactly the holders of what it
# acts on, so the navigation offers a console's page only to whom may use it.
KYC_QUEUE = NavEntry("/staff/kyc", "page.kyc_queue", with_permission("kyc.review"), order=11)
PERSONAL_DATA = NavEntry(
    "/staff/personal-data",
    "page.personal_data",
    with_roles(Role.COMPLIANCE_OFFICER),
    order=12,
)
AUDIT_LOG = NavEntry("/staff/audit", "page.audit_log", with_permission("audit_log.read"), order=13)
STAFF_ADMIN = NavEntry(
    "/staff/people", "page.staff_admin", with_permission("user.manage"), order=16
)
STEP_UP_POLICY = NavEntry(
    "/staff/policy",
    "page.step_up_policy",
    with_roles(Role.ADMIN, Role.COMPLIANCE_OFFICER),
    order=17,
)
SIGN_IN = NavEntry("/signin", "page.signin", SIGNED_OUT, order=900)
REGISTER = NavEntry("/register", "page.register", SIGNED_OUT, order=910)
# Onboarding (identity/web/onboarding.py): an end user's way from sign-up to an open account.
ONBOARDING = NavEntry(
    "/onboarding", "page.onboarding", with_roles(Role.CUSTOMER, Role.SME_OWNER), order=45
)


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


def _web_router() -> APIRouter:
    from zhijin.identity.web.pages import router

    return router


def _consoles_router() -> APIRouter:
    from zhijin.identity.web.consoles import router

    return router


def _security_router() -> APIRouter:
    from zhijin.identity.web.security import router

    return router


def _onboarding_router() -> APIRouter:
    from zhijin.identity.web.onboarding import router

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
    from zhijin.identity.demo import demo_end_users, demo_onboarding_user, seed_identity_demo

    users = seed_identity_demo(host)
    return {
        "users": users,
        "end_users": demo_end_users(users),
        "onboarding_user_id": demo_onboarding_user(host),
    }


MODULE = DomainModule(
    name="identity",
    contracts=tuple(IDENTITY_CONTRACTS),
    routers=(_router,),
    cli=_cli,
    vault_schemas=_vault_schemas,
    permissions=IDENTITY_PERMISSIONS,
    settings=IdentitySettings,
    services=_services,
    demo=_demo,
    pages=(
        STAFF_HOME,
        KYC_QUEUE,
        PERSONAL_DATA,
        AUDIT_LOG,
        STAFF_ADMIN,
        STEP_UP_POLICY,
        SECURITY,
        SIGN_IN,
        REGISTER,
        ONBOARDING,
    ),
    web_routers=(_web_router, _consoles_router, _security_router, _onboarding_router),
    templates="zhijin.identity.web",
)

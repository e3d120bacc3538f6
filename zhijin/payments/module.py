"""The payments domain's manifest: what it brings to a node (see zhijin/platform/module.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from zhijin.chain.contract import StateReader
from zhijin.identity.rbac import Permission, Role
from zhijin.payments.contract import PAYMENTS_CONTRACT
from zhijin.payments.settings import PaymentsSettings
from zhijin.platform.module import (
    DomainModule,
    NavEntry,
    NodeService,
    PermissionSpec,
    Seeded,
    with_permission,
    with_roles,
)

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.chain_read import PartyFinder
    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = [
    "ACCOUNT_REQUESTS",
    "FX",
    "LEDGER",
    "MEMBER_ACCOUNTS",
    "MERCHANT",
    "MODULE",
    "MONEY",
    "PAY",
]

# The pages (payments/web/pages.py) are the end user's own money: staff hold `account.read`
# on the member's accounts, but those are customers' accounts, never "my money".
END_USERS = with_roles(Role.CUSTOMER, Role.SME_OWNER)
MONEY = NavEntry("/money", "page.money", END_USERS, order=20, home=True)
PAY = NavEntry("/pay", "page.pay", END_USERS, order=30)
FX = NavEntry("/fx", "page.fx", END_USERS, order=32)  # pay abroad: a live quote, then pay_fx
# The merchant view (payments/web/merchant.py): collection QR, payments received, refunds and
# the settlement report are an SME owner's business.
MERCHANT = NavEntry("/merchant", "page.merchant", with_roles(Role.SME_OWNER), order=35)
# The staff consoles' pages (payments/web/consoles.py): the officer's account requests and
# the member's accounts; the auditor's trial balance.
ACCOUNT_REQUESTS = NavEntry(
    "/staff/account-requests",
    "page.account_requests",
    with_permission(Permission.ACCOUNT_OPEN),
    order=11,
)
MEMBER_ACCOUNTS = NavEntry(
    "/staff/accounts", "page.member_accounts", with_roles(Role.BANK_OFFICER), order=12
)
LEDGER = NavEntry("/staff/ledger", "page.ledger", with_roles(Role.AUDITOR), order=14)


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


def _web_router() -> APIRouter:
    from zhijin.payments.web.pages import router

    return router


def _consoles_router() -> APIRouter:
    from zhijin.payments.web.consoles import router

    return router


def _people_router() -> APIRouter:
    from zhijin.payments.api_people import router

    return router


def _opening_router() -> APIRouter:
    from zhijin.payments.opening_api import router

    return router


class OpeningPolicyService:
    """The account-request table, and the opening policy listening to KYC approvals for as
    long as the node runs (a node that is not running opens nothing by itself)."""

    def __init__(self, host: Any) -> None:
        from zhijin.payments.opening import AccountOpening
        from zhijin.platform.gateway import MemberGateway

        self._host = host
        # Built now, so a malformed policy setting stops the node at start, not at an approval.
        self._opening = AccountOpening(host, MemberGateway(host.node))

    def start(self) -> None:
        from zhijin.payments.opening_store import create_tables

        create_tables(self._host.platform_engine)
        self._host.personal.add_kyc_listener(self._opening)

    def stop(self) -> int | None:
        self._host.personal.remove_kyc_listener(self._opening)
        return None


def _cli() -> tuple[tuple[str, typer.Typer], ...]:
    from zhijin.payments.cli import pay_app

    return (("pay", pay_app),)


def _vault_schemas() -> dict[str, Any]:
    from zhijin.payments.aliases import MOBILE_SCHEMA
    from zhijin.payments.directory import IBAN_SCHEMA

    return {IBAN_SCHEMA.name: IBAN_SCHEMA, MOBILE_SCHEMA.name: MOBILE_SCHEMA}


def _services(host: Any) -> tuple[NodeService, ...]:
    from zhijin.payments.tables import PaymentsTables

    # Its off-chain tables (payment requests, refund claims) before any route runs, then the
    # opening policy (which creates the account-request table and listens to KYC approvals).
    return (PaymentsTables(host.platform_engine), OpeningPolicyService(host))


def _invariants(reader: StateReader) -> list[str]:
    from zhijin.payments.invariants import check_invariants

    return check_invariants(reader)


def _demo(host: Any, seeded: Seeded) -> Any:
    from zhijin.payments.demo import seed_payments_demo
    from zhijin.platform.demo_clock import DEMO_CLOCK

    # The accounts belong to identity's demo end users (who must be seeded first).
    demo = seed_payments_demo(host, seeded["identity"]["end_users"], clock=seeded.get(DEMO_CLOCK))
    onboarding = seeded["identity"].get("onboarding_user_id")
    if onboarding is not None:
        from zhijin.payments.demo import seed_account_request

        seed_account_request(host, onboarding)
    return demo


# Who may do what with money: customers and SME owners on their own accounts, staff on their
# institution's, the auditor everywhere read-only (the regulator's reads are derived).
_STAFF_READ = {"bank_officer": "member", "compliance_officer": "member", "auditor": "all"}
PAYMENTS_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        Permission.ACCOUNT_READ,
        {"customer": "own", "sme_owner": "own", **_STAFF_READ},
        label_zh="查看账户",
        label_en="Read accounts",
    ),
    PermissionSpec(
        Permission.TRANSACTION_READ,
        {"customer": "own", "sme_owner": "own", "risk_analyst": "member", **_STAFF_READ},
        label_zh="查看交易",
        label_en="Read transactions",
    ),
    # Four eyes on opening: the officer who opens a requested account may not be the one who
    # approved the customer's KYC (nor the customer), so no single insider both vouches for a
    # person and gives them an account that moves money.
    PermissionSpec(
        Permission.ACCOUNT_OPEN,
        {"bank_officer": "member"},
        approval=True,
        label_zh="开立账户",
        label_en="Open accounts",
    ),
    PermissionSpec(
        Permission.ACCOUNT_REQUEST,
        {"customer": "own", "sme_owner": "own"},
        label_zh="申请开户",
        label_en="Request an account",
    ),
    # Freeze, unfreeze, close.
    PermissionSpec(
        Permission.ACCOUNT_STATUS,
        {"bank_officer": "member", "compliance_officer": "member"},
        label_zh="冻结、解冻或关闭账户",
        label_en="Freeze, unfreeze or close accounts",
    ),
    # Firm FX quotes are the members' public offers to every customer of the consortium (any
    # member's quote may be paid under), so end users read all of them; staff their member's.
    PermissionSpec(
        Permission.FX_QUOTE_READ,
        {"customer": "all", "sme_owner": "all", **_STAFF_READ},
        label_zh="查看外汇报价",
        label_en="Read FX quotes",
    ),
    PermissionSpec(
        Permission.PAYMENT_TRANSFER,
        {"customer": "own", "sme_owner": "own"},
        label_zh="转账",
        label_en="Transfer money",
    ),
)

MODULE = DomainModule(
    name="payments",
    contracts=(PAYMENTS_CONTRACT,),
    projections=_projections,
    projection_verifiers=_verifiers,
    notifiers=_notifiers,
    party_finders=_party_finders,
    routers=(_router, _opening_router, _people_router),
    cli=_cli,
    vault_schemas=_vault_schemas,
    invariants=_invariants,
    permissions=PAYMENTS_PERMISSIONS,
    settings=PaymentsSettings,
    services=_services,
    demo=_demo,
    pages=(MONEY, PAY, FX, MERCHANT, ACCOUNT_REQUESTS, MEMBER_ACCOUNTS, LEDGER),
    web_routers=(_web_router, _consoles_router),
    templates="zhijin.payments.web",
)

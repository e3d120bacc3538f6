"""The ordered tuple of domain manifests, and everything derived from it (Cosmos-style app).

`MODULES` is the one list that names the domains.  Its order is the node's order: demo seeds
run in it (identity first: the users own what the later domains seed), services start in it
and stop in reverse, routers are included in it.  The contract registry, projections and their
verifiers, notifiers, party finders, vault schemas, CLI groups, invariants and permissions are
each the concatenation over it.  Adding a domain = its package with a `module.py` + one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine

from zhijin.aml.module import MODULE as AML
from zhijin.chain.contract import ContractRegistry, StateReader
from zhijin.chain.governance import GOVERNANCE_CONTRACT
from zhijin.credit.module import MODULE as CREDIT
from zhijin.identity.module import MODULE as IDENTITY
from zhijin.identity.rbac import PermissionMatrix, install_matrix
from zhijin.lending.module import MODULE as LENDING
from zhijin.notary.module import MODULE as NOTARY
from zhijin.payments.module import MODULE as PAYMENTS
from zhijin.platform.module import DomainModule, NavEntry, NodeService
from zhijin.platform.settings import SettingsSection
from zhijin.platform.web import API_DOCS, CHAIN_CHECK, EXPLORER, JOB_PROGRESS
from zhijin.risk.module import MODULE as RISK

if TYPE_CHECKING:  # chain_read imports the runtime, which imports this module
    import typer
    from fastapi import APIRouter

    from zhijin.platform.chain_read import PartyFinder
    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection
    from zhijin.platform.vault import RecordSchema

__all__ = [
    "CHAIN",
    "MODULES",
    "check_invariants",
    "cli_groups",
    "default_notifiers",
    "default_party_finders",
    "default_projection_verifiers",
    "default_projections",
    "default_registry",
    "install_permissions",
    "nav_entries",
    "node_services",
    "permission_matrix",
    "permissions",
    "routers",
    "settings_sections",
    "template_packages",
    "vault_schemas",
    "web_routers",
]


def _chain_router() -> APIRouter:
    from zhijin.platform.chain_api import router

    return router


# The chain's own contract (governance of members and contracts) and its read API: not a
# domain, but wired like one so that the registry and the routers have a single source.
def _explorer_router() -> APIRouter:
    from zhijin.platform.explorer_pages import router

    return router


def _console_router() -> APIRouter:
    from zhijin.platform.console_pages import router

    return router


CHAIN = DomainModule(
    name="chain",
    contracts=(GOVERNANCE_CONTRACT,),
    routers=(_chain_router,),
    pages=(EXPLORER, CHAIN_CHECK, JOB_PROGRESS, API_DOCS),
    web_routers=(_explorer_router, _console_router),
)

MODULES: tuple[DomainModule, ...] = (CHAIN, IDENTITY, PAYMENTS, NOTARY, CREDIT, AML, RISK, LENDING)


T = TypeVar("T")


def _each(field: Callable[[DomainModule], Callable[[], tuple[T, ...]] | None]) -> list[T]:
    """Concatenate one lazily built field over the modules, in manifest order."""
    return [item for module in MODULES if (build := field(module)) is not None for item in build()]


def default_registry() -> ContractRegistry:
    return ContractRegistry(contract for module in MODULES for contract in module.contracts)


def default_projections() -> list[Projection]:
    return _each(lambda module: module.projections)


def default_projection_verifiers() -> list[ProjectionVerifier]:
    """Each projection's check against chain state (`zhijin projections verify`, the trial
    balance): one per domain, beside its projection."""
    return _each(lambda module: module.projection_verifiers)


def default_notifiers(platform_engine: Engine) -> list[Notifier]:
    """What each domain tells a live subscriber about a block (`GET /api/v1/events`)."""
    return [
        notifier
        for module in MODULES
        if module.notifiers is not None
        for notifier in module.notifiers(platform_engine)
    ]


def default_party_finders() -> list[PartyFinder]:
    """Whom each domain's transactions name, for the chain's read policy (chain_read.py)."""
    return _each(lambda module: module.party_finders)


def vault_schemas() -> dict[str, RecordSchema]:
    """Every schema the platform seals vault records in, by name: an index-secret rotation
    must know each one to recompute its blind indexes (it stops on a record of another)."""
    schemas: dict[str, RecordSchema] = {}
    for module in MODULES:
        if module.vault_schemas is not None:
            schemas.update(module.vault_schemas())
    return schemas


def routers() -> Iterator[APIRouter]:
    """Every module's routers, in manifest order (the app factory includes them)."""
    for module in MODULES:
        for router in module.routers:
            yield router()


def cli_groups() -> list[tuple[str, typer.Typer]]:
    """Every module's CLI groups as (command name, typer app), in manifest order."""
    return _each(lambda module: module.cli)


def check_invariants(reader: StateReader) -> list[str]:
    """Every module's broken invariants over one chain state, each as "module.name: problem"
    (`payments.debits_equal_credits: ...`); empty when every domain's state is sound."""
    return [
        f"{module.name}.{problem}"
        for module in MODULES
        if module.invariants is not None
        for problem in module.invariants(reader)
    ]


def permissions() -> dict[str, str]:
    """Each permission the modules' routes check, and the module that declares it."""
    return {spec.name: module.name for module in MODULES for spec in module.permissions}


def settings_sections() -> list[type[SettingsSection]]:
    """Each module's settings section, in manifest order (`zhijin.node.settings` composes
    them with the core fields into the node's one flat model)."""
    return [module.settings for module in MODULES if module.settings is not None]


def permission_matrix() -> PermissionMatrix:
    """Identity's RBAC matrix from every module's permission specs, in manifest order; a
    duplicate name, an unknown role or a declared regulator grant stops the build."""
    return PermissionMatrix.build(spec for module in MODULES for spec in module.permissions)


def install_permissions() -> PermissionMatrix:
    """Build the matrix and make it the one identity's `require` consults (node and app build
    call this, so what the running node checks is what its modules declare)."""
    matrix = permission_matrix()
    install_matrix(matrix)
    return matrix


def nav_entries() -> list[NavEntry]:
    """The web app's pages that modules bring, in navigation order (then manifest order)."""
    pages = [page for module in MODULES for page in module.pages]
    paths = [page.path for page in pages]
    duplicated = sorted({path for path in paths if paths.count(path) > 1})
    if duplicated:
        raise ValueError(f"pages declared by more than one module: {duplicated}")
    return sorted(pages, key=lambda page: page.order)


def web_routers() -> Iterator[APIRouter]:
    """Every module's page routers (HTML), in manifest order."""
    for module in MODULES:
        for router in module.web_routers:
            yield router()


def template_packages() -> list[str]:
    """The packages whose `templates/` folders the web shell loads, in manifest order."""
    return [module.templates for module in MODULES if module.templates is not None]


def node_services(host: Any) -> list[NodeService]:
    """The services a node host runs, built over it, in manifest order (started in it,
    stopped in reverse)."""
    return [
        service
        for module in MODULES
        if module.services is not None
        for service in module.services(host)
    ]

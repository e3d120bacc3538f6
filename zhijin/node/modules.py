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

from zhijin.chain.contract import ContractRegistry, StateReader
from zhijin.chain.governance import GOVERNANCE_CONTRACT
from zhijin.identity.module import MODULE as IDENTITY
from zhijin.notary.module import MODULE as NOTARY
from zhijin.payments.module import MODULE as PAYMENTS
from zhijin.platform.module import DomainModule, NavEntry, NodeService

if TYPE_CHECKING:  # chain_read imports the runtime, which imports this module
    import typer
    from fastapi import APIRouter

    from zhijin.identity.vault import RecordSchema
    from zhijin.platform.chain_read import PartyFinder
    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

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
    "nav_entries",
    "node_services",
    "permissions",
    "routers",
    "vault_schemas",
]


def _chain_router() -> APIRouter:
    from zhijin.platform.chain_api import router

    return router


# The chain's own contract (governance of members and contracts) and its read API: not a
# domain, but wired like one so that the registry and the routers have a single source.
CHAIN = DomainModule(
    name="chain", contracts=(GOVERNANCE_CONTRACT,), routers=(_chain_router,), pages=()
)

MODULES: tuple[DomainModule, ...] = (CHAIN, IDENTITY, PAYMENTS, NOTARY)


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
    return {permission: module.name for module in MODULES for permission in module.permissions}


def nav_entries() -> list[NavEntry]:
    """The web app's views that modules bring, in manifest order."""
    return [page for module in MODULES for page in module.pages]


def node_services(host: Any) -> list[NodeService]:
    """The services a node host runs, built over it, in manifest order (started in it,
    stopped in reverse)."""
    return [
        service
        for module in MODULES
        if module.services is not None
        for service in module.services(host)
    ]

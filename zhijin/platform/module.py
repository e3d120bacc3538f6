"""What a domain brings to a node, in one value: its manifest (`DomainModule`).

Each domain package exports one `module.py` holding a `DomainModule`; the composition root
(`zhijin/node/modules.py`) lists them in one ordered tuple, and the contract registry, the
projections and their verifiers, the notifiers, the read policy's party finders, the vault
schemas, the routers, the CLI, the demo order, the services a node starts and stops, the
permissions and the web navigation are all derived from that tuple.  Adding a domain is one
package and one line there.

Only plumbing types appear here: a manifest must be importable without its domain's heavy
parts, so routers, CLI groups, projections and the rest are named by zero-argument (or
one-argument) callables that import on call.  This module imports no domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine

from zhijin.chain.contract import Contract, StateReader

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from zhijin.platform.chain_read import PartyFinder
    from zhijin.platform.notifications import Notifier
    from zhijin.platform.projection_verify import ProjectionVerifier
    from zhijin.platform.projections import Projection

__all__ = ["DomainModule", "NavEntry", "NodeService", "Seeded"]


class NodeService(Protocol):
    """A service a node runs beside its orderer (a keeper, a monitor, an anchorer).

    `stop` may write one last transaction (a shutdown anchor) and returns the height of the
    block that holds it, or None: the node waits for that block to be final before it stops
    its orderer, so the query tables it leaves behind include it.
    """

    def start(self) -> None: ...

    def stop(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One view of the web app's navigation (a `data-view` of web/index.html) and its label."""

    view: str
    label: str
    needs_user: bool = True  # shown only to a signed-in user


# The demo seeds run in manifest order; each gets the node host and the results of the seeds
# before it (by module name) and returns its own, so a later domain can use an earlier one's.
Seeded = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DomainModule:
    """One domain's manifest.  Every field but `name` may be empty: a domain brings what it
    needs.  Callables are called by the composition root, never at import."""

    name: str
    contracts: tuple[Contract, ...] = ()
    projections: Callable[[], tuple[Projection, ...]] | None = None
    projection_verifiers: Callable[[], tuple[ProjectionVerifier, ...]] | None = None
    notifiers: Callable[[Engine], tuple[Notifier, ...]] | None = None
    party_finders: Callable[[], tuple[PartyFinder, ...]] | None = None
    routers: tuple[Callable[[], APIRouter], ...] = ()
    # CLI groups: (command name, the typer app) - one domain may bring several (`audit`).
    cli: Callable[[], tuple[tuple[str, typer.Typer], ...]] | None = None
    vault_schemas: Callable[[], Mapping[str, Any]] | None = None
    # The domain's named invariants over chain state (its invariants.py): every broken one
    # as "name: problem", empty when its state is sound.
    invariants: Callable[[StateReader], list[str]] | None = None
    # The permissions the domain's routes check (values of `identity.rbac.Permission`).
    permissions: tuple[str, ...] = ()
    # Settings fields the domain reads (`Settings` keeps one flat, validated model).
    settings_fields: tuple[str, ...] = ()
    # The services it runs on a node, built from the node host (solo or cluster peer).
    services: Callable[[Any], tuple[NodeService, ...]] | None = None
    demo: Callable[[Any, Seeded], Any] | None = None
    pages: tuple[NavEntry, ...] = ()

"""What a domain brings to a node, in one value: its manifest (`DomainModule`).

Each domain package exports one `module.py` holding a `DomainModule`; the composition root
(`zhijin/node/modules.py`) lists them in one ordered tuple, and the contract registry, the
projections and their verifiers, the notifiers, the read policy's party finders, the vault
schemas, the routers, the CLI, the demo order, the services a node starts and stops, the
permissions and the web app's pages and navigation are all derived from that tuple.  Adding a
domain is one package and one line there.

Only plumbing types appear here: a manifest must be importable without its domain's heavy
parts, so routers, CLI groups, projections and the rest are named by zero-argument (or
one-argument) callables that import on call.  This module imports no domain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
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
    from zhijin.platform.settings import SettingsSection

__all__ = [
    "ANYONE",
    "GRANT_SCOPES",
    "SIGNED_IN",
    "SIGNED_OUT",
    "Audience",
    "DomainModule",
    "NavEntry",
    "NodeService",
    "PermissionSpec",
    "Seeded",
    "Viewer",
    "with_permission",
    "with_roles",
]


class NodeService(Protocol):
    """A service a node runs beside its orderer (a keeper, a monitor, an anchorer).

    `stop` may write one last transaction (a shutdown anchor) and returns the height of the
    block that holds it, or None: the node waits for that block to be final before it stops
    its orderer, so the query tables it leaves behind include it.
    """

    def start(self) -> None: ...

    def stop(self) -> int | None: ...


class Viewer(Protocol):
    """Who looks at a page, as the web shell knows them (zhijin/platform/shell.py)."""

    @property
    def signed_in(self) -> bool: ...

    @property
    def roles(self) -> frozenset[str]: ...

    @property
    def permissions(self) -> frozenset[str]: ...


AUDIENCE_KINDS = frozenset({"anyone", "signed_out", "signed_in", "permission", "roles"})


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may open a page and sees it in the navigation.  Build one with the helpers below:
    `ANYONE`, `SIGNED_OUT`, `SIGNED_IN`, `with_permission("account.read")`,
    `with_roles("customer", "sme_owner")` (a role set says whose page it is, where a
    permission alone would also admit staff who hold it in another scope)."""

    kind: str
    permission: str | None = None
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind not in AUDIENCE_KINDS:
            raise ValueError(f"audience kind {self.kind!r} is not one of {sorted(AUDIENCE_KINDS)}")
        if (self.kind == "permission") != (self.permission is not None):
            raise ValueError("a permission audience names exactly one permission")
        if (self.kind == "roles") != bool(self.roles):
            raise ValueError("a roles audience names at least one role")

    def admits(self, viewer: Viewer) -> bool:
        if self.kind == "anyone":
            return True
        if self.kind == "signed_out":
            return not viewer.signed_in
        if not viewer.signed_in:
            return False
        if self.kind == "permission":
            return self.permission in viewer.permissions
        if self.kind == "roles":
            return bool(self.roles & viewer.roles)
        return True  # signed_in


ANYONE = Audience("anyone")
SIGNED_OUT = Audience("signed_out")
SIGNED_IN = Audience("signed_in")


def with_permission(permission: str) -> Audience:
    return Audience("permission", permission=str(permission))


def with_roles(*roles: str) -> Audience:
    return Audience("roles", roles=frozenset(str(role) for role in roles))


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One page of the web app: its path, the msgid of its label (the "web" catalog), who
    sees it (`audience`), and its place in the navigation (`order`, smaller first).

    The route behind `path` is in the module's `web_routers` and guards itself with the same
    entry (`shell.page_access(entry)`), so the navigation and the page cannot disagree about
    who may open it.  `home` marks the page `/` leads a viewer it admits to (the first by
    order); `in_nav=False` keeps a page (sign-in, for one) out of the navigation bar."""

    path: str
    label: str
    audience: Audience
    order: int = 100
    home: bool = False
    in_nav: bool = True

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or "//" in self.path:
            raise ValueError(f"page path {self.path!r} must be an absolute local path")


# The scopes a grant may carry (identity's `rbac.Scope` holds the same three values).
GRANT_SCOPES = frozenset({"own", "member", "all"})
_PERMISSION_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
PERMISSION_NAME_CHARS_MAX = 64


@dataclass(frozen=True, slots=True)
class PermissionSpec:
    """One permission a domain's routes check, and which roles hold it in which scope.

    The roles are identity's (`identity.rbac.Role`, fixed for the consortium); the composition
    root joins every manifest's specs into the matrix identity's `require` consults, and refuses
    an unknown role there.  The regulator's row is derived (every read, scope "all"; never a
    write), so a spec does not name it.
    """

    name: str  # "credit.decide"; an action starting "read" or "verify" is a read
    grants: Mapping[str, str]  # role value ("bank_officer") -> scope ("own"|"member"|"all")
    approval: bool = False  # maker-checker: the creator/owner may not approve it
    personal_data: bool = False  # reads always audited; justification for JUSTIFIED_ROLES
    label_zh: str = ""
    label_en: str = ""

    def __post_init__(self) -> None:
        if len(self.name) > PERMISSION_NAME_CHARS_MAX or not _PERMISSION_NAME.fullmatch(self.name):
            raise ValueError(
                f"permission name {self.name!r} is not '<resource>.<action>' in snake_case "
                f"of at most {PERMISSION_NAME_CHARS_MAX} characters"
            )
        for role, scope in self.grants.items():
            if scope not in GRANT_SCOPES:
                raise ValueError(
                    f"{self.name}: role {role!r} has scope {scope!r}, not one of "
                    f"{sorted(GRANT_SCOPES)}"
                )
        # Plain values the declaring module cannot change afterwards (a `Permission` member
        # becomes its string; the matrix is built once).
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "grants", MappingProxyType(dict(self.grants)))

    @property
    def is_read(self) -> bool:
        """One rule for every domain, so a new permission cannot be misfiled by a table entry."""
        action = self.name.split(".", 1)[1]
        return action.startswith(("read", "verify"))


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
    # The permissions the domain's routes check and their role grants: the composition root
    # builds identity's RBAC matrix from every module's (`modules.permission_matrix`).
    permissions: tuple[PermissionSpec, ...] = ()
    # The settings section the domain reads (its fields, one `ZHIJIN_<FIELD>` each): the root
    # composes the node's flat settings model from every module's (`zhijin.node.settings`).
    settings: type[SettingsSection] | None = None
    # The services it runs on a node, built from the node host (solo or cluster peer).
    services: Callable[[Any], tuple[NodeService, ...]] | None = None
    demo: Callable[[Any, Seeded], Any] | None = None
    # The web app (docs/web.md): the module's pages in the navigation, the routers that serve
    # them (HTML, built with the shell), and the package whose `templates/` folder holds its
    # Jinja2 templates ("zhijin.payments.web"; templates named "<domain>/<page>.html").
    pages: tuple[NavEntry, ...] = ()
    web_routers: tuple[Callable[[], APIRouter], ...] = ()
    templates: str | None = None

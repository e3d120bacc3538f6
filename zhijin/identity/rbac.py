"""Roles, the permission matrix that the manifests declare, and separation of duties.

Each domain's manifest declares its permissions and who holds them (`PermissionSpec`, see
docs/adding-a-domain.md); the composition root joins them into one `PermissionMatrix` and
installs it here (`install_matrix`) when it builds a node or an app, so a new domain's
permission needs no edit of identity.  Until then the matrix holds identity's own permissions
alone: an identity service built by itself authorises its own actions and refuses the rest.

Every grant in the matrix carries a scope:

- `own`: only resources whose `owner_id` is the principal (a customer's own accounts),
- `member`: only resources of the principal's institution (`member_did`),
- `all`: any resource.

`require(principal, permission, resource=..., justification=...)` is the only check routes
call; `permission` is the name a manifest declares (`"credit.decide"`; the `Permission`
members are the names of identity's and payments' own).  It refuses with a `Forbidden` whose
code names the rule, in this order of precedence:

1. `sod_role_conflict` - the principal holds two roles that must never meet in one person,
2. `permission_denied` - no role of the principal grants the permission at all (an unknown
   name included),
3. `out_of_scope` - a role grants it, but not for this resource,
4. `sod_self_approval` / `sod_self_grant` - separation-of-duties rules on the resource,
5. `justification_required` - the grant needs a recorded reason and none (or too short) came.

It returns a `Grant` that names the role and scope used; the caller writes privileged grants
and every refusal to the audit log (see `service.AccessGuard`).  A `require` with
`resource=None` for an `own`/`member` grant means "list what I may see": the caller must filter
its query by `grant.scope`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from zhijin.identity import limits
from zhijin.identity.permissions import IDENTITY_PERMISSIONS
from zhijin.platform.errors import Forbidden
from zhijin.platform.module import PermissionSpec

__all__ = [
    "INCOMPATIBLE_ROLES",
    "JUSTIFIED_ROLES",
    "STAFF_ROLES",
    "Access",
    "Grant",
    "Permission",
    "PermissionMatrix",
    "Principal",
    "Resource",
    "Role",
    "Scope",
    "access_of",
    "current_matrix",
    "install_matrix",
    "matrix_markdown",
    "permissions_of",
    "require",
    "require_permission",
]


class Role(enum.StrEnum):
    CUSTOMER = "customer"
    SME_OWNER = "sme_owner"
    BANK_OFFICER = "bank_officer"
    RISK_ANALYST = "risk_analyst"
    COMPLIANCE_OFFICER = "compliance_officer"
    REGULATOR = "regulator"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Access(enum.StrEnum):
    READ = "read"
    WRITE = "write"


def access_of(permission: str) -> Access:
    """A permission is a read exactly when its action starts with "read" or "verify": one
    rule, so a new permission cannot be misfiled by forgetting a table entry."""
    action = permission.split(".", 1)[-1]
    return Access.READ if action.startswith(("read", "verify")) else Access.WRITE


class Permission(enum.StrEnum):
    """Names for the permissions identity and payments check in code.  The manifests declare
    them, with their grants (`identity/permissions.py`, `payments/module.py`); a new domain
    checks its own names as plain strings and adds nothing here."""

    # Identity.
    USER_READ = "user.read"
    PERSONAL_DATA_READ = "personal_data.read"
    PERSONAL_DATA_READ_HIGHLY_SENSITIVE = "personal_data.read_highly_sensitive"
    POLICY_READ = "policy.read"
    AUDIT_LOG_READ = "audit_log.read"
    AUDIT_LOG_VERIFY = "audit_log.verify"
    PROFILE_UPDATE = "profile.update"
    KYC_REVIEW = "kyc.review"
    CREDENTIAL_ISSUE = "credential.issue"
    CREDENTIAL_REVOKE = "credential.revoke"
    CONSENT_MANAGE = "consent.manage"
    USER_MANAGE = "user.manage"
    ROLE_ASSIGN = "role.assign"
    POLICY_UPDATE = "policy.update"
    # Payments.
    ACCOUNT_READ = "account.read"
    TRANSACTION_READ = "transaction.read"
    ACCOUNT_OPEN = "account.open"
    ACCOUNT_REQUEST = "account.request"  # a customer asks their bank to open an account
    ACCOUNT_STATUS = "account.status"
    PAYMENT_TRANSFER = "payment.transfer"
    FX_QUOTE_READ = "fx_quote.read"  # members' firm FX quotes, as customers see them

    @property
    def access(self) -> Access:
        return access_of(self.value)


class Scope(enum.StrEnum):
    OWN = "own"
    MEMBER = "member"
    ALL = "all"


# Administration of people: nobody changes their own account or roles (identity's own rule on
# its own permissions; a manifest's `approval` is the general maker-checker one).
SELF_ADMINISTRATION = frozenset({Permission.ROLE_ASSIGN, Permission.USER_MANAGE})
# Roles that read personal data only with a written justification.
JUSTIFIED_ROLES = frozenset({Role.ADMIN, Role.REGULATOR})


@dataclass(frozen=True, slots=True)
class PermissionMatrix:
    """Every declared permission and each role's grants, built from the manifests' specs.

    The regulator's row is derived, not declared: every read in scope `all`, never a write, so
    a new read permission reaches it and a write permission never can.
    """

    specs: Mapping[str, PermissionSpec]  # by name, in declaration order
    grants: Mapping[Role, Mapping[str, Scope]]

    @classmethod
    def build(cls, specs: Iterable[PermissionSpec]) -> PermissionMatrix:
        by_name: dict[str, PermissionSpec] = {}
        grants: dict[Role, dict[str, Scope]] = {role: {} for role in Role}
        roles = {role.value: role for role in Role}
        for spec in specs:
            if spec.name in by_name:
                raise ValueError(f"permission {spec.name} is declared twice")
            by_name[spec.name] = spec
            for role_name, scope in spec.grants.items():
                role = roles.get(role_name)
                if role is None:
                    raise ValueError(f"{spec.name}: {role_name!r} is not a role ({sorted(roles)})")
                if role is Role.REGULATOR:
                    raise ValueError(
                        f"{spec.name}: the regulator's grants are derived, not declared"
                    )
                grants[role][spec.name] = Scope(scope)
            if access_of(spec.name) is Access.READ:
                grants[Role.REGULATOR][spec.name] = Scope.ALL
        return cls(
            specs=MappingProxyType(by_name),
            grants=MappingProxyType({r: MappingProxyType(g) for r, g in grants.items()}),
        )

    def is_approval(self, permission: str) -> bool:
        spec = self.specs.get(permission)
        return spec is not None and spec.approval

    def is_personal_data(self, permission: str) -> bool:
        spec = self.specs.get(permission)
        return spec is not None and spec.personal_data


# The matrix `require` consults.  Replaced as a whole (one reference swap), never mutated.
_installed = PermissionMatrix.build(IDENTITY_PERMISSIONS)


def install_matrix(matrix: PermissionMatrix) -> None:
    """Make `matrix` the one `require` consults (the composition root, at node and app build)."""
    global _installed
    _installed = matrix


def current_matrix() -> PermissionMatrix:
    return _installed


_END_USER_ROLES = frozenset({Role.CUSTOMER, Role.SME_OWNER})
# Every role that acts for an institution: each signs in with a second factor (service.py).
STAFF_ROLES = frozenset(Role) - _END_USER_ROLES
# Role pairs one person may never hold together.  Staff act for the institution and use a
# separate login for their own banking; the regulator and the auditor are independent of
# everything they oversee; whoever administers accounts and roles takes no business decisions.
_BUSINESS_ROLES = frozenset({Role.BANK_OFFICER, Role.RISK_ANALYST, Role.COMPLIANCE_OFFICER})
INCOMPATIBLE_ROLES: frozenset[frozenset[Role]] = frozenset(
    {frozenset({a, b}) for a in _END_USER_ROLES for b in STAFF_ROLES}
    | {frozenset({Role.ADMIN, r}) for r in _BUSINESS_ROLES}
    | {frozenset({Role.REGULATOR, r}) for r in Role if r is not Role.REGULATOR}
    | {frozenset({Role.AUDITOR, r}) for r in Role if r is not Role.AUDITOR}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: built from a verified session or token, never from request data."""

    user_id: str
    roles: frozenset[Role]
    member_did: str | None = None  # the institution of a staff member
    session_id: str | None = None  # the hash id of the session or token, for revocation
    auth_at_ms: int = 0  # last password (or recovery-code) check
    mfa_at_ms: int | None = None  # last second-factor check
    via: str = "session"  # "session" (browser cookie) or "token" (API bearer)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on, with the attributes the rules look at."""

    kind: str
    id: str | None = None
    owner_id: str | None = None  # the user the resource belongs to
    member_did: str | None = None  # the institution that holds it
    created_by: str | None = None  # who created it (for creator/approver separation)
    subject_id: str | None = None  # the user an administrative action targets


@dataclass(frozen=True, slots=True)
class Grant:
    user_id: str
    permission: str
    role: Role
    scope: Scope
    justification: str | None = None

    @property
    def privileged(self) -> bool:
        """Granted to staff rather than to the data subject: the audit log records it."""
        return self.role not in _END_USER_ROLES


def permissions_of(
    roles: frozenset[Role], matrix: PermissionMatrix | None = None
) -> dict[str, tuple[tuple[Role, Scope], ...]]:
    """Each permission some role of `roles` holds, with every (role, scope) that grants it."""
    grants_by_role = (matrix or _installed).grants
    result: dict[str, list[tuple[Role, Scope]]] = {}
    for role in sorted(roles):
        for permission, scope in grants_by_role[role].items():
            result.setdefault(permission, []).append((role, scope))
    return {p: tuple(grants) for p, grants in result.items()}


def _in_scope(principal: Principal, scope: Scope, resource: Resource | None) -> bool:
    if resource is None or scope is Scope.ALL:
        return True
    if scope is Scope.OWN:
        return resource.owner_id is not None and resource.owner_id == principal.user_id
    return principal.member_did is not None and resource.member_did == principal.member_did


def _check_role_conflict(principal: Principal) -> None:
    for pair in INCOMPATIBLE_ROLES:
        if pair <= principal.roles:
            names = ", ".join(sorted(pair))
            raise Forbidden("sod_role_conflict", f"the roles {names} may not be held together")


def _check_separation(
    matrix: PermissionMatrix, principal: Principal, permission: str, resource: Resource
) -> None:
    creator_or_owner = principal.user_id in (resource.created_by, resource.owner_id)
    if matrix.is_approval(permission) and creator_or_owner:
        raise Forbidden("sod_self_approval", "whoever created or owns this may not approve it")
    if permission in SELF_ADMINISTRATION and resource.subject_id == principal.user_id:
        raise Forbidden("sod_self_grant", "nobody may change their own account or roles")


def _needs_justification(matrix: PermissionMatrix, role: Role, permission: str) -> bool:
    return role in JUSTIFIED_ROLES and matrix.is_personal_data(permission)


def _justification(
    matrix: PermissionMatrix, grant_role: Role, permission: str, justification: str | None
) -> str | None:
    if not _needs_justification(matrix, grant_role, permission):
        return justification
    text = (justification or "").strip()
    if not limits.JUSTIFICATION_CHARS_MIN <= len(text) <= limits.JUSTIFICATION_CHARS_MAX:
        raise Forbidden(
            "justification_required",
            f"reading personal data as {grant_role} needs a justification of "
            f"{limits.JUSTIFICATION_CHARS_MIN} to {limits.JUSTIFICATION_CHARS_MAX} characters",
        )
    return text


def require_permission(
    principal: Principal, permission: str, *, matrix: PermissionMatrix | None = None
) -> tuple[tuple[Role, Scope], ...]:
    """Rules 1 and 2 alone, which depend only on the principal's roles: the grants of
    `permission`, or Forbidden.  A service runs this before it looks anything up, so a caller
    without the permission learns nothing about whether the resource exists."""
    _check_role_conflict(principal)
    grants = permissions_of(principal.roles, matrix).get(permission)
    if not grants:
        raise Forbidden("permission_denied", f"no role of this user grants {permission}")
    return grants


def require(
    principal: Principal,
    permission: str,
    *,
    resource: Resource | None = None,
    justification: str | None = None,
    matrix: PermissionMatrix | None = None,
) -> Grant:
    """The grant that lets `principal` do `permission` on `resource`, or Forbidden.  `matrix`
    defaults to the installed one (a test may pass its own)."""
    matrix = matrix or _installed
    grants = require_permission(principal, permission, matrix=matrix)
    usable = [(role, scope) for role, scope in grants if _in_scope(principal, scope, resource)]
    if not usable:
        raise Forbidden("out_of_scope", f"{permission} is not granted for this resource")
    # Several roles may grant it (an officer who is also an analyst): take one that needs no
    # justification if there is one, then by name, so the same request always gets the same grant.
    usable.sort(key=lambda rs: (rs[0] in JUSTIFIED_ROLES, rs[0]))
    role, scope = usable[0]
    if resource is not None:
        _check_separation(matrix, principal, permission, resource)
    reason = _justification(matrix, role, permission, justification)
    return Grant(
        user_id=principal.user_id,
        permission=str(permission),
        role=role,
        scope=scope,
        justification=reason,
    )


def matrix_markdown(matrix: PermissionMatrix | None = None) -> str:
    """The matrix as a markdown table (roles across, permissions down: reads, then writes, each
    in manifest order), for docs and reviews."""
    matrix = matrix or _installed
    roles = list(Role)
    lines = [
        "| permission | 名称 / label | access | " + " | ".join(roles) + " |",
        "|---|---|---|" + "---|" * len(roles),
    ]
    names = sorted(matrix.specs, key=lambda name: access_of(name) is Access.WRITE)
    for name in names:
        spec = matrix.specs[name]
        cells = []
        for role in roles:
            scope = matrix.grants[role].get(name)
            mark = "—" if scope is None else scope.value
            if scope is not None and _needs_justification(matrix, role, name):
                mark += " + justification"
            cells.append(mark)
        label = f"{spec.label_zh} / {spec.label_en}"
        lines.append(f"| {name} | {label} | {access_of(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

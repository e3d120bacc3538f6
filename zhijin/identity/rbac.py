"""Roles, permissions, the permission matrix (the one place it lives) and separation of duties.

Every grant in the matrix carries a scope:

- `own`: only resources whose `owner_id` is the principal (a customer's own accounts),
- `member`: only resources of the principal's institution (`member_did`),
- `all`: any resource.

`require(principal, permission, resource=..., justification=...)` is the only check routes
call.  It refuses with a `Forbidden` whose code names the rule, in this order of precedence:

1. `sod_role_conflict` - the principal holds two roles that must never meet in one person,
2. `permission_denied` - no role of the principal grants the permission at all,
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
from collections.abc import Mapping
from dataclasses import dataclass

from zhijin.identity import limits
from zhijin.identity.errors import Forbidden

__all__ = [
    "APPROVALS",
    "INCOMPATIBLE_ROLES",
    "MATRIX",
    "PERSONAL_DATA",
    "Access",
    "Grant",
    "Permission",
    "Principal",
    "Resource",
    "Role",
    "Scope",
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


class Permission(enum.StrEnum):
    # Reads.
    ACCOUNT_READ = "account.read"
    TRANSACTION_READ = "transaction.read"
    LOAN_READ = "loan.read"
    CREDIT_REPORT_READ = "credit_report.read"
    PERSONAL_DATA_READ = "personal_data.read"
    PERSONAL_DATA_READ_HIGHLY_SENSITIVE = "personal_data.read_highly_sensitive"
    RISK_ALERT_READ = "risk_alert.read"
    REPORT_READ = "report.read"
    USER_READ = "user.read"
    POLICY_READ = "policy.read"
    AUDIT_LOG_READ = "audit_log.read"
    AUDIT_LOG_VERIFY = "audit_log.verify"
    # Writes.
    PROFILE_UPDATE = "profile.update"
    ACCOUNT_OPEN = "account.open"
    ACCOUNT_STATUS = "account.status"  # freeze, unfreeze, close
    PAYMENT_TRANSFER = "payment.transfer"
    LOAN_APPLY = "loan.apply"
    LOAN_APPROVE = "loan.approve"
    LOAN_PRODUCT_CREATE = "loan_product.create"
    LOAN_PRODUCT_APPROVE = "loan_product.approve"
    KYC_REVIEW = "kyc.review"
    CREDENTIAL_ISSUE = "credential.issue"
    CREDENTIAL_REVOKE = "credential.revoke"
    CONSENT_MANAGE = "consent.manage"
    RISK_CASE_MANAGE = "risk_case.manage"
    SAR_FILE = "sar.file"
    USER_MANAGE = "user.manage"
    ROLE_ASSIGN = "role.assign"
    POLICY_UPDATE = "policy.update"

    @property
    def access(self) -> Access:
        # A permission is a read exactly when its action starts with "read" or is "verify":
        # one rule, so a new permission cannot be misfiled by forgetting a table entry.
        action = self.value.split(".", 1)[1]
        return Access.READ if action.startswith("read") or action == "verify" else Access.WRITE


class Scope(enum.StrEnum):
    OWN = "own"
    MEMBER = "member"
    ALL = "all"


# Permissions on personal data: reading them is always audited, and for the roles in
# JUSTIFIED_ROLES a written justification is part of the grant.
PERSONAL_DATA = frozenset(
    {Permission.PERSONAL_DATA_READ, Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE}
)
# Approvals: whoever created (or owns) the thing may not approve it.  Issuing a credential
# counts as one: the officer who issues must not be the one who reviewed the case
# (`created_by` = the reviewer), nor its subject.
APPROVALS = frozenset(
    {
        Permission.LOAN_APPROVE,
        Permission.LOAN_PRODUCT_APPROVE,
        Permission.KYC_REVIEW,
        Permission.CREDENTIAL_ISSUE,
    }
)
# Administration of people: nobody changes their own account or roles.
SELF_ADMINISTRATION = frozenset({Permission.ROLE_ASSIGN, Permission.USER_MANAGE})
JUSTIFIED_ROLES = frozenset({Role.ADMIN, Role.REGULATOR})

_READS = {p: Scope.ALL for p in Permission if p.access is Access.READ}
_END_USER = {
    Permission.ACCOUNT_READ: Scope.OWN,
    Permission.TRANSACTION_READ: Scope.OWN,
    Permission.LOAN_READ: Scope.OWN,
    Permission.CREDIT_REPORT_READ: Scope.OWN,
    Permission.PERSONAL_DATA_READ: Scope.OWN,
    Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE: Scope.OWN,
    Permission.PROFILE_UPDATE: Scope.OWN,
    Permission.PAYMENT_TRANSFER: Scope.OWN,
    Permission.LOAN_APPLY: Scope.OWN,
    Permission.CONSENT_MANAGE: Scope.OWN,
}

MATRIX: Mapping[Role, Mapping[Permission, Scope]] = {
    Role.CUSTOMER: dict(_END_USER),
    Role.SME_OWNER: dict(_END_USER),
    Role.BANK_OFFICER: {
        Permission.ACCOUNT_READ: Scope.MEMBER,
        Permission.TRANSACTION_READ: Scope.MEMBER,
        Permission.LOAN_READ: Scope.MEMBER,
        Permission.CREDIT_REPORT_READ: Scope.MEMBER,
        Permission.PERSONAL_DATA_READ: Scope.MEMBER,
        Permission.USER_READ: Scope.MEMBER,
        Permission.POLICY_READ: Scope.ALL,
        Permission.ACCOUNT_OPEN: Scope.MEMBER,
        Permission.ACCOUNT_STATUS: Scope.MEMBER,
        Permission.LOAN_APPROVE: Scope.MEMBER,
        Permission.LOAN_PRODUCT_CREATE: Scope.MEMBER,
        Permission.LOAN_PRODUCT_APPROVE: Scope.MEMBER,
        Permission.CREDENTIAL_ISSUE: Scope.MEMBER,
        Permission.CREDENTIAL_REVOKE: Scope.MEMBER,
    },
    Role.RISK_ANALYST: {
        Permission.TRANSACTION_READ: Scope.MEMBER,
        Permission.LOAN_READ: Scope.MEMBER,
        Permission.CREDIT_REPORT_READ: Scope.MEMBER,
        Permission.RISK_ALERT_READ: Scope.MEMBER,
        Permission.REPORT_READ: Scope.MEMBER,
        Permission.POLICY_READ: Scope.ALL,
        Permission.LOAN_APPROVE: Scope.MEMBER,
        Permission.LOAN_PRODUCT_APPROVE: Scope.MEMBER,
        Permission.RISK_CASE_MANAGE: Scope.MEMBER,
    },
    Role.COMPLIANCE_OFFICER: {
        Permission.ACCOUNT_READ: Scope.MEMBER,
        Permission.TRANSACTION_READ: Scope.MEMBER,
        Permission.PERSONAL_DATA_READ: Scope.MEMBER,
        Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE: Scope.MEMBER,
        Permission.RISK_ALERT_READ: Scope.MEMBER,
        Permission.REPORT_READ: Scope.MEMBER,
        Permission.USER_READ: Scope.MEMBER,
        Permission.POLICY_READ: Scope.ALL,
        Permission.AUDIT_LOG_READ: Scope.MEMBER,
        Permission.ACCOUNT_STATUS: Scope.MEMBER,
        Permission.KYC_REVIEW: Scope.MEMBER,
        Permission.CREDENTIAL_REVOKE: Scope.MEMBER,
        Permission.RISK_CASE_MANAGE: Scope.MEMBER,
        Permission.SAR_FILE: Scope.MEMBER,
        Permission.POLICY_UPDATE: Scope.ALL,
    },
    # The regulator reads everything and writes nothing: its row is derived, not listed, so a
    # new read permission reaches it and a write permission never can.
    Role.REGULATOR: dict(_READS),
    Role.AUDITOR: {
        Permission.ACCOUNT_READ: Scope.ALL,
        Permission.TRANSACTION_READ: Scope.ALL,
        Permission.LOAN_READ: Scope.ALL,
        Permission.RISK_ALERT_READ: Scope.ALL,
        Permission.REPORT_READ: Scope.ALL,
        Permission.USER_READ: Scope.ALL,
        Permission.POLICY_READ: Scope.ALL,
        Permission.AUDIT_LOG_READ: Scope.ALL,
        Permission.AUDIT_LOG_VERIFY: Scope.ALL,
    },
    Role.ADMIN: {
        Permission.USER_READ: Scope.ALL,
        Permission.POLICY_READ: Scope.ALL,
        Permission.PERSONAL_DATA_READ: Scope.ALL,  # only with a justification (JUSTIFIED_ROLES)
        Permission.USER_MANAGE: Scope.ALL,
        Permission.ROLE_ASSIGN: Scope.ALL,
    },
}

_END_USER_ROLES = frozenset({Role.CUSTOMER, Role.SME_OWNER})
_STAFF_ROLES = frozenset(Role) - _END_USER_ROLES
# Role pairs one person may never hold together.  Staff act for the institution and use a
# separate login for their own banking; the regulator and the auditor are independent of
# everything they oversee; whoever administers accounts and roles takes no business decisions.
_BUSINESS_ROLES = frozenset({Role.BANK_OFFICER, Role.RISK_ANALYST, Role.COMPLIANCE_OFFICER})
INCOMPATIBLE_ROLES: frozenset[frozenset[Role]] = frozenset(
    {frozenset({a, b}) for a in _END_USER_ROLES for b in _STAFF_ROLES}
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
    permission: Permission
    role: Role
    scope: Scope
    justification: str | None = None

    @property
    def privileged(self) -> bool:
        """Granted to staff rather than to the data subject: the audit log records it."""
        return self.role not in _END_USER_ROLES


def permissions_of(roles: frozenset[Role]) -> dict[Permission, tuple[tuple[Role, Scope], ...]]:
    result: dict[Permission, list[tuple[Role, Scope]]] = {}
    for role in sorted(roles):
        for permission, scope in MATRIX[role].items():
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


def _check_separation(principal: Principal, permission: Permission, resource: Resource) -> None:
    if permission in APPROVALS and principal.user_id in (resource.created_by, resource.owner_id):
        raise Forbidden("sod_self_approval", "whoever created or owns this may not approve it")
    if permission in SELF_ADMINISTRATION and resource.subject_id == principal.user_id:
        raise Forbidden("sod_self_grant", "nobody may change their own account or roles")


def _justification(
    grant_role: Role, permission: Permission, justification: str | None
) -> str | None:
    if permission not in PERSONAL_DATA or grant_role not in JUSTIFIED_ROLES:
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
    principal: Principal, permission: Permission
) -> tuple[tuple[Role, Scope], ...]:
    """Rules 1 and 2 alone, which depend only on the principal's roles: the grants of
    `permission`, or Forbidden.  A service runs this before it looks anything up, so a caller
    without the permission learns nothing about whether the resource exists."""
    _check_role_conflict(principal)
    grants = permissions_of(principal.roles).get(permission)
    if not grants:
        raise Forbidden("permission_denied", f"no role of this user grants {permission}")
    return grants


def require(
    principal: Principal,
    permission: Permission,
    *,
    resource: Resource | None = None,
    justification: str | None = None,
) -> Grant:
    """The grant that lets `principal` do `permission` on `resource`, or Forbidden."""
    grants = require_permission(principal, permission)
    usable = [(role, scope) for role, scope in grants if _in_scope(principal, scope, resource)]
    if not usable:
        raise Forbidden("out_of_scope", f"{permission} is not granted for this resource")
    # Several roles may grant it (an officer who is also an analyst): take one that needs no
    # justification if there is one, then by name, so the same request always gets the same grant.
    usable.sort(key=lambda rs: (rs[0] in JUSTIFIED_ROLES, rs[0]))
    role, scope = usable[0]
    if resource is not None:
        _check_separation(principal, permission, resource)
    reason = _justification(role, permission, justification)
    return Grant(
        user_id=principal.user_id,
        permission=permission,
        role=role,
        scope=scope,
        justification=reason,
    )


def matrix_markdown() -> str:
    """The matrix as a markdown table (roles across, permissions down), for docs and reviews."""
    roles = list(Role)
    lines = [
        "| permission | access | " + " | ".join(roles) + " |",
        "|---|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        cells = []
        for role in roles:
            scope = MATRIX[role].get(permission)
            mark = "—" if scope is None else scope.value
            if scope is not None and permission in PERSONAL_DATA and role in JUSTIFIED_ROLES:
                mark += " + justification"
            cells.append(mark)
        lines.append(f"| {permission} | {permission.access} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

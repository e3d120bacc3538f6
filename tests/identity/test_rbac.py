"""The permission matrix walked cell by cell against an independent copy of the policy, plus
separation-of-duties rules and privilege-escalation attempts for every role."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhijin.identity.errors import Forbidden
from zhijin.identity.rbac import (
    MATRIX,
    Access,
    Permission,
    Principal,
    Resource,
    Role,
    Scope,
    matrix_markdown,
    require,
    require_permission,
)

ROLES = [
    Role.CUSTOMER, Role.SME_OWNER, Role.BANK_OFFICER, Role.RISK_ANALYST,
    Role.COMPLIANCE_OFFICER, Role.REGULATOR, Role.AUDITOR, Role.ADMIN,
]  # fmt: skip
# The policy as the issue states it, written out by hand (not derived from MATRIX):
# columns are the roles above; "o" own, "m" member, "a" all, "-" nothing.
EXPECTED = """
account.read                        o o m - m a a -
transaction.read                    o o m m m a a -
loan.read                           o o m m - a a -
credit_report.read                  o o m m - a - -
personal_data.read                  o o m - m a - a
personal_data.read_highly_sensitive o o - - m a - -
risk_alert.read                     - - - m m a a -
report.read                         - - - m m a a -
user.read                           - - m - m a a a
policy.read                         - - a a a a a a
audit_log.read                      - - - - m a a -
audit_log.verify                    - - - - - a a -
profile.update                      o o - - - - - -
account.open                        - - m - - - - -
account.status                      - - m - m - - -
payment.transfer                    o o - - - - - -
loan.apply                          o o - - - - - -
loan.approve                        - - m m - - - -
loan_product.create                 - - m - - - - -
loan_product.approve                - - m m - - - -
kyc.review                          - - - - m - - -
credential.issue                    - - m - - - - -
credential.revoke                   - - m - m - - -
consent.manage                      o o - - - - - -
risk_case.manage                    - - - m m - - -
sar.file                            - - - - m - - -
user.manage                         - - - - - - - a
role.assign                         - - - - - - - a
policy.update                       - - - - a - - -
"""
_SCOPES = {"o": Scope.OWN, "m": Scope.MEMBER, "a": Scope.ALL, "-": None}
ME, OTHER = "u-actor", "u-other"
M1, M2 = "did:key:z6MkMemberOne", "did:key:z6MkMemberTwo"
REASON = "customer complaint #4711 needs the account holder's identity checked"


def expected_cells() -> dict[tuple[Role, Permission], Scope | None]:
    cells = {}
    for line in EXPECTED.strip().splitlines():
        name, *marks = line.split()
        assert len(marks) == len(ROLES), line
        for role, mark in zip(ROLES, marks, strict=True):
            cells[(role, Permission(name))] = _SCOPES[mark]
    return cells


def principal(*roles: Role, user_id: str = ME, member: str | None = M1) -> Principal:
    return Principal(user_id=user_id, roles=frozenset(roles), member_did=member)


def needs_reason(role: Role, permission: Permission) -> bool:
    return role in (Role.ADMIN, Role.REGULATOR) and permission.value.startswith("personal_data.")


def refused(code: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(Forbidden) as caught:
        require(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value


def test_expected_table_covers_every_permission_and_role() -> None:
    cells = expected_cells()
    assert {p for _, p in cells} == set(Permission)
    assert {r for r, _ in cells} == set(Role)


def test_matrix_equals_the_written_policy() -> None:
    for (role, permission), scope in expected_cells().items():
        assert MATRIX[role].get(permission) == scope, (role, permission)


@pytest.mark.parametrize("role", list(Role))
def test_walk_the_whole_matrix(role: Role) -> None:
    """Every (role, permission) cell: granted exactly where the table says, and only in scope.
    Each refusal is a privilege-escalation attempt by that role."""
    actor = principal(role)
    for permission in Permission:
        scope = expected_cells()[(role, permission)]
        reason = REASON if needs_reason(role, permission) else None
        mine = Resource("thing", owner_id=ME, member_did=M1, created_by=OTHER, subject_id=OTHER)
        foreign = Resource(
            "thing", owner_id=OTHER, member_did=M2, created_by=OTHER, subject_id=OTHER
        )
        same_member = Resource(
            "thing", owner_id=OTHER, member_did=M1, created_by=OTHER, subject_id=OTHER
        )
        if scope is None:
            for resource in (None, mine, foreign, same_member):
                refused(
                    "permission_denied", actor, permission, resource=resource, justification=REASON
                )
            continue
        if scope is Scope.OWN:
            assert (
                require(actor, permission, resource=mine, justification=reason).scope is Scope.OWN
            )
            refused("out_of_scope", actor, permission, resource=foreign, justification=reason)
            refused("out_of_scope", actor, permission, resource=same_member, justification=reason)
        elif scope is Scope.MEMBER:
            assert require(actor, permission, resource=same_member).scope is Scope.MEMBER
            refused("out_of_scope", actor, permission, resource=foreign)
            refused("out_of_scope", principal(role, member=None), permission, resource=same_member)
        else:
            assert (
                require(actor, permission, resource=foreign, justification=reason).scope
                is Scope.ALL
            )
        if needs_reason(role, permission):
            refused("justification_required", actor, permission, resource=foreign)
            refused(
                "justification_required",
                actor,
                permission,
                resource=foreign,
                justification="because",
            )


def test_regulator_reads_everything_and_writes_nothing() -> None:
    regulator = principal(Role.REGULATOR, member=None)
    for permission in Permission:
        if permission.access is Access.READ:
            reason = REASON if needs_reason(Role.REGULATOR, permission) else None
            require(
                regulator, permission, resource=Resource("x", owner_id=OTHER), justification=reason
            )
        else:
            refused(
                "permission_denied",
                regulator,
                permission,
                resource=Resource("x"),
                justification=REASON,
            )
    assert {p for p in MATRIX[Role.REGULATOR]} == {p for p in Permission if p.access is Access.READ}


def test_creator_may_not_approve() -> None:
    officer = principal(Role.BANK_OFFICER)
    product = Resource("loan_product", id="p1", member_did=M1, created_by=ME)
    require(
        officer, Permission.LOAN_PRODUCT_CREATE, resource=Resource("loan_product", member_did=M1)
    )
    refused("sod_self_approval", officer, Permission.LOAN_PRODUCT_APPROVE, resource=product)
    # A colleague at the same bank may approve it.
    colleague = principal(Role.BANK_OFFICER, user_id="u-colleague")
    require(colleague, Permission.LOAN_PRODUCT_APPROVE, resource=product)


def test_nobody_approves_their_own_loan_or_kyc() -> None:
    analyst = principal(Role.RISK_ANALYST)
    refused(
        "sod_self_approval",
        analyst,
        Permission.LOAN_APPROVE,
        resource=Resource("loan", member_did=M1, owner_id=ME, created_by=OTHER),
    )
    compliance = principal(Role.COMPLIANCE_OFFICER)
    refused(
        "sod_self_approval",
        compliance,
        Permission.KYC_REVIEW,
        resource=Resource("kyc_case", member_did=M1, owner_id=ME),
    )


def test_admin_cannot_grant_itself_roles_or_manage_itself() -> None:
    admin = principal(Role.ADMIN, member=None)
    refused(
        "sod_self_grant", admin, Permission.ROLE_ASSIGN, resource=Resource("user", subject_id=ME)
    )
    refused(
        "sod_self_grant", admin, Permission.USER_MANAGE, resource=Resource("user", subject_id=ME)
    )
    require(admin, Permission.ROLE_ASSIGN, resource=Resource("user", subject_id=OTHER))


def test_admin_reads_personal_data_only_with_a_justification() -> None:
    admin = principal(Role.ADMIN, member=None)
    person = Resource("person", owner_id=OTHER)
    refused("justification_required", admin, Permission.PERSONAL_DATA_READ, resource=person)
    refused(
        "justification_required",
        admin,
        Permission.PERSONAL_DATA_READ,
        resource=person,
        justification="   ",
    )
    grant = require(admin, Permission.PERSONAL_DATA_READ, resource=person, justification=REASON)
    assert grant.justification == REASON and grant.privileged
    refused(
        "permission_denied",
        admin,
        Permission.PERSONAL_DATA_READ_HIGHLY_SENSITIVE,
        resource=person,
        justification=REASON,
    )


@pytest.mark.parametrize(
    "roles",
    [
        {Role.CUSTOMER, Role.BANK_OFFICER},
        {Role.SME_OWNER, Role.ADMIN},
        {Role.REGULATOR, Role.AUDITOR},
        {Role.REGULATOR, Role.COMPLIANCE_OFFICER},
        {Role.AUDITOR, Role.ADMIN},
        {Role.ADMIN, Role.BANK_OFFICER},
        {Role.ADMIN, Role.COMPLIANCE_OFFICER},
    ],
)
def test_conflicting_roles_are_refused_for_every_permission(roles: set[Role]) -> None:
    actor = principal(*roles)
    for permission in Permission:
        refused(
            "sod_role_conflict",
            actor,
            permission,
            resource=Resource("x", owner_id=ME, member_did=M1),
            justification=REASON,
        )


def test_compatible_business_roles_combine() -> None:
    actor = principal(Role.BANK_OFFICER, Role.RISK_ANALYST)
    require(actor, Permission.RISK_ALERT_READ, resource=Resource("alert", member_did=M1))
    require(actor, Permission.LOAN_PRODUCT_CREATE, resource=Resource("product", member_did=M1))


def test_no_roles_no_permissions() -> None:
    for permission in Permission:
        refused("permission_denied", principal(), permission)


@given(
    roles=st.frozensets(st.sampled_from(list(Role)), max_size=3),
    permission=st.sampled_from(list(Permission)),
    owner=st.sampled_from([ME, OTHER, None]),
    member=st.sampled_from([M1, M2, None]),
)
def test_property_grants_stay_inside_the_matrix(
    roles: frozenset[Role], permission: Permission, owner: str | None, member: str | None
) -> None:
    actor = Principal(user_id=ME, roles=roles, member_did=M1)
    try:
        grant = require(
            actor,
            permission,
            resource=Resource("x", owner_id=owner, member_did=member),
            justification=REASON,
        )
    except Forbidden:
        return
    assert MATRIX[grant.role][permission] is grant.scope and grant.role in roles
    if Role.REGULATOR in roles:
        assert permission.access is Access.READ
    if grant.scope is Scope.OWN:
        assert owner == ME
    if grant.scope is Scope.MEMBER:
        assert member == M1


def test_docs_carry_the_current_matrix() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "identity.md"
    assert matrix_markdown() in docs.read_text(encoding="utf-8"), (
        "regenerate the table in docs/identity.md"
    )


def test_require_permission_looks_only_at_roles() -> None:
    customer = Principal("u1", frozenset({Role.CUSTOMER}))
    with pytest.raises(Forbidden) as refused:
        require_permission(customer, Permission.KYC_REVIEW)
    assert refused.value.code == "permission_denied"
    compliance = Principal("u2", frozenset({Role.COMPLIANCE_OFFICER}), member_did="did:key:zB")
    assert require_permission(compliance, Permission.KYC_REVIEW) == (
        (Role.COMPLIANCE_OFFICER, Scope.MEMBER),
    )

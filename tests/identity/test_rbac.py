"""The permission matrix walked cell by cell against an independent copy of the policy, plus
separation-of-duties rules and privilege-escalation attempts for every role.

The matrix under test is built the way a node builds it: from the manifests' permission specs,
the real modules', so the rows prove that declared grants produce exactly the written policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhijin.identity.rbac import (
    Access,
    Permission,
    PermissionMatrix,
    Principal,
    Resource,
    Role,
    Scope,
    access_of,
    current_matrix,
    install_matrix,
    matrix_markdown,
    require,
    require_permission,
)
from zhijin.node import modules
from zhijin.platform.errors import Forbidden
from zhijin.platform.module import DomainModule, PermissionSpec

ROLES = [
    Role.CUSTOMER, Role.SME_OWNER, Role.BANK_OFFICER, Role.RISK_ANALYST,
    Role.COMPLIANCE_OFFICER, Role.REGULATOR, Role.AUDITOR, Role.ADMIN,
]  # fmt: skip
# The policy as the issue states it, written out by hand (not derived from MATRIX):
# columns are the roles above; "o" own, "m" member, "a" all, "-" nothing.
EXPECTED = """
account.read                        o o m - m a a -
transaction.read                    o o m m m a a -
fx_quote.read                       a a m - m a a -
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
account.request                     o o - - - - - -
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
credit_model.read                   - - m m m a a -
credit.apply                        o o - - - - - -
credit.decide                       - - m m - - - -
credit_model.register               - - - m - - - -
credit_model.approve                - - - m m - - -
credit_policy.update                - - - m - - - -
document.anchor                     o o - - - - - -
aml_alert.read                      - - - m m a a -
aml_feed.read                       - - - - m a a -
aml_case.manage                     - - - m m - - -
aml_case.dismiss                    - - - m m - - -
large_value_report.file             - - - - m - - -
aml_rules.propose                   - - - m m - - -
aml_rules.approve                   - - - - m - - -
risk_rule.edit                      - - - m - - - -
risk_rule.approve                   - - - m - - - -
risk_model.manage                   - - - m - - - -
risk_decision.read_own              o o - - - a - -
"""
MATRIX = PermissionMatrix.build(spec for module in modules.MODULES for spec in module.permissions)
PERMISSIONS = list(MATRIX.specs)
_SCOPES = {"o": Scope.OWN, "m": Scope.MEMBER, "a": Scope.ALL, "-": None}
ME, OTHER = "u-actor", "u-other"
M1, M2 = "did:key:z6MkMemberOne", "did:key:z6MkMemberTwo"
REASON = "customer complaint #4711 needs the account holder's identity checked"


@pytest.fixture(autouse=True, scope="module")
def _installed_matrix() -> Iterator[None]:
    """`require` consults the installed matrix: this module's, then the one before it."""
    before = current_matrix()
    install_matrix(MATRIX)
    yield
    install_matrix(before)


def expected_cells() -> dict[tuple[Role, str], Scope | None]:
    cells = {}
    for line in EXPECTED.strip().splitlines():
        name, *marks = line.split()
        assert len(marks) == len(ROLES), line
        for role, mark in zip(ROLES, marks, strict=True):
            cells[(role, name)] = _SCOPES[mark]
    return cells


def principal(*roles: Role, user_id: str = ME, member: str | None = M1) -> Principal:
    return Principal(user_id=user_id, roles=frozenset(roles), member_did=member)


def needs_reason(role: Role, permission: str) -> bool:
    return role in (Role.ADMIN, Role.REGULATOR) and permission.startswith("personal_data.")


def refused(code: str, *args: object, **kwargs: object) -> None:
    with pytest.raises(Forbidden) as caught:
        require(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value


def test_expected_table_covers_every_permission_and_role() -> None:
    cells = expected_cells()
    assert {p for _, p in cells} == set(PERMISSIONS)
    assert {r for r, _ in cells} == set(Role)


def test_matrix_equals_the_written_policy() -> None:
    for (role, permission), scope in expected_cells().items():
        assert MATRIX.grants[role].get(permission) == scope, (role, permission)


@pytest.mark.parametrize("role", list(Role))
def test_walk_the_whole_matrix(role: Role) -> None:
    """Every (role, permission) cell: granted exactly where the table says, and only in scope.
    Each refusal is a privilege-escalation attempt by that role."""
    actor = principal(role)
    for permission in PERMISSIONS:
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
    for permission in PERMISSIONS:
        if access_of(permission) is Access.READ:
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
    reads = {p for p in PERMISSIONS if access_of(p) is Access.READ}
    assert set(MATRIX.grants[Role.REGULATOR]) == reads


def test_creator_may_not_approve() -> None:
    officer = principal(Role.BANK_OFFICER)
    product = Resource("loan_product", id="p1", member_did=M1, created_by=ME)
    require(officer, "loan_product.create", resource=Resource("loan_product", member_did=M1))
    refused("sod_self_approval", officer, "loan_product.approve", resource=product)
    # A colleague at the same bank may approve it.
    colleague = principal(Role.BANK_OFFICER, user_id="u-colleague")
    require(colleague, "loan_product.approve", resource=product)


def test_nobody_approves_their_own_loan_or_kyc() -> None:
    analyst = principal(Role.RISK_ANALYST)
    refused(
        "sod_self_approval",
        analyst,
        "loan.approve",
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
    for permission in PERMISSIONS:
        refused(
            "sod_role_conflict",
            actor,
            permission,
            resource=Resource("x", owner_id=ME, member_did=M1),
            justification=REASON,
        )


def test_compatible_business_roles_combine() -> None:
    actor = principal(Role.BANK_OFFICER, Role.RISK_ANALYST)
    require(actor, "risk_alert.read", resource=Resource("alert", member_did=M1))
    require(actor, "loan_product.create", resource=Resource("product", member_did=M1))


def test_no_roles_no_permissions() -> None:
    for permission in PERMISSIONS:
        refused("permission_denied", principal(), permission)


@given(
    roles=st.frozensets(st.sampled_from(list(Role)), max_size=3),
    permission=st.sampled_from(PERMISSIONS),
    owner=st.sampled_from([ME, OTHER, None]),
    member=st.sampled_from([M1, M2, None]),
)
def test_property_grants_stay_inside_the_matrix(
    roles: frozenset[Role], permission: str, owner: str | None, member: str | None
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
    assert MATRIX.grants[grant.role][permission] is grant.scope and grant.role in roles
    if Role.REGULATOR in roles:
        assert access_of(permission) is Access.READ
    if grant.scope is Scope.OWN:
        assert owner == ME
    if grant.scope is Scope.MEMBER:
        assert member == M1


def test_docs_carry_the_current_matrix() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "identity.md"
    # The docs show the matrix of the modules a node runs (no test manifest).
    assert matrix_markdown(modules.permission_matrix()) in docs.read_text(encoding="utf-8"), (
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


def test_a_new_domains_permission_is_checked_by_its_name() -> None:
    """A name no enum knows works end to end once a manifest declares it; an undeclared one is
    refused like a permission nobody holds."""
    vault = DomainModule(
        name="safe_deposit",
        permissions=(
            PermissionSpec("safe_box.release", {"bank_officer": "member"}, approval=True),
        ),
    )
    matrix = PermissionMatrix.build((*MATRIX.specs.values(), *vault.permissions))
    officer = principal(Role.BANK_OFFICER)
    box = Resource("safe_box", member_did=M1, created_by=OTHER)
    assert require(officer, "safe_box.release", resource=box, matrix=matrix).permission == (
        "safe_box.release"
    )
    mine = Resource("safe_box", member_did=M1, created_by=ME)
    with pytest.raises(Forbidden, match="may not approve") as caught:
        require(officer, "safe_box.release", resource=mine, matrix=matrix)
    assert caught.value.code == "sod_self_approval"
    refused("permission_denied", officer, "safe_box.release", resource=box)  # not installed
    refused("permission_denied", officer, "safe_box.nothing", resource=box)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            (PermissionSpec("x.read", {"customer": "own"}), PermissionSpec("x.read", {})),
            "x.read is declared twice",
        ),
        ((PermissionSpec("x.do", {"teller": "own"}),), "'teller' is not a role"),
        ((PermissionSpec("x.read", {"regulator": "all"}),), "regulator's grants are derived"),
        ((PermissionSpec("x.do", {"regulator": "all"}),), "regulator's grants are derived"),
    ],
)
def test_the_matrix_refuses_a_bad_declaration(
    specs: tuple[PermissionSpec, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PermissionMatrix.build(specs)


@pytest.mark.parametrize(
    ("name", "grants", "message"),
    [
        ("credit", {}, "is not '<resource>.<action>'"),
        ("Credit.Decide", {}, "is not '<resource>.<action>'"),
        ("credit.decide.now", {}, "is not '<resource>.<action>'"),
        ("a." + "b" * 63, {}, "at most 64"),
        ("credit.decide", {"bank_officer": "everyone"}, "scope 'everyone'"),
        ("credit.decide", {"bank_officer": ""}, "scope ''"),
    ],
)
def test_a_spec_refuses_a_bad_name_or_scope(
    name: str, grants: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PermissionSpec(name, grants)


def test_a_spec_cannot_be_changed_after_the_matrix_read_it() -> None:
    grants = {"customer": "own"}
    spec = PermissionSpec(Permission.PAYMENT_TRANSFER, grants)
    grants["admin"] = "all"
    assert dict(spec.grants) == {"customer": "own"} and type(spec.name) is str
    with pytest.raises(TypeError):
        spec.grants["admin"] = "all"  # type: ignore[index]
    assert spec.is_read is False and PermissionSpec("audit_log.verify", {}).is_read


def test_every_permission_of_the_real_modules_has_both_labels() -> None:
    for spec in modules.permission_matrix().specs.values():
        assert spec.label_zh and spec.label_en, spec.name
        assert not spec.label_zh.isascii(), spec.name  # the zh-CN label is Chinese


def test_the_permission_enum_names_only_declared_permissions() -> None:
    assert set(Permission) <= set(modules.permission_matrix().specs)

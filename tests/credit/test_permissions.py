"""Credit's manifest declares its permissions; the root builds identity's matrix from the
manifests, so what a node checks is exactly what credit declares."""

from __future__ import annotations

from zhijin.credit.permissions import CREDIT_PERMISSIONS
from zhijin.identity.rbac import Role
from zhijin.node import modules


def test_the_nodes_matrix_grants_exactly_what_credits_manifest_declares() -> None:
    matrix = modules.permission_matrix()
    for spec in CREDIT_PERMISSIONS:
        assert matrix.specs[spec.name] == spec
        granted = {
            role.value: grants[spec.name].value
            for role, grants in matrix.grants.items()
            if role is not Role.REGULATOR and spec.name in grants
        }
        assert granted == dict(spec.grants), spec.name
        # The regulator reads every member's models and decisions, and writes nothing.
        assert (spec.name in matrix.grants[Role.REGULATOR]) == spec.is_read, spec.name


def test_approving_a_model_is_maker_checker() -> None:
    approvals = {spec.name for spec in CREDIT_PERMISSIONS if spec.approval}
    assert approvals == {"credit_model.approve"}

"""Lending's permissions and their role grants, as its manifest declares them: one source for
the manifest (`LENDING_PERMISSIONS`) and the routes (the names).

The composition root builds identity's RBAC matrix from these specs (and every other
manifest's); the routes check the names.  The regulator's reads are derived (every loan book,
every member); it never writes.
"""

from __future__ import annotations

from zhijin.platform.module import PermissionSpec

__all__ = [
    "LENDING_PERMISSIONS",
    "LOAN_APPLY",
    "LOAN_APPROVE",
    "LOAN_READ",
    "PRODUCT_APPROVE",
    "PRODUCT_CREATE",
]

LOAN_READ = "loan.read"
LOAN_APPLY = "loan.apply"  # a customer's own application, withdrawal and early repayment
LOAN_APPROVE = "loan.approve"  # the officer's queue; never one's own loan (maker-checker)
PRODUCT_CREATE = "loan_product.create"
PRODUCT_APPROVE = "loan_product.approve"  # never one's own product (maker-checker)

_END_USERS = {"customer": "own", "sme_owner": "own"}
_OFFICER_AND_ANALYST = {"bank_officer": "member", "risk_analyst": "member"}

LENDING_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        LOAN_READ,
        {**_END_USERS, **_OFFICER_AND_ANALYST, "auditor": "all"},
        label_zh="查看贷款",
        label_en="Read loans",
    ),
    PermissionSpec(LOAN_APPLY, _END_USERS, label_zh="申请贷款", label_en="Apply for loans"),
    PermissionSpec(
        LOAN_APPROVE,
        _OFFICER_AND_ANALYST,
        approval=True,
        label_zh="审批贷款",
        label_en="Approve loans",
    ),
    PermissionSpec(
        PRODUCT_CREATE,
        {"bank_officer": "member"},
        label_zh="创建贷款产品",
        label_en="Create loan products",
    ),
    PermissionSpec(
        PRODUCT_APPROVE,
        _OFFICER_AND_ANALYST,
        approval=True,
        label_zh="审批贷款产品",
        label_en="Approve loan products",
    ),
)

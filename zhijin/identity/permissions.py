"""Identity's permissions and their role grants, as its manifest declares them.

They live apart from `module.py` because `rbac` needs them too: until the composition root
installs the matrix of every module (`rbac.install_matrix`, at node and app build), identity's
own permissions are the whole matrix, so an identity service built alone (a unit test, an
offline CLI step) still authorises its own actions and refuses every other domain's.
"""

from __future__ import annotations

from zhijin.platform.module import PermissionSpec

__all__ = ["IDENTITY_PERMISSIONS"]

_END_USERS_OWN = {"customer": "own", "sme_owner": "own"}

IDENTITY_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        "user.read",
        {
            "bank_officer": "member",
            "compliance_officer": "member",
            "auditor": "all",
            "admin": "all",
        },
        label_zh="查看用户",
        label_en="Read users",
    ),
    PermissionSpec(
        "personal_data.read",
        {
            **_END_USERS_OWN,
            "bank_officer": "member",
            "compliance_officer": "member",
            "admin": "all",
        },
        personal_data=True,
        label_zh="查看个人信息",
        label_en="Read personal data",
    ),
    PermissionSpec(
        "personal_data.read_highly_sensitive",
        {**_END_USERS_OWN, "compliance_officer": "member"},
        personal_data=True,
        label_zh="查看高度敏感个人信息",
        label_en="Read highly sensitive personal data",
    ),
    PermissionSpec(
        "policy.read",
        {
            "bank_officer": "all",
            "risk_analyst": "all",
            "compliance_officer": "all",
            "auditor": "all",
            "admin": "all",
        },
        label_zh="查看安全策略",
        label_en="Read security policy",
    ),
    PermissionSpec(
        "audit_log.read",
        {"compliance_officer": "member", "auditor": "all"},
        label_zh="查看审计日志",
        label_en="Read the audit log",
    ),
    PermissionSpec(
        "audit_log.verify",
        {"auditor": "all"},
        label_zh="校验审计日志",
        label_en="Verify the audit log",
    ),
    PermissionSpec(
        "profile.update", _END_USERS_OWN, label_zh="修改个人资料", label_en="Update profile"
    ),
    PermissionSpec(
        "kyc.review",
        {"compliance_officer": "member"},
        approval=True,
        label_zh="审核实名认证",
        label_en="Review KYC",
    ),
    # Issuing counts as an approval: the officer who issues must not be the one who reviewed
    # the case (`created_by` = the reviewer), nor its subject.
    PermissionSpec(
        "credential.issue",
        {"bank_officer": "member"},
        approval=True,
        label_zh="签发凭证",
        label_en="Issue credentials",
    ),
    PermissionSpec(
        "credential.revoke",
        {"bank_officer": "member", "compliance_officer": "member"},
        label_zh="撤销凭证",
        label_en="Revoke credentials",
    ),
    PermissionSpec(
        "consent.manage", _END_USERS_OWN, label_zh="管理授权同意", label_en="Manage consents"
    ),
    PermissionSpec("user.manage", {"admin": "all"}, label_zh="管理用户", label_en="Manage users"),
    PermissionSpec("role.assign", {"admin": "all"}, label_zh="分配角色", label_en="Assign roles"),
    PermissionSpec(
        "policy.update",
        {"compliance_officer": "all"},
        label_zh="修改安全策略",
        label_en="Update security policy",
    ),
)

"""Credit's permissions and their role grants, as its manifest declares them: one source for the
manifest (`CREDIT_PERMISSIONS`) and the routes (the names).

The composition root builds identity's RBAC matrix from these specs (and every other
manifest's); the routes check the names.
"""

from __future__ import annotations

from zhijin.platform.module import PermissionSpec

__all__ = [
    "APPLY",
    "CREDIT_PERMISSIONS",
    "DECIDE",
    "MODEL_APPROVE",
    "MODEL_READ",
    "MODEL_REGISTER",
    "POLICY_UPDATE",
    "REPORT_READ",
    "permission",
]

REPORT_READ = "credit_report.read"
MODEL_READ = "credit_model.read"
DECIDE = "credit.decide"
MODEL_REGISTER = "credit_model.register"
MODEL_APPROVE = "credit_model.approve"
POLICY_UPDATE = "credit_policy.update"
# A customer asking for a decision on themselves applies for credit.
APPLY = "credit.apply"


def permission(name: str) -> str:
    """The name identity's `require` takes (it checks names against the matrix the root
    built from every manifest)."""
    return name


# Who may do what with credit: staff of the member within it (maker-checker on models), the
# customer on their own reports, the auditor reading the registry (the regulator's reads are
# derived: it sees every member's models and decisions).
CREDIT_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        APPLY,
        {"customer": "own", "sme_owner": "own"},
        label_zh="申请信用评估",
        label_en="Apply for a credit decision",
    ),
    PermissionSpec(
        REPORT_READ,
        {"customer": "own", "sme_owner": "own", "bank_officer": "member", "risk_analyst": "member"},
        label_zh="查看信用评估与评分",
        label_en="Read credit decisions and scores",
    ),
    PermissionSpec(
        MODEL_READ,
        {
            "bank_officer": "member",
            "risk_analyst": "member",
            "compliance_officer": "member",
            "auditor": "all",
        },
        label_zh="查看信用模型与策略",
        label_en="Read credit models and policies",
    ),
    PermissionSpec(
        DECIDE,
        {"bank_officer": "member", "risk_analyst": "member"},
        label_zh="发起信用决策",
        label_en="Make credit decisions",
    ),
    PermissionSpec(
        MODEL_REGISTER,
        {"risk_analyst": "member"},
        label_zh="登记信用模型",
        label_en="Register credit models",
    ),
    PermissionSpec(
        MODEL_APPROVE,
        {"risk_analyst": "member", "compliance_officer": "member"},
        approval=True,
        label_zh="审批或停用信用模型（不得审批本人训练的模型）",
        label_en="Approve or retire credit models (never one's own)",
    ),
    PermissionSpec(
        POLICY_UPDATE,
        {"risk_analyst": "member"},
        label_zh="修改信用决策策略",
        label_en="Change credit decision policies",
    ),
)

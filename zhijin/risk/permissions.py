"""Risk's permissions and their role grants, as its manifest declares them: one source for the
manifest (`RISK_PERMISSIONS`) and the routes (the names).

`risk_alert.read` and `risk_case.manage` keep the grants the platform's policy gave them before
this domain existed.  A rule is edited by one risk analyst and approved by another
(`risk_rule.approve` is an approval permission: never one's own draft).  A customer reads the
decisions on their own payments (`risk_decision.read_own`, scope own).  The regulator is never
named: identity derives its row (every read, scope all), so it reads every member's decisions."""

from __future__ import annotations

from zhijin.platform.module import PermissionSpec

__all__ = [
    "ALERT_READ",
    "CASE_MANAGE",
    "DECISION_READ_OWN",
    "MODEL_MANAGE",
    "RISK_PERMISSIONS",
    "RULE_APPROVE",
    "RULE_EDIT",
]

ALERT_READ = "risk_alert.read"  # decisions, cases, rules, models, the engine's state
CASE_MANAGE = "risk_case.manage"  # clear or confirm a held payment's case
RULE_EDIT = "risk_rule.edit"
RULE_APPROVE = "risk_rule.approve"
MODEL_MANAGE = "risk_model.manage"  # train and register the supervised model
DECISION_READ_OWN = "risk_decision.read_own"

_RISK_AND_COMPLIANCE = {"risk_analyst": "member", "compliance_officer": "member"}

RISK_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        ALERT_READ,
        {**_RISK_AND_COMPLIANCE, "auditor": "all"},
        label_zh="查看风险预警",
        label_en="Read risk alerts",
    ),
    PermissionSpec(
        CASE_MANAGE,
        _RISK_AND_COMPLIANCE,
        label_zh="处理风险案件",
        label_en="Manage risk cases",
    ),
    PermissionSpec(
        RULE_EDIT,
        {"risk_analyst": "member"},
        label_zh="编辑风控规则",
        label_en="Edit fraud rules",
    ),
    PermissionSpec(
        RULE_APPROVE,
        {"risk_analyst": "member"},
        approval=True,
        label_zh="审批风控规则（不得审批本人起草的规则）",
        label_en="Approve fraud rules (never one's own)",
    ),
    PermissionSpec(
        MODEL_MANAGE,
        {"risk_analyst": "member"},
        label_zh="训练与登记风控模型",
        label_en="Train and register fraud models",
    ),
    PermissionSpec(
        DECISION_READ_OWN,
        {"customer": "own", "sme_owner": "own"},
        label_zh="查看本人付款的风控结果",
        label_en="Read the fraud decisions on one's own payments",
    ),
)

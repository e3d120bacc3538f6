"""AML's permissions and their role grants, as its manifest declares them: one source for the
manifest (`AML_PERMISSIONS`) and the routes (the names).

The regulator is never named: identity derives its row (every read with scope `all`, no
write), so it reads every member's alerts, cases, reports and transactions, and each of its
reads is a privileged grant, recorded in the access audit log."""

from __future__ import annotations

from zhijin.platform.module import PermissionSpec

__all__ = [
    "ALERT_READ",
    "AML_PERMISSIONS",
    "CASE_DISMISS",
    "CASE_MANAGE",
    "FEED_READ",
    "LARGE_VALUE_FILE",
    "REPORT_READ",
    "RULES_APPROVE",
    "RULES_PROPOSE",
    "SAR_FILE",
]

ALERT_READ = "aml_alert.read"
REPORT_READ = "report.read"
FEED_READ = "aml_feed.read"
CASE_MANAGE = "aml_case.manage"
CASE_DISMISS = "aml_case.dismiss"
SAR_FILE = "sar.file"
LARGE_VALUE_FILE = "large_value_report.file"
RULES_PROPOSE = "aml_rules.propose"
RULES_APPROVE = "aml_rules.approve"

_RISK_AND_COMPLIANCE = {"risk_analyst": "member", "compliance_officer": "member"}

AML_PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        ALERT_READ,
        {**_RISK_AND_COMPLIANCE, "auditor": "all"},
        label_zh="查看反洗钱预警与案件",
        label_en="Read AML alerts and cases",
    ),
    PermissionSpec(
        REPORT_READ,
        {**_RISK_AND_COMPLIANCE, "auditor": "all"},
        label_zh="查看与下载报告",
        label_en="Read and download reports",
    ),
    PermissionSpec(
        FEED_READ,
        {"compliance_officer": "member", "auditor": "all"},
        label_zh="查看实时交易与预警流及交易查询",
        label_en="Read the live transaction and alert feed, query transactions",
    ),
    PermissionSpec(
        CASE_MANAGE,
        _RISK_AND_COMPLIANCE,
        label_zh="立案、调查与升级反洗钱案件",
        label_en="Open, investigate and escalate AML cases",
    ),
    PermissionSpec(
        CASE_DISMISS,
        _RISK_AND_COMPLIANCE,
        approval=True,
        label_zh="排除反洗钱案件（不得排除本人立案的案件）",
        label_en="Dismiss AML cases (never one's own)",
    ),
    PermissionSpec(
        SAR_FILE,
        {"compliance_officer": "member"},
        label_zh="报送可疑交易报告",
        label_en="File suspicious transaction reports",
    ),
    PermissionSpec(
        RULES_PROPOSE,
        _RISK_AND_COMPLIANCE,
        label_zh="提交反洗钱监测规则的新版本",
        label_en="Propose a new version of the AML monitoring rules",
    ),
    PermissionSpec(
        RULES_APPROVE,
        {"compliance_officer": "member"},
        approval=True,
        label_zh="审批反洗钱监测规则（不得审批本人提交的版本）",
        label_en="Approve AML monitoring rules (never a version one proposed)",
    ),
    PermissionSpec(
        LARGE_VALUE_FILE,
        {"compliance_officer": "member"},
        label_zh="报送大额交易报告",
        label_en="File large-value transaction reports",
    ),
)

"""AML's result codes, their precedence per operation, and one HTTP status per code.

Its codes are the service's refusals (cases, filings, reports) and its contract's (rule sets).  A refused
request gets the first applicable code of its operation's table, so one request always gets one
answer.  Each code's message for people is its `problem.<code>` entry in the "messages"
catalog (zh-CN and English); the English text raised here is the developer's diagnostic.

| operation | precedence |
|---|---|
| open_case | case_id_invalid, reason_invalid, case_exists_with_different_fields, customer_has_no_alerts, case_already_open |
| step | reason_invalid, case_not_found, case_step_not_allowed, case_step_same_actor |
| file_case | case_not_found, case_not_escalated, filing_anchor_failed |
| report | report_range_invalid, report_too_large |
| propose_rules (contract) | not_member, aml_rules_args_invalid, aml_rules_version_invalid, officer_invalid, reason_invalid, aml_rules_invalid, aml_rule_set_exists_with_different_fields |
| decide_rules (contract) | not_member, aml_rules_args_invalid, aml_rules_version_invalid, officer_invalid, reason_invalid, aml_rule_set_not_found, aml_rules_self_approval, aml_rule_set_decided |
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from zhijin.chain.errors import ZhijinError

__all__ = [
    "FILE_PRECEDENCE",
    "OPEN_PRECEDENCE",
    "REPORT_PRECEDENCE",
    "STEP_PRECEDENCE",
    "AmlError",
    "Code",
    "http_status_for",
]


class Code(StrEnum):
    CASE_ID_INVALID = "case_id_invalid"
    REASON_INVALID = "reason_invalid"
    CASE_EXISTS_WITH_DIFFERENT_FIELDS = "case_exists_with_different_fields"
    CUSTOMER_HAS_NO_ALERTS = "customer_has_no_alerts"
    CASE_ALREADY_OPEN = "case_already_open"
    CASE_NOT_FOUND = "case_not_found"
    CASE_STEP_NOT_ALLOWED = "case_step_not_allowed"
    CASE_STEP_SAME_ACTOR = "case_step_same_actor"
    CASE_NOT_ESCALATED = "case_not_escalated"
    FILING_ANCHOR_FAILED = "filing_anchor_failed"
    REPORT_RANGE_INVALID = "report_range_invalid"
    REPORT_TOO_LARGE = "report_too_large"
    ALERT_NOT_FOUND = "alert_not_found"
    # The contract's refusals of a rule set (contract.py)
    NOT_MEMBER = "not_member"
    RULES_ARGS_INVALID = "aml_rules_args_invalid"
    RULES_VERSION_INVALID = "aml_rules_version_invalid"
    OFFICER_INVALID = "officer_invalid"
    RULES_INVALID = "aml_rules_invalid"
    RULE_SET_EXISTS = "aml_rule_set_exists_with_different_fields"
    RULE_SET_NOT_FOUND = "aml_rule_set_not_found"
    RULES_SELF_APPROVAL = "aml_rules_self_approval"
    RULE_SET_DECIDED = "aml_rule_set_decided"


C = Code
OPEN_PRECEDENCE = (
    C.CASE_ID_INVALID,
    C.REASON_INVALID,
    C.CASE_EXISTS_WITH_DIFFERENT_FIELDS,
    C.CUSTOMER_HAS_NO_ALERTS,
    C.CASE_ALREADY_OPEN,
)
STEP_PRECEDENCE = (
    C.REASON_INVALID,
    C.CASE_NOT_FOUND,
    C.CASE_STEP_NOT_ALLOWED,
    C.CASE_STEP_SAME_ACTOR,
)
FILE_PRECEDENCE = (C.CASE_NOT_FOUND, C.CASE_NOT_ESCALATED, C.FILING_ANCHOR_FAILED)
REPORT_PRECEDENCE = (C.REPORT_RANGE_INVALID, C.REPORT_TOO_LARGE)

_STATUS = {
    C.CASE_ID_INVALID: 422,
    C.REASON_INVALID: 422,
    C.CASE_EXISTS_WITH_DIFFERENT_FIELDS: 409,
    C.CUSTOMER_HAS_NO_ALERTS: 422,
    C.CASE_ALREADY_OPEN: 409,
    C.CASE_NOT_FOUND: 404,
    C.CASE_STEP_NOT_ALLOWED: 409,
    C.CASE_STEP_SAME_ACTOR: 403,
    C.CASE_NOT_ESCALATED: 409,
    C.FILING_ANCHOR_FAILED: 503,
    C.REPORT_RANGE_INVALID: 422,
    C.REPORT_TOO_LARGE: 422,
    C.ALERT_NOT_FOUND: 404,
    C.NOT_MEMBER: 403,
    C.RULES_ARGS_INVALID: 422,
    C.RULES_VERSION_INVALID: 422,
    C.OFFICER_INVALID: 422,
    C.RULES_INVALID: 422,
    C.RULE_SET_EXISTS: 409,
    C.RULE_SET_NOT_FOUND: 404,
    C.RULES_SELF_APPROVAL: 403,
    C.RULE_SET_DECIDED: 409,
}


def http_status_for(code: Code) -> int:
    return _STATUS[code]


class AmlError(ZhijinError):
    """A refusal of the AML service; its `code` is one of `Code`, its status `http_status_for`."""

    def __init__(self, code: Code, message: str, **details: Any) -> None:
        super().__init__(code.value, message, **details)
        self.http_status = http_status_for(code)

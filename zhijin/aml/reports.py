"""The compliance officer's exports: large-value reports and suspicious-transaction reports, as
CSV and as XML.

The XML is zhijin's own, namespaced and versioned (`urn:zhijin:aml:lvr:1`, `urn:zhijin:aml:str:1`),
carrying the fields of the PBOC report forms that the platform knows: the reporting member,
the customer (by DID: names and ID numbers are personal data, kept in identity's vault, and the
member's reporting system joins them there), the rule or typologies, the transactions with
amounts in minor units and as decimal text.  It is not the China Anti-Money Laundering
Monitoring and Analysis Center's submission schema, whose specification is not public; a member
maps these files into it.  Both are built with the standard library (csv, ElementTree), so the
output is always well-formed and escaped.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_precision

from zhijin.aml.alerts import Alert
from zhijin.aml.facts import Movement

__all__ = [
    "LVR_NAMESPACE",
    "STR_NAMESPACE",
    "decimal_amount",
    "large_value_csv",
    "large_value_xml",
    "suspicious_csv",
    "suspicious_xml",
]

LVR_NAMESPACE = "urn:zhijin:aml:lvr:1"
STR_NAMESPACE = "urn:zhijin:aml:str:1"
_LVR_COLUMNS = (
    "alert_id", "member", "customer", "rule_id", "direction", "day", "currency", "amount_minor",
    "amount", "transfer_count", "due_day", "due_known", "filed", "rules_version",
)  # fmt: skip
_STR_COLUMNS = (
    "case_id", "member", "customer", "status", "alert_id", "typology", "direction", "currency",
    "amount_minor", "amount", "first_time_ms", "last_time_ms", "transfer_ids",
)  # fmt: skip


def decimal_amount(amount_minor: int, currency: str) -> str:
    """Minor units as decimal text at the currency's ISO 4217 exponent (exact: no float)."""
    exponent = get_currency_precision(currency)
    return str(Decimal(amount_minor).scaleb(-exponent))


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    # A BOM, so that a spreadsheet opens the Chinese text as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _lvr_row(alert: Alert, filed: bool) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "member": alert.member,
        "customer": alert.customer,
        "rule_id": alert.rule_id,
        "direction": alert.direction,
        "day": alert.day,
        "currency": alert.currency,
        "amount_minor": alert.amount_minor,
        "amount": decimal_amount(alert.amount_minor, alert.currency),
        "transfer_count": alert.transfer_count,
        "due_day": alert.due_day,
        "due_known": "yes" if alert.due_known else "estimated",
        "filed": "yes" if filed else "no",
        "rules_version": alert.rules_version,
    }


def large_value_csv(alerts: Sequence[Alert], filed: set[str]) -> bytes:
    return _csv(_LVR_COLUMNS, [_lvr_row(a, a.alert_id in filed) for a in alerts])


def _transactions(parent: ET.Element, tag: str, moves: Sequence[Movement]) -> None:
    box = ET.SubElement(parent, tag)
    for move in moves:
        ET.SubElement(
            box,
            "Transaction",
            {
                "id": move.transfer_id,
                "time_ms": str(move.time_ms),
                "day": move.day,
                "payer": move.payer,
                "payer_account": move.payer_account,
                "payee": move.payee,
                "payee_account": move.payee_account,
                "channel": move.channel,
                "scope": move.scope,
                "currency": move.currency,
                "amount_minor": str(move.amount_minor),
                "amount": decimal_amount(move.amount_minor, move.currency),
            },
        )


def _document(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def large_value_xml(
    alerts: Sequence[Alert],
    moves: Mapping[str, Movement],
    filed: set[str],
    *,
    member: str | None,
    generated_at_ms: int,
) -> bytes:
    root = ET.Element(
        "LargeValueReports",
        {"xmlns": LVR_NAMESPACE, "member": member or "*", "generated_at_ms": str(generated_at_ms)},
    )
    for alert in alerts:
        row = {k: str(v) for k, v in _lvr_row(alert, alert.alert_id in filed).items()}
        report = ET.SubElement(root, "Report", row)
        _transactions(report, "Transactions", [moves[t] for t in alert.transfer_ids if t in moves])
    return _document(root)


def _str_rows(case: Mapping[str, Any], alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    return [
        {
            "case_id": case["case_id"],
            "member": case["member"],
            "customer": case["customer"],
            "status": case["status"],
            "alert_id": a.alert_id,
            "typology": a.typology,
            "direction": a.direction,
            "currency": a.currency,
            "amount_minor": a.amount_minor,
            "amount": decimal_amount(a.amount_minor, a.currency),
            "first_time_ms": a.first_time_ms,
            "last_time_ms": a.last_time_ms,
            "transfer_ids": " ".join(a.transfer_ids),
        }
        for a in alerts
    ]


def suspicious_csv(case: Mapping[str, Any], alerts: Sequence[Alert]) -> bytes:
    return _csv(_STR_COLUMNS, _str_rows(case, alerts))


def suspicious_xml(
    case: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    alerts: Sequence[Alert],
    moves: Mapping[str, Movement],
    *,
    generated_at_ms: int,
) -> bytes:
    root = ET.Element(
        "SuspiciousTransactionReport",
        {
            "xmlns": STR_NAMESPACE,
            "case_id": case["case_id"],
            "member": case["member"],
            "customer": case["customer"],
            "generated_at_ms": str(generated_at_ms),
        },
    )
    history = ET.SubElement(root, "Steps")
    for step in steps:
        element = ET.SubElement(
            history,
            "Step",
            {
                "seq": str(step["seq"]),
                "from": step["from_status"] or "",
                "to": step["to_status"],
                "actor": step["actor"],
                "role": step["role"],
                "at_ms": str(step["at_ms"]),
            },
        )
        element.text = step["reason"]
    box = ET.SubElement(root, "Alerts")
    for alert in alerts:
        element = ET.SubElement(
            box,
            "Alert",
            {
                "id": alert.alert_id,
                "typology": alert.typology,
                "rule_id": alert.rule_id,
                "direction": alert.direction,
                "currency": alert.currency,
                "amount_minor": str(alert.amount_minor),
                "rules_version": alert.rules_version,
            },
        )
        _transactions(element, "Transactions", [moves[t] for t in alert.transfer_ids if t in moves])
    return _document(root)

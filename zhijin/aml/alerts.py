"""Findings become alerts: one alert per large-value (rule, customer, day, direction), and per
suspicious episode of a typology for a customer.

An alert's id is derived from what it is about (a SHA-256 prefix), never from a counter, so a
reindex (or a monitor restarted from scratch) finds the same ids; cases refer to alerts by them.
A finding of a typology within its window of the customer's last alert of that typology joins
that alert (its episode) instead of opening a new one: a fan-out that goes on for a week is one
alert, not one per block.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from typing import Protocol

from zhijin.aml import limits
from zhijin.aml.detect import Finding, Typology
from zhijin.aml.rules import RuleBook, RuleSet
from zhijin.aml.workdays import beijing_day, due_date

__all__ = ["Alert", "AlertSink", "alert_id", "record_findings"]


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    member: str
    customer: str
    typology: str
    rule_id: str
    direction: str
    currency: str
    amount_minor: int
    transfer_ids: tuple[str, ...]  # the first ALERT_TRANSFERS_MAX
    transfer_count: int
    first_seq: int
    last_seq: int
    first_time_ms: int
    last_time_ms: int
    day: str  # the large-value day, or the episode's first day (Beijing)
    due_day: str  # large-value only: the 5th working day after `day`; "" otherwise
    due_known: bool
    rules_version: str


class AlertSink(Protocol):
    def get(self, alert_id: str) -> Alert | None: ...

    def latest_episode(self, *, member: str, customer: str, typology: str) -> Alert | None:
        """The customer's most recent alert of a (pattern) typology at the member."""
        ...

    def put(self, alert: Alert) -> None:
        """Insert or replace by `alert_id`."""
        ...


def alert_id(*parts: str | int) -> str:
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[: limits.ALERT_ID_CHARS]


def _window_ms(typology: str, rules: RuleSet) -> int:
    policy = rules.suspicion
    return {
        Typology.STRUCTURING: policy.structuring_window_ms,
        Typology.FAN_IN: policy.fan_window_ms,
        Typology.FAN_OUT: policy.fan_window_ms,
        Typology.CYCLE: policy.cycle_window_ms,
        Typology.PASS_THROUGH: policy.pass_through_window_ms,
        Typology.SCATTER_GATHER: policy.scatter_window_ms,
        Typology.DORMANT: policy.dormant_ms,
    }[Typology(typology)]


def _new_alert(finding: Finding, alert_id_: str, rules: RuleSet) -> Alert:
    due_day, due_known = "", True
    day = finding.day
    if finding.typology == Typology.LARGE_VALUE:
        due = due_date(dt.date.fromisoformat(day), rules.report_due_working_days)
        due_day, due_known = due.day.isoformat(), due.known
    else:
        day = beijing_day(finding.first_time_ms).isoformat()
    ids = finding.transfer_ids
    return Alert(
        alert_id=alert_id_,
        member=finding.member,
        customer=finding.customer,
        typology=finding.typology,
        rule_id=finding.rule_id,
        direction=finding.direction,
        currency=finding.currency,
        amount_minor=finding.amount_minor,
        transfer_ids=ids[: limits.ALERT_TRANSFERS_MAX],
        transfer_count=len(ids),
        first_seq=finding.first_seq,
        last_seq=finding.last_seq,
        first_time_ms=finding.first_time_ms,
        last_time_ms=finding.last_time_ms,
        day=day,
        due_day=due_day,
        due_known=due_known,
        rules_version=rules.version,
    )


def _merged(alert: Alert, finding: Finding, *, replace_amount: bool) -> Alert:
    ids = tuple(dict.fromkeys((*alert.transfer_ids, *finding.transfer_ids)))
    count = len(finding.transfer_ids) if replace_amount else max(alert.transfer_count, len(ids))
    return replace(
        alert,
        amount_minor=finding.amount_minor
        if replace_amount
        else max(alert.amount_minor, finding.amount_minor),
        transfer_ids=ids[: limits.ALERT_TRANSFERS_MAX],
        transfer_count=max(count, len(finding.transfer_ids)),
        first_seq=min(alert.first_seq, finding.first_seq),
        last_seq=max(alert.last_seq, finding.last_seq),
        first_time_ms=min(alert.first_time_ms, finding.first_time_ms),
        last_time_ms=max(alert.last_time_ms, finding.last_time_ms),
    )


def record_findings(findings: list[Finding], sink: AlertSink, book: RuleBook) -> list[Alert]:
    """Write the findings' alerts (new or grown), each under its member's rules; the alerts
    written, in order."""
    written: dict[str, Alert] = {}
    for finding in findings:
        rules = book.of(finding.member)
        if finding.typology == Typology.LARGE_VALUE:
            key = alert_id(
                "lv",
                finding.rule_id,
                finding.member,
                finding.customer,
                finding.day,
                finding.direction,
            )
            existing = written.get(key) or sink.get(key)
            alert = (
                _new_alert(finding, key, rules)
                if existing is None
                else _merged(existing, finding, replace_amount=True)
            )
        else:
            episode = sink.latest_episode(
                member=finding.member, customer=finding.customer, typology=finding.typology
            )
            if episode is not None and episode.alert_id in written:
                episode = written[episode.alert_id]
            window = _window_ms(finding.typology, rules)
            if episode is not None and finding.first_time_ms - episode.last_time_ms <= window:
                alert = _merged(episode, finding, replace_amount=False)
            else:
                key = alert_id(
                    finding.typology, finding.member, finding.customer, finding.first_seq
                )
                alert = _new_alert(finding, key, rules)
        if alert != (written.get(alert.alert_id) or sink.get(alert.alert_id)):
            sink.put(alert)
        written[alert.alert_id] = alert
    return list(written.values())

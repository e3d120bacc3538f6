"""What a block's lending events mean to a signed-in borrower: their own loans only.

The keeper's `remind` tx emits a `lending.reminder` event before each due day (at most once per
instalment); a `lending.loan` event is a transition of a loan (approved, disbursed, overdue,
closed, ...).  For the borrower each names, they become a `lending` notice with the event's
data and a `text` in the subscriber's language ("您的贷款 L1 第 3 期将于 2026年12月20日 到期，
应还 ¥1,234.56"), pushed on `GET /api/v1/events`; the /loans pages carry `data-live="lending"`,
so they re-read the query tables (where the reminder is kept, `lending_reminders`) when one
arrives.  A notice is a hint to re-read, never the record.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from zhijin.lending.contract import CONTRACT_NAME, EVENT_LOAN, EVENT_REMINDER
from zhijin.platform.i18n import N_, format_datetime, format_money, gettext
from zhijin.platform.notifications import Audience, Notice
from zhijin.platform.projections import BlockView

__all__ = ["NOTICE_EVENT", "LendingNotifier", "reminder_text"]

NOTICE_EVENT = "lending"
_REMINDER = f"{CONTRACT_NAME}.{EVENT_REMINDER}"
_LOAN = f"{CONTRACT_NAME}.{EVENT_LOAN}"


class LendingNotifier:
    name = NOTICE_EVENT

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # the manifest's shape; a borrower is named by the event itself

    def prepare(self, audience: Audience) -> None:
        return None

    def notices(self, block: BlockView, audience: Audience) -> list[Notice]:
        if audience.owner is None:
            return []
        found = []
        for tx in block.txs:
            if not tx.ok:
                continue
            for event in tx.events:
                attrs = event["attrs"]
                if attrs.get("borrower") != audience.owner:
                    continue
                if event["type"] == _REMINDER:
                    kind, text = "reminder", reminder_text(attrs, audience.locale)
                elif event["type"] == _LOAN:
                    kind, text = "loan", loan_text(attrs, audience.locale)
                else:
                    continue
                data = {
                    "type": kind,
                    "height": block.height,
                    "time_ms": block.time_ms,
                    "loan_id": attrs["loan_id"],
                    "text": text,
                }
                if kind == "reminder":
                    data.update(
                        instalment=attrs["instalment"], due_ms=attrs["due_ms"],
                        amount_minor=attrs["amount_minor"], currency=attrs["currency"],
                    )  # fmt: skip
                else:
                    data["status"] = attrs["status"]
                found.append(Notice(block.height, NOTICE_EVENT, data))
        return found


def reminder_text(attrs: dict[str, Any], locale: str) -> str:
    """An instalment falling due, as one sentence in `locale`."""
    return gettext(
        locale,
        "notice.lending.reminder",
        loan_id=attrs["loan_id"],
        instalment=attrs["instalment"],
        due=format_datetime(int(attrs["due_ms"]), locale),
        amount=format_money(int(attrs["amount_minor"]), attrs["currency"], locale),
    )


_STATUS_MSGIDS = {
    "approved": N_("notice.lending.approved"),
    "review": N_("notice.lending.review"),
    "rejected": N_("notice.lending.rejected"),
    "withdrawn": N_("notice.lending.withdrawn"),
    "current": N_("notice.lending.current"),
    "overdue": N_("notice.lending.overdue"),
    "defaulted": N_("notice.lending.defaulted"),
    "collateral_liquidated": N_("notice.lending.collateral_liquidated"),
    "written_off": N_("notice.lending.written_off"),
    "recovered": N_("notice.lending.recovered"),
    "closed": N_("notice.lending.closed"),
}


def loan_text(attrs: dict[str, Any], locale: str) -> str:
    """A loan's state as the borrower reads it after a transition or a payment."""
    msgid = _STATUS_MSGIDS.get(str(attrs.get("status")), N_("notice.lending.changed"))
    return gettext(locale, msgid, loan_id=attrs["loan_id"])

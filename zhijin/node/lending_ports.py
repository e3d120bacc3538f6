"""Lending's ports (zhijin/lending/expected.py), implemented by the composition root over
credit's public service (its stored decision records) and identity's KYC status, and put on
each host as `lending_ports`.  Lending never reads credit's or identity's tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhijin.chain.errors import NotFound
from zhijin.credit import service as credit
from zhijin.lending.expected import DecisionFacts, LendingPorts, OwnAccount

__all__ = ["KYC_LEVELS", "build_lending_ports"]

# identity's KYC case status -> the level a loan product requires
KYC_LEVELS = {"none": 0, "pending": 1, "rejected": 0, "approved": 2}


@dataclass(frozen=True, slots=True)
class _Decisions:
    host: Any

    def decision(self, decision_id: str) -> DecisionFacts | None:
        try:
            stored = credit.get_decision(self.host, decision_id=decision_id)
        except NotFound:
            return None
        return _facts(stored)

    def decisions_of(self, subject: str, *, limit: int) -> list[DecisionFacts]:
        page = credit.list_decisions(self.host, member=None, subject=subject, limit=limit)
        return [_facts(stored) for stored in page["decisions"]]


def _facts(stored: dict[str, Any]) -> DecisionFacts:
    record = stored["decision"]
    return DecisionFacts(
        decision_id=record["decision_id"],
        record_sha256=stored["record_sha256"],
        member=record["member"],
        subject=record["subject"],
        outcome=record["outcome"],
        points=int(record["points"]),
        limit_minor=int(record["limit_minor"] or 0),
        currency=record["currency"],
        reasons=tuple(record["reasons"]),
        decided_at_ms=int(record.get("decided_at_ms") or 0),
    )


@dataclass(frozen=True, slots=True)
class _Kyc:
    host: Any

    def level(self, principal: Any) -> int:
        if principal is None:
            return 0
        status = self.host.personal.kyc_status(principal=principal)["status"]
        return KYC_LEVELS.get(status, 0)


@dataclass(frozen=True, slots=True)
class _Accounts:
    host: Any

    def accounts_of(self, owner: str, *, currency: str, limit: int) -> list[OwnAccount]:
        from zhijin.payments import service as payments

        page = payments.list_accounts(self.host, owner=owner, currency=currency, limit=limit)
        return [
            OwnAccount(
                account_id=row["id"],
                currency=row["currency"],
                kind=row["kind"],
                available_minor=row.get("available"),
            )
            for row in page["accounts"]
            if row.get("status", "open") == "open"
        ]

    def has_paid(self, debit_account_id: str, credit_account_id: str, *, before_ms: int) -> bool:
        from zhijin.payments import service as payments

        return payments.has_paid(
            self.host,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            before_ms=before_ms,
        )


def build_lending_ports(host: Any) -> LendingPorts:
    return LendingPorts(decisions=_Decisions(host), kyc=_Kyc(host), accounts=_Accounts(host))

"""Risk's ports (zhijin/risk/expected.py), implemented by the composition root, and the risk
service itself, put on each host as `risk` and as payments' `payment_screen` (the inline fraud
check of payments/expected.py).

- identity's facts: the user's last sign-in from identity's store, and credential changes
  read from the access audit log (password changes, authenticator enrolments, phone numbers
  registered for pay-by-phone), tailed by sequence number;
- the payments history: recent single-phase payments out of customers' and merchants'
  accounts, read from the payments projection (a rebuild at start);
- holds posted or voided through payments' service, in the member's own name;
- rule approvals anchored through the notary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from zhijin.payments import projection
from zhijin.payments import service as payments_service
from zhijin.platform.gateway import MemberGateway
from zhijin.risk.expected import HistoricPayment, RiskPorts
from zhijin.risk.features import CredentialChange
from zhijin.risk.service import RiskService

__all__ = ["CREDENTIAL_ACTIONS", "build_risk_service"]

# Audit actions that change how a user proves who they are (and their outcome when it matters).
CREDENTIAL_ACTIONS = {
    "auth.password_change": "password",
    "mfa.enrol": "authenticator",
    "payments.mobile.register": "phone",
}
MODEL_DIR = "risk-models"


@dataclass(frozen=True, slots=True)
class _IdentityFacts:
    host: Any

    def last_sign_in(self, user_id: str) -> tuple[int | None, int | None, int | None] | None:
        user = self.host.identity.store.user_by_id(user_id)
        if user is None:
            return None
        return (user.last_lat_e6, user.last_lon_e6, user.last_login_ms)

    def credential_changes(
        self, *, after_seq: int, limit: int
    ) -> tuple[list[CredentialChange], int]:
        entries = self.host.audit.entries(after_seq=after_seq, limit=limit)
        changes = []
        for entry in entries:
            kind = CREDENTIAL_ACTIONS.get(entry.action)
            if kind is None or entry.outcome != "ok" or not entry.actor.startswith("user:"):
                continue
            changes.append(CredentialChange(entry.actor.removeprefix("user:"), kind, entry.at_ms))
        return changes, (entries[-1].seq if entries else after_seq)


@dataclass(frozen=True, slots=True)
class _PaymentHistory:
    host: Any

    def recent_payments(self, *, since_ms: int, limit: int) -> list[HistoricPayment]:
        transfers, accounts = projection.transfers_table, projection.accounts_table
        query = (
            select(
                transfers.c.id,
                transfers.c.debit_account_id,
                transfers.c.credit_account_id,
                transfers.c.amount,
                transfers.c.currency,
                transfers.c.time_ms,
                accounts.c.exponent,
            )
            .join(accounts, accounts.c.id == transfers.c.debit_account_id)
            .where(
                accounts.c.kind.in_(("customer", "merchant")),
                transfers.c.pending_id.is_(None),
                transfers.c.hold_status.is_(None),
                transfers.c.time_ms >= since_ms,
            )
            .order_by(transfers.c.time_ms.desc(), transfers.c.id.desc())
            .limit(max(1, limit))
        )
        with self.host.platform_engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            HistoricPayment(
                transfer_id=row.id,
                debit_account_id=row.debit_account_id,
                credit_account_id=row.credit_account_id,
                amount_minor=row.amount,
                currency=row.currency,
                exponent=row.exponent,
                at_ms=row.time_ms,
            )
            for row in reversed(rows)
        ]


@dataclass(frozen=True, slots=True)
class _Holds:
    host: Any

    def resolve(self, *, pending_id: str, transfer_id: str, post: bool) -> dict[str, Any]:
        return payments_service.resolve_pending(
            self.host,
            MemberGateway(self.host.node),
            pending_id=pending_id,
            transfer_id=transfer_id,
            post=post,
            sender=None,
        )


def build_risk_service(host: Any) -> RiskService:
    ports = RiskPorts(
        member_did=host.node.key.did,
        clock=host.node.clock,
        identity=_IdentityFacts(host),
        payments=_PaymentHistory(host),
        holds=_Holds(host),
        anchors=host.notary_anchors,
        audit=host.audit,
        model_dir=host.settings.data / MODEL_DIR,
    )
    return RiskService(host.platform_engine, ports)

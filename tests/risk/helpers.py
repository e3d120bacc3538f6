"""A risk service over an in-memory SQLite database with fake ports: the payments history,
identity's facts, the hold resolver and the audit sink are plain objects the tests inspect."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from zhijin.payments import PaymentFacts
from zhijin.risk.expected import HistoricPayment, RiskPorts
from zhijin.risk.features import CredentialChange
from zhijin.risk.service import RiskService

MEMBER = "did:key:z6MkRiskBank"
# 2026-06-01 14:00 Beijing time (06:00 UTC): daytime.
T0 = 1_780_293_600_000
DAY_MS = 24 * 3600 * 1000


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now


@dataclass
class FakeIdentity:
    changes: list[CredentialChange] = field(default_factory=list)
    sign_ins: dict[str, tuple[int | None, int | None, int | None]] = field(default_factory=dict)

    def last_sign_in(self, user_id: str) -> tuple[int | None, int | None, int | None] | None:
        return self.sign_ins.get(user_id)

    def credential_changes(
        self, *, after_seq: int, limit: int
    ) -> tuple[list[CredentialChange], int]:
        page = self.changes[after_seq : after_seq + limit]
        return page, after_seq + len(page)


@dataclass
class FakeHistory:
    payments: list[HistoricPayment] = field(default_factory=list)

    def recent_payments(self, *, since_ms: int, limit: int) -> list[HistoricPayment]:
        return [p for p in self.payments if p.at_ms >= since_ms][-limit:]


@dataclass
class FakeHolds:
    resolved: list[dict[str, Any]] = field(default_factory=list)
    refuse_void: bool = False

    def resolve(self, *, pending_id: str, transfer_id: str, post: bool) -> dict[str, Any]:
        if not post and self.refuse_void:
            from zhijin.payments.service import PaymentRefused

            raise PaymentRefused("not_authorized", "only the payee voids")
        self.resolved.append({"pending_id": pending_id, "id": transfer_id, "post": post})
        return {"id": transfer_id}


@dataclass
class FakeAudit:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def append(self, **entry: Any) -> None:
        self.entries.append(entry)

    def actions(self) -> list[str]:
        return [entry["action"] for entry in self.entries]


@dataclass
class World:
    service: RiskService
    clock: Clock
    identity: FakeIdentity
    history: FakeHistory
    holds: FakeHolds
    audit: FakeAudit


def make_world(tmp_path: Path, *, history: list[HistoricPayment] | None = None) -> World:
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    clock, identity = Clock(), FakeIdentity()
    past, holds, audit = FakeHistory(list(history or [])), FakeHolds(), FakeAudit()
    ports = RiskPorts(
        member_did=MEMBER,
        clock=clock,
        identity=identity,
        payments=past,
        holds=holds,
        anchors=None,
        audit=audit,
        model_dir=tmp_path / "models",
    )
    service = RiskService(engine, ports)
    service.start()
    return World(service, clock, identity, past, holds, audit)


def facts(transfer_id: str, amount_minor: int = 10_000, **changes: Any) -> PaymentFacts:
    base = PaymentFacts(
        transfer_id=transfer_id,
        debit_account_id="alice-cny",
        credit_account_id="bob-cny",
        payer="did:key:z6MkAlice",
        payee_owner="did:key:z6MkBob",
        currency="CNY",
        exponent=2,
        amount_minor=amount_minor,
        at_ms=T0,
        user_id="u-alice",
        payee_known=True,
        device_known=True,
        auth_at_ms=T0 - 60_000,
        mfa_at_ms=None,
        account_created_ms=T0 - 400 * DAY_MS,
    )
    return replace(base, **changes)


def history(
    count: int, *, amount_minor: int = 10_000, start: int = T0 - 20 * DAY_MS
) -> list[HistoricPayment]:
    """`count` payments of Alice to Bob, a few hours apart, before T0."""
    return [
        HistoricPayment(
            transfer_id=f"h-{n}",
            debit_account_id="alice-cny",
            credit_account_id="bob-cny",
            amount_minor=amount_minor + (n % 7) * 100,
            currency="CNY",
            exponent=2,
            at_ms=start + n * 3 * 3600 * 1000,
        )
        for n in range(count)
    ]

"""Credit's ports (zhijin/credit/expected.py), implemented by the composition root and put on
each host as `credit_ports`: the ledger's facts from credit's own consumer of payments'
committed events (`zhijin.credit.flows.FlowFacts`, a projection, so a decision reads a few
indexed rows instead of paging through statements), and identity's consent check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhijin.credit.expected import CreditPorts
from zhijin.credit.flows import FlowFacts
from zhijin.identity import consent_allows

__all__ = ["build_credit_ports"]


@dataclass(frozen=True, slots=True)
class _CommittedState:
    host: Any

    def get(self, key: str) -> Any | None:
        return self.host.node.state_get(key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        store = self.host.node.store
        with store.read() as conn:
            rows: list[tuple[str, Any]] = store.state_scan(conn, prefix, start_after, limit)
        return rows


@dataclass(frozen=True, slots=True)
class _Consents:
    host: Any

    def allows(self, *, subject: str, grantee: str, category: str, purpose: str) -> bool:
        return consent_allows(
            _CommittedState(self.host),
            subject=subject,
            grantee=grantee,
            category=category,
            purpose=purpose,
            at_ms=self.host.node.head.time_ms,
        )


def build_credit_ports(host: Any) -> CreditPorts:
    return CreditPorts(payments=FlowFacts(host.platform_engine), consent=_Consents(host))

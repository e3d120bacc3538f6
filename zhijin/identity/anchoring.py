"""Anchoring the audit log's head on chain through the notary, and reading the anchors back.

A background thread in the platform anchors `AuditLog.head()` every `interval_s` when the head
moved since the last anchor.  `audit verify` then compares the log with every anchored head:
an entry removed or changed before an anchored head, or a log cut short of one, is caught even
if whoever did it recomputed the hash chain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, inspect, select

from zhijin.chain.errors import ContractError
from zhijin.chain.store import ChainStore
from zhijin.identity.audit import (
    _ANCHOR_TITLE_PREFIX,
    AuditHead,
    AuditLog,
    AuditReport,
    head_from_anchor,
)

__all__ = [
    "ANCHOR_TITLE_PREFIX",
    "AuditAnchorer",
    "anchored_heads",
    "audit_verify_json",
    "confirmed_heads",
]

log = logging.getLogger("zhijin.identity.anchoring")

ANCHOR_TITLE_PREFIX = _ANCHOR_TITLE_PREFIX
ANCHORED_HEADS_MAX = 100_000
# A stopping node waits at most this long for its last anchor to commit: a cluster peer whose
# consortium has lost its quorum must still stop.
SHUTDOWN_ANCHOR_TIMEOUT_S = 5.0


def anchored_heads(engine: Engine, *, owner: str) -> list[AuditHead]:
    """Audit heads this node's member (`owner`) anchored through the notary, from the notary's
    query table.  Anyone may anchor a hash with such a title; only the member's own count."""
    from zhijin.notary.projection import anchors_table

    if not inspect(engine).has_table(anchors_table.name):
        return []  # the notary projection has not run yet: nothing anchored
    with engine.connect() as conn:
        rows = conn.execute(
            select(anchors_table.c.title, anchors_table.c.hash)
            .where(anchors_table.c.title.startswith(ANCHOR_TITLE_PREFIX))
            .where(anchors_table.c.owner == owner)
            .limit(ANCHORED_HEADS_MAX)
        ).all()
    heads = (head_from_anchor(row.title, row.hash) for row in rows)
    return sorted((h for h in heads if h is not None), key=lambda h: h.size)


def confirmed_heads(
    store: ChainStore, heads: Sequence[AuditHead], *, owner: str
) -> tuple[list[AuditHead], list[AuditHead]]:
    """(confirmed, unconfirmed): each head read from the query table, checked against its
    anchor record on chain.  The table lives in the platform database beside the log, so
    whoever rewrote the log could have added matching rows to it; only the chain vouches."""
    from zhijin.notary.contract import record_key

    confirmed: list[AuditHead] = []
    unconfirmed: list[AuditHead] = []
    with store.read() as conn:
        for head in heads:
            record = store.state_get(conn, record_key(head.entry_hash))
            on_chain = (
                record is not None
                and record.get("owner") == owner
                and record.get("title") == head.notary_anchor_args()["title"]
            )
            (confirmed if on_chain else unconfirmed).append(head)
    return confirmed, unconfirmed


def audit_verify_json(
    report: AuditReport, anchors: Sequence[AuditHead], unconfirmed: Sequence[AuditHead]
) -> dict[str, Any]:
    """What `audit verify` and `GET /audit/verify` answer: the report, the anchors it was
    checked against, and the sizes of anchor rows the chain does not hold (ignored)."""
    return {
        **report.to_json(),
        "ok": report.ok and not unconfirmed,
        "anchors_checked": len(anchors),
        "anchors_not_on_chain": [head.size for head in unconfirmed],
    }


class AuditAnchorer:
    """Anchor the audit head periodically (only when it moved)."""

    def __init__(self, audit: AuditLog, gateway: Any, *, interval_s: float) -> None:
        self.audit = audit
        self.gateway = gateway
        self.interval_s = interval_s
        self.last_anchored: AuditHead | None = None
        self.last_anchor_height: int | None = None  # the block of this process's last anchor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # since start(), until the shutdown anchor

    def anchor_now(self, *, timeout_s: float = 30.0) -> AuditHead | None:
        """Anchor the current head if it moved; returns the head anchored, or None."""
        head = self.audit.head()
        if head.size == 0 or head == self.last_anchored:
            return None
        if self._on_chain(head):  # anchored by an earlier run (a restart, a CLI command)
            self.last_anchored = head
            return None
        result = self.gateway.submit(
            "notary", "anchor", head.notary_anchor_args(), timeout_s=timeout_s
        )
        if result["status"] != "ok":
            raise ContractError(result["code"], result["message"])
        self.last_anchored = head
        self.last_anchor_height = int(result["height"])
        log.info("audit head %d anchored", head.size)
        return head

    def _on_chain(self, head: AuditHead) -> bool:
        from zhijin.notary.contract import record_key

        record = self.gateway.node.state_get(record_key(head.entry_hash))
        return (
            record is not None
            and record.get("title") == head.notary_anchor_args()["title"]
            and record.get("owner") == self.gateway.node.key.did
        )

    def anchor_at_shutdown(self) -> AuditHead | None:
        """The last anchor, taken while the node still orders blocks; a failure is logged, not
        raised, so the node stops anyway (verify then reports the unanchored tail)."""
        if not self._started:  # never started (a reindex) or anchoring off: no orderer to ask
            return None
        self._started = False
        try:
            return self.anchor_now(timeout_s=SHUTDOWN_ANCHOR_TIMEOUT_S)
        except Exception:
            log.exception("anchoring the audit head at shutdown failed")
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.anchor_now()
            except Exception:
                log.exception("anchoring the audit head failed; retrying next interval")

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._started = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

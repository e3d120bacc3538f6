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

from zhijin.identity.expected import NotaryAnchors
from zhijin.platform.audit import AuditHead, AuditLog, AuditReport

__all__ = [
    "ANCHOR_TITLE_PREFIX",
    "AuditAnchorer",
    "anchor_args",
    "anchored_heads",
    "audit_verify_json",
    "confirmed_heads",
    "head_from_anchor",
]

log = logging.getLogger("zhijin.identity.anchoring")

ANCHOR_TITLE_PREFIX = "zhijin identity audit head "
ANCHORED_HEADS_MAX = 100_000
# A stopping node waits at most this long for its last anchor to commit: a cluster peer whose
# consortium has lost its quorum must still stop.
SHUTDOWN_ANCHOR_TIMEOUT_S = 5.0


def anchor_args(head: AuditHead) -> dict[str, str]:
    """The notary anchor of a head: its last entry hash, titled with its size."""
    return {"hash": head.entry_hash, "title": f"{ANCHOR_TITLE_PREFIX}{head.size}"}


def head_from_anchor(title: str, document_hash: str) -> AuditHead | None:
    """Read back an anchored head from a notary record (title and hash), or None if not one."""
    if not title.startswith(ANCHOR_TITLE_PREFIX):
        return None
    size_text = title[len(ANCHOR_TITLE_PREFIX) :]
    return AuditHead(int(size_text), document_hash) if size_text.isdigit() else None


def anchored_heads(notary: NotaryAnchors, *, owner: str) -> list[AuditHead]:
    """Audit heads this node's member (`owner`) anchored through the notary, from the notary's
    query table.  Anyone may anchor a hash with such a title; only the member's own count."""
    rows = notary.anchors_titled(
        owner=owner, title_prefix=ANCHOR_TITLE_PREFIX, limit=ANCHORED_HEADS_MAX
    )
    heads = (head_from_anchor(title, document_hash) for title, document_hash in rows)
    return sorted((h for h in heads if h is not None), key=lambda h: h.size)


def _on_chain(notary: NotaryAnchors, head: AuditHead, *, owner: str) -> bool:
    record = notary.anchor_record(head.entry_hash)
    return (
        record is not None
        and record.get("owner") == owner
        and record.get("title") == anchor_args(head)["title"]
    )


def confirmed_heads(
    notary: NotaryAnchors, heads: Sequence[AuditHead], *, owner: str
) -> tuple[list[AuditHead], list[AuditHead]]:
    """(confirmed, unconfirmed): each head read from the query table, checked against its
    anchor record on chain.  The table lives in the platform database beside the log, so
    whoever rewrote the log could have added matching rows to it; only the chain vouches."""
    confirmed: list[AuditHead] = []
    unconfirmed: list[AuditHead] = []
    for head in heads:
        (confirmed if _on_chain(notary, head, owner=owner) else unconfirmed).append(head)
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

    def __init__(
        self, audit: AuditLog, notary: NotaryAnchors, *, owner: str, interval_s: float
    ) -> None:
        self.audit = audit
        self.notary = notary
        self.owner = owner  # this node's member, in whose name the notary anchors
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
        if _on_chain(self.notary, head, owner=self.owner):  # by an earlier run (a restart)
            self.last_anchored = head
            return None
        args = anchor_args(head)
        height = self.notary.anchor(
            document_hash=args["hash"], title=args["title"], timeout_s=timeout_s
        )
        self.last_anchored = head
        self.last_anchor_height = height
        log.info("audit head %d anchored", head.size)
        return head

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

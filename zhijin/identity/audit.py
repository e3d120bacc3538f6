"""The access audit log: append-only and hash-chained, its head anchored on chain.

Every read of sensitive personal data and every privileged action (and every refusal of
one) becomes an entry: who (actor), what (action, target), when (at_ms), why (reason), and how
it ended (outcome).  Entries hold ids, never the personal data itself.

Entry n stores `prev_hash` = entry n-1's hash (64 zeros for the first) and
`entry_hash = SHA-256(canonical JSON of {seq, at_ms, actor, action, target, outcome, reason,
details, prev_hash})`.  `verify()` recomputes the chain and names the first entry that does
not fit: a changed entry breaks its own hash, a removed one leaves a gap in `seq` and breaks
the next entry's `prev_hash`.  Someone able to rewrite the whole tail consistently, or to cut
entries off the end, is caught only by comparing with a head recorded elsewhere: that is what
`head()` and anchoring it on chain are for (`verify(anchors=...)`).

The table also refuses UPDATE and DELETE through database triggers (tables.create_tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.errors import Unavailable
from zhijin.identity import limits
from zhijin.identity.errors import InvalidInput
from zhijin.identity.tables import audit_log

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "AuditReport",
    "head_from_anchor",
]

GENESIS_HASH = "0" * 64
_ANCHOR_TITLE_PREFIX = "zhijin identity audit head "


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at_ms: int
    actor: str
    action: str
    target: str
    outcome: str
    reason: str | None
    details: Mapping[str, Any]
    prev_hash: str
    entry_hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at_ms": self.at_ms,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "reason": self.reason,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return sha256(canonical(self.hashed_fields())).hex()


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The log's size and last entry hash: what gets anchored on chain."""

    size: int
    entry_hash: str

    def notary_anchor_args(self) -> dict[str, Any]:
        """Args for the notary contract's `anchor` method (`AuditAnchorer` submits them periodically)."""
        return {"hash": self.entry_hash, "title": f"{_ANCHOR_TITLE_PREFIX}{self.size}"}


@dataclass(frozen=True, slots=True)
class AuditReport:
    ok: bool
    entries_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def _bounded(text: str | None, name: str) -> str | None:
    if text is not None and len(text) > limits.AUDIT_TEXT_CHARS_MAX:
        raise InvalidInput(
            "audit_field_too_long", f"audit {name} is at most {limits.AUDIT_TEXT_CHARS_MAX}"
        )
    return text


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at_ms=row.at_ms,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        reason=row.reason,
        details=json.loads(row.details),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        at_ms: int,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry.  Two writers racing for the same seq: the loser retries."""
        for name, value in (
            ("actor", actor),
            ("action", action),
            ("target", target),
            ("outcome", outcome),
        ):
            _bounded(value, name)
        _bounded(reason, "reason")
        details = dict(details or {})
        for _ in range(limits.AUDIT_APPEND_RETRIES_MAX):
            try:
                with self.engine.begin() as conn:
                    last = conn.execute(
                        select(audit_log.c.seq, audit_log.c.entry_hash)
                        .order_by(audit_log.c.seq.desc())
                        .limit(1)
                    ).one_or_none()
                    seq, prev_hash = (
                        (1, GENESIS_HASH) if last is None else (last.seq + 1, last.entry_hash)
                    )
                    draft = AuditEntry(
                        seq, at_ms, actor, action, target, outcome, reason, details, prev_hash, ""
                    )
                    entry = AuditEntry(
                        **{**draft.hashed_fields(), "entry_hash": draft.computed_hash()}
                    )
                    conn.execute(
                        insert(audit_log).values(
                            **{
                                **entry.hashed_fields(),
                                "details": canonical(details).decode("utf-8"),
                            },
                            entry_hash=entry.entry_hash,
                        )
                    )
                return entry
            except IntegrityError:
                continue
        raise Unavailable("audit_contention", "could not append to the audit log; retry")

    def head(self) -> AuditHead:
        with self.engine.connect() as conn:
            last = conn.execute(
                select(audit_log.c.seq, audit_log.c.entry_hash)
                .order_by(audit_log.c.seq.desc())
                .limit(1)
            ).one_or_none()
        return AuditHead(0, GENESIS_HASH) if last is None else AuditHead(last.seq, last.entry_hash)

    def entries(
        self, *, after_seq: int = 0, limit: int = limits.AUDIT_VERIFY_PAGE_ROWS
    ) -> list[AuditEntry]:
        limit = max(1, min(limit, limits.AUDIT_VERIFY_PAGE_ROWS))
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(audit_log)
                .where(audit_log.c.seq > after_seq)
                .order_by(audit_log.c.seq)
                .limit(limit)
            ).all()
        return [_entry(row) for row in rows]

    def verify(self, *, anchors: Iterable[AuditHead] = ()) -> AuditReport:
        """Recompute the chain from the first entry; compare with anchored heads if given."""
        wanted = {a.size: a.entry_hash for a in anchors}
        expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
        while True:
            page = self.entries(after_seq=expected_seq - 1)
            if not page:
                break
            for entry in page:
                problem = self._problem(entry, expected_seq, prev_hash, wanted)
                if problem is not None:
                    return AuditReport(False, checked, first_bad_seq=expected_seq, problem=problem)
                checked += 1
                expected_seq, prev_hash = entry.seq + 1, entry.entry_hash
        missing = sorted(size for size in wanted if size >= expected_seq)
        if missing:
            return AuditReport(
                False,
                checked,
                first_bad_seq=expected_seq,
                problem=f"entries up to {missing[-1]} were anchored but the log ends at {checked}",
            )
        return AuditReport(True, checked)

    @staticmethod
    def _problem(
        entry: AuditEntry, expected_seq: int, prev_hash: str, anchors: Mapping[int, str]
    ) -> str | None:
        if entry.seq != expected_seq:
            return f"entry {expected_seq} is missing (next present is {entry.seq})"
        if entry.prev_hash != prev_hash:
            return "prev_hash does not match the previous entry's hash"
        if entry.computed_hash() != entry.entry_hash:
            return "entry content does not match its hash"
        anchored = anchors.get(entry.seq)
        if anchored is not None and anchored != entry.entry_hash:
            return "entry hash differs from the anchored head"
        return None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def head_from_anchor(title: str, document_hash: str) -> AuditHead | None:
    """Read back an anchored head from a notary record (title and hash), or None if not one."""
    if not title.startswith(_ANCHOR_TITLE_PREFIX):
        return None
    size_text = title[len(_ANCHOR_TITLE_PREFIX) :]
    return AuditHead(int(size_text), document_hash) if size_text.isdigit() else None

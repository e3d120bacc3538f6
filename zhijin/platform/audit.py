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

What an anchor cannot vouch for is said plainly in the report: entries after the last anchor
(`unanchored_entries`) could be cut off without a trace, which is why the node also anchors
its head when it stops.  A consistent rewrite is seen only at the next anchor, so the report
names the suspect range (`suspect_from_seq`..`suspect_to_seq`): everything after the last
anchor that still matches, up to the one that does not.  A row that cannot even be read (details
that are not JSON, a missing or mistyped field) is named by its seq; verify never stops on it.

The table also refuses UPDATE and DELETE through database triggers (`create_audit_tables`).
Anchoring the head on chain is identity's (zhijin/identity/anchoring.py, through the notary).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from zhijin.chain.codec import canonical, sha256
from zhijin.chain.errors import EncodingError, Unavailable, ZhijinError
from zhijin.platform import limits
from zhijin.platform.errors import InvalidInput

__all__ = [
    "AUDIT_METADATA",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "AuditLogDamaged",
    "AuditReport",
    "audit_log",
    "create_audit_tables",
]

GENESIS_HASH = "0" * 64

# The table keeps the name it was created with (the log began in the identity domain), so
# existing platform databases need no migration.
AUDIT_METADATA = MetaData()

audit_log = Table(
    "identity_audit_log",
    AUDIT_METADATA,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("target", String(200), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("reason", Text),
    Column("details", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

# The audit log is append-only in the database too, not only by convention: an UPDATE or a
# DELETE fails.  Tampering then needs the privileges to drop the trigger, and the hash chain
# (anchored on chain) still shows it.
_SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS identity_audit_no_update BEFORE UPDATE ON identity_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'identity_audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS identity_audit_no_delete BEFORE DELETE ON identity_audit_log "
    "BEGIN SELECT RAISE(ABORT, 'identity_audit_log is append-only'); END",
)
_POSTGRES_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION identity_audit_append_only() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'identity_audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS identity_audit_append_only ON identity_audit_log",
    "CREATE TRIGGER identity_audit_append_only BEFORE UPDATE OR DELETE ON identity_audit_log "
    "FOR EACH ROW EXECUTE FUNCTION identity_audit_append_only()",
)


def create_audit_tables(engine: Engine) -> None:
    """Create the audit log's table and its append-only triggers (idempotent)."""
    AUDIT_METADATA.create_all(engine)
    statements = {"sqlite": _SQLITE_APPEND_ONLY, "postgresql": _POSTGRES_APPEND_ONLY}.get(
        engine.dialect.name, ()
    )
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


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


class AuditLogDamaged(ZhijinError):
    """A stored entry cannot be read back (changed outside the log): run `zhijin audit verify`."""

    code = "audit_entry_malformed"
    http_status = 500


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What `verify` found.  On failure, `first_bad_seq` is where the problem shows and
    `suspect_from_seq`..`suspect_to_seq` the entries that may have been changed or removed."""

    ok: bool
    entries_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    suspect_from_seq: int | None = None
    suspect_to_seq: int | None = None
    anchored_size: int = 0  # entries 1..anchored_size match the last anchor that matched
    unanchored_entries: int = 0  # checked entries after that anchor

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "suspect_from_seq": self.suspect_from_seq,
            "suspect_to_seq": self.suspect_to_seq,
            "anchored_size": self.anchored_size,
            "unanchored_entries": self.unanchored_entries,
            "unanchored_note": (
                f"{self.unanchored_entries} entries after the last anchor: a removal among "
                "them cannot be detected until the next anchor"
                if self.unanchored_entries
                else None
            ),
        }


@dataclass(slots=True)
class _Walk:
    """Where `verify` stands: the next seq it expects, the hash to link to, the last anchor
    that matched."""

    expected_seq: int = 1
    prev_hash: str = GENESIS_HASH
    checked: int = 0
    anchored_size: int = 0

    def failed(self, problem: str, *, at: int, suspect_from: int, suspect_to: int) -> AuditReport:
        return AuditReport(
            False,
            self.checked,
            first_bad_seq=at,
            problem=problem,
            suspect_from_seq=suspect_from,
            suspect_to_seq=suspect_to,
            anchored_size=self.anchored_size,
            unanchored_entries=self.checked - self.anchored_size,
        )


def _bounded(text: str | None, name: str) -> str | None:
    if text is not None and len(text) > limits.AUDIT_TEXT_CHARS_MAX:
        raise InvalidInput(
            "audit_field_too_long", f"audit {name} is at most {limits.AUDIT_TEXT_CHARS_MAX}"
        )
    return text


_TEXT_FIELDS = ("actor", "action", "target", "outcome", "prev_hash", "entry_hash")


def _type_name(value: Any) -> str:
    return "missing" if value is None else f"a {type(value).__name__}"


def _parse(row: Any) -> AuditEntry | str:
    """The entry a stored row holds, or what is wrong with the row (say, details that are not
    JSON) so that `verify` names it instead of failing on it."""
    for name in ("seq", "at_ms"):
        if type(getattr(row, name)) is not int:
            return f"{name} is {_type_name(getattr(row, name))}, not an integer"
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(row, name), str):
            return f"{name} is {_type_name(getattr(row, name))}, not text"
    if row.reason is not None and not isinstance(row.reason, str):
        return f"reason is {_type_name(row.reason)}, not text"
    if not isinstance(row.details, str):
        return f"details is {_type_name(row.details)}, not JSON text"
    try:
        details = json.loads(row.details)
    except ValueError:
        return "details is not JSON"
    if not isinstance(details, dict):
        return f"details is JSON {type(details).__name__}, not an object"
    entry = AuditEntry(
        seq=row.seq,
        at_ms=row.at_ms,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        reason=row.reason,
        details=details,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )
    try:
        entry.computed_hash()
    except EncodingError as exc:
        return f"details cannot be hashed: {exc.message}"
    return entry


def _entry(row: Any) -> AuditEntry:
    parsed = _parse(row)
    if isinstance(parsed, str):
        raise AuditLogDamaged(
            message=f"audit entry {row.seq!r} cannot be read ({parsed}); run `zhijin audit verify`"
        )
    return parsed


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

    def _rows(self, *, after_seq: int, limit: int) -> list[Any]:
        limit = max(1, min(limit, limits.AUDIT_VERIFY_PAGE_ROWS))
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > after_seq)
                    .order_by(audit_log.c.seq)
                    .limit(limit)
                ).all()
            )

    def entries(
        self, *, after_seq: int = 0, limit: int = limits.AUDIT_VERIFY_PAGE_ROWS
    ) -> list[AuditEntry]:
        """A page of entries; raises AuditLogDamaged on a row that cannot be read back."""
        return [_entry(row) for row in self._rows(after_seq=after_seq, limit=limit)]

    def search(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        after_seq: int = 0,
        limit: int = limits.AUDIT_VERIFY_PAGE_ROWS,
    ) -> list[AuditEntry]:
        """A page of entries in seq order matching every filter given: `actor` and `action`
        exactly (`action` ending in `.` or `*` as a prefix: `role.*`), `at_ms` in
        [from_ms, to_ms)."""
        query = select(audit_log).where(audit_log.c.seq > after_seq)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if action and action.endswith(("*", ".")):
            prefix = action.rstrip("*")
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(audit_log.c.action.like(escaped + "%", escape="\\"))
        elif action:
            query = query.where(audit_log.c.action == action)
        if from_ms is not None:
            query = query.where(audit_log.c.at_ms >= from_ms)
        if to_ms is not None:
            query = query.where(audit_log.c.at_ms < to_ms)
        limit = max(1, min(limit, limits.AUDIT_VERIFY_PAGE_ROWS))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(audit_log.c.seq).limit(limit)).all()
        return [_entry(row) for row in rows]

    def verify(
        self,
        *,
        anchors: Iterable[AuditHead] = (),
        progress: Callable[[int, int | None], None] | None = None,
    ) -> AuditReport:
        """Recompute the chain from the first entry; compare with anchored heads if given.
        `progress(checked, total)` is told after each page (total: the entries at the start)."""
        wanted = {a.size: a.entry_hash for a in anchors}
        walk = _Walk()
        total = self.count() if progress is not None else None
        while page := self._rows(
            after_seq=walk.expected_seq - 1, limit=limits.AUDIT_VERIFY_PAGE_ROWS
        ):
            for row in page:
                failure = self._check(row, walk, wanted)
                if failure is not None:
                    return failure
            if progress is not None:
                progress(walk.checked, total)
        return self._end(walk, wanted)

    @staticmethod
    def _check(row: Any, walk: _Walk, anchors: Mapping[int, str]) -> AuditReport | None:
        """Check one row against the walk so far and advance it; a report if it does not fit."""
        seq = walk.expected_seq
        entry = _parse(row)
        if isinstance(entry, str):
            return walk.failed(
                f"entry {seq} cannot be read: {entry}", at=seq, suspect_from=seq, suspect_to=seq
            )
        if entry.seq != seq:
            return walk.failed(
                f"{_entries(seq, entry.seq - 1, 'is', 'are')} missing "
                f"(next present is {entry.seq})",
                at=seq,
                suspect_from=seq,
                suspect_to=entry.seq - 1,
            )
        if entry.prev_hash != walk.prev_hash:
            # Either this entry's link was changed, or the one before was rewritten with a
            # recomputed hash: both are suspect.
            return walk.failed(
                "prev_hash does not match the previous entry's hash",
                at=seq,
                suspect_from=max(1, seq - 1),
                suspect_to=seq,
            )
        if entry.computed_hash() != entry.entry_hash:
            return walk.failed(
                "entry content does not match its hash", at=seq, suspect_from=seq, suspect_to=seq
            )
        anchored = anchors.get(seq)
        if anchored is not None and anchored != entry.entry_hash:
            return walk.failed(
                f"{_entries(walk.anchored_size + 1, seq, 'does', 'do')} not match the anchor "
                f"at {seq}; {_covered(walk.anchored_size)}",
                at=seq,
                suspect_from=walk.anchored_size + 1,
                suspect_to=seq,
            )
        if anchored is not None:
            walk.anchored_size = seq
        walk.checked += 1
        walk.expected_seq, walk.prev_hash = seq + 1, entry.entry_hash
        return None

    @staticmethod
    def _end(walk: _Walk, anchors: Mapping[int, str]) -> AuditReport:
        beyond = sorted(size for size in anchors if size >= walk.expected_seq)
        if beyond:
            return walk.failed(
                f"entries up to {beyond[-1]} were anchored but the log ends at {walk.checked}: "
                f"{_entries(walk.expected_seq, beyond[-1], 'was', 'were')} removed",
                at=walk.expected_seq,
                suspect_from=walk.expected_seq,
                suspect_to=beyond[-1],
            )
        return AuditReport(
            True,
            walk.checked,
            anchored_size=walk.anchored_size,
            unanchored_entries=walk.checked - walk.anchored_size,
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def _entries(first: int, last: int, verb_one: str, verb_many: str) -> str:
    """ "entry 6 is" or "entries 3–4 are": entries first..last and a verb of the right number."""
    if first == last:
        return f"entry {first} {verb_one}"
    return f"entries {_span(first, last)} {verb_many}"


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _covered(anchored_size: int) -> str:
    if anchored_size == 0:
        return "no earlier anchor matches"
    return f"the last anchor that matches covers {_span(1, anchored_size)}"

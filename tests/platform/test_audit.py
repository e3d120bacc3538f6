"""The access audit log: hash chain, append-only triggers, tamper and removal detection, anchored
heads (anchoring them through the notary is identity's: tests/identity/test_anchoring.py).
Runs on SQLite and on PostgreSQL (the root conftest's `db_url`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DatabaseError

from zhijin.platform.audit import (
    GENESIS_HASH,
    AuditHead,
    AuditLog,
    AuditLogDamaged,
    create_audit_tables,
)


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    create_audit_tables(engine)
    yield engine
    engine.dispose()


def fill(log: AuditLog, count: int) -> None:
    for i in range(count):
        log.append(
            actor=f"user:u{i % 3}",
            action="personal_data.read",
            target=f"person:p{i}",
            outcome="ok",
            at_ms=1_000 + i,
            reason="case 17",
            details={"fields": ["name"], "n": i},
        )


def drop_triggers(engine: Engine) -> None:
    """What an attacker with DDL rights would do first."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER identity_audit_no_update"))
            conn.execute(text("DROP TRIGGER identity_audit_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER identity_audit_append_only ON identity_audit_log"))


def test_chain_and_head(db: Engine) -> None:
    log = AuditLog(db)
    assert log.head() == AuditHead(0, GENESIS_HASH)
    assert log.verify().ok
    fill(log, 5)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert log.head() == AuditHead(5, entries[-1].entry_hash)
    report = log.verify(anchors=[AuditHead(3, entries[2].entry_hash), log.head()])
    assert report.ok and report.entries_checked == 5


def test_updates_and_deletes_are_refused_by_the_database(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 2)
    for statement in (
        "UPDATE identity_audit_log SET actor='x' WHERE seq=1",
        "DELETE FROM identity_audit_log WHERE seq=2",
    ):
        with pytest.raises(DatabaseError), db.begin() as conn:
            conn.execute(text(statement))
    assert log.verify().ok and log.count() == 2


def test_changed_entry_is_named(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("UPDATE identity_audit_log SET target='person:someone-else' WHERE seq=4"))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 4 and "hash" in (report.problem or "")
    assert report.entries_checked == 3


def test_recomputed_entry_breaks_the_next_link(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    drop_triggers(db)
    entry = log.entries()[2]  # seq 3: rewrite it and fix its own hash, as a careful forger would
    forged = type(entry)(**{**entry.hashed_fields(), "actor": "user:innocent", "entry_hash": ""})
    new_hash = forged.computed_hash()
    with db.begin() as conn:
        conn.execute(
            text("UPDATE identity_audit_log SET actor='user:innocent', entry_hash=:h WHERE seq=3"),
            {"h": new_hash},
        )
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 4 and "prev_hash" in (report.problem or "")


def test_removed_entry_is_detected(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq=3"))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 3 and "missing" in (report.problem or "")


def test_truncated_tail_is_caught_only_by_an_anchor(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    anchored = log.head()
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq >= 5"))
    assert log.verify().ok  # the remaining chain is consistent by itself ...
    report = log.verify(anchors=[anchored])  # ... but not with the head anchored on chain
    assert not report.ok and report.first_bad_seq == 5


def test_rewritten_history_differs_from_the_anchor(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 4)
    anchored = log.head()
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log"))
    # A whole new, self-consistent history in which entry 2 says something else.
    for i in range(4):
        log.append(
            actor="user:u0",
            action="personal_data.read",
            target=f"person:p{i}",
            outcome="ok",
            at_ms=1_000 + i,
            reason="case 17" if i != 1 else "routine",
            details={"fields": ["name"], "n": i},
        )
    assert log.verify().ok
    report = log.verify(anchors=[anchored])
    assert not report.ok and report.first_bad_seq == 4
    assert "do not match the anchor at 4" in (report.problem or "")
    assert (report.suspect_from_seq, report.suspect_to_seq) == (1, 4)


def test_oversized_fields_are_refused(db: Engine) -> None:
    from zhijin.platform.errors import InvalidInput

    with pytest.raises(InvalidInput):
        AuditLog(db).append(
            actor="a", action="b", target="c", outcome="d", at_ms=1, reason="x" * 501
        )


# -- unreadable rows, the unanchored tail, the suspect range (issue 10, item 7) -----------------


def test_details_that_are_not_json_are_named_not_a_traceback(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 5)
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("UPDATE identity_audit_log SET details='{not json' WHERE seq=3"))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 3 and report.entries_checked == 2
    assert report.problem == "entry 3 cannot be read: details is not JSON"
    assert (report.suspect_from_seq, report.suspect_to_seq) == (3, 3)
    with pytest.raises(AuditLogDamaged) as caught:  # the read path names it too
        log.entries()
    assert caught.value.code == "audit_entry_malformed" and "entry 3" in caught.value.message


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ("[1, 2]", "details is JSON list, not an object"),
        ('{"n": 1.5}', "details cannot be hashed"),
    ],
)
def test_details_of_the_wrong_shape_are_named(db: Engine, details: str, problem: str) -> None:
    log = AuditLog(db)
    fill(log, 3)
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("UPDATE identity_audit_log SET details=:d WHERE seq=2"), {"d": details})
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2 and problem in (report.problem or "")


def test_fields_of_the_wrong_type_are_named(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 3)
    drop_triggers(db)
    tamper = text("UPDATE identity_audit_log SET at_ms='yesterday' WHERE seq=2")
    if db.dialect.name != "sqlite":
        # PostgreSQL's column types refuse the row outright; only SQLite can hold it.
        with pytest.raises(DatabaseError), db.begin() as conn:
            conn.execute(tamper)
        assert log.verify().ok
        return
    with db.begin() as conn:
        conn.execute(tamper)
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 2
    assert report.problem == "entry 2 cannot be read: at_ms is a str, not an integer"


def test_the_unanchored_tail_is_reported_and_its_loss_is_undetectable(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    anchored = AuditHead(4, log.entries()[3].entry_hash)
    report = log.verify(anchors=[anchored])
    assert report.ok and report.anchored_size == 4 and report.unanchored_entries == 2
    assert "cannot be detected" in (report.to_json()["unanchored_note"] or "")
    assert log.verify().unanchored_entries == 6  # nothing anchored: the whole log is a tail
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq=6"))
    after = log.verify(anchors=[anchored])  # the limit said out loud: this removal is unseen
    assert after.ok and after.unanchored_entries == 1


def test_removing_the_last_entry_after_a_final_anchor_is_detected(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    final = log.head()  # what the node anchors when it stops
    assert log.verify(anchors=[final]).unanchored_entries == 0
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq=6"))
    report = log.verify(anchors=[final])
    assert not report.ok and report.first_bad_seq == 6
    assert (report.suspect_from_seq, report.suspect_to_seq) == (6, 6)
    assert "entry 6 was removed" in (report.problem or "")


def test_a_consistent_rewrite_names_the_range_since_the_last_good_anchor(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 8)
    entries = log.entries()
    anchors = [AuditHead(size, entries[size - 1].entry_hash) for size in (3, 6, 8)]
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq >= 5"))
    for i in range(4, 8):  # entries 5..8 again, entry 5 saying something else, hashes recomputed
        log.append(
            actor=f"user:u{i % 3}",
            action="personal_data.read",
            target=f"person:p{i}" if i != 4 else "person:nobody",
            outcome="ok",
            at_ms=1_000 + i,
            reason="case 17",
            details={"fields": ["name"], "n": i},
        )
    assert log.verify().ok  # self-consistent ...
    report = log.verify(anchors=anchors)  # ... but the anchor at 6 does not match
    assert not report.ok and report.first_bad_seq == 6
    assert (report.suspect_from_seq, report.suspect_to_seq) == (4, 6)
    assert report.anchored_size == 3
    assert report.problem == (
        "entries 4\u20136 do not match the anchor at 6; the last anchor that matches covers 1\u20133"
    )


def test_a_gap_names_every_missing_entry(db: Engine) -> None:
    log = AuditLog(db)
    fill(log, 6)
    drop_triggers(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq IN (3, 4)"))
    report = log.verify()
    assert not report.ok and report.first_bad_seq == 3
    assert (report.suspect_from_seq, report.suspect_to_seq) == (3, 4)
    assert report.problem == "entries 3\u20134 are missing (next present is 5)"

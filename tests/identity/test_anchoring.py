"""Anchoring the access audit log's head through the notary port (identity/expected.py): the
anchor's title round-trips, only this member's anchors count, a query-table row the chain does
not hold is not trusted, and the anchorer asks the port instead of the notary's tables.  The
port is an in-memory notary here; tests/identity/test_cli.py runs the real one on a node."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from zhijin.chain.errors import ContractError
from zhijin.identity.anchoring import (
    ANCHOR_TITLE_PREFIX,
    AuditAnchorer,
    anchor_args,
    anchored_heads,
    confirmed_heads,
    head_from_anchor,
)
from zhijin.identity.expected import NotaryAnchors
from zhijin.platform.audit import AuditHead, AuditLog, create_audit_tables

MEMBER = "did:key:z6MkAnchoringMember"
OTHER = "did:key:z6MkSomeoneElse"


class MemoryNotary:
    """The notary port over two dicts: what the chain holds, and what the query table shows
    (which a tamperer may have written to)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.chain: dict[str, dict[str, Any]] = {}
        self.table: list[tuple[str, str, str]] = []  # (owner, title, hash)
        self.height = 0
        self.refuse: str | None = None

    def anchor(self, *, document_hash: str, title: str, timeout_s: float) -> int:
        if self.refuse is not None:
            raise ContractError(self.refuse, "refused")
        if document_hash not in self.chain:
            self.height += 1
            self.chain[document_hash] = {"owner": self.owner, "title": title}
            self.table.append((self.owner, title, document_hash))
        return self.height

    def anchor_record(self, document_hash: str) -> Mapping[str, Any] | None:
        return self.chain.get(document_hash)

    def anchors_titled(self, *, owner: str, title_prefix: str, limit: int) -> list[tuple[str, str]]:
        rows = [(t, h) for o, t, h in self.table if o == owner and t.startswith(title_prefix)]
        return rows[:limit]


@pytest.fixture
def log() -> Iterator[AuditLog]:
    engine: Engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    create_audit_tables(engine)
    yield AuditLog(engine)
    engine.dispose()


def _fill(log: AuditLog, count: int) -> None:
    for i in range(count):
        log.append(
            actor="user:u1", action="personal_data.read", target=f"person:p{i}", outcome="ok",
            at_ms=1_000 + i,
        )  # fmt: skip


def test_anchor_args_round_trip(log: AuditLog) -> None:
    _fill(log, 3)
    head = log.head()
    args = anchor_args(head)
    assert len(args["hash"]) == 64 and args["hash"] == head.entry_hash
    assert head_from_anchor(args["title"], args["hash"]) == head
    assert head_from_anchor("some other document", args["hash"]) is None
    assert head_from_anchor(f"{ANCHOR_TITLE_PREFIX}x", args["hash"]) is None


def test_the_anchorer_anchors_through_the_port_once_per_head(log: AuditLog) -> None:
    notary = MemoryNotary(MEMBER)
    port: NotaryAnchors = notary  # the in-memory notary satisfies the declared port
    anchorer = AuditAnchorer(log, port, owner=MEMBER, interval_s=0)
    assert anchorer.anchor_now() is None  # an empty log: nothing to anchor
    _fill(log, 2)
    head = anchorer.anchor_now()
    assert head == log.head() and anchorer.last_anchor_height == 1
    assert notary.chain[head.entry_hash] == {"owner": MEMBER, "title": anchor_args(head)["title"]}
    assert anchorer.anchor_now() is None  # the head did not move
    # A restart finds its head already on chain and anchors nothing twice.
    again = AuditAnchorer(log, port, owner=MEMBER, interval_s=0)
    assert again.anchor_now() is None and notary.height == 1
    _fill(log, 1)
    notary.refuse = "title_too_long"
    with pytest.raises(ContractError):
        again.anchor_now()
    assert again.last_anchored == head  # a refused anchor is not counted as done


def test_only_the_members_heads_the_chain_holds_are_confirmed(log: AuditLog) -> None:
    notary = MemoryNotary(MEMBER)
    anchorer = AuditAnchorer(log, notary, owner=MEMBER, interval_s=0)
    _fill(log, 2)
    first = anchorer.anchor_now()
    _fill(log, 2)
    second = anchorer.anchor_now()
    assert first is not None and second is not None
    # Someone else anchors a look-alike title: not this member's, so not read back at all.
    notary.table.append((OTHER, f"{ANCHOR_TITLE_PREFIX}9", "ab" * 32))
    # A tamperer adds a row to the query table that the chain never held.
    forged = AuditHead(7, "cd" * 32)
    notary.table.append((MEMBER, anchor_args(forged)["title"], forged.entry_hash))
    heads = anchored_heads(notary, owner=MEMBER)
    assert heads == [first, second, forged]  # by size
    confirmed, unconfirmed = confirmed_heads(notary, heads, owner=MEMBER)
    assert (confirmed, unconfirmed) == ([first, second], [forged])
    assert log.verify(anchors=confirmed).ok

"""The `credit_flows` verifier (zhijin/credit/flows_verify.py): the projection's tables as the
committed payments events say they must be.  A faithful projection passes; a change to any
field of either table is named (table, key, field, expected, found), one mutation per field; a
missing or an unexplained row is named; a doubled movement is caught."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, update

from tests.credit.flow_events import (
    AMY,
    BOB,
    DAY_MS,
    NOW_MS,
    account_event,
    block_of,
    transfer_event,
)
from zhijin.credit.flows import CreditFlowsProjection, flow_accounts_table, flows_table
from zhijin.credit.flows_verify import ACCOUNT_FIELDS, FLOW_FIELDS, CreditFlowsVerifier
from zhijin.platform.projection_verify import Mismatch
from zhijin.platform.projections import BlockView

AT = NOW_MS - DAY_MS
BLOCKS = (
    block_of(1, account_event("amy-1", AMY), account_event("amy-2", AMY),
             account_event("bob", BOB, at_ms=2 * DAY_MS)),
    block_of(2, transfer_event("t-in", "bob", "amy-1", 150_000, at_ms=AT),
             transfer_event("t-own", "amy-1", "amy-2", 30_000, at_ms=AT)),
    block_of(3, transfer_event("t-lost", "bob", "amy-1", 9_000, at_ms=AT), ok=False),
    block_of(4, transfer_event("h-1", "bob", "amy-2", 10_000, at_ms=AT, flags=["pending"])),
    block_of(5, transfer_event("p-1", "bob", "amy-2", 10_000, at_ms=AT + 1,
                               flags=["post_pending_transfer"], pending_id="h-1"),
             transfer_event("t-unseen", "unseen", "amy-1", 7_000, at_ms=AT + 2)),
)  # fmt: skip


class _Chain:
    """The committed blocks as the verifier reads them (`StateAt.blocks`)."""

    def __init__(self, blocks: Sequence[BlockView]) -> None:
        self._blocks = blocks

    def blocks(self) -> Iterator[BlockView]:
        yield from self._blocks


@pytest.fixture
def engine() -> Engine:
    engine = create_engine("sqlite://")
    CreditFlowsProjection.metadata.create_all(engine)
    projection = CreditFlowsProjection()
    for block in BLOCKS:
        with engine.begin() as conn:
            projection.apply(conn, block)
    return engine


def _verify(engine: Engine, blocks: Sequence[BlockView] = BLOCKS) -> list[Mismatch]:
    with engine.connect() as conn:
        return CreditFlowsVerifier().verify(_Chain(blocks), conn)  # type: ignore[arg-type]


def _named(found: list[Mismatch]) -> list[tuple[str, str, str, Any, Any]]:
    return [(m.table, m.key, m.field, m.expected, m.found) for m in found]


def test_the_projection_as_applied_passes(engine: Engine) -> None:
    assert _verify(engine) == []


def test_the_verifier_recomputes_and_is_not_told_by_the_tables(engine: Engine) -> None:
    """A block the projection never applied (here: the history without block 2) shows as every
    row that block explains and every balance it moved, so the replay is its own."""
    found = _named(_verify(engine, [b for b in BLOCKS if b.height != 2]))
    assert ("credit_flows", "amy-1/t-in", "row", None, "present") in found
    assert ("credit_flows", "amy-2/t-own", "row", None, "present") in found
    assert ("credit_flow_accounts", "amy-1", "balance_minor", 7_000, 127_000) in found


ACCOUNT_CHANGES = {
    "owner": "did:key:zMallory",
    "custodian": "did:key:zOtherBank",
    "currency": "USD",
    "opened_at_ms": 3 * DAY_MS,
    "balance_minor": 1_000_000_000,
    "entries": 9,
    "height": 99,
}
FLOW_CHANGES = {
    "entry_no": 7,
    "direction": "debit",
    "amount_minor": 1_500_000,
    "balance_minor_after": 1_000_000,
    "from_other_owner": False,
    "time_ms": AT - 1,
    "height": 99,
}


def test_every_field_has_a_change_to_try() -> None:
    assert set(ACCOUNT_CHANGES) == set(ACCOUNT_FIELDS)
    assert set(FLOW_CHANGES) == set(FLOW_FIELDS)
    names = {c.name for c in flow_accounts_table.columns} - {"account_id"}
    assert names == set(ACCOUNT_FIELDS)
    assert {c.name for c in flows_table.columns} - {"account_id", "transfer_id"} == set(FLOW_FIELDS)


@pytest.mark.parametrize("field", sorted(ACCOUNT_CHANGES))
def test_a_changed_account_field_is_named(engine: Engine, field: str) -> None:
    table = flow_accounts_table
    with engine.connect() as conn:
        before = conn.execute(table.select().where(table.c.account_id == "amy-1")).one()
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.account_id == "amy-1")
            .values({field: ACCOUNT_CHANGES[field]})
        )
    found = _named(_verify(engine))
    assert found == [
        ("credit_flow_accounts", "amy-1", field, getattr(before, field), ACCOUNT_CHANGES[field])
    ]


@pytest.mark.parametrize("field", sorted(FLOW_CHANGES))
def test_a_changed_flow_field_is_named(engine: Engine, field: str) -> None:
    table = flows_table
    mine = (table.c.account_id == "amy-1") & (table.c.transfer_id == "t-in")
    with engine.connect() as conn:
        before = conn.execute(table.select().where(mine)).one()
    with engine.begin() as conn:
        conn.execute(update(table).where(mine).values({field: FLOW_CHANGES[field]}))
    found = _named(_verify(engine))
    assert found == [
        ("credit_flows", "amy-1/t-in", field, getattr(before, field), FLOW_CHANGES[field])
    ]


def test_a_missing_and_an_unexplained_row_are_named(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(flows_table).where(flows_table.c.transfer_id == "t-own"))
        conn.execute(
            flows_table.insert(),
            [{"account_id": "amy-1", "transfer_id": "t-forged", "entry_no": 9,
              "direction": "credit", "amount_minor": 500_000, "balance_minor_after": 0,
              "from_other_owner": True, "time_ms": AT, "height": 2}],
        )  # fmt: skip
        conn.execute(
            flow_accounts_table.insert(),
            [{"account_id": "ghost", "owner": AMY, "custodian": None, "currency": "CNY",
              "opened_at_ms": 0, "balance_minor": 0, "entries": 0, "height": 1}],
        )  # fmt: skip
    assert _named(_verify(engine)) == [
        ("credit_flows", "amy-1/t-own", "row", "present", None),
        ("credit_flows", "amy-2/t-own", "row", "present", None),
        ("credit_flows", "amy-1/t-forged", "row", None, "present"),
        ("credit_flow_accounts", "ghost", "row", None, "present"),
    ]
    with engine.begin() as conn:
        conn.execute(delete(flow_accounts_table).where(flow_accounts_table.c.account_id == "bob"))
    assert ("credit_flow_accounts", "bob", "row", "present", None) in _named(_verify(engine))


def test_a_movement_seen_twice_on_chain_is_kept_once_by_both() -> None:
    engine = create_engine("sqlite://")
    CreditFlowsProjection.metadata.create_all(engine)
    blocks = [*BLOCKS, BLOCKS[1], block_of(6, *BLOCKS[1].txs[0].events)]
    projection = CreditFlowsProjection()
    for block in blocks:
        with engine.begin() as conn:
            projection.apply(conn, block)
    assert _verify(engine, blocks) == []


def test_a_movement_the_chain_never_committed_shows_in_the_balances(engine: Engine) -> None:
    """Rows applied from a block that is not the chain's: both accounts' entries and balances
    are off, and the rows themselves are unexplained."""
    projection = CreditFlowsProjection()
    doubled = block_of(6, transfer_event("t-in-again", "bob", "amy-1", 150_000, at_ms=AT))
    with engine.begin() as conn:
        projection.apply(conn, doubled)
    found = _named(_verify(engine))
    assert ("credit_flows", "amy-1/t-in-again", "row", None, "present") in found
    assert ("credit_flows", "bob/t-in-again", "row", None, "present") in found
    assert ("credit_flow_accounts", "amy-1", "balance_minor", 127_000, 277_000) in found

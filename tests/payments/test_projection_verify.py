"""Projection tampering is caught: `zhijin projections verify`, the trial balance (service, CLI,
API) and `GET /api/v1/projections/verify`, on SQLite and PostgreSQL.

One node per engine runs a small workload (deposits, a transfer, a hold partly posted, a voided
hold, an anchor); each test then changes the platform database the way someone with write
access to it could, checks what is reported, and puts the rows back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, delete, insert, select, update
from typer.testing import CliRunner

from tests.conftest import pg_base_url
from zhijin.cli import app as cli_app
from zhijin.node.app import create_app
from zhijin.node.modules import default_projection_verifiers
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.notary import service as notary
from zhijin.notary.projection import anchors_table
from zhijin.payments import service
from zhijin.payments.projection import (
    accounts_table,
    entries_table,
    totals_table,
    transfers_table,
)
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.projection_verify import Mismatch, ProjectionReport, verify_projections
from zhijin.platform.scratch import scratch_schema

ALICE = "did:key:z6MkVerifyAlice"
BOB = "did:key:z6MkVerifyBob"
MILLION_CNY = 1_000_000 * 100  # minor units (fen)
DOC_HASH = "ab" * 32


def _settings(data: Path, url: str) -> Settings:
    return Settings(
        data=data,
        database_url=url,
        platform_database_url=url,
        block_interval_ms=5,
        password_hashing="test",
        audit_anchor_interval_s=0,  # no anchor blocks arriving while a test looks
    )


def _workload(platform: Platform) -> None:
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    service.open_accounts(
        platform,
        gateway,
        accounts=[
            {"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"},
            {"id": "alice", "owner": ALICE, "currency": "CNY", "kind": "customer"},
            {"id": "bob", "owner": BOB, "currency": "CNY", "kind": "customer"},
        ],
    )

    def move(transfer_id: str, debit: str, credit: str, amount: int, **extra: Any) -> None:
        request = {
            "id": transfer_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "currency": "CNY",
            **extra,
        }
        service.transfer(platform, gateway, request=request)

    move("dep-a", "settle", "alice", 50_000)
    move("dep-b", "settle", "bob", 7_000)
    move("a-b", "alice", "bob", 1_200)
    move("hold-1", "alice", "bob", 3_000, flags=["pending"])
    service.resolve_pending(
        platform, gateway, pending_id="hold-1", transfer_id="hold-1-post", post=True, amount=2_000
    )
    move("hold-2", "bob", "alice", 500, flags=["pending"])
    service.resolve_pending(
        platform, gateway, pending_id="hold-2", transfer_id="hold-2-void", post=False
    )
    notary.anchor(gateway, document_hash=DOC_HASH, title="contract 7")
    head = platform.node.head.height
    assert platform.projections.wait_for(head, timeout_s=30)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    data = tmp_path_factory.mktemp("verify")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data / 'zhijin.db'}"
        else:
            scratch = stack.enter_context(scratch_schema(pg_base_url(), prefix="zt"))
            assert scratch is not None
            url = scratch
        settings = _settings(data, url)
        init_data_dir(settings, members=1)
        platform = stack.enter_context(Platform(settings))
        _workload(platform)
        yield platform


def _verify(platform: Platform) -> ProjectionReport:
    return verify_projections(
        platform.store, platform.platform_engine, default_projection_verifiers()
    )


def _where(table: Table, key: dict[str, Any]) -> Any:
    return [table.c[name] == value for name, value in key.items()]


@contextmanager
def changed(platform: Platform, table: Table, key: dict[str, Any], **values: Any) -> Iterator[None]:
    """Update one row, then put its old values back."""
    engine = platform.platform_engine
    with engine.begin() as conn:
        old = conn.execute(select(table).where(*_where(table, key))).one()._mapping
        conn.execute(update(table).where(*_where(table, key)).values(**values))
    now = {name: values.get(name, value) for name, value in key.items()}  # a key may change
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                update(table).where(*_where(table, now)).values(**{n: old[n] for n in values})
            )


@contextmanager
def removed(platform: Platform, table: Table, key: dict[str, Any]) -> Iterator[None]:
    engine = platform.platform_engine
    with engine.begin() as conn:
        old = dict(conn.execute(select(table).where(*_where(table, key))).one()._mapping)
        conn.execute(delete(table).where(*_where(table, key)))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(insert(table).values(**old))


@contextmanager
def added(
    platform: Platform, table: Table, row: dict[str, Any], key: dict[str, Any]
) -> Iterator[None]:
    engine = platform.platform_engine
    with engine.begin() as conn:
        conn.execute(insert(table).values(**row))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(delete(table).where(*_where(table, key)))


def _named(report: ProjectionReport) -> set[tuple[str, str, str, str]]:
    return {(m.domain, m.table, m.key, m.field) for m in report.mismatches}


def _row(platform: Platform, table: Table, **key: Any) -> dict[str, Any]:
    with platform.platform_engine.connect() as conn:
        return dict(conn.execute(select(table).where(*_where(table, key))).one()._mapping)


def test_untampered_tables_verify_clean(world: Platform) -> None:
    report = _verify(world)
    assert report.ok, report.to_json()
    assert report.heights["payments"] == report.heights["notary"] == world.node.head.height
    for source in ("chain", "projection"):
        books = service.trial_balance(world, source=source)
        assert books["ok"] and books["balanced"] and books["projections"]["ok"], books


def test_a_million_added_to_an_account_row_is_named_everywhere(world: Platform) -> None:
    alice = _row(world, accounts_table, id="alice")
    with changed(
        world,
        accounts_table,
        {"id": "alice"},
        credits_posted=alice["credits_posted"] + MILLION_CNY,
    ):
        # What the customer would see: the false balance comes from this row.
        shown = service.get_account(world, account_id="alice")["balance_posted"]
        assert shown == alice["credits_posted"] - alice["debits_posted"] + MILLION_CNY
        report = _verify(world)
        assert not report.ok and report.mismatches_total == 1
        assert report.mismatches[0] == Mismatch(
            "payments",
            "payments_accounts",
            "alice",
            "credits_posted",
            alice["credits_posted"],
            alice["credits_posted"] + MILLION_CNY,
        )
        for source in ("chain", "projection"):  # both sums still balance: only the check sees it
            books = service.trial_balance(world, source=source)
            assert books["balanced"] and not books["ok"]
            assert books["projections"]["mismatches"][0]["key"] == "alice"
    assert _verify(world).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("owner", "did:key:z6MkSomeoneElse"),
        ("custodian", "did:key:z6MkSomeoneElse"),
        ("currency", "USD"),
        ("exponent", 3),
        ("kind", "merchant"),
        ("flags", ""),
        ("credit_limit", 1_000_000),
        ("reference", "forged"),
        ("status", "frozen"),
        ("created_at_ms", 1),
        ("created_height", 999),
        ("debits_pending", 1),
        ("debits_posted", 1),
        ("credits_pending", 1),
        ("credits_posted", 1),
    ],
)
def test_each_account_column_is_vouched_for(world: Platform, column: str, value: Any) -> None:
    with changed(world, accounts_table, {"id": "bob"}, **{column: value}):
        assert ("payments", "payments_accounts", "bob", column) in _named(_verify(world))


def test_entries_are_checked_against_the_posted_counters(world: Platform) -> None:
    first = {"account_id": "bob", "entry_no": 1}
    with changed(
        world, entries_table, first, amount=_row(world, entries_table, **first)["amount"] + 1
    ):
        named = _named(_verify(world))
        assert ("payments", "payments_entries", "bob", "sum of credit entries") in named
        assert ("payments", "payments_entries", "bob#1", "balance") in named  # running balance
    with changed(world, entries_table, first, balance=123):
        assert _named(_verify(world)) == {("payments", "payments_entries", "bob#1", "balance")}
    last = {"account_id": "alice", "entry_no": _row(world, accounts_table, id="alice")["entries"]}
    with removed(world, entries_table, last):
        named = _named(_verify(world))
        assert ("payments", "payments_entries", "alice", "sum of debit entries") in named
        assert ("payments", "payments_accounts", "alice", "entries") in named
    with changed(world, entries_table, first, entry_no=9):
        assert ("payments", "payments_entries", "bob#9", "entry_no") in _named(_verify(world))
    with changed(world, accounts_table, {"id": "bob"}, entries=99):
        assert _named(_verify(world)) == {("payments", "payments_accounts", "bob", "entries")}
    assert _verify(world).ok


def test_rows_without_records_and_totals_are_caught(world: Platform) -> None:
    forged = {**_row(world, accounts_table, id="bob"), "id": "mallory"}
    with added(world, accounts_table, forged, {"id": "mallory"}):
        assert ("payments", "payments_accounts", "mallory", "row") in _named(_verify(world))
    with removed(world, accounts_table, {"id": "bob"}):
        report = _verify(world)
        missing = [m for m in report.mismatches if m.key == "bob" and m.field == "row"]
        assert missing and missing[0].expected == "present" and missing[0].found is None
    with changed(world, totals_table, {"currency": "CNY"}, credits_posted="1"):
        assert _named(_verify(world)) == {
            ("payments", "payments_currency_totals", "CNY", "credits_posted")
        }
    with changed(world, totals_table, {"currency": "CNY"}, accounts=2):
        assert ("payments", "payments_currency_totals", "CNY", "accounts") in _named(_verify(world))
    assert _verify(world).ok


@pytest.mark.parametrize(
    ("transfer_id", "column", "value"),
    [
        ("a-b", "amount", 1),
        ("a-b", "debit_account_id", "bob"),
        ("a-b", "credit_account_id", "alice"),
        ("a-b", "currency", "USD"),
        ("a-b", "kind", "fee"),
        ("a-b", "pending_id", "hold-1"),
        ("a-b", "parent_id", "dep-a"),
        ("a-b", "height", 1),
        ("a-b", "time_ms", 1),
        ("a-b", "tx_hash", "00" * 32),
        ("a-b", "record", "{}"),
        ("a-b", "hold_status", "pending"),
        ("hold-1", "hold_status", "voided"),
        ("hold-1", "resolved_by", "hold-2-void"),
        ("hold-1", "resolved_at_ms", 1),
        ("hold-2", "hold_status", "posted"),
    ],
)
def test_each_transfer_column_is_vouched_for(
    world: Platform, transfer_id: str, column: str, value: Any
) -> None:
    with changed(world, transfers_table, {"id": transfer_id}, **{column: value}):
        named = _named(_verify(world))
        assert ("payments", "payments_transfers", transfer_id, column) in named


def test_a_transfer_row_without_a_record_is_caught(world: Platform) -> None:
    forged = {**_row(world, transfers_table, id="a-b"), "id": "forged"}
    with added(world, transfers_table, forged, {"id": "forged"}):
        assert _named(_verify(world)) == {("payments", "payments_transfers", "forged", "row")}
    with removed(world, transfers_table, {"id": "a-b"}):
        assert _named(_verify(world)) == {("payments", "payments_transfers", "a-b", "row")}
    assert _verify(world).ok


def test_the_notary_table_the_audit_anchors_come_from_is_checked(world: Platform) -> None:
    with changed(world, anchors_table, {"hash": DOC_HASH}, owner="did:key:z6MkForger"):
        assert _named(_verify(world)) == {("notary", "notary_anchors", DOC_HASH, "owner")}
    with removed(world, anchors_table, {"hash": DOC_HASH}):
        assert _named(_verify(world)) == {("notary", "notary_anchors", DOC_HASH, "row")}
    assert _verify(world).ok


def test_the_cli_and_the_api_report_a_tampered_row(world: Platform) -> None:
    runner = CliRunner()
    data = str(world.settings.data)
    env = {
        "ZHIJIN_DATABASE_URL": world.settings.database_url or "",
        "ZHIJIN_PLATFORM_DATABASE_URL": world.settings.platform_database_url or "",
        "LC_ALL": "en_US.UTF-8",  # the assertions read English output
    }
    clean = runner.invoke(cli_app, ["projections", "verify", "--data", data], env=env)
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["ok"] is True
    alice = _row(world, accounts_table, id="alice")
    with changed(
        world, accounts_table, {"id": "alice"}, credits_posted=alice["credits_posted"] + MILLION_CNY
    ):
        result = runner.invoke(cli_app, ["projections", "verify", "--data", data], env=env)
        assert result.exit_code == 1
        body = json.loads(result.output[: result.output.rindex("}") + 1])
        assert body["mismatches"][0] | {"expected": None, "found": None} == {
            "domain": "payments",
            "table": "payments_accounts",
            "key": "alice",
            "field": "credits_posted",
            "expected": None,
            "found": None,
        }
        assert "1 projected values differ from the chain" in result.output
        token = (world.settings.data / "operator-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with TestClient(create_app(platform=world), base_url="https://testserver") as client:
            assert client.get("/api/v1/projections/verify").status_code == 401
            verified = client.get("/api/v1/projections/verify", headers=headers)
            assert verified.status_code == 200 and verified.json()["ok"] is False
            found = verified.json()["mismatches"][0]["found"]
            assert found == alice["credits_posted"] + MILLION_CNY
            books = client.get("/api/v1/payments/trial-balance", headers=headers).json()
            assert books["balanced"] is True and books["ok"] is False


def test_the_platform_database_is_read_in_one_snapshot(world: Platform) -> None:
    """A cursor the projector moves during a check is not seen to move: rows and cursor agree."""
    from zhijin.platform.projection_verify import snapshot
    from zhijin.platform.projections import cursors

    engine = world.platform_engine
    with engine.begin() as conn:
        conn.execute(insert(cursors).values(name="snapshot-test", height=1))
    try:
        with snapshot(engine) as view:
            query = select(cursors.c.height).where(cursors.c.name == "snapshot-test")
            assert view.execute(query).scalar() == 1
            with engine.begin() as conn:
                conn.execute(
                    update(cursors).where(cursors.c.name == "snapshot-test").values(height=2)
                )
            assert view.execute(query).scalar() == 1
    finally:
        with engine.begin() as conn:
            conn.execute(delete(cursors).where(cursors.c.name == "snapshot-test"))

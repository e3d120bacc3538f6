"""Shared fixtures: data directories, databases (SQLite and the real PostgreSQL), nodes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from zhijin.node.runtime import Platform, init_data_dir
from zhijin.platform.scratch import scratch_schema
from zhijin.platform.settings import Settings

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHARED_DIR = Path(
    os.environ.get("ZHIJIN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)


def pg_base_url() -> str:
    return os.environ.get("ZHIJIN_TEST_PG_URL", DEFAULT_PG_URL)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards.  Never skipped: if the
    server is not there the test fails, as CI must run these tests."""
    with scratch_schema(pg_base_url(), prefix="zt") as url:
        assert url is not None
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each chain test runs on both engines."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'chain.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db_platform(tmp_path: Path, db_url: str) -> Iterator[Platform]:
    """A running one-member platform whose chain and platform tables share `db_url` (SQLite
    and PostgreSQL), with fast blocks and cheap password hashing."""
    settings = Settings(
        data=tmp_path,
        database_url=db_url,
        platform_database_url=db_url,
        block_interval_ms=5,
        password_hashing="test",
    )
    init_data_dir(settings, members=1)
    with Platform(settings) as running:
        yield running


@pytest.fixture
def shared_dir() -> Path:
    assert SHARED_DIR.is_dir(), f"../shared not found at {SHARED_DIR} (set ZHIJIN_SHARED_DIR)"
    return SHARED_DIR

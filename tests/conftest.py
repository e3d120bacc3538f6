"""Shared fixtures: data directories, databases (SQLite and the real PostgreSQL), nodes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from zhijin.identity.rbac import current_matrix, install_matrix
from zhijin.node.modules import permission_matrix
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.platform import i18n
from zhijin.platform.scratch import scratch_schema

# A msgid missing from a catalog fails the test that meets it (in production it is logged).
i18n.set_strict(True)

# The fraud screen (zhijin/risk) is on by default on a node; the suites written before it pay
# many times a minute from one account, which it would rightly hold.  They run with it off, so
# payments behaves exactly as they expect; tests/risk (and bench/risk.py) switch it on.
os.environ.setdefault("ZHIJIN_RISK_SCREEN", "off")

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SHARED_DIR = Path(
    os.environ.get("ZHIJIN_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)


@pytest.fixture(autouse=True, scope="session")
def _node_permission_matrix() -> None:
    """Every test sees the matrix a node of these modules runs, whichever test ran first (a
    node or an app build installs the same one)."""
    install_matrix(permission_matrix())


@pytest.fixture(autouse=True)
def _restore_permission_matrix(_node_permission_matrix: None) -> Iterator[None]:
    """A test that adds a module and builds an app installs its matrix: undo it afterwards."""
    before = current_matrix()
    yield
    install_matrix(before)


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

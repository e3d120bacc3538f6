"""The data directory is owner-only: directories 0700, files 0600, secret files refused when
group or others hold any bit (chain/files.py)."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from zhijin.chain.files import LooseFileMode, touch_private, write_private
from zhijin.node.cluster import init_network
from zhijin.node.runtime import Platform, check_operator_token, init_data_dir
from zhijin.node.settings import Settings


def _settings(data: Path) -> Settings:
    return Settings(
        data=data, block_interval_ms=5, password_hashing="test", audit_anchor_interval_s=0
    )


def _modes(root: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_everything_in_a_new_data_directory_is_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "deep" / "var")
    init_data_dir(settings, members=3)
    platform = Platform(settings).start()
    try:
        with platform.platform_engine.connect() as conn:  # holds platform.db-wal open
            conn.execute(text("SELECT count(*) FROM identity_users")).scalar_one()
            running = _modes(settings.data)
    finally:
        platform.stop()
    names = {p.name for p in running}
    assert {"genesis.json", "operator-token", "vault.key", "chain.db", "platform.db"} <= names
    assert {"chain.db-wal", "platform.db-wal", "platform.db-shm", "node.lock"} <= names
    for modes in (running, _modes(settings.data)):
        for path, mode in modes.items():
            expected = 0o700 if path.is_dir() else 0o600
            assert mode == expected, f"{path} has mode {mode:04o}"
    assert stat.S_IMODE((tmp_path / "deep").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("secret", "what"),
    [
        ("operator-token", "operator token"),
        ("keys/member-0.key", "key file"),
        ("vault.key", "vault key file"),
    ],
)
def test_a_secret_file_open_to_others_stops_the_node(
    tmp_path: Path, secret: str, what: str
) -> None:
    settings = _settings(tmp_path / "var")
    init_data_dir(settings, members=1)
    path = settings.data / secret
    path.chmod(0o644)
    with pytest.raises(LooseFileMode) as refused:
        Platform(settings)
    assert refused.value.message == (
        f"{what} {path} has mode 0644: group or others may read it; run `chmod 600 {path}`"
    )
    path.chmod(0o600)
    Platform(settings).stop()


def test_an_operator_token_loosened_while_running_stops_working(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "var")
    init_data_dir(settings, members=1)
    token = (settings.data / "operator-token").read_text().strip()
    assert check_operator_token(settings, token)
    (settings.data / "operator-token").chmod(0o640)
    with pytest.raises(LooseFileMode, match="operator token"):
        check_operator_token(settings, token)


def test_a_data_directory_open_to_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path / "var")
    init_data_dir(settings, members=1)
    settings.data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="zhijin.platform"):
        Platform(settings).stop()
    assert f"data directory {settings.data} has mode 0755" in caplog.text
    assert "chmod 700" in caplog.text


def test_rewriting_a_loose_file_makes_it_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(path, "newer", exclusive=True)
    assert path.read_text() == "new" and not (tmp_path / "token.tmp").exists()


def test_a_local_cluster_layout_is_owner_only(tmp_path: Path) -> None:
    root = tmp_path / "net"
    init_network(root, members=2, nats=1)
    modes = _modes(root)
    assert any(p.name == "member-1.key" for p in modes) and len(modes) > 8
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} has mode {mode:04o}"


def test_touching_an_open_database_keeps_sqlites_locks(tmp_path: Path) -> None:
    # Closing any descriptor of a file drops the process's POSIX locks on it, SQLite's too: a
    # second engine on an open database must not open the file to "create" it.
    path = tmp_path / "shared.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # a RESERVED lock: no other writer until COMMIT
    try:
        touch_private(path)
        other = subprocess.run(
            [sys.executable, "-c", _TRY_WRITE, str(path)], capture_output=True, text=True
        )
        assert other.stdout.strip() == "locked", other.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()


_TRY_WRITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
    conn.execute("BEGIN IMMEDIATE")
    print("written")
except sqlite3.OperationalError:
    print("locked")
"""

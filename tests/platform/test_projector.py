"""The projector process: query tables applied in a child process, on SQLite and PostgreSQL.

Killing the child loses nothing and applies nothing twice (a new child resumes from the cursors);
stopping the node stops the child; a node process that dies takes its child with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments import service
from zhijin.platform.gateway import MemberGateway

EXIT_WAIT_S = 20


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not reaped by its new parent, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        # Gone before the open, or reaped between the open and the read (ESRCH).
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + EXIT_WAIT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def platform(db_platform: Platform) -> Platform:
    return db_platform


def _pay(platform: Platform, gateway: MemberGateway, first: int, count: int) -> None:
    for index in range(first, first + count):
        service.transfer(
            platform,
            gateway,
            request={
                "id": f"p-{index}",
                "debit_account_id": "settle",
                "credit_account_id": f"c-{index % 3}",
                "amount": 100 + index,
                "currency": "CNY",
            },
        )


def _statement_ids(platform: Platform, account_id: str) -> list[str]:
    page = service.statement(platform, account_id=account_id, after_entry=0, limit=500)
    assert page["next_after_entry"] is None
    return [entry["transfer_id"] for entry in page["entries"]]


def test_a_killed_projector_is_replaced_and_nothing_is_lost_or_doubled(
    platform: Platform,
) -> None:
    gateway = MemberGateway(platform.node)
    member = platform.node.key.did
    service.open_accounts(
        platform,
        gateway,
        accounts=[{"id": "settle", "owner": member, "currency": "CNY", "kind": "settlement"}]
        + [
            {
                "id": f"c-{i}",
                "owner": f"did:key:z6MkCustomer{i}",
                "currency": "CNY",
                "kind": "customer",
            }
            for i in range(3)
        ],
    )
    first_pid = platform.projections.worker_pid
    assert first_pid is not None and first_pid != os.getpid() and _alive(first_pid)
    _pay(platform, gateway, 0, 6)  # each call waits for the projection: read-your-writes

    os.kill(first_pid, signal.SIGKILL)
    assert _wait_gone(first_pid)
    # Blocks committed while no projector runs are applied by the next one.
    committed = [
        gateway.submit(
            "payments",
            "create_transfers",
            {
                "transfers": [
                    {
                        "id": f"q-{i}",
                        "debit_account_id": "settle",
                        "credit_account_id": "c-0",
                        "amount": 7,
                        "currency": "CNY",
                    }
                ]
            },
        )
        for i in range(4)
    ]
    assert all(result["status"] == "ok" for result in committed)
    height = max(result["height"] for result in committed)
    assert platform.projections.wait_for(height, timeout_s=EXIT_WAIT_S)
    second_pid = platform.projections.worker_pid
    assert second_pid not in (None, first_pid) and _alive(second_pid)

    _pay(platform, gateway, 6, 3)
    assert _statement_ids(platform, "c-0") == ["p-0", "p-3", "q-0", "q-1", "q-2", "q-3", "p-6"]
    assert sorted(_statement_ids(platform, "settle")) == sorted(
        [f"p-{i}" for i in range(9)] + [f"q-{i}" for i in range(4)]
    )
    chain = service.trial_balance(platform, source="chain")
    projected = service.trial_balance(platform, source="projection")
    assert projected["currencies"] == chain["currencies"] and chain["balanced"]


def test_stopping_the_node_stops_its_projector(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path, block_interval_ms=5, password_hashing="test")
    init_data_dir(settings, members=1)
    platform = Platform(settings).start()
    pid = platform.projections.worker_pid
    assert pid is not None and _alive(pid)
    platform.stop()
    assert _wait_gone(pid)
    assert platform.projections.heights["payments"] == platform.store.head_height()


def test_a_projector_whose_node_process_dies_exits(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from zhijin.node.runtime import Platform, init_data_dir
        from zhijin.node.settings import Settings

        if __name__ == "__main__":
            settings = Settings(data=Path({str(tmp_path)!r}), password_hashing="test")
            init_data_dir(settings, members=1)
            platform = Platform(settings).start()
            print(platform.projections.worker_pid, flush=True)
            time.sleep(120)
        """
    )
    (tmp_path / "node.py").write_text(script)
    node = subprocess.Popen(
        [sys.executable, str(tmp_path / "node.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert node.stdout is not None
        pid = int(node.stdout.readline())
        assert _alive(pid)
        node.kill()
        node.wait(EXIT_WAIT_S)
        assert _wait_gone(pid), "the projector outlived its node"
    finally:
        node.kill()


@pytest.mark.parametrize("mode", ["tuned", "default"])
def test_the_projector_process_takes_the_nodes_gc_mode(tmp_path: Path, mode: str) -> None:
    """ZHIJIN_GC reaches the projector child: it logs the tuning exactly when the node does."""
    script = textwrap.dedent(
        f"""
        import logging
        from pathlib import Path
        from zhijin.node.runtime import Platform, init_data_dir
        from zhijin.node.settings import Settings

        if __name__ == "__main__":
            logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
            settings = Settings(data=Path({str(tmp_path)!r}), password_hashing="test",
                                gc={mode!r})
            init_data_dir(settings, members=1)
            platform = Platform(settings).start()
            platform.stop()
        """
    )
    (tmp_path / "node.py").write_text(script)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "node.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    tuned_lines = [line for line in done.stderr.splitlines() if "garbage collector tuned" in line]
    in_child = [line for line in tuned_lines if "(projector)" in line]
    if mode == "tuned":
        assert len(in_child) == 1, done.stderr
        assert len(tuned_lines) == 2, done.stderr  # the node's process and the projector's
    else:
        assert tuned_lines == [], done.stderr

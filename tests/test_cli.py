"""The `zhijin` command end to end on a temporary data directory."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from zhijin.chain.merkle import verify_consistency_json, verify_inclusion_json
from zhijin.cli import app

runner = CliRunner(env={"LC_ALL": "en_US.UTF-8"})  # these tests read English output


def zhijin(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo chain for the module (its seeding tells 200 days of story: ~20 s)."""
    data = tmp_path_factory.mktemp("cli") / "var"
    code, out = zhijin("chain", "init", "--data", str(data), "--members", "3", "--demo")
    assert code == 0, out
    return data


@pytest.fixture
def data(seeded: Path, tmp_path: Path) -> Path:
    """A copy of the demo chain of its own for each test (some tamper with it)."""
    copy = tmp_path / "var"
    shutil.copytree(seeded, copy)
    return copy


def test_init_writes_private_keys_and_refuses_to_overwrite(data: Path) -> None:
    keys = sorted((data / "keys").glob("*.key"))
    assert len(keys) == 3
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    assert stat.S_IMODE((data / "operator-token").stat().st_mode) == 0o600
    with pytest.raises(Exception, match="in use"):
        runner.invoke(app, ["chain", "init", "--data", str(data)], catch_exceptions=False)


def test_anchor_verify_and_inspect(data: Path, tmp_path: Path) -> None:
    code, out = zhijin("chain", "status", "--data", str(data))
    seeded = json.loads(out)["header"]["log_size"]  # the demo data's txs
    document = tmp_path / "contract.txt"
    document.write_bytes(b"supply contract, final version\n")
    code, out = zhijin(
        "notary", "anchor", str(document), "--title", "contract", "--data", str(data)
    )
    assert code == 0, out
    receipt = json.loads(out)
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(out)

    code, out = zhijin("notary", "verify", str(receipt_file), str(document), "--data", str(data))
    assert code == 0 and "receipt verified" in out
    other = tmp_path / "other.txt"
    other.write_bytes(b"a different file")
    code, out = zhijin(
        "notary", "verify", str(receipt_file), str(other), "--genesis", str(data / "genesis.json")
    )
    assert code == 1 and "FAIL file hash matches" in out

    tx_hash = receipt["tx"]["hash"]
    code, out = zhijin("chain", "tx", tx_hash, "--data", str(data))
    assert code == 0 and json.loads(out)["result"]["status"] == "ok"
    height = json.loads(out)["height"]
    code, out = zhijin("chain", "block", str(height), "--data", str(data))
    assert tx_hash in json.loads(out)["txs"]
    code, out = zhijin("chain", "status", "--data", str(data))
    assert json.loads(out)["height"] == height

    code, out = zhijin("chain", "proof", "inclusion", tx_hash, "--data", str(data))
    proof = json.loads(out)
    verify_inclusion_json(proof)
    assert proof["tree_size"] == seeded + 1 and proof["leaf_index"] == seeded
    code, out = zhijin(
        "chain", "proof", "consistency", "--from", "1", "--to", str(seeded + 1), "--data", str(data)
    )
    verify_consistency_json(json.loads(out))
    code, _ = zhijin(
        "chain", "proof", "consistency", "--from", "3", "--to", str(seeded + 9), "--data", str(data)
    )
    assert code == 1


def test_chain_verify_exit_codes(data: Path) -> None:
    code, out = zhijin("chain", "verify", "--data", str(data))
    assert code == 0 and json.loads(out)["ok"] is True
    engine = create_engine(f"sqlite:///{data / 'chain.db'}")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE chain_txs SET body = replace(body, 'Invoice', 'Invoicf') WHERE height = 2")
        )
    engine.dispose()
    code, out = zhijin("chain", "verify", "--data", str(data))
    assert code == 1
    assert json.loads(out)["bad_height"] == 2


def test_unknown_tx_and_missing_data_dir(tmp_path: Path, data: Path) -> None:
    code, _ = zhijin("chain", "tx", "00" * 32, "--data", str(data))
    assert code == 1
    code, _ = zhijin("chain", "tx", "not-hex", "--data", str(data))
    assert code == 1
    result = runner.invoke(app, ["chain", "status", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code != 0


def test_reindex_rebuilds_the_query_tables(data: Path) -> None:
    engine = create_engine(f"sqlite:///{data / 'platform.db'}")
    with engine.begin() as conn:
        before = conn.execute(text("SELECT hash FROM notary_anchors ORDER BY hash")).all()
        conn.execute(text("DELETE FROM notary_anchors"))
    code, out = zhijin("reindex", "--data", str(data))
    assert code == 0, out
    with engine.connect() as conn:
        after = conn.execute(text("SELECT hash FROM notary_anchors ORDER BY hash")).all()
    engine.dispose()
    # The demo's three documents, the onboarding customer's KYC commitment, and the audit head
    # its node anchored when it stopped.
    assert len(before) == 5 and after == before


def test_errors_and_main_outputs_follow_the_terminal_language(tmp_path: Path) -> None:
    data, empty = tmp_path / "lang", tmp_path / "empty"
    chinese = CliRunner(env={"LC_ALL": "zh_CN.UTF-8"})
    made = chinese.invoke(app, ["chain", "init", "--data", str(data), "--members", "1"])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("链 zhijin-local：创世区块 ")
    assert "  成员 " in made.output
    refused = chinese.invoke(app, ["serve", "--data", str(empty)])
    assert refused.exit_code == 1
    assert f"错误：{empty} 中没有创世文件：请先运行 `zhijin chain init --data {empty}`" in (
        refused.output
    )
    english = CliRunner(env={"LC_ALL": "en_US.UTF-8"}).invoke(app, ["serve", "--data", str(empty)])
    assert english.exit_code == 1 and f"error: no genesis in {empty}" in english.output


def test_a_refusal_names_its_code_in_the_terminal_language(tmp_path: Path) -> None:
    """`main` (the installed command) answers a ZhijinError with its code and template."""
    missing = tmp_path / "nowhere"
    command = [sys.executable, "-m", "zhijin", "chain", "status", "--data", str(missing)]
    for language, expected in (
        ("zh_CN.UTF-8", "错误 [data_dir]：数据目录不可用。"),
        ("C", "error [data_dir]: "),
    ):
        answer = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": language},
            check=False,
        )
        assert answer.returncode == 2, answer.stderr
        assert answer.stderr.startswith(expected)
        assert str(missing) in answer.stderr  # the diagnostic line keeps the path

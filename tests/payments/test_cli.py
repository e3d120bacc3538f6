"""`zhijin pay ...` against a data directory: open, pay, hold and post, statement, exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhijin.cli import app
from zhijin.node.runtime import init_data_dir
from zhijin.node.settings import Settings
from zhijin.payments.service import PaymentRefused

runner = CliRunner()


def pay(data: Path, *args: str) -> dict:
    result = runner.invoke(app, ["pay", *args, "--data", str(data)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_pay_commands(tmp_path: Path) -> None:
    genesis = init_data_dir(Settings(data=tmp_path), members=1)
    member = genesis.members[0].did
    pay(
        tmp_path,
        "accounts",
        "open",
        "settle",
        "--owner",
        member,
        "--currency",
        "CNY",
        "--kind",
        "settlement",
    )
    pay(tmp_path, "accounts", "open", "alice", "--owner", "did:key:zCliAlice", "--currency", "CNY")
    pay(tmp_path, "accounts", "open", "bob", "--owner", "did:key:zCliBob", "--currency", "CNY")
    pay(
        tmp_path,
        "transfer",
        "d-1",
        "--from",
        "settle",
        "--to",
        "alice",
        "--amount",
        "5000",
        "--currency",
        "CNY",
    )
    held = pay(
        tmp_path,
        "transfer",
        "h-1",
        "--from",
        "alice",
        "--to",
        "bob",
        "--amount",
        "1000",
        "--currency",
        "CNY",
        "--pending",
    )
    assert held["transfer"]["hold"]["hold_status"] == "pending"
    pay(tmp_path, "transfer", "h-1-post", "--post", "h-1", "--amount", "600")
    statement = pay(tmp_path, "accounts", "statement", "alice")
    assert [e["balance"] for e in statement["entries"]] == [5000, 4400]
    assert pay(tmp_path, "accounts", "show", "bob")["balance_posted"] == 600
    assert pay(tmp_path, "trial-balance", "--chain")["balanced"] is True
    listed = pay(tmp_path, "accounts", "list", "--owner", "did:key:zCliBob")
    assert [a["id"] for a in listed["accounts"]] == ["bob"]
    camt = runner.invoke(app, ["pay", "export-camt053", "alice", "--data", str(tmp_path)])
    assert camt.exit_code == 0 and "camt.053.001.08" in camt.output
    refused = runner.invoke(
        app,
        [
            "pay",
            "transfer",
            "x-1",
            "--from",
            "bob",
            "--to",
            "alice",
            "--amount",
            "10000",
            "--currency",
            "CNY",
            "--data",
            str(tmp_path),
        ],
    )
    assert isinstance(refused.exception, PaymentRefused)
    assert refused.exception.code == "exceeds_credits"


def test_accounts_are_named_by_iban_from_the_cli(tmp_path: Path) -> None:
    genesis = init_data_dir(Settings(data=tmp_path), members=1)
    pay(
        tmp_path, "accounts", "open", "shop", "--owner", genesis.members[0].did, "--currency", "EUR"
    )
    named = pay(tmp_path, "accounts", "iban", "shop", "DE89 3704 0044 0532 0130 00")
    assert named == {"account_id": "shop", "iban": "DE**3000", "registered": True}
    assert pay(tmp_path, "accounts", "iban", "shop")["iban"] == "DE**3000"
    bad = runner.invoke(
        app, ["pay", "accounts", "iban", "shop", "DE00370400440532013000", "--data", str(tmp_path)]
    )
    assert getattr(bad.exception, "code", None) == "iban_invalid"
    both = runner.invoke(
        app, ["pay", "accounts", "iban", "shop", "DE89370400440532013000", "--remove"]
    )
    assert both.exit_code == 2
    assert pay(tmp_path, "accounts", "iban", "shop", "--remove")["removed"] is True
    assert pay(tmp_path, "accounts", "iban", "shop")["iban"] is None


def test_trial_balance_fails_on_a_tampered_account_row(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    genesis = init_data_dir(Settings(data=tmp_path), members=1)
    member = genesis.members[0].did
    pay(
        tmp_path,
        "accounts",
        "open",
        "settle",
        "--owner",
        member,
        "--currency",
        "CNY",
        "--kind",
        "settlement",
    )
    pay(tmp_path, "accounts", "open", "alice", "--owner", "did:key:zCliAlice", "--currency", "CNY")
    pay(
        tmp_path,
        "transfer",
        "d-1",
        "--from",
        "settle",
        "--to",
        "alice",
        "--amount",
        "5000",
        "--currency",
        "CNY",
    )
    clean = pay(tmp_path, "trial-balance")
    assert clean["ok"] is True and clean["projections"]["mismatches_total"] == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    with engine.begin() as conn:  # someone with write access to the platform database
        conn.execute(
            text(
                "UPDATE payments_accounts SET credits_posted = credits_posted + 100000000"
                " WHERE id = 'alice'"
            )
        )
    engine.dispose()
    for args in (["pay", "trial-balance"], ["pay", "trial-balance", "--chain"]):
        result = runner.invoke(app, [*args, "--data", str(tmp_path)], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        books = json.loads(result.output)
        assert books["balanced"] is True and books["ok"] is False  # the sums still balance
        (mismatch,) = books["projections"]["mismatches"]
        assert (mismatch["key"], mismatch["field"]) == ("alice", "credits_posted")
        assert (mismatch["expected"], mismatch["found"]) == (5000, 100_005_000)
    verified = runner.invoke(app, ["projections", "verify", "--data", str(tmp_path)])
    assert verified.exit_code == 1 and "payments_accounts" in verified.output


def test_a_write_committed_but_not_yet_visible_exits_3_with_its_tx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The projection's wait ends before it applied the block: the tx is on chain all the
    same, so the command says so (tx hash, height, retry advice) with its own exit status."""
    from zhijin import cli
    from zhijin.chain.store import ChainStore
    from zhijin.platform.projections import RETRY_AFTER_S, ProjectionRunner

    genesis = init_data_dir(Settings(data=tmp_path), members=1)
    member = genesis.members[0].did
    monkeypatch.setattr(ProjectionRunner, "wait_for", lambda *_args, **_kwargs: False)
    argv = ["zhijin", "pay", "accounts", "open", "late", "--owner", member, "--currency", "CNY"]
    monkeypatch.setattr("sys.argv", [*argv, "--data", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == cli.EXIT_COMMITTED_NOT_YET_VISIBLE == 3
    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert answer["committed"] is True and answer["visible"] is False
    assert answer["code"] == "committed_not_yet_visible"
    assert answer["projections"] == ["payments"] and answer["retry_after_s"] == RETRY_AFTER_S
    assert f"tx {answer['tx_hash']}" in err and "idempotent" in err and "error" not in err
    # It did commit: the tx is in the block named, and the account shows once visible.
    store = ChainStore(Settings(data=tmp_path).chain_database_url())
    stored = store.get_tx(bytes.fromhex(answer["tx_hash"]))
    store.close()
    assert stored is not None and stored.height == answer["height"]
    monkeypatch.undo()
    assert pay(tmp_path, "accounts", "show", "late")["id"] == "late"


def test_a_refusal_still_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zhijin import cli

    init_data_dir(Settings(data=tmp_path), members=1)
    argv = ["zhijin", "pay", "accounts", "iban", "nobody", "DE00370400440532013000"]
    monkeypatch.setattr("sys.argv", [*argv, "--data", str(tmp_path)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == cli.EXIT_REFUSED == 2
    assert "error [iban_invalid]" in capsys.readouterr().err

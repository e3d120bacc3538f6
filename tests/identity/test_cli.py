"""Operator commands: create-admin, audit verify (tampering, anchors), vault key rotation, and
the production rules on settings."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pyotp
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from zhijin.chain.crypto import KeyPair
from zhijin.chain.files import LooseFileMode
from zhijin.chain.tx import make_body, sign_tx
from zhijin.cli import app
from zhijin.identity.errors import MfaRequired
from zhijin.identity.rbac import Principal, Role
from zhijin.identity.service import RequestSource
from zhijin.identity.setup import IdentitySettingsError, load_vault_keys
from zhijin.node.runtime import Platform, init_data_dir
from zhijin.node.settings import Settings

runner = CliRunner(env={"LC_ALL": "en_US.UTF-8"})  # these tests read English output
PASSWORD = "correct horse battery staple 42"


def zhijin(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def _settings(data: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data": data,
        "block_interval_ms": 5,
        "password_hashing": "test",
        "audit_anchor_interval_s": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "var"
    code, out = zhijin("chain", "init", "--data", str(data), "--members", "1")
    assert code == 0, out
    return data


def _populate(data: Path, users: int = 3) -> Platform:
    """A platform with a few users, personal data and audit entries (returned stopped)."""
    platform = Platform(_settings(data)).start()
    try:
        for index in range(users):
            user = platform.identity.register(
                login=f"user{index}",
                password=PASSWORD,
                kind="individual",
                source=RequestSource(ip="10.0.0.1"),
            )
            principal = Principal(user_id=user.id, roles=frozenset({Role.CUSTOMER}))
            platform.personal.save_person(
                principal=principal,
                name="李四",
                resident_id="11010519491231002X",
                mobile="13800138000",
            )
    finally:
        platform.stop()
    return platform


def _sqlite(data: Path) -> object:
    return create_engine(f"sqlite:///{data / 'platform.db'}")


def test_the_commands_speak_chinese_in_a_chinese_terminal(data: Path, tmp_path: Path) -> None:
    chinese = CliRunner(env={"LC_ALL": "zh_CN.UTF-8"})
    made = chinese.invoke(
        app,
        ["identity", "create-admin", "--data", str(data), "--login", "zhang",
         "--password-stdin"],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "已为成员 did:key:" in made.output and "创建管理员 zhang" in made.output
    key = tmp_path / "prod.key"
    written = chinese.invoke(app, ["identity", "new-vault-key", "--out", str(key)])
    assert written.exit_code == 0 and f"保险库密钥文件已写入 {key}（权限 0600）" in written.output
    again = chinese.invoke(app, ["identity", "new-vault-key", "--out", str(key)])
    assert again.exit_code == 1 and f"错误：{key} 已存在；密钥文件从不覆盖" in again.output


def test_init_writes_a_private_local_vault_key(data: Path) -> None:
    key_file = data / "vault.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text())["origin"] == "local"


def test_create_admin_reads_the_password_from_stdin(data: Path) -> None:
    code, out = zhijin(
        "identity",
        "create-admin",
        "--data",
        str(data),
        "--login",
        "root",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, out
    assert PASSWORD not in out and "administrator root created" in out
    platform = Platform(_settings(data))
    try:
        issued = platform.identity.login(
            login="root", password=PASSWORD, source=RequestSource(ip="10.0.0.9")
        )
        assert issued.principal.roles == frozenset({Role.ADMIN})
        assert issued.principal.member_did == platform.node.key.did
    finally:
        platform.stop()
    code, out = zhijin(
        "identity",
        "create-admin",
        "--data",
        str(data),
        "--login",
        "root2",
        "--password-stdin",
        stdin="short\n",
    )
    assert code == 1 and "short" not in out


def test_create_admin_prompts_with_confirmation(data: Path) -> None:
    code, out = zhijin(
        "identity",
        "create-admin",
        "--data",
        str(data),
        "--login",
        "root",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert code == 0, out and PASSWORD not in out


def test_audit_verify_names_a_tampered_entry(data: Path) -> None:
    _populate(data)
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 0, out
    assert json.loads(out)["ok"] is True and json.loads(out)["entries_checked"] >= 6
    engine = _sqlite(data)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        # Whoever tampers has to get past the append-only trigger first.
        conn.execute(text("DROP TRIGGER identity_audit_no_update"))
        conn.execute(text("UPDATE identity_audit_log SET actor='user:someone-else' WHERE seq=3"))
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 1
    assert "audit log entry 3" in out and "does not match its hash" in out


def test_audit_verify_catches_removal_before_an_anchored_head(data: Path) -> None:
    platform = _populate(data)
    platform = Platform(_settings(data)).start()
    try:
        head = platform.audit_anchorer.anchor_now()
        assert head is not None and head.size >= 6
        assert platform.audit_anchorer.anchor_now() is None  # head did not move: no new anchor
        # Anyone can anchor a hash under that title; only the member's own anchors count.
        outsider = KeyPair.generate()
        body = make_body(
            chain_id=platform.genesis.chain_id,
            sender=outsider.did,
            nonce=1,
            contract="notary",
            method="anchor",
            args={"hash": "ee" * 32, "title": "zhijin identity audit head 2"},
            valid_until=platform.node.clock() + 60_000,
        )
        (admission,) = platform.node.submit(sign_tx(outsider, body))
        assert admission.future is not None
        assert admission.future.result(timeout=30)["status"] == "ok"
    finally:
        platform.stop()
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 0, out
    assert json.loads(out)["anchors_checked"] == 1
    engine = _sqlite(data)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER identity_audit_no_delete"))
        # Cut the tail: the remaining chain is still internally consistent.
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq >= :s"), {"s": head.size - 1})
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 1 and f"entry {head.size - 1}" in out and "anchored" in out


def test_periodic_anchoring_runs_in_the_background(data: Path) -> None:
    platform = Platform(_settings(data, audit_anchor_interval_s=0.05)).start()
    try:
        platform.identity.register(
            login="someone", password=PASSWORD, kind="individual", source=RequestSource(ip="x")
        )
        for _ in range(200):
            if platform.audit_anchorer.last_anchored is not None:
                break
            platform.audit_anchorer._stop.wait(0.05)
        assert platform.audit_anchorer.last_anchored == platform.identity.audit.head()
    finally:
        platform.stop()


def test_rotate_vault_key_keeps_data_readable_and_resumes(data: Path) -> None:
    _populate(data)
    before = json.loads((data / "vault.key").read_text())
    assert list(before["master_keys"]) == ["k1"]
    code, out = zhijin("identity", "rotate-vault-key", "--data", str(data), "--batch-rows", "2")
    assert code == 0, out
    assert "rewrapped" in out and "done" in out
    after = json.loads((data / "vault.key").read_text())
    assert after["active"] == "k2" and list(after["master_keys"]) == ["k2"]
    assert after["master_keys"]["k2"] != before["master_keys"]["k1"]
    assert stat.S_IMODE((data / "vault.key").stat().st_mode) == 0o600
    with _sqlite(data).connect() as conn:  # type: ignore[attr-defined]
        key_ids = {
            row[0] for row in conn.execute(text("SELECT key_id FROM identity_vault_records"))
        }
    assert key_ids == {"k2"}

    # An interrupted rotation: the new key is in the file, no record rewrapped yet.
    from zhijin.identity.setup import write_vault_keys
    from zhijin.platform.vault import VaultKeys

    keys = VaultKeys.from_json(after).with_new_key("k3")
    write_vault_keys(data / "vault.key", keys, origin="local")
    code, out = zhijin("identity", "rotate-vault-key", "--data", str(data))
    assert code == 0 and "resuming the rotation to master key k3" in out
    assert list(json.loads((data / "vault.key").read_text())["master_keys"]) == ["k3"]

    platform = Platform(_settings(data))
    try:
        user = platform.identity.store.user_by_login("user1")
        assert user is not None
        principal = Principal(user_id=user.id, roles=frozenset({Role.CUSTOMER}))
        person = platform.personal.read_person(
            principal=principal, subject_user_id=user.id, fields=["name"], purpose="own"
        )
        assert person == {"name": "李四"}
        assert platform.identity.user_keys(user_id=user.id).did_key.did == user.did
    finally:
        platform.stop()


def test_rotate_vault_key_refuses_while_the_node_runs(data: Path) -> None:
    platform = Platform(_settings(data))
    try:
        code, out = zhijin("identity", "rotate-vault-key", "--data", str(data))
        assert code == 1 and "stop it" in out
    finally:
        platform.stop()


def test_rotate_index_secret_recomputes_digests_and_resumes(data: Path) -> None:
    from zhijin.identity.kyc import PERSON_SCHEMA
    from zhijin.payments.directory import IbanDirectory

    platform = Platform(_settings(data)).start()
    try:
        platform.identity.register(
            login="dora", password=PASSWORD, kind="individual", source=RequestSource(ip="10.0.0.1")
        )
        platform.identity.login(
            login="dora", password=PASSWORD, source=RequestSource(ip="10.0.0.1", device_id="d-1")
        )
        # Another domain's sealed records (the payments IBAN directory) rotate too.
        IbanDirectory(platform.identity.vault, platform.platform_engine).register(
            "acct-1", "DE89370400440532013000", now_ms=1
        )
    finally:
        platform.stop()
    _populate(data)
    before = json.loads((data / "vault.key").read_text())
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(data), "--batch-rows", "2")
    assert code == 0, out
    assert "vault_index: 2/" in out and "devices: " in out and "done" in out
    after = json.loads((data / "vault.key").read_text())
    assert "previous_index_secret" not in after
    assert after["index_secret"] != before["index_secret"]
    assert after["master_keys"] == before["master_keys"]
    assert before["index_secret"] not in out and after["index_secret"] not in out
    assert stat.S_IMODE((data / "vault.key").stat().st_mode) == 0o600

    # Interrupted after step 1 (the new secret written, nothing recomputed): resumes.
    from zhijin.identity.setup import write_vault_keys
    from zhijin.platform.vault import VaultKeys

    write_vault_keys(
        data / "vault.key", VaultKeys.from_json(after).with_new_index_secret(), origin="local"
    )
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(data))
    assert code == 0 and "resuming the index-secret rotation" in out, out
    assert "previous_index_secret" not in json.loads((data / "vault.key").read_text())

    platform = Platform(_settings(data))
    try:
        identity = platform.identity
        user = identity.store.user_by_login("dora")
        assert user is not None
        issued = identity.login(
            login="dora", password=PASSWORD, source=RequestSource(ip="10.0.0.1", device_id="d-1")
        )
        later = Principal(user_id=user.id, roles=issued.principal.roles, auth_at_ms=2**62)
        assert identity.device_known(
            principal=later, source=RequestSource(ip="10.0.0.1", device_id="d-1")
        )
        found = identity.vault_store.find(
            identity.vault, PERSON_SCHEMA, "resident_id", "11010519491231002X"
        )
        assert len(found) == 3
        directory = IbanDirectory(identity.vault, platform.platform_engine)
        assert directory.account_for("DE89 3704 0044 0532 0130 00") == "acct-1"
    finally:
        platform.stop()


def test_rotate_index_secret_refusals(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform = Platform(_settings(data))
    try:
        code, out = zhijin("identity", "rotate-index-secret", "--data", str(data))
        assert code == 1 and "stop it" in out
    finally:
        platform.stop()
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(tmp_path / "missing"))
    assert code == 1 and "no data directory" in out
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(data), "--batch-rows", "0")
    assert code == 2
    key = json.loads((data / "vault.key").read_text())
    monkeypatch.setenv("ZHIJIN_VAULT_KEY", json.dumps(key))
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(data))
    assert code == 1 and "ZHIJIN_VAULT_KEY" in out and key["index_secret"] not in out
    monkeypatch.delenv("ZHIJIN_VAULT_KEY")
    (data / "vault.key").unlink()
    code, out = zhijin("identity", "rotate-index-secret", "--data", str(data))
    assert code == 1 and "no vault key file" in out


# -- production rules ---------------------------------------------------------------------------
def _production(tmp_path: Path, **overrides: object) -> Settings:
    settings = Settings(data=tmp_path / "prod", **overrides)  # type: ignore[arg-type]
    init_data_dir(settings, members=1)
    return settings.model_copy(update={"environment": "production"})


def test_production_refuses_the_local_default_vault_key(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    with pytest.raises(IdentitySettingsError, match="local default"):
        Platform(settings)


def test_production_refuses_a_missing_key_and_an_open_key_file(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    (settings.data / "vault.key").unlink()
    with pytest.raises(IdentitySettingsError, match="no vault key"):
        load_vault_keys(settings)
    operator_key = tmp_path / "operator.key"
    code, out = zhijin("identity", "new-vault-key", "--out", str(operator_key))
    assert code == 0, out
    production = settings.model_copy(update={"vault_key_file": operator_key})
    assert load_vault_keys(production).active_key_id == "k1"
    operator_key.chmod(0o644)
    with pytest.raises(LooseFileMode, match=r"mode 0644.*chmod 600"):
        load_vault_keys(production)
    operator_key.chmod(0o600)
    platform = Platform(production)  # an operator key in production: starts
    platform.stop()


def test_production_refuses_test_hashing_and_insecure_cookies(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    hex_key = SecretStr("ab" * 32)
    good = settings.model_copy(update={"vault_key": hex_key})
    assert load_vault_keys(good).active_key_id == "env"
    for update, message in (
        ({"password_hashing": "test"}, "Argon2"),
        ({"cookie_secure": False}, "cookie_secure"),
    ):
        with pytest.raises(IdentitySettingsError, match=message):
            Platform(good.model_copy(update=update))


def test_demo_users_have_generated_passwords_in_a_private_file(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zhijin.identity.demo import DEMO_USERS, seed_identity_demo

    platform = Platform(_settings(data)).start()
    try:
        dids = seed_identity_demo(platform)
        assert set(dids) == {name for name, _login, _kind in DEMO_USERS}
        # Five end users (one still onboarding) with their own DIDs; staff share the member's.
        assert dids["customer_wang"].startswith("did:key:") and len(set(dids.values())) == 6
        assert dids["bank_officer"] == platform.node.key.did
        printed = capsys.readouterr().out
        logins = (data / "demo-logins.txt").read_text().splitlines()
        assert stat.S_IMODE((data / "demo-logins.txt").stat().st_mode) == 0o600
        assert len(logins) == len(DEMO_USERS) and all(line in printed for line in logins)
        login, password, _kind, secret = logins[0].split("\t")
        assert len(password) >= 20 and secret == "-"  # customers enrol TOTP themselves
        platform.identity.login(login=login, password=password, source=RequestSource(ip="d"))
        # Every staff member was enrolled: the password alone asks for the code, and a code
        # pyotp computes from the written secret signs them in with a second factor.
        staff = [line.split("\t") for line in logins if line.split("\t")[3] != "-"]
        assert {kind for _l, _p, kind, _s in staff} == {
            "admin",
            "bank_officer",
            "compliance_officer",
            "auditor",
            "regulator",
        }
        for login, password, _kind, secret in staff:
            with pytest.raises(MfaRequired):
                platform.identity.login(
                    login=login, password=password, source=RequestSource(ip="d")
                )
            # The enrolment used the current step; the next one is inside the accepted window.
            code = pyotp.TOTP(secret).at(int(time.time()) + 30)
            issued = platform.identity.login(
                login=login, password=password, totp_code=code, source=RequestSource(ip="d")
            )
            assert issued.principal.mfa_at_ms is not None
        assert seed_identity_demo(platform) == dids  # idempotent
        again = capsys.readouterr().out
        assert not any(line in again for line in logins)  # nothing printed twice
        assert len((data / "demo-logins.txt").read_text().splitlines()) == len(DEMO_USERS)
    finally:
        platform.stop()


def test_audit_verify_names_an_entry_whose_details_are_not_json(data: Path) -> None:
    _populate(data)
    engine = _sqlite(data)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER identity_audit_no_update"))
        conn.execute(text("UPDATE identity_audit_log SET details='not json' WHERE seq=2"))
    code, out = zhijin("audit", "verify", "--data", str(data))  # no traceback: a report
    assert code == 1
    assert json.loads(out[: out.rindex("}") + 1])["first_bad_seq"] == 2
    assert "audit log entry 2: entry 2 cannot be read: details is not JSON" in out


def test_a_stopping_node_anchors_its_head_so_a_cut_tail_shows(data: Path) -> None:
    # An interval far longer than the test: only the shutdown anchor can run.
    platform = Platform(_settings(data, audit_anchor_interval_s=3600)).start()
    try:
        platform.identity.register(
            login="someone", password=PASSWORD, kind="individual", source=RequestSource(ip="x")
        )
        head = platform.identity.audit.head()
        assert head.size >= 1 and platform.audit_anchorer.last_anchored is None
    finally:
        platform.stop()
    assert platform.audit_anchorer.last_anchored == head
    height = platform.node.head.height
    again = Platform(_settings(data, audit_anchor_interval_s=3600)).start()
    again.stop()  # the head did not move and is on chain already: no second anchor
    assert again.node.head.height == height
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 0, out
    report = json.loads(out)
    assert report["anchored_size"] == head.size and report["unanchored_entries"] == 0
    assert report["anchors_checked"] == 1
    engine = _sqlite(data)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("DROP TRIGGER identity_audit_no_delete"))
        conn.execute(text("DELETE FROM identity_audit_log WHERE seq = :s"), {"s": head.size})
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 1 and f"audit log entry {head.size}" in out and "removed" in out


def test_without_anchoring_verify_reports_the_whole_log_as_unanchored(data: Path) -> None:
    _populate(data)  # anchoring off (interval 0): not even at shutdown
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 0, out
    report = json.loads(out)
    assert report["anchors_checked"] == 0
    assert report["unanchored_entries"] == report["entries_checked"] > 0
    assert "cannot be detected" in report["unanchored_note"]


def test_anchor_rows_forged_to_match_a_rewritten_log_are_not_trusted(data: Path) -> None:
    from zhijin.platform.audit import AuditLog

    platform = Platform(_settings(data, audit_anchor_interval_s=3600)).start()
    try:
        platform.identity.register(
            login="someone", password=PASSWORD, kind="individual", source=RequestSource(ip="x")
        )
    finally:
        platform.stop()  # anchors the head
    engine = _sqlite(data)
    last = AuditLog(engine).entries()[-1]  # type: ignore[arg-type]
    forged = type(last)(**{**last.hashed_fields(), "actor": "user:innocent", "entry_hash": ""})
    new_hash = forged.computed_hash()
    with engine.begin() as conn:  # type: ignore[attr-defined]
        # Rewrite the last entry consistently, and the anchor row it would be checked against.
        conn.execute(text("DROP TRIGGER identity_audit_no_update"))
        conn.execute(
            text("UPDATE identity_audit_log SET actor='user:innocent', entry_hash=:h WHERE seq=:s"),
            {"h": new_hash, "s": last.seq},
        )
        conn.execute(
            text("UPDATE notary_anchors SET hash=:h WHERE hash=:old"),
            {"h": new_hash, "old": last.entry_hash},
        )
    code, out = zhijin("audit", "verify", "--data", str(data))
    assert code == 1
    report = json.loads(out[: out.rindex("}") + 1])
    assert report["ok"] is False and report["anchors_not_on_chain"] == [last.seq]
    assert report["unanchored_entries"] == last.seq  # the forged anchor vouches for nothing
    assert "not on chain" in out and "zhijin projections verify" in out

"""The field vault: envelope encryption, AAD binding, tamper detection, master-key rotation,
blind indexes, key files.  (The index-secret rotation, which also rekeys identity's logins and
devices, is tested with identity: tests/identity/test_index_rotation.py.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import StaticPool

from zhijin.chain.files import LooseFileMode
from zhijin.identity.kyc import PERSON_SCHEMA
from zhijin.platform.errors import DecryptionFailed, InvalidInput
from zhijin.platform.vault import (
    FieldSpec,
    RecordSchema,
    Sensitivity,
    Vault,
    VaultKeys,
    VaultStore,
    _b64,
    _unb64,
    create_vault_tables,
)


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    create_vault_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def vault_keys() -> VaultKeys:
    return VaultKeys.generate()


@pytest.fixture
def vault(vault_keys: VaultKeys) -> Vault:
    return Vault(vault_keys)


PERSON = {
    "name": "张三",
    "resident_id": "11010519491231002X",
    "mobile": "+8613800138000",
    "birth_date": "1949-12-31",
    "kyc_level": "none",
}


def flip_bit(token: str, byte_index: int = -1) -> str:
    raw = bytearray(_unb64(token[3:]))
    raw[byte_index] ^= 0x01
    return "v1." + _b64(bytes(raw))


def test_roundtrip_and_classification(vault: Vault) -> None:
    sealed = vault.seal(PERSON_SCHEMA, "u1", PERSON)
    # Sensitive fields are ciphertexts, internal ones plain; no plaintext anywhere else.
    assert set(sealed.ciphertexts) == {"name", "resident_id", "mobile", "birth_date"}
    assert sealed.plain == {"kyc_level": "none"}
    blob = repr(sealed) + str(sealed.body()) + sealed.wrapped_dek
    for secret in ("张三", "11010519491231002X", "13800138000"):
        assert secret not in blob
    opened = vault.open(PERSON_SCHEMA, sealed, list(PERSON))
    assert {k: v.decode() if isinstance(v, bytes) else v for k, v in opened.items()} == PERSON


def test_every_declared_field_has_a_sensitivity() -> None:
    for spec in PERSON_SCHEMA.fields:
        assert isinstance(spec.sensitivity, Sensitivity)
    assert PERSON_SCHEMA.spec("resident_id").sensitivity is Sensitivity.HIGHLY_SENSITIVE
    with pytest.raises(InvalidInput):
        PERSON_SCHEMA.spec("favourite_colour")


def test_nonces_are_fresh(vault: Vault) -> None:
    a = vault.seal(PERSON_SCHEMA, "u1", {"name": "张三"})
    b = vault.seal(PERSON_SCHEMA, "u1", {"name": "张三"})
    assert a.ciphertexts["name"] != b.ciphertexts["name"] and a.wrapped_dek != b.wrapped_dek


def test_tampered_ciphertext_is_refused(vault: Vault) -> None:
    sealed = vault.seal(PERSON_SCHEMA, "u1", PERSON)
    for index in (0, 12, -1):  # nonce, body, tag
        bad = replace(
            sealed,
            ciphertexts={**sealed.ciphertexts, "name": flip_bit(sealed.ciphertexts["name"], index)},
        )
        with pytest.raises(DecryptionFailed):
            vault.open(PERSON_SCHEMA, bad, ["name"])
    truncated = replace(
        sealed, ciphertexts={**sealed.ciphertexts, "name": sealed.ciphertexts["name"][:-4]}
    )
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, truncated, ["name"])


def test_ciphertext_swapped_between_fields_is_refused(vault: Vault) -> None:
    sealed = vault.seal(PERSON_SCHEMA, "u1", PERSON)
    swapped = replace(
        sealed, ciphertexts={**sealed.ciphertexts, "name": sealed.ciphertexts["mobile"]}
    )
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, swapped, ["name"])


def test_record_moved_to_another_id_is_refused(vault: Vault) -> None:
    alice = vault.seal(PERSON_SCHEMA, "alice", PERSON)
    # An attacker with database access copies Alice's whole row (DEK included) under Bob's id.
    as_bob = replace(alice, record_id="bob")
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, as_bob, ["name"])
    # Or only the field, into Bob's record: Bob's DEK does not open it either.
    bob = vault.seal(PERSON_SCHEMA, "bob", {"name": "李四"})
    mixed = replace(bob, ciphertexts={"name": alice.ciphertexts["name"]})
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, mixed, ["name"])


def test_wrapped_key_tampering_and_wrong_master_key(vault: Vault) -> None:
    sealed = vault.seal(PERSON_SCHEMA, "u1", PERSON)
    key_id, _, blob = sealed.wrapped_dek.partition(":")
    bad = replace(sealed, wrapped_dek=f"{key_id}:{flip_bit('v1.' + blob)[3:]}")
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, bad, ["name"])
    with pytest.raises(DecryptionFailed):
        Vault(VaultKeys.generate()).open(PERSON_SCHEMA, sealed, ["name"])


def test_master_key_rotation_rewraps_without_reencrypting(vault_keys: VaultKeys) -> None:
    old = Vault(vault_keys)
    sealed = old.seal(PERSON_SCHEMA, "u1", PERSON)
    rotated_keys = vault_keys.with_new_key("k2")
    new = Vault(rotated_keys)
    rewrapped = new.rewrap(sealed)
    assert rewrapped.key_id == "k2" and rewrapped.ciphertexts == sealed.ciphertexts
    # Once rewrapped, the old key can be retired.
    retired = Vault(
        VaultKeys({"k2": rotated_keys.master_keys["k2"]}, "k2", rotated_keys.index_secret)
    )
    assert retired.open(PERSON_SCHEMA, rewrapped, ["name"])["name"] == "张三".encode()
    with pytest.raises(DecryptionFailed):
        retired.open(PERSON_SCHEMA, sealed, ["name"])
    # Re-encryption replaces the data key too.
    fresh = new.reencrypt(PERSON_SCHEMA, rewrapped)
    assert fresh.ciphertexts["name"] != rewrapped.ciphertexts["name"]
    assert new.open(PERSON_SCHEMA, fresh, ["resident_id"])["resident_id"] == b"11010519491231002X"


def test_store_rotation_command(engine: Engine, vault_keys: VaultKeys) -> None:
    store = VaultStore(engine)
    old = Vault(vault_keys)
    for i in range(7):
        store.put(old.seal(PERSON_SCHEMA, f"u{i}", PERSON), now_ms=1)
    new = Vault(vault_keys.with_new_key("k2"))
    assert store.rotate_master_key(new, now_ms=2, batch_rows=3) == 7
    assert store.rotate_master_key(new, now_ms=3) == 0  # idempotent: run it again, nothing left
    for i in range(7):
        record = store.get("person", f"u{i}")
        assert record is not None and record.key_id == "k2"
        assert new.open(PERSON_SCHEMA, record, ["mobile"])["mobile"] == b"+8613800138000"


def test_tampering_in_the_database_is_refused(engine: Engine, vault: Vault) -> None:
    store = VaultStore(engine)
    store.put(vault.seal(PERSON_SCHEMA, "alice", PERSON), now_ms=1)
    store.put(vault.seal(PERSON_SCHEMA, "bob", {**PERSON, "name": "李四"}), now_ms=1)
    with engine.begin() as conn:  # swap the two rows' bodies and keys
        rows = {r.record_id: r for r in conn.execute(text("SELECT * FROM identity_vault_records"))}
        conn.execute(
            text(
                "UPDATE identity_vault_records SET body=:b, wrapped_dek=:w WHERE record_id='alice'"
            ),
            {"b": rows["bob"].body, "w": rows["bob"].wrapped_dek},
        )
    record = store.get("person", "alice")
    assert record is not None
    with pytest.raises(DecryptionFailed):
        vault.open(PERSON_SCHEMA, record, ["name"])


def test_blind_index_lookup(engine: Engine, vault: Vault) -> None:
    store = VaultStore(engine)
    store.put(vault.seal(PERSON_SCHEMA, "alice", PERSON), now_ms=1)
    store.put(
        vault.seal(
            PERSON_SCHEMA,
            "bob",
            {**PERSON, "resident_id": "110105194912310021"[:17] + "X", "mobile": "+8613900139000"},
        ),
        now_ms=1,
    )
    assert store.find(vault, PERSON_SCHEMA, "resident_id", "11010519491231002x") == ["alice", "bob"]
    assert store.find(vault, PERSON_SCHEMA, "mobile", "138 0013 8000") == ["alice"]
    assert store.find(vault, PERSON_SCHEMA, "mobile", "+8613700000000") == []
    # Per-field keys: the same value indexes differently in two fields.
    schema = RecordSchema(
        "t",
        (FieldSpec("a", Sensitivity.SENSITIVE, True), FieldSpec("b", Sensitivity.SENSITIVE, True)),
    )
    assert vault.blind_index(schema, "a", "same") != vault.blind_index(schema, "b", "same")
    # A different index secret gives unrelated digests.
    assert Vault(VaultKeys.generate()).blind_index(
        PERSON_SCHEMA, "mobile", PERSON["mobile"]
    ) != vault.blind_index(PERSON_SCHEMA, "mobile", PERSON["mobile"])
    with pytest.raises(InvalidInput):
        vault.blind_index(PERSON_SCHEMA, "name", "张三")


def test_key_file(tmp_path: Path, vault_keys: VaultKeys) -> None:
    path = tmp_path / "vault-keys.json"
    vault_keys.save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = VaultKeys.load(path)
    assert (
        loaded.master_keys == vault_keys.master_keys
        and loaded.index_secret == vault_keys.index_secret
    )
    assert vault_keys.master_keys["k1"].hex() not in repr(loaded) + repr(Vault(loaded))
    path.chmod(0o644)
    with pytest.raises(LooseFileMode, match="chmod 600"):
        VaultKeys.load(path)


@pytest.mark.parametrize(
    ("keys", "active", "secret"),
    [
        ({"k1": b"short"}, "k1", b"x" * 32),
        ({"k1": b"k" * 32}, "k2", b"x" * 32),
        ({"k1": b"k" * 32}, "k1", b"short"),
        ({"a:b": b"k" * 32}, "a:b", b"x" * 32),
    ],
)
def test_bad_keys_are_refused(keys: dict[str, bytes], active: str, secret: bytes) -> None:
    with pytest.raises(InvalidInput):
        VaultKeys(keys, active, secret)


# -- index-secret rotation (SQLite and PostgreSQL) ---------------------------------------------
def test_delete_removes_the_record_and_its_index(engine: Engine, vault: Vault) -> None:
    store = VaultStore(engine)
    store.put(vault.seal(PERSON_SCHEMA, "alice", PERSON), now_ms=1)
    assert store.delete("person", "alice") and not store.delete("person", "alice")
    assert store.get("person", "alice") is None
    assert store.find(vault, PERSON_SCHEMA, "mobile", PERSON["mobile"]) == []

"""The vault for personal data: field-level AES-256-GCM envelope encryption and blind indexes.

- Every record has its own random 256-bit data key (DEK).  The DEK is stored wrapped
  (AES-256-GCM) under a master key named by a key id; the master keys come from settings or a
  key file (mode 0600) and never touch the database.
- Each field is encrypted under the record's DEK with a fresh 96-bit nonce.  The additional
  authenticated data binds the ciphertext to (schema, record id, field name), and the wrapped
  DEK to (schema, record id, key id): a ciphertext copied into another field or record, or a
  whole row copied under another id, fails authentication instead of decrypting as the wrong
  person's data.
- Master key rotation rewraps DEKs only (`rewrap`); the fields need not be re-encrypted.
  `reencrypt` replaces the DEK too, for when a DEK itself may have leaked.
- Fields are classified where they are declared (`FieldSpec.sensitivity`).  Public and
  internal fields are stored in the clear; sensitive and highly sensitive ones encrypted.
- Lookup by value (an ID number, a phone) uses a blind index: HMAC-SHA256 under a key derived
  with HKDF from a separate index secret, per schema and field, so equal values are findable
  without decrypting and the index of one field says nothing about another.  The service keys
  login names and device ids the same way (`keyed_digest`).
- The index secret rotates on its own (`zhijin identity rotate-index-secret`): every digest
  is recomputed from its value, so the rotation keeps the new secret active and the old one as
  `previous_index_secret` in the key file until it has finished.  Meanwhile lookups try both
  (`keyed_digests`, `blind_indexes`): an interrupted rotation, even with the node run again in
  between, never makes a login or a search by ID number miss a person.  We chose this over a
  secret id on every digest row because it needs no column in the tables that hold digests
  and lasts only as long as the rotation.  A value that is not stored anywhere else (a device
  id) is kept sealed beside its digest (`seal_indexed`), under a key derived from the index
  secret, so that it can be recomputed too; the key file holds both secrets, so this exposes
  nothing a stolen key file did not.

Sensitive plaintexts never appear in a repr or an exception message.
"""

from __future__ import annotations

import base64
import enum
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)

from zhijin.chain.codec import canonical
from zhijin.chain.files import check_secret_file, write_private
from zhijin.platform import limits
from zhijin.platform.errors import DecryptionFailed, InvalidInput

__all__ = [
    "INDEX_ROTATION_STAGES",
    "VAULT_METADATA",
    "FieldSpec",
    "IndexRotation",
    "RecordSchema",
    "SealedRecord",
    "Sensitivity",
    "Vault",
    "VaultKeys",
    "VaultStore",
    "create_vault_tables",
    "text_value",
]

# The tables keep the names they were created with (`identity_` prefix: the vault began in the
# identity domain), so existing platform databases need no migration.
VAULT_METADATA = MetaData()

vault_records = Table(
    "identity_vault_records",
    VAULT_METADATA,
    Column("schema", String(40), primary_key=True),
    Column("record_id", String(80), primary_key=True),
    Column("key_id", String(32), nullable=False, index=True),  # master key wrapping the DEK
    Column("wrapped_dek", String(200), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON: ciphertexts and plain fields
    Column("updated_ms", BigInteger, nullable=False),
)

vault_index = Table(
    "identity_vault_index",
    VAULT_METADATA,
    Column("schema", String(40), primary_key=True),
    Column("field", String(40), primary_key=True),
    Column("record_id", String(80), primary_key=True),
    Column("digest", String(64), nullable=False),
    Index("ix_identity_vault_index_digest", "schema", "field", "digest"),
)

index_rotations = Table(
    "identity_index_rotations",
    VAULT_METADATA,
    # The progress of an index-secret rotation, by the public id of the new secret.
    Column("secret_id", String(16), primary_key=True),
    Column("stage", String(16), nullable=False),  # vault_index | logins | devices | done
    Column("cursor", Text),  # canonical JSON: the last key done in the stage
    Column("started_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)


def create_vault_tables(engine: Engine) -> None:
    """Create the vault's tables (idempotent)."""
    VAULT_METADATA.create_all(engine)


_KEY_BYTES = 32
_NONCE_BYTES = 12
_FIELD_AAD = b"zhijin/vault/field/v1\x00"
_DEK_AAD = b"zhijin/vault/dek/v1\x00"
_TOKEN_PREFIX = "v1."
_INDEX_INFO = b"zhijin/vault/blind-index/v1\x00"
_INDEX_SEAL_INFO = b"zhijin/vault/index-seal/v1\x00"
_INDEX_SEAL_AAD = b"zhijin/vault/index-sealed/v1\x00"
_SECRET_ID_INFO = b"zhijin/vault/index-secret-id/v1"


class Sensitivity(enum.IntEnum):
    PUBLIC = 0
    INTERNAL = 1
    SENSITIVE = 2
    HIGHLY_SENSITIVE = 3

    @property
    def encrypted(self) -> bool:
        return self >= Sensitivity.SENSITIVE


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    sensitivity: Sensitivity
    blind_index: bool = False
    # Normalises a value before indexing, so "110105 19491231 002x" finds "11010519491231002X".
    normalize: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class RecordSchema:
    name: str
    fields: tuple[FieldSpec, ...]

    def spec(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise InvalidInput("unknown_field", f"{self.name} has no field {name}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class VaultKeys:
    """Master keys by id, the active one, and the blind-index secret (with the one it replaces
    while an index-secret rotation runs).  `repr` shows ids only."""

    master_keys: Mapping[str, bytes]
    active_key_id: str
    index_secret: bytes
    previous_index_secret: bytes | None = None

    def __post_init__(self) -> None:
        if self.active_key_id not in self.master_keys:
            raise InvalidInput("vault_keys", "the active key id has no key")
        for key_id, key in self.master_keys.items():
            if not 0 < len(key_id) <= limits.VAULT_KEY_ID_CHARS_MAX or ":" in key_id:
                raise InvalidInput("vault_keys", "key ids are 1 to 32 characters without ':'")
            if len(key) != _KEY_BYTES:
                raise InvalidInput("vault_keys", "master keys are 32 bytes (AES-256)")
        if len(self.index_secret) < _KEY_BYTES:
            raise InvalidInput("vault_keys", "the index secret is at least 32 bytes")
        previous = self.previous_index_secret
        if previous is not None and len(previous) < _KEY_BYTES:
            raise InvalidInput("vault_keys", "the previous index secret is at least 32 bytes")
        if previous is not None and hmac.compare_digest(previous, self.index_secret):
            raise InvalidInput("vault_keys", "the previous index secret equals the current one")

    def __repr__(self) -> str:
        rotating = ", index_rotating=True" if self.previous_index_secret is not None else ""
        return (
            f"VaultKeys(key_ids={sorted(self.master_keys)}, active={self.active_key_id!r}"
            f"{rotating})"
        )

    @classmethod
    def generate(cls, key_id: str = "k1") -> VaultKeys:
        return cls({key_id: secrets.token_bytes(32)}, key_id, secrets.token_bytes(32))

    def with_new_key(self, key_id: str) -> VaultKeys:
        """The same keys plus a fresh active one (the first step of a rotation)."""
        if key_id in self.master_keys:
            raise InvalidInput("vault_keys", f"key id {key_id} exists")
        keys = {**self.master_keys, key_id: secrets.token_bytes(32)}
        return replace(self, master_keys=keys, active_key_id=key_id)

    def only_active_key(self) -> VaultKeys:
        """The active master key alone (the last step of a master-key rotation)."""
        active = self.active_key_id
        return replace(self, master_keys={active: self.master_keys[active]})

    def with_new_index_secret(self) -> VaultKeys:
        """A fresh index secret, the current one kept as previous (a rotation's first step)."""
        if self.previous_index_secret is not None:
            raise InvalidInput("index_rotation_running", "an index-secret rotation is unfinished")
        return replace(
            self, index_secret=secrets.token_bytes(32), previous_index_secret=self.index_secret
        )

    def without_previous_index_secret(self) -> VaultKeys:
        """The keys once every digest is under the current secret (a rotation's last step)."""
        return replace(self, previous_index_secret=None)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "active": self.active_key_id,
            "master_keys": {k: v.hex() for k, v in sorted(self.master_keys.items())},
            "index_secret": self.index_secret.hex(),
        }
        if self.previous_index_secret is not None:
            data["previous_index_secret"] = self.previous_index_secret.hex()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VaultKeys:
        try:
            keys = {str(k): bytes.fromhex(v) for k, v in data["master_keys"].items()}
            previous = data.get("previous_index_secret")
            return cls(
                keys,
                str(data["active"]),
                bytes.fromhex(data["index_secret"]),
                None if previous is None else bytes.fromhex(previous),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                "vault_keys", "a vault key file has active, master_keys, index_secret"
            ) from exc

    def save(self, path: Path) -> None:
        """Write a new key file readable only by its owner (mode 0600)."""
        write_private(path, json.dumps(self.to_json(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> VaultKeys:
        check_secret_file(path, "vault key file")
        return cls.from_json(json.loads(path.read_text()))


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record as stored: the wrapped DEK, ciphertexts of protected fields, plain others."""

    schema: str
    record_id: str
    key_id: str
    wrapped_dek: str
    ciphertexts: Mapping[str, str] = field(default_factory=dict)
    plain: Mapping[str, str] = field(default_factory=dict)
    index: Mapping[str, str] = field(default_factory=dict)  # field -> blind index digest

    def __repr__(self) -> str:
        return (
            f"SealedRecord(schema={self.schema!r}, record_id={self.record_id!r}, "
            f"key_id={self.key_id!r}, fields={sorted([*self.ciphertexts, *self.plain])})"
        )

    def body(self) -> dict[str, Any]:
        return {"ciphertexts": dict(self.ciphertexts), "plain": dict(self.plain)}


class Vault:
    """Pure cryptography over in-memory records; `VaultStore` persists them."""

    def __init__(self, keys: VaultKeys) -> None:
        self._keys = keys

    def __repr__(self) -> str:
        return f"Vault({self._keys!r})"

    @property
    def active_key_id(self) -> str:
        return self._keys.active_key_id

    # -- data keys ------------------------------------------------------------------------------
    def _dek_aad(self, schema: str, record_id: str, key_id: str) -> bytes:
        return _DEK_AAD + canonical({"schema": schema, "record": record_id, "key_id": key_id})

    def _wrap(self, dek: bytes, schema: str, record_id: str) -> tuple[str, str]:
        key_id = self._keys.active_key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._keys.master_keys[key_id]).encrypt(
            nonce, dek, self._dek_aad(schema, record_id, key_id)
        )
        return key_id, f"{key_id}:{_b64(nonce + sealed)}"

    def _unwrap(self, record: SealedRecord) -> bytes:
        key_id, _, blob = record.wrapped_dek.partition(":")
        master = self._keys.master_keys.get(key_id)
        if master is None or key_id != record.key_id:
            raise DecryptionFailed("unknown_key", f"no master key {key_id!r} is loaded")
        raw = _unb64(blob)
        try:
            return AESGCM(master).decrypt(
                raw[:_NONCE_BYTES],
                raw[_NONCE_BYTES:],
                self._dek_aad(record.schema, record.record_id, key_id),
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionFailed(message="the record's data key does not authenticate") from exc

    # -- fields -------------------------------------------------------------------------------
    @staticmethod
    def _field_aad(schema: str, record_id: str, name: str) -> bytes:
        return _FIELD_AAD + canonical({"schema": schema, "record": record_id, "field": name})

    def _encrypt(self, dek: bytes, schema: str, record_id: str, name: str, value: bytes) -> str:
        if len(value) > limits.VAULT_FIELD_BYTES_MAX:
            raise InvalidInput("field_too_large", f"{name} is larger than the vault allows")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(dek).encrypt(nonce, value, self._field_aad(schema, record_id, name))
        return _TOKEN_PREFIX + _b64(nonce + sealed)

    def _decrypt(self, dek: bytes, schema: str, record_id: str, name: str, token: str) -> bytes:
        if not token.startswith(_TOKEN_PREFIX):
            raise DecryptionFailed(message=f"field {name} is not a vault ciphertext")
        try:
            raw = _unb64(token[len(_TOKEN_PREFIX) :])
            return AESGCM(dek).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._field_aad(schema, record_id, name)
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionFailed(message=f"field {name} does not authenticate") from exc

    # -- digests under the index secret -------------------------------------------------------
    @staticmethod
    def _derive(secret: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info).derive(
            secret
        )

    def _index_secrets(self) -> tuple[bytes, ...]:
        """The current secret, then the previous one while a rotation runs."""
        previous = self._keys.previous_index_secret
        return (
            (self._keys.index_secret,) if previous is None else (self._keys.index_secret, previous)
        )

    @property
    def index_rotating(self) -> bool:
        return self._keys.previous_index_secret is not None

    @property
    def index_secret_id(self) -> str:
        """A public name of the current index secret (an HMAC of it, not the secret): what a
        rotation's saved progress belongs to."""
        key = self._derive(self._keys.index_secret, _SECRET_ID_INFO)
        return hmac.new(key, b"", sha256).hexdigest()[:16]

    @staticmethod
    def _digest(secret: bytes, label: str, value: str) -> str:
        key = Vault._derive(secret, _INDEX_INFO + label.encode("utf-8"))
        return hmac.new(key, value.encode("utf-8"), sha256).hexdigest()

    def keyed_digest(self, label: str, value: str) -> str:
        """HMAC-SHA256 of `value` under a key derived (HKDF) from the index secret for `label`.

        For values that must be matched but not revealed, even to someone who can enumerate
        them (phone numbers, login names): without the secret the digest cannot be searched.
        New digests are always made with the current secret.
        """
        return self._digest(self._keys.index_secret, label, value)

    def keyed_digests(self, label: str, value: str) -> tuple[str, ...]:
        """What a lookup must try: the current digest, then the previous secret's while an
        index-secret rotation runs."""
        return tuple(self._digest(secret, label, value) for secret in self._index_secrets())

    def _index_label(self, schema: RecordSchema, name: str, value: str) -> tuple[str, str]:
        spec = schema.spec(name)
        if not spec.blind_index:
            raise InvalidInput("not_indexed", f"{schema.name}.{name} has no blind index")
        normalized = spec.normalize(value) if spec.normalize else value
        return f"{schema.name}\x00{name}", normalized

    def blind_index(self, schema: RecordSchema, name: str, value: str) -> str:
        return self.keyed_digest(*self._index_label(schema, name, value))

    def blind_indexes(self, schema: RecordSchema, name: str, value: str) -> tuple[str, ...]:
        """The blind indexes a lookup must try (see `keyed_digests`)."""
        return self.keyed_digests(*self._index_label(schema, name, value))

    def seal_indexed(self, label: str, context: str, value: str) -> str:
        """`value` encrypted under a key derived from the current index secret, bound to
        (label, context): kept beside a digest whose value is stored nowhere else, so that an
        index-secret rotation can recompute the digest."""
        key = self._derive(self._keys.index_secret, _INDEX_SEAL_INFO + label.encode("utf-8"))
        nonce = os.urandom(_NONCE_BYTES)
        aad = _INDEX_SEAL_AAD + canonical({"label": label, "context": context})
        return _TOKEN_PREFIX + _b64(nonce + AESGCM(key).encrypt(nonce, value.encode(), aad))

    def open_indexed(self, label: str, context: str, token: str) -> str:
        """The value `seal_indexed` sealed, under the current or (mid-rotation) previous secret."""
        if not token.startswith(_TOKEN_PREFIX):
            raise DecryptionFailed(message=f"a sealed {label} is not a vault ciphertext")
        raw = _unb64(token[len(_TOKEN_PREFIX) :])
        aad = _INDEX_SEAL_AAD + canonical({"label": label, "context": context})
        for secret in self._index_secrets():
            key = self._derive(secret, _INDEX_SEAL_INFO + label.encode("utf-8"))
            try:
                plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
            except (InvalidTag, ValueError):
                continue
            return plain.decode("utf-8")
        raise DecryptionFailed(message=f"a sealed {label} does not authenticate")

    def reindex(self, schema: RecordSchema, record: SealedRecord) -> dict[str, str]:
        """The record's blind indexes recomputed under the current secret from its values."""
        names = [spec.name for spec in schema.fields if spec.blind_index]
        opened = self.open(schema, record, names)
        return {name: self.blind_index(schema, name, text_value(v)) for name, v in opened.items()}

    # -- records ------------------------------------------------------------------------------
    def seal(
        self, schema: RecordSchema, record_id: str, values: Mapping[str, str | bytes]
    ) -> SealedRecord:
        """Encrypt a record.  Text values are UTF-8; bytes (documents) are stored as given."""
        dek = AESGCM.generate_key(bit_length=256)
        key_id, wrapped = self._wrap(dek, schema.name, record_id)
        return self._seal_with(dek, key_id, wrapped, schema, record_id, values)

    def _seal_with(
        self,
        dek: bytes,
        key_id: str,
        wrapped: str,
        schema: RecordSchema,
        record_id: str,
        values: Mapping[str, str | bytes],
    ) -> SealedRecord:
        ciphertexts: dict[str, str] = {}
        plain: dict[str, str] = {}
        index: dict[str, str] = {}
        for name, value in values.items():
            spec = schema.spec(name)
            raw = value if isinstance(value, bytes) else value.encode("utf-8")
            if spec.sensitivity.encrypted:
                ciphertexts[name] = self._encrypt(dek, schema.name, record_id, name, raw)
            else:
                if isinstance(value, bytes):
                    raise InvalidInput("bad_value", f"{name} is a plain field and takes text")
                plain[name] = value
            if spec.blind_index:
                index[name] = self.blind_index(schema, name, text_value(value))
        return SealedRecord(schema.name, record_id, key_id, wrapped, ciphertexts, plain, index)

    def open(
        self, schema: RecordSchema, record: SealedRecord, names: Iterable[str]
    ) -> dict[str, bytes | str]:
        """Decrypt the named fields (plain ones are returned as stored)."""
        if record.schema != schema.name:
            raise DecryptionFailed(message="record belongs to another schema")
        wanted = list(names)
        result: dict[str, bytes | str] = {}
        dek: bytes | None = None
        for name in wanted:
            spec = schema.spec(name)
            if not spec.sensitivity.encrypted:
                if name in record.plain:
                    result[name] = record.plain[name]
                continue
            token = record.ciphertexts.get(name)
            if token is None:
                continue
            dek = dek if dek is not None else self._unwrap(record)
            result[name] = self._decrypt(dek, schema.name, record.record_id, name, token)
        return result

    def rewrap(self, record: SealedRecord) -> SealedRecord:
        """Wrap the record's DEK under the active master key; the fields are untouched."""
        dek = self._unwrap(record)
        key_id, wrapped = self._wrap(dek, record.schema, record.record_id)
        return replace(record, key_id=key_id, wrapped_dek=wrapped)

    def reencrypt(self, schema: RecordSchema, record: SealedRecord) -> SealedRecord:
        """A new DEK for the record and every protected field re-encrypted under it."""
        opened = self.open(schema, record, [*record.ciphertexts])
        values: dict[str, str | bytes] = {**record.plain, **opened}
        return self.seal(schema, record.record_id, values)


def text_value(value: bytes | str) -> str:
    """A decrypted text field as str (the vault returns bytes for encrypted fields)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


class VaultStore:
    """Sealed records in `identity_vault_records`, blind indexes in `identity_vault_index`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, record: SealedRecord, *, now_ms: int) -> None:
        """Insert or replace a record and its index entries, in one transaction."""
        row = {
            "key_id": record.key_id,
            "wrapped_dek": record.wrapped_dek,
            "body": canonical(record.body()).decode("utf-8"),
            "updated_ms": now_ms,
        }
        where = (vault_records.c.schema == record.schema) & (
            vault_records.c.record_id == record.record_id
        )
        with self.engine.begin() as conn:
            updated = conn.execute(update(vault_records).where(where).values(**row)).rowcount
            if not updated:
                conn.execute(
                    insert(vault_records).values(
                        schema=record.schema, record_id=record.record_id, **row
                    )
                )
            _write_index(conn, record.schema, record.record_id, record.index)

    def delete(self, schema: str, record_id: str) -> bool:
        """Remove a record and its index entries, in one transaction; False when none."""
        with self.engine.begin() as conn:
            _write_index(conn, schema, record_id, {})
            removed = conn.execute(
                delete(vault_records).where(
                    (vault_records.c.schema == schema) & (vault_records.c.record_id == record_id)
                )
            ).rowcount
        return bool(removed)

    def get(self, schema: str, record_id: str) -> SealedRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(vault_records).where(
                    (vault_records.c.schema == schema) & (vault_records.c.record_id == record_id)
                )
            ).one_or_none()
            if row is None:
                return None
            index_rows = conn.execute(
                select(vault_index.c.field, vault_index.c.digest).where(
                    (vault_index.c.schema == schema) & (vault_index.c.record_id == record_id)
                )
            ).all()
        body = json.loads(row.body)
        return SealedRecord(
            schema=schema,
            record_id=record_id,
            key_id=row.key_id,
            wrapped_dek=row.wrapped_dek,
            ciphertexts=body["ciphertexts"],
            plain=body["plain"],
            index={r.field: r.digest for r in index_rows},
        )

    def count_not_under(self, key_id: str) -> int:
        """Records whose data key is not wrapped under `key_id` (what a rotation has left)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(vault_records)
                    .where(vault_records.c.key_id != key_id)
                ).scalar_one()
            )

    def find(self, vault: Vault, schema: RecordSchema, name: str, value: str) -> list[str]:
        """Record ids whose `name` equals `value`, by blind index (never by decrypting).  While
        the index secret rotates, a record not yet reindexed is found by the previous digest."""
        digests = vault.blind_indexes(schema, name, value)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(vault_index.c.record_id)
                .where(
                    (vault_index.c.schema == schema.name)
                    & (vault_index.c.field == name)
                    & vault_index.c.digest.in_(digests)
                )
                .distinct()
                .order_by(vault_index.c.record_id)
                .limit(limits.VAULT_ROTATE_BATCH_MAX)
            ).all()
        return [r.record_id for r in rows]

    def reindex_batch(
        self,
        vault: Vault,
        schemas: Mapping[str, RecordSchema],
        *,
        after: tuple[str, str] | None,
        batch_rows: int,
    ) -> tuple[str, str] | None:
        """Recompute the blind indexes of the records after `after` (schema, record id) under
        the current index secret, one transaction for the batch; returns the last key done,
        None when no record is left.  Idempotent: a record done twice gets the same digests."""
        query = select(vault_records.c.schema, vault_records.c.record_id)
        if after is not None:
            query = query.where(
                tuple_(vault_records.c.schema, vault_records.c.record_id) > tuple_(*after)
            )
        with self.engine.connect() as conn:
            keys = conn.execute(
                query.order_by(vault_records.c.schema, vault_records.c.record_id).limit(
                    max(1, min(batch_rows, limits.VAULT_ROTATE_BATCH_MAX))
                )
            ).all()
        if not keys:
            return None
        updates: list[tuple[str, str, dict[str, str]]] = []
        for key in keys:
            record = self.get(key.schema, key.record_id)
            if record is None:
                continue  # deleted since the batch was read
            schema = schemas.get(record.schema)
            if schema is None:
                if record.index:
                    raise InvalidInput(
                        "unknown_vault_schema",
                        f"records of schema {record.schema} have blind indexes and no declared "
                        "schema to recompute them",
                    )
                continue
            index = vault.reindex(schema, record)
            if index != dict(record.index):
                updates.append((record.schema, record.record_id, index))
        with self.engine.begin() as conn:
            for schema_name, record_id, index in updates:
                _write_index(conn, schema_name, record_id, index)
        return (keys[-1].schema, keys[-1].record_id)

    def count_records(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(vault_records)).scalar_one())

    # -- index-secret rotation progress -----------------------------------------------------------
    def index_rotation(self, secret_id: str) -> IndexRotation | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(index_rotations).where(index_rotations.c.secret_id == secret_id)
            ).one_or_none()
        if row is None:
            return None
        cursor = None if row.cursor is None else tuple(json.loads(row.cursor))
        return IndexRotation(row.secret_id, row.stage, cursor, row.started_ms)

    def start_index_rotation(self, secret_id: str, *, now_ms: int) -> IndexRotation:
        """The saved progress of the rotation to `secret_id`, or a new one.  Progress of any
        other (finished) rotation is dropped."""
        found = self.index_rotation(secret_id)
        if found is not None:
            return found
        with self.engine.begin() as conn:
            conn.execute(delete(index_rotations))
            conn.execute(
                insert(index_rotations).values(
                    secret_id=secret_id,
                    stage=INDEX_ROTATION_STAGES[0],
                    cursor=None,
                    started_ms=now_ms,
                    updated_ms=now_ms,
                )
            )
        return IndexRotation(secret_id, INDEX_ROTATION_STAGES[0], None, now_ms)

    def save_index_rotation(self, progress: IndexRotation, *, now_ms: int) -> None:
        cursor = None if progress.cursor is None else canonical(list(progress.cursor)).decode()
        with self.engine.begin() as conn:
            conn.execute(
                update(index_rotations)
                .where(index_rotations.c.secret_id == progress.secret_id)
                .values(stage=progress.stage, cursor=cursor, updated_ms=now_ms)
            )

    def finish_index_rotation(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(index_rotations))

    def rotate_master_key(
        self,
        vault: Vault,
        *,
        now_ms: int,
        batch_rows: int = limits.VAULT_ROTATE_BATCH_MAX,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Rewrap every DEK not yet under the active master key; returns how many were rewrapped.

        Runs in batches (one transaction each) so a large vault never holds one long lock; it
        can be interrupted and run again.  The operator retires the old key from the key file
        only after this returns and a second run rewraps 0.
        """
        batch_rows = max(1, min(batch_rows, limits.VAULT_ROTATE_BATCH_MAX))
        total = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(vault_records.c.schema, vault_records.c.record_id)
                    .where(vault_records.c.key_id != vault.active_key_id)
                    .order_by(vault_records.c.schema, vault_records.c.record_id)
                    .limit(batch_rows)
                ).all()
            if not rows:
                return total
            for row in rows:
                record = self.get(row.schema, row.record_id)
                if record is not None:
                    self.put(vault.rewrap(record), now_ms=now_ms)
                    total += 1
            if progress is not None:
                progress(total)


INDEX_ROTATION_STAGES = ("vault_index", "logins", "devices", "done")


@dataclass(frozen=True, slots=True)
class IndexRotation:
    """Where an index-secret rotation stands: a stage and the last key it finished."""

    secret_id: str
    stage: str
    cursor: tuple[str, ...] | None
    started_ms: int


def _write_index(conn: Connection, schema: str, record_id: str, index: Mapping[str, str]) -> None:
    conn.execute(
        delete(vault_index).where(
            (vault_index.c.schema == schema) & (vault_index.c.record_id == record_id)
        )
    )
    for name, digest in sorted(index.items()):
        conn.execute(
            insert(vault_index).values(
                schema=schema, field=name, record_id=record_id, digest=digest
            )
        )

"""Custodial user keys: every end user gets a did:key at registration.

Payments accounts are owned by DIDs, and the platform's member vouches for an authenticated
user as the sender of their transactions, so an ordinary customer never has to handle a key.
The key is still the user's: its seed is sealed in the vault (AES-256-GCM under a wrapped
data key), so it can be exported (`export_entries`, behind a fresh second factor) or used to
sign the changes the identity contracts refuse to accept vouched (DID registration and
rotation, consents).

A user who registers `did:zhijin:<multikey>` through the `did` contract keeps their did:key as
the stable owner of their accounts; the registered DID's current key is kept beside it and
replaced at each rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zhijin.chain.crypto import KeyPair
from zhijin.chain.errors import InvariantViolation
from zhijin.identity.did import multikey_from_public_key, private_jwk, private_multikey
from zhijin.platform.vault import FieldSpec, RecordSchema, Sensitivity, Vault, VaultStore

__all__ = ["USER_KEY_SCHEMA", "UserKeys", "export_entries", "load_user_keys", "save_user_keys"]

USER_KEY_SCHEMA = RecordSchema(
    "user_key",
    (
        FieldSpec("did_key_seed", Sensitivity.HIGHLY_SENSITIVE),
        FieldSpec("registered_did", Sensitivity.INTERNAL),
        FieldSpec("registered_key_id", Sensitivity.INTERNAL),
        FieldSpec("registered_seed", Sensitivity.HIGHLY_SENSITIVE),
    ),
)


@dataclass(frozen=True, slots=True)
class UserKeys:
    """A user's did:key and, once registered, their did:zhijin with its current key."""

    did_key: KeyPair
    registered_did: str | None = None
    registered_key_id: str | None = None
    registered_key: KeyPair | None = None

    def __repr__(self) -> str:
        return f"UserKeys(did={self.did_key.did!r}, registered={self.registered_did!r})"

    def signer_for(self, did: str) -> KeyPair:
        """The key that currently controls `did` (the did:key, or the registered DID's)."""
        if did == self.did_key.did:
            return self.did_key
        if did == self.registered_did and self.registered_key is not None:
            return self.registered_key
        raise InvariantViolation("asked for the key of a DID this user does not hold")


def save_user_keys(
    vault: Vault, store: VaultStore, user_id: str, keys: UserKeys, *, now_ms: int
) -> None:
    values: dict[str, str | bytes] = {"did_key_seed": keys.did_key.seed}
    if keys.registered_did is not None:
        if keys.registered_key is None or keys.registered_key_id is None:
            raise InvariantViolation("a registered DID is saved with its current key")
        values["registered_did"] = keys.registered_did
        values["registered_key_id"] = keys.registered_key_id
        values["registered_seed"] = keys.registered_key.seed
    store.put(vault.seal(USER_KEY_SCHEMA, user_id, values), now_ms=now_ms)


def load_user_keys(vault: Vault, store: VaultStore, user_id: str) -> UserKeys | None:
    record = store.get(USER_KEY_SCHEMA.name, user_id)
    if record is None:
        return None
    opened = vault.open(USER_KEY_SCHEMA, record, [f.name for f in USER_KEY_SCHEMA.fields])
    seed = opened["did_key_seed"]
    registered_seed = opened.get("registered_seed")
    if not isinstance(seed, bytes) or not (
        registered_seed is None or isinstance(registered_seed, bytes)
    ):
        raise InvariantViolation("an encrypted vault field decrypts to bytes")
    registered_did = opened.get("registered_did")
    key_id = opened.get("registered_key_id")
    return UserKeys(
        did_key=KeyPair.from_seed(seed),
        registered_did=None if registered_did is None else str(registered_did),
        registered_key_id=None if key_id is None else str(key_id),
        registered_key=None if registered_seed is None else KeyPair.from_seed(registered_seed),
    )


def _entry(key: KeyPair, controller: str, verification_method: str) -> dict[str, Any]:
    return {
        "id": verification_method,
        "type": "Multikey",
        "controller": controller,
        "publicKeyMultibase": multikey_from_public_key(key.public_key),
        "secretKeyMultibase": private_multikey(key.seed),
        "privateKeyJwk": private_jwk(key.seed, key.public_key),
    }


def export_entries(keys: UserKeys) -> list[dict[str, Any]]:
    """The user's private keys as Multikey verification methods with their secret parts (W3C
    Controlled Identifiers `secretKeyMultibase`, and the RFC 8037 JWK): the did:key, then the
    registered DID's current key."""
    did = keys.did_key.did
    entries = [_entry(keys.did_key, did, f"{did}#{did.removeprefix('did:key:')}")]
    if keys.registered_did is not None and keys.registered_key is not None:
        entries.append(
            _entry(
                keys.registered_key,
                keys.registered_did,
                f"{keys.registered_did}#{keys.registered_key_id}",
            )
        )
    return entries

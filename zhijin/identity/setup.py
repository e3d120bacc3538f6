"""Building the identity domain for a running platform: vault keys, hasher, services, chain I/O.

Vault keys come from `ZHIJIN_VAULT_KEY` (a key file's JSON, or 64 hex characters that become
the master key, the blind-index secret being derived from it) or from the key file
(`ZHIJIN_VAULT_KEY_FILE`, default DATA/vault.key, mode 0600).  `zhijin chain init` writes a key
file marked `"origin": "local"`; a local node without any key creates one the same way.

With `environment = production` the platform refuses to start when the key is missing, is a
locally generated one, or its file is readable by others; and also when cookies are not Secure
or password hashing uses the cheap test parameters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine

from zhijin.chain.errors import ContractError, TxRejected, ZhijinError
from zhijin.chain.files import check_secret_file, write_private
from zhijin.chain.node import Node
from zhijin.chain.tx import make_body, sign_tx
from zhijin.identity.geoip import GeoLocator
from zhijin.identity.keys import USER_KEY_SCHEMA
from zhijin.identity.kyc import BUSINESS_SCHEMA, KYC_DOCUMENT_SCHEMA, MFA_SCHEMA, PERSON_SCHEMA
from zhijin.identity.passwords import PRODUCTION_PARAMS, TEST_PARAMS, PasswordHasher
from zhijin.identity.ratelimit import SqlRateLimitStore
from zhijin.identity.service import IdentityService
from zhijin.identity.settings import IdentitySettings, vault_key_path
from zhijin.identity.store import IdentityStore
from zhijin.identity.tables import create_tables
from zhijin.platform import limits as platform_limits
from zhijin.platform.errors import InvalidInput
from zhijin.platform.settings import CoreSettings
from zhijin.platform.vault import (
    INDEX_ROTATION_STAGES,
    IndexRotation,
    RecordSchema,
    Vault,
    VaultKeys,
    VaultStore,
)

__all__ = [
    "LOCAL_ORIGIN",
    "VAULT_SCHEMAS",
    "ChainReader",
    "GatewayWriter",
    "IdentitySettingsError",
    "build_identity",
    "check_production",
    "create_local_vault_key",
    "load_identity_keys",
    "load_vault_keys",
    "rotate_index_secret",
    "submit_signed",
    "write_vault_keys",
]

log = logging.getLogger("zhijin.identity")

LOCAL_ORIGIN = "local"
_ENV_KEY_ID = "env"
_INDEX_SECRET_INFO = b"zhijin/vault/index-secret/v1"
_NONCE_RETRIES = 3


class IdentitySettingsError(ZhijinError):
    code = "identity_settings"
    http_status = 500


def write_vault_keys(path: Path, keys: VaultKeys, *, origin: str) -> None:
    """Write a key file (mode 0600) through a temporary file, so a crash leaves either the old
    file or the new one, never half of one."""
    write_private(path, json.dumps({**keys.to_json(), "origin": origin}, indent=2, sort_keys=True))


def create_local_vault_key(path: Path) -> VaultKeys:
    keys = VaultKeys.generate()
    write_vault_keys(path, keys, origin=LOCAL_ORIGIN)
    return keys


def _keys_from_env(value: str) -> tuple[VaultKeys, str | None]:
    text = value.strip()
    if text.startswith("{"):
        data = json.loads(text)
        return VaultKeys.from_json(data), data.get("origin")
    try:
        master = bytes.fromhex(text)
    except ValueError as exc:
        raise IdentitySettingsError(
            message="ZHIJIN_VAULT_KEY is a key file's JSON or 64 hex characters"
        ) from exc
    if len(master) != 32:
        raise IdentitySettingsError(message="ZHIJIN_VAULT_KEY must be 32 bytes (64 hex)")
    index_secret = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_SECRET_INFO
    ).derive(master)
    return VaultKeys({_ENV_KEY_ID: master}, _ENV_KEY_ID, index_secret), None


def load_vault_keys(settings: CoreSettings) -> VaultKeys:
    """The vault keys the settings name, with the production rules applied."""
    production = settings.environment == "production"
    section = IdentitySettings.of(settings)
    if section.vault_key is not None:
        keys, origin = _keys_from_env(section.vault_key.get_secret_value())
        if production and origin == LOCAL_ORIGIN:
            raise IdentitySettingsError(message="a locally generated vault key in production")
        return keys
    path = vault_key_path(settings)
    if not path.exists():
        if production:
            raise IdentitySettingsError(
                message=f"no vault key: set ZHIJIN_VAULT_KEY or create {path} (mode 0600)"
            )
        log.warning("no vault key file: creating a local one at %s", path)
        return create_local_vault_key(path)
    check_secret_file(path, "vault key file")
    try:
        data = json.loads(path.read_text())
        keys = VaultKeys.from_json(data)
    except (ValueError, InvalidInput) as exc:
        raise IdentitySettingsError(message=f"{path} is not a vault key file") from exc
    if production and data.get("origin") == LOCAL_ORIGIN:
        raise IdentitySettingsError(
            message=f"{path} is the local default vault key; production needs its own "
            "(`zhijin identity new-vault-key`)"
        )
    return keys


def check_production(settings: CoreSettings) -> None:
    """The identity rules that hold only in production (the key itself: load_vault_keys)."""
    if settings.environment != "production":
        return
    section = IdentitySettings.of(settings)
    if not section.cookie_secure:
        raise IdentitySettingsError(message="production needs cookie_secure = true")
    if section.password_hashing != "production":
        raise IdentitySettingsError(message="production needs the production Argon2 parameters")


def load_identity_keys(settings: CoreSettings) -> VaultKeys:
    """Every production rule checked, then the vault keys: call before taking any resource."""
    check_production(settings)
    return load_vault_keys(settings)


def build_identity(
    settings: CoreSettings, engine: Engine, keys: VaultKeys | None = None
) -> IdentityService:
    """Check the settings, create the tables (idempotent) and build the service."""
    keys = keys if keys is not None else load_identity_keys(settings)
    create_tables(engine)
    section = IdentitySettings.of(settings)
    params = PRODUCTION_PARAMS if section.password_hashing == "production" else TEST_PARAMS
    geoip_db = section.geoip_db
    return IdentityService(
        engine=engine,
        vault=Vault(keys),
        hasher=PasswordHasher(params),
        rate_limits=SqlRateLimitStore(engine),
        locator=None if geoip_db is None else GeoLocator(geoip_db),
    )


# -- index-secret rotation -----------------------------------------------------------------
# Every schema the vault stores records of: a rotation recomputes their blind indexes.
VAULT_SCHEMAS: dict[str, RecordSchema] = {
    schema.name: schema
    for schema in (PERSON_SCHEMA, BUSINESS_SCHEMA, KYC_DOCUMENT_SCHEMA, MFA_SCHEMA, USER_KEY_SCHEMA)
}

# (stage, rows done in it, rows it has in all)
RotationProgress = Callable[[str, int, int], None]


def rotate_index_secret(
    engine: Engine,
    vault: Vault,
    *,
    clock: Callable[[], int],
    batch_rows: int = platform_limits.VAULT_ROTATE_BATCH_MAX,
    progress: RotationProgress | None = None,
    schemas: dict[str, RecordSchema] = VAULT_SCHEMAS,
) -> IndexRotation:
    """Recompute every digest made under the previous index secret with the current one:
    blind indexes (by opening each record), lockout counters (from each user's login name),
    known devices (from their sealed ids).  `vault` must hold both secrets.

    Stages run in order, in batches of one transaction each; after each batch the stage and
    the last key done are saved under the new secret's public id, so an interrupted rotation
    resumes where it stopped.  Every step is idempotent, so a batch done twice (a crash after
    its commit, before the progress was saved) is harmless.  The caller drops the previous
    secret from the key file once this returns.
    """
    if not vault.index_rotating:
        raise InvalidInput("no_index_rotation", "the vault keys hold no previous index secret")
    vault_store, identity_store = VaultStore(engine), IdentityStore(engine)
    state = vault_store.start_index_rotation(vault.index_secret_id, now_ms=clock())
    totals = {
        "vault_index": vault_store.count_records,
        "logins": identity_store.count_users,
        "devices": identity_store.count_users,
    }

    def rekey_device(user_id: str, sealed: str) -> tuple[str, str]:
        device_id = vault.open_indexed("device", user_id, sealed)
        return vault.keyed_digest("device", device_id), vault.seal_indexed(
            "device", user_id, device_id
        )

    while state.stage != "done":
        total, done = totals[state.stage](), 0
        while True:
            cursor: tuple[str, ...] | None
            if state.stage == "vault_index":
                after = None if state.cursor is None else (state.cursor[0], state.cursor[1])
                cursor = vault_store.reindex_batch(
                    vault, schemas, after=after, batch_rows=batch_rows
                )
            elif state.stage == "logins":
                last = identity_store.rekey_logins_batch(
                    lambda login: vault.keyed_digests("login", login),
                    after=None if state.cursor is None else state.cursor[0],
                    batch_rows=batch_rows,
                    now_ms=clock(),
                )
                cursor = None if last is None else (last,)
            else:
                last = identity_store.rekey_devices_batch(
                    rekey_device,
                    after=None if state.cursor is None else state.cursor[0],
                    batch_rows=batch_rows,
                )
                cursor = None if last is None else (last,)
            if cursor is None:
                break
            state = replace(state, cursor=cursor)
            vault_store.save_index_rotation(state, now_ms=clock())
            done = min(total, done + batch_rows)
            if progress is not None:
                progress(state.stage, done, total)
        if state.stage == "logins":
            identity_store.drop_login_keys_before(state.started_ms)
        next_stage = INDEX_ROTATION_STAGES[INDEX_ROTATION_STAGES.index(state.stage) + 1]
        state = replace(state, stage=next_stage, cursor=None)
        vault_store.save_index_rotation(state, now_ms=clock())
    return state


# -- chain I/O ------------------------------------------------------------------------------
class ChainReader:
    """Committed chain state as a StateReader (for DID resolution, consent and status)."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def get(self, key: str) -> Any | None:
        return self.node.state_get(key)

    def scan(self, prefix: str, start_after: str, limit: int) -> list[tuple[str, Any]]:
        store = self.node.store
        with store.read() as conn:
            return store.state_scan(conn, prefix, start_after, limit)


def _raise_failed(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("status") != "ok":
        raise ContractError(str(result.get("code")), str(result.get("message") or ""))
    return result


class GatewayWriter:
    """`personal.ChainWriter` over the member gateway: a failed tx raises its contract code."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def submit(self, contract: str, method: str, args: dict[str, Any]) -> dict[str, Any]:
        return _raise_failed(self.gateway.submit(contract, method, args))


def submit_signed(
    node: Node,
    key: Any,
    contract: str,
    method: str,
    args: dict[str, Any],
    *,
    next_nonce: Callable[[], int],
    timeout_s: float = 30.0,
    validity_ms: int = 10 * 60 * 1000,
) -> dict[str, Any]:
    """A tx signed by the user's own (custodial) key: what the did and consent contracts need,
    as they refuse a member vouching for someone else's key or consent."""
    for _attempt in range(_NONCE_RETRIES):
        body = make_body(
            chain_id=node.genesis.chain_id,
            sender=key.did,
            nonce=next_nonce(),
            contract=contract,
            method=method,
            args=args,
            valid_until=node.clock() + validity_ms,
        )
        (admission,) = node.submit(sign_tx(key, body))
        if admission.accepted and admission.future is not None:
            return _raise_failed(admission.future.result(timeout=timeout_s))
        if admission.code != "nonce_used":
            raise TxRejected(admission.code or "tx_rejected", admission.message or "")
    raise TxRejected("nonce_used", "could not find a free nonce")

"""Identity's settings section (docs/identity.md): the vault's keys, cookies, password hashing,
the GeoIP database of the step-up rules and audit anchoring."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from zhijin.platform.settings import CoreSettings, SettingsSection

__all__ = ["IdentitySettings", "vault_key_path"]

VAULT_KEY_FILE = "vault.key"


class IdentitySettings(SettingsSection):
    vault_key: SecretStr | None = Field(
        default=None, description="vault keys: a key file's JSON, or 64 hex chars (master key)"
    )
    vault_key_file: Path | None = Field(
        default=None, description="vault key file (mode 0600); default DATA/vault.key"
    )
    cookie_secure: bool = Field(
        default=True,
        description="session cookie is Secure and __Host- (off only for plain-http dev)",
    )
    password_hashing: Literal["production", "test"] = Field(
        default="production", description="Argon2id parameters; `test` is cheap, never production"
    )
    geoip_db: Path | None = Field(
        default=None,
        description="a MaxMind-format City database, for the step-up location rules",
    )
    audit_anchor_interval_s: float = Field(
        default=60.0, ge=0, le=86_400, description="anchor the audit head this often; 0 = never"
    )


def vault_key_path(settings: CoreSettings) -> Path:
    """Where the vault key file is: the section's own path, else in the data directory."""
    return IdentitySettings.of(settings).vault_key_file or settings.data / VAULT_KEY_FILE
